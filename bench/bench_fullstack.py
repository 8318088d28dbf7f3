"""Full stack, M3UA <-> MAP: decode of a TC-BEGIN(59) and encode of a TC-CONTINUE(60) and a TC-END(59).

References in the same process: pycrate (SIGTRAN + SCCP + TCAP_MAPv2v3, the whole stack) and asn1tools (our
ASN.1 modules for TCAP and MAP; M3UA and SCCP through our codecs, which asn1tools does not cover).
"""

from __future__ import annotations

from bench.common import Row, time_interleaved
from gateway.codecs import layers, m3ua, map_asn1, sccp, tcap, tcap_asn1, ussd_string
from gateway.codecs import map as M
from gateway.codecs.sccp import SccpAddress

GW = SccpAddress.gt_e164("491700000001", sccp.SSN_GSMSCF)
MSC = SccpAddress.gt_e164("491720000001", sccp.SSN_MSC)
AC = M.AC_NETWORK_UNSTRUCTURED_SS_V2
MENU = "1. Balance\n2. Buy bundle\n3. Transfer\n4. My number\n0. Exit"
FINAL = "Your balance is 12.50 EUR. Thank you."
OTID = b"\x00\x00\x00\x01"
GW_TID = b"\x0a\x00\x00\x01"


def _begin_bytes() -> bytes:
    begin = tcap.Begin(OTID, tcap.Aarq(AC), (tcap.Invoke(1, 59, M.encode_ussd_arg(M.ussd_arg("*123#",
                                                                                          msisdn="491720000001"))),))
    return layers.encode_data(begin, called=GW, calling=MSC, opc=2, dpc=1, sls=3, routing_context=1)


def ours_decode(data: bytes) -> str:
    d = layers.decode_data(data)
    arg = d.map_values[0]
    return ussd_string.decode(arg.dcs, arg.string)


def ours_continue() -> bytes:
    dcs, octets = ussd_string.encode(MENU)
    msg = tcap.Continue(GW_TID, OTID, tcap.Aare(AC), (tcap.Invoke(2, 60, M.encode_ussd_arg(M.UssdArg(dcs, octets))),))
    return layers.encode_data(msg, called=MSC, calling=GW, opc=1, dpc=2, sls=3, routing_context=1)


def ours_end() -> bytes:
    dcs, octets = ussd_string.encode(FINAL)
    msg = tcap.End(OTID, None, (tcap.ReturnResult(1, 59, M.encode_ussd_res(M.UssdRes(dcs, octets))),))
    return layers.encode_data(msg, called=MSC, calling=GW, opc=1, dpc=2, sls=3, routing_context=1)


def asn1tools_decode(data: bytes) -> str:
    d = m3ua.decode_data(data)
    s = sccp.decode(d.protocol_data.data)
    t = tcap_asn1.decode(s.data)
    inv = t.components[0]  # type: ignore[union-attr]
    arg = map_asn1.decode_ussd_arg(inv.parameter)  # type: ignore[union-attr,arg-type]
    return ussd_string.decode(arg.dcs, arg.string)


def _asn1tools_encode(msg: tcap.TcapMessage) -> bytes:
    udt = sccp.encode(sccp.Udt(1, True, MSC, GW, tcap_asn1.encode(msg)))
    return m3ua.encode_data(1, 2, 3, 2, 0, 3, udt, 1)


def asn1tools_continue() -> bytes:
    dcs, octets = ussd_string.encode(MENU)
    param = map_asn1.encode_ussd_arg(M.UssdArg(dcs, octets))
    return _asn1tools_encode(tcap.Continue(GW_TID, OTID, tcap.Aare(AC), (tcap.Invoke(2, 60, param),)))


def asn1tools_end() -> bytes:
    dcs, octets = ussd_string.encode(FINAL)
    param = map_asn1.encode_ussd_res(M.UssdRes(dcs, octets))
    return _asn1tools_encode(tcap.End(OTID, None, (tcap.ReturnResult(1, 59, param),)))


class Pycrate:
    """The whole stack in pycrate: SIGTRAN (M3UA), SCCP and TCAP_MAPv2v3."""

    def __init__(self) -> None:
        from pycrate_asn1dir import TCAP_MAPv2v3
        from pycrate_mobile import SCCP, SIGTRAN

        self.sigtran = SIGTRAN
        self.sccp = SCCP
        self.tcap = TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message

    def decode(self, data: bytes) -> str:
        from pycrate_mobile import TS23038

        m = self.sigtran.SIGTRAN()
        m.from_bytes(data)
        pd = m["Params"][1]["Val"].get_val()
        s, _ = self.sccp.parse_SCCP(pd[12:])
        self.tcap.from_ber(s["Data"]["Value"].get_val())
        v = self.tcap.get_val()
        arg = v[1]["components"][0][1][1]["argument"][1]
        return str(TS23038.decode_7b(arg["ussd-String"]))

    def encode(self, template: bytes, text: str) -> bytes:
        from pycrate_mobile import TS23038

        # Rebuild a template message with a new text, the way an application of pycrate would.
        m = self.sigtran.SIGTRAN()
        m.from_bytes(template)
        pd = m["Params"][1]["Val"].get_val()
        s, _ = self.sccp.parse_SCCP(pd[12:])
        self.tcap.from_ber(s["Data"]["Value"].get_val())
        v = self.tcap.get_val()
        comp = v[1]["components"][0][1]
        body = comp[1]["argument"][1] if comp[0] == "invoke" else comp[1]["result"]["result"][1]
        body["ussd-String"] = TS23038.encode_7b(text)[0]
        self.tcap.set_val(v)
        s["Data"]["Value"].set_val(self.tcap.to_ber())
        m["Params"][1]["Val"].set_val(pd[:12] + s.to_bytes())
        return bytes(m.to_bytes())


def rows() -> list[Row]:
    begin = _begin_bytes()
    assert ours_decode(begin) == asn1tools_decode(begin) == "*123#"
    assert ours_continue() == asn1tools_continue()
    assert ours_end() == asn1tools_end()
    py = Pycrate()
    assert py.decode(begin).rstrip("\r") == "*123#"
    cont_template, end_template = ours_continue(), ours_end()
    dec = time_interleaved({"ours": lambda: ours_decode(begin), "asn1tools": lambda: asn1tools_decode(begin),
                            "pycrate": lambda: py.decode(begin)}, repeat=30)
    cont = time_interleaved({"ours": ours_continue, "asn1tools": asn1tools_continue,
                             "pycrate": lambda: py.encode(cont_template, MENU)}, repeat=30)
    end = time_interleaved({"ours": ours_end, "asn1tools": asn1tools_end,
                            "pycrate": lambda: py.encode(end_template, FINAL)}, repeat=30)
    rows = []
    for case, times, target in (
        ("full stack decode M3UA->MAP, TC-BEGIN(59) *123#", dec, 10.0),
        ("full stack encode MAP->M3UA, TC-CONTINUE(60) AARE + menu", cont, 8.0),
        ("full stack encode MAP->M3UA, TC-END(59) final text", end, 8.0),
    ):
        ours = times.pop("ours")
        rows.append(Row(case, ours, times, f"<= {target:g} us", ours <= target))
    return rows
