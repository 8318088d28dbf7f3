"""ASN.1 modules written from the specs (Q.773, TS 29.002), compiled with asn1tools: the reference path."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import asn1tools

HERE = Path(__file__).parent


@cache
def compiled(name: str) -> Any:
    """The asn1tools BER specification of ``<name>.asn`` in this folder, compiled once on first use."""
    return asn1tools.compile_files(str(HERE / f"{name}.asn"), "ber")
