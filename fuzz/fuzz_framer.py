"""The M3UA-over-TCP framer (gateway/codecs/m3ua_framer.py) fed the input cut at fuzzer-chosen points.

Input: octet 0 picks max_message (8..1028, multiples of 4 and odd ones), octet 1 the number of cuts (0..7), the
next octets the cut points; the rest is the stream. Checks: the framer only raises FramingError; whatever the
cuts, it returns the same messages and the same verdict as when fed the whole stream at once; every message it
returns has a valid length and the messages are consecutive slices of the stream; buffering stays below
max_message."""

from __future__ import annotations

import itertools

from fuzz.driver import expect
from gateway.codecs.m3ua_framer import MIN_MESSAGE, Framer, FramingError


def _run(stream: bytes, cuts: list[int], max_message: int) -> tuple[list[bytes], bool, int]:
    framer = Framer(max_message)
    out: list[bytes] = []
    bounds = [0, *cuts, len(stream)]
    failed = False
    for a, b in itertools.pairwise(bounds):
        try:
            out += framer.feed(stream[a:b])
        except FramingError as exc:
            out += exc.messages
            failed = True
            break
        expect(framer.buffered < max(max_message, MIN_MESSAGE), "framer buffers beyond max_message",
               framer.buffered, max_message)  # fmt: skip
    return out, failed, framer.buffered


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    max_message = MIN_MESSAGE + data[0] * 4 + (data[0] & 1)
    n_cuts = data[1] & 7
    head = 2 + n_cuts
    stream = data[head:]
    cuts = sorted({c % (len(stream) + 1) for c in data[2:head]})
    whole = _run(stream, [], max_message)
    pieces = _run(stream, cuts, max_message)
    same = whole == pieces if not whole[1] else whole[:2] == pieces[:2]
    expect(same, "framer result depends on the cuts", cuts, whole, pieces)
    pos = 0
    for m in whole[0]:
        expect(MIN_MESSAGE <= len(m) <= max_message and len(m) % 4 == 0 and stream[pos : pos + len(m)] == m,
               "framed message is not the next slice of the stream", pos, m)  # fmt: skip
        expect(int.from_bytes(m[4:8], "big") == len(m), "framed message length", m)
        pos += len(m)
    if not whole[1]:
        expect(whole[2] == len(stream) - pos, "framer lost octets", whole[2], len(stream), pos)
