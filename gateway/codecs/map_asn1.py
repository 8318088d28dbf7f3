"""The asn1tools reference path for the MAP types (TS 29.002), over gateway/codecs/asn1/map.asn.

The hand-tuned codecs of map_ussd / map_dialogue / map_sms are property-tested to produce the same octets.
"""

from __future__ import annotations

from typing import Any

from gateway.codecs.asn1 import compiled
from gateway.codecs.errors import MapError
from gateway.codecs.map_address import AddressString, decode_imsi, encode_imsi
from gateway.codecs.map_dialogue import (
    MAP_DIALOGUE_AS,
    MapAccept,
    MapClose,
    MapDialoguePdu,
    MapOpen,
    MapProviderAbort,
    MapRefuse,
    MapUserAbort,
)
from gateway.codecs.map_sms import RoutingInfoForSmArg, RoutingInfoForSmRes
from gateway.codecs.map_ussd import UssdArg, UssdRes, _check_string

_USER_ABORT = ("userSpecificReason", "userResourceLimitation", "resourceUnavailable",
               "applicationProcedureCancellation")  # fmt: skip
_REFUSE = ("noReasonGiven", "invalidDestinationReference", "invalidOriginatingReference")
_RESOURCE = ("shortTermResourceLimitation", "longTermResourceLimitation")
_CANCEL = ("handoverCancellation", "radioChannelRelease", "networkPathRelease", "callRelease",
           "associatedProcedureFailure", "tandemDialogueRelease", "remoteOperationsFailure")  # fmt: skip
_PROVIDER = ("abnormalDialogue", "invalidPDU")


def _spec() -> Any:
    return compiled("map")


def encode_ussd_arg(arg: UssdArg) -> bytes:
    v: dict[str, Any] = {"ussd-DataCodingScheme": bytes((arg.dcs,)), "ussd-String": arg.string}
    if arg.alerting_pattern is not None:
        v["alertingPattern"] = bytes((arg.alerting_pattern,))
    if arg.msisdn is not None:
        v["msisdn"] = arg.msisdn.encode()
    return bytes(_spec().encode("USSD-Arg", v))


def decode_ussd_arg(param: bytes) -> UssdArg:
    try:
        v = _spec().decode("USSD-Arg", param)
    except Exception as exc:
        raise MapError(f"asn1tools: {exc}") from None
    ap = v.get("alertingPattern")
    ms = v.get("msisdn")
    if ap is not None and len(ap) != 1:
        raise MapError("alertingPattern is not one octet")  # TS 29.002 §17.7.3 AlertingPattern (SIZE (1))
    return UssdArg(_dcs(v), _ussd_string(v), None if ap is None else ap[0],
                   None if ms is None else AddressString.decode(bytes(ms)))  # fmt: skip


def _dcs(v: dict[str, Any]) -> int:
    dcs = v["ussd-DataCodingScheme"]
    if len(dcs) != 1:  # TS 29.002 §17.7.4 USSD-DataCodingScheme ::= OCTET STRING (SIZE (1))
        raise MapError("ussd-DataCodingScheme is not one octet")
    return int(dcs[0])


def _ussd_string(v: dict[str, Any]) -> bytes:
    string = bytes(v["ussd-String"])
    _check_string(string)  # TS 29.002 §17.7.4 USSD-String (SIZE (1..maxUSSD-StringLength))
    return string


def encode_ussd_res(res: UssdRes) -> bytes:
    return bytes(_spec().encode("USSD-Res", {"ussd-DataCodingScheme": bytes((res.dcs,)), "ussd-String": res.string}))


def decode_ussd_res(param: bytes) -> UssdRes:
    try:
        v = _spec().decode("USSD-Res", param)
    except Exception as exc:
        raise MapError(f"asn1tools: {exc}") from None
    return UssdRes(_dcs(v), _ussd_string(v))


