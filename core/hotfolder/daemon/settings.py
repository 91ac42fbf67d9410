"""The daemon's tables: ``[daemon]`` (how the service schedules, retries, stops and where it
keeps state) and ``[[folders]]`` (each watched folder, its chain and its routes), and the
helpers that turn a folder's settings into concrete paths.

This module is also the built-in plugin that registers both tables with the config loader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import platformdirs
from loguru import logger
from pydantic import Field, model_validator

from hotfolder import imaging
from hotfolder.daemon.routes import Route, unreachable_routes
from hotfolder.hookspecs import hookimpl
from hotfolder.schema import ConfigPath, Section

if TYPE_CHECKING:
    from hotfolder.registry import Register

#: Where a folder's own bookkeeping lives: ``<folder>/.hotfolder/``.
STATE_SUBDIR = ".hotfolder"
STATE_DIR_ENV = "HOTFOLDER_STATE_DIR"


class FolderSection(Section):
    """``[[folders]]``: a watched folder and the chain its files go through.

    The keys are documented in README "Running as a service"; relative paths are taken from
    the config file's folder.
    """

    table = "folders"
    array = True
    chain_fields = ("chain", "routes.chain")

    path: ConfigPath
    #: The chain of every file no route takes (None: such files are ignored).
    chain: str | None = None
    #: ``{ match = GLOB, chain = NAME }``: the first route whose glob matches a file's path
    #: relative to the folder picks its chain (see :mod:`hotfolder.daemon.routes`).
    routes: list[Route] = []
    #: Names taken: by default every extension of the formats the ``[imaging]`` gate accepts
    #: by default (JPEG and MPO, PNG, WebP, TIFF, GIF, BMP, HEIC/HEIF, AVIF).
    include: list[str] = Field(default_factory=imaging.include_globs)
    exclude: list[str] = []
    #: Extra names never taken, on top of the built-in temp/junk list (``*.part``, ...).
    ignore: list[str] = []
    #: Whether include/exclude/ignore globs tell upper from lower case.
    case_sensitive: bool = False
    recursive: bool = False
    #: A file the folder does not take (not in ``include``, or a format the gate refuses):
    #: ``leave`` it where it is (logged once, listed by ``status``) or ``fail`` it (moved to
    #: the failed place with ``<name>.error.json``).
    on_unmatched: Literal["leave", "fail"] = "leave"
    after: Literal["archive", "delete", "keep"] = "archive"
    #: Where originals go after success (default ``<path>/.hotfolder/archive``).
    archive: ConfigPath | None = None
    #: Where failed originals and their ``.error.json`` go (default ``<path>/.hotfolder/failed``).
    failed: ConfigPath | None = None
    #: A file is taken once its size and mtime stayed the same this long (or sooner when
    #: the platform reports close-after-write or a rename into the folder).
    quiet_seconds: float = Field(default=2.0, ge=0)
    #: ``auto``: polling on network file systems (nfs, cifs/smb, fuse...), native elsewhere.
    observer: Literal["auto", "native", "polling"] = "auto"
    #: Seconds between polls when the polling observer is used.
    poll_seconds: float = Field(default=5.0, gt=0)
    #: A file whose bytes and chain already ran to done: ``skip`` it or ``reprocess`` it.
    on_duplicate: Literal["skip", "reprocess"] = "skip"
    #: Jobs of this folder running at once (None: only ``[daemon] concurrency`` applies).
    concurrency: int | None = Field(default=None, ge=1)
    #: An image whose chain uses ``{prompt}`` and has no ``NAME.prompt.txt`` beside it when
    #: it is ready waits ``quiet_seconds`` and then this long for one; then it fails.
    prompt_wait_seconds: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _a_chain_for_something(self) -> FolderSection:
        if self.chain is None and not self.routes:
            msg = (
                "the folder names no chain: give it chain = NAME, or routes = "
                '[{ match = "GLOB", chain = NAME }, ...]'
            )
            raise ValueError(msg)
        for warning in unreachable_routes(
            self.routes, fallback=self.chain, recursive=self.recursive,
            case_sensitive=self.case_sensitive,
        ):  # fmt: skip
            logger.warning("config: [[folders]] path = {!r}: {}", str(self.path), warning)
        return self

    @property
    def chain_names(self) -> tuple[str, ...]:
        """Every chain the folder's files may go through: the routes' chains, then its own."""
        names = [route.chain for route in self.routes]
        if self.chain is not None:
            names.append(self.chain)
        return tuple(dict.fromkeys(names))


class DaemonSection(Section):
    """``[daemon]`` in the config; every key has a default fit for a long-running service."""

    table = "daemon"

    #: Jobs running at once, over all folders (a folder's ``concurrency`` caps it further).
    concurrency: int = Field(default=4, ge=1, le=256)
    #: Seconds between full rescans of every folder; events are only hints.
    rescan_seconds: float = Field(default=60.0, gt=0)
    #: On SIGTERM/SIGINT, how long in-flight jobs may take to finish before they are
    #: stopped and left queued for the next start.
    grace_seconds: float = Field(default=30.0, ge=0)
    #: Longest one step (or one output) may take, not counting its waits for a Venice rate
    #: slot or connection; a job whose step runs out of time is retried, up to
    #: ``max_attempts``.
    step_timeout_seconds: float = Field(default=600.0, gt=0)
    #: Tries per job (a crash mid-job counts); after the last one the job fails.
    max_attempts: int = Field(default=5, ge=1, le=100)
    #: First wait before retrying a retryable error; doubles each attempt, capped at 10 min.
    retry_backoff_seconds: float = Field(default=5.0, ge=0)
    #: While Venice work is paused (a refused key, no balance), how often one cheap request
    #: (``GET /billing/balance``) checks whether it can go on; ``process`` checks as often.
    reprobe_seconds: float = Field(default=60.0, gt=0)
    #: The journal and the instance lock (default: the platform's user state folder;
    #: ``--state-dir`` and ``$HOTFOLDER_STATE_DIR`` take precedence).
    state_dir: ConfigPath | None = None


def default_state_dir() -> Path:
    """The platform's per-user state folder for hotfolder."""
    return Path(platformdirs.user_state_dir("hotfolder"))


