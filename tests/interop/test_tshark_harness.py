"""Wireshark 4.0 reads what PcapWriter writes, and the harness (tests/support/tshark.py) reports what it sees.

The messages are built by hand (tests/support/handmade.py), independent of the project's codecs. The harness
is itself validated on two real-world captures whose expected values tests/vectors/README.md lists.
Each capture is read by tshark once for its fields and once for its problems (module-scoped fixtures).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.ops.pcap import Endpoint, PcapWriter
from tests.support import tshark
from tests.support.handmade import (
    SSN_GSMSCF,
    SSN_HLR,
    SSN_MSC,
    SSN_VLR,
    TC_BEGIN_USSD,
    pack_gsm7_ussd,
    tc_begin,
    ussd_arg,
    ussd_begin,
    ussd_invoke,
)
from tests.support.vectors import vector, vector_hex

MSC: Endpoint = ("10.20.30.40", 2905)
GW: Endpoint = ("10.20.30.1", 14001)
MSC6: Endpoint = ("2001:db8:5::8", 2905)
GW6: Endpoint = ("2001:db8:5::1", 2906)

MAP_FIELDS = [
    "m3ua.protocol_data_opc",
    "m3ua.protocol_data_dpc",
    "m3ua.protocol_data_si",
    "m3ua.protocol_data_sls",
    "m3ua.routing_context",
    "sccp.called.digits",
    "sccp.calling.digits",
    "sccp.called.ssn",
    "sccp.calling.ssn",
    "sccp.called.gti",
    "tcap.otid",
    "tcap.application_context_name",
    "gsm_old.localValue",
    "gsm_old.invokeID",
    "gsm_map.ss.ussd_DataCodingScheme",
    "gsm_map.ussd_string",
    "e164.msisdn",
    "frame.time_epoch",
]
SCTP_FIELDS = [
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "ip.checksum.status",
    "sctp.srcport",
    "sctp.dstport",
    "sctp.checksum.status",
    "sctp.data_payload_proto_id",
    "sctp.data_sid",
    "sctp.data_ssn",
    "sctp.data_tsn_raw",
    "sctp.verification_tag",
]
EXPORTED_FIELDS = ["exported_pdu.prot_name", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst"]
IP_CHECKSUM = ("ip.check_checksum:TRUE",)
GOOD = "1"  # Wireshark's checksum status "Good"


@dataclass(frozen=True)
class Case:
    message: bytes
    src: Endpoint
    dst: Endpoint
    ts: float
    stream: int
    expected: dict[str, list[str]] = field(default_factory=dict)


def _common(**over: list[str]) -> dict[str, list[str]]:
    base = {
        "m3ua.protocol_data_si": ["3"],
        "sccp.called.gti": ["0x04"],
        "tcap.application_context_name": ["0.4.0.0.1.0.19.2"],
        "gsm_old.localValue": ["59"],
        "gsm_map.ss.ussd_DataCodingScheme": ["0f"],
        "e164.msisdn": ["491720000001"],
    }
    return {**base, **over}


CASES = [
    # the design.md TC-BEGIN as an MSC sends it to the gateway (gsmSCF)
    Case(
        ussd_begin(),
        MSC,
        GW,
        1_700_000_000.25,
        1,
        _common(
            **{
                "m3ua.protocol_data_opc": ["100"],
                "m3ua.protocol_data_dpc": ["200"],
                "m3ua.protocol_data_sls": ["5"],
                "m3ua.routing_context": ["1"],
                "sccp.called.digits": ["491700000001"],
                "sccp.calling.digits": ["491700000002"],
                "sccp.called.ssn": [str(SSN_GSMSCF)],
                "sccp.calling.ssn": [str(SSN_MSC)],
                "tcap.otid": ["00000001"],
                "gsm_old.invokeID": ["1"],
                "gsm_map.ussd_string": ["*123#"],
            }
        ),
    ),
    # odd digit counts, no routing context, the other direction, another stream
    Case(
        ussd_begin(
            called_gt="278291600",
            calling_gt="27829106146",
            called_ssn=SSN_VLR,
            calling_ssn=SSN_HLR,
            opc=16383,
            dpc=1,
            sls=15,
            routing_context=None,
        ),
        GW,
        MSC,
        1_700_000_000.5,
        3,
        _common(
            **{
                "m3ua.protocol_data_opc": ["16383"],
                "m3ua.protocol_data_dpc": ["1"],
                "m3ua.protocol_data_sls": ["15"],
                "m3ua.routing_context": [],
                "sccp.called.digits": ["278291600"],
                "sccp.calling.digits": ["27829106146"],
                "sccp.called.ssn": [str(SSN_VLR)],
                "sccp.calling.ssn": [str(SSN_HLR)],
                "tcap.otid": ["00000001"],
                "gsm_old.invokeID": ["1"],
                "gsm_map.ussd_string": ["*123#"],
            }
        ),
    ),
    # two invokes in one TC-BEGIN: every field occurs twice; a text with the CR pad of TS 23.038 §6.1.2.3.1
    Case(
        ussd_begin(
            tc_begin(
                [
                    ussd_invoke(1),
                    ussd_invoke(2, parameter=ussd_arg(pack_gsm7_ussd("*100*1#"), msisdn=None)),
                ],
                otid=bytes.fromhex("deadbeef"),
            ),
            routing_context=0xFFFFFFFF,
        ),
        MSC,
        GW,
        1_700_000_001.0,
        1,
        _common(
            **{
                "m3ua.protocol_data_opc": ["100"],
                "m3ua.protocol_data_dpc": ["200"],
                "m3ua.protocol_data_sls": ["5"],
                "m3ua.routing_context": ["4294967295"],
                "sccp.called.digits": ["491700000001"],
                "sccp.calling.digits": ["491700000002"],
                "sccp.called.ssn": [str(SSN_GSMSCF)],
                "sccp.calling.ssn": [str(SSN_MSC)],
                "tcap.otid": ["deadbeef"],
                "gsm_old.localValue": ["59", "59"],
                "gsm_old.invokeID": ["1", "2"],
                "gsm_map.ss.ussd_DataCodingScheme": ["0f", "0f"],
                "gsm_map.ussd_string": ["*123#", "*100*1#\r"],
            }
        ),
    ),
    # IPv6 peers
    Case(
        ussd_begin(opc=1234, dpc=5678, sls=0, routing_context=7),
        MSC6,
        GW6,
        1_700_000_002.000001,
        0,
        _common(
            **{
                "m3ua.protocol_data_opc": ["1234"],
                "m3ua.protocol_data_dpc": ["5678"],
                "m3ua.protocol_data_sls": ["0"],
                "m3ua.routing_context": ["7"],
                "sccp.called.digits": ["491700000001"],
                "sccp.calling.digits": ["491700000002"],
                "sccp.called.ssn": [str(SSN_GSMSCF)],
                "sccp.calling.ssn": [str(SSN_MSC)],
                "tcap.otid": ["00000001"],
                "gsm_old.invokeID": ["1"],
                "gsm_map.ussd_string": ["*123#"],
            }
        ),
    ),
    # the same peers again: TSN and SSN go on
    Case(ussd_begin(), MSC, GW, 1_700_000_003.0, 1, {"tcap.otid": ["00000001"]}),
]


def _write(path: Path, fmt: str) -> Path:
    with PcapWriter(path, fmt=fmt) as writer:  # type: ignore[arg-type]
        for case in CASES:
            writer.write_m3ua(case.message, src=case.src, dst=case.dst, ts=case.ts, stream=case.stream)
    return path


@dataclass(frozen=True)
class Seen:
    rows: list[dict[str, list[str]]]
    problems: list[str]


@pytest.fixture(scope="module")
def sctp_seen(tmp_path_factory: pytest.TempPathFactory) -> Seen:
    path = _write(tmp_path_factory.mktemp("pcap") / "sctp.pcap", "sctp")
    return Seen(
        tshark.fields(path, MAP_FIELDS + SCTP_FIELDS, options=IP_CHECKSUM),
        tshark.problems(path, options=IP_CHECKSUM),
    )


@pytest.fixture(scope="module")
def exported_seen(tmp_path_factory: pytest.TempPathFactory) -> Seen:
    path = _write(tmp_path_factory.mktemp("pcap") / "exported.pcap", "exported_pdu")
    return Seen(tshark.fields(path, MAP_FIELDS + EXPORTED_FIELDS), tshark.problems(path))


@pytest.mark.interop
@pytest.mark.parametrize("fmt", ["sctp", "exported_pdu"])
def test_handmade_messages_decode_cleanly(fmt: str, sctp_seen: Seen, exported_seen: Seen) -> None:
    seen = sctp_seen if fmt == "sctp" else exported_seen
    assert seen.problems == []
    assert len(seen.rows) == len(CASES)
    for i, (row, case) in enumerate(zip(seen.rows, CASES, strict=True)):
        got = {name: row[name] for name in case.expected}
        assert got == case.expected, f"frame {i + 1}"
        assert abs(float(row["frame.time_epoch"][0]) - case.ts) < 1e-6


@pytest.mark.interop
def test_sctp_layer_as_wireshark_sees_it(sctp_seen: Seen) -> None:
    rows = sctp_seen.rows
    for row, case in zip(rows, CASES, strict=True):
        v6 = ":" in case.src[0]
        assert row["ipv6.src" if v6 else "ip.src"] == [case.src[0]]
        assert row["ipv6.dst" if v6 else "ip.dst"] == [case.dst[0]]
        assert row["ip.checksum.status"] == ([] if v6 else [GOOD])
        assert row["sctp.checksum.status"] == [GOOD]
        assert (row["sctp.srcport"], row["sctp.dstport"]) == ([str(case.src[1])], [str(case.dst[1])])
        assert row["sctp.data_payload_proto_id"] == ["3"]
        assert row["sctp.data_sid"] == [f"0x{case.stream:04x}"]
    # MSC -> GW on stream 1: frames 1, 3, 5; GW -> MSC: frame 2
    tsn = [int(rows[i]["sctp.data_tsn_raw"][0]) for i in (0, 2, 4)]
    assert tsn == [tsn[0], tsn[0] + 1, tsn[0] + 2]
    assert [rows[i]["sctp.data_ssn"] for i in (0, 2, 4)] == [["0"], ["1"], ["2"]]
    assert rows[1]["sctp.data_ssn"] == ["0"]
    tags = [rows[i]["sctp.verification_tag"][0] for i in range(len(rows))]
    assert tags[0] == tags[2] == tags[4] != tags[1]


@pytest.mark.interop
def test_exported_pdu_names_m3ua_and_the_peers(exported_seen: Seen) -> None:
    for row, case in zip(exported_seen.rows, CASES, strict=True):
        assert row["exported_pdu.prot_name"] == ["m3ua"]
        v6 = ":" in case.src[0]
        assert row["ipv6.src" if v6 else "ip.src"] == [case.src[0]]
        assert row["ipv6.dst" if v6 else "ip.dst"] == [case.dst[0]]


@pytest.mark.interop
def test_problems_catches_truncation_and_bad_checksums(tmp_path: Path) -> None:
    truncated = TC_BEGIN_USSD[:-10]  # the BER lengths now overrun the message
    messages = [ussd_begin(), ussd_begin(truncated), ussd_begin(), ussd_begin(), ussd_begin(), ussd_begin()]
    buf = io.BytesIO()
    starts = []
    with PcapWriter(buf) as writer:
        for i, message in enumerate(messages):
            starts.append(len(buf.getvalue()) + 16)  # first octet of the frame, after the record header
            writer.write_m3ua(message, src=MSC, dst=GW, ts=1_700_000_000 + i)
    raw = bytearray(buf.getvalue())
    raw[starts[3] + 20 + 8] ^= 0x01  # SCTP checksum of frame 4
    raw[starts[4] + 10] ^= 0x80  # IPv4 header checksum of frame 5
    path = tmp_path / "bad.pcap"
    path.write_bytes(bytes(raw))
    found = tshark.problems(path, options=IP_CHECKSUM)
    assert [p.split(":", 1)[0] for p in found] == ["frame 2", "frame 4", "frame 5"]
    assert "Malformed" in found[0]
    assert "checksum" in found[1].lower()
    assert "checksum" in found[2].lower()
    assert tshark.problem_frames(path, options=IP_CHECKSUM) == [2, 4, 5]


@pytest.mark.interop
def test_fields_display_filter_and_absent_fields(tmp_path: Path) -> None:
    path = tshark.write_pcap(tmp_path, [case.message for case in CASES])
    rows = tshark.fields(
        path, ["tcap.otid", "tcap.dtid", "frame.number"], display_filter="tcap.otid == de:ad:be:ef"
    )
    assert rows == [{"tcap.otid": ["deadbeef"], "tcap.dtid": [], "frame.number": ["3"]}]
    assert tshark.fields(path, ["frame.number"], display_filter="tcap.dtid") == []


@pytest.mark.interop
def test_bad_field_name_is_an_error(tmp_path: Path) -> None:
    path = tshark.write_pcap(tmp_path, [ussd_begin()])
    with pytest.raises(tshark.TsharkError, match=r"no\.such\.field"):
        tshark.fields(path, ["no.such.field"])


def test_missing_tshark_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.support.tshark.shutil.which", lambda _name: None)
    monkeypatch.delenv("USSD_ALLOW_MISSING_TOOLS", raising=False)
    with pytest.raises(pytest.fail.Exception, match="tshark"):
        tshark.tshark_path()
    monkeypatch.setenv("USSD_ALLOW_MISSING_TOOLS", "1")
    with pytest.raises(pytest.skip.Exception, match="tshark"):
        tshark.tshark_path()


# ------------------------------------------------------------------------ the harness on known real captures


GO_FIELDS = [
    "tcap.otid",
    "tcap.application_context_name",
    "gsm_map.dialogue.destinationReference",
    "gsm_map.dialogue.originationReference",
    "gsm_old.invokeID",
    "gsm_old.localValue",
    "gsm_map.ss.ussd_DataCodingScheme",
    "gsm_map.ss.ussd_String",
    "gsm_map.ussd_string",
    "gsm_map.ss.msisdn",
    "e164.msisdn",
]
GO_LONG_TEXT = (
    "Thank you for using the Golang USSD server. it is developed purely on golang and it uses SCCP, M3UA, "
    "SCTP, ASN, CBS, GSM7 and ITU standards. Hope you enjoy thnx"
)


@pytest.mark.interop
def test_go_tcap_capture() -> None:
    path = vector("go_tcap_ussd_begin.pcap")
    assert tshark.problems(path) == []
    rows = {row["tcap.otid"][0]: row for row in tshark.fields(path, GO_FIELDS)}
    assert set(rows) == {"00000002", "0000000a"}
    short, long_ = rows["00000002"], rows["0000000a"]
    for row in (short, long_):
        assert row["tcap.application_context_name"] == ["0.4.0.0.1.0.19.2"]
        assert row["gsm_old.localValue"] == ["59"]
        assert row["gsm_map.ss.ussd_DataCodingScheme"] == ["0f"]
    assert short["gsm_map.dialogue.destinationReference"] == ["9121436587f9"]
    assert short["gsm_map.dialogue.originationReference"] == ["9121436587f9"]
    assert short["gsm_old.invokeID"] == ["0"]
    assert short["gsm_map.ss.ussd_String"] == ["f4f29c0e"]
    assert short["gsm_map.ussd_string"] == ["test"]
    assert short["gsm_map.ss.msisdn"] == ["91111111111111f1"]
    # three E.164 numbers in one packet: both MAP-OpenInfo references, then the msisdn
    assert short["e164.msisdn"] == ["123456789", "123456789", "1111111111111"]
    assert len(bytes.fromhex(long_["gsm_map.ss.ussd_String"][0])) == 140
    assert long_["gsm_map.ussd_string"] == [GO_LONG_TEXT]
    assert len(GO_LONG_TEXT) == 160
    # the hex files hold the same TCAP messages as the capture
    raw = path.read_bytes()
    for hex_name in ("go_tcap_short.hex", "go_tcap_long.hex"):
        assert vector_hex(hex_name) in raw


@pytest.mark.interop
def test_wiki_m2ua_capture() -> None:
    path = vector("wiki_m2ua_ussd.pcap")
    assert tshark.problems(path) == []
    names = [
        "sctp.data_payload_proto_id",
        "sccp.called.ssn",
        "sccp.called.digits",
        "sccp.called.gti",
        "sccp.called.tt",
        "sccp.calling.ssn",
        "sccp.calling.digits",
        "sccp.calling.gti",
        "sccp.calling.tt",
        "tcap.otid",
        "tcap.application_context_name",
        "gsm_map.dialogue.destinationReference",
        "e212.imsi",
        "gsm_old.invokeID",
        "gsm_old.localValue",
        "gsm_map.ss.ussd_DataCodingScheme",
        "gsm_map.ussd_string",
        "e164.msisdn",
    ]
    (row,) = tshark.fields(path, names)
    assert row == {
        "sctp.data_payload_proto_id": ["2"],
        "sccp.called.ssn": ["147"],
        "sccp.called.digits": ["278291600"],
        "sccp.called.gti": ["0x04"],
        "sccp.called.tt": ["0x00"],
        "sccp.calling.ssn": ["6"],
        "sccp.calling.digits": ["27829106146"],
        "sccp.calling.gti": ["0x04"],
        "sccp.calling.tt": ["0x00"],
        "tcap.otid": ["2f3b4602"],
        "tcap.application_context_name": ["0.4.0.0.1.0.19.2"],
        "gsm_map.dialogue.destinationReference": ["9656051124006913f6"],
        "e212.imsi": ["655011420096316"],
        "gsm_old.invokeID": ["1"],
        "gsm_old.localValue": ["59"],
        "gsm_map.ss.ussd_DataCodingScheme": ["0f"],
        "gsm_map.ussd_string": ["*140*0761241377#"],
        "e164.msisdn": ["27761485722"],
    }
    # the SCCP UDT of the hex file starts at offset 17 of the M2UA DATA (after SIO 0x83 and the routing label)
    m2ua = vector_hex("wiki_m2ua_ussd.hex")
    assert (m2ua[12], m2ua[17]) == (0x83, 0x09)
    assert m2ua in path.read_bytes()


def test_handmade_builders_reproduce_the_design_vector() -> None:
    # sanity of the hand-built fixtures themselves (design.md §3 TC-BEGIN, README's "test" = f4f29c0e)
    assert tc_begin([ussd_invoke(1)]) == TC_BEGIN_USSD
    assert ussd_arg(pack_gsm7_ussd("*123#")) == TC_BEGIN_USSD[50:]
    assert pack_gsm7_ussd("test") == bytes.fromhex("f4f29c0e")