def encode_dialogue_external(pdu: MapDialoguePdu) -> bytes:
    if isinstance(pdu, MapOpen):
        o: dict[str, Any] = {}
        if pdu.destination_reference is not None:
            o["destinationReference"] = pdu.destination_reference.encode()
        if pdu.origination_reference is not None:
            o["originationReference"] = pdu.origination_reference.encode()
        choice: tuple[str, Any] = ("map-open", o)
    elif isinstance(pdu, MapAccept):
        choice = ("map-accept", {})
    elif isinstance(pdu, MapClose):
        choice = ("map-close", {})
    elif isinstance(pdu, MapRefuse):
        r: dict[str, Any] = {"reason": _REFUSE[pdu.reason]}
        if pdu.alternative_application_context is not None:
            r["alternativeApplicationContext"] = ".".join(map(str, pdu.alternative_application_context))
        choice = ("map-refuse", r)
    elif isinstance(pdu, MapUserAbort):
        if pdu.choice == 2:
            reason: Any = _RESOURCE[pdu.reason or 0]
        elif pdu.choice == 3:
            reason = _CANCEL[pdu.reason or 0]
        else:
            reason = None
        choice = ("map-userAbort", {"map-UserAbortChoice": (_USER_ABORT[pdu.choice], reason)})
    else:
        choice = ("map-providerAbort", {"map-ProviderAbortReason": _PROVIDER[pdu.reason]})
    ext = {"direct-reference": ".".join(map(str, MAP_DIALOGUE_AS)), "encoding": ("single-ASN1-type", choice)}
    return bytes(_spec().encode("MAP-External", ext))


def decode_dialogue_external(external: bytes) -> MapDialoguePdu:
    try:
        ext = _spec().decode("MAP-External", external)
    except Exception as exc:
        raise MapError(f"asn1tools: {exc}") from None
    kind, v = ext["encoding"][1]
    if kind == "map-open":
        d = v.get("destinationReference")
        o = v.get("originationReference")
        return MapOpen(None if d is None else AddressString.decode(bytes(d)),
                       None if o is None else AddressString.decode(bytes(o)))  # fmt: skip
    if kind == "map-accept":
        return MapAccept()
    if kind == "map-close":
        return MapClose()
    if kind == "map-refuse":
        alt = v.get("alternativeApplicationContext")
        return MapRefuse(_REFUSE.index(v["reason"]), None if alt is None else tuple(int(x) for x in alt.split(".")))
    if kind == "map-userAbort":
        name, reason = v["map-UserAbortChoice"]
        choice = _USER_ABORT.index(name)
        if choice == 2:
            return MapUserAbort(2, _RESOURCE.index(reason))
        if choice == 3:
            return MapUserAbort(3, _CANCEL.index(reason))
        return MapUserAbort(choice, None)
    return MapProviderAbort(_PROVIDER.index(v["map-ProviderAbortReason"]))


def encode_sri_sm_arg(arg: RoutingInfoForSmArg) -> bytes:
    v: dict[str, Any] = {
        "msisdn": arg.msisdn.encode(),
        "sm-RP-PRI": arg.sm_rp_pri,
        "serviceCentreAddress": arg.service_centre_address.encode(),
    }
    if arg.gprs_support_indicator:
        v["gprsSupportIndicator"] = None
    if arg.sm_rp_mti is not None:
        v["sm-RP-MTI"] = arg.sm_rp_mti
    if arg.sm_rp_smea is not None:
        v["sm-RP-SMEA"] = arg.sm_rp_smea
    return bytes(_spec().encode("RoutingInfoForSM-Arg", v))


def encode_sri_sm_res(res: RoutingInfoForSmRes) -> bytes:
    loc: dict[str, Any] = {"networkNode-Number": res.network_node_number.encode()}
    if res.lmsi is not None:
        loc["lmsi"] = res.lmsi
    if res.gprs_node_indicator:
        loc["gprsNodeIndicator"] = None
    if res.additional_number is not None:
        loc["additional-Number"] = ("sgsn-Number" if res.additional_is_sgsn else "msc-Number",
                                    res.additional_number.encode())  # fmt: skip
    return bytes(_spec().encode("RoutingInfoForSM-Res", {"imsi": encode_imsi(res.imsi), "locationInfoWithLMSI": loc}))


def decode_sri_sm_res(param: bytes) -> RoutingInfoForSmRes:
    try:
        v = _spec().decode("RoutingInfoForSM-Res", param)
    except Exception as exc:
        raise MapError(f"asn1tools: {exc}") from None
    loc = v["locationInfoWithLMSI"]
    add = loc.get("additional-Number")
    return RoutingInfoForSmRes(
        decode_imsi(bytes(v["imsi"])),
        AddressString.decode(bytes(loc["networkNode-Number"])),
        None if loc.get("lmsi") is None else bytes(loc["lmsi"]),
        "gprsNodeIndicator" in loc,
        None if add is None else AddressString.decode(bytes(add[1])),
        add is not None and add[0] == "sgsn-Number",
    )
