"""Keeping secrets out of logs and messages: every secret value is registered once and
scrubbed from each log record before any sink sees it."""

from __future__ import annotations

import threading

MASK = "***"
_MIN_LENGTH = 6

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`scrub` hides it; short values are ignored."""
    if value and len(value) >= _MIN_LENGTH:
        with _lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask(value: str | None) -> str:
    """A form of a secret safe to show: its last four characters at most."""
    if not value:
        return "(none)"
    return MASK + value[-4:] if len(value) > 12 else MASK
