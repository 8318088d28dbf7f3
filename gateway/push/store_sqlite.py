"""The push store on SQLite (the default: one gateway node, ``var/push.db``).

Off the event loop: the stdlib sqlite3 on ONE dedicated thread (a single-worker executor) that owns the connection
and runs every operation as a whole, transaction included; the loop only awaits its future. One writer thread
is what SQLite wants anyway (one writer at a time, https://www.sqlite.org/wal.html: "there can only be one
writer"), it serialises the store's transactions without a lock of ours, and it needs no dependency: aiosqlite
is the same design (a thread per connection) with a queue hop per statement instead of one per operation.
Measured (bench/bench_push_store.py, 2-core VM): while the thread commits batches of 200 changes, the loop's
p99 stall is 0.02 ms; the worst single stalls (10-19 ms per run) are the loop waiting for the
GIL while the thread runs its Python (rows to records, JSON): asyncio's slow-callback log shows a trivial task
step taking that long, and neither gc.disable() nor a 1 ms switch interval changes it. Never a wait on the disk:
sqlite3 releases the GIL while SQLite works and syncs.

WAL (https://www.sqlite.org/wal.html): readers do not block the writer, and a commit is one append to the WAL.
``synchronous=FULL``, by measurement and by the crash rule (https://www.sqlite.org/pragma.html#pragma_synchronous):
NORMAL syncs the WAL only at checkpoints, so a power cut may lose the last commits, and a lost ``sent`` would come
back as ``routing`` and be sent again, breaking at-most-once to the handset (design.md §8). Measured: one
transaction per change, FULL 742/s against NORMAL 1,657/s; with group commits of 200, FULL 5,980/s and NORMAL
5,015/s (the fsync is paid once per batch and vanishes in the noise), above the 3,000/s that 1,000 pushes/s need.

Transactions are ``BEGIN IMMEDIATE``: the write lock is taken at the start, so a transaction never fails half way
on SQLITE_BUSY (https://www.sqlite.org/lang_transaction.html).
"""

from __future__ import annotations

import asyncio
import builtins  # the stores have a list() method: inside them, list is builtins.list
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from gateway.push.campaigns import PACE_SELECT, Campaign, CampaignState, Candidate, pace, pick, spent_by_campaign
from gateway.push.model import State
from gateway.push.store import (
    CAMPAIGN_COLUMNS,
    CAMPAIGN_MOVES,
    CAMPAIGN_SELECT,
    COLUMNS,
    FINAL_SQL,
    IN_FLIGHT_SQL,
    LAST_MINUTE,
    OUTBOX_COLUMNS,
    OUTBOX_INSERT,
    OUTBOX_SELECT,
    OVERFETCH,
    SELECT,
    TOKEN_SELECT,
    WAITING_SQL,
    CampaignNotFoundError,
    CampaignStateError,
    Created,
    Creation,
    HistoryEntry,
    IdempotencyMismatchError,
    MsisdnBusyError,
    OutboxRow,
    Page,
    Push,
    PushNotFoundError,
    PushStore,
    StoreError,
    Token,
    Transition,
    campaign_cancellation,
    campaign_from,
    campaign_values,
    cancellation,
    decode_cursor,
    encode_cursor,
    history_values,
    outbox_from,
    outbox_values,
    pending,
    plan,
    push_from,
    push_values,
    recovery,
    token_from,
    update_values,
)

T = TypeVar("T")
# claim_due's candidates, then a campaign condition, then _CLAIM_ORDER: (now, now, now, now[, campaign], limit).
_CANDIDATES = (
    f"SELECT id, msisdn, campaign, priority, created_at FROM pushes p WHERE state IN ({WAITING_SQL}) "
    "AND next_attempt_at <= ? AND expires_at > ? AND (claimed_until IS NULL OR claimed_until <= ?) "
    "AND NOT EXISTS (SELECT 1 FROM pushes o WHERE o.msisdn = p.msisdn AND o.id <> p.id "
    f"  AND (o.state IN ({IN_FLIGHT_SQL}) OR o.claimed_until > ?))"
)
_CLAIM_ORDER = "ORDER BY priority DESC, created_at, id LIMIT ?"
Synchronous = Literal["NORMAL", "FULL"]
# Ids per IN (...): SQLite allows 32,766 parameters (https://www.sqlite.org/limits.html#max_variable_number), and
# expire_due or recover may load more pushes than that at once.
LOAD_CHUNK = 1000


