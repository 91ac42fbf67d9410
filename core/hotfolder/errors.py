"""Every error hotfolder raises on purpose, in one tree.

::

    HotfolderError                 base: .hint says what to do next
     ├─ ConfigError                a config file or command line is wrong (CLI exit code 2)
     ├─ PluginError                a plugin misbehaved: duplicate names, bad hook, raised in a step
     ├─ InputError                 an input is unreadable, too large, too small or not an image;
     │                             it is quarantined and never reaches a paid API
     │   └─ UnsafeInputError       refused for safety: decompression bomb, symlink, SSRF target
     ├─ OperationError             a step could not do its work with valid input
     │   └─ StepTimeout            a step or sink ran past its time limit: tried again later
     ├─ VeniceError                the Venice API said no: .status, .code, .request_id
     │   ├─ Rejected               400, 404, 413, 415, 422: this job fails, others go on
     │   ├─ AuthError              401, 403: all Venice work pauses, nothing is failed
     │   ├─ BalanceError           402: all Venice work pauses until the balance returns
     │   ├─ BudgetExceeded         [venice] max_usd_per_day reached: Venice work pauses
     │   └─ Unavailable            429, 5xx, timeouts, resets: retried with backoff
     └─ SinkError                  an output could not be written
         └─ StorageUnavailable     its place is full, read-only or gone for now: the job
                                   waits (no attempt used up) and is tried again

Raise them in the ``msg = ...; raise X(msg)`` style; give a ``hint`` whenever the user can fix
the cause. ``str(error)`` is the message and the hint on one line, fit for a log line.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BalanceError",
    "BudgetExceeded",
    "ConfigError",
    "HotfolderError",
    "InputError",
    "OperationError",
    "PluginError",
    "Rejected",
    "SinkError",
    "StepTimeout",
    "StorageUnavailable",
    "Unavailable",
    "UnsafeInputError",
    "VeniceError",
]


class HotfolderError(Exception):
    """Base class: a message, and a hint that tells the user what to do next."""

    #: Whether the job may succeed if tried again later without any change.
    retryable: bool = False
    #: Whether the job waits for the cause to go away without using up an attempt.
    holds: bool = False
    #: The chain step that raised it (``"2:venice.upscale"``), set by the engine.
    step: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, object]:
        """The error as plain data, for ``<name>.error.json`` and JSON logs."""
        return {
            "class": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "step": self.step,
        }


class ConfigError(HotfolderError):
    """A config file, a manifest or the command line is wrong; names the file and key path."""

    def __init__(self, message: str, *, hint: str | None = None, source: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.source = source

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.source}: {text}" if self.source else text


class PluginError(HotfolderError):
    """A plugin misbehaved: a duplicate name, a hook with a wrong signature, or it raised."""


class InputError(HotfolderError):
    """An input cannot be used: unreadable, too large, too small, or not an allowed image."""


class UnsafeInputError(InputError):
    """An input is refused for safety: a decompression bomb, a link, a private address."""


class OperationError(HotfolderError):
    """A step could not do its work although its input was valid."""


class StepTimeout(OperationError):
    """A step or a sink ran past its time limit; the job may be tried again."""

    retryable = True


class SinkError(HotfolderError):
    """An output could not be written where the sink was told to write it."""


class StorageUnavailable(SinkError):
    """The output's place is full, read-only, gone or not writable for now (ENOSPC, EDQUOT,
    EROFS, EACCES, a vanished folder): the job waits and is tried again, without using up an
    attempt, until the place can be written."""

    retryable = True
    #: The job waits without using up an attempt.
    holds = True


class VeniceError(HotfolderError):
    """The Venice API refused or failed a request.

    ``status`` is the HTTP status (``None`` for a network failure), ``code`` the machine code
    from the body when there is one, ``request_id`` the CF-RAY header to quote to support.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code
        self.request_id = request_id

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data.update(status=self.status, code=self.code, request_id=self.request_id)
        return data


class Rejected(VeniceError):
    """The request itself was wrong (400, 404, 413, 415, 422): this job fails, others go on."""


class AuthError(VeniceError):
    """The API key is missing, wrong or not allowed (401, 403): Venice work pauses."""


class BalanceError(VeniceError):
    """The account cannot pay (402): Venice work pauses until the balance returns."""


class BudgetExceeded(VeniceError):
    """``[venice] max_usd_per_day`` is reached: Venice work pauses until the next day."""


class Unavailable(VeniceError):
    """Rate limited, a server error, a timeout or a reset: worth trying again later."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
