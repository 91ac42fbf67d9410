"""From "a file appeared" to "a job is queued": candidates, readiness, claims, quarantine.

Hints (events) and scans add *candidates*; :meth:`Intake.tick` looks at each candidate that
is due, and claims the ready ones in one batch: each is renamed into ``processing/``,
then all are recorded in one journal transaction. Memory holds only files still being
written; claimed files are journal rows. What is unsafe to read (and so quarantined) is decided
by the local-file policy of ``[resolvers.path]``, the same one the path resolver applies.
What is not taken, and what waits long, is kept on a :class:`~hotfolder.daemon.fates.Board`
for the log and ``status``; with ``on_unmatched = "fail"`` a file the folder does not take is
watched like any other and, once complete, failed with its reason instead of claimed.

Each file's chain is its route's (:mod:`hotfolder.daemon.routes`), recorded with its job. A
companion prompt file (``NAME.prompt.txt``) is watched for readiness only
(:class:`~hotfolder.daemon.companions.PromptFiles`) and claimed with its image; an image whose
chain uses ``{prompt}`` and gets no prompt file within ``quiet_seconds`` plus
``prompt_wait_seconds`` of being ready is failed unread, so no paid call goes out without it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from loguru import logger

from hotfolder.daemon import backlog, claim
from hotfolder.daemon.companions import PROMPT_POLICY, PromptFiles, hear
from hotfolder.daemon.due import DueTimes
from hotfolder.daemon.fates import NO_ROUTE, Board, Ignored, ignored_fate
from hotfolder.daemon.folders import FolderPlan, HintKind, is_normalised
from hotfolder.daemon.journal import Journal, NewJob
from hotfolder.daemon.readiness import (
    INCOMPLETE_FACTOR,
    Candidate,
    Signature,
    check,
    held_for_writing,
)
from hotfolder.daemon.watcher import survey
from hotfolder.job import new_job_id
from hotfolder.localfiles import STRICT, LocalFilePolicy, unsafe_reason
from hotfolder.pauses import iso_time
from hotfolder.prompts import PROMPT_SUFFIX, companion, is_prompt_file

#: Most files claimed per tick (and so per journal transaction).
BATCH = 1000
#: How long one tick may spend looking at due files and claiming the ready ones before it
#: journals them and yields to the event loop: a scan of thousands is claimed over many
#: ticks, the first of them journaled (and started) at once, and the loop stays responsive
#: in a flood.
LOOK_BUDGET_SECONDS = 0.05
#: How many claimed files' paths are kept to tell the daemon's own events on them.
CLAIMED_KEPT = 20_000


class Intake:
    """Candidates of every folder, and the claiming of ready ones."""

    def __init__(
        self,
        journal: Journal,
        plans: list[FolderPlan],
        policy: LocalFilePolicy = STRICT,
        *,
        on_backlog: Callable[[], None] | None = None,
    ) -> None:
        self.journal = journal
        #: Called when a scan hands files to the helper, whose look at each (a read lease) is
        #: an open and a close: the daemon stops hearing those while it works.
        self.on_backlog = on_backlog
        self.plans: dict[str, FolderPlan] = {}
        self.policy = policy
        self.candidates: dict[str, tuple[FolderPlan, Candidate]] = {}
        self._due = DueTimes()
        #: Candidates the folder does not take, to be failed once complete.
        self._unmatched: dict[str, Ignored] = {}
        self.prompts = PromptFiles()
        #: prompt file path -> the image candidate it belongs to
        self._images: dict[str, str] = {}
        #: image path -> when (monotonic) it was first ready while its prompt file was not
        self._ready_at: dict[str, float] = {}
        self.unreachable: dict[str, str] = {}
        #: Files claimed lately: the events of the daemon's own look at them come after.
        self._claimed: set[str] = set()
        #: The last tick stopped at its batch or time limit with due files left.
        self.behind = False
        #: Files a scan found all at once, claimed by a helper process; their paths.
        self.backlog = backlog.Backlog()
        self._backlogged: set[str] = set()
        #: Claims journaled since the last tick, outside it (told by the next tick's count).
        self._unwoken = 0
        self.board = Board(journal)
        for plan in plans:
            self.board.forget(plan.key)  # what a previous run saw is not known now
        self.replace(plans, policy)

    def replace(self, plans: list[FolderPlan], policy: LocalFilePolicy = STRICT) -> None:
        """Use a new folder set and local-file policy (after a reload); candidates of dropped
        folders are dropped."""
        for key in [k for k in self.plans if k not in {p.key for p in plans}]:
            self.board.forget(key)
            self.prompts.forget(key)
            for item in self.backlog.forget(key):
                self._backlogged.discard(item.path)
        self.plans = {p.key: p for p in plans}
        self.policy = policy
        for path, (plan, cand) in list(self.candidates.items()):
            if plan.key not in self.plans:
                self._drop(path)
            else:
                self.candidates[path] = (self.plans[plan.key], cand)

    # --- adding candidates -----------------------------------------------------------------

    def hint(self, plan: FolderPlan, path: str, kind: HintKind) -> None:
        """An event named ``path``; runs on the event loop."""
        if path in self._backlogged:
            return  # the helper looks at it again just before it claims it
        known = path in self.candidates or path in self.prompts.seen
        if not known and kind in ("opened", "closed") and path in self._claimed:
            # The daemon's own look (a read lease) at a file it has claimed since.
            if kind == "closed":
                self._claimed.discard(path)
            return
        if not known and not os.path.lexists(path):
            return  # gone already: mostly the daemon's own looks at a file it has since claimed
        plan = self.plans.get(plan.key, plan)
        rel = plan.rel(path)
        if rel is None or rel.rpartition("/")[2].startswith("."):
            return
        if _is_prompt(plan, rel, plan.filter.why_not(rel)):
            self.prompts.heard(plan.key, path, kind)
            if (image := self._images.get(path)) is not None and image in self._due:
                self._due[image] = 0.0  # its image looks again
            return
        fate = self._fate(plan, rel)
        if fate is not None and not (fate.unmatched and plan.section.on_unmatched == "fail"):
            if rel not in self.board.ignored.get(plan.key, {}) and os.path.lexists(path):
                self.board.ignore(plan.key, rel, fate)
            return
        cand = self._add(plan, path, fate)
        if not hear(cand, path, kind, self.policy):
            self._drop(path)
            return
        self._due[path] = 0.0

    def scan(self, plan: FolderPlan) -> int:
        """Add every wanted file in the folder; returns how many. A folder that cannot be
        read is reported once and tried again at the next scan."""
        count = 0
        ignored: dict[str, Ignored] = {}
        prompts: set[str] = set()
        found: list[tuple[str, str, str]] = []  # new files the folder takes: path, rel, chain
        taken = to_helper = 0  # of them, handed on already; to the helper
        root = str(plan.root)
        try:
            for rel, why in survey(plan):
                if _is_prompt(plan, rel, why):
                    prompts.add(os.path.join(root, rel))
                    continue
                chain = plan.chain_for(rel) if why is None else None
                why = why or (NO_ROUTE if chain is None else None)
                fate = None if why is None else ignored_fate(rel, why)
                if fate is not None and not (
                    fate.unmatched and plan.section.on_unmatched == "fail"
                ):
                    ignored[rel] = fate
                    continue
                path = os.path.join(root, rel)  # str(plan.root / rel): rel is normalised
                if path in self.candidates or path in self._backlogged:
                    continue
                count += 1
                if fate is not None:
                    self._add(plan, path, fate).scanned = True
                    continue
                assert chain is not None
                found.append((path, rel, chain))
                if len(found) == backlog.BATCH_FILES:  # the helper starts meanwhile
                    to_helper += self._take_found(plan, found, prompts, taken)
                    taken += len(found)
                    found = []
            self.board.surveyed(plan.key, ignored)
            self._surveyed_prompts(plan, prompts)
            to_helper += self._take_found(plan, found, prompts, taken)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if self.unreachable.get(plan.key) != reason:
                logger.error(
                    "{} cannot be read ({}); it is tried again at every rescan", plan.root, reason
                )
            self.unreachable[plan.key] = reason
            return count
        if self.unreachable.pop(plan.key, None) is not None:
            logger.info("{} can be read again", plan.root)
        if to_helper and self.backlog.usable():
            logger.info(
                "{}: {} file(s) were there already; a helper process claims them", plan.root,
                to_helper,
            )  # fmt: skip
        return count

    def _take_found(
        self, plan: FolderPlan, found: list[tuple[str, str, str]], prompts: set[str], taken: int
    ) -> int:
        """Add new files a scan found, after ``taken`` others: a backlog of them (hundreds at
        once) goes to the helper process, all but those it could not take at once anyway.
        Returns how many went to it."""
        quiet = plan.section.quiet_seconds
        older_than = time.time() - max(quiet * INCOMPLETE_FACTOR, quiet, 1.0)
        bulk = (
            taken + len(found) >= backlog.MIN_FILES
            and self.backlog.usable()
            and plan.section.after != "keep"  # each is asked of the journal first
            and not (self.policy.follow_symlinks or self.policy.allow_hardlinks)
        )
        if bulk and not taken and held_for_writing(found[0][0]) is None:
            bulk = False  # no leases here (a network file system): the helper takes nothing
        if bulk:
            os.makedirs(claim.processing_root(plan.root), exist_ok=True)  # the helper renames
        items = []
        root = str(plan.root)
        for path, rel, chain in found:
            prompt = _prompt_of(path)
            if (
                bulk
                and prompt not in prompts  # listed already: the usual look pairs them
                and chain not in plan.prompt_chains
                and _older_than(path, older_than)  # a young one would only come back
            ):
                prompt_rel = prompt[len(root) :].lstrip("/")
                items.append(
                    backlog.Item(plan, path, rel, chain, new_job_id(), prompt_rel, older_than)
                )
                self._backlogged.add(path)
            else:
                self._add(plan, path).scanned = True
        if items:
            if self.on_backlog is not None:
                self.on_backlog()
            self.backlog.add(items)
            # what it has claimed meanwhile: the first at once, then a tick's worth at a time
            first = self._unwoken == 0
            self._claim_backlog(wait=False, at_least=1 if first else backlog.STEP_FILES)
        return len(items)

    def _claim_backlog(self, *, wait: bool = True, at_least: int = 1) -> None:
        """Journal the claims the helper has answered, if ``at_least`` files are answered
        (with ``wait``, at least one batch's, when it has any to answer); the files it left
        become candidates."""
        jobs: list[NewJob] = []
        for outcome in self.backlog.step(wait=wait, at_least=at_least):
            self._backlog_outcome(outcome, jobs)
        self._record(jobs)
        self._unwoken += len(jobs)

    def _backlog_outcome(self, outcome: backlog.Outcome, jobs: list[NewJob]) -> None:
        item = outcome.item
        self._backlogged.discard(item.path)
        if outcome.stat is None:
            plan = self.plans.get(item.plan.key)
            if outcome.answer == "look" and plan is not None and item.path not in self.candidates:
                self._add(plan, item.path).scanned = True
            return
        size, mtime_ns, ino, mode, nlink = outcome.stat
        if len(self._claimed) >= CLAIMED_KEPT:
            self._claimed.clear()
        self._claimed.add(item.path)
        if not (stat.S_ISREG(mode) and nlink == 1):  # swapped between its look and its rename
            st = os.stat_result((mode, ino, 0, nlink, 0, 0, size, 0, mtime_ns // 10**9, 0))
            reason = unsafe_reason(st, self.policy) or "it is not a regular file"
            logger.warning("{}: {}; it will be failed without being read", item.path, reason)
        sig = str(Signature(size, mtime_ns, ino))
        jobs.append(NewJob(item.job_id, item.plan.key, item.rel, item.chain, sig))

    def close(self) -> None:
        """Journal what the helper claimed, and end it (the daemon stops)."""
        jobs: list[NewJob] = []
        for outcome in self.backlog.close():
            self._backlog_outcome(outcome, jobs)
        self._record(jobs)

    def _surveyed_prompts(self, plan: FolderPlan, present: set[str]) -> None:
        """A scan found exactly the prompt files ``present`` in ``plan``'s folder: gone ones
        are dropped; those with no image beside them yet are listed as waiting for it."""
        for path in self.prompts.in_folder(plan.key):
            if path not in present:
                self.prompts.drop(path)
                if (rel := plan.rel(path)) is not None:
                    self.board.done_waiting(plan.key, rel)
        for path in sorted(present):
            if path not in self.prompts.seen:  # an old one is taken at once, as its image is
                self.prompts.add(plan.key, path).scanned = True
            cand = self.prompts.add(plan.key, path)
            rel = plan.rel(path)
            if rel is None:
                continue
            if (image := self._images.get(path)) is not None:
                self.board.done_waiting(plan.key, rel)
                if image in self._due:
                    self._due[image] = 0.0
            else:
                self.board.wait(
                    plan.key, rel, "no image yet", cand.seen_at, time.time() - cand.seen_at
                )

    @staticmethod
    def _fate(plan: FolderPlan, rel: str) -> Ignored | None:
        why = plan.filter.why_not(rel)
        if why is None and plan.chain_for(rel) is None:
            why = NO_ROUTE
        return None if why is None else ignored_fate(rel, why)

    def _add(self, plan: FolderPlan, path: str, fate: Ignored | None = None) -> Candidate:
        if path not in self.candidates:
            self.candidates[path] = (plan, Candidate(path, seen_at=time.time()))
            self._due[path] = 0.0
            if fate is not None:
                self._unmatched[path] = fate
            self._images[_prompt_of(path)] = path
            if (rel := plan.rel(path)) is not None:
                self.board.unignore(plan.key, rel)
        return self.candidates[path][1]

    def _drop(self, path: str) -> None:
        found = self.candidates.pop(path, None)
        self._due.pop(path)
        self._unmatched.pop(path, None)
        self._ready_at.pop(path, None)
        prompt = _prompt_of(path)
        if self._images.get(prompt) == path:
            del self._images[prompt]
        if found is not None and (rel := found[0].rel(path)) is not None:
            self.board.done_waiting(found[0].key, rel)

    # --- looking and claiming --------------------------------------------------------------

    def tick(self) -> int:
        """Check the due candidates; claim and record the ready ones. Returns claims made."""
        now = time.monotonic()
        jobs: list[NewJob] = []
        self.behind = False
        if self.backlog.busy:
            self._claim_backlog()
        for path in self._due.due(now):
            if len(jobs) >= BATCH or time.monotonic() - now >= LOOK_BUDGET_SECONDS:
                self.behind = True
                self._due.put_back(path)
                break
            plan, cand = self.candidates[path]
            quiet = plan.section.quiet_seconds
            try:
                state, st = check(cand, quiet, now, self.policy)
            except OSError as exc:
                logger.warning("{}: cannot look at it ({}); trying again", path, exc.strerror)
                self._due[path] = now + max(quiet, 1.0)
                continue
            if state == "gone":
                self._drop(path)
            elif state == "unsafe":
                self._drop(path)
                assert st is not None
                reason = unsafe_reason(st, self.policy) or "not a regular file"
                self._quarantine(plan, path, reason)
            elif state == "ready" and (fate := self._unmatched.get(path)) is not None:
                self._drop(path)
                self._reject(plan, path, fate)
            elif state == "ready":
                assert st is not None
                pairing, look_at = self._pair(plan, cand, now)
                if pairing == "wait":
                    self._waits(plan, cand, now)
                    self._due[path] = look_at
                    continue
                self._drop(path)
                if pairing == "late":
                    self._no_prompt(plan, path, now)
                elif job := self._claim(plan, path, st, with_prompt=pairing == "with"):
                    jobs.append(job)
            else:
                self._waits(plan, cand, now)
                # Look again when the quiet period could be over (sooner after a change); an
                # empty placeholder every quiet period, at least every second.
                self._due[path] = now + (
                    max(quiet, 1.0)
                    if state == "empty"
                    else max(min(quiet, 0.5) / 2, cand.stable_since + quiet - now, 0.02)
                )
        self._record(jobs)
        self.board.publish()
        self.behind = self.behind or self.backlog.busy
        claimed, self._unwoken = len(jobs) + self._unwoken, 0
        return claimed

    def _waits(self, plan: FolderPlan, cand: Candidate, now: float) -> None:
        rel = plan.rel(cand.path)
        if rel is not None:
            waited = time.time() - cand.seen_at
            self.board.wait(plan.key, rel, cand.why or "quiet period", cand.seen_at, waited)

    def _pair(self, plan: FolderPlan, cand: Candidate, now: float) -> tuple[str, float]:
        """What a ready image's prompt file says: ``"with"`` (claim the two), ``"alone"``
        (claim the image alone), ``"late"`` (its chain needs a prompt file that did not
        come: fail it) or ``"wait"`` (look again at the time returned)."""
        path = cand.path
        prompt = _prompt_of(path)
        quiet = plan.section.quiet_seconds
        found = self.prompts.check(plan.key, prompt, quiet, now)
        if found == "ready":
            return "with", 0.0
        if found == "unsafe":
            self.prompts.drop(prompt)
            with contextlib.suppress(FileNotFoundError):
                why = unsafe_reason(os.lstat(prompt), PROMPT_POLICY) or "not a regular file"
                self._quarantine(plan, prompt, why)
            found = "none"
        rel = plan.rel(path) or ""
        if found == "none" and not plan.needs_prompt(rel):
            return "alone", 0.0
        if path not in self._ready_at:
            self._ready_at[path] = now
            logger.debug("{}: ready; waits for its prompt file {}", path, Path(prompt).name)
        deadline = self._ready_at[path] + quiet + plan.section.prompt_wait_seconds
        if now >= deadline:
            return ("late" if plan.needs_prompt(rel) else "alone"), 0.0
        cand.why = "prompt file" if found == "none" else "prompt being written"
        # Its prompt file's event wakes it sooner; one being written is looked at as often
        # as any file in its quiet period.
        step = max(quiet, 1.0) if found == "none" else max(min(quiet, 0.5) / 2, 0.05)
        return "wait", min(deadline, now + step)

    def _claim(
        self, plan: FolderPlan, path: str, st: os.stat_result, *, with_prompt: bool
    ) -> NewJob | None:
        """Rename a ready file (and its prompt file) into ``processing/``; the job to
        record, or None when it is not taken after all. Recorded by :meth:`_record`, with
        the rest of the tick's, before any of them can start."""
        rel = plan.rel(path)
        chain = None if rel is None else plan.chain_for(rel)
        if rel is None or chain is None:
            return None  # the folder's routes changed since it was seen: the next scan says
        sig = str(Signature.of(st))
        if plan.section.after == "keep" and self.journal.seen(plan.key, rel, sig):
            return None  # put back after processing; not new
        try:
            claimed = claim.claim(plan.root, rel, with_prompt=with_prompt)
        except OSError as exc:
            logger.error("{}: cannot claim it ({}); trying again later", path, exc.strerror)
            return None
        if claimed is None:
            return None
        if len(self._claimed) >= CLAIMED_KEPT:
            self._claimed.clear()  # events lost in an overflow: costs a look each, no more
        self._claimed.add(path)
        if with_prompt:
            prompt = companion(Path(path))
            self.prompts.drop(str(prompt))
            self.board.done_waiting(plan.key, str(PurePosixPath(rel).with_name(prompt.name)))
        if reason := unsafe_reason(claimed.stat(self.policy), self.policy):
            # Swapped for a link between the look and the claim: its job fails unread.
            logger.warning("{}: {}; it will be failed without being read", path, reason)
        return NewJob(claimed.id, plan.key, rel, chain, sig)

    def _record(self, jobs: list[NewJob]) -> None:
        """Journal a tick's claims in one transaction (durable before the scheduler is
        told of them)."""
        if jobs:
            self.journal.add(jobs)
            for job in jobs:
                logger.debug("queued {} (job {})", job.name, job.id)
            logger.info("queued {} file(s)", len(jobs))

    def _reject(self, plan: FolderPlan, path: str, fate: Ignored) -> None:
        """``on_unmatched = "fail"``: move a file the folder does not take to the failed
        place with its ``.error.json``, and record it as a failed job."""
        hint = f'{fate.fix} (or set on_unmatched = "leave" to leave such files be)'
        if target := self._fail_unclaimed(plan, path, fate.reason, hint):
            logger.warning(
                "{} failed to {}: {}; to take it: {}", path, target, fate.reason, fate.fix
            )

    def _no_prompt(self, plan: FolderPlan, path: str, now: float) -> None:
        """The image's chain uses ``{prompt}`` and no prompt file came in time: it fails
        unread (with a prompt file still being written, that one goes with it)."""
        rel = plan.rel(path) or ""
        prompt = companion(PurePosixPath(rel)).name
        waited = now - self._ready_at.get(path, now)
        allowed = plan.section.quiet_seconds + plan.section.prompt_wait_seconds
        reason = (
            f"its chain {plan.chain_for(rel)!r} uses {{prompt}} and its prompt file {prompt} "
            f"was not complete beside it within {allowed:g}s (quiet_seconds + "
            "prompt_wait_seconds)"
        )
        hint = (
            f"drop the image again with {prompt} (its prompt, UTF-8 text) beside it, or raise "
            "prompt_wait_seconds for the folder"
        )
        if target := self._fail_unclaimed(plan, path, reason, hint):
            logger.error("{} failed to {} after {:.1f}s: {}", path, target, waited, reason)

    def _fail_unclaimed(self, plan: FolderPlan, path: str, reason: str, hint: str) -> Path | None:
        """Move a file (and its prompt file) to the failed place with its ``.error.json``
        without running it, and record it as a failed job; where it went, or None."""
        rel = plan.rel(path)
        if rel is None:
            return None
        job_id = new_job_id()
        target = claim.failed_target(plan.failed, rel, job_id)
        # the same fields as every other error file (claim.quarantine, a failed job's)
        error = {
            "class": "InputError",
            "message": f"{rel} was not processed: {reason}",
            "hint": hint,
            "step": None,
            "status": None,
            "request_id": None,
            "attempts": 0,
            "time": iso_time(time.time()),
            "job": job_id,
            "file": rel,
            "folder": plan.key,
            "chain": plan.chain_for(rel) or plan.chain,
        }
        try:
            claim.move_with_prompt(plan.root / rel, target)
            claim.write_error(target, error)
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.error("{}: cannot move it to the failed place ({})", path, exc.strerror)
            return None
        self.prompts.drop(str(companion(Path(path))))
        self.journal.add_failed(
            NewJob(job_id, plan.key, rel, plan.chain_for(rel) or plan.chain or ""),
            place=str(target),
            error={k: error[k] for k in ("class", "message", "hint")},
        )
        return target

    def _quarantine(self, plan: FolderPlan, path: str, reason: str) -> None:
        rel = plan.rel(path)
        if rel is None:
            return
        try:
            chain = plan.chain_for(rel) or plan.chain
            job_id, target = claim.quarantine(plan.root, plan.failed, rel, reason, chain=chain)
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.error("{}: cannot quarantine it ({})", path, exc.strerror)
            return
        logger.error("{} quarantined to {}: {}", path, target, reason)
        self.journal.add_failed(
            NewJob(job_id, plan.key, rel, plan.chain_for(rel) or plan.chain or ""),
            place=str(target),
            error={
                "class": "UnsafeInputError",
                "message": f"{rel} was not processed: {reason}",
                "hint": "drop the file itself (a regular file with one link) into the folder",
            },
        )


def _older_than(path: str, when: float) -> bool:
    """Whether the file at ``path`` was last changed before ``when`` (epoch seconds)."""
    try:
        return os.lstat(path).st_mtime < when
    except OSError:
        return False


def _prompt_of(path: str) -> str:
    """``str(companion(Path(path)))``, the path of an image's prompt file, spelt out for a
    normalised path: it is asked for several times for every file."""
    head, _, name = path.rpartition("/")
    if not head or not name or name in (".", "..") or not is_normalised(path):
        return str(companion(Path(path)))
    dot = name.rfind(".")
    stem = name[:dot] if 0 < dot < len(name) - 1 else name
    return f"{head}/{stem}{PROMPT_SUFFIX}"


def _is_prompt(plan: FolderPlan, rel: str, why: str | None) -> bool:
    """Whether ``rel`` is a companion prompt file the folder watches for its image: one its
    filter takes, or leaves out only for not being an image (``*.txt`` is not in include)."""
    return is_prompt_file(rel) and why in (None, "not in include")
