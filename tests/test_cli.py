"""The ussd-gateway command line: decode and selfcheck."""

from __future__ import annotations

import io
import json

import pytest

from gateway import cli


def test_selfcheck_passes() -> None:
    out = io.StringIO()
    assert cli.selfcheck(out) == 0
    assert "7/7 checks passed" in out.getvalue()


def test_decode_tcap_prints_the_service_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["decode", cli.SAMPLE_BEGIN.hex()]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["text"] == ["*123#"]
    assert result["tcap"]["type"] == "Begin" and result["tcap"]["otid"] == "00000001"
    assert result["map"][0]["msisdn"]["digits"] == "491720000001"


def test_decode_malformed_gives_json_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["decode", "62 03 49 01 01"]) == 1
    err = json.loads(capsys.readouterr().err)
    assert err["kind"] == "TcapError" and err["p_abort_cause"] == "INCORRECT_TRANSACTION_PORTION"
    assert cli.main(["decode", "zz"]) == 2


def test_decode_m3ua_management(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["decode", "0100030100000008"]) == 0
    assert json.loads(capsys.readouterr().out)["m3ua"]["msg_type"] == 1
