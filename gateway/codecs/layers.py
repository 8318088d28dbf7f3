"""One message through every layer: M3UA DATA -> SCCP unitdata -> TCAP -> MAP, and back.

Pure composition of the per-layer codecs, for the tools (``ussd-gateway decode``), the benchmarks and the tests.
The stack state machines call the layers one by one instead, since each layer answers its own errors.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gateway.codecs import m3ua, sccp, tcap
from gateway.codecs import map as map_codec
from gateway.codecs.values import typed_value

SI_SCCP = 3  # MTP3 service indicator for SCCP (Q.704 §14.2.1)
NI_INTERNATIONAL = 0
NI_NATIONAL = 2


@typed_value
class Decoded(NamedTuple):
    m3ua: m3ua.Data
    sccp: sccp.SccpMessage
    tcap: tcap.TcapMessage
    map_values: tuple[Any, ...]  # per component: the decoded MAP argument/result (or Unknown), None if none
    map_dialogue: map_codec.MapDialoguePdu | None


def decode_data(data: bytes) -> Decoded:
    """Decode an M3UA DATA carrying SCCP unitdata with TCAP and MAP inside."""
    d = m3ua.decode_data(data)
    s = sccp.decode(d.protocol_data.data)
    t = tcap.decode(s.data)
    values, dialogue_pdu = decode_map(t)
    return Decoded(d, s, t, values, dialogue_pdu)


def decode_map(t: tcap.TcapMessage) -> tuple[tuple[Any, ...], map_codec.MapDialoguePdu | None]:
    """The MAP values of a TCAP message's components (argument, result, error info or None per component) and
    the MAP-DialoguePDU of its dialogue portion."""
    values: list[Any] = []
    if not isinstance(t, tcap.Abort):
        for c in t.components:
            if isinstance(c, tcap.Invoke):
                values.append(map_codec.decode_argument(c.opcode, c.parameter))
            elif isinstance(c, tcap.ReturnResult) and c.opcode is not None:
                values.append(map_codec.decode_result(c.opcode, c.parameter))
            elif isinstance(c, tcap.ReturnError):
                values.append(map_codec.decode_error(c.error_code if isinstance(c.error_code, int) else -1,
                                                     c.parameter))  # fmt: skip
            else:
                values.append(None)
    dialogue_pdu = None
    if t.dialogue is not None and t.dialogue.user_information:
        dialogue_pdu = map_codec.find_map_dialogue(t.dialogue.user_information)
    return tuple(values), dialogue_pdu


def encode_data(
    msg: tcap.TcapMessage,
    *,
    called: sccp.SccpAddress,
    calling: sccp.SccpAddress,
    opc: int,
    dpc: int,
    sls: int = 0,
    routing_context: int | None = None,
    protocol_class: int = 1,
    return_on_error: bool = True,
    ni: int = NI_NATIONAL,
) -> bytes:
    """TCAP message -> SCCP UDT -> M3UA DATA (one message: the caller segments longer ones with sccp.build_unitdata)."""
    udt = sccp.encode(sccp.Udt(protocol_class, return_on_error, called, calling, tcap.encode(msg)))
    return m3ua.encode_data(opc, dpc, SI_SCCP, ni, 0, sls, udt, routing_context)
