"""One watched folder as the daemon sees it: its places, its name filter, what it must not
watch, and its one-daemon-at-a-time lock."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hotfolder.config import Config
from hotfolder.daemon import settings
from hotfolder.daemon.readiness import NameFilter
from hotfolder.daemon.settings import FolderSection
from hotfolder.errors import ConfigError, HotfolderError


@dataclass
class FolderPlan:
    """A ``[[folders]]`` entry resolved to paths and filters."""

    section: FolderSection
    root: Path
    archive: Path
    failed: Path
    filter: NameFilter
    #: Folders inside ``root`` never scanned: outputs, archive, failed, ``.hotfolder``.
    excluded: tuple[Path, ...]
    lock_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """How the journal names this folder."""
        return str(self.root)

    @property
    def chain(self) -> str:
        return self.section.chain

    def rel(self, path: str | Path) -> str | None:
        """``path`` relative to the folder (``/``-separated), or None when it is outside it
        or inside an excluded folder."""
        path = Path(path)
        if not path.is_relative_to(self.root):
            return None
        if any(path == ex or path.is_relative_to(ex) for ex in self.excluded):
            return None
        rel = path.relative_to(self.root).as_posix()
        if rel == "." or (not self.section.recursive and "/" in rel):
            return None
        return rel

    def lock(self) -> None:
        """Hold ``<folder>/.hotfolder/lock`` so that no second daemon claims here."""
        state = self.root / settings.STATE_SUBDIR
        state.mkdir(parents=True, exist_ok=True)
        handle = (state / "lock").open("a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            msg = f"{self.root} is already watched by another hotfolder daemon"
            raise HotfolderError(
                msg, hint="stop the other daemon, or remove this folder from one of the configs"
            ) from None
        self.lock_file = handle

    def moved(self) -> bool:
        """Whether the folder now at ``root`` is not the one locked: it was moved away,
        deleted, replaced by a new one or mounted over."""
        if self.lock_file is None:
            return False
        try:
            held = os.fstat(self.lock_file.fileno())
            there = os.stat(self.root / settings.STATE_SUBDIR / "lock")
        except OSError:
            return True
        return (held.st_dev, held.st_ino) != (there.st_dev, there.st_ino)

    def unlock(self) -> None:
        if self.lock_file is not None:
            self.lock_file.close()
            self.lock_file = None


def plan_folders(config: Config) -> list[FolderPlan]:
    """Every ``[[folders]]`` entry as a plan; a setup that would feed outputs back into a
    watched folder, or watch one folder twice, is a ConfigError."""
    plans: list[FolderPlan] = []
    problems: list[str] = []
    for i, section in enumerate(config.sections(FolderSection)):
        outputs = _output_roots(config, section.chain)
        plan = plan_folder(section, outputs)
        if plan.root in outputs:
            problems.append(
                f"folders[{i}]: chain {section.chain!r} writes its outputs into the watched "
                f"folder {plan.root} itself; give its folder sink a subfolder (never watched) "
                "or a folder elsewhere"
            )
        if any(p.root == plan.root for p in plans):
            problems.append(f"folders[{i}]: {plan.root} is listed twice; keep one entry")
        plans.append(plan)
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(problems), source=str(config.path))
    return plans


def plan_folder(section: FolderSection, output_roots: set[Path] | None = None) -> FolderPlan:
    root = settings.folder_root(section)
    archive, failed = settings.archive_root(section), settings.failed_root(section)
    excluded = {root / settings.STATE_SUBDIR, archive, failed, *(output_roots or set())}
    inside = tuple(sorted(p for p in excluded if p != root and p.is_relative_to(root)))
    name_filter = NameFilter(
        include=tuple(section.include),
        exclude=tuple(section.exclude),
        ignore=tuple(section.ignore),
        case_sensitive=section.case_sensitive,
    )
    return FolderPlan(section, root, archive, failed, name_filter, inside)


def _output_roots(config: Config, chain_name: str) -> set[Path]:
    """The folders a chain's sinks write into: every path-valued sink parameter."""
    roots: set[Path] = set()
    chain = config.chains.get(chain_name)
    for output in chain.outputs if chain else ():
        for value in dict(output.params).values():
            if isinstance(value, Path):
                roots.add(Path(os.path.realpath(value)))
    return roots
