"""Transaction ID allocation for the TCAP dialogue table (Q.773 §3.2: 1..4 octets; the gateway uses 4).

The top ``prefix_bits`` bits carry the node prefix, so that several gateway processes behind one STP own disjoint
TID spaces and a continuation can be routed to its owner (design.md §5). IDs come from a cursor that walks the
space and skips IDs still in use, so a just-released ID is reused only after the whole space has gone round: a
late message for an old dialogue does not land in a new one.
"""

from __future__ import annotations


class TidSpaceExhaustedError(Exception):
    """Every ID of this node's space is in use: answer the new dialogue with resourceLimitation."""


class TidAllocator:
    __slots__ = ("_base", "_cursor", "_in_use", "_size", "prefix", "prefix_bits")

    def __init__(self, prefix: int = 0, prefix_bits: int = 0, *, start: int = 0) -> None:
        if not 0 <= prefix_bits <= 31:
            raise ValueError("prefix_bits must be 0..31")
        if not 0 <= prefix < (1 << prefix_bits) or (prefix_bits == 0 and prefix):
            raise ValueError(f"prefix {prefix} does not fit {prefix_bits} bits")
        self.prefix = prefix
        self.prefix_bits = prefix_bits
        self._size = 1 << (32 - prefix_bits)
        self._base = prefix << (32 - prefix_bits)
        self._cursor = start % self._size
        self._in_use: set[int] = set()

    def __len__(self) -> int:
        return len(self._in_use)

    @property
    def capacity(self) -> int:
        return self._size

    def allocate(self) -> int:
        """A TID (as an int; :func:`tid_bytes` gives its 4 octets) not in use."""
        if len(self._in_use) >= self._size:
            raise TidSpaceExhaustedError(f"all {self._size} transaction IDs of prefix {self.prefix} are in use")
        in_use = self._in_use
        cursor = self._cursor
        while True:
            tid = self._base | cursor
            cursor = (cursor + 1) % self._size
            if tid not in in_use:
                in_use.add(tid)
                self._cursor = cursor
                return tid

    def release(self, tid: int) -> None:
        self._in_use.discard(tid)

    def owns(self, tid: int) -> bool:
        """Whether ``tid`` belongs to this node's prefix (a continuation for another node is not ours)."""
        return (tid >> (32 - self.prefix_bits)) == self.prefix if self.prefix_bits else True


def tid_bytes(tid: int) -> bytes:
    return tid.to_bytes(4, "big")


def tid_int(tid: bytes) -> int:
    return int.from_bytes(tid, "big")
