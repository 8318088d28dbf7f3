"""Framing M3UA over TCP (sans-I/O).

SCTP preserves message boundaries; TCP does not, and RFC 4666 defines no framing of its own, so each message is
cut by the Message Length of its common header (§3.1: the length includes the header and the padded
parameters). A length below 8, above the configured maximum or not a multiple of 4 (§3.2: parameters are padded
to 4 octets) cannot be resynchronised: :meth:`Framer.feed` raises :class:`FramingError` (an :class:`M3uaError`,
protocol error, with the header as diagnostic) whose ``messages`` are the complete messages cut before the bad
header in the same read: the caller handles those first, then answers with an ERR and closes the connection.
The framer is then dead and keeps raising. Buffering is bounded by ``max_message``.
"""

from __future__ import annotations

from gateway.codecs.errors import M3uaError
from gateway.codecs.m3ua import ErrorCode

MIN_MESSAGE = 8


class FramingError(M3uaError):
    """The stream cannot be resynchronised; ``messages`` were complete before the bad header and must be handled."""

    def __init__(self, reason: str, diagnostic: bytes, messages: list[bytes]) -> None:
        super().__init__(reason, error_code=ErrorCode.PROTOCOL_ERROR, diagnostic=diagnostic)
        self.messages = messages


class Framer:
    __slots__ = ("_buf", "_error", "max_message")

    def __init__(self, max_message: int = 65536) -> None:
        if max_message < MIN_MESSAGE:
            raise ValueError("max_message must hold at least a common header")
        self.max_message = max_message
        self._buf = bytearray()
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received octets; return every complete message, in order."""
        if self._error is not None:
            raise FramingError(str(self._error), self._error.diagnostic or b"", [])
        buf = self._buf
        if not buf and len(data) >= MIN_MESSAGE:
            # Fast path: whole messages at the start of a fresh read need no copy into the buffer.
            out, consumed = self._cut(data)
            if consumed < len(data):
                buf += data[consumed:]
                self._check_pending(out)
            return out
        buf += data
        out, consumed = self._cut(buf)
        if consumed:
            del buf[:consumed]
        self._check_pending(out)
        return out

    def _cut(self, data: bytes | bytearray) -> tuple[list[bytes], int]:
        out: list[bytes] = []
        pos = 0
        n = len(data)
        while n - pos >= MIN_MESSAGE:
            length = int.from_bytes(data[pos + 4 : pos + 8], "big")
            self._validate(length, data, pos, out)
            if n - pos < length:
                break
            out.append(bytes(data[pos : pos + length]))
            pos += length
        return out, pos

    def _check_pending(self, before: list[bytes]) -> None:
        if len(self._buf) >= MIN_MESSAGE:
            self._validate(int.from_bytes(self._buf[4:8], "big"), self._buf, 0, before)

    def _validate(self, length: int, data: bytes | bytearray, pos: int, before: list[bytes]) -> None:
        if length < MIN_MESSAGE or length > self.max_message or length & 3:
            self._error = FramingError(
                f"M3UA message length {length} is invalid (must be 8..{self.max_message} and a multiple of 4); "
                "the stream cannot be resynchronised",
                bytes(data[pos : pos + 8]),
                before,
            )
            self._buf.clear()
            raise self._error
