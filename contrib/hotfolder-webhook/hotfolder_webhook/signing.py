"""The signature a receiver checks: HMAC-SHA256 over ``timestamp + "." + body``.

Each POST carries two headers (names configurable)::

    X-Hotfolder-Timestamp: 1763758953
    X-Hotfolder-Signature: sha256=<hex HMAC-SHA256(secret, b"1763758953." + body)>

``body`` is the exact request body as received (the whole multipart payload, before any
parsing). A receiver recomputes the HMAC with the shared secret, compares it in constant time,
and refuses timestamps too far from its own clock so a captured request cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["PREFIX", "sign", "verify"]

#: What the signature header's value starts with.
PREFIX = "sha256="


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return PREFIX + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """For receivers: whether ``signature`` is right and ``timestamp`` is within
    ``tolerance_s`` seconds of ``now`` (default: the clock)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
