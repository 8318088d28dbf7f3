"""The one driver every harness shares.

A harness is a module ``fuzz/fuzz_<name>.py`` with ``def test_one_input(data: bytes) -> None``: it calls a
decoder, which must return a value or raise :class:`CodecError`; any other exception escapes and is the crash
atheris reports. Checks that the value is right (round trip, differential) raise :class:`Finding`.

Run one harness: ``python -m fuzz.driver <name> [libFuzzer flags] [corpus dirs]``. The harness module, and every
``gateway`` module it imports, is imported under atheris' bytecode instrumentation so that coverage guides the
mutations (only ``gateway`` and ``fuzz``: the references, pycrate and asn1tools, are judges, not targets).

This module must not import ``gateway`` at its top level (it would then be imported uninstrumented); the
helpers import it lazily.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Harness name -> -max_len. SS7 messages are small: an MTP3 SIF holds 272 octets, an SCCP UDT's data at most 255,
# a USSD-String 160; the framer gets several messages per input, the full stack an M3UA DATA with its headers.
HARNESSES: dict[str, int] = {
    "m3ua": 512,
    "framer": 2048,
    "sccp": 320,
    "tcap": 512,
    "tcap_asn1": 512,
    "map": 320,
    "map_dialogue": 256,
    "ussd_string": 200,
    "layers": 640,
    "node": 2048,  # a program of steps (fuzz/fuzz_node.py)
}


class Finding(AssertionError):
    """A decoded value failed a check (round trip or differential): a finding as much as a crash is."""


def expect(condition: bool, message: str, *context: Any) -> None:
    if not condition:
        raise Finding(" | ".join([message, *(repr(c) for c in context)]))


def accepts(decoder: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``decoder(*args, **kwargs)``, or None when it raises CodecError (the contract); anything else propagates."""
    from gateway.codecs.errors import CodecError

    try:
        return decoder(*args, **kwargs)
    except CodecError:
        return None


def main(argv: list[str]) -> None:
    import atheris

    if len(argv) < 2 or argv[1] not in HARNESSES:
        sys.exit(f"usage: python -m fuzz.driver {{{','.join(HARNESSES)}}} [libFuzzer flags] [corpus dirs]")
    name = argv[1]
    with atheris.instrument_imports(include=["gateway", "fuzz"]):
        harness = importlib.import_module(f"fuzz.fuzz_{name}")
    # libFuzzer's -merge and -fork re-run argv[0] with their own flags: FUZZ_SELF names an executable that runs
    # this harness (e.g. a two-line shell script ending in `python -m fuzz.driver <name> "$@"`).
    atheris.Setup([os.environ.get("FUZZ_SELF", argv[0]), *argv[2:]], harness.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
