"""The stateful harness (fuzz/fuzz_node.py) walks the paths its seeds name, and its invariants catch what they are
there to catch: a leaked dialogue, a contained defect."""

from __future__ import annotations

import pytest

from fuzz import fuzz_node
from fuzz.driver import Finding
from gateway.codecs import map as M
from gateway.codecs import tcap
from gateway.stack import map_ussd
from gateway.stack.tcap_table import DialogueTable


def replies(gw: fuzz_node.Gateway) -> list[tcap.TcapMessage]:
    return [tcap.decode(x) for x in gw.sent]


def test_a_session_seed_runs_a_whole_session() -> None:
    gw = fuzz_node.run(fuzz_node.seeds()[0])
    kinds = [type(m).__name__ for m in replies(gw)]
    assert kinds == ["Continue", "End"]  # the menu, then the final text for the answer
    end = replies(gw)[1]
    assert isinstance(end, tcap.End) and isinstance(end.components[0], tcap.ReturnResult)


def test_a_push_seed_reaches_the_msc_and_is_acknowledged() -> None:
    gw = fuzz_node.run(fuzz_node.seeds()[7])
    sent = replies(gw)
    assert isinstance(sent[0], tcap.Begin) and sent[0].components[0].opcode == M.OP_SEND_ROUTING_INFO_FOR_SM
    assert isinstance(sent[1], tcap.Begin) and sent[1].components[0].opcode == M.OP_USSN
    assert len(sent) == 2 and gw.judged >= 2  # pycrate read both


def test_the_timer_seed_ends_in_timeouts() -> None:
    """The invoke and the idle timer fire in the same tick: one U-ABORT, not two (the harness found the second)."""
    gw = fuzz_node.run(fuzz_node.seeds()[2])
    assert [type(m).__name__ for m in replies(gw)] == ["Continue", "Abort"]  # the menu; U-ABORT when no answer


def test_a_leaked_dialogue_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DialogueTable, "_release", lambda self, d, outcome: None)  # never releases
    with pytest.raises(Finding, match=r"idle timer|left after every timer"):
        fuzz_node.run(fuzz_node.seeds()[2])


def test_a_contained_defect_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> object:
        raise IndexError("injected")

    monkeypatch.setattr(map_ussd.M, "decode_ussd_arg", broken)
    with pytest.raises(Finding, match="internal error at map: IndexError"):
        fuzz_node.run(fuzz_node.seeds()[0])
