"""The hooks a hotfolder plugin can implement; each docstring is the hook's contract.

A plugin is a module (or any object) with functions marked ``@hotfolder.hookimpl`` whose names
match the specs below. It may accept fewer arguments than a spec names. Built-in plugins are
registered the same way as third-party ones (see :mod:`hotfolder.plugins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    import click

    from hotfolder.components import RuntimeView
    from hotfolder.errors import HotfolderError
    from hotfolder.job import Job, JobResult
    from hotfolder.pauses import Pause
    from hotfolder.registry import Register
    from hotfolder.schema import PluginSettings

NAME = "hotfolder"

hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)


@hookspec
def hotfolder_register_operations(register: Register) -> None:
    """Add operations (image steps) by calling ``register(OperationClass)`` once for each.

    Called once per plugin manager, before any config is validated. An operation class names
    itself (``name = "resize"``), declares its parameters as a pydantic model (``Params``) and
    implements ``run(context, image)``; see :class:`hotfolder.Operation`. A name already taken
    by another plugin raises :class:`~hotfolder.errors.PluginError` naming both plugins.
    """


@hookspec
def hotfolder_register_resolvers(register: Register) -> None:
    """Add input resolvers by calling ``register(ResolverClass)`` once for each.

    A resolver turns a reference (a path, a URL, a ``data:`` URI, a manifest) into a job input;
    see :class:`hotfolder.Resolver`. Resolvers are asked in order of ``priority`` (highest
    first); the first whose ``accepts(ref)`` is true resolves the reference.
    """


@hookspec
def hotfolder_register_sinks(register: Register) -> None:
    """Add output sinks by calling ``register(SinkClass)`` once for each.

    A sink writes a job's result somewhere (a folder, a sidecar file, a webhook, a bucket);
    see :class:`hotfolder.Sink`. A sink must not leave a partial output behind when it fails.
    """


@hookspec
def hotfolder_register_sections(register: Register) -> None:
    """Add top-level config tables by calling ``register(SectionClass)`` once for each.

    A section is a :class:`hotfolder.Section` model whose ``table`` class attribute names its
    key (``table = "venice"`` validates ``[venice]``; ``array = True`` makes it an array of
    tables, like ``[[folders]]``). The file's table is validated against it when the config
    loads, with the same key paths and "did you mean" as the rest, and the part of hotfolder
    that owns it reads it typed with ``runtime.section(SectionClass)``. A table name already
    taken raises :class:`~hotfolder.errors.PluginError` naming both plugins.
    """


@hookspec
def hotfolder_plugin_settings() -> type[PluginSettings]:
    """Return the model of this plugin's own config table, ``[plugins.NAME]``.

    NAME is the plugin's name (its entry point's). The model is a
    :class:`hotfolder.PluginSettings` whose every field has a default. The file's table is
    validated against it when the config loads, with the same key paths and "did you mean"
    as the rest; a ``[plugins.NAME]`` that no loaded plugin declared is a config error (but a
    disabled plugin's is ignored). The plugin reads it typed with
    ``runtime.plugin_settings(Model)``, in a component or in ``hotfolder_daemon_started``.
    """
    raise NotImplementedError  # a spec: pluggy never calls it, plugins implement it


@hookspec
def hotfolder_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``hotfolder`` command line with ``@cli.command()``.

    Called once when the CLI starts, built-in command plugins first. A command whose name is
    taken (by a built-in or an earlier plugin) is not added; a warning names it. Every command
    added also accepts ``--config``, ``--log-level`` and ``--log-format`` after its name.
    """


@hookspec
def hotfolder_job_started(job: Job) -> None:
    """Called when a job starts running its chain.

    For notifications, metrics and audit. An exception raised here is logged with the
    plugin's name and does not affect the job.
    """


@hookspec
def hotfolder_job_succeeded(job: Job, result: JobResult) -> None:
    """Called after every sink of a job has written its outputs.

    ``result.outputs`` lists what was written, ``result.steps`` each step's record (timings,
    cost, request ids). An exception raised here is logged and does not affect the job.
    """


@hookspec
def hotfolder_job_failed(job: Job, error: HotfolderError) -> None:
    """Called when a job fails for good; ``error`` says why and what to do next.

    Not called for a job that is only paused (Venice auth, balance or budget) and will run
    again. An exception raised here is logged and does not affect the job.
    """


@hookspec
def hotfolder_daemon_started(runtime: RuntimeView) -> None:
    """Called once ``hotfolder run`` watches its folders, before its first job.

    Start here what should live as long as the daemon (a metrics server, a notification
    thread), reading settings with ``runtime.plugin_settings(Model)``; no other command calls
    it. An exception raised here is logged and the daemon goes on.
    """


@hookspec
def hotfolder_daemon_reloaded(runtime: RuntimeView) -> None:
    """Called after ``SIGHUP`` reloaded the daemon's config, with the new config's runtime.

    Apply changed settings here. Not called when the new config did not validate (the
    running one is kept). An exception raised here is logged and the daemon goes on.
    """


@hookspec
def hotfolder_daemon_stopped() -> None:
    """Called when ``hotfolder run`` has stopped: its jobs ended or were left queued.

    Stop and flush here what ``hotfolder_daemon_started`` started. Called only if that hook
    was. An exception raised here is logged.
    """


@hookspec
def hotfolder_paused(pause: Pause) -> None:
    """Called when the daemon's paid work pauses: ``pause.kind`` is ``auth`` (the key is
    refused), ``balance`` (the account cannot pay) or ``budget`` (``max_usd_per_day`` spent).

    ``pause.reason`` and ``pause.hint`` say why and what fixes it. Called once per pause, not
    per job it holds back; a different pause that follows one is announced too. An exception
    raised here is logged and does not affect the work.
    """


@hookspec
def hotfolder_resumed(pause: Pause) -> None:
    """Called when paid work goes on again after ``pause`` (a probe passed, or a reloaded
    config brought a new client); the paused jobs are queued again.

    An exception raised here is logged and does not affect the work.
    """


@hookspec
def hotfolder_folder_unreachable(folder: Path, reason: str) -> None:
    """Called when a watched folder is not there (moved away, deleted, not mounted), at
    start or later; its files wait, and it is watched again once a folder is back at its path.

    Called once until the folder is back. An exception raised here is logged.
    """


@hookspec
def hotfolder_folder_reachable(folder: Path) -> None:
    """Called when a folder reported by ``hotfolder_folder_unreachable`` is back and watched.

    An exception raised here is logged.
    """
