"""The push store on PostgreSQL (``store = "postgresql://..."``: several gateway nodes on one database).

asyncpg, an asyncio driver: the loop never blocks on the database, and a pool of connections lets claims, group
commits and API reads run side by side. Each operation is one transaction on one pooled connection.

Round trips (design.md §8: one per batch, not one per change): a group commit locks and loads its pushes in two
statements and writes them with ``executemany``, which asyncpg pipelines (one round trip for all the rows,
https://magicstack.github.io/asyncpg/current/api/index.html#asyncpg.connection.Connection.executemany): the cost of
a batch does not grow with its size in round trips, only in rows. Measured (bench/bench_push_store.py, a local
server with fsync and synchronous_commit on): one transaction per change 269 changes/s, group commits of 200
4,266/s. The Python work of a batch (records, JSON) runs on the loop: 200 changes hold it up to ~30 ms, so the
push service should keep its batches to a loop turn's worth, as design.md §8 has it.

Claiming across nodes (design.md §8): ``SELECT ... FOR UPDATE SKIP LOCKED`` (two nodes never wait on, nor take,
each other's rows, https://www.postgresql.org/docs/15/sql-select.html#SQL-FOR-UPDATE-SHARE) and a lease: a dead
node's claims run out at ``claimed_until``. SKIP LOCKED also hides from one node the push of an MSISDN another
node is claiming in the same instant; a transaction-scoped advisory lock per MSISDN and a re-check in a new
snapshot (READ COMMITTED takes one per statement) keep the claim to one node, and the unique partial index on the
in-flight states is the last word in any case.
"""

from __future__ import annotations

import builtins  # the store has a list() method: inside it, list is builtins.list
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import asyncpg

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
    IdempotencyInFlightError,
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

if TYPE_CHECKING:  # asyncpg's classes are generic only in asyncpg-stubs
    from asyncpg.pool import PoolConnectionProxy

    Conn = PoolConnectionProxy[asyncpg.Record]
# pg_try_advisory_xact_lock(key1, key2) namespaces: ours do not collide with other users of advisory locks.
LOCK_MIGRATE, LOCK_MSISDN = 0x70757368, 0x7075736D
# How long create() waits for an uncommitted first request with the same idempotency key before answering that it
# is in flight (Stripe's 409); the lock_timeout applies to that wait only (SET LOCAL, this transaction).
IN_FLIGHT_WAIT = "200ms"
# claim_due's candidates, then a campaign condition, then _CLAIM_ORDER: ($1 now, $2 limit[, $3 campaign]).
_CANDIDATES = (
    f"SELECT id, msisdn, campaign, priority, created_at FROM pushes p WHERE state IN ({WAITING_SQL}) "
    "AND next_attempt_at <= $1 AND expires_at > $1 AND (claimed_until IS NULL OR claimed_until <= $1) "
    "AND NOT EXISTS (SELECT 1 FROM pushes o WHERE o.msisdn = p.msisdn AND o.id <> p.id "
    f"  AND (o.state IN ({IN_FLIGHT_SQL}) OR o.claimed_until > $1))"
)
_CLAIM_ORDER = "ORDER BY priority DESC, created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"


