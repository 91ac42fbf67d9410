"""hotfolder: image drop-folder automation with pluggable operations, resolvers and sinks.

This module is the public surface for plugin authors: ``hookimpl`` to mark hook
implementations, the component base classes and their contexts, :class:`Params`,
:class:`Section` and :class:`PluginSettings` for settings, :class:`Artifact`, the job records,
the error tree, and the helpers the built-in plugins use themselves. Besides it, these modules
are public (see docs/plugins.md): :mod:`hotfolder.naming` (safe output names),
:mod:`hotfolder.netsafe` (SSRF-safe fetching), :mod:`hotfolder.fsutil` (atomic writes),
:mod:`hotfolder.localfiles` (reading local files safely), :mod:`hotfolder.imaging` (the
decoding gate), :mod:`hotfolder.sidecar` (the record of how an output was made),
:mod:`hotfolder.venice` (the Venice client) and :mod:`hotfolder.testing`. Everything else is
private and may change in any release.
"""

from __future__ import annotations

from hotfolder.artifact import Artifact
from hotfolder.components import (
    JobInput,
    Operation,
    ResolveContext,
    Resolver,
    RuntimeView,
    Sink,
    SinkContext,
    StepContext,
)
from hotfolder.errors import (
    AuthError,
    BalanceError,
    BudgetExceeded,
    ConfigError,
    HotfolderError,
    InputError,
    OperationError,
    PluginError,
    Rejected,
    SinkError,
    Unavailable,
    UnsafeInputError,
    VeniceError,
)
from hotfolder.hookspecs import hookimpl
from hotfolder.job import Job, JobResult, Output, StepRecord
from hotfolder.naming import OutputName, render_name
from hotfolder.pauses import Pausable, Pause
from hotfolder.registry import Register, suggest
from hotfolder.runtime import Runtime, call_component
from hotfolder.schema import ConfigPath, Params, PluginSettings, Section
from hotfolder.secrets import SecretRef
from hotfolder.sidecar import sidecar_record
from hotfolder.waits import waiting

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "AuthError",
    "BalanceError",
    "BudgetExceeded",
    "ConfigError",
    "ConfigPath",
    "HotfolderError",
    "InputError",
    "Job",
    "JobInput",
    "JobResult",
    "Operation",
    "OperationError",
    "Output",
    "OutputName",
    "Params",
    "Pausable",
    "Pause",
    "PluginError",
    "PluginSettings",
    "Register",
    "Rejected",
    "ResolveContext",
    "Resolver",
    "Runtime",
    "RuntimeView",
    "SecretRef",
    "Section",
    "Sink",
    "SinkContext",
    "SinkError",
    "StepContext",
    "StepRecord",
    "Unavailable",
    "UnsafeInputError",
    "VeniceError",
    "__version__",
    "call_component",
    "hookimpl",
    "render_name",
    "sidecar_record",
    "suggest",
    "waiting",
]
