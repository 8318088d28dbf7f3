"""The durable push store: its records, the interface both backends implement, and the logic they share.

Two implementations run the same operations on one schema (gateway/push/migrations/): SQLite
(:mod:`gateway.push.store_sqlite`, the default, ``var/push.db``) and PostgreSQL (:mod:`gateway.push.store_postgres`,
several gateway nodes on one database). Both follow design.md §8:

- write-ahead: a state is committed before the SS7 message that depends on it leaves (``routing`` before the
  SRI-for-SM, ``sent`` before the USSD invoke), so every transition is a transaction, refused when
  :func:`gateway.push.model.check` refuses it;
- group commits: :meth:`PushStore.transition_many` commits the state changes of one loop turn in one transaction
  (one fsync on SQLite, a constant number of round trips on PostgreSQL, whatever the batch size), and
  :meth:`PushStore.create_many` the API's creations of one loop turn, each with its own answer;
- a callback outbox in the same store, written in the same transaction as the transition it reports, each row with
  a delivery id the receiver de-duplicates on: at-least-once for callbacks;
- claiming with a lease (``claimed_by``, ``claimed_until``): a dead node's claims run out and another node takes
  them; per-MSISDN exclusivity is a unique partial index on the in-flight states, not an in-memory set.

The transition logic itself (:func:`apply`) is pure and shared, so that both backends refuse, record and report
exactly alike; the backends only load the rows, and write what :func:`apply` returns.
"""

from __future__ import annotations

import base64
import binascii
import builtins  # the stores have a list() method: inside them, list is builtins.list
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from gateway.push.campaigns import Campaign, CampaignState, Window
from gateway.push.model import CANCELLABLE, Mode, State, check, recovered

# States a push waits in until a node claims it; those the unique partial index keeps to one push per MSISDN.
WAITING = (State.QUEUED, State.RETRY_WAIT)
IN_FLIGHT = (State.ROUTING, State.SENT)


class StoreError(Exception):
    """Base of the store's own refusals (a refused transition is :class:`gateway.push.model.TransitionError`)."""


class PushNotFoundError(StoreError, KeyError):
    """No push has this id."""


class IdempotencyMismatchError(StoreError):
    """The idempotency key was used before with another request body (the API answers 422)."""


class IdempotencyInFlightError(StoreError):
    """The first request with this idempotency key has not committed yet (the API answers 409)."""


class NotCancellableError(StoreError):
    """Only a push in :data:`gateway.push.model.CANCELLABLE` can be cancelled (the API answers 409)."""


class MsisdnBusyError(StoreError):
    """Another push of the same MSISDN is in flight (routing or sent): the unique partial index refused the move."""


class CampaignNotFoundError(StoreError, KeyError):
    """No campaign has this id (or it is still loading)."""


class CampaignStateError(StoreError):
    """The campaign's state does not allow the move (pause a cancelled campaign, ...): the API answers 409."""

    def __init__(self, campaign: Campaign, wanted: CampaignState) -> None:
        super().__init__(f"campaign {campaign.id} is {campaign.state}: it cannot be made {wanted}")
        self.campaign = campaign


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer gateway: this one does not know its schema and will not touch it."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    state: State
    at: float
    detail: str


@dataclass(frozen=True, slots=True)
class Push:
    """One push as stored. Times are Unix seconds (float), like the ``now`` the model and the host pass around."""

    id: str
    msisdn: str
    text: str
    mode: Mode
    state: State
    created_at: float
    updated_at: float
    expires_at: float
    next_attempt_at: float  # when a node may claim it (queued: its creation or a scheduled time; retry_wait: backoff)
    route: str | None = None  # request mode: the application the answer continues with
    cause: str | None = None
    answer: str | None = None
    attempts: int = 0
    campaign: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    callback_url: str | None = None
    callback_every_change: bool = False  # a callback for every state change, not only the final one
    dcs: int = 0x0F
    language: str | None = None
    priority: int = 0  # higher first
    token: str | None = None  # the name of the API token that created it
    claimed_by: str | None = None
    claimed_until: float | None = None
    history: tuple[HistoryEntry, ...] = ()


def new_push_id() -> str:
    return "p_" + uuid.uuid4().hex


