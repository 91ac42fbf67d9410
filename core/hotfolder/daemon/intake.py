"""From "a file appeared" to "a job is queued": candidates, readiness, claims, quarantine.

Hints (events) and scans add *candidates*; :meth:`Intake.tick` looks at each candidate that
is due, and claims the ready ones in one batch: each is renamed into its processing folder,
then all are recorded in one journal transaction. Memory holds only files still being
written; claimed files are journal rows. What is unsafe to read (and so quarantined) is decided
by the local-file policy of ``[resolvers.path]``, the same one the path resolver applies.
What is not taken, and what waits long, is kept on a :class:`~hotfolder.daemon.fates.Board`
for the log and ``status``; with ``on_unmatched = "fail"`` a file the folder does not take is
watched like any other and, once complete, failed with its reason instead of claimed.
"""

from __future__ import annotations

import os
import time
from pathlib import PurePosixPath

from loguru import logger

from hotfolder.daemon import claim
from hotfolder.daemon.fates import Board, Ignored, ignored_fate
from hotfolder.daemon.folders import FolderPlan
from hotfolder.daemon.journal import Journal, NewJob
from hotfolder.daemon.readiness import Candidate, Signature, check
from hotfolder.daemon.watcher import HintKind, survey
from hotfolder.job import new_job_id
from hotfolder.localfiles import STRICT, LocalFilePolicy, stat_path, unsafe_reason

#: Most files claimed per tick, so that the event loop stays responsive in a flood.
BATCH = 200


