"""The real-world vectors of tests/vectors/ decode through our codecs to the values their README gives
(Wireshark 4.0's reading), and the mixed-traffic corpus decodes without surprises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.codecs import layers, m3ua, sccp, tcap
from gateway.codecs import map as M
from gateway.codecs.errors import CodecError, TcapError
from gateway.codecs.map_address import AddressString
from tests.support import tshark
from tests.support.vectors import vector, vector_hex

pytestmark = pytest.mark.interop

GO_LONG_TEXT = ("Thank you for using the Golang USSD server. it is developed purely on golang and it uses SCCP, M3UA, "
                "SCTP, ASN, CBS, GSM7 and ITU standards. Hope you enjoy thnx")


def _layers(pcap: Path, display_filter: str) -> list[dict[str, Any]]:
    out = tshark.run_tshark(pcap, ["-T", "json", "-x", "-Y", display_filter])
    return [p["_source"]["layers"] for p in json.loads(out)]


def _raws(layer: dict[str, Any], name: str) -> list[bytes]:
    raw = layer.get(f"{name}_raw")
    if raw is None:
        return []
    items = raw if isinstance(raw[0], list) else [raw]
    return [bytes.fromhex(r[0]) for r in items]


def test_go_pcap_through_every_layer() -> None:
    frames = _layers(vector("go_tcap_ussd_begin.pcap"), "m3ua")
    assert len(frames) == 2
    decoded = [layers.decode_data(_raws(f, "m3ua")[0]) for f in frames]
    short, long_ = sorted(decoded, key=lambda d: d.tcap.otid)  # type: ignore[union-attr]
    for d, otid in ((short, "00000002"), (long_, "0000000a")):
        assert isinstance(d.tcap, tcap.Begin) and d.tcap.otid.hex() == otid
        assert isinstance(d.tcap.dialogue, tcap.Aarq)
        assert d.tcap.dialogue.application_context == M.AC_NETWORK_UNSTRUCTURED_SS_V2
        assert d.map_dialogue == M.MapOpen(AddressString.e164("123456789"), AddressString.e164("123456789"))
        inv = d.tcap.components[0]
        assert isinstance(inv, tcap.Invoke) and inv.invoke_id == 0 and inv.opcode == 59
        assert d.map_values[0].dcs == 0x0F
        assert d.map_values[0].msisdn == AddressString.e164("1111111111111")
    assert short.map_values[0].text() == "test"
    assert len(long_.map_values[0].string) == 140
    assert long_.map_values[0].text() == GO_LONG_TEXT
    # The hex files hold the same TCAP messages.
    assert tcap.encode(short.tcap) == vector_hex("go_tcap_short.hex")
    assert tcap.encode(long_.tcap) == vector_hex("go_tcap_long.hex")


def test_wiki_m2ua_capture() -> None:
    raw = vector_hex("wiki_m2ua_ussd.hex")
    frames = _layers(vector("wiki_m2ua_ussd.pcap"), "sccp")
    from_tshark = _raws(frames[0], "sccp")[0]
    assert raw[17:].startswith(from_tshark) and not raw[17 + len(from_tshark) :].strip(b"\x00")  # M2UA padding
    msg = sccp.decode(raw[17:])
    assert isinstance(msg, sccp.Udt)
    assert (msg.called.ssn, msg.called.gt and msg.called.gt.digits) == (147, "278291600")
    assert (msg.calling.ssn, msg.calling.gt and msg.calling.gt.digits) == (6, "27829106146")
    t = tcap.decode(msg.data)
    assert isinstance(t, tcap.Begin) and t.otid.hex() == "2f3b4602"
    assert isinstance(t.dialogue, tcap.Aarq)
    pdu = M.find_map_dialogue(t.dialogue.user_information)
    assert isinstance(pdu, M.MapOpen) and pdu.destination_reference == AddressString.imsi("655011420096316")
    inv = t.components[0]
    assert isinstance(inv, tcap.Invoke) and (inv.invoke_id, inv.opcode) == (1, 59)
    arg = M.decode_argument(59, inv.parameter)
    assert arg.text() == "*140*0761241377#" and arg.msisdn == AddressString.e164("27761485722")


def test_mixed_corpus_decodes_and_unserved_operations_are_recognised() -> None:
    frames = _layers(vector("map_nonussd_pcapr.pcap"), "tcap || m3ua || sccp")
    opcodes: set[int | tuple[int, ...]] = set()
    tcap_count = 0
    for layer in frames:
        for m in _raws(layer, "m3ua"):
            try:
                m3ua.decode(m)
            except CodecError as exc:  # pragma: no cover - the corpus is well formed at this layer
                pytest.fail(f"M3UA {m[:16].hex()}: {exc}")
        sccp_types = {sccp.decode(s).__class__ for s in _raws(layer, "sccp")}
        for raw in _raws(layer, "tcap"):
            tcap_count += 1
            try:
                msg = tcap.decode(raw)
            except TcapError as exc:
                # Only the data an XUDTS returns (a fragment, not a whole TCAP message) may be refused, and with
                # the P-Abort cause the spec gives.
                assert sccp.Udts in sccp_types, f"refused {raw[:16].hex()}: {exc}"
                assert exc.p_abort_cause is not None
                continue
            for c in getattr(msg, "components", ()):
                if isinstance(c, tcap.Invoke):
                    opcodes.add(c.opcode)
                    value = M.decode_argument(c.opcode, c.parameter)
                    if not M.serves(c.opcode):
                        assert value == M.Unknown(c.opcode, c.parameter)
    assert tcap_count >= 50
    assert {2, 7, 22, 23, 45, 46, 55, 56, 71} <= opcodes
    assert not any(M.serves(op) for op in opcodes - {45})  # no USSD in this corpus