def new_push(*, msisdn: str, text: str, mode: Mode, now: float, ttl_s: float, **extra: Any) -> Push:
    """A push ready for :meth:`PushStore.create`: queued, due now (``next_attempt_at`` in ``extra`` schedules it)."""
    fields: dict[str, Any] = {"next_attempt_at": now, **extra}
    return Push(id=new_push_id(), msisdn=msisdn, text=text, mode=mode, state=State.QUEUED, created_at=now,
                updated_at=now, expires_at=now + ttl_s,
                history=(HistoryEntry(State.QUEUED, now, "created"),), **fields)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Created:
    push: Push
    replayed: bool  # the same (token, key, request hash) was seen before: this is the first request's push


@dataclass(frozen=True, slots=True)
class Creation:
    """One push to create (:meth:`PushStore.create_many`): the idempotency key (None: none), the hash of the request
    and the name of the token it came with."""

    push: Push
    idempotency_key: str | None
    request_hash: str
    token: str


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of a group commit; a None field keeps the stored value."""

    id: str
    state: State
    detail: str
    cause: str | None = None
    answer: str | None = None
    attempts: int | None = None
    next_attempt_at: float | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A callback to deliver: ``payload`` is the push as JSON at the moment of the change it reports, written then
    (``created_at``: its age bounds the retries); ``attempts`` counts the failed ones."""

    delivery_id: str
    push_id: str
    url: str
    payload: Mapping[str, Any]
    attempts: int
    next_at: float
    created_at: float
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    hash: str
    scopes: tuple[str, ...]
    msisdn_prefix: str
    rate: float | None  # pushes per second; None: no limit of its own
    created_at: float
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class Page:
    items: tuple[Push, ...]
    cursor: str | None  # pass it back for the next page; None: this was the last


def push_json(push: Push) -> dict[str, Any]:
    """The push as a JSON object (the outbox payload)."""
    return {
        "id": push.id, "msisdn": push.msisdn, "text": push.text, "mode": push.mode.value, "route": push.route,
        "state": push.state.value, "cause": push.cause, "answer": push.answer, "attempts": push.attempts,
        "created_at": push.created_at, "updated_at": push.updated_at, "expires_at": push.expires_at,
        "next_attempt_at": push.next_attempt_at, "campaign": push.campaign, "metadata": dict(push.metadata),
        "dcs": push.dcs, "language": push.language, "priority": push.priority,
        "history": [{"state": h.state.value, "at": h.at, "detail": h.detail} for h in push.history],
    }  # fmt: skip


def apply(push: Push, change: Transition, now: float) -> tuple[Push, OutboxRow | None]:
    """The push after ``change`` (refused with TransitionError when the model refuses it) and the callback it owes.

    A move back to waiting or to a final state drops the claim (the push is claimable again, or never); ``routing``
    and ``sent`` keep it: it names the node with the push in flight."""
    check(push.state, change.state)
    claimed = change.state in IN_FLIGHT
    new = replace(
        push, state=change.state, updated_at=now,
        cause=push.cause if change.cause is None else change.cause,
        answer=push.answer if change.answer is None else change.answer,
        attempts=push.attempts if change.attempts is None else change.attempts,
        next_attempt_at=push.next_attempt_at if change.next_attempt_at is None else change.next_attempt_at,
        claimed_by=push.claimed_by if claimed else None, claimed_until=push.claimed_until if claimed else None,
        history=(*push.history, HistoryEntry(change.state, now, change.detail)),
    )  # fmt: skip
    if new.callback_url is None or not (new.state.final or new.callback_every_change):
        return new, None
    return new, OutboxRow("d_" + uuid.uuid4().hex, new.id, new.callback_url, push_json(new), 0, now, now)


def plan(current: dict[str, Push], changes: Sequence[Transition], now: float) -> tuple[list[Push], list[OutboxRow]]:
    """Apply ``changes`` in order to the loaded pushes (``current``, updated in place): the push after each change
    (each one is an UPDATE and a history row, in this order) and the callbacks owed. Raises before anything is
    written: PushNotFoundError, or TransitionError for the first refused change."""
    after: list[Push] = []
    outbox: list[OutboxRow] = []
    for change in changes:
        if change.id not in current:
            raise PushNotFoundError(change.id)
        new, row = apply(current[change.id], change, now)
        current[change.id] = new
        after.append(new)
        if row is not None:
            outbox.append(row)
    return after, outbox


