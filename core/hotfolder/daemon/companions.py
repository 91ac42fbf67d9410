"""The companion prompt files the intake has seen, watched until their image takes them.

A prompt file (``NAME.prompt.txt``, see :mod:`hotfolder.prompts`) is never a job and never
listed as ignored. It is a candidate of its own only for readiness (being written, open for
writing, quiet), under the strict local-file policy (a link or a FIFO is quarantined, as the
Venice step would refuse it anyway); its image asks :meth:`PromptFiles.check` when the image
itself is ready, and is claimed together with it once both are.
"""

from __future__ import annotations

import os
import time

from hotfolder.daemon.readiness import Candidate, Signature, check
from hotfolder.localfiles import STRICT, LocalFilePolicy, stat_path

#: The policy prompt files are read under, whatever ``[resolvers.path]`` allows for images:
#: the Venice step reads them with it too.
PROMPT_POLICY = STRICT


class PromptFiles:
    """Prompt files by path, each with its folder's key and its readiness candidate."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, Candidate]] = {}

    def add(self, folder: str, path: str) -> Candidate:
        if path not in self.seen:
            self.seen[path] = (folder, Candidate(path, seen_at=time.time()))
        return self.seen[path][1]

    def drop(self, path: str) -> None:
        self.seen.pop(path, None)

    def heard(self, folder: str, path: str, kind: str) -> None:
        """An event named the prompt file ``path`` (see :meth:`Intake.hint`)."""
        cand = self.add(folder, path)
        if not hear(cand, path, kind, PROMPT_POLICY):
            self.drop(path)

    def check(self, folder: str, path: str, quiet: float, now: float) -> str:
        """The prompt file at ``path`` as its image sees it: ``"none"`` (there is none),
        ``"ready"`` (complete; an empty one too, which the Venice step then refuses by
        name), ``"wait"`` (being written) or ``"unsafe"`` (a link, a FIFO: quarantine it)."""
        if not os.path.lexists(path):
            self.drop(path)
            return "none"
        cand = self.add(folder, path)
        state, _ = check(cand, quiet, now, PROMPT_POLICY)
        if state == "gone":
            self.drop(path)
            return "none"
        if state == "empty":
            return "ready"
        return state

    def in_folder(self, folder: str) -> dict[str, Candidate]:
        return {path: cand for path, (key, cand) in self.seen.items() if key == folder}

    def forget(self, folder: str) -> None:
        for path in list(self.in_folder(folder)):
            self.drop(path)


def hear(cand: Candidate, path: str, kind: str, policy: LocalFilePolicy) -> bool:
    """Note an event of kind ``kind`` (see :data:`~hotfolder.daemon.folders.HintKind`) on
    ``cand``; False when the file is gone."""
    if kind == "opened":
        cand.opened += 1
    elif kind == "closed":
        cand.opened = max(0, cand.opened - 1)
    elif kind == "arrived":
        cand.opened = max(0, cand.opened - 1) if cand.opened else 0
        try:
            cand.arrived = Signature.of(stat_path(path, policy))
        except FileNotFoundError:
            return False
    return True
