"""docs/openapi-app.yaml describes what the json dialect really sends and accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gateway.apps.dialects import AppRequest, BadReplyError, decode_json, encode_json

SPEC = yaml.safe_load((Path(__file__).resolve().parents[1] / "docs" / "openapi-app.yaml").read_text())
STEP = SPEC["components"]["schemas"]["Step"]
REPLY = SPEC["components"]["schemas"]["Reply"]


def test_request_matches_the_step_schema() -> None:
    body, content_type = encode_json(AppRequest("s1", "491720000001", "*777#", ("1", "500"), ("2",), vlr="49172"))
    assert content_type in SPEC["paths"]["/"]["post"]["requestBody"]["content"]
    data = json.loads(body)
    assert set(STEP["required"]) <= set(data)
    assert set(data) <= set(STEP["properties"])  # nothing undocumented
    assert data["step"] == 1 and data["input"] == "2" and data["params"] == ["1", "500"]


def test_reply_schema_is_what_the_decoder_accepts() -> None:
    for action in REPLY["properties"]["action"]["enum"]:
        assert decode_json(200, "application/json", json.dumps({"action": action, "text": "x"}).encode())
    with pytest.raises(BadReplyError):
        decode_json(200, "application/json", b'{"action": "maybe", "text": "x"}')
    with pytest.raises(BadReplyError):
        decode_json(200, "application/json", b'{"action": "end"}')


def test_end_notice_matches_its_schema() -> None:
    from gateway.apps.dialects import EndNotice, encode_end_notice_json

    schema = SPEC["components"]["schemas"]["EndNotice"]
    body, content_type = encode_end_notice_json(EndNotice("s1", "4917", "*123#", "user-aborted", 1500, 2, ("1",),
                                                          "Menu", 1_700_000_000.0))  # fmt: skip
    assert content_type in SPEC["paths"]["/end-notice"]["post"]["requestBody"]["content"]
    data = json.loads(body)
    assert set(schema["required"]) <= set(data) <= set(schema["properties"])
    assert data["event"] in schema["properties"]["event"]["enum"]
    assert data["outcome"] in schema["properties"]["outcome"]["description"]
