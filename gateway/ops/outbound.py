"""What every HTTP request the gateway makes to someone else's server carries: its User-Agent and, when a secret is
shared with that server, an HMAC-SHA256 signature the server verifies the gateway by.

Used by the application client (gateway/apps/) and the push callbacks (gateway/push/callbacks.py); it lives here
so that push/ does not import apps/.

Signature: ``X-USSD-Timestamp`` (Unix seconds) and ``X-USSD-Signature: sha256=<hex HMAC-SHA256(secret,
timestamp + "." + body)>``; the receiver recomputes it over the raw body and refuses a stale timestamp (replays).
"""

from __future__ import annotations

import hashlib
import hmac

USER_AGENT = "ussd-gateway/0.1"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_headers(secret: str, body: bytes, now: float) -> dict[str, str]:
    """X-USSD-Timestamp and X-USSD-Signature for ``body`` sent at ``now`` (Unix seconds)."""
    timestamp = str(int(now))
    return {"X-USSD-Timestamp": timestamp, "X-USSD-Signature": sign(secret, timestamp, body)}
