"""Application dialects: how a USSD step is put to an HTTP application server and how its reply is read.

- ``json`` (native, documented in docs/openapi-app.yaml): POST application/json; the reply is
  ``{"action": "continue" | "end", "text": "..."}``.
- ``africastalking``: POST form ``sessionId, serviceCode, phoneNumber, networkCode, text`` where ``text`` is empty on
  the first step and then all the inputs joined by ``*``; the reply is text/plain ``CON ...`` or ``END ...``.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlencode


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
    backup: bool = False  # served by the backup URL after the primary failed


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
    if (
        not isinstance(data, dict)
        or data.get("action") not in ("continue", "end")
        or not isinstance(data.get("text"), str)
    ):
        raise BadReplyError('expected {"action": "continue" | "end", "text": "..."}')
    return AppReply(data["action"] == "end", data["text"])


def _form_value(value: str) -> str:
    # urlencode's quote_plus, without its cost for the usual values: letters and digits, service codes, numbers
    if value.isascii() and value.isalnum():
        return value
    return _quoted(value) if len(value) <= 32 else quote_plus(value, safe="")


@functools.lru_cache(maxsize=4096)
def _quoted(value: str) -> str:
    return quote_plus(value, safe="")


def encode_africastalking(req: AppRequest) -> tuple[bytes, str]:
    fields = (
        ("sessionId", req.session_id),
        ("serviceCode", req.service_code),
        ("phoneNumber", "+" + req.msisdn if req.msisdn else ""),
        ("networkCode", req.network_code),
        ("text", "*".join((*req.params, *req.inputs))),
    )
    body = "&".join(f"{name}={_form_value(value)}" for name, value in fields)
    return body.encode("ascii"), "application/x-www-form-urlencoded"


def decode_africastalking(status: int, content_type: str, body: bytes) -> AppReply:
    text = body.decode("utf-8", "replace")
    if text.startswith("CON "):
        return AppReply(False, text[4:])
    if text.startswith("END "):
        return AppReply(True, text[4:])
    if text in ("CON", "END"):
        return AppReply(text == "END", "")
    raise BadReplyError("expected text starting with 'CON ' or 'END '")


@dataclass(frozen=True, slots=True)
class EndNotice:
    """Told to the application when a session is over, whatever ended it."""

    session_id: str
    msisdn: str | None
    service_code: str
    outcome: str  # completed, user-released, app-timeout, max-duration, busy, ... (as in the CDR)
    duration_ms: int
    hops: int
    inputs: tuple[str, ...]
    last_text: str | None  # the last text the subscriber was shown
    started: float  # Unix seconds
    network_code: str = ""


def encode_end_notice_json(n: EndNotice) -> tuple[bytes, str]:
    body = {
        "event": "session-end", "sessionId": n.session_id, "msisdn": n.msisdn, "serviceCode": n.service_code,
        "outcome": n.outcome, "durationMs": n.duration_ms, "hops": n.hops, "inputs": list(n.inputs),
        "lastText": n.last_text, "started": round(n.started, 3),
    }  # fmt: skip
    return json.dumps(body, ensure_ascii=False).encode(), "application/json"


_AT_STATUS = {"completed": "Success", "user-released": "Incomplete", "user-aborted": "Incomplete",
              "timeout": "Incomplete"}  # fmt: skip


def encode_end_notice_africastalking(n: EndNotice) -> tuple[bytes, str]:
    """The fields of Africa's Talking's end-of-session notification (status Success / Incomplete / Failed)."""
    form = {
        "sessionId": n.session_id, "serviceCode": n.service_code,
        "phoneNumber": "+" + n.msisdn if n.msisdn else "", "networkCode": n.network_code,
        "status": _AT_STATUS.get(n.outcome, "Failed"), "durationInMillis": str(n.duration_ms),
        "hopsCount": str(n.hops), "input": "*".join(n.inputs), "lastAppResponse": n.last_text or "",
        "errorMessage": "" if n.outcome == "completed" else n.outcome,
        "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(n.started)),
    }  # fmt: skip
    return urlencode(form).encode(), "application/x-www-form-urlencoded"


END_NOTICES = {"json": encode_end_notice_json, "africastalking": encode_end_notice_africastalking}

DIALECTS = {
    "json": (encode_json, decode_json),
    "africastalking": (encode_africastalking, decode_africastalking),
}
