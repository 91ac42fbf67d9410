"""One watched folder as the daemon sees it: its places, its name filter, its routes, what it
must not watch, and its one-daemon-at-a-time lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from hotfolder.config import Config
from hotfolder.daemon import settings
from hotfolder.daemon.readiness import NameFilter
from hotfolder.daemon.routes import Router
from hotfolder.daemon.settings import FolderSection
from hotfolder.errors import ConfigError, HotfolderError
from hotfolder.prompts import steps_using_prompt

#: What an event says of a file (see :mod:`hotfolder.daemon.watcher`).
HintKind = Literal["changed", "arrived", "opened", "closed"]
#: ``hint(folder, path, kind)``: called from an observer's thread; must be thread-safe.
Hint = Callable[["FolderPlan", str, HintKind], None]

#: A folder's root (and what paths inside it start with) and its excluded folders (and what
#: paths inside them start with) as strings, for :meth:`FolderPlan.rel`.
_RelKeys = tuple[str, str, frozenset[str], tuple[str, ...]]


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
    router: Router = field(default_factory=Router)
    #: The chains of this folder with a step whose prompt uses ``{prompt}``: their images
    #: wait for their prompt file (see :mod:`hotfolder.prompts`).
    prompt_chains: frozenset[str] = frozenset()
    lock_file: IO[bytes] | None = field(default=None, repr=False)
    _rel_cache: tuple[Path, tuple[Path, ...], _RelKeys | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def key(self) -> str:
        """How the journal names this folder."""
        return str(self.root)

    @property
    def chain(self) -> str | None:
        """The folder's own chain: the fallback of its routes (None: it has routes only)."""
        return self.section.chain

    def chain_for(self, rel: str) -> str | None:
        """The chain of the file at ``rel``: its route's, else the folder's; None when no
        route takes it and the folder has no chain of its own."""
        return self.router.chain_for(rel)

    def needs_prompt(self, rel: str) -> bool:
        """Whether the chain of the file at ``rel`` uses its prompt file (``{prompt}``)."""
        return self.chain_for(rel) in self.prompt_chains

    def rel(self, path: str | Path) -> str | None:
        """``path`` relative to the folder (``/``-separated), or None when it is outside it
        or inside an excluded folder.

        Called several times for every file the daemon meets (events, scans, claims): a
        normalised path (what ``os.scandir`` and watchdog give) is answered by comparing
        strings; any other goes through :mod:`pathlib`, which gives the same answer."""
        text = os.fspath(path)
        keys = self._rel_keys()
        if keys is None or not isinstance(text, str) or not is_normalised(text):
            return self._rel_of_path(Path(path))
        root, prefix, excluded, unders = keys
        if not text.startswith(prefix) or text == root:
            return None
        if text in excluded or text.startswith(unders):
            return None
        rel = text[len(prefix) :]
        if not self.section.recursive and "/" in rel:
            return None
        return rel

    def _rel_keys(self) -> _RelKeys | None:
        """The root and the excluded folders as strings (each with its ``/``-ended prefix),
        made again whenever ``root`` or ``excluded`` is replaced; None for a relative one
        (only pathlib knows what ``.`` holds)."""
        cached = self._rel_cache
        if cached is None or cached[0] is not self.root or cached[1] is not self.excluded:
            keys: _RelKeys | None = None
            if all(p.is_absolute() for p in (self.root, *self.excluded)):
                excluded = frozenset(str(ex) for ex in self.excluded)
                unders = tuple(_prefix(ex) for ex in excluded)
                keys = (str(self.root), _prefix(str(self.root)), excluded, unders)
            cached = self._rel_cache = (self.root, self.excluded, keys)
        return cached[2]

    def _rel_of_path(self, path: Path) -> str | None:
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


def _prefix(folder: str) -> str:
    """What every path inside ``folder`` starts with."""
    return folder if folder.endswith("/") else folder + "/"