def recovery(push: Push) -> Transition | None:
    """The crash rule (:func:`gateway.push.model.recovered`) as a transition."""
    state = recovered(push.state)
    if state is None:
        return None
    detail = "recovered: the SRI-for-SM's answer was lost" if state is State.QUEUED else \
        "recovered: the invoke may have reached the handset; never resent"  # fmt: skip
    return Transition(push.id, state, detail)


def cancellation(push: Push) -> Transition:
    if push.state not in CANCELLABLE:
        raise NotCancellableError(f"push {push.id} is {push.state}: only "
                                  f"{', '.join(sorted(CANCELLABLE))} can be cancelled")
    return Transition(push.id, State.CANCELLED, "cancelled")


OVERFETCH = 4  # claim_due reads this many candidates per push wanted: several of one MSISDN count once
TOKEN_SELECT = "SELECT name, hash, scopes, msisdn_prefix, rate, created_at, revoked_at FROM tokens"

# The pushes table's columns, in the order of push_values and push_from (both backends select and insert them so).
COLUMNS = ("id", "msisdn", "text", "mode", "route", "state", "cause", "answer", "attempts", "created_at",
           "updated_at", "expires_at", "next_attempt_at", "campaign", "metadata", "callback_url",
           "callback_every_change", "dcs", "language", "priority", "token", "claimed_by", "claimed_until")  # fmt: skip
SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM pushes"
# The callback outbox's columns but the lease (claimed_by, claimed_until), in the order of outbox_values and
# outbox_from: inserts name them, since the lease columns came later (migrations/0002_outbox_lease.sql).
OUTBOX_COLUMNS = ("delivery_id", "push_id", "url", "payload", "attempts", "next_at", "created_at", "last_error")
OUTBOX_SELECT = "SELECT " + ", ".join(OUTBOX_COLUMNS) + " FROM callback_outbox"
OUTBOX_INSERT = f"INSERT INTO callback_outbox ({', '.join(OUTBOX_COLUMNS)}) VALUES "
FINAL_SQL = ", ".join(f"'{s.value}'" for s in sorted(State) if s.final)  # for IN (...): constants, not user input
WAITING_SQL = ", ".join(f"'{s.value}'" for s in WAITING)
IN_FLIGHT_SQL = ", ".join(f"'{s.value}'" for s in IN_FLIGHT)


# The campaigns table's columns but the bucket, in the order of campaign_values and campaign_from.
CAMPAIGN_COLUMNS = ("id", "name", "text", "mode", "route", "callback_url", "rate_per_s", "window_start",
                    "window_end", "window_tz", "state", "token", "msisdn_prefix", "priority", "created_at",
                    "updated_at")  # fmt: skip
CAMPAIGN_SELECT = "SELECT " + ", ".join(CAMPAIGN_COLUMNS) + " FROM campaigns"
# A campaign's moves to routing in the last minute (push_history_routing, migrations/0003_campaigns.sql).
LAST_MINUTE = 60.0


def campaign_values(c: Campaign) -> tuple[Any, ...]:
    """The row of a new campaign (CAMPAIGN_COLUMNS, then bucket and bucket_at: one push may go at once)."""
    w = c.window
    return (c.id, c.name, c.text, c.mode.value, c.route, c.callback_url, c.rate_per_s,
            None if w is None else w.start, None if w is None else w.end, None if w is None else w.tz,
            c.state.value, c.token, c.msisdn_prefix, c.priority, c.created_at, c.updated_at,
            1.0, c.created_at)  # fmt: skip


def campaign_from(row: Iterable[Any]) -> Campaign:
    (id_, name, text, mode, route, callback_url, rate, start, end, tz, state, token, prefix, priority, created_at,
     updated_at) = row  # fmt: skip
    return Campaign(id=id_, name=name, text=text, mode=Mode(mode), rate_per_s=rate, state=CampaignState(state),
                    created_at=created_at, updated_at=updated_at, route=route, callback_url=callback_url,
                    window=None if start is None else Window(start, end, tz), token=token, msisdn_prefix=prefix,
                    priority=priority)  # fmt: skip


