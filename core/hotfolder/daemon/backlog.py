"""Claiming a backlog in two processes: the files a scan finds all at once (the daemon starts
on a folder that filled while it was down) are claimed by a helper process
(:mod:`hotfolder.daemon._claim_helper`), while the daemon goes on listing the folder and
journals the batches already claimed.

The daemon's own loop is CPU-bound on such a backlog, about 250 µs a file, of which the system
calls of a claim (look, lease, rename, look again) are a third; the interpreter lock keeps a
thread from doing them alongside. The helper does them for one batch while the daemon works on
the batch before.

Only files the daemon's readiness rule takes at once are claimed so, and the helper applies
that rule itself on each file just before its rename (see the helper's docstring); every other
file is handed back to be looked at the usual way. A batch's claims are journaled in one
transaction before any of its jobs can start, as the intake's own are. If the helper dies, each
file of its unanswered batches is settled by looking at where it would be.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from loguru import logger

from hotfolder.daemon import _claim_helper, claim
from hotfolder.daemon.folders import FolderPlan

#: Files a scan must find at once, in one folder, for the helper to claim them.
MIN_FILES = 200
#: Files per request to the helper.
BATCH_FILES = 500
#: Most outcomes a step hands on (to be journaled in one transaction): the first jobs are
#: journaled, and can start, while the helper works on.
STEP_FILES = 2000
#: Requests the helper may have before its first answer is read: its answers (about 25 kB a
#: batch) must fit in a pipe while a request is being written, and a pipe holds 64 kB unless
#: it is made larger (:data:`PIPE_BYTES`, then :data:`IN_FLIGHT_LARGE`).
IN_FLIGHT = 2
IN_FLIGHT_LARGE = 6
#: How long the daemon waits for an answer before it ends the helper and looks for itself
#: (a batch takes milliseconds; a folder on a hung network mount could take for ever).
ANSWER_TIMEOUT_SECONDS = 60.0
#: The pipes' size asked for, so that the helper has work while the daemon journals and
#: writing a request (about 40 kB) does not wait for it. Linux grants up to
#: ``/proc/sys/fs/pipe-max-size`` (1 MiB by default) to anyone.
PIPE_BYTES = 1 << 20


class Item(NamedTuple):
    """A file a scan found, on its way through the helper to become job ``job_id``."""

    plan: FolderPlan
    path: str
    rel: str
    chain: str
    job_id: str
    #: Its prompt file's name, relative to the folder: there must be none.
    prompt_rel: str
    #: The latest mtime (epoch seconds) with which it is taken at once.
    older_than: float


class Outcome(NamedTuple):
    """What became of one item: ``stat`` (size, mtime_ns, ino, mode, nlink) once claimed as
    ``item.job_id``, else ``"look"`` (look at it the usual way) or ``"gone"``."""

    item: Item
    stat: tuple[int, int, int, int, int] | None
    answer: str = ""


@dataclass(frozen=True)
class _Request:
    processing: str
    items: list[Item]


class Backlog:
    """The files waiting for the helper, the requests it has, and the helper process."""

    def __init__(self) -> None:
        self.waiting: deque[Item] = deque()
        self._asked: deque[_Request] = deque()
        self._answered: list[Outcome] = []
        self._unread = bytearray()
        self._proc: subprocess.Popen[bytes] | None = None
        self._broken = False
        self._failure: Exception | None = None
        self._in_flight = IN_FLIGHT

    @property
    def busy(self) -> bool:
        """Whether files wait for the helper or for its answer."""
        return bool(self.waiting or self._asked or self._answered)

    def usable(self) -> bool:
        """Whether the helper can be (or is) running."""
        return not self._broken and sys.platform == "linux"

    def add(self, items: list[Item]) -> None:
        """Queue ``items`` for the helper and give it what it can take now, without waiting."""
        self.waiting.extend(items)
        if self._failure is None:
            try:
                self._read(wait=False)
                self._ask()
            except (OSError, ValueError) as exc:
                self._failure = exc  # settled by the next step

    def step(self, *, wait: bool = True, at_least: int = 1) -> list[Outcome]:
        """Up to :data:`STEP_FILES` outcomes the helper has answered, none when fewer than
        ``at_least`` are; with ``wait``, waiting for one batch when none is. Each file of
        every batch asked when the helper failed."""
        try:
            if self._failure is not None:
                raise self._failure
            self._ask()
            self._read(wait=wait and not self._answered)
            self._ask()
        except (OSError, ValueError) as exc:
            return self._give_up(exc)
        if len(self._answered) < at_least:
            return []
        outcomes = self._answered[:STEP_FILES]
        del self._answered[:STEP_FILES]
        if not (self.waiting or self._asked):
            self._end()  # the backlog is claimed: the helper runs only while one is
        return outcomes

    def forget(self, key: str) -> list[Item]:
        """Drop the waiting files of folder ``key`` (no longer watched); returns them."""
        dropped = [item for item in self.waiting if item.plan.key == key]
        self.waiting = deque(item for item in self.waiting if item.plan.key != key)
        return dropped

    def close(self) -> list[Outcome]:
        """Read what the helper was asked, end it, and hand back what waits (to be looked at
        the usual way)."""
        try:
            if self._failure is not None:
                raise self._failure
            while self._asked:  # answers only: nothing more is asked of it
                self._read(wait=True)
        except (OSError, ValueError) as exc:
            return self._give_up(exc)
        outcomes, self._answered = self._answered, []
        outcomes += [Outcome(item, None, "look") for item in self.waiting]
        self.waiting.clear()
        self._end()
        return outcomes

    def _end(self) -> None:
        """End the helper, which has answered all it was asked."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        for pipe in (proc.stdin, proc.stdout):  # at the end of its input it ends
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _helper(self) -> subprocess.Popen[bytes]:
        """The helper, started when none runs; one that ended while asked something is not
        replaced (what it did is settled by :meth:`_give_up`)."""
        if self._proc is not None and self._proc.poll() is not None and self._asked:
            msg = "the claim helper ended"
            raise OSError(msg)
        if self._proc is None or self._proc.poll() is not None:
            self._proc = proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(Path(_claim_helper.__file__))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
            )  # fmt: skip
            self._unread.clear()
            self._in_flight = IN_FLIGHT
            with contextlib.suppress(OSError, AttributeError):  # smaller ones serve too
                for pipe in (proc.stdin, proc.stdout):
                    assert pipe is not None
                    if fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES) < PIPE_BYTES:
                        raise OSError
                self._in_flight = IN_FLIGHT_LARGE
        return self._proc

    def _ask(self) -> None:
        """Send requests, of one folder each, until :data:`IN_FLIGHT` (or
        :data:`IN_FLIGHT_LARGE`) are unanswered."""
        while self.waiting and len(self._asked) < self._in_flight:
            proc = self._helper()
            plan = self.waiting[0].plan
            items: list[Item] = []
            while self.waiting and len(items) < BATCH_FILES and self.waiting[0].plan is plan:
                items.append(self.waiting.popleft())
            processing = str(claim.processing_root(plan.root))
            self._asked.append(_Request(processing, items))  # settled by looking from here on
            files = [
                [item.rel, claim.claimed_name(item.job_id, _name(item.rel)), item.prompt_rel]
                for item in items
            ]
            older_than = min(item.older_than for item in items)
            request = json.dumps([str(plan.root), processing, older_than, files]) + "\n"
            assert proc.stdin is not None
            data = memoryview(request.encode())
            while data:  # a write a signal cuts short has written part of it
                data = data[os.write(proc.stdin.fileno(), data) :]

    def _read(self, *, wait: bool) -> None:
        """Take every answer the helper has written; with ``wait``, at least one."""
        while self._asked:
            end = self._unread.find(b"\n")
            if end >= 0:
                outcomes = _outcomes(self._asked[0].items, json.loads(self._unread[:end]))
                del self._unread[: end + 1]
                self._asked.popleft()
                self._answered += outcomes
                wait = False
                continue
            proc = self._proc
            if proc is None or proc.stdout is None:
                msg = "the claim helper is not running"
                raise OSError(msg)
            fd = proc.stdout.fileno()
            if not select.select([fd], [], [], ANSWER_TIMEOUT_SECONDS if wait else 0)[0]:
                if not wait:
                    return
                msg = f"the claim helper did not answer in {ANSWER_TIMEOUT_SECONDS:g}s"
                raise OSError(msg)
            chunk = os.read(fd, PIPE_BYTES)
            if not chunk:
                msg = "the claim helper ended"
                raise OSError(msg)
            self._unread += chunk

    def _give_up(self, exc: Exception) -> list[Outcome]:
        """The helper failed: settle every file it was asked about by looking, and let the
        intake claim the rest the usual way from now on."""
        logger.warning(
            "the backlog's claim helper failed ({}); its files are claimed the usual way", exc
        )
        self._broken = True
        self._failure = None
        if self._proc is not None:  # ended before anything is looked at: it renames no more
            self._proc.kill()
            self._end()
        outcomes, self._answered = self._answered, []
        for request in self._asked:
            for item in request.items:
                target = os.path.join(
                    request.processing, claim.claimed_name(item.job_id, _name(item.rel))
                )
                try:
                    st = os.lstat(target)
                except FileNotFoundError:
                    outcomes.append(Outcome(item, None, "look"))
                    continue
                found = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode, st.st_nlink)
                outcomes.append(Outcome(item, found, ""))
        self._asked.clear()
        outcomes += [Outcome(item, None, "look") for item in self.waiting]
        self.waiting.clear()
        return outcomes


def _outcomes(items: list[Item], answers: list[list[int] | str]) -> list[Outcome]:
    if len(answers) != len(items):
        msg = f"the claim helper answered {len(answers)} of {len(items)}"
        raise ValueError(msg)
    return [
        Outcome(item, tuple(a), "") if a.__class__ is list else Outcome(item, None, a)  # type: ignore[arg-type]
        for item, a in zip(items, answers, strict=True)
    ]


def _name(rel: str) -> str:
    return rel.rpartition("/")[2]