def is_normalised(path: str) -> bool:
    """Whether ``path`` is as :mod:`pathlib` would spell it (no ``//``, ``/./``, trailing
    ``/`` or leading ``./``), so that comparing strings gives pathlib's answer."""
    return not (
        "//" in path
        or "/./" in path
        or path.startswith("./")
        or (path.endswith(("/", "/.")) and path != "/")
        or path in ("", ".")
    )


def plan_folders(config: Config) -> list[FolderPlan]:
    """Every ``[[folders]]`` entry as a plan; a setup the daemon cannot run (see
    :func:`folder_problems`) is a ConfigError listing every problem.

    Folders may nest: a file belongs to the most specific folder that holds it, so a folder
    inside another one's tree is excluded from the outer one (its scan and its events)."""
    plans = _plans(config)
    if problems := folder_problems(config, plans):
        raise ConfigError("invalid config:\n" + "\n".join(problems), source=str(config.path))
    return plans


def folder_problems(config: Config, plans: list[FolderPlan] | None = None) -> list[str]:
    """Why these folders cannot be watched together, one line per problem: a chain that writes
    into its own watched folder, a folder listed twice, and an output, archive or failed
    place inside another folder's watched tree (its files would be taken again)."""
    plans = _plans(config) if plans is None else plans
    problems: list[str] = []
    for i, plan in enumerate(plans):
        outputs: set[Path] = set()
        for name in plan.section.chain_names:
            roots = output_roots(config, name)
            outputs |= roots
            if plan.root in roots:
                problems.append(
                    f"folders[{i}]: chain {name!r} writes its outputs into the watched "
                    f"folder {plan.root} itself; give its folder sink a subfolder (never "
                    "watched) or a folder elsewhere"
                )
        if any(p.root == plan.root for p in plans[:i]):
            problems.append(f"folders[{i}]: {plan.root} is listed twice; keep one entry")
            continue
        places = [("output", p) for p in sorted(outputs)]
        places += [("archive", plan.archive), ("failed", plan.failed)]
        for what, place in places:
            for j, other in enumerate(plans):
                if other.root == plan.root or not _watches(other, place):
                    continue
                problems.append(
                    f"folders[{i}]: its {what} folder {place} is inside folders[{j}] "
                    f"({other.root}), which would take its files; move it out of that "
                    "folder's tree"
                )
    return problems


def _plans(config: Config) -> list[FolderPlan]:
    """The plans, each outer folder excluding the folders nested in its tree."""
    plans = [
        plan_folder(section, {r for c in section.chain_names for r in output_roots(config, c)})
        for section in config.sections(FolderSection)
    ]
    for plan in plans:
        nested = {p.root for p in plans if p.root != plan.root and p.root.is_relative_to(plan.root)}
        plan.excluded = tuple(sorted({*plan.excluded, *nested}))
        plan.prompt_chains = frozenset(
            name
            for name in plan.section.chain_names
            if name in config.chains and steps_using_prompt(config.chains[name].steps)
        )
    return plans


def _watches(plan: FolderPlan, place: Path) -> bool:
    """Whether files put in the folder ``place`` would be taken by ``plan``."""
    if place == plan.root:
        return True
    if not plan.section.recursive or not place.is_relative_to(plan.root):
        return False
    return not any(place.is_relative_to(ex) for ex in plan.excluded)


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
    router = Router(tuple(section.routes), section.chain, section.case_sensitive)
    return FolderPlan(section, root, archive, failed, name_filter, inside, router)


def output_roots(config: Config, chain_name: str) -> set[Path]:
    """The folders a chain's sinks write into: every path-valued sink parameter."""
    roots: set[Path] = set()
    chain = config.chains.get(chain_name)
    for output in chain.outputs if chain else ():
        for value in dict(output.params).values():
            if isinstance(value, Path):
                roots.add(Path(os.path.realpath(value)))
    return roots
