"""A minimal handwritten M3UA ASP over TCP for live tests against the daemon (SG, routing context 1, point code 1):
raw messages in, whole messages out, and a ``*123#`` dial that checks the demo menu arrives."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

from gateway.codecs import m3ua, sccp, tcap
from gateway.codecs import map as map_codec
from gateway.codecs.m3ua_framer import Framer
from tests.support.handmade import TC_BEGIN_USSD, gt4_address, m3ua_data, sccp_udt, tc_begin, ussd_invoke

RC, GW_PC, NET_PC = 1, 1, 2
MENU = "Demo menu\n1. Balance\n2. Help"
MSC_ADDRESS = gt4_address("491720000099", sccp.SSN_MSC)
WAIT = 2.0  # seconds for any single answer; loopback answers take milliseconds
QUIET = 0.15  # how long "nothing more arrives" is watched


def header(msg_class: int, msg_type: int, length: int, version: int = 1) -> bytes:
    return struct.pack("!BBBBI", version, 0, msg_class, msg_type, length)


def raw(msg_class: int, msg_type: int, body: bytes = b"", *, version: int = 1) -> bytes:
    """A message with exactly ``body`` after a header whose length covers it (RFC 4666 §3.1)."""
    return header(msg_class, msg_type, 8 + len(body), version) + body


def tlv(tag: int, value: bytes, length: int | None = None) -> bytes:
    """A parameter with a chosen (possibly wrong) length field, padded to 4 octets (§3.2)."""
    return struct.pack("!HH", tag, 4 + len(value) if length is None else length) + value + b"\x00" * (-len(value) & 3)


def u32(value: int) -> bytes:
    return struct.pack("!I", value)


def data_message(payload: bytes = b"\x00" * 4, *, rc: int | None = RC, dpc: int = GW_PC) -> bytes:
    return m3ua_data(payload, opc=NET_PC, dpc=dpc, sls=3, routing_context=rc)


def enc(msg: m3ua.Message) -> bytes:
    return m3ua.encode(msg)


@dataclass
class Asp:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    framer: Framer = field(default_factory=Framer)
    pending: list[bytes] = field(default_factory=list)

    @classmethod
    async def connect(cls, port: int) -> Asp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def recv(self, timeout: float = WAIT) -> bytes | None:
        """The next whole message (heartbeats answered and skipped); None when the daemon closed the connection."""
        while True:
            while self.pending:
                message = self.pending.pop(0)
                if message[2:4] == b"\x03\x03":  # BEAT from the daemon: echo it (RFC 4666 §3.5.6) and go on
                    self.send(message[:3] + b"\x06" + message[4:])
                    continue
                return message
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not chunk:
                return None
            self.pending += self.framer.feed(chunk)

    async def expect(self, count: int) -> list[bytes]:
        out: list[bytes] = []
        for _ in range(count):
            message = await self.recv()
            assert message is not None, f"connection closed after {out}"
            out.append(message)
        return out

    async def quiet(self) -> list[bytes]:
        """Whatever arrives within QUIET seconds (an empty list is the usual hope)."""
        out = []
        try:
            while (message := await self.recv(QUIET)) is not None:
                out.append(message)
        except TimeoutError:
            pass
        return out

    async def up(self) -> None:
        self.send(enc(m3ua.aspup()))
        ack, ntfy = map(m3ua.decode, await self.expect(2))
        assert (ack.msg_class, ack.msg_type) == (3, 4)
        assert ntfy.status == (m3ua.StatusType.AS_STATE_CHANGE, m3ua.AsStateInfo.AS_INACTIVE)

    async def activate(self) -> None:
        self.send(enc(m3ua.aspac(m3ua.TrafficMode.LOADSHARE, (RC,))))
        ack, ntfy = map(m3ua.decode, await self.expect(2))
        assert (ack.msg_class, ack.msg_type, ack.routing_contexts) == (4, 3, (RC,))
        assert ntfy.status == (m3ua.StatusType.AS_STATE_CHANGE, m3ua.AsStateInfo.AS_ACTIVE)

    async def dial(self, otid: int) -> str:
        """A handset dials *123# (the design.md TC-BEGIN with its own otid): returns the menu the gateway sends,
        then presses cancel (TC-U-ABORT) so that the daemon keeps no dialogue."""
        begin = tc_begin([ussd_invoke(1, parameter=TC_BEGIN_USSD[50:])], otid=otid.to_bytes(4, "big"))
        self.send_tcap(begin)
        while True:
            message = await self.recv()
            assert message is not None, "the daemon closed the association instead of answering the dial"
            if message[2:4] == b"\x01\x01":
                break
            raise AssertionError(f"expected the menu in DATA, got {m3ua.decode(message)}")
        data = m3ua.decode_data(message)
        assert (data.routing_context, data.protocol_data.opc, data.protocol_data.dpc) == (RC, GW_PC, NET_PC)
        udt = sccp.decode(data.protocol_data.data)
        assert isinstance(udt, sccp.Udt)
        reply = tcap.decode(udt.data)
        assert isinstance(reply, tcap.Continue) and reply.dtid == otid.to_bytes(4, "big")
        (invoke,) = reply.components
        assert isinstance(invoke, tcap.Invoke) and invoke.opcode == map_codec.OP_USSR
        text = map_codec.decode_ussd_arg(invoke.parameter or b"").text()
        self.send_tcap(bytes((0x67, 2 + len(reply.otid), 0x49, len(reply.otid))) + reply.otid)  # TC-ABORT, dtid only
        return text

    def send_tcap(self, data: bytes, *, ssn: int = sccp.SSN_GSMSCF) -> None:
        """``data`` from the MSC to the gateway's GT (and ``ssn``) in a UDT in a DATA."""
        self.send(data_message(sccp_udt(gt4_address("491700000001", ssn), MSC_ADDRESS, data)))

    async def data(self) -> bytes:
        """The SCCP payload of the next DATA (anything else fails the test)."""
        message = await self.recv()
        assert message is not None and message[2:4] == b"\x01\x01", f"expected DATA, got {message!r}"
        return m3ua.decode_data(message).protocol_data.data

    async def closed(self) -> bool:
        try:
            while await self.recv() is not None:
                pass
        except (ConnectionError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
