"""Containment against the running daemon: malformed SCCP, TCAP and MAP on an ASP-ACTIVE M3UA association over TCP.

Each case gets the spec's answer (or none, where the spec says discard), moves the counter that shows it, and a
normal ``*123#`` dial on the SAME association gets the demo menu right after: no message may take the link down.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from gateway.codecs import m3ua, sccp, tcap
from gateway.codecs import map as map_codec
from gateway.codecs.errors import GeneralProblem, InvokeProblem, PAbortCause, ProblemKind
from gateway.config.load import GatewayConfig, load
from tests.support.asp import MENU, Asp, data_message
from tests.support.daemon import default_config, running
from tests.support.handmade import TC_BEGIN_USSD, pack_gsm7_ussd, tc_begin, ussd_arg, ussd_invoke

CRASHERS = Path(__file__).resolve().parents[1] / "fuzz" / "crashers"

OTID = b"\x0a\x0b\x0c\x0d"
STAR123 = pack_gsm7_ussd("*123#")


def arg(body: bytes, declared: int | None = None) -> bytes:
    """A USSD-Arg SEQUENCE around ``body`` (its length as declared, by default the true one)."""
    return bytes((0x30, len(body) if declared is None else declared)) + body


def begin_with(parameter: bytes) -> bytes:
    return tc_begin([ussd_invoke(1, parameter=parameter)], otid=OTID)


def p_abort(cause: int) -> tuple[tuple[object, ...], ...]:
    return (("abort", OTID, cause),)


def pycrate_reads(data: bytes) -> None:
    """pycrate (an independent TCAP/MAP implementation) decodes the answer and re-encodes it octet for octet."""
    from pycrate_asn1dir import TCAP_MAPv2v3

    msg = TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message
    msg.from_ber(data)
    assert msg.to_ber() == data, data.hex()


def shape(msg: tcap.TcapMessage) -> tuple[object, ...]:
    """What is judged of an answer: its type, the transaction it goes to, and its components or P-Abort cause (our
    own otid and the AARE are other tests' business)."""
    if isinstance(msg, tcap.Abort):
        return ("abort", msg.dtid, msg.p_abort_cause)
    if isinstance(msg, tcap.Continue):
        return ("continue", msg.dtid, msg.components)
    assert isinstance(msg, tcap.End), msg
    return ("end", msg.dtid, msg.components)


REJECT_MISTYPED = (("end", OTID, (tcap.Reject(1, ProblemKind.INVOKE, InvokeProblem.MISTYPED_PARAMETER),)),)
# Q.774 §3.2.2.2: a component that cannot be parsed is rejected (general problem) in the dialogue; the MAP layer,
# left with no operation to serve, ends the dialogue.
REJECT_COMPONENT = (("continue", OTID, (tcap.Reject(1, ProblemKind.GENERAL, GeneralProblem.MISTYPED_COMPONENT),)),
                    ("end", OTID, ()))  # fmt: skip
BEGIN = TC_BEGIN_USSD[:4] + OTID + TC_BEGIN_USSD[8:]
# A MAP-DialoguePDU EXTERNAL whose map-open's destinationReference declares 15 octets and holds 7
BAD_MAP_OPEN = bytes.fromhex("2816060704000001010101a00ba009800f91947100000010")
TRUNCATED_UDT = b"\x09\x81\x03\x0e\x19\x0b\x12\x93"  # a UDT cut inside the called party address


@dataclass(frozen=True)
class Case:
    id: str
    tcap: bytes  # what the MSC sends, in a UDT to the gateway's GT
    answer: tuple[tuple[object, ...], ...] | str | None  # the TCAP answers (see shape()), "udts-4", None: discarded
    metric: str  # a series of /metrics that must grow
    ssn: int = sccp.SSN_GSMSCF


CASES = [
    # The message: processUnstructuredSS-Request whose USSD-Arg ends in a lone 0x80 (a msisdn tag, no length).
    Case("ussd-arg-lone-0x80", begin_with(arg(bytes((4, 1, 0x0F, 4, len(STAR123))) + STAR123 + b"\x80")),
         REJECT_MISTYPED, 'ussd_tcap_rejects_total{direction="tx",problem="invoke-2"}'),
    # A USSD-Arg cut short: the SEQUENCE declares more than the parameter holds.
    Case("ussd-arg-cut-short", begin_with(arg(bytes((4, 1, 0x0F, 4, len(STAR123))) + STAR123[:2], declared=16)),
         REJECT_COMPONENT, 'ussd_tcap_rejects_total{direction="tx",problem="general-1"}'),
    Case("ussd-string-declared-past-the-end", begin_with(arg(bytes((4, 1, 0x0F, 4, 40)) + STAR123)),
         REJECT_MISTYPED, 'ussd_tcap_rejects_total{direction="tx",problem="invoke-2"}'),
    Case("ussd-arg-empty-string", begin_with(arg(bytes((4, 1, 0x0F, 4, 0)))),
         REJECT_MISTYPED, 'ussd_tcap_rejects_total{direction="tx",problem="invoke-2"}'),
    # TS 29.002 §12.1: a MAP-OpenInfo that cannot be decoded: TC-U-ABORT with MAP-ProviderAbortInfo abnormalDialogue.
    Case("begin-undecodable-map-open", b"", (("abort", OTID, None),),
         'ussd_tcap_dialogues_total{initiator="remote",outcome="refused"}'),
    # Q.774 §3.2.1.2: a badly formatted transaction portion with a derivable otid -> P-Abort to it.
    Case("begin-outer-length-too-long", b"\x62\x7f" + BEGIN[2:],
         p_abort(PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
         'ussd_tcap_aborts_total{cause="2",direction="tx",kind="p-abort"}'),
    Case("begin-dialogue-portion-overruns", BEGIN[:8] + b"\x6b\x7f" + BEGIN[10:],
         p_abort(PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
         'ussd_tcap_aborts_total{cause="2",direction="tx",kind="p-abort"}'),
    Case("unrecognized-message-type", b"\x69\x06\x48\x04" + OTID, p_abort(PAbortCause.UNRECOGNIZED_MESSAGE_TYPE),
         'ussd_tcap_aborts_total{cause="0",direction="tx",kind="p-abort"}'),
    Case("continue-without-dtid", b"\x65\x06\x48\x04" + OTID, p_abort(PAbortCause.INCORRECT_TRANSACTION_PORTION),
         'ussd_tcap_aborts_total{cause="3",direction="tx",kind="p-abort"}'),
    Case("continue-for-unknown-dtid", b"\x65\x0c\x48\x04" + OTID + b"\x49\x04\x7f\x7f\x7f\x7f",
         p_abort(PAbortCause.UNRECOGNIZED_TRANSACTION_ID),
         'ussd_tcap_aborts_total{cause="1",direction="tx",kind="p-abort"}'),
    # An otid of 5 octets cannot be addressed (Q.773 §3.1): discarded, counted.
    Case("begin-otid-of-5-octets", b"\x62\x07\x48\x05\x01\x02\x03\x04\x05", None,
         'ussd_tcap_messages_total{direction="rx",tcap_type="begin"}'),
    # Badly formatted End / Abort: no otid to answer to: discarded (Q.774 §3.2.1.2).
    Case("end-truncated", b"\x64\x7f\x49\x04\x00\x00\x00\x01", None,
         'ussd_tcap_messages_total{direction="rx",tcap_type="end"}'),
    # SCCP: an undecodable message is discarded and counted by reason; an unknown SSN is returned (Q.714 §4.2).
    Case("sccp-truncated", b"", None, 'ussd_sccp_dropped_total{reason="malformed"}'),
    Case("sccp-unequipped-ssn", BEGIN, "udts-4", 'ussd_sccp_dropped_total{reason="unequipped-user"}', ssn=99),
]


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[GatewayConfig]:
    cfg = load(default_config(tmp_path))
    async with running(cfg):
        yield cfg


async def metric(cfg: GatewayConfig, series: str) -> float:
    assert cfg.metrics_listen is not None
    host, port = cfg.metrics_listen
    async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


_otids = itertools.count(0x20000)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_malformed_signalling_is_answered_and_the_same_association_serves_on(case: Case,
                                                                                    daemon: GatewayConfig) -> None:
    async def run() -> None:
        asp = await Asp.connect(daemon.listen_port)
        try:
            await asp.up()
            await asp.activate()
            assert await asp.dial(next(_otids)) == MENU
            before = await metric(daemon, case.metric)
            if case.id == "sccp-truncated":
                asp.send(data_message(TRUNCATED_UDT))
            elif case.id == "begin-undecodable-map-open":
                asp.send_tcap(_begin(TC_BEGIN_USSD[50:], (BAD_MAP_OPEN,)))
            else:
                asp.send_tcap(case.tcap, ssn=case.ssn)
            if case.answer == "udts-4":
                udts = sccp.decode(await asp.data())
                assert isinstance(udts, sccp.Udts) and udts.return_cause == sccp.ReturnCause.UNEQUIPPED_USER
            elif case.answer is not None:
                got = []
                for _ in case.answer:
                    udt = sccp.decode(await asp.data())
                    assert isinstance(udt, sccp.Udt)
                    got.append(shape(tcap.decode(udt.data)))
                    pycrate_reads(udt.data)
                assert tuple(got) == case.answer
            assert await asp.quiet() == []
            assert await metric(daemon, case.metric) > before
            assert await asp.dial(next(_otids)) == MENU  # the same association, right after
        finally:
            await asp.close()

    await asyncio.wait_for(run(), 20)


def crasher_messages() -> list[tuple[str, bytes, bool]]:
    """Every input the fuzzers once crashed a decoder with, put where that decoder meets it on the wire:
    (name, octets, whether the octets are a whole M3UA message rather than TCAP for a UDT)."""
    out: list[tuple[str, bytes, bool]] = []
    for path in sorted(CRASHERS.glob("*/*")):
        kind, data = path.parent.name, path.read_bytes()
        name = f"{kind}/{path.name[:12]}"
        if kind in ("tcap", "tcap_asn1"):
            out.append((name, data, False))
        elif kind == "map" and data[:1] == b"\x00":  # a USSD-Arg (fuzz/fuzz_map.py: octet 0 picks the decoder)
            out.append((name, _begin(data[1:]), False))
        elif kind == "ussd_string" and data:  # a DCS and a USSD-String
            out.append((name, _begin(ussd_arg(data[1:90], dcs=data[0], msisdn=None)), False))
        elif kind == "map_dialogue":  # a MAP-DialoguePDU EXTERNAL as the AARQ's user information
            out.append((name, _begin(TC_BEGIN_USSD[50:], (data,)), False))
        elif kind == "sccp":
            out.append((name, data_message(data), True))
        elif kind in ("layers", "m3ua"):  # whole M3UA messages (the framer harness' inputs are not a stream)
            out.append((name, data, True))
            if kind == "layers" and len(data) > 32:  # and its SCCP part, on our routing context and point codes
                out.append((name + "/sccp", data_message(data[32:]), True))
    return out


def _framable(message: bytes) -> bool:
    """Whether the TCP framer can take ``message`` as whole messages and stay in step (m3ua_framer.py)."""
    pos = 0
    while pos < len(message):
        if len(message) - pos < 8:
            return False
        length = int.from_bytes(message[pos + 4 : pos + 8], "big")
        if not 8 <= length <= 65536 or length % 4 or pos + length > len(message):
            return False
        pos += length
    return True


def _begin(parameter: bytes, user_information: tuple[bytes, ...] = ()) -> bytes:
    aarq = tcap.Aarq(map_codec.AC_NETWORK_UNSTRUCTURED_SS_V2, user_information)
    return tcap.encode(tcap.Begin(OTID, aarq, (tcap.Invoke(1, map_codec.OP_PROCESS_USSR, parameter),)))


async def test_every_fuzz_crasher_on_the_live_daemon(daemon: GatewayConfig) -> None:
    """One association, every crasher of every decoder class in turn: each answer is well formed, the association
    stays up, a dial works after each, and no defect is left for containment to catch."""
    cases = crasher_messages()
    assert {name.split("/")[0] for name, _, _ in cases} >= {"tcap", "map", "sccp", "layers"}

    async def run() -> None:
        asp = await Asp.connect(daemon.listen_port)
        try:
            await asp.up()
            await asp.activate()
            for name, octets, whole in cases:
                if whole:
                    asp.send(octets)
                else:
                    asp.send_tcap(octets)
                if whole and not _framable(octets):
                    # RFC 4666 §3.8.1: a length the TCP stream cannot be resynchronised after: ERR, then closed
                    assert await asp.closed(), f"after {name}: the daemon kept a stream it cannot resynchronise"
                    await asp.close()
                    asp = await Asp.connect(daemon.listen_port)
                    await asp.up()
                    await asp.activate()
                    continue
                for answer in await asp.quiet():
                    msg = m3ua.decode(answer)  # every answer is well formed, down to TCAP
                    if (msg.msg_class, msg.msg_type) == (1, 1):
                        udt = sccp.decode(m3ua.decode_data(answer).protocol_data.data)
                        if isinstance(udt, sccp.Udt):
                            tcap.decode(udt.data)
                if (msg_state := await asp.dial(next(_otids))) != MENU:
                    raise AssertionError(f"after {name}: {msg_state!r}")
        finally:
            await asp.close()

    await asyncio.wait_for(run(), 60)
    for where in ("m3ua", "sccp", "tcap", "map", "service", "timer", "transport"):
        assert await metric(daemon, f'ussd_internal_errors_total{{where="{where}"}}') == 0.0, where
