"""TCAP + MAP bytes judged by pycrate (pycrate_asn1dir.TCAP_MAPv2v3, an independent ASN.1 implementation of
Q.773 and TS 29.002). pycrate is lenient, so every decode is also re-encoded and compared octet for octet."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrate_asn1dir import TCAP_MAPv2v3

from gateway.codecs import map as M
from gateway.codecs import tcap
from gateway.codecs.map_address import AddressString, decode_imsi
from tests.strategies import messages

pytestmark = pytest.mark.interop

PY = TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message  # a module-level singleton: not thread-safe
REFUSE = ("noReasonGiven", "invalidDestinationReference", "invalidOriginatingReference")
ABORT_CHOICES = ("userSpecificReason", "userResourceLimitation", "resourceUnavailable",
                 "applicationProcedureCancellation")
RESOURCE = ("shortTermResourceLimitation", "longTermResourceLimitation")
CANCEL = ("handoverCancellation", "radioChannelRelease", "networkPathRelease", "callRelease",
          "associatedProcedureFailure", "tandemDialogueRelease", "remoteOperationsFailure")
PROVIDER = ("abnormalDialogue", "invalidPDU")
PROBLEMS = ("general", "invoke", "returnResult", "returnError")


# ---- pycrate value -> canonical form -------------------------------------------------------------------------


def _addr(b: bytes | None) -> AddressString | None:
    return None if b is None else AddressString.decode(bytes(b))


def _py_map_pdu(ext: dict[str, Any]) -> Any:
    assert ext["direct-reference"] == (0, 4, 0, 0, 1, 1, 1, 1)
    name, (kind, v) = ext["encoding"][1]
    assert name == "MAP-DialoguePDU"
    if kind == "map-open":
        return M.MapOpen(_addr(v.get("destinationReference")), _addr(v.get("originationReference")))
    if kind == "map-accept":
        return M.MapAccept()
    if kind == "map-close":
        return M.MapClose()
    if kind == "map-refuse":
        return M.MapRefuse(REFUSE.index(v["reason"]), v.get("alternativeApplicationContext"))
    if kind == "map-userAbort":
        choice_name, reason = v["map-UserAbortChoice"]
        choice = ABORT_CHOICES.index(choice_name)
        return M.MapUserAbort(choice, RESOURCE.index(reason) if choice == 2 else
                              CANCEL.index(reason) if choice == 3 else None)
    return M.MapProviderAbort(PROVIDER.index(v["map-ProviderAbortReason"]))


def _py_dialogue(dp: dict[str, Any]) -> tuple[Any, ...]:
    _name, (kind, apdu) = dp["encoding"][1]
    ui = tuple(_py_map_pdu(e) for e in apdu.get("user-information", ()))
    if kind == "unidialoguePDU":
        return ("audt", tuple(apdu["application-context-name"]), ui)
    if kind == "dialogueRequest":
        return ("aarq", tuple(apdu["application-context-name"]), ui)
    if kind == "dialogueResponse":
        src, diag = apdu["result-source-diagnostic"]
        return ("aare", tuple(apdu["application-context-name"]), apdu["result"],
                1 if src == "dialogue-service-user" else 2, diag, ui)
    return ("abrt", apdu["abort-source"], ui)


def _py_arg(value: Any) -> Any:
    (module, typ), v = value
    if typ == "USSD-Arg":
        ap = v.get("alertingPattern")
        return M.UssdArg(v["ussd-DataCodingScheme"][0], v["ussd-String"], None if ap is None else ap[0],
                         _addr(v.get("msisdn")))
    if typ == "USSD-Res":
        return M.UssdRes(v["ussd-DataCodingScheme"][0], v["ussd-String"])
    if typ == "RoutingInfoForSM-Arg":
        return M.RoutingInfoForSmArg(_addr(v["msisdn"]), v["sm-RP-PRI"], _addr(v["serviceCentreAddress"]),
                                     "gprsSupportIndicator" in v, v.get("sm-RP-MTI"), v.get("sm-RP-SMEA"))
    if typ == "RoutingInfoForSM-Res":
        loc = v["locationInfoWithLMSI"]
        add = loc.get("additional-Number")
        return M.RoutingInfoForSmRes(decode_imsi(v["imsi"]), _addr(loc["networkNode-Number"]), loc.get("lmsi"),
                                     "gprsNodeIndicator" in loc, None if add is None else _addr(add[1]),
                                     add is not None and add[0] == "sgsn-Number")
    raise AssertionError(f"unexpected MAP type {module}.{typ}")


def _py_component(c: tuple[str, Any]) -> tuple[Any, ...]:
    if c[0] == "returnResultNotLast":
        kind, v, last = "returnResult", c[1], False
    else:
        kind, v = c[1]
        last = True
    iid = v["invokeId"][1] if v["invokeId"][0] == "present" else None
    if kind == "invoke":
        linked = v["linkedId"][1] if "linkedId" in v else None
        return ("invoke", iid, linked, v["opcode"][1], _py_arg(v["argument"]) if "argument" in v else None)
    if kind == "returnResult":
        r = v.get("result")
        if r is None:
            return ("rr", iid, last, None, None)
        return ("rr", iid, last, r["opcode"][1], _py_arg(r["result"]))
    if kind == "returnError":
        return ("re", iid, v["errcode"][1], "parameter" in v)
    pkind, pval = v["problem"]
    return ("reject", iid, PROBLEMS.index(pkind), pval)


def canon_pycrate(value: tuple[str, dict[str, Any]]) -> tuple[Any, ...]:
    kind, body = value
    if kind == "abort":
        reason = body.get("reason")
        if reason is None:
            return ("abort", body["dtid"], None)
        if reason[0] == "p-abortCause":
            return ("abort", body["dtid"], reason[1])
        return ("abort", body["dtid"], _py_dialogue(reason[1]))
    dlg = _py_dialogue(body["dialoguePortion"]) if "dialoguePortion" in body else None
    comps = tuple(_py_component(c) for c in body.get("components", ()))
    return (kind, body.get("otid"), body.get("dtid"), dlg, comps)


# ---- our value -> canonical form -----------------------------------------------------------------------------


def _our_dialogue(d: tcap.Dialogue) -> tuple[Any, ...]:
    ui = tuple(M.decode_dialogue_external(e) for e in d.user_information)
    if isinstance(d, tcap.Audt):
        return ("audt", d.application_context, ui)
    if isinstance(d, tcap.Aarq):
        return ("aarq", d.application_context, ui)
    if isinstance(d, tcap.Aare):
        return ("aare", d.application_context, d.result, d.diagnostic_source, d.diagnostic, ui)
    return ("abrt", d.abort_source, ui)


def _our_component(c: tcap.Component) -> tuple[Any, ...]:
    if isinstance(c, tcap.Invoke):
        return ("invoke", c.invoke_id, c.linked_id, c.opcode, M.decode_argument(c.opcode, c.parameter))
    if isinstance(c, tcap.ReturnResult):
        res = None if c.opcode is None else M.decode_result(c.opcode, c.parameter)
        return ("rr", c.invoke_id, c.last, c.opcode, res)
    if isinstance(c, tcap.ReturnError):
        return ("re", c.invoke_id, c.error_code, c.parameter is not None)
    return ("reject", c.invoke_id, c.problem_kind, c.problem)


def canon_ours(msg: tcap.TcapMessage) -> tuple[Any, ...]:
    if isinstance(msg, tcap.Abort):
        reason: Any = msg.p_abort_cause if msg.dialogue is None else _our_dialogue(msg.dialogue)
        return ("abort", msg.dtid, reason)
    dlg = None if msg.dialogue is None else _our_dialogue(msg.dialogue)
    comps = tuple(_our_component(c) for c in msg.components)
    names = {tcap.Begin: "begin", tcap.Continue: "continue", tcap.End: "end", tcap.Unidirectional: "unidirectional"}
    return (names[type(msg)], getattr(msg, "otid", None), getattr(msg, "dtid", None), dlg, comps)


def pycrate_decode(data: bytes) -> tuple[str, dict[str, Any]]:
    PY.from_ber(data)
    value = PY.get_val()
    PY.set_val(value)
    assert PY.to_ber() == data, "pycrate re-encodes what it decoded differently"
    return value  # type: ignore[no-any-return]


@given(messages.filter(lambda m: not (isinstance(m, tcap.Abort) and m.p_abort_cause is None and m.dialogue is None)))
@settings(max_examples=300, deadline=None)
def test_pycrate_decodes_every_kind_we_encode(msg: tcap.TcapMessage) -> None:
    data = tcap.encode(msg)
    assert canon_pycrate(pycrate_decode(data)) == canon_ours(msg)


def test_pycrate_decodes_an_empty_abort() -> None:
    data = tcap.encode(tcap.Abort(b"\x01\x02\x03\x04"))
    assert canon_pycrate(pycrate_decode(data)) == ("abort", b"\x01\x02\x03\x04", None)


def _mutate(value: Any, data: st.DataObject) -> Any:
    """Replace transaction IDs, invoke IDs, USSD strings, DCS and numbers inside a pycrate value."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("otid", "dtid"):
                out[k] = data.draw(st.binary(min_size=1, max_size=4))
            elif k == "invokeId" and v[0] == "present":
                out[k] = ("present", data.draw(st.integers(-128, 127)))
            elif k == "ussd-String":
                out[k] = data.draw(st.binary(min_size=1, max_size=160))
            elif k == "ussd-DataCodingScheme":
                out[k] = bytes((data.draw(st.integers(0, 255)),))
            elif k in ("msisdn", "networkNode-Number", "serviceCentreAddress"):
                out[k] = AddressString.e164(data.draw(st.text(alphabet="0123456789", min_size=1,
                                                               max_size=15))).encode()
            else:
                out[k] = _mutate(v, data)
        return out
    if isinstance(value, tuple):
        return tuple(_mutate(v, data) for v in value)
    if isinstance(value, list):
        return [_mutate(v, data) for v in value]
    return value


@given(messages.filter(lambda m: not isinstance(m, tcap.Abort)), st.data())
@settings(max_examples=300, deadline=None)
def test_we_decode_pycrate_built_messages(seed: tcap.TcapMessage, data: st.DataObject) -> None:
    PY.from_ber(tcap.encode(seed))
    value = _mutate(PY.get_val(), data)
    PY.set_val(value)
    built = PY.to_ber()  # pycrate's encoder built these octets
    ours = tcap.decode(built)
    assert canon_ours(ours) == canon_pycrate(value)
    assert tcap.encode(ours) == built
