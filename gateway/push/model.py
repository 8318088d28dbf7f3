"""The push: its states, the transitions between them, how a network outcome moves it, and how it is retried. Pure.

A push is a network-initiated USSD text for one MSISDN (docs/openapi-push.yaml is the API over it). Its life:

    queued -> routing (SRI-for-SM out) -> sent (USSD invoke out) -> acknowledged (notify) | answered (request)
                 |                           |
                 +--> retry_wait <-----------+   (absent, busy, system failure, timeout: again after a backoff)
                 +--> failed                     (unknown subscriber, not provisioned, barred, illegal)
    queued | retry_wait -> cancelled (DELETE), expired (past expires_at)

Write-ahead (the store commits a state before the SS7 message that depends on it leaves): ``routing`` before the
SRI-for-SM, ``sent`` before the TC-BEGIN with the USSD invoke. Recovery after a crash (:func:`recovered`): a push in
``queued``, ``retry_wait`` or ``routing`` goes on (an SRI-for-SM shows nothing to the subscriber); a push in
``sent`` may have reached the handset, so it is never sent again: it ends ``unconfirmed``, a final state of its
own, and is reported like every final state.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from gateway.codecs.map_errors import MapErrorCode


class State(enum.StrEnum):
    QUEUED = "queued"
    ROUTING = "routing"
    SENT = "sent"
    RETRY_WAIT = "retry_wait"
    ACKNOWLEDGED = "acknowledged"
    ANSWERED = "answered"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UNCONFIRMED = "unconfirmed"  # the invoke was out when the gateway stopped: maybe shown, never resent

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({State.ACKNOWLEDGED, State.ANSWERED, State.FAILED, State.EXPIRED, State.CANCELLED,
                   State.UNCONFIRMED})  # fmt: skip

# Every move the gateway may make; anything else is a bug the store refuses.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.ROUTING, State.CANCELLED, State.EXPIRED}),
    State.RETRY_WAIT: frozenset({State.ROUTING, State.CANCELLED, State.EXPIRED}),
    State.ROUTING: frozenset({State.SENT, State.RETRY_WAIT, State.FAILED, State.EXPIRED, State.QUEUED}),
    State.SENT: frozenset({State.ACKNOWLEDGED, State.ANSWERED, State.RETRY_WAIT, State.FAILED, State.EXPIRED,
                           State.UNCONFIRMED}),
}
CANCELLABLE = frozenset({State.QUEUED, State.RETRY_WAIT})


class TransitionError(ValueError):
    """A move :data:`TRANSITIONS` does not allow."""


def check(old: State, new: State) -> None:
    if new not in TRANSITIONS.get(old, frozenset()):
        raise TransitionError(f"a push cannot go from {old} to {new}")


class Mode(enum.StrEnum):
    NOTIFY = "notify"  # unstructuredSS-Notify: a flash text; the handset's acknowledgement proves it was shown
    REQUEST = "request"  # unstructuredSS-Request: the answer continues as a session with the route's application


# TS 29.002 §17.6.6 errors that will not change by waiting: the push fails at once with the error as its cause.
PERMANENT = frozenset({MapErrorCode.UNKNOWN_SUBSCRIBER, MapErrorCode.TELESERVICE_NOT_PROVISIONED,
                       MapErrorCode.CALL_BARRED, MapErrorCode.ILLEGAL_SUBSCRIBER, MapErrorCode.ILLEGAL_EQUIPMENT,
                       MapErrorCode.UNKNOWN_ALPHABET, MapErrorCode.FACILITY_NOT_SUPPORTED,
                       MapErrorCode.UNEXPECTED_DATA_VALUE, MapErrorCode.DATA_MISSING})  # fmt: skip


def outcome_state(error_code: int | None, reason: str) -> State:
    """Where a failed attempt goes: ``failed`` for a permanent MAP error or an answer the gateway cannot use,
    ``retry_wait`` for the rest (absentSubscriber(SM), ussd-Busy, systemFailure, TCAP timeout or abort, no
    answer from the HLR)."""
    if error_code is not None:
        return State.FAILED if error_code in PERMANENT else State.RETRY_WAIT
    if reason.startswith(("mistyped", "unusable", "refused")):
        return State.FAILED  # the network answered, and its answer will be the same next time
    return State.RETRY_WAIT


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: attempt n waits ``min(cap, base * 2**(n-1))`` scaled by a random
    factor in [1 - jitter, 1], so that pushes failed together do not come back together."""

    base: float = 30.0
    cap: float = 3600.0
    jitter: float = 0.5

    def delay(self, attempts: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** max(0, attempts - 1))
        return ceiling * (1.0 - self.jitter * rng.random())


def after_failure(attempts: int, error_code: int | None, reason: str, now: float, expires_at: float,
                  backoff: Backoff, rng: random.Random) -> tuple[State, float | None]:
    """The state a failed attempt leads to and, for ``retry_wait``, when to try again; a retry that would come
    after the expiry ends the push ``expired`` now (with the last cause)."""
    state = outcome_state(error_code, reason)
    if state is State.FAILED:
        return state, None
    at = now + backoff.delay(attempts, rng)
    if at >= expires_at:
        return State.EXPIRED, None
    return State.RETRY_WAIT, at


def recovered(state: State) -> State | None:
    """The state an unfinished push is given when the gateway starts (the crash rule); None: leave it as it is."""
    if state is State.ROUTING:
        return State.QUEUED  # the SRI-for-SM's answer is lost, and it showed nothing to anyone: route again
    if state is State.SENT:
        return State.UNCONFIRMED
    return None
