"""Helpers for testing a hotfolder plugin in a few lines; plain functions, no fixtures needed.

::

    from hotfolder.testing import hot_folder, run_chain

    import my_plugin

    def test_blur(tmp_path):
        folder = hot_folder(tmp_path)
        photo = folder.drop("photo.jpg")                  # a generated 64x48 JPEG
        result = run_chain(photo, [{"op": "my.blur", "radius": 3}], plugins=[my_plugin])
        assert result.outputs[0].location.endswith("photo.jpg")

* :func:`plugin_manager` and :func:`registry_for`: a fresh plugin manager (or the registry it
  builds) with the built-ins and *your* plugins, without the entry points installed in the
  environment, so a test sees exactly what it names.
* :func:`make_runtime`: a :class:`~hotfolder.runtime.Runtime` from a config dict, TOML text or
  file, for calling a component by hand.
* :func:`hot_folder`: a temporary hot folder (``inbox/``, ``outbox/``, a config writer);
  :func:`make_image` makes test images.
* :func:`sandbox`: the local Venice sandbox in a thread, with faults; pass it to
  :func:`make_runtime` or :func:`run_chain` and Venice steps go there.
* :func:`run_chain`: one file through a chain with the real engine; returns the
  :class:`~hotfolder.job.JobResult` (``.outputs``, ``.steps``) or raises the job's error.
"""

from __future__ import annotations

import asyncio
import io
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
import tomli_w
from PIL import Image

from hotfolder import hookspecs
from hotfolder.config import validate_config
from hotfolder.engine import Engine
from hotfolder.fsutil import atomic_write
from hotfolder.job import Job, JobResult
from hotfolder.plugins import DEFAULT_PLUGINS, build_registry, make_plugin_manager
from hotfolder.registry import Registry
from hotfolder.runtime import Runtime

if TYPE_CHECKING:
    from hotfolder_sandbox import SandboxHandle

__all__ = [
    "CHAIN",
    "HotFolder",
    "hot_folder",
    "make_image",
    "make_runtime",
    "plugin_manager",
    "registry_for",
    "run_chain",
    "sandbox",
]

#: The chain name :func:`run_chain` and :meth:`HotFolder.write_config` give a list of steps.
CHAIN = "test"

ConfigSource = Mapping[str, Any] | str | Path | None


def plugin_manager(
    *plugins: object, builtins: bool = True, entrypoints: bool = False
) -> pluggy.PluginManager:
    """A new plugin manager with the built-ins (unless ``builtins=False``) and ``plugins``.

    Each plugin is a module or an object with ``@hotfolder.hookimpl`` methods, registered
    under its ``__name__`` (a module's dotted name, or a class attribute ``__name__``), else
    its class name. Installed entry-point plugins are left out unless ``entrypoints=True``.
    """
    extra = [(plugin, _plugin_name(plugin)) for plugin in plugins]
    disabled = () if builtins else DEFAULT_PLUGINS
    return make_plugin_manager(disabled, load_entrypoints=entrypoints, extra=extra)


def registry_for(*plugins: object, builtins: bool = True) -> Registry:
    """The operations, resolvers and sinks that the built-ins and ``plugins`` register."""
    return build_registry(plugin_manager(*plugins, builtins=builtins))


def make_runtime(
    config: ConfigSource = None,
    *plugins: object,
    builtins: bool = True,
    base_dir: Path | None = None,
    sandbox: SandboxHandle | None = None,
) -> Runtime:
    """A runtime over ``config`` (a dict, TOML text, a file, or None for an empty config).

    Relative paths in a dict or TOML text are taken from ``base_dir`` (default: the working
    folder). With ``sandbox``, Venice operations call that sandbox. Close the runtime with
    ``await runtime.aclose()`` when a test made network clients through it.
    """
    path = config if isinstance(config, Path) else (base_dir or Path.cwd()) / "hotfolder.toml"
    return _runtime(_raw(config), path, plugins, builtins, sandbox)


def run_chain(
    file: Path | str,
    chain: Sequence[Mapping[str, Any]] | str = (),
    *,
    outputs: Sequence[Mapping[str, Any]] | None = None,
    out_dir: Path | None = None,
    config: ConfigSource = None,
    plugins: Sequence[object] = (),
    builtins: bool = True,
    sandbox: SandboxHandle | None = None,
) -> JobResult:
    """Run ``file`` through a chain with the real engine and return the job's result.

    ``chain`` is a list of steps (``[{"op": "resize", "width": 100}]``), run as the chain
    :data:`CHAIN` with ``outputs`` (default: a ``folder`` sink into ``out_dir``, which defaults
    to ``out/`` next to ``file``); or the name of a chain in ``config``. ``config`` adds other
    sections (``[imaging]``, ``[resolvers.NAME]``...); relative paths in a dict or TOML text are
    taken from ``file``'s folder. A failed job raises its
    :class:`~hotfolder.errors.HotfolderError`, as it would in the daemon.

    It calls :func:`asyncio.run`; from async code, use ``await Engine(runtime).run(job)``.
    """
    path = Path(file).absolute()
    raw = _raw(config)
    if not isinstance(chain, str):
        if outputs is None:
            outputs = [{"sink": "folder", "path": str(out_dir or path.parent / "out")}]
        raw.setdefault("chains", {})[CHAIN] = {"steps": list(chain), "outputs": list(outputs)}
    name = chain if isinstance(chain, str) else CHAIN
    config_path = config if isinstance(config, Path) else path.parent / "hotfolder.toml"
    runtime = _runtime(raw, config_path, plugins, builtins, sandbox)
    job = Job(source=str(path), chain=name, base_dir=path.parent)

    async def run() -> JobResult:
        try:
            return await Engine(runtime).run(job)
        finally:
            await runtime.aclose()

    return asyncio.run(run())


