"""M3UA bytes judged by pycrate_mobile.SIGTRAN (an independent implementation of RFC 4666's message format)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrate_mobile import SIGTRAN

from gateway.codecs import m3ua
from tests.test_m3ua import messages

pytestmark = pytest.mark.interop

PYCRATE_TYPES = {
    0: SIGTRAN.TypeMGMT_dict,
    1: SIGTRAN.TypeTRANS_dict,
    2: SIGTRAN.TypeSSNM_dict,
    3: SIGTRAN.TypeASPSM_dict,
    4: SIGTRAN.TypeASPTM_dict,
    9: SIGTRAN.TypeRKM_dict,
}


def pycrate_decode(data: bytes) -> tuple[list[int], list[tuple[int, bytes]]]:
    msg = SIGTRAN.SIGTRAN()
    msg.from_bytes(data)
    header, params = msg.get_val()
    assert msg.to_bytes() == data  # pycrate is lenient: re-encode and compare octets
    return header, [(p[0], p[2]) for p in params]


@given(messages())
@settings(max_examples=300, deadline=None)
def test_pycrate_decodes_what_we_encode(msg: m3ua.Message) -> None:
    data = m3ua.encode(msg)
    (version, _spare, cls, typ, length), params = pycrate_decode(data)
    assert (version, cls, typ, length) == (1, msg.msg_class, msg.msg_type, len(data))
    assert typ in PYCRATE_TYPES[cls]  # pycrate knows this message type of this class
    assert params == [(p.tag, p.value) for p in msg.params]


@given(
    st.integers(0, 2**14 - 1), st.integers(0, 2**14 - 1), st.integers(0, 255), st.integers(0, 15),
    st.binary(max_size=272), st.integers(0, 2**32 - 1),
)
@settings(max_examples=300, deadline=None)
def test_we_decode_pycrate_built_data(opc: int, dpc: int, sls: int, si: int, payload: bytes, rc: int) -> None:
    pd = struct.pack("!IIBBBB", opc, dpc, si, 2, 0, sls) + payload
    pad = -len(pd) & 3
    msg = SIGTRAN.SIGTRAN()
    params = [[6, 8, struct.pack("!I", rc), b""], [528, 4 + len(pd), pd, b"\x00" * pad]]
    msg.set_val([[1, 0, 1, 1, 8 + 8 + 4 + len(pd) + pad], params])
    data = msg.to_bytes()
    decoded = m3ua.decode_data(data)
    assert decoded.routing_context == rc
    assert decoded.protocol_data == m3ua.ProtocolData(opc, dpc, si, 2, 0, sls, payload)
    assert m3ua.encode_data(opc, dpc, si, 2, 0, sls, payload, routing_context=rc) == data


@given(st.sampled_from(sorted((c, t) for c, d in PYCRATE_TYPES.items() for t in d if c != 1)), st.binary(max_size=16))
@settings(max_examples=200, deadline=None)
def test_we_decode_pycrate_built_management(ct: tuple[int, int], info: bytes) -> None:
    cls, typ = ct
    if (cls, typ) not in {(c, t) for c, ts in m3ua.VALID_TYPES.items() for t in ts}:
        return  # pycrate knows types RFC 4666 does not define for M3UA (e.g. SUA's)
    value = info
    pad = -(len(value) + 4) & 3
    msg = SIGTRAN.SIGTRAN()
    msg.set_val([[1, 0, cls, typ, 8 + 4 + len(value) + pad], [[4, 4 + len(value), value, b"\x00" * pad]]])
    decoded = m3ua.decode(msg.to_bytes())
    assert (decoded.msg_class, decoded.msg_type) == (cls, typ)
    assert decoded.get(m3ua.Tag.INFO_STRING) == value