class Intake:
    """Candidates of every folder, and the claiming of ready ones."""

    def __init__(
        self, journal: Journal, plans: list[FolderPlan], policy: LocalFilePolicy = STRICT
    ) -> None:
        self.journal = journal
        self.plans: dict[str, FolderPlan] = {}
        self.policy = policy
        self.candidates: dict[str, tuple[FolderPlan, Candidate]] = {}
        self._due: dict[str, float] = {}
        #: Candidates the folder does not take, to be failed once complete.
        self._unmatched: dict[str, Ignored] = {}
        self.unreachable: dict[str, str] = {}
        self.board = Board(journal)
        for plan in plans:
            self.board.forget(plan.key)  # what a previous run saw is not known now
        self.replace(plans, policy)

    def replace(self, plans: list[FolderPlan], policy: LocalFilePolicy = STRICT) -> None:
        """Use a new folder set and local-file policy (after a reload); candidates of dropped
        folders are dropped."""
        for key in [k for k in self.plans if k not in {p.key for p in plans}]:
            self.board.forget(key)
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
        plan = self.plans.get(plan.key, plan)
        rel = plan.rel(path)
        if rel is None or PurePosixPath(rel).name.startswith("."):
            return
        fate = self._fate(plan, rel)
        if fate is not None and not (fate.unmatched and plan.section.on_unmatched == "fail"):
            if rel not in self.board.ignored.get(plan.key, {}) and os.path.lexists(path):
                self.board.ignore(plan.key, rel, fate)
            return
        cand = self._add(plan, path, fate)
        if kind == "opened":
            cand.opened += 1
        elif kind == "closed":
            cand.opened = max(0, cand.opened - 1)
        elif kind == "arrived":
            cand.opened = max(0, cand.opened - 1) if cand.opened else 0
            try:
                cand.arrived = Signature.of(stat_path(path, self.policy))
            except FileNotFoundError:
                self._drop(path)
                return
        self._due[path] = 0.0

    def scan(self, plan: FolderPlan) -> int:
        """Add every wanted file in the folder; returns how many. A folder that cannot be
        read is reported once and tried again at the next scan."""
        count = 0
        ignored: dict[str, Ignored] = {}
        try:
            for rel, why in survey(plan):
                fate = None if why is None else ignored_fate(rel, why)
                if fate is not None and not (
                    fate.unmatched and plan.section.on_unmatched == "fail"
                ):
                    ignored[rel] = fate
                    continue
                path = str(plan.root / rel)
                if path not in self.candidates:
                    self._add(plan, path, fate)
                    count += 1
            self.board.surveyed(plan.key, ignored)
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
        return count

    @staticmethod
    def _fate(plan: FolderPlan, rel: str) -> Ignored | None:
        why = plan.filter.why_not(rel)
        return None if why is None else ignored_fate(rel, why)

    def _add(self, plan: FolderPlan, path: str, fate: Ignored | None = None) -> Candidate:
        if path not in self.candidates:
            self.candidates[path] = (plan, Candidate(path, seen_at=time.time()))
            self._due[path] = 0.0
            if fate is not None:
                self._unmatched[path] = fate
            if (rel := plan.rel(path)) is not None:
                self.board.unignore(plan.key, rel)
        return self.candidates[path][1]

    def _drop(self, path: str) -> None:
        found = self.candidates.pop(path, None)
        self._due.pop(path, None)
        self._unmatched.pop(path, None)
        if found is not None and (rel := found[0].rel(path)) is not None:
            self.board.done_waiting(found[0].key, rel)

    # --- looking and claiming --------------------------------------------------------------

    def tick(self) -> int:
        """Check the due candidates; claim and record the ready ones. Returns claims made."""
        now = time.monotonic()
        ready: list[tuple[FolderPlan, str, os.stat_result]] = []
        for path, due in list(self._due.items()):
            if due > now or len(ready) >= BATCH:
                continue
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
                self._drop(path)
                assert st is not None
                ready.append((plan, path, st))
            else:
                self._waits(plan, cand, now)
                # Look again when the quiet period could be over (sooner after a change); an
                # empty placeholder every quiet period, at least every second.
                self._due[path] = now + (
                    max(quiet, 1.0)
                    if state == "empty"
                    else max(min(quiet, 0.5) / 2, cand.stable_since + quiet - now, 0.02)
                )
        claimed = self._claim(ready)
        self.board.publish()
        return claimed

    def _waits(self, plan: FolderPlan, cand: Candidate, now: float) -> None:
        rel = plan.rel(cand.path)
        if rel is not None:
            waited = time.time() - cand.seen_at
            self.board.wait(plan.key, rel, cand.why or "quiet period", cand.seen_at, waited)

    def _claim(self, ready: list[tuple[FolderPlan, str, os.stat_result]]) -> int:
        jobs: list[NewJob] = []
        for plan, path, st in ready:
            rel = plan.rel(path)
            if rel is None:
                continue
            sig = str(Signature.of(st))
            if plan.section.after == "keep" and self.journal.seen(plan.key, rel, sig):
                continue  # put back after processing; not new
            try:
                claimed = claim.claim(plan.root, rel)
            except OSError as exc:
                logger.error("{}: cannot claim it ({}); trying again later", path, exc.strerror)
                continue
            if claimed is None:
                continue
            if reason := unsafe_reason(stat_path(claimed.path, self.policy), self.policy):
                # Swapped for a link between the look and the claim: its job fails unread.
                logger.warning("{}: {}; it will be failed without being read", path, reason)
            jobs.append(NewJob(claimed.id, plan.key, rel, plan.chain, sig))
        if jobs:
            self.journal.add(jobs)
            for job in jobs:
                logger.debug("queued {} (job {})", job.name, job.id)
            logger.info("queued {} file(s)", len(jobs))
        return len(jobs)

    def _reject(self, plan: FolderPlan, path: str, fate: Ignored) -> None:
        """``on_unmatched = "fail"``: move a file the folder does not take to the failed
        place with its ``.error.json``, and record it as a failed job."""
        rel = plan.rel(path)
        if rel is None:
            return
        job_id = new_job_id()
        target = claim.failed_target(plan.failed, rel, job_id)
        error = {
            "class": "InputError",
            "message": f"{rel} was not processed: {fate.reason}",
            "hint": f'{fate.fix} (or set on_unmatched = "leave" to leave such files be)',
            "status": None,
            "request_id": None,
            "attempts": 0,
            "job": job_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        try:
            claim.move_into(plan.root / rel, target)
            claim.write_error(target, error)
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.error("{}: cannot move it to the failed place ({})", path, exc.strerror)
            return
        logger.warning("{} failed to {}: {}; to take it: {}", path, target, fate.reason, fate.fix)
        self.journal.add_failed(
            NewJob(job_id, plan.key, rel, plan.chain),
            place=str(target),
            error={k: error[k] for k in ("class", "message", "hint")},
        )

    def _quarantine(self, plan: FolderPlan, path: str, reason: str) -> None:
        rel = plan.rel(path)
        if rel is None:
            return
        try:
            job_id, target = claim.quarantine(plan.root, plan.failed, rel, reason)
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.error("{}: cannot quarantine it ({})", path, exc.strerror)
            return
        logger.error("{} quarantined to {}: {}", path, target, reason)
        self.journal.add_failed(
            NewJob(job_id, plan.key, rel, plan.chain),
            place=str(target),
            error={
                "class": "UnsafeInputError",
                "message": f"{rel} was not processed: {reason}",
                "hint": "drop the file itself (a regular file with one link) into the folder",
            },
        )
