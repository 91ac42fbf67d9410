"""hotfolder: image drop-folder automation with pluggable operations, resolvers and sinks.

The public surface for plugin authors is this module: ``hookimpl`` to mark hook
implementations, the component base classes, :class:`Artifact`, and the error tree.
"""

from __future__ import annotations

from hotfolder.artifact import Artifact
from hotfolder.components import (
    ConfigPath,
    JobInput,
    Operation,
    Params,
    ResolveContext,
    Resolver,
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
from hotfolder.secrets import SecretRef

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
    "Params",
    "PluginError",
    "Rejected",
    "ResolveContext",
    "Resolver",
    "SecretRef",
    "Sink",
    "SinkContext",
    "SinkError",
    "StepContext",
    "StepRecord",
    "Unavailable",
    "UnsafeInputError",
    "VeniceError",
    "__version__",
    "hookimpl",
]
