"""What the watcher and the workers say to each other: plain data, JSON on the wire.

A :class:`JobMessage` carries what a worker needs to run one job — the job's id and attempt,
the claimed input's path, the chain's name and the digest of its config, where its paid steps
are saved — and nothing live. An :class:`Outcome` carries back what the watcher journals: the
outputs and cost of a job done, or the error of a job that was not (its class, so that the
watcher treats it as it would a local one: retried, paused, held or failed).
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from hotfolder import errors
from hotfolder.errors import HotfolderError, OperationError, VeniceError
from hotfolder.job import Job, JobResult, Output, StepRecord


@dataclass(frozen=True)
class JobMessage:
    """One job for a worker."""

    job_id: str
    #: The watcher's attempt number; an outcome names it so a late one is recognised.
    attempt: int
    #: The claimed input (``<folder>/.hotfolder/processing/<job>.<name>``), as the watcher
    #: names it; a worker maps it with ``[executor] path_map``.
    source: str
    chain: str
    #: :attr:`hotfolder.config.Chain.digest` of the watcher's chain: a worker whose own
    #: config differs refuses the job.
    chain_digest: str
    checkpoint_dir: str
    origin: str
    folder: str
    archive: str | None
    seq: int
    #: Whether the watcher gives up on the job if this attempt fails.
    final: bool
    step_timeout_seconds: float | None
    #: The claimed file's size:mtime:inode when the job was claimed; a worker's record of a
    #: finished job counts for these same bytes only.
    src_sig: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobMessage:
        return cls(**data)

    @classmethod
    def of(
        cls,
        job: Job,
        *,
        attempt: int,
        chain_digest: str,
        final: bool,
        step_timeout_seconds: float | None,
        src_sig: str | None = None,
    ) -> JobMessage:
        return cls(
            job_id=job.id,
            attempt=attempt,
            source=job.source,
            chain=job.chain,
            chain_digest=chain_digest,
            checkpoint_dir=str(job.checkpoint_dir or ""),
            origin=job.origin or job.source,
            folder=job.folder or "",
            archive=job.archive,
            seq=job.seq,
            final=final,
            step_timeout_seconds=step_timeout_seconds,
            src_sig=src_sig,
        )

    def job(self, local_path: Any = str) -> Job:
        """The job, with the watcher's paths made this machine's by ``local_path``."""
        return Job(
            source=local_path(self.source),
            chain=self.chain,
            id=self.job_id,
            seq=self.seq,
            checkpoint_dir=Path(local_path(self.checkpoint_dir)) if self.checkpoint_dir else None,
            # a manifest's images are read from the folder it was dropped in
            origin=local_path(self.origin),
            folder=local_path(self.folder) if self.folder else None,
            archive=local_path(self.archive) if self.archive else None,
        )


@dataclass(frozen=True)
class Outcome:
    """How a job ended on a worker."""

    job_id: str
    attempt: int
    state: Literal["done", "error"]
    #: A job done: what :class:`~hotfolder.job.JobResult` holds, as plain data.
    input_sha256: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: dict[str, Any] | None = None
    #: ``host:pid`` of the worker.
    worker: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(**data)

    @classmethod
    def failed(cls, message: JobMessage, exc: HotfolderError, *, worker: str) -> Outcome:
        data = exc.to_dict()
        data["retry_after"] = getattr(exc, "retry_after", None)
        data["retryable"] = exc.retryable  # an instance may differ from its class
        return cls(message.job_id, message.attempt, "error", error=data, worker=worker)

    def raise_error(self) -> None:
        """Raise the error this outcome carries, as the class it was raised as."""
        raise error_from_dict(self.error or {})

    @classmethod
    def done(cls, message: JobMessage, result: JobResult, *, worker: str) -> Outcome:
        return cls(
            message.job_id,
            message.attempt,
            "done",
            input_sha256=result.input_sha256,
            steps=[step.to_dict() for step in result.steps],
            outputs=[output.to_dict() for output in result.outputs],
            seconds=result.seconds,
            worker=worker,
        )

    def result(self, job: Job) -> JobResult:
        """The :class:`~hotfolder.job.JobResult` of a job done (its cost from its steps)."""
        return JobResult(
            job,
            self.input_sha256,
            [StepRecord(**step) for step in self.steps],
            [Output(**output) for output in self.outputs],
            self.seconds,
        )


def error_from_dict(data: dict[str, Any]) -> HotfolderError:
    """The :class:`~hotfolder.errors.HotfolderError` that :meth:`HotfolderError.to_dict` gave;
    a class hotfolder does not know becomes an OperationError with the same message."""
    name = str(data.get("class", ""))
    cls = getattr(errors, name, None) if name in errors.__all__ else None
    message = str(data.get("message", "the worker gave no message"))
    hint = data.get("hint")
    exc: HotfolderError
    if isinstance(cls, type) and issubclass(cls, VeniceError):
        kwargs: dict[str, Any] = {
            "hint": hint,
            "status": data.get("status"),
            "code": data.get("code"),
            "request_id": data.get("request_id"),
        }
        if cls is errors.Unavailable:
            kwargs["retry_after"] = data.get("retry_after")
        exc = cls(message, **kwargs)
    elif isinstance(cls, type) and issubclass(cls, HotfolderError):
        exc = cls(message, hint=hint)
    else:
        exc = OperationError(message, hint=hint)
    exc.step = data.get("step")
    if "retryable" in data:
        exc.retryable = bool(data["retryable"])
    return exc


def this_worker() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"
