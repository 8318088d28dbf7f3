"""API tokens: made here, stored only as a hash (gateway/push/store.py keeps the hash, never the token).

A token is 32 random bytes (``secrets.token_urlsafe``), so an unsalted SHA-256 is enough: nothing to brute-force
as with a password, and a lookup by hash stays one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "ussd_"  # recognisable in logs and by secret scanners


def generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
