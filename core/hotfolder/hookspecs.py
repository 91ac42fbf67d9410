"""The hooks a hotfolder plugin can implement; each docstring is the hook's contract.

A plugin is a module (or any object) with functions marked ``@hotfolder.hookimpl`` whose names
match the specs below. It may accept fewer arguments than a spec names. Built-in plugins are
registered the same way as third-party ones (see :mod:`hotfolder.plugins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from hotfolder.errors import HotfolderError
    from hotfolder.job import Job, JobResult
    from hotfolder.registry import Register

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
