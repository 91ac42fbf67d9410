"""From "a file appeared" to "a job is queued": candidates, readiness, claims, quarantine.

Hints (events) and scans add *candidates*; :meth:`Intake.tick` looks at each candidate that
is due, and claims the ready ones in one batch: each is renamed into its processing folder,
then all are recorded in one journal transaction. Memory holds only files still being
written; claimed files are journal rows. What is unsafe to read (and so quarantined) is decided
by the local-file policy of ``[resolvers.path]``, the same one the path resolver applies.
"""

from __future__ import annotations

import os
import time

from loguru import logger

from hotfolder.daemon import claim
from hotfolder.daemon.folders import FolderPlan
from hotfolder.daemon.journal import Journal, NewJob
from hotfolder.daemon.readiness import Candidate, Signature, check
from hotfolder.daemon.watcher import HintKind, scan
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
        self.unreachable: dict[str, str] = {}
        self.replace(plans, policy)

    def replace(self, plans: list[FolderPlan], policy: LocalFilePolicy = STRICT) -> None:
        """Use a new folder set and local-file policy (after a reload); candidates of dropped
        folders are dropped."""
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
        if rel is None or not plan.filter.wanted(rel):
            return
        cand = self._add(plan, path)
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
        try:
            for rel in scan(plan):
                path = str(plan.root / rel)
                if path not in self.candidates:
                    self._add(plan, path)
                    count += 1
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

    def _add(self, plan: FolderPlan, path: str) -> Candidate:
        if path not in self.candidates:
            self.candidates[path] = (plan, Candidate(path))
            self._due[path] = 0.0
        return self.candidates[path][1]

    def _drop(self, path: str) -> None:
        self.candidates.pop(path, None)
        self._due.pop(path, None)

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
            if state == "gone" or state == "empty":
                self._drop(path)
            elif state == "unsafe":
                self._drop(path)
                assert st is not None
                reason = unsafe_reason(st, self.policy) or "not a regular file"
                self._quarantine(plan, path, reason)
            elif state == "ready":
                self._drop(path)
                assert st is not None
                ready.append((plan, path, st))
            else:
                # Look again when the quiet period could be over (sooner after a change).
                self._due[path] = now + max(
                    min(quiet, 0.5) / 2, cand.stable_since + quiet - now, 0.02
                )
        return self._claim(ready)

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
        self.journal.add([NewJob(job_id, plan.key, rel, plan.chain)], state="failed")
        self.journal.update(
            job_id,
            place=str(target),
            finished=time.time(),
            error={
                "class": "UnsafeInputError",
                "message": f"{rel} was not processed: {reason}",
                "hint": "drop the file itself (a regular file with one link) into the folder",
            },
        )