def campaign_cancellation(push: Push) -> Transition | None:
    """A waiting push of a cancelled campaign -> cancelled; one that moved on meanwhile is left alone."""
    if push.state not in CANCELLABLE:
        return None
    return Transition(push.id, State.CANCELLED, "cancelled with its campaign")


# Which states a campaign may be moved to from which (the API's pause, resume, cancel; loading -> active when the
# upload is stored). The same state again is allowed and changes nothing (a retried request).
CAMPAIGN_MOVES: dict[CampaignState, frozenset[CampaignState]] = {
    CampaignState.ACTIVE: frozenset({CampaignState.LOADING, CampaignState.PAUSED, CampaignState.ACTIVE}),
    CampaignState.PAUSED: frozenset({CampaignState.ACTIVE, CampaignState.PAUSED}),
    CampaignState.CANCELLED: frozenset({CampaignState.ACTIVE, CampaignState.PAUSED, CampaignState.CANCELLED}),
}


def push_values(push: Push) -> tuple[Any, ...]:
    return (push.id, push.msisdn, push.text, push.mode.value, push.route, push.state.value, push.cause, push.answer,
            push.attempts, push.created_at, push.updated_at, push.expires_at, push.next_attempt_at, push.campaign,
            json.dumps(dict(push.metadata)), push.callback_url, int(push.callback_every_change), push.dcs,
            push.language, push.priority, push.token, push.claimed_by, push.claimed_until)  # fmt: skip


def push_from(row: Iterable[Any], history: Sequence[HistoryEntry]) -> Push:
    """A push from a row selected with :data:`SELECT` (sqlite3.Row and asyncpg.Record both unpack)."""
    (id_, msisdn, text, mode, route, state, cause, answer, attempts, created_at, updated_at, expires_at,
     next_attempt_at, campaign, metadata, callback_url, every_change, dcs, language, priority, token, claimed_by,
     claimed_until) = row  # fmt: skip
    return Push(id=id_, msisdn=msisdn, text=text, mode=Mode(mode), route=route, state=State(state), cause=cause,
                answer=answer, attempts=attempts, created_at=created_at, updated_at=updated_at,
                expires_at=expires_at, next_attempt_at=next_attempt_at, campaign=campaign,
                metadata=json.loads(metadata), callback_url=callback_url, callback_every_change=bool(every_change),
                dcs=dcs, language=language, priority=priority, token=token, claimed_by=claimed_by,
                claimed_until=claimed_until, history=tuple(history))  # fmt: skip


def history_values(push: Push) -> tuple[Any, ...]:
    """The history row of the push's latest change: (push_id, seq, state, at, detail)."""
    last = push.history[-1]
    return (push.id, len(push.history) - 1, last.state.value, last.at, last.detail)


def update_values(push: Push) -> tuple[Any, ...]:
    """For UPDATE pushes SET state, cause, answer, attempts, updated_at, next_attempt_at, claimed_by,
    claimed_until WHERE id."""
    return (push.state.value, push.cause, push.answer, push.attempts, push.updated_at, push.next_attempt_at,
            push.claimed_by, push.claimed_until, push.id)  # fmt: skip


def outbox_values(row: OutboxRow) -> tuple[Any, ...]:
    """For INSERT INTO callback_outbox (OUTBOX_COLUMNS): a new row is not claimed."""
    return (row.delivery_id, row.push_id, row.url, json.dumps(dict(row.payload)), row.attempts, row.next_at,
            row.created_at, row.last_error)  # fmt: skip


def outbox_from(row: Iterable[Any]) -> OutboxRow:
    """A row selected with :data:`OUTBOX_SELECT`."""
    delivery_id, push_id, url, payload, attempts, next_at, created_at, last_error = row
    return OutboxRow(delivery_id, push_id, url, json.loads(payload), attempts, next_at, created_at, last_error)


def token_from(row: Iterable[Any]) -> Token:
    name, hash_, scopes, prefix, rate, created_at, revoked_at = row
    return Token(name, hash_, tuple(json.loads(scopes)), prefix, rate, created_at, revoked_at)


