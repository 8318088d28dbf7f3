"""Application dialects: how a USSD step is put to an HTTP application server and how its reply is read.

- ``json`` (native, documented in docs/openapi-app.yaml): POST application/json; the reply is
  ``{"action": "continue" | "end", "text": "..."}``.
- ``africastalking``: POST form ``sessionId, serviceCode, phoneNumber, networkCode, text`` where ``text`` is empty on
  the first step and then all the inputs joined by ``*``; the reply is text/plain ``CON ...`` or ``END ...``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlencode


@dataclass(frozen=True, slots=True)
class AppRequest:
    session_id: str
    msisdn: str | None
    service_code: str
    params: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()  # every input so far; the last one is this step's
    imsi: str | None = None
    vlr: str | None = None
    network_code: str = ""
    dcs: int = 0x0F
    language: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return len(self.inputs)

    @property
    def input(self) -> str | None:
        return self.inputs[-1] if self.inputs else None


@dataclass(frozen=True, slots=True)
class AppReply:
    end: bool
    text: str


class BadReplyError(ValueError):
    """The application answered something the dialect cannot read."""


def encode_json(req: AppRequest) -> tuple[bytes, str]:
    body = {
        "sessionId": req.session_id, "msisdn": req.msisdn, "imsi": req.imsi, "serviceCode": req.service_code,
        "params": list(req.params), "input": req.input, "inputs": list(req.inputs), "step": req.step,
        "vlr": req.vlr, "dcs": req.dcs, "language": req.language,
    }  # fmt: skip
    return json.dumps(body, ensure_ascii=False).encode(), "application/json"


def decode_json(status: int, content_type: str, body: bytes) -> AppReply:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BadReplyError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("action") not in ("continue", "end") or not isinstance(
        data.get("text"), str
    ):
        raise BadReplyError('expected {"action": "continue" | "end", "text": "..."}')
    return AppReply(data["action"] == "end", data["text"])


def encode_africastalking(req: AppRequest) -> tuple[bytes, str]:
    form = {
        "sessionId": req.session_id,
        "serviceCode": req.service_code,
        "phoneNumber": "+" + req.msisdn if req.msisdn else "",
        "networkCode": req.network_code,
        "text": "*".join((*req.params, *req.inputs)),
    }
    return urlencode(form).encode(), "application/x-www-form-urlencoded"


def decode_africastalking(status: int, content_type: str, body: bytes) -> AppReply:
    text = body.decode("utf-8", "replace")
    if text.startswith("CON "):
        return AppReply(False, text[4:])
    if text.startswith("END "):
        return AppReply(True, text[4:])
    if text in ("CON", "END"):
        return AppReply(text == "END", "")
    raise BadReplyError("expected text starting with 'CON ' or 'END '")


DIALECTS = {
    "json": (encode_json, decode_json),
    "africastalking": (encode_africastalking, decode_africastalking),
}
