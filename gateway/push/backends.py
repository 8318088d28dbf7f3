"""The push store named by a URL (``[push] store`` in the configuration): ``sqlite:PATH`` or ``postgresql://...``.

``sqlite:var/push.db`` is a file path after the colon, relative to the working directory like every other path
of the configuration (``[cdr] path``); ``postgresql://`` (or ``postgres://``) is a libpq connection URI, passed to
asyncpg as it is (https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING).
"""

from __future__ import annotations

from gateway.push.store import PushStore
from gateway.push.store_postgres import PostgresStore
from gateway.push.store_sqlite import SqliteStore

SQLITE = "sqlite:"
POSTGRES = ("postgresql://", "postgres://")


def store_url_problem(url: str) -> str | None:
    """None when ``url`` names a store, else why not (the configuration is checked at load, not at open)."""
    if url.startswith(SQLITE):
        return None if url[len(SQLITE):] else "sqlite: needs a file path, e.g. sqlite:var/push.db"
    if url.startswith(POSTGRES):
        return None
    return f"{url!r} is neither sqlite:PATH nor postgresql://..."


async def open_store(url: str) -> PushStore:
    """Open (and migrate) the store ``url`` names; ValueError for a URL that names none."""
    problem = store_url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    if url.startswith(SQLITE):
        return await SqliteStore.open(url[len(SQLITE):])
    return await PostgresStore.open(url)