def encode_cursor(push: Push) -> str:
    return base64.urlsafe_b64encode(json.dumps([push.created_at, push.id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (created_at, id) a page ends at; ValueError for a cursor this store did not issue."""
    try:
        created_at, push_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"not a cursor: {cursor!r}") from exc
    if not isinstance(created_at, int | float) or not isinstance(push_id, str):
        raise ValueError(f"not a cursor: {cursor!r}")
    return float(created_at), push_id


def migrations() -> list[tuple[int, str]]:
    """The schema's migrations, (version, SQL) in order: gateway/push/migrations/NNNN_name.sql, written in the
    subset of SQL both SQLite and PostgreSQL run as is (TEXT, INTEGER, DOUBLE PRECISION, partial indexes)."""
    folder = resources.files("gateway.push") / "migrations"
    found = [(int(f.name.split("_", 1)[0]), f.read_text()) for f in folder.iterdir() if f.name.endswith(".sql")]
    return sorted(found)


def pending(current: int) -> list[tuple[int, str]]:
    """The migrations a database at schema version ``current`` (0: empty) still needs; SchemaTooNewError for a database
    a newer gateway migrated: this one does not know that schema and will not touch it."""
    known = migrations()
    latest = known[-1][0]
    if current > latest:
        raise SchemaTooNewError(f"the push store has schema version {current}; this gateway knows up to {latest}: "
                           "upgrade the gateway")  # fmt: skip
    return [(version, sql) for version, sql in known if version > current]


class PushStore(ABC):
    """The operations the push service runs on. Every method is a coroutine; no method blocks the event loop."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def create_many(self, items: Sequence[Creation]) -> builtins.list[Created | Exception]:
        """Insert queued pushes in ONE transaction (a group commit, design.md §8), each with its own answer, in
        order: Created, or the error of that item alone (the others are created all the same). The same (token,
        key) with the same request hash within the retention returns the existing push (``replayed``), also when
        the first is earlier in the same batch; with another hash: IdempotencyMismatchError; while the first is
        uncommitted: IdempotencyInFlightError. ``push.created_at`` is the request's time. An error of the store
        itself (the database unreachable) is raised, and nothing is written."""

    async def create(self, push: Push, idempotency_key: str | None, request_hash: str, token: str) -> Created:
        """One push: :meth:`create_many` of one item, its error raised."""
        (result,) = await self.create_many([Creation(push, idempotency_key, request_hash, token)])
        if isinstance(result, Exception):
            raise result
        return result

    @abstractmethod
    async def get(self, push_id: str) -> Push:
        """The push with its history; PushNotFoundError."""

    @abstractmethod
    async def list(self, *, state: State | None = None, msisdn: str | None = None, campaign: str | None = None,
                   cursor: str | None = None, limit: int = 100) -> Page:
        """Newest first, keyset-paginated on (created_at, id): a page does not shift when pushes are added."""

    @abstractmethod
    async def transition_many(self, changes: Sequence[Transition], now: float) -> builtins.list[Push]:
        """Apply the changes in order in ONE transaction (a group commit), all or none: TransitionError,
        PushNotFoundError or MsisdnBusyError for the first that fails, and nothing is written. Returns the pushes
        after each change."""

    async def transition(self, push_id: str, new_state: State, *, detail: str, cause: str | None = None,
                         answer: str | None = None, attempts: int | None = None,
                         next_attempt_at: float | None = None, now: float) -> Push:
        change = Transition(push_id, new_state, detail, cause, answer, attempts, next_attempt_at)
        return (await self.transition_many([change], now))[0]

    @abstractmethod
    async def claim_due(self, node_id: str, now: float, limit: int, lease_s: float) -> builtins.list[Push]:
        """Claim up to ``limit`` due pushes (queued or retry_wait with next_attempt_at <= now, not expired, not
        under another live lease), higher priority first then oldest, at most one per MSISDN and none whose MSISDN
        is in flight or claimed; the claim lasts until ``now + lease_s``. A campaign's push only while its campaign
        is active and inside its window, and no more of one campaign than its token bucket holds (spent in this
        transaction: gateway/push/campaigns.py)."""

    @abstractmethod
    async def release(self, node_id: str, push_ids: Sequence[str]) -> None:
        """Give up this node's claims on these waiting pushes (claimed, then found not to be sendable now): they are
        claimable again at once rather than when the lease runs out."""

    @abstractmethod
    async def expire_due(self, now: float) -> int:
        """Waiting pushes past their expires_at -> expired (with their callbacks); how many."""

    @abstractmethod
    async def recover(self, now: float, *, node_id: str | None = None) -> dict[State, int]:
        """Apply the crash rule to the unfinished pushes (all of them, or those ``node_id`` claimed); counts per
        resulting state."""

    @abstractmethod
    async def cancel(self, push_id: str, now: float) -> Push:
        """queued | retry_wait -> cancelled; NotCancellableError otherwise."""

    @abstractmethod
    async def outbox_due(self, now: float, limit: int, node_id: str, lease_s: float) -> builtins.list[OutboxRow]:
        """Claim up to ``limit`` due callbacks (next_at <= now, not under a live lease, this node's included),
        oldest due first; the claim lasts until ``now + lease_s``: no other node gets them before, whatever it
        asks, and every node may after (the sender died)."""

    @abstractmethod
    async def outbox_done(self, delivery_id: str) -> None:
        """Delivered, or given up: the row is deleted."""

    @abstractmethod
    async def outbox_retry(self, delivery_id: str, next_at: float, error: str) -> None:
        """One more failed attempt: due again at ``next_at``, and the claim is released."""

    @abstractmethod
    async def token_create(self, name: str, hash: str, scopes: Sequence[str], msisdn_prefix: str,
                           rate: float | None, now: float) -> Token:
        """Store a token by its hash (gateway/push/tokens.py makes both); StoreError when the name is taken."""

    @abstractmethod
    async def token_by_hash(self, hash: str) -> Token | None:
        """The live token with this hash; None for an unknown or revoked one."""

    @abstractmethod
    async def token_list(self) -> builtins.list[Token]: ...

    @abstractmethod
    async def token_revoke(self, name: str, now: float) -> bool:
        """False when no live token has this name."""

    @abstractmethod
    async def purge(self, now: float, retention_s: float) -> tuple[int, int]:
        """Delete finished pushes last changed, and idempotency keys made, more than ``retention_s`` ago;
        (pushes, keys) deleted."""

    @abstractmethod
    async def counts(self) -> dict[State, int]:
        """Pushes per state, every state present (queue depth for the metrics)."""

    # --- campaigns (gateway/push/campaigns.py) ---

    @abstractmethod
    async def campaign_create(self, campaign: Campaign) -> None:
        """Insert a campaign (``loading``: its pushes are added next, then it is made active)."""

    @abstractmethod
    async def campaign_add(self, pushes: Sequence[Push]) -> None:
        """Insert a batch of queued pushes (of one campaign) in one transaction, bulk: no idempotency keys."""

    @abstractmethod
    async def campaign_discard(self, campaign_id: str) -> None:
        """Delete a campaign and all its pushes (an upload that failed half way)."""

    @abstractmethod
    async def campaigns_loading_since(self, before: float) -> builtins.list[str]:
        """The campaigns still ``loading`` that were created before ``before``: uploads a crash cut off, which
        nothing will finish (the purge discards them)."""

    @abstractmethod
    async def campaign_get(self, campaign_id: str) -> Campaign:
        """The campaign; CampaignNotFoundError, also for one still loading."""

    @abstractmethod
    async def campaign_move(self, campaign_id: str, state: CampaignState, now: float) -> Campaign:
        """Move the campaign to ``state`` as :data:`CAMPAIGN_MOVES` allows (CampaignStateError otherwise);
        CampaignNotFoundError. Cancelling a campaign does not cancel its pushes: :meth:`campaign_cancel_waiting`
        does, in batches; meanwhile none of them is claimed (the campaign is no longer active)."""

    @abstractmethod
    async def campaign_cancel_waiting(self, campaign_id: str, now: float, limit: int) -> int:
        """Cancel up to ``limit`` waiting pushes of the campaign (with their callbacks) in one transaction; how
        many. Call again until it answers 0."""

    @abstractmethod
    async def campaign_stats(self, campaign_id: str, now: float) -> tuple[dict[State, int], int]:
        """The campaign's pushes per state (every state present) and how many moved to routing in the
        :data:`LAST_MINUTE` before ``now``."""
