"""Live malformed-input suite: the real daemon (SG, routing context 1, point code 1) over TCP on loopback.

Each case of docs/m3ua-conformance.md that can be put on the wire is sent by a minimal handwritten ASP on an
association in the state the case needs; the exact answer is decoded and checked (class/type, error code, the
routing context or diagnostic where the RFC gives one). Then a normal ``*123#`` dial must still get the demo menu:
on the SAME association when the spec keeps it (re-activated with ASPAC, or brought up again, if the case moved the
ASP to ASP-INACTIVE or ASP-DOWN), on a NEW one when the case closes it (a TCP header the framer cannot
resynchronise from).
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.codecs import m3ua
from gateway.codecs.m3ua import ErrorCode, Tag
from gateway.config.load import load
from tests.support.asp import GW_PC, MENU, NET_PC, RC, Asp, data_message, enc, header, raw, tlv, u32
from tests.support.daemon import default_config, running

# ---- the cases ----------------------------------------------------------------------------------------------

# What the case does to the association (and so how the dial afterwards is reached):
KEEPS, INACTIVE, DOWN, CLOSES = "keeps", "inactive", "down", "closes"


@dataclass(frozen=True)
class Case:
    id: str
    send: bytes
    answers: tuple[tuple[int, int, int | None], ...]  # (class, type, error code / NTFY status info / None)
    state: str = "active"  # the ASP state the case is sent in: "down", "inactive" or "active"
    effect: str = KEEPS
    diagnostic: bool = True  # an ERR quotes the offending message (§3.8.1)
    routing_context: int | None = None  # an ERR that must name this routing context
    check: str = ""  # extra check by name, see test below


def err(code: int) -> tuple[int, int, int]:
    return (0, 0, code)


ASPUP_ACK, ASPAC_ACK, ASPIA_ACK = (3, 4, None), (4, 3, None), (4, 4, None)
ASPDN_ACK, BEAT_ACK = (3, 5, None), (3, 6, None)
NTFY_INACTIVE, NTFY_PENDING = (0, 1, m3ua.AsStateInfo.AS_INACTIVE), (0, 1, m3ua.AsStateInfo.AS_PENDING)
E = ErrorCode

CASES = [
    # §3.1 common header / §3.8.1 error codes
    Case("invalid-version", raw(3, 1, version=2), (err(E.INVALID_VERSION),)),  # m3ua-sgp-aspsm-i-001
    Case("invalid-version-data", data_message()[:1].replace(b"\x01", b"\x02") + data_message()[1:],
         (err(E.INVALID_VERSION),)),  # m3ua-sgp-mtr-i-001
    Case("unsupported-class", raw(10, 1, tlv(Tag.PROTOCOL_DATA, bytes(16))), (err(E.UNSUPPORTED_MESSAGE_CLASS),)),
    Case("unsupported-class-5", raw(5, 1), (err(E.UNSUPPORTED_MESSAGE_CLASS),)),  # class 5: reserved (QPTM in IUA)
    Case("unsupported-type-aspsm", raw(3, 7), (err(E.UNSUPPORTED_MESSAGE_TYPE),)),  # m3ua-sgp-aspsm-i-002/-004
    Case("unsupported-type-asptm", raw(4, 5), (err(E.UNSUPPORTED_MESSAGE_TYPE),)),  # m3ua-sgp-asptm-i-006/-008
    Case("unsupported-type-transfer", raw(1, 2, tlv(Tag.PROTOCOL_DATA, bytes(16))),
         (err(E.UNSUPPORTED_MESSAGE_TYPE),)),  # m3ua-sgp-mtr-i-003
    # truncated: the header's length ends the message inside a parameter (over TCP a length that is a multiple of
    # 4 always leaves room for a parameter header, so this is the truncation the framer can deliver)
    Case("truncated-message", raw(3, 3, tlv(Tag.HEARTBEAT_DATA, b"abcd", length=200)),
         (err(E.PARAMETER_FIELD_ERROR),)),
    Case("parameter-length-below-4", raw(3, 3, struct.pack("!HH", Tag.HEARTBEAT_DATA, 2) + bytes(4)),
         (err(E.PARAMETER_FIELD_ERROR),)),
    Case("asp-identifier-not-32-bits", raw(3, 1, tlv(Tag.ASP_IDENTIFIER, b"\x00\x01")),
         (err(E.PARAMETER_FIELD_ERROR),), state="inactive", effect=INACTIVE),
    Case("routing-context-not-32-bits", raw(4, 1, tlv(Tag.ROUTING_CONTEXT, b"\x00\x00\x01")),
         (err(E.PARAMETER_FIELD_ERROR),), state="inactive", effect=INACTIVE),
    Case("protocol-data-shorter-than-label", raw(1, 1, tlv(Tag.ROUTING_CONTEXT, u32(RC)) + tlv(Tag.PROTOCOL_DATA,
                                                                                             bytes(8))),
         (err(E.PARAMETER_FIELD_ERROR),)),
    Case("unexpected-parameter", raw(3, 1, tlv(Tag.ROUTING_CONTEXT, u32(RC))), (err(E.UNEXPECTED_PARAMETER),)),
    Case("data-missing-protocol-data", raw(1, 1, tlv(Tag.ROUTING_CONTEXT, u32(RC))),
         (err(E.MISSING_PARAMETER),)),  # m3ua-sgp-mtr-v-002 (alternate)
    Case("data-header-only", raw(1, 1), (err(E.MISSING_PARAMETER),)),
    Case("reg-req-without-routing-key", raw(9, 1), (err(E.MISSING_PARAMETER),)),
    Case("dereg-req-without-routing-context", raw(9, 3), (err(E.MISSING_PARAMETER),)),
    Case("ntfy-without-status", raw(0, 1), (err(E.MISSING_PARAMETER),)),
    Case("daud-affected-pc-not-32-bits", raw(2, 3, tlv(Tag.AFFECTED_POINT_CODE, b"\x00\x02")),
         (err(E.PARAMETER_FIELD_ERROR),)),
    # §4.3.4.1 ASP Up
    Case("aspup-while-active", enc(m3ua.aspup()), (err(E.UNEXPECTED_MESSAGE), ASPUP_ACK, NTFY_INACTIVE),
         effect=INACTIVE),  # m3ua-sgp-aspsm-o-003
    Case("duplicate-aspup", enc(m3ua.aspup()), (ASPUP_ACK,), state="inactive", effect=INACTIVE),  # aspsm-o-001
    # §4.3.4.2 ASP Down
    Case("aspdn-while-active", enc(m3ua.aspdn()), (ASPDN_ACK,), effect=DOWN),  # m3ua-sgp-aspsm-v-005
    Case("aspdn-while-down", enc(m3ua.aspdn()), (ASPDN_ACK,), state="down", effect=DOWN),  # m3ua-sgp-aspsm-o-004
    # §4.3.4.3 ASP Active
    Case("aspac-before-aspup", enc(m3ua.aspac()), (err(E.UNEXPECTED_MESSAGE),), state="down",
         effect=DOWN),  # m3ua-sgp-aspsm-i-003
    Case("duplicate-aspac", enc(m3ua.aspac(m3ua.TrafficMode.LOADSHARE, (RC,))), (ASPAC_ACK,)),  # asptm-o-001
    Case("aspac-unsupported-traffic-mode", enc(m3ua.aspac(4)), (err(E.UNSUPPORTED_TRAFFIC_MODE_TYPE),),
         state="inactive", effect=INACTIVE),  # m3ua-sgp-asptm-i-004
    Case("aspac-broadcast", enc(m3ua.aspac(m3ua.TrafficMode.BROADCAST)), (err(E.UNSUPPORTED_TRAFFIC_MODE_TYPE),),
         state="inactive", effect=INACTIVE),  # m3ua-sgp-asptm-i-003
    Case("aspac-unsupported-traffic-mode-while-active", enc(m3ua.aspac(4)),
         (err(E.UNSUPPORTED_TRAFFIC_MODE_TYPE),)),
    Case("aspac-invalid-routing-context", enc(m3ua.aspac(routing_contexts=(9,))),
         (err(E.INVALID_ROUTING_CONTEXT),), state="inactive", effect=INACTIVE,
         routing_context=9),  # m3ua-sgp-asptm-i-005
    # §4.3.4.4 ASP Inactive
    Case("aspia", enc(m3ua.aspia()), (ASPIA_ACK, NTFY_PENDING, NTFY_INACTIVE), effect=INACTIVE),  # asptm-v-008
    Case("aspia-while-inactive", enc(m3ua.aspia()), (ASPIA_ACK,), state="inactive", effect=INACTIVE),  # asptm-o-003
    Case("aspia-before-aspup", enc(m3ua.aspia()), (err(E.UNEXPECTED_MESSAGE),), state="down", effect=DOWN),
    Case("aspia-invalid-routing-context", enc(m3ua.aspia((9,))), (err(E.INVALID_ROUTING_CONTEXT),),
         routing_context=9),
    # §4.3.4.6 heartbeat
    Case("beat", enc(m3ua.beat(b"M3UA rocks\x00\x01\x02")), (BEAT_ACK,), check="echo"),  # asptm-v-010/-011
    Case("beat-without-data", raw(3, 3), (BEAT_ACK,), check="echo"),
    # messages the SG does not take
    Case("aspup-ack-to-sg", enc(m3ua.aspup_ack()), (err(E.UNEXPECTED_MESSAGE),)),
    Case("aspac-ack-to-sg", enc(m3ua.aspac_ack()), (err(E.UNEXPECTED_MESSAGE),)),
    Case("aspdn-ack-to-sg", enc(m3ua.aspdn_ack()), (err(E.UNEXPECTED_MESSAGE),)),
    Case("duna-to-sg", enc(m3ua.ssnm(m3ua.Ssnm.DUNA, [m3ua.AffectedPointCode(2)])), (err(E.UNEXPECTED_MESSAGE),)),
    Case("reg-rsp-to-sg", enc(m3ua.reg_rsp([m3ua.RegistrationResult(1, 0, 5)])), (err(E.UNEXPECTED_MESSAGE),)),
    Case("dereg-rsp-to-sg", enc(m3ua.dereg_rsp([m3ua.DeregistrationResult(1, 0)])), (err(E.UNEXPECTED_MESSAGE),)),
    # DATA in the wrong state or for the wrong place
    Case("data-before-aspup", data_message(), (err(E.UNEXPECTED_MESSAGE),), state="down", effect=DOWN),
    Case("data-before-aspac", data_message(), (err(E.UNEXPECTED_MESSAGE),), state="inactive", effect=INACTIVE),
    Case("data-after-aspia", data_message(), (err(E.UNEXPECTED_MESSAGE),), state="inactive", effect=INACTIVE),
    Case("data-invalid-routing-context", data_message(rc=9), (err(E.INVALID_ROUTING_CONTEXT),), routing_context=9),
    Case("data-for-another-point-code", data_message(dpc=200), ((2, 1, None),), check="duna-200"),
    Case("data-invalid-network-appearance", m3ua.encode_data(NET_PC, GW_PC, 3, 2, 0, 3, bytes(4), RC,
                                                             network_appearance=8),
         (err(E.INVALID_NETWORK_APPEARANCE),), check="na-8"),
    # SSNM (§3.4)
    Case("daud", enc(m3ua.ssnm(m3ua.Ssnm.DAUD, [m3ua.AffectedPointCode(GW_PC), m3ua.AffectedPointCode(200)])),
         ((2, 2, None), (2, 1, None))),
    Case("scon-invalid-congestion-level", enc(m3ua.ssnm(m3ua.Ssnm.SCON, [m3ua.AffectedPointCode(5)],
                                                        congestion_level=7)), (err(E.INVALID_PARAMETER_VALUE),)),
    Case("ntfy-invalid-status-type", enc(m3ua.ntfy(9, 1)), (err(E.INVALID_PARAMETER_VALUE),)),
    # RKM (§4.4)
    Case("reg-req-invalid-routing-key", enc(m3ua.Message(9, 1, (m3ua.Parameter(
        Tag.ROUTING_KEY, tlv(Tag.LOCAL_ROUTING_KEY_IDENTIFIER, u32(4))),))), ((9, 2, None),),
        check="reg-invalid"),  # m3ua-sgp-rkm-i-003
    Case("dereg-req-not-registered", enc(m3ua.dereg_req([77])), ((9, 4, None),), check="dereg-not-registered"),
    # ERR is never answered with an ERR (§3.8.1), however malformed
    Case("err-without-error-code", raw(0, 0), ()),
    Case("err-with-overrunning-parameter", raw(0, 0, tlv(Tag.ERROR_CODE, u32(1), length=64)), ()),
    Case("err-well-formed", enc(m3ua.err(E.PROTOCOL_ERROR)), ()),
    # TCP framing (gateway.codecs.m3ua_framer): a length that cannot be resynchronised from closes the association
    Case("header-length-zero", header(3, 1, 0), (err(E.PROTOCOL_ERROR),), effect=CLOSES),
    Case("header-length-below-header", header(3, 1, 4) + bytes(4), (err(E.PROTOCOL_ERROR),), effect=CLOSES),
    Case("header-length-not-multiple-of-4", header(3, 3, 10) + b"\x00\x09", (err(E.PROTOCOL_ERROR),),
         effect=CLOSES),
    Case("header-length-beyond-maximum", header(1, 1, 1 << 20), (err(E.PROTOCOL_ERROR),), effect=CLOSES),
    Case("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", (err(E.PROTOCOL_ERROR),), effect=CLOSES),
]


@pytest.fixture
async def daemon_port(tmp_path: Path) -> AsyncIterator[int]:
    cfg = load(default_config(tmp_path))
    async with running(cfg):
        yield cfg.listen_port


_otids = itertools.count(0x10000)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_malformed_input_is_answered_and_the_gateway_still_serves(case: Case, daemon_port: int) -> None:
    async def run() -> None:
        asp = await Asp.connect(daemon_port)
        try:
            if case.state in ("inactive", "active"):
                await asp.up()
            if case.state == "active":
                await asp.activate()
                assert await asp.dial(next(_otids)) == MENU  # the association works before the case
            asp.send(case.send)
            got = [m3ua.decode(m) for m in await asp.expect(len(case.answers))]
            assert [(m.msg_class, m.msg_type, _detail(m)) for m in got] == list(case.answers)
            for m in got:
                if (m.msg_class, m.msg_type) == (0, 0):
                    diagnostic = m.get(Tag.DIAGNOSTIC_INFORMATION)
                    if case.effect == CLOSES:
                        assert diagnostic == case.send[:8]  # the header the framer could not use
                    elif case.diagnostic:
                        assert diagnostic == case.send[:40]  # §3.8.1: the offending message
                    if case.routing_context is not None:
                        assert m.routing_contexts == (case.routing_context,)
            _check(case, got)
            if case.effect == CLOSES:
                assert await asp.closed(), "the daemon kept a stream it cannot resynchronise"
                await asp.close()
                asp = await Asp.connect(daemon_port)  # a NEW association
                await asp.up()
                await asp.activate()
            else:
                assert await asp.quiet() == [], "the daemon said more than the spec asks"
                if case.effect == DOWN:
                    await asp.up()
                if case.effect in (DOWN, INACTIVE):
                    await asp.activate()
            assert await asp.dial(next(_otids)) == MENU
        finally:
            await asp.close()

    await asyncio.wait_for(run(), 20)


def _detail(m: m3ua.Message) -> int | None:
    if (m.msg_class, m.msg_type) == (0, 0):
        return m.error_code
    if (m.msg_class, m.msg_type) == (0, 1):
        status = m.status
        return None if status is None else status[1]
    return None


def _check(case: Case, got: list[m3ua.Message]) -> None:
    if case.check == "echo":  # §3.5.6: the BEAT Ack carries the BEAT's parameters unchanged
        assert got[0].params == m3ua.decode(case.send).params
    elif case.check == "duna-200":
        assert got[0].msg_type == m3ua.Ssnm.DUNA and got[0].affected_point_codes == (m3ua.AffectedPointCode(200),)
        assert got[0].routing_contexts == (RC,)
    elif case.check == "na-8":
        assert got[0].u32(Tag.NETWORK_APPEARANCE) == 8
    elif case.check == "reg-invalid":
        assert [(r.local_rk_id, r.status) for r in got[0].registration_results] == [
            (4, m3ua.RegistrationStatus.INVALID_ROUTING_KEY)]
    elif case.check == "dereg-not-registered":
        assert [(r.routing_context, r.status) for r in got[0].deregistration_results] == [
            (77, m3ua.DeregistrationStatus.NOT_REGISTERED)]


async def test_a_message_split_across_tcp_segments_is_reassembled(daemon_port: int) -> None:
    """Not malformed, but the framer's other half: an ASP Up delivered one octet at a time is one message."""
    asp = await Asp.connect(daemon_port)
    try:
        for octet in enc(m3ua.aspup()):
            asp.send(bytes((octet,)))
            await asp.writer.drain()
        ack, _ = map(m3ua.decode, await asp.expect(2))
        assert (ack.msg_class, ack.msg_type) == (3, 4)
        await asp.activate()
        assert await asp.dial(next(_otids)) == MENU
    finally:
        await asp.close()