@dataclass(frozen=True)
class HotFolder:
    """A temporary hot folder: ``root/inbox`` to drop files in, ``root/outbox`` for results."""

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def config_path(self) -> Path:
        return self.root / "hotfolder.toml"

    def drop(self, name: str, data: bytes | None = None) -> Path:
        """Put a complete file into the inbox at once (written aside, then renamed in).

        Without ``data``, a 64x48 image in the format the name's extension says.
        """
        if data is None:
            data = make_image(format=_format_for(name))
        target = self.inbox / name
        atomic_write(target, data)
        return target

    def outputs(self, pattern: str = "*") -> list[Path]:
        """The files in the outbox (and below it) that match ``pattern``, sorted."""
        return sorted(p for p in self.outbox.rglob(pattern) if p.is_file())

    def write_config(
        self,
        steps: Sequence[Mapping[str, Any]] = (),
        outputs: Sequence[Mapping[str, Any]] | None = None,
        *,
        folder: Mapping[str, Any] | None = None,
        **sections: Any,
    ) -> Path:
        """Write ``root/hotfolder.toml``: the inbox watched with chain :data:`CHAIN`.

        ``outputs`` default to a ``folder`` sink into the outbox; ``folder`` adds keys to the
        inbox's ``[[folders]]`` entry (``{"quiet_seconds": 0.2}``); ``sections`` add top-level
        tables (``daemon={"rescan_seconds": 1}``). Returns the file's path, for ``--config``.
        """
        if outputs is None:
            outputs = [{"sink": "folder", "path": "outbox"}]
        raw: dict[str, Any] = {
            "folders": [{"path": "inbox", "chain": CHAIN, **(folder or {})}],
            "chains": {CHAIN: {"steps": list(steps), "outputs": list(outputs)}},
            **sections,
        }
        self.config_path.write_text(tomli_w.dumps(raw))
        return self.config_path


def hot_folder(root: Path) -> HotFolder:
    """Create ``inbox/`` and ``outbox/`` under ``root`` (pytest's ``tmp_path``)."""
    folder = HotFolder(Path(root))
    folder.inbox.mkdir(parents=True, exist_ok=True)
    folder.outbox.mkdir(parents=True, exist_ok=True)
    return folder


def make_image(
    size: tuple[int, int] = (64, 48),
    color: tuple[int, int, int] = (200, 120, 40),
    format: str = "PNG",
) -> bytes:
    """The encoded bytes of a plain image with a darker square in its top left corner (so a
    flip or a turn shows), in ``format`` (``"PNG"``, ``"JPEG"``, ``"WEBP"``...)."""
    image = Image.new("RGB", size, color)
    image.paste((20, 20, 20), (0, 0, max(1, size[0] // 4), max(1, size[1] // 4)))
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


@contextmanager
def sandbox(
    faults: Mapping[int | str, float] | None = None, *, seed: int = 0, **settings: Any
) -> Iterator[SandboxHandle]:
    """The local Venice sandbox, serving on a free loopback port until the block ends.

    ``faults`` maps an HTTP status (or ``"reset"`` for a dropped connection) to the share of
    paid requests that get it: ``{503: 0.5, "reset": 0.1}``; draws are seeded, so a test sees
    the same faults every run. ``settings`` are other
    :class:`~hotfolder_sandbox.SandboxConfig` fields (``balance_usd=0``). Change
    either while it runs with ``handle.configure(fault_rates={...})``; count requests with
    ``handle.stats()``.
    """
    from hotfolder_sandbox import SandboxConfig, start_sandbox

    rates = {int(k): v for k, v in (faults or {}).items() if k != "reset"}
    reset_rate = (faults or {}).get("reset", 0.0)
    config = SandboxConfig(fault_rates=rates, reset_rate=reset_rate, seed=seed, **settings)
    with start_sandbox(config) as handle:
        yield handle


def _runtime(
    raw: dict[str, Any],
    path: Path,
    plugins: Sequence[object],
    builtins: bool,
    sandbox: SandboxHandle | None,
) -> Runtime:
    pm = plugin_manager(*plugins, builtins=builtins)
    registry = build_registry(pm)
    runtime = Runtime(validate_config(raw, registry, path=path), pm, registry)
    if sandbox is not None:
        from hotfolder.cli.local_sandbox import attach_client

        attach_client(runtime, sandbox.base_url)
    return runtime


def _plugin_name(plugin: object) -> str:
    """The name hotfolder would give ``plugin``: an installed module goes by its entry point's
    name (so its ``[plugins.NAME]`` is the one users write), anything else by ``__name__``."""
    name = getattr(plugin, "__name__", None)
    if not isinstance(name, str):
        return type(plugin).__name__
    from importlib.metadata import entry_points

    installed = entry_points(group=hookspecs.NAME)
    return next((ep.name for ep in installed if ep.value == name), name)


def _raw(config: ConfigSource) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, Path):
        with config.open("rb") as f:
            return tomllib.load(f)
    if isinstance(config, str):
        return tomllib.loads(config)
    copied: dict[str, Any] = _copy(config)
    return copied


def _copy(value: Any) -> Any:
    """A deep copy of plain config data, so that a caller's dict is never changed."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _format_for(name: str) -> str:
    Image.init()
    suffix = Path(name).suffix.lower()
    try:
        return Image.registered_extensions()[suffix]
    except KeyError:
        msg = f"cannot tell an image format from {name!r}; give data= or a name like 'x.png'"
        raise ValueError(msg) from None
