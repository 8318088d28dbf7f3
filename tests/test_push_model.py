"""The push's state machine (gateway/push/model.py): allowed moves, the crash rule, outcomes and backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.codecs.map_errors import MapErrorCode
from gateway.push.model import (
    FINAL,
    TRANSITIONS,
    Backoff,
    State,
    TransitionError,
    after_failure,
    check,
    outcome_state,
    recovered,
)


def test_final_states_have_no_way_out() -> None:
    for state in FINAL:
        assert state.final and state not in TRANSITIONS
        for other in State:
            with pytest.raises(TransitionError):
                check(state, other)


def test_every_unfinished_state_can_end() -> None:
    """From every state the push can reach a final state: nothing waits forever."""
    for start in set(State) - FINAL:
        seen, todo = {start}, [start]
        while todo:
            for nxt in TRANSITIONS.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen & FINAL, start


def test_the_crash_rule_never_resends_what_may_have_been_shown() -> None:
    assert recovered(State.SENT) is State.UNCONFIRMED and State.UNCONFIRMED.final
    assert recovered(State.ROUTING) is State.QUEUED
    for state in (State.QUEUED, State.RETRY_WAIT, *FINAL):
        assert recovered(state) is None
    for state in set(State) - FINAL:
        new = recovered(state)
        if new is not None:
            check(state, new)  # the recovery moves are moves the store accepts


@pytest.mark.parametrize(("code", "state"), [
    (MapErrorCode.UNKNOWN_SUBSCRIBER, State.FAILED), (MapErrorCode.TELESERVICE_NOT_PROVISIONED, State.FAILED),
    (MapErrorCode.CALL_BARRED, State.FAILED), (MapErrorCode.ILLEGAL_SUBSCRIBER, State.FAILED),
    (MapErrorCode.ABSENT_SUBSCRIBER, State.RETRY_WAIT), (MapErrorCode.ABSENT_SUBSCRIBER_SM, State.RETRY_WAIT),
    (MapErrorCode.USSD_BUSY, State.RETRY_WAIT), (MapErrorCode.SYSTEM_FAILURE, State.RETRY_WAIT),
])  # fmt: skip
def test_map_errors_fail_or_retry(code: int, state: State) -> None:
    assert outcome_state(int(code), code.name.lower()) is state


def test_timeouts_and_aborts_are_retried() -> None:
    assert outcome_state(None, "timeout") is State.RETRY_WAIT and outcome_state(None, "aborted") is State.RETRY_WAIT
    assert outcome_state(None, "mistyped RoutingInfoForSM-Res: x") is State.FAILED


@given(st.integers(1, 60), st.floats(0, 1e9), st.integers(0, 2**32))
def test_backoff_grows_is_capped_and_jittered(attempts: int, now: float, seed: int) -> None:
    b = Backoff(base=10.0, cap=600.0, jitter=0.5)
    delay = b.delay(attempts, random.Random(seed))
    ceiling = min(600.0, 10.0 * 2.0 ** (attempts - 1))
    assert ceiling * 0.5 <= delay <= ceiling
    state, at = after_failure(attempts, None, "timeout", now, now + 700.0, b, random.Random(seed))
    assert state is State.RETRY_WAIT and at is not None and now < at <= now + 600.0


def test_a_retry_past_the_expiry_expires_now() -> None:
    state, at = after_failure(3, int(MapErrorCode.USSD_BUSY), "ussd_busy", 100.0, 101.0, Backoff(), random.Random(1))
    assert (state, at) == (State.EXPIRED, None)
