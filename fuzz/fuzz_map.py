"""MAP arguments, results and errors of every operation the gateway decodes (gateway/codecs/map.py, map_ussd.py,
map_sms.py, map_errors.py, map_address.py) and their asn1tools reference path (map_asn1.py).

Octet 0 picks the decoder, the rest is the parameter (for errors octet 1 is the error code; for the registry
octet 1 is the operation code). Checks: contract; fast path vs general path; value round trip through the
encoders; on canonical input the asn1tools path and pycrate (TCAP_MAPv2v3) read the same value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fuzz import _tolerances
from fuzz.driver import Finding, accepts, expect
from gateway.codecs import map as M
from gateway.codecs import map_address, map_asn1, map_errors, map_sms, map_ussd
from gateway.codecs.errors import CodecError


def _pycrate(type_name: str, data: bytes, ours: Any) -> None:
    from pycrate_asn1dir import TCAP_MAPv2v3 as T

    from tests.interop.test_tcap_map_pycrate import _py_arg

    module = T.MAP_SS_DataTypes if type_name.startswith("USSD") else T.MAP_SM_DataTypes
    obj = getattr(module, type_name.replace("-", "_"))
    try:
        obj.from_ber(data)
        value = obj.get_val()
        theirs = _py_arg((("MAP", type_name), value))
    except CodecError:
        return  # pycrate accepts an AddressString we refuse: not this check's business (round trip covers ours)
    except Exception as exc:
        if _tolerances.isdn_address_too_long(ours):
            return
        raise Finding(f"pycrate refuses a {type_name} we accept: {exc!r} {data.hex()}") from None
    expect(theirs == ours, f"pycrate reads another {type_name}", data.hex(), theirs, ours)


def _text(value: map_ussd.UssdArg | map_ussd.UssdRes) -> None:
    accepts(value.text)  # what the stack does with every USSD value: return or CodecError


def _ussd_arg(p: bytes) -> None:
    ref = accepts(map_asn1.decode_ussd_arg, p)
    arg = accepts(map_ussd.decode_ussd_arg, p)
    if arg is None:
        return
    _text(arg)
    general = map_ussd._decode_ussd_arg(p)
    expect(general == arg, "USSD-Arg fast path vs general path", arg, general)
    encoded = map_ussd.encode_ussd_arg(arg)
    again = map_ussd.decode_ussd_arg(encoded)
    expect(again == arg, "USSD-Arg round trip", arg, again)
    if encoded == p:
        expect(ref == arg, "asn1tools reads another USSD-Arg", p.hex(), arg, ref)
        _pycrate("USSD-Arg", p, arg)


def _ussd_res(p: bytes) -> None:
    ref = accepts(map_asn1.decode_ussd_res, p)
    res = accepts(map_ussd.decode_ussd_res, p)
    if res is None:
        return
    _text(res)
    dcs, string, _, _ = map_ussd._fields(p)
    expect(res == map_ussd.UssdRes(dcs, string), "USSD-Res fast path vs general path", res)
    encoded = map_ussd.encode_ussd_res(res)
    expect(map_ussd.decode_ussd_res(encoded) == res, "USSD-Res round trip", res)
    if encoded == p:
        expect(ref == res, "asn1tools reads another USSD-Res", p.hex(), res, ref)
        _pycrate("USSD-Res", p, res)


def _sri_arg(p: bytes) -> None:
    arg = accepts(map_sms.decode_sri_sm_arg, p)
    if arg is None:
        return
    encoded = map_sms.encode_sri_sm_arg(arg)
    again = map_sms.decode_sri_sm_arg(encoded)
    expect(again == arg, "RoutingInfoForSM-Arg round trip", arg, again)
    if encoded == p:
        expect(map_asn1.encode_sri_sm_arg(arg) == p, "asn1tools encodes another RoutingInfoForSM-Arg", arg)
        _pycrate("RoutingInfoForSM-Arg", p, arg)


def _sri_res(p: bytes) -> None:
    ref = accepts(map_asn1.decode_sri_sm_res, p)
    res = accepts(map_sms.decode_sri_sm_res, p)
    if res is None:
        return
    encoded = accepts(map_sms.encode_sri_sm_res, res)
    if encoded is None:
        return  # an IMSI the encoder refuses (README "Tolerances": decode_imsi reads any TBCD-STRING (SIZE 3..8))
    again = map_sms.decode_sri_sm_res(encoded)
    expect(again == res, "RoutingInfoForSM-Res round trip", res, again)
    if encoded == p:
        expect(ref == res, "asn1tools reads another RoutingInfoForSM-Res", p.hex(), res, ref)
        _pycrate("RoutingInfoForSM-Res", p, res)


def _error(p: bytes) -> None:
    if not p:
        return
    code, param = p[0], p[1:]
    info = map_errors.decode_error(code, param)
    expect(info.code == code and info.raw == param, "MAP error keeps its code and parameter", info)
    _ = info.name
    if info.diagnostic is not None and info.diagnostic < 0x8000:  # README "Tolerances" T6
        encoded = map_errors.encode_error(code, info.diagnostic)
        again = map_errors.decode_error(code, encoded)
        expect(again.diagnostic == info.diagnostic, "MAP error diagnostic round trip", info, again)


def _address(p: bytes) -> None:
    a = accepts(map_address.AddressString.decode, p)
    if a is not None:
        again = map_address.AddressString.decode(a.encode())
        expect(again == a, "AddressString round trip", a, again)
    imsi = accepts(map_address.decode_imsi, p)
    if imsi is not None and imsi.isdigit() and 6 <= len(imsi) <= 15:
        expect(map_address.decode_imsi(map_address.encode_imsi(imsi)) == imsi, "IMSI round trip", imsi)


def _registry(p: bytes) -> None:
    if not p:
        return
    opcode, param = p[0], p[1:] or None
    arg = accepts(M.decode_argument, opcode, param)
    if arg is not None:
        expect(M.serves(opcode) != isinstance(arg, M.Unknown), "served operations decode typed", opcode, arg)
    accepts(M.decode_result, opcode, param)
    _ = M.operation_name(opcode)


_CASES: tuple[Callable[[bytes], None], ...] = (_ussd_arg, _ussd_res, _sri_arg, _sri_res, _error, _address, _registry)


def test_one_input(data: bytes) -> None:
    if data:
        _CASES[data[0] % len(_CASES)](data[1:])
