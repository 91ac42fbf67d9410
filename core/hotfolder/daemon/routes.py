"""Routes: which chain a file of a watched folder goes through, chosen by its path.

::

    [[folders]]
    path = "inbox"
    recursive = true
    chain = "web"                                   # the fallback; without it: ignored
    routes = [
      { match = "products/**", chain = "cutout" },
      { match = "*_bg.png", chain = "bg" },
    ]

The first route whose ``match`` matches the file's path relative to the folder
(``/``-separated) picks its chain; a file no route matches goes through the folder's ``chain``,
or, when the folder has none, is ignored with the reason "matches no route". A ``match`` is a
glob with the rules of ``.gitignore`` (through pathspec): without a ``/`` it matches the name
at any depth (``*_bg.png``); with one it matches from the folder's top (``products/**``:
everything under ``products``; ``products/*.jpg``: that folder only); ``**`` spans folders. The
folder's ``case_sensitive`` applies. Unknown chain names are config errors (the loader checks
``routes[N].chain`` like ``chain``); a route that can never be reached is a warning at load.
pathspec is imported by the first route compiled, not by a config without routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from hotfolder.schema import Params

if TYPE_CHECKING:
    import pathspec

#: Globs that match every file, at any depth; ``/*`` matches every file of a folder that is
#: not recursive.
_CATCH_ALL = frozenset({"*", "**", "**/*", "**/**", "/**", "/**/*"})


class Route(Params):
    """One entry of ``[[folders]] routes``: files whose path matches ``match`` go through
    ``chain``."""

    match: str = Field(min_length=1)
    chain: str = Field(min_length=1)

    @field_validator("match")
    @classmethod
    def _a_glob_that_takes_files(cls, value: str) -> str:
        if value.startswith("!"):
            msg = f"match {value!r}: a route cannot exclude ('!'); put a route before it instead"
            raise ValueError(msg)
        if not _escapes_only(value):
            msg = f"match {value!r}: use '/' between folders, not '\\'"
            raise ValueError(msg)
        spec = _spec(value, case_sensitive=True)
        if not any(p.include for p in spec.patterns):
            msg = (
                f"match {value!r} is not a glob that matches files (a '#' comment, a lone '/' "
                'or an unclosed \'[\'?); write e.g. "products/**" or "*_bg.png"'
            )
            raise ValueError(msg)
        return value


def _escapes_only(value: str) -> bool:
    """Whether every backslash escapes a glob character (``\\*``, ``\\#``, ``\\[``)."""
    i = 0
    while i < len(value):
        if value[i] == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "*?[]#!\\ ":
                return False
            i += 2
            continue
        i += 1
    return True


def _spec(glob: str, *, case_sensitive: bool) -> pathspec.GitIgnoreSpec:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines([glob if case_sensitive else glob.lower()])


@dataclass(frozen=True)
class Router:
    """A folder's routes, compiled: :meth:`chain_for` picks a file's chain."""

    routes: tuple[Route, ...] = ()
    fallback: str | None = None
    case_sensitive: bool = False
    _specs: tuple[pathspec.GitIgnoreSpec, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        specs = tuple(_spec(r.match, case_sensitive=self.case_sensitive) for r in self.routes)
        object.__setattr__(self, "_specs", specs)

    def route_for(self, rel: str) -> int | None:
        """The index of the first route that matches ``rel`` (relative, ``/``-separated)."""
        path = rel if self.case_sensitive else rel.lower()
        return next((i for i, spec in enumerate(self._specs) if spec.match_file(path)), None)

    def chain_for(self, rel: str) -> str | None:
        """The chain of the file at ``rel``: the first matching route's, else the fallback;
        None when neither takes it."""
        index = self.route_for(rel)
        return self.routes[index].chain if index is not None else self.fallback


def _norm(glob: str, case_sensitive: bool) -> str:
    return glob if case_sensitive else glob.lower()


def needs_subfolder(glob: str) -> bool:
    """Whether ``glob`` can match only files inside a subfolder of the folder."""
    rest = glob.lstrip("/")
    while rest.startswith("**/"):
        rest = rest[3:]
    return "/" in rest


def unreachable_routes(
    routes: Sequence[Route],
    *,
    fallback: str | None = None,
    recursive: bool = False,
    case_sensitive: bool = False,
) -> list[str]:
    """Why some routes (or the fallback chain) can never take a file, one line each: a route
    after one that takes every file, a route with the same glob as an earlier one, a route
    for subfolders in a folder that is not recursive."""
    warnings: list[str] = []
    catch_all = set(_CATCH_ALL) if recursive else {*_CATCH_ALL, "/*"}
    seen: dict[str, int] = {}
    taken_by: int | None = None
    for j, route in enumerate(routes):
        glob = _norm(route.match.strip(), case_sensitive)
        where = f"routes[{j}] (match = {route.match!r})"
        if taken_by is not None:
            earlier = routes[taken_by].match
            warnings.append(
                f"{where} is never reached: routes[{taken_by}] (match = {earlier!r}) takes "
                "every file first; move it before that route"
            )
        elif glob in seen:
            warnings.append(
                f"{where} is never reached: routes[{seen[glob]}] has the same match; remove one"
            )
        elif not recursive and needs_subfolder(glob):
            warnings.append(
                f"{where} is never reached: it matches files in subfolders only and the folder "
                "is not recursive; set recursive = true"
            )
        seen.setdefault(glob, j)
        if taken_by is None and glob in catch_all:
            taken_by = j
    if taken_by is not None and fallback is not None:
        warnings.append(
            f"chain {fallback!r} is never used: routes[{taken_by}] (match = "
            f"{routes[taken_by].match!r}) takes every file; remove one of them"
        )
    return warnings
