"""MAP codecs (TS 29.002): hand-tuned paths against the asn1tools reference, vectors, tolerant decoding."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codecs import map as M
from gateway.codecs import map_asn1, tcap
from gateway.codecs.errors import CodecError, MapError
from gateway.codecs.map_address import AddressString, decode_tbcd, encode_tbcd
from tests.strategies import addresses, map_dialogues, sri_args, sri_results, ussd_args, ussd_results
from tests.support.vectors import vector_hex


@given(ussd_args)
@settings(max_examples=300, deadline=None)
def test_ussd_arg_equals_asn1tools(arg: M.UssdArg) -> None:
    ours = M.encode_ussd_arg(arg)
    assert ours == map_asn1.encode_ussd_arg(arg)
    assert M.decode_ussd_arg(ours) == arg == map_asn1.decode_ussd_arg(ours)


@given(ussd_results)
@settings(max_examples=300, deadline=None)
def test_ussd_res_equals_asn1tools(res: M.UssdRes) -> None:
    ours = M.encode_ussd_res(res)
    assert ours == map_asn1.encode_ussd_res(res)
    assert M.decode_ussd_res(ours) == res == map_asn1.decode_ussd_res(ours)


@given(map_dialogues)
@settings(max_examples=300, deadline=None)
def test_dialogue_pdu_equals_asn1tools(pdu: M.MapDialoguePdu) -> None:
    ours = M.encode_dialogue_external(pdu)
    assert ours == map_asn1.encode_dialogue_external(pdu)
    assert M.decode_dialogue_external(ours) == pdu == map_asn1.decode_dialogue_external(ours)


@given(sri_args, sri_results)
@settings(max_examples=300, deadline=None)
def test_sri_sm_equals_asn1tools(arg: M.RoutingInfoForSmArg, res: M.RoutingInfoForSmRes) -> None:
    assert M.encode_sri_sm_arg(arg) == map_asn1.encode_sri_sm_arg(arg)
    assert M.decode_sri_sm_arg(M.encode_sri_sm_arg(arg)) == arg
    assert M.encode_sri_sm_res(res) == map_asn1.encode_sri_sm_res(res)
    assert M.decode_sri_sm_res(M.encode_sri_sm_res(res)) == res == map_asn1.decode_sri_sm_res(M.encode_sri_sm_res(res))


@given(addresses)
@settings(max_examples=300, deadline=None)
def test_address_roundtrip(addr: AddressString) -> None:
    assert AddressString.decode(addr.encode()) == addr._replace(digits=addr.digits.lower())


def test_tbcd_vectors() -> None:
    # TS 29.002 §17.7.8: first digit in bits 1-4, filler 1111 for an odd count; * # a b c are 1010..1110.
    assert encode_tbcd("12345") == bytes.fromhex("2143f5")
    assert encode_tbcd("*#ab") == bytes.fromhex("badc")
    assert decode_tbcd(bytes.fromhex("56051124006913f6")) == "655011420096316"
    with pytest.raises(MapError):
        encode_tbcd("12x")
    with pytest.raises(MapError):
        decode_tbcd(bytes.fromhex("f121"))


def test_wiki_capture_hlr_relay() -> None:
    raw = vector_hex("wiki_m2ua_ussd.hex")
    udt_data = raw[17:]
    start = udt_data.index(b"\x62\x6a\x48\x04\x2f\x3b\x46\x02")
    msg = tcap.decode(udt_data[start:])
    assert isinstance(msg, tcap.Begin) and msg.otid.hex() == "2f3b4602"
    assert isinstance(msg.dialogue, tcap.Aarq) and msg.dialogue.application_context == M.AC_NETWORK_UNSTRUCTURED_SS_V2
    pdu = M.find_map_dialogue(msg.dialogue.user_information)
    assert isinstance(pdu, M.MapOpen)
    assert pdu.destination_reference == AddressString.imsi("655011420096316")
    assert pdu.destination_reference.encode().hex() == "9656051124006913f6"
    inv = msg.components[0]
    assert isinstance(inv, tcap.Invoke) and inv.invoke_id == 1 and inv.opcode == 59
    arg = M.decode_argument(inv.opcode, inv.parameter)
    assert isinstance(arg, M.UssdArg) and arg.dcs == 0x0F
    assert arg.text() == "*140*0761241377#"
    assert arg.msisdn == AddressString.e164("27761485722")


def test_go_short_vector_open_info() -> None:
    msg = tcap.decode(vector_hex("go_tcap_short.hex"))
    assert isinstance(msg, tcap.Begin) and isinstance(msg.dialogue, tcap.Aarq)
    pdu = M.find_map_dialogue(msg.dialogue.user_information)
    assert pdu == M.MapOpen(AddressString.e164("123456789"), AddressString.e164("123456789"))
    inv = msg.components[0]
    assert isinstance(inv, tcap.Invoke)
    arg = M.decode_argument(inv.opcode, inv.parameter)
    assert arg.text() == "test" and arg.string == bytes.fromhex("f4f29c0e")
    assert arg.msisdn == AddressString.e164("1111111111111")


def test_long_form_and_extensions_tolerated() -> None:
    # USSD-Arg with a long-form length, an unknown extension field after msisdn, and an indefinite SEQUENCE.
    base = bytes.fromhex("04010f0405aa986c3602800791947102000010")
    long_form = b"\x30\x81" + bytes((len(base) + 3,)) + base + b"\x9f\x20\x00"
    assert M.decode_ussd_arg(long_form) == M.decode_ussd_arg(b"\x30" + bytes((len(base),)) + base)
    assert M.decode_ussd_arg(b"\x30\x80" + base + b"\x00\x00").text() == "*123#"


def test_unknown_operation_is_raw_and_not_served() -> None:
    assert not M.serves(2)
    assert M.decode_argument(2, b"\x30\x00") == M.Unknown(2, b"\x30\x00")
    assert M.serves(59) and M.operation_name(59) == "processUnstructuredSS-Request"


@pytest.mark.parametrize("param", [b"", b"\x31\x00", b"\x30\x03\x04\x01\x0f", b"\x30\x06\x04\x02\x0f\x0f\x04\x00",
                                   b"\x30\x05\x04\x01\x0f\x04\x05"])
def test_mistyped_ussd_arg_raises_map_error(param: bytes) -> None:
    with pytest.raises(MapError):
        M.decode_ussd_arg(param)


def test_errors_with_and_without_parameters() -> None:
    for code, diag in ((34, 1), (6, 2), (1, 0), (13, 1), (27, 3)):
        param = M.encode_error(code, diag)
        info = M.decode_error(code, param)
        assert info.diagnostic == diag and info.code == code
    assert M.decode_error(72, None).name == "ussd_busy"
    # The extensible form of systemFailure: SEQUENCE { networkResource }.
    assert M.decode_error(34, bytes.fromhex("3003 0a0102".replace(" ", ""))).diagnostic == 2
    assert M.decode_error(34, b"\xff").diagnostic is None  # garbage kept raw, never refused


@given(st.binary(max_size=60))
@settings(max_examples=500, deadline=None)
def test_fuzz(param: bytes) -> None:
    for fn in (M.decode_ussd_arg, M.decode_ussd_res, M.decode_sri_sm_arg, M.decode_sri_sm_res,
               M.decode_dialogue_external):
        with contextlib.suppress(CodecError):
            fn(param)
    M.decode_error(34, param)


# ---- defects the fuzzers found (fuzz/crashers/map, fuzz/crashers/tcap, fuzz/crashers/layers) --------------------


def test_ussd_arg_ending_in_a_lone_0x80_is_a_map_error() -> None:
    # The fast path read the length octet of msisdn [0] past the end of the parameter (IndexError).
    with pytest.raises(MapError):
        M.decode_ussd_arg(bytes.fromhex("300704010f0401aa80"))


def test_tc_begin_with_a_truncated_ussd_arg_is_refused_with_codec_errors_only() -> None:
    from gateway.codecs import layers
    from tests.support import handmade

    begin = handmade.tc_begin([handmade.ussd_invoke(1, parameter=bytes.fromhex("300704010f0401aa80"))])
    assert len(begin) < 100
    inv = tcap.decode(begin).components[0]  # type: ignore[union-attr]
    with pytest.raises(MapError):
        M.decode_argument(inv.opcode, inv.parameter)  # type: ignore[union-attr]
    with pytest.raises(MapError):
        layers.decode_data(handmade.ussd_begin(begin))


@pytest.mark.parametrize("param", ["300604000401aa", "300904020f0f0401aa", "300904010f0401aa0400"])
def test_asn1tools_ussd_arg_checks_the_sizes_the_hand_tuned_path_checks(param: str) -> None:
    # empty DCS (IndexError before), two-octet DCS, empty alertingPattern: TS 29.002 §17.7.4, §17.7.3 SIZE (1)
    with pytest.raises(MapError):
        map_asn1.decode_ussd_arg(bytes.fromhex(param))
    with pytest.raises(MapError):
        M.decode_ussd_arg(bytes.fromhex(param))


def test_asn1tools_ussd_res_with_an_empty_dcs_is_a_map_error() -> None:
    with pytest.raises(MapError):
        map_asn1.decode_ussd_res(bytes.fromhex("300504000401aa"))


@pytest.mark.parametrize("code", [34, 13, 6, 1, 27])
@pytest.mark.parametrize("diagnostic", [0, 127, 128, 255, 256, 32767])
def test_map_error_diagnostics_beyond_one_octet_round_trip(code: int, diagnostic: int) -> None:
    # encode_error put the diagnostic in one octet (ValueError for 256 and up, which decode_error reads from 2)
    assert M.decode_error(code, M.encode_error(code, diagnostic)).diagnostic == diagnostic


def test_map_error_bare_enumerated_longer_than_two_octets_is_kept_raw() -> None:
    info = M.decode_error(13, bytes.fromhex("0a041b308001"))
    assert info.diagnostic is None and info.raw == bytes.fromhex("0a041b308001")


@pytest.mark.parametrize("fields", ["88012a", "8802000a", "880100ff", "8800"])
def test_sri_sm_arg_mti_is_an_integer_0_to_10(fields: str) -> None:
    # TS 29.002 §17.7.6 SM-RP-MTI ::= INTEGER (0..10): any length and value came through (and 256 and up then
    # raised ValueError on re-encoding); pycrate refuses them (fuzz/crashers/layers)
    good = M.encode_sri_sm_arg(M.RoutingInfoForSmArg(AddressString.e164("4917"), True, AddressString.e164("4918")))
    body = good[2:] + bytes.fromhex(fields)
    with pytest.raises(MapError):
        M.decode_sri_sm_arg(bytes((0x30, len(body))) + body)


def test_sri_sm_arg_sm_rp_pri_is_a_one_octet_boolean() -> None:
    with pytest.raises(MapError):  # X.690 §8.2.1; an empty one read as True
        M.decode_sri_sm_arg(bytes.fromhex("300c" "8003914781" "8100" "8203914781"))
    assert M.decode_sri_sm_arg(bytes.fromhex("3010" "8003914781" "810101" "8203914781" "880101")).sm_rp_mti == 1
