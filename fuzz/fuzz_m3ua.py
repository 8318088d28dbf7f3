"""M3UA (RFC 4666 §3): the generic decoder with every accessor the stack uses, and the DATA fast path.

Checks: contract; value round trip through the encoders; the DATA fast path agrees with the general decoder;
pycrate's SIGTRAN decoder reads the same header and parameters (differential)."""

from __future__ import annotations

from fuzz.driver import accepts, expect
from gateway.codecs import m3ua

_ACCESSORS = ("routing_contexts", "protocol_data", "affected_point_codes", "error_code", "status", "routing_keys",
              "registration_results", "deregistration_results", "info_string")  # fmt: skip


def _pycrate_view(data: bytes) -> tuple[list[int], list[tuple[int, bytes]]] | None:
    from pycrate_mobile import SIGTRAN

    msg = SIGTRAN.SIGTRAN()
    try:
        msg.from_bytes(data)
    except Exception:
        return None
    header, params = msg.get_val()
    return list(header), [(p[0], bytes(p[2])) for p in params]


def _pycrate(data: bytes, msg: m3ua.Message) -> None:
    view = _pycrate_view(data)
    expect(view is not None, "pycrate refuses an M3UA message we accept", data.hex())
    assert view is not None
    (version, _spare, cls, typ, length), params = view
    expect((version, cls, typ, length) == (1, msg.msg_class, msg.msg_type, len(data)), "pycrate header", view)
    expect(params == [(p.tag, p.value) for p in msg.params], "pycrate parameters", params, msg.params)


def test_one_input(data: bytes) -> None:
    msg = accepts(m3ua.decode, data)
    if msg is not None:
        for name in _ACCESSORS:
            accepts(getattr, msg, name)
        again = m3ua.decode(m3ua.encode(msg))
        expect(again == msg, "M3UA round trip", msg, again)
        if len(data) % 4 == 0:  # else T14: the last parameter's padding is left out of the message length
            _pycrate(data, msg)
    d = accepts(m3ua.decode_data, data)
    if d is not None:
        general = m3ua.decode(data)  # the fast path accepted: the general decoder must agree
        expect(general.protocol_data == d.protocol_data, "DATA fast path vs general", d, general)
        rcs = general.routing_contexts
        expect((rcs[0] if rcs else None) == d.routing_context, "DATA routing context", d, general)
        pd = d.protocol_data
        if max(pd.opc, pd.dpc) < 1 << 32:
            again_d = m3ua.decode_data(m3ua.encode_data(pd.opc, pd.dpc, pd.si, pd.ni, pd.mp, pd.sls, pd.data,
                                                        d.routing_context, d.network_appearance, d.correlation_id))
            expect(again_d == d, "DATA round trip", d, again_d)
