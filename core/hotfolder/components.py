"""The three kinds of component a plugin provides: operations, resolvers and sinks.

Each is a class with a ``name`` (the word users write in a config), a ``Params`` model (what
they may write next to it, validated when the config loads) and one method that does the work.
Subclass, then hand the class to ``register`` in the matching hook::

    class Invert(hotfolder.Operation):
        name = "invert"

        def run(self, context, image):
            return image.with_image(ImageOps.invert(image.image.convert("RGB")))

    @hotfolder.hookimpl
    def hotfolder_register_operations(register):
        register(Invert)

``run``, ``resolve`` and ``write`` may be plain functions (they then run in a worker thread, so
Pillow work does not block the event loop) or coroutines (network work; they run on the loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from hotfolder import schema
from hotfolder.schema import ConfigPath, Params, PluginSettings, Section

if TYPE_CHECKING:
    from hotfolder.artifact import Artifact
    from hotfolder.imaging import ImagingSection
    from hotfolder.job import Job, Output, StepRecord

T = TypeVar("T")
S = TypeVar("S", bound=Section)
P = TypeVar("P", bound=PluginSettings)

__all__ = [
    "ConfigPath",
    "JobInput",
    "Operation",
    "Params",
    "ResolveContext",
    "Resolver",
    "RuntimeView",
    "Sink",
    "SinkContext",
    "StepContext",
]


class RuntimeView(Protocol):
    """What a component sees of the run it belongs to: a :class:`hotfolder.Runtime` (one
    ``process`` run or one daemon). Annotate with this type in components."""

    @property
    def limits(self) -> ImagingSection:
        """``[imaging]``: the limits every decoded image must meet."""
        ...

    @property
    def resolvers(self) -> Sequence[Resolver]:
        """The resolvers, highest priority first."""
        ...

    def section(self, cls: type[S]) -> S:
        """A config table, typed: ``runtime.section(VeniceSection)``."""
        ...

    def plugin_settings(self, cls: type[P]) -> P:
        """A plugin's own table, ``[plugins.NAME]``, typed (its defaults when left out)."""
        ...

    def service(self, key: str, factory: Callable[[], T]) -> T:
        """The run's one instance of a long-lived helper, made by ``factory`` on first use."""
        ...

    def operation(self, name: str) -> type[Operation]:
        """The operation class registered as ``name`` (to run another step inside one)."""
        ...

    async def resolve(self, ref: str, *, base_dir: Path | None = None) -> JobInput:
        """Resolve another reference with the first resolver that accepts it."""
        ...


class Component:
    """What operations, resolvers and sinks share: a name, a parameter model, the params."""

    #: The word users write in the config (``op = "resize"``, ``sink = "folder"``).
    name: ClassVar[str]
    #: The parameter model; the default takes no parameters. A component declares its own
    #: as a nested ``class Params(hotfolder.Params)`` and narrows ``params: Params`` with it.
    Params: ClassVar[type[schema.Params]] = schema.Params
    #: One line for ``hotfolder plugins`` and the docs.
    summary: ClassVar[str] = ""
    #: The validated parameters (an instance of ``Params``).
    params: schema.Params

    def __init__(self, params: schema.Params | None = None) -> None:
        self.params = params if params is not None else self.Params()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.params!r}>"


@dataclass
class StepContext:
    """What a running step may use besides its input image."""

    job: Job
    #: Position of this step in the chain, from 0.
    index: int
    runtime: RuntimeView
    #: This step's record for the sidecar: add ``request_ids``, ``cost_usd`` and ``notes``.
    record: StepRecord

    async def resolve(self, ref: str) -> Artifact:
        """Resolve another image (``with = [...]``), relative to the job's input folder."""
        job_input = await self.runtime.resolve(ref, base_dir=self.job.base_dir)
        return job_input.artifact


class Operation(Component):
    """One step of a chain: takes the current image, returns the next one."""

    #: True when the step calls a paid API: its result is checkpointed and it is shown as
    #: a paid call by ``--dry-run``.
    paid: ClassVar[bool] = False

    def estimate_usd(self, runtime: RuntimeView) -> float | None:
        """The expected cost of one run in US dollars, or None when it is free or unknown."""
        return None

    def run(self, context: StepContext, image: Artifact) -> Artifact | Awaitable[Artifact]:
        """Do the work and return the resulting artifact; raise a HotfolderError to fail."""
        raise NotImplementedError


@dataclass
class JobInput:
    """What a resolver makes of a reference: the image and what the job asks of it."""

    artifact: Artifact
    #: The reference as given (path, URL, ``data:...``), for sidecars and messages.
    source: str
    #: Folder that relative references in this job are resolved against.
    base_dir: Path | None = None
    #: A chain named by the input itself (a manifest), else the caller's chain is used.
    chain: str | None = None
    #: Per-step parameter overrides: ``{step_index: {param: value}}`` (from a manifest).
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: More images the job names (a manifest's ``images[1:]``), for multi-input steps.
    extra_refs: list[str] = field(default_factory=list)


@dataclass
class ResolveContext:
    """What a resolver may use."""

    runtime: RuntimeView
    base_dir: Path | None = None
    #: Where the input came from when ``ref`` is a copy of it elsewhere (the daemon reads a
    #: claimed file from ``processing/`` under a name with its job id). Its name is the
    #: artifact's name, which outputs are named after and messages say; a manifest takes its
    #: relative images from its folder. None: ``ref`` is where the input came from.
    origin: Path | None = None


class Resolver(Component):
    """Turns a reference into a :class:`JobInput`; config lives in ``[resolvers.NAME]``."""

    #: Resolvers are asked highest priority first.
    priority: ClassVar[int] = 0

    def accepts(self, ref: str) -> bool:
        """Whether this resolver handles ``ref``; must be cheap and must not do I/O."""
        raise NotImplementedError

    def resolve(self, ref: str, context: ResolveContext) -> JobInput | Awaitable[JobInput]:
        """Fetch or read ``ref``; raise InputError (or UnsafeInputError) when it cannot."""
        raise NotImplementedError


@dataclass
class SinkContext:
    """What a sink may use: the job, its step records and what earlier sinks wrote."""

    job: Job
    runtime: RuntimeView
    steps: list[StepRecord]
    #: Outputs written by the sinks before this one in the chain's ``outputs`` list.
    written: list[Output]
    #: SHA-256 of the job's input bytes.
    input_sha256: str


class Sink(Component):
    """Writes a job's final artifact somewhere and says what it wrote."""

    def write(
        self, context: SinkContext, artifact: Artifact
    ) -> list[Output] | Awaitable[list[Output]]:
        """Write ``artifact``; return one :class:`Output` per thing written; never leave a
        partial output behind (raise SinkError after cleaning up)."""
        raise NotImplementedError
