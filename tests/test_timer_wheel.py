"""Timer wheel: never early, at most one resolution late, same expirations as a reference heap model."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gateway.stack.timer_wheel import TimerHandle, TimerWheel

RES = 0.05


def test_basic_schedule_expire_cancel() -> None:
    wheel: TimerWheel[str] = TimerWheel(RES, now=100.0)
    a = wheel.schedule(101.0, "a")
    wheel.schedule(100.5, "b")
    wheel.schedule(130.0, "c")
    assert len(wheel) == 3
    assert wheel.next_deadline() is not None and (wheel.next_deadline() or 0) <= 100.5
    assert wheel.expire(100.49) == []
    assert wheel.expire(100.5) == ["b"]
    assert wheel.cancel(a) and not wheel.cancel(a)
    nd = wheel.next_deadline() or 0
    assert 101.0 < nd <= 130.0  # the cancelled timer no longer counts
    assert wheel.expire(1000) == ["c"]
    assert len(wheel) == 0 and wheel.next_deadline() is None


def test_already_due_fires_on_next_expire() -> None:
    wheel: TimerWheel[int] = TimerWheel(RES, now=10.0)
    wheel.expire(10.0)
    wheel.schedule(5.0, 1)
    assert wheel.expire(10.0) == []  # the current tick has been expired already: it fires on the next one
    assert wheel.expire(10.0 + RES) == [1]


def test_many_timers_one_tick_and_far_future() -> None:
    wheel: TimerWheel[int] = TimerWheel(RES)
    handles = [wheel.schedule(1.0, i) for i in range(10_000)]
    wheel.schedule(86_400.0 * 30, -1)  # far beyond any "span": still exact
    for h in handles[::2]:
        wheel.cancel(h)
    assert sorted(wheel.expire(1.0)) == list(range(1, 10_000, 2))
    assert wheel.expire(86_400.0 * 30 - 1) == []
    assert wheel.expire(86_400.0 * 30) == [-1]


class WheelModel(RuleBasedStateMachine):
    """Random schedule/cancel/advance sequences against a reference model (a list of live deadlines)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.wheel: TimerWheel[int] = TimerWheel(RES, now=0.0)
        self.live: dict[int, tuple[float, TimerHandle]] = {}
        self.next_key = 0

    @rule(delay=st.floats(0, 50, allow_nan=False))
    def schedule(self, delay: float) -> None:
        key = self.next_key
        self.next_key += 1
        deadline = self.now + delay
        self.live[key] = (deadline, self.wheel.schedule(deadline, key))

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.live)))
        _, handle = self.live.pop(key)
        assert self.wheel.cancel(handle)

    @rule(step=st.floats(0, 20, allow_nan=False))
    def advance(self, step: float) -> None:
        self.now += step
        fired = self.wheel.expire(self.now)
        for key in fired:
            deadline, _ = self.live.pop(key)
            assert deadline <= self.now + 1e-9, "fired early"
        for key, (deadline, _) in self.live.items():
            assert deadline > self.now - RES - 1e-9, f"timer {key} is more than one resolution late"

    @invariant()
    def sizes_agree(self) -> None:
        assert len(self.wheel) == len(self.live)
        nd = self.wheel.next_deadline()
        if not self.live:
            assert nd is None
        else:
            earliest = min(d for d, _ in self.live.values())
            # Never later than the earliest deadline (it may be a cascade point before it), never in the past.
            assert nd is not None and nd <= max(earliest, self.now) + RES + 1e-9
            assert nd > self.now - RES - 1e-9


TestWheelModel = WheelModel.TestCase
TestWheelModel.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
