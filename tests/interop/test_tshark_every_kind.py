"""Every message kind the gateway emits, written to one pcap and judged by Wireshark's dissectors (tshark 4.0):
no malformed or expert-error packet, and the right field values (design.md §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.codecs import layers, m3ua, sccp, tcap, ussd_string
from gateway.codecs import map as M
from gateway.codecs.map_address import AddressString
from gateway.codecs.sccp import SccpAddress
from tests.support import tshark

pytestmark = pytest.mark.interop

GW = SccpAddress.gt_e164("491700000001", sccp.SSN_GSMSCF)
MSC = SccpAddress.gt_e164("491720000001", sccp.SSN_MSC)
HLR = SccpAddress.gt_e164("491770000042", sccp.SSN_HLR)
AC = M.AC_NETWORK_UNSTRUCTURED_SS_V2


def data(msg: tcap.TcapMessage, called: SccpAddress = MSC, calling: SccpAddress = GW) -> bytes:
    return layers.encode_data(msg, called=called, calling=calling, opc=1, dpc=2, sls=5, routing_context=1)


def ussd(text: str) -> bytes:
    return M.encode_ussd_arg(M.ussd_arg(text, msisdn="491720000001"))


def ussd_res(text: str) -> bytes:
    return M.encode_ussd_res(M.ussd_res(text))


OPEN = M.encode_dialogue_external(M.MapOpen(AddressString.imsi("262011234567890"), AddressString.e164("491700000001")))
SRI_ARG = M.RoutingInfoForSmArg(AddressString.e164("491720000001"), True, AddressString.e164("491700000001"))
CLOSE = M.encode_dialogue_external(M.MapClose())
TID_GW = bytes.fromhex("0a000001")
TID_MSC = bytes.fromhex("00000001")

# (M3UA message, expected tshark fields: name -> the values that must be present)
CASES: list[tuple[str, bytes, dict[str, list[str]]]] = [
    ("pull TC-BEGIN(59)", data(tcap.Begin(TID_MSC, tcap.Aarq(AC), (tcap.Invoke(1, 59, ussd("*123#")),)), GW, MSC),
     {"gsm_old.localValue": ["59"], "tcap.otid": ["00000001"], "gsm_map.ussd_string": ["*123#"],
      "sccp.called.digits": ["491700000001"]}),
    ("menu TC-CONTINUE(60) with AARE", data(tcap.Continue(TID_GW, TID_MSC, tcap.Aare(AC),
                                                          (tcap.Invoke(2, 60, ussd("1. Balance\n2. Top-up")),))),
     {"gsm_old.localValue": ["60"], "tcap.otid": ["0a000001"], "tcap.dtid": ["00000001"],
      "gsm_map.ussd_string": ["1. Balance\n2. Top-up"], "sccp.called.digits": ["491720000001"]}),
    ("answer TC-CONTINUE RR(60)",
     data(tcap.Continue(TID_MSC, TID_GW, None, (tcap.ReturnResult(2, 60, ussd_res("1")),)), GW, MSC),
     {"gsm_old.localValue": ["60"], "gsm_map.ussd_string": ["1"]}),
    ("final TC-END RR(59), UCS2",
     data(tcap.End(TID_MSC, None, (tcap.ReturnResult(1, 59, ussd_res("Баланс: 100 ₽")),))),
     {"gsm_old.localValue": ["59"], "tcap.dtid": ["00000001"], "gsm_map.ussd_string": ["Баланс: 100 ₽"]}),
    ("final TC-END 182 characters", data(tcap.End(TID_MSC, None, (tcap.ReturnResult(1, 59, ussd_res("x" * 182)),))),
     {"gsm_map.ussd_string": ["x" * 182]}),
    ("TC-END ReturnError ussd-Busy", data(tcap.End(TID_MSC, None, (tcap.ReturnError(1, 72, None),))),
     {"gsm_old.localValue": ["72"]}),
    ("TC-END ReturnError systemFailure",
     data(tcap.End(TID_MSC, None, (tcap.ReturnError(1, 34, M.encode_error(34, 2)),))),
     {"gsm_old.localValue": ["34"]}),
    ("TC-END Reject", data(tcap.End(TID_MSC, None, (tcap.Reject(1, 1, 1),))), {"tcap.dtid": ["00000001"]}),
    ("TC-END Reject not derivable", data(tcap.End(TID_MSC, None, (tcap.Reject(None, 0, 2),))), {}),
    ("TC-END map-close", data(tcap.End(TID_MSC, tcap.Aare(AC, user_information=(CLOSE,)),
                                       (tcap.ReturnResult(1, 59, ussd_res("Bye")),))),
     {"gsm_map.ussd_string": ["Bye"]}),
    ("P-Abort unrecognizedTransactionID", data(tcap.Abort(TID_MSC, 1)), {"tcap.dtid": ["00000001"]}),
    ("U-Abort ABRT + map-userAbort", data(tcap.Abort(TID_MSC, None, tcap.Abrt(0, (M.encode_dialogue_external(
        M.MapUserAbort(3, 6)),)))), {"tcap.dtid": ["00000001"]}),
    ("U-Abort AARE reject (refused AC)", data(tcap.Abort(TID_MSC, None, tcap.Aare((0, 4, 0, 0, 1, 0, 99, 3), 1, 1, 2))),
     {"tcap.dtid": ["00000001"]}),
    ("push SRI-for-SM TC-BEGIN(45)", data(tcap.Begin(TID_GW, tcap.Aarq(M.AC_SHORT_MSG_GATEWAY_V3),
                                                     (tcap.Invoke(1, 45, M.encode_sri_sm_arg(SRI_ARG)),)), HLR),
     {"gsm_old.localValue": ["45"], "e164.msisdn": ["491720000001"]}),
    ("HLR SRI-for-SM TC-END RR(45)", data(tcap.End(TID_GW, None, (tcap.ReturnResult(1, 45, M.encode_sri_sm_res(
        M.RoutingInfoForSmRes("262011234567890", AddressString.e164("491720000009")))),)), GW, HLR),
     {"gsm_old.localValue": ["45"], "e212.imsi": ["262011234567890"]}),
    ("push notify TC-BEGIN(61) with MAP-OpenInfo", data(tcap.Begin(TID_GW, tcap.Aarq(AC, (OPEN,)),
                                                                   (tcap.Invoke(1, 61, ussd("Your code: 1234")),))),
     {"gsm_old.localValue": ["61"], "gsm_map.ussd_string": ["Your code: 1234"], "tcap.otid": ["0a000001"]}),
    ("push request TC-BEGIN(60) with MAP-OpenInfo", data(tcap.Begin(TID_GW, tcap.Aarq(AC, (OPEN,)),
                                                                    (tcap.Invoke(1, 60, ussd("Accept? 1=Yes")),))),
     {"gsm_old.localValue": ["60"], "gsm_map.ussd_string": ["Accept? 1=Yes"]}),
    ("notify acknowledged TC-END RR(61)", data(tcap.End(TID_GW, tcap.Aare(AC), (tcap.ReturnResult(1, None, None),)),
                                               GW, MSC), {"tcap.dtid": ["0a000001"]}),
    ("TC-UNIDIRECTIONAL", data(tcap.Unidirectional(tcap.Audt(AC), (tcap.Invoke(1, 61, ussd("broadcast")),))),
     {"gsm_map.ussd_string": ["broadcast"]}),
]


def _sccp_special() -> list[tuple[str, bytes, dict[str, list[str]]]]:
    big = tcap.encode(tcap.Begin(TID_GW, tcap.Aarq(AC, (OPEN,)), (tcap.Invoke(1, 61, ussd("y" * 182)),
                                                                   tcap.Invoke(2, 61, ussd("z" * 182)))))
    parts = sccp.build_unitdata(MSC, GW, big, protocol_class=1, return_on_error=True, segmentation_reference=0x123)
    assert len(parts) > 1
    out = [(f"XUDT segment {i}", m3ua.encode_data(1, 2, 3, 2, 0, 5, p, 1), {"sccp.message_type": ["0x11"]})
           for i, p in enumerate(parts)]
    udt = sccp.Udt(1, True, MSC, GW, tcap.encode(tcap.Abort(TID_MSC, 1)))
    out.append(("UDTS subsystem failure", m3ua.encode_data(1, 2, 3, 2, 0, 5, sccp.service_for(udt, 3), 1),
                {"sccp.message_type": ["0x0a"], "sccp.return_cause": ["0x03"]}))
    xudt = udt._replace(hop_counter=15)
    out.append(("XUDTS hop counter violation", m3ua.encode_data(1, 2, 3, 2, 0, 5, sccp.service_for(xudt, 12), 1),
                {"sccp.message_type": ["0x12"], "sccp.return_cause": ["0x0c"]}))
    return out


def _m3ua_management() -> list[tuple[str, bytes, dict[str, list[str]]]]:
    apc = [m3ua.AffectedPointCode(2)]
    msgs = [
        m3ua.aspup(7, "gw"), m3ua.aspup_ack(7), m3ua.aspdn(), m3ua.aspdn_ack(), m3ua.beat(b"hb-1"),
        m3ua.beat_ack(b"hb-1"), m3ua.aspac(2, [1]), m3ua.aspac_ack(2, [1]), m3ua.aspia([1]), m3ua.aspia_ack([1]),
        m3ua.err(m3ua.ErrorCode.PROTOCOL_ERROR, diagnostic_info=b"\x01\x00\x03\x01\x00\x00\x00\x00"),
        m3ua.ntfy(1, 3, routing_contexts=[1]),
        m3ua.ssnm(m3ua.Ssnm.DUNA, apc, routing_contexts=[1]), m3ua.ssnm(m3ua.Ssnm.DAVA, apc, routing_contexts=[1]),
        m3ua.ssnm(m3ua.Ssnm.DAUD, apc), m3ua.ssnm(m3ua.Ssnm.SCON, apc, congestion_level=1),
        m3ua.ssnm(m3ua.Ssnm.DUPU, apc, user_cause=(2, 3)), m3ua.ssnm(m3ua.Ssnm.DRST, apc),
        m3ua.reg_req([m3ua.RoutingKey(1, 1, 1, 2, None, (3,))]),
        m3ua.reg_rsp([m3ua.RegistrationResult(1, 0, 1)]),
        m3ua.dereg_req([1]), m3ua.dereg_rsp([m3ua.DeregistrationResult(1, 0)]),
    ]
    return [(f"M3UA {m.msg_class}/{m.msg_type}", m3ua.encode(m),
             {"m3ua.message_class": [str(m.msg_class)], "m3ua.message_type": [str(m.msg_type)]}) for m in msgs]


ALL = CASES + _sccp_special() + _m3ua_management()
NAMES = sorted({k for _, _, exp in ALL for k in exp} | {"m3ua.protocol_data_si", "tcap.application_context_name"})


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, list[str]]]]:
    path = tshark.write_pcap(tmp_path_factory.mktemp("every-kind"), [m for _, m, _ in ALL])
    return path, tshark.fields(path, NAMES)


def test_capture_is_clean(rows: tuple[Path, list[dict[str, list[str]]]]) -> None:
    path, _ = rows
    assert tshark.problems(path) == []


@pytest.mark.parametrize("index", range(len(ALL)), ids=[name for name, _, _ in ALL])
def test_fields(rows: tuple[Path, list[dict[str, list[str]]]], index: int) -> None:
    _, decoded = rows
    _, _message, expected = ALL[index]
    got = decoded[index]
    for name, values in expected.items():
        seen = [v.rstrip("\r") if name == "gsm_map.ussd_string" else v for v in got[name]]
        for value in values:
            assert value in seen, f"{name}: expected {value!r}, tshark shows {got[name]!r}"


def test_usss_strings_stay_within_the_limit() -> None:
    # tshark does not flag an over-long USSD-String: check the sizes ourselves.
    for _, message, _ in CASES:
        decoded = layers.decode_data(message)
        for value in decoded.map_values:
            if isinstance(value, M.UssdArg | M.UssdRes):
                assert len(value.string) <= ussd_string.MAX_OCTETS