class SqliteStore(PushStore):
    def __init__(self, db: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._db = db
        self._executor = executor

    @classmethod
    async def open(cls, path: str | Path, *, synchronous: Synchronous = "FULL") -> SqliteStore:
        """Open (creating it and its directory) and migrate the database; SchemaTooNewError for a newer schema."""
        executor = ThreadPoolExecutor(1, thread_name_prefix="push-sqlite")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, _connect, Path(path), synchronous)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor)

    async def close(self) -> None:
        await self._run(self._db.close)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _txn(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the store's thread in a write transaction."""
        return await self._run(self._in_txn, "BEGIN IMMEDIATE", fn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the store's thread in a read transaction: its SELECTs see one snapshot."""
        return await self._run(self._in_txn, "BEGIN DEFERRED", fn, *args)

    def _in_txn(self, begin: str, fn: Callable[..., T], *args: Any) -> T:  # on the store's thread
        self._db.execute(begin)
        try:
            result = fn(*args)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return result

    # --- on the store's thread ---

    def _load(self, ids: Sequence[str]) -> dict[str, Push]:
        loaded: dict[str, Push] = {}
        for start in range(0, len(ids), LOAD_CHUNK):
            chunk = ids[start:start + LOAD_CHUNK]
            marks = ", ".join("?" * len(chunk))
            histories: dict[str, list[HistoryEntry]] = {i: [] for i in chunk}
            for push_id, state, at, detail in self._db.execute(
                    f"SELECT push_id, state, at, detail FROM push_history WHERE push_id IN ({marks}) "
                    "ORDER BY push_id, seq", chunk):  # fmt: skip
                histories[push_id].append(HistoryEntry(State(state), at, detail))
            for row in self._db.execute(f"{SELECT} WHERE id IN ({marks})", chunk):
                loaded[row[0]] = push_from(row, histories[row[0]])
        return loaded

    def _write(self, after: Sequence[Push], outbox: Sequence[OutboxRow]) -> None:
        try:
            self._db.executemany("UPDATE pushes SET state = ?, cause = ?, answer = ?, attempts = ?, updated_at = ?, "
                                 "next_attempt_at = ?, claimed_by = ?, claimed_until = ? WHERE id = ?",
                                 [update_values(p) for p in after])  # fmt: skip
        except sqlite3.IntegrityError as exc:
            if "pushes.msisdn" in str(exc):  # the unique partial index pushes_msisdn_in_flight
                raise MsisdnBusyError(str(exc)) from exc
            raise
        self._db.executemany("INSERT INTO push_history VALUES (?, ?, ?, ?, ?)", [history_values(p) for p in after])
        self._db.executemany(OUTBOX_INSERT + f"({', '.join('?' * len(OUTBOX_COLUMNS))})",
                             [outbox_values(row) for row in outbox])  # fmt: skip

    def _apply(self, changes: Sequence[Transition], now: float) -> builtins.list[Push]:
        after, outbox = plan(self._load(list({c.id: None for c in changes})), changes, now)
        self._write(after, outbox)
        return after

    def _rewrite(self, sql: str, args: Sequence[Any], decide: Callable[[Push], Transition | None],
                 now: float) -> builtins.list[Push]:
        """The pushes ``sql`` selects (their ids), changed as ``decide`` says."""
        current = self._load([row[0] for row in self._db.execute(sql, args)])
        changes = [c for c in map(decide, current.values()) if c is not None]
        return self._apply(changes, now)

    def _create(self, item: Creation) -> Created:
        push, key = replace(item.push, token=item.token), item.idempotency_key
        if key is not None:
            row = self._db.execute("SELECT request_hash, push_id FROM idempotency_keys WHERE token = ? AND key = ?",
                                   (item.token, key)).fetchone()  # fmt: skip
            if row is not None:
                if row[0] != item.request_hash:
                    raise IdempotencyMismatchError(f"idempotency key {key!r} was used with another request")
                # Batches run one at a time on this thread, and a batch's items in order: the first request has
                # committed or is earlier in this transaction, there is no in-flight case
                # (IdempotencyInFlightError) on SQLite.
                return Created(self._load([row[1]])[row[1]], replayed=True)
            self._db.execute("INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                             (item.token, key, item.request_hash, push.id, push.created_at))  # fmt: skip
        self._db.execute(f"INSERT INTO pushes VALUES ({', '.join('?' * len(push_values(push)))})", push_values(push))
        self._db.executemany("INSERT INTO push_history VALUES (?, ?, ?, ?, ?)",
                             [(push.id, seq, h.state.value, h.at, h.detail) for seq, h in enumerate(push.history)])
        return Created(push, replayed=False)

    def _create_many(self, items: Sequence[Creation]) -> builtins.list[Created | Exception]:
        """Each item in a SAVEPOINT (https://www.sqlite.org/lang_savepoint.html): one refused item is undone alone
        and the others commit with the batch, in one fsync (design.md §8, group commits)."""
        results: builtins.list[Created | Exception] = []
        for item in items:
            self._db.execute("SAVEPOINT item")
            try:
                results.append(self._create(item))
            except (StoreError, sqlite3.IntegrityError) as exc:
                self._db.execute("ROLLBACK TO item")
                results.append(exc)
            self._db.execute("RELEASE item")
        return results

    def _claim(self, node_id: str, now: float, limit: int, lease_s: float) -> builtins.list[Push]:
        paces = {p.id: p for p in (pace(row, now) for row in self._db.execute(PACE_SELECT))}
        candidates = [Candidate(*row) for row in self._db.execute(
            f"{_CANDIDATES} AND campaign IS NULL {_CLAIM_ORDER}", (now, now, now, now, limit * OVERFETCH))]
        for p in paces.values():
            if p.allowance > 0:
                candidates += [Candidate(*row) for row in self._db.execute(
                    f"{_CANDIDATES} AND campaign = ? {_CLAIM_ORDER}",
                    (now, now, now, now, p.id, min(p.allowance, limit) * OVERFETCH))]  # fmt: skip
        taken = pick(candidates, {p.id: p.allowance for p in paces.values()}, limit)
        ids = [c.id for c in taken]
        self._db.executemany("UPDATE pushes SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                             [(node_id, now + lease_s, i) for i in ids])  # fmt: skip
        self._db.executemany("UPDATE campaigns SET bucket = ?, bucket_at = ? WHERE id = ?",
                             [(paces[c].level - n, max(paces[c].bucket_at, now), c)
                              for c, n in spent_by_campaign(taken).items()])  # fmt: skip
        claimed = self._load(ids)
        return [claimed[i] for i in ids]

    def _claim_outbox(self, now: float, limit: int, node_id: str, lease_s: float) -> builtins.list[OutboxRow]:
        # BEGIN IMMEDIATE (_txn) holds the write lock from the SELECT to the UPDATE: a second process on the file
        # claims after this one committed, and sees these claims.
        rows = [outbox_from(row) for row in self._db.execute(
            f"{OUTBOX_SELECT} WHERE next_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?) "
            "ORDER BY next_at, delivery_id LIMIT ?", (now, now, limit))]  # fmt: skip
        self._db.executemany("UPDATE callback_outbox SET claimed_by = ?, claimed_until = ? WHERE delivery_id = ?",
                             [(node_id, now + lease_s, row.delivery_id) for row in rows])  # fmt: skip
        return rows

    def _list(self, where: str, args: Sequence[Any], limit: int) -> tuple[list[Push], bool]:
        rows = self._db.execute(f"SELECT id FROM pushes {where} ORDER BY created_at DESC, id DESC LIMIT ?",
                                (*args, limit + 1)).fetchall()  # fmt: skip
        ids = [r[0] for r in rows[:limit]]
        loaded = self._load(ids)
        return [loaded[i] for i in ids], len(rows) > limit

    def _purge(self, cutoff: float) -> tuple[int, int]:
        finished = f"SELECT id FROM pushes WHERE state IN ({FINAL_SQL}) AND updated_at < ?"
        self._db.execute(f"DELETE FROM push_history WHERE push_id IN ({finished})", (cutoff,))
        pushes = self._db.execute(f"DELETE FROM pushes WHERE id IN ({finished})", (cutoff,)).rowcount
        keys = self._db.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (cutoff,)).rowcount
        return pushes, keys

    def _token_create(self, values: tuple[Any, ...]) -> None:
        try:
            self._db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, NULL)", values)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"token {values[0]!r}: {exc}") from exc

    def _query(self, sql: str, args: Sequence[Any] = ()) -> builtins.list[sqlite3.Row]:
        return self._db.execute(sql, args).fetchall()

    def _execute(self, sql: str, args: Sequence[Any]) -> int:
        return self._db.execute(sql, args).rowcount

    # --- the interface ---

    async def create_many(self, items: Sequence[Creation]) -> builtins.list[Created | Exception]:
        return await self._txn(self._create_many, items)

    async def get(self, push_id: str) -> Push:
        found = await self._read(self._load, [push_id])
        if push_id not in found:
            raise PushNotFoundError(push_id)
        return found[push_id]

    async def list(self, *, state: State | None = None, msisdn: str | None = None, campaign: str | None = None,
                   cursor: str | None = None, limit: int = 100) -> Page:
        conditions: builtins.list[str] = []
        args: builtins.list[Any] = []
        for column, value in (("state", state), ("msisdn", msisdn), ("campaign", campaign)):
            if value is not None:
                conditions.append(f"{column} = ?")
                args.append(value)
        if cursor is not None:
            created_at, push_id = decode_cursor(cursor)
            conditions.append("(created_at < ? OR (created_at = ? AND id < ?))")
            args += [created_at, created_at, push_id]
        where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
        items, more = await self._read(self._list, where, args, limit)
        return Page(tuple(items), encode_cursor(items[-1]) if more else None)

    async def transition_many(self, changes: Sequence[Transition], now: float) -> builtins.list[Push]:
        return await self._txn(self._apply, changes, now)

    async def claim_due(self, node_id: str, now: float, limit: int, lease_s: float) -> builtins.list[Push]:
        return await self._txn(self._claim, node_id, now, limit, lease_s)

    async def release(self, node_id: str, push_ids: Sequence[str]) -> None:
        for chunk in range(0, len(push_ids), LOAD_CHUNK):
            ids = list(push_ids[chunk : chunk + LOAD_CHUNK])
            await self._txn(self._execute, "UPDATE pushes SET claimed_by = NULL, claimed_until = NULL WHERE "
                            f"claimed_by = ? AND state IN ({WAITING_SQL}) AND id IN ({', '.join('?' * len(ids))})",
                            (node_id, *ids))  # fmt: skip

    async def expire_due(self, now: float) -> int:
        def expire(push: Push) -> Transition:
            return Transition(push.id, State.EXPIRED, "expired before it could be sent")

        sql = f"SELECT id FROM pushes WHERE state IN ({WAITING_SQL}) AND expires_at <= ?"
        return len(await self._txn(self._rewrite, sql, (now,), expire, now))

    async def recover(self, now: float, *, node_id: str | None = None) -> dict[State, int]:
        sql = f"SELECT id FROM pushes WHERE state IN ({IN_FLIGHT_SQL})"
        if node_id is not None:
            sql += " AND claimed_by = ?"
        after = await self._txn(self._rewrite, sql, () if node_id is None else (node_id,), recovery, now)
        if node_id is not None:  # what this node had claimed and not started is claimable again now, not at its lease
            await self._txn(self._execute, "UPDATE pushes SET claimed_by = NULL, claimed_until = NULL WHERE "
                            f"claimed_by = ? AND state IN ({WAITING_SQL})", (node_id,))  # fmt: skip
            await self._txn(self._execute, "UPDATE callback_outbox SET claimed_by = NULL, claimed_until = NULL "
                            "WHERE claimed_by = ?", (node_id,))  # fmt: skip
        return {s: sum(p.state is s for p in after) for s in (State.QUEUED, State.UNCONFIRMED)}

    async def cancel(self, push_id: str, now: float) -> Push:
        after = await self._txn(self._rewrite, "SELECT id FROM pushes WHERE id = ?", (push_id,), cancellation, now)
        if not after:
            raise PushNotFoundError(push_id)
        return after[0]

    async def outbox_due(self, now: float, limit: int, node_id: str, lease_s: float) -> builtins.list[OutboxRow]:
        return await self._txn(self._claim_outbox, now, limit, node_id, lease_s)

    async def outbox_done(self, delivery_id: str) -> None:
        await self._txn(self._execute, "DELETE FROM callback_outbox WHERE delivery_id = ?", (delivery_id,))

    async def outbox_retry(self, delivery_id: str, next_at: float, error: str) -> None:
        await self._txn(self._execute, "UPDATE callback_outbox SET attempts = attempts + 1, next_at = ?, "
                        "last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE delivery_id = ?",
                        (next_at, error, delivery_id))  # fmt: skip

    async def token_create(self, name: str, hash: str, scopes: Sequence[str], msisdn_prefix: str,
                           rate: float | None, now: float) -> Token:
        token = Token(name, hash, tuple(scopes), msisdn_prefix, rate, now)
        await self._txn(self._token_create, (name, hash, json.dumps(list(scopes)), msisdn_prefix, rate, now))
        return token

    async def token_by_hash(self, hash: str) -> Token | None:
        rows = await self._run(self._query, f"{TOKEN_SELECT} WHERE hash = ? AND revoked_at IS NULL", (hash,))
        return token_from(rows[0]) if rows else None

    async def token_list(self) -> builtins.list[Token]:
        return [token_from(row) for row in await self._run(self._query, f"{TOKEN_SELECT} ORDER BY name")]

    async def token_revoke(self, name: str, now: float) -> bool:
        sql = "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL"
        return await self._txn(self._execute, sql, (now, name)) > 0

    async def purge(self, now: float, retention_s: float) -> tuple[int, int]:
        return await self._txn(self._purge, now - retention_s)

    async def counts(self) -> dict[State, int]:
        rows = await self._run(self._query, "SELECT state, COUNT(*) FROM pushes GROUP BY state")
        return {State(state): 0 for state in State} | {State(state): n for state, n in rows}

    # --- campaigns ---

    def _campaign(self, campaign_id: str) -> Campaign:
        row = self._db.execute(f"{CAMPAIGN_SELECT} WHERE id = ?", (campaign_id,)).fetchone()
        if row is None:
            raise CampaignNotFoundError(campaign_id)
        return campaign_from(row)

    def _campaign_add(self, pushes: Sequence[Push]) -> None:
        self._db.executemany(f"INSERT INTO pushes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                             [push_values(p) for p in pushes])  # fmt: skip
        self._db.executemany("INSERT INTO push_history VALUES (?, ?, ?, ?, ?)",
                             [(p.id, seq, h.state.value, h.at, h.detail) for p in pushes
                              for seq, h in enumerate(p.history)])  # fmt: skip

    def _campaign_discard(self, campaign_id: str) -> None:
        self._db.execute("DELETE FROM push_history WHERE push_id IN (SELECT id FROM pushes WHERE campaign = ?)",
                         (campaign_id,))  # fmt: skip
        self._db.execute("DELETE FROM pushes WHERE campaign = ?", (campaign_id,))
        self._db.execute("DELETE FROM campaigns WHERE id = ?", (campaign_id,))

    def _campaign_move(self, campaign_id: str, state: CampaignState, now: float) -> Campaign:
        campaign = self._campaign(campaign_id)
        if campaign.state is CampaignState.LOADING and state is not CampaignState.ACTIVE:
            raise CampaignNotFoundError(campaign_id)  # not there yet for the API
        if campaign.state not in CAMPAIGN_MOVES[state]:
            raise CampaignStateError(campaign, state)
        if campaign.state is not state:
            self._db.execute("UPDATE campaigns SET state = ?, updated_at = ? WHERE id = ?",
                             (state.value, now, campaign_id))  # fmt: skip
            campaign = replace(campaign, state=state, updated_at=now)
        return campaign

    def _campaign_stats(self, campaign_id: str, now: float) -> tuple[dict[State, int], int]:
        rows = self._db.execute("SELECT state, COUNT(*) FROM pushes WHERE campaign = ? GROUP BY state",
                                (campaign_id,)).fetchall()  # fmt: skip
        recent = self._db.execute(
            "SELECT COUNT(*) FROM push_history h JOIN pushes p ON p.id = h.push_id "
            "WHERE h.state = 'routing' AND h.at > ? AND p.campaign = ?", (now - LAST_MINUTE, campaign_id)).fetchone()
        return {s: 0 for s in State} | {State(state): n for state, n in rows}, recent[0]

    async def campaign_create(self, campaign: Campaign) -> None:
        values = campaign_values(campaign)
        await self._txn(self._execute, f"INSERT INTO campaigns ({', '.join(CAMPAIGN_COLUMNS)}, bucket, bucket_at) "
                        f"VALUES ({', '.join('?' * len(values))})", values)  # fmt: skip

    async def campaign_add(self, pushes: Sequence[Push]) -> None:
        await self._txn(self._campaign_add, pushes)

    async def campaigns_loading_since(self, before: float) -> builtins.list[str]:
        rows = await self._run(self._query, "SELECT id FROM campaigns WHERE state = 'loading' AND created_at < ?",
                               (before,))  # fmt: skip
        return [str(row[0]) for row in rows]

    async def campaign_discard(self, campaign_id: str) -> None:
        await self._txn(self._campaign_discard, campaign_id)

    async def campaign_get(self, campaign_id: str) -> Campaign:
        campaign = await self._read(self._campaign, campaign_id)
        if campaign.state is CampaignState.LOADING:
            raise CampaignNotFoundError(campaign_id)
        return campaign

    async def campaign_move(self, campaign_id: str, state: CampaignState, now: float) -> Campaign:
        return await self._txn(self._campaign_move, campaign_id, state, now)

    async def campaign_cancel_waiting(self, campaign_id: str, now: float, limit: int) -> int:
        sql = f"SELECT id FROM pushes WHERE campaign = ? AND state IN ({WAITING_SQL}) LIMIT ?"
        return len(await self._txn(self._rewrite, sql, (campaign_id, limit), campaign_cancellation, now))

    async def campaign_stats(self, campaign_id: str, now: float) -> tuple[dict[State, int], int]:
        return await self._read(self._campaign_stats, campaign_id, now)


def _connect(path: Path, synchronous: Synchronous) -> sqlite3.Connection:  # on the store's thread
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit transactions; every write runs in an explicit BEGIN IMMEDIATE ... COMMIT.
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("PRAGMA busy_timeout=5000")  # a second process (the CLI) waits for the writer, not fails
        _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
               "applied_at DOUBLE PRECISION NOT NULL)")  # fmt: skip
    current = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
    for version, sql in pending(current):
        # executescript runs the file as it is; the BEGIN/COMMIT around it makes each migration all or nothing.
        try:
            db.executescript(f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO schema_version VALUES ({version}, {time.time()});"
                             "\nCOMMIT;")  # fmt: skip
        except sqlite3.Error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