class PostgresStore(PushStore):
    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> PostgresStore:
        """Connect a pool and migrate the schema; SchemaTooNewError for a newer one."""
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        try:
            async with pool.acquire() as conn:
                await _migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    # --- inside a transaction ---

    @staticmethod
    async def _load(conn: Conn, ids: Sequence[str], *, lock: bool) -> dict[str, Push]:
        """The pushes with their histories; ``lock``: FOR UPDATE, in id order so that two batches over the same
        pushes lock them in the same order and cannot deadlock."""
        if not ids:
            return {}
        histories: dict[str, builtins.list[HistoryEntry]] = {i: [] for i in ids}
        rows = await conn.fetch(f"{SELECT} WHERE id = ANY($1::text[]) ORDER BY id{' FOR UPDATE' if lock else ''}",
                                ids)  # fmt: skip
        for push_id, state, at, detail in await conn.fetch(
                "SELECT push_id, state, at, detail FROM push_history WHERE push_id = ANY($1::text[]) "
                "ORDER BY push_id, seq", ids):  # fmt: skip
            histories[push_id].append(HistoryEntry(State(state), at, detail))
        return {row[0]: push_from(row, histories[row[0]]) for row in rows}

    @staticmethod
    async def _write(conn: Conn, after: Sequence[Push], outbox: Sequence[OutboxRow]) -> None:
        try:
            await conn.executemany("UPDATE pushes SET state = $1, cause = $2, answer = $3, attempts = $4, "
                                   "updated_at = $5, next_attempt_at = $6, claimed_by = $7, claimed_until = $8 "
                                   "WHERE id = $9", [update_values(p) for p in after])  # fmt: skip
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "pushes_msisdn_in_flight":
                raise MsisdnBusyError(str(exc)) from exc
            raise
        await conn.executemany("INSERT INTO push_history VALUES ($1, $2, $3, $4, $5)",
                               [history_values(p) for p in after])  # fmt: skip
        if outbox:
            marks = ", ".join(f"${i + 1}" for i in range(len(OUTBOX_COLUMNS)))
            await conn.executemany(f"{OUTBOX_INSERT}({marks})", [outbox_values(row) for row in outbox])

    async def _rewrite(self, sql: str, args: Sequence[Any], decide: Callable[[Push], Transition | None],
                       now: float) -> builtins.list[Push]:
        """The pushes ``sql`` selects and locks (their ids), changed as ``decide`` says, in one transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            ids = [row[0] for row in await conn.fetch(sql, *args)]
            current = await self._load(conn, ids, lock=False)
            changes = [c for c in map(decide, current.values()) if c is not None]
            after, outbox = plan(current, changes, now)
            await self._write(conn, after, outbox)
            return after

    # --- the interface ---

    async def create_many(self, items: Sequence[Creation]) -> builtins.list[Created | Exception]:
        # One transaction and a constant number of round trips for the whole batch (design.md §8, group commits).
        # Only a key whose first request is uncommitted, in another transaction, fails the set-based statement
        # (past the lock_timeout): then the batch is done again item by item, each in a savepoint, so that only
        # the items with that key are told it is in flight.
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                return await self._create_set(conn, items)
        except asyncpg.LockNotAvailableError:
            async with self._pool.acquire() as conn, conn.transaction():
                return [await self._create_one(conn, item) for item in items]

    async def _create_one(self, conn: Conn, item: Creation) -> Created | Exception:
        try:
            async with conn.transaction():  # a savepoint: an item in flight is undone alone
                (result,) = await self._create_set(conn, [item])
        except asyncpg.LockNotAvailableError:
            return IdempotencyInFlightError(f"idempotency key {item.idempotency_key!r}: the first request with it "
                                            "is still in progress")  # fmt: skip
        return result

    async def _create_set(self, conn: Conn, items: Sequence[Creation]) -> builtins.list[Created | Exception]:
        """Insert the items' idempotency keys in one statement (ON CONFLICT DO NOTHING: those that come back are
        new), answer the others from the keys already stored (a replay or a mismatch), then insert the new
        pushes; a replayed push is loaded last, so that the replay of a push created earlier in this batch finds
        it. LockNotAvailableError: some key's first request is uncommitted in another transaction."""
        pushes = [replace(item.push, token=item.token) for item in items]
        keyed = [(item, push) for item, push in zip(items, pushes, strict=True) if item.idempotency_key is not None]
        new = {push.id for item, push in zip(items, pushes, strict=True) if item.idempotency_key is None}
        stored: dict[tuple[str, str | None], tuple[str, str]] = {}  # (token, key) -> (request hash, push id)
        if keyed:
            # The first request's uncommitted row makes the INSERT wait (unique index); past the lock_timeout
            # that first request is in flight (https://www.postgresql.org/docs/15/runtime-config-client.html).
            await conn.execute(f"SET LOCAL lock_timeout = '{IN_FLIGHT_WAIT}'")
            new |= {row[0] for row in await conn.fetch(
                "INSERT INTO idempotency_keys SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                "$5::float8[]) ON CONFLICT (token, key) DO NOTHING RETURNING push_id",
                [i.token for i, _ in keyed], [i.idempotency_key for i, _ in keyed],
                [i.request_hash for i, _ in keyed], [p.id for _, p in keyed], [p.created_at for _, p in keyed])}
            await conn.execute("SET LOCAL lock_timeout = 0")
            if len(new) < len(items):
                # The conflicts were with committed rows (or rows of this batch), and keys are only purged.
                stored = {(row[0], row[1]): (row[2], row[3]) for row in await conn.fetch(
                    "SELECT token, key, request_hash, push_id FROM idempotency_keys WHERE (token, key) IN "
                    "(SELECT * FROM unnest($1::text[], $2::text[]))",
                    [i.token for i, p in keyed if p.id not in new],
                    [i.idempotency_key for i, p in keyed if p.id not in new])}  # fmt: skip
        created = [p for p in pushes if p.id in new]
        if created:
            marks = ", ".join(f"${i + 1}" for i in range(len(COLUMNS)))
            await conn.executemany(f"INSERT INTO pushes VALUES ({marks})", [push_values(p) for p in created])
            await conn.executemany("INSERT INTO push_history VALUES ($1, $2, $3, $4, $5)",
                                   [(p.id, seq, h.state.value, h.at, h.detail) for p in created
                                    for seq, h in enumerate(p.history)])  # fmt: skip
        replays = await self._load(conn, [pid for h, pid in stored.values()], lock=False)
        results: builtins.list[Created | Exception] = []
        for item, push in zip(items, pushes, strict=True):
            if push.id in new:
                results.append(Created(push, replayed=False))
                continue
            request_hash, push_id = stored[(item.token, item.idempotency_key)]
            if request_hash != item.request_hash:
                results.append(IdempotencyMismatchError(f"idempotency key {item.idempotency_key!r} was used with "
                                                        "another request"))  # fmt: skip
            else:
                results.append(Created(replays[push_id], replayed=True))
        return results

    async def get(self, push_id: str) -> Push:
        async with self._pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
            found = await self._load(conn, [push_id], lock=False)
        if push_id not in found:
            raise PushNotFoundError(push_id)
        return found[push_id]

    async def list(self, *, state: State | None = None, msisdn: str | None = None, campaign: str | None = None,
                   cursor: str | None = None, limit: int = 100) -> Page:
        conditions: builtins.list[str] = []
        args: builtins.list[Any] = []
        for column, value in (("state", state), ("msisdn", msisdn), ("campaign", campaign)):
            if value is not None:
                args.append(value)
                conditions.append(f"{column} = ${len(args)}")
        if cursor is not None:
            created_at, push_id = decode_cursor(cursor)
            args += [created_at, push_id]
            conditions.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
        where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
        args.append(limit + 1)
        # REPEATABLE READ: the page and the histories loaded for it are one snapshot.
        async with self._pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
            rows = await conn.fetch(f"SELECT id FROM pushes {where} ORDER BY created_at DESC, id DESC "
                                    f"LIMIT ${len(args)}", *args)  # fmt: skip
            ids = [r[0] for r in rows[:limit]]
            loaded = await self._load(conn, ids, lock=False)
        items = tuple(loaded[i] for i in ids)
        return Page(items, encode_cursor(items[-1]) if len(rows) > limit else None)

    async def transition_many(self, changes: Sequence[Transition], now: float) -> builtins.list[Push]:
        async with self._pool.acquire() as conn, conn.transaction():
            current = await self._load(conn, list({c.id: None for c in changes}), lock=True)
            after, outbox = plan(current, changes, now)
            await self._write(conn, after, outbox)
        return after

    async def claim_due(self, node_id: str, now: float, limit: int, lease_s: float) -> builtins.list[Push]:
        async with self._pool.acquire() as conn, conn.transaction():
            # The active campaigns' buckets, locked until this claim commits: two nodes never spend the same
            # tokens. SKIP LOCKED: a campaign another node is claiming from right now is that node's this turn.
            paces = {p.id: p for p in (pace(row, now) for row in await conn.fetch(
                f"{PACE_SELECT} FOR UPDATE SKIP LOCKED"))}  # fmt: skip
            rows = await conn.fetch(f"{_CANDIDATES} AND campaign IS NULL {_CLAIM_ORDER}", now, limit * OVERFETCH)
            for p in paces.values():
                if p.allowance > 0:
                    rows += await conn.fetch(f"{_CANDIDATES} AND campaign = $3 {_CLAIM_ORDER}", now,
                                             min(p.allowance, limit) * OVERFETCH, p.id)  # fmt: skip
            candidates = [Candidate(*r) for r in rows]
            # Pick among all of them as if no MSISDN were locked elsewhere (at most one per MSISDN, each
            # campaign within its bucket), then keep what the MSISDN locks let through.
            first = pick(candidates, {p.id: p.allowance for p in paces.values()}, len(candidates))
            # Another node may hold a different push of the same MSISDN (skipped above, as locked): the advisory
            # lock lets one node at a time past, and the UPDATE's NOT EXISTS, in a snapshot taken after the lock,
            # sees the other node's committed claim (https://www.postgresql.org/docs/15/explicit-locking.html#ADVISORY-LOCKS).
            locked = {r[0] for r in await conn.fetch(
                "SELECT m FROM unnest($1::text[]) AS m WHERE pg_try_advisory_xact_lock($2, hashtext(m))",
                [c.msisdn for c in first], LOCK_MSISDN)}  # fmt: skip
            wanted = pick([c for c in first if c.msisdn in locked], {p.id: p.allowance for p in paces.values()},
                          limit)  # fmt: skip
            claimed = {r[0] for r in await conn.fetch(
                "UPDATE pushes p SET claimed_by = $1, claimed_until = $2 WHERE id = ANY($3::text[]) "
                "AND NOT EXISTS (SELECT 1 FROM pushes o WHERE o.msisdn = p.msisdn AND o.id <> p.id "
                f"  AND (o.state IN ({IN_FLIGHT_SQL}) OR o.claimed_until > $4)) RETURNING id",
                node_id, now + lease_s, [c.id for c in wanted], now)}  # fmt: skip
            taken = [c for c in wanted if c.id in claimed]
            await conn.executemany("UPDATE campaigns SET bucket = $1, bucket_at = $2 WHERE id = $3",
                                   [(paces[c].level - n, max(paces[c].bucket_at, now), c)
                                    for c, n in spent_by_campaign(taken).items()])  # fmt: skip
            loaded = await self._load(conn, [c.id for c in taken], lock=False)
        return [loaded[c.id] for c in taken]

    async def release(self, node_id: str, push_ids: Sequence[str]) -> None:
        await self._pool.execute("UPDATE pushes SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1 "
                                 f"AND state IN ({WAITING_SQL}) AND id = ANY($2::text[])", node_id,
                                 list(push_ids))  # fmt: skip

    async def expire_due(self, now: float) -> int:
        def expire(push: Push) -> Transition:
            return Transition(push.id, State.EXPIRED, "expired before it could be sent")

        # SKIP LOCKED: a push another transaction is moving right now is expired on the next call, if still due.
        sql = f"SELECT id FROM pushes WHERE state IN ({WAITING_SQL}) AND expires_at <= $1 FOR UPDATE SKIP LOCKED"
        return len(await self._rewrite(sql, (now,), expire, now))

    async def recover(self, now: float, *, node_id: str | None = None) -> dict[State, int]:
        sql = f"SELECT id FROM pushes WHERE state IN ({IN_FLIGHT_SQL})"
        if node_id is not None:
            sql += " AND claimed_by = $1"
        after = await self._rewrite(sql + " FOR UPDATE", () if node_id is None else (node_id,), recovery, now)
        if node_id is not None:  # what this node had claimed and not started is claimable again now, not at its lease
            await self._pool.execute("UPDATE pushes SET claimed_by = NULL, claimed_until = NULL WHERE "
                                     f"claimed_by = $1 AND state IN ({WAITING_SQL})", node_id)  # fmt: skip
            await self._pool.execute("UPDATE callback_outbox SET claimed_by = NULL, claimed_until = NULL "
                                     "WHERE claimed_by = $1", node_id)  # fmt: skip
        return {s: sum(p.state is s for p in after) for s in (State.QUEUED, State.UNCONFIRMED)}

    async def cancel(self, push_id: str, now: float) -> Push:
        after = await self._rewrite("SELECT id FROM pushes WHERE id = $1 FOR UPDATE", (push_id,), cancellation, now)
        if not after:
            raise PushNotFoundError(push_id)
        return after[0]

    async def outbox_due(self, now: float, limit: int, node_id: str, lease_s: float) -> builtins.list[OutboxRow]:
        # SKIP LOCKED: a row another node is claiming right now is not waited for, it is that node's. A row another
        # node claimed and committed after this statement's snapshot was taken is re-checked when locked (READ
        # COMMITTED re-evaluates the WHERE on the newest version, https://www.postgresql.org/docs/15/
        # transaction-iso.html#XACT-READ-COMMITTED): its live claimed_until excludes it.
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(f"{OUTBOX_SELECT} WHERE next_at <= $1 AND (claimed_until IS NULL OR "
                                    "claimed_until <= $1) ORDER BY next_at, delivery_id LIMIT $2 "
                                    "FOR UPDATE SKIP LOCKED", now, limit)  # fmt: skip
            await conn.execute("UPDATE callback_outbox SET claimed_by = $1, claimed_until = $2 "
                               "WHERE delivery_id = ANY($3::text[])", node_id, now + lease_s,
                               [row[0] for row in rows])  # fmt: skip
        return [outbox_from(row) for row in rows]

    async def outbox_done(self, delivery_id: str) -> None:
        await self._pool.execute("DELETE FROM callback_outbox WHERE delivery_id = $1", delivery_id)

    async def outbox_retry(self, delivery_id: str, next_at: float, error: str) -> None:
        await self._pool.execute("UPDATE callback_outbox SET attempts = attempts + 1, next_at = $1, last_error = $2, "
                                 "claimed_by = NULL, claimed_until = NULL WHERE delivery_id = $3",
                                 next_at, error, delivery_id)  # fmt: skip

    async def token_create(self, name: str, hash: str, scopes: Sequence[str], msisdn_prefix: str,
                           rate: float | None, now: float) -> Token:
        try:
            await self._pool.execute("INSERT INTO tokens VALUES ($1, $2, $3, $4, $5, $6, NULL)",
                                     name, hash, json.dumps(list(scopes)), msisdn_prefix, rate, now)  # fmt: skip
        except asyncpg.UniqueViolationError as exc:
            raise StoreError(f"token {name!r}: {exc}") from exc
        return Token(name, hash, tuple(scopes), msisdn_prefix, rate, now)

    async def token_by_hash(self, hash: str) -> Token | None:
        row = await self._pool.fetchrow(f"{TOKEN_SELECT} WHERE hash = $1 AND revoked_at IS NULL", hash)
        return None if row is None else token_from(row)

    async def token_list(self) -> builtins.list[Token]:
        return [token_from(row) for row in await self._pool.fetch(f"{TOKEN_SELECT} ORDER BY name")]

    async def token_revoke(self, name: str, now: float) -> bool:
        status = await self._pool.execute("UPDATE tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
                                          now, name)  # fmt: skip
        return status != "UPDATE 0"

    async def purge(self, now: float, retention_s: float) -> tuple[int, int]:
        cutoff = now - retention_s
        finished = f"SELECT id FROM pushes WHERE state IN ({FINAL_SQL}) AND updated_at < $1"
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(f"DELETE FROM push_history WHERE push_id IN ({finished})", cutoff)
            pushes = await conn.execute(f"DELETE FROM pushes WHERE id IN ({finished})", cutoff)
            keys = await conn.execute("DELETE FROM idempotency_keys WHERE created_at < $1", cutoff)
        return int(pushes.split()[-1]), int(keys.split()[-1])  # the command tags: "DELETE <rows>"

    async def counts(self) -> dict[State, int]:
        rows = await self._pool.fetch("SELECT state, COUNT(*) FROM pushes GROUP BY state")
        return {state: 0 for state in State} | {State(row[0]): row[1] for row in rows}


    # --- campaigns ---

    async def campaign_create(self, campaign: Campaign) -> None:
        values = campaign_values(campaign)
        await self._pool.execute(f"INSERT INTO campaigns ({', '.join(CAMPAIGN_COLUMNS)}, bucket, bucket_at) "
                                 f"VALUES ({', '.join(f'${i + 1}' for i in range(len(values)))})", *values)

    async def campaign_add(self, pushes: Sequence[Push]) -> None:
        # COPY: one round trip and no statement per row (https://www.postgresql.org/docs/15/sql-copy.html,
        # asyncpg's copy_records_to_table).
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table("pushes", records=[push_values(p) for p in pushes], columns=COLUMNS)
            await conn.copy_records_to_table(
                "push_history", columns=("push_id", "seq", "state", "at", "detail"),
                records=[(p.id, seq, h.state.value, h.at, h.detail) for p in pushes
                         for seq, h in enumerate(p.history)])  # fmt: skip

    async def campaigns_loading_since(self, before: float) -> builtins.list[str]:
        rows = await self._pool.fetch("SELECT id FROM campaigns WHERE state = 'loading' AND created_at < $1", before)
        return [str(row[0]) for row in rows]

    async def campaign_discard(self, campaign_id: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM push_history WHERE push_id IN (SELECT id FROM pushes WHERE campaign = $1)",
                               campaign_id)  # fmt: skip
            await conn.execute("DELETE FROM pushes WHERE campaign = $1", campaign_id)
            await conn.execute("DELETE FROM campaigns WHERE id = $1", campaign_id)

    async def campaign_get(self, campaign_id: str) -> Campaign:
        row = await self._pool.fetchrow(f"{CAMPAIGN_SELECT} WHERE id = $1", campaign_id)
        if row is None or row["state"] == CampaignState.LOADING.value:
            raise CampaignNotFoundError(campaign_id)
        return campaign_from(row)

    async def campaign_move(self, campaign_id: str, state: CampaignState, now: float) -> Campaign:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(f"{CAMPAIGN_SELECT} WHERE id = $1 FOR UPDATE", campaign_id)
            if row is None:
                raise CampaignNotFoundError(campaign_id)
            campaign = campaign_from(row)
            if campaign.state is CampaignState.LOADING and state is not CampaignState.ACTIVE:
                raise CampaignNotFoundError(campaign_id)  # not there yet for the API
            if campaign.state not in CAMPAIGN_MOVES[state]:
                raise CampaignStateError(campaign, state)
            if campaign.state is not state:
                await conn.execute("UPDATE campaigns SET state = $1, updated_at = $2 WHERE id = $3", state.value,
                                   now, campaign_id)  # fmt: skip
                campaign = replace(campaign, state=state, updated_at=now)
        return campaign

    async def campaign_cancel_waiting(self, campaign_id: str, now: float, limit: int) -> int:
        # SKIP LOCKED: a push being claimed or moved right now is left to the next call (the API calls until 0;
        # one being claimed cannot be: the campaign is no longer active).
        sql = (f"SELECT id FROM pushes WHERE campaign = $1 AND state IN ({WAITING_SQL}) ORDER BY id LIMIT $2 "
               "FOR UPDATE SKIP LOCKED")  # fmt: skip
        return len(await self._rewrite(sql, (campaign_id, limit), campaign_cancellation, now))

    async def campaign_stats(self, campaign_id: str, now: float) -> tuple[dict[State, int], int]:
        async with self._pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
            rows = await conn.fetch("SELECT state, COUNT(*) FROM pushes WHERE campaign = $1 GROUP BY state",
                                    campaign_id)  # fmt: skip
            recent = await conn.fetchval(
                "SELECT COUNT(*) FROM push_history h JOIN pushes p ON p.id = h.push_id "
                "WHERE h.state = 'routing' AND h.at > $1 AND p.campaign = $2", now - LAST_MINUTE, campaign_id)
        return {s: 0 for s in State} | {State(row[0]): row[1] for row in rows}, int(recent)


async def _migrate(conn: Conn) -> None:
    async with conn.transaction():
        # Nodes starting together: one migrates, the others wait here and then find nothing to do.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_MIGRATE)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                           "applied_at DOUBLE PRECISION NOT NULL)")  # fmt: skip
        current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        for version, sql in pending(current):
            await conn.execute(sql)  # no arguments: the simple query protocol runs the whole file
            await conn.execute("INSERT INTO schema_version VALUES ($1, extract(epoch FROM now()))", version)
