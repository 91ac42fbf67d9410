"""Keep the API key out of every log line, message and repr."""

from __future__ import annotations

import re

_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
MASK = "***"


class Redactor:
    """Callable that replaces the key (and any ``Bearer <token>``) in text with ``***``."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def __call__(self, text: object) -> str:
        out = str(text)
        if self._secret:
            out = out.replace(self._secret, MASK)
        return _BEARER.sub(r"\1" + MASK, out)

    def __repr__(self) -> str:
        return "Redactor(***)"