def chosen_state_dir(given: Path | None) -> Path | None:
    """The state dir the user chose for this command: ``given`` (``--state-dir``), else
    ``$HOTFOLDER_STATE_DIR``; None leaves it to the config."""
    if given is None and (env := os.environ.get(STATE_DIR_ENV)):
        return Path(env)
    return given


def resolve_state_dir(given: Path | None, section: DaemonSection | None) -> Path:
    """``--state-dir``, then ``$HOTFOLDER_STATE_DIR``, then ``[daemon] state_dir``, then the
    platform default."""
    if (chosen := chosen_state_dir(given)) is not None:
        return chosen.expanduser().absolute()
    if section is not None and section.state_dir is not None:
        return section.state_dir.absolute()
    return default_state_dir()


def folder_root(folder: FolderSection) -> Path:
    """The watched folder as an absolute path (symbolic links in it resolved)."""
    return Path(os.path.realpath(folder.path))


def state_root(folder: FolderSection) -> Path:
    return folder_root(folder) / STATE_SUBDIR


def archive_root(folder: FolderSection) -> Path:
    """Where originals go after success (``after = "archive"``)."""
    if folder.archive is not None:
        return Path(os.path.realpath(folder.archive))
    return state_root(folder) / "archive"


def failed_root(folder: FolderSection) -> Path:
    """Where failed and quarantined originals go, each with ``<name>.error.json``."""
    if folder.failed is not None:
        return Path(os.path.realpath(folder.failed))
    return state_root(folder) / "failed"


@hookimpl
def hotfolder_register_sections(register: Register) -> None:
    register(DaemonSection)
    register(FolderSection)
