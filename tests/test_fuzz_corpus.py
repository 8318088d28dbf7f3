"""Every seed and every crasher of fuzz/ replays through its harness function (no atheris needed): a decoder
that regresses on an input the fuzzers once found, or on a vector of the repository, fails here."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from fuzz.driver import HARNESSES

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
INPUTS = sorted(p for kind in ("corpus", "crashers") for p in (FUZZ / kind).glob("*/*") if p.is_file())


def test_every_harness_has_seeds() -> None:
    for name in HARNESSES:
        assert any((FUZZ / "corpus" / name).iterdir()), f"no seeds for {name}"
        importlib.import_module(f"fuzz.fuzz_{name}")


def test_every_input_belongs_to_a_harness() -> None:
    assert {p.parent.name for p in INPUTS} <= set(HARNESSES)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name[:12]}")
def test_replay(path: Path) -> None:
    harness = importlib.import_module(f"fuzz.fuzz_{path.parent.name}")
    harness.test_one_input(path.read_bytes())
