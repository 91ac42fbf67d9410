"""``--sandbox``: the one place that starts the local Venice sandbox and hands its client to a
runtime. Nothing below the command line knows a sandbox exists: a runtime simply finds a
Venice client already provided.

::

    with LocalSandbox(settings) as sandbox:
        runtime = sandbox.attach(state.runtime())
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING, Any

from loguru import logger

from hotfolder.errors import OperationError

if TYPE_CHECKING:
    from hotfolder.runtime import Runtime
    from hotfolder.venice import VeniceClient, VeniceSection

#: The key the client sends to a sandbox (which accepts any key unless told otherwise).
SANDBOX_KEY = "sandbox-key"


class LocalSandbox:
    """A sandbox serving on a free loopback port until :meth:`stop`; it allows the account's
    ``requests_per_minute``, as the account it stands in for would."""

    def __init__(self, settings: VeniceSection) -> None:
        from hotfolder_sandbox import SandboxConfig, SandboxError, start_sandbox

        try:
            self.handle: Any = start_sandbox(
                SandboxConfig(requests_per_minute=settings.requests_per_minute)
            )
        except SandboxError as exc:
            msg = f"--sandbox: {exc.message}"
            raise OperationError(msg, hint=exc.hint) from exc
        logger.warning(
            "--sandbox: Venice calls go to the local sandbox at {}; results are simulated",
            self.handle.base_url,
        )

    @property
    def base_url(self) -> str:
        return str(self.handle.base_url)

    def client(self, settings: VeniceSection) -> VeniceClient:
        """A client for this sandbox with ``[venice]``'s other settings; nothing it learns
        (model lists, spend) is written to the cache, since each sandbox is new."""
        return sandbox_client(self.base_url, settings)

    def attach(self, runtime: Runtime) -> Runtime:
        """``runtime`` with its Venice client pointed at this sandbox."""
        return attach_client(runtime, self.base_url)

    def stop(self) -> None:
        self.handle.stop()

    def __enter__(self) -> LocalSandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def sandbox_if(
    enabled: bool, settings: VeniceSection
) -> AbstractContextManager[LocalSandbox | None]:
    """A :class:`LocalSandbox` when ``--sandbox`` was given (stopped when the block ends),
    else None: ``with sandbox_if(sandbox, settings) as local: ...``."""
    return LocalSandbox(settings) if enabled else nullcontext()


def sandbox_client(base_url: str, settings: VeniceSection) -> VeniceClient:
    """A Venice client for the sandbox at ``base_url``, keeping what it learns in memory."""
    from hotfolder.venice import VeniceClient

    return VeniceClient(base_url=base_url, api_key=SANDBOX_KEY, settings=settings, persist=False)


def attach_client(runtime: Runtime, base_url: str) -> Runtime:
    """Provide ``runtime`` with a Venice client for the sandbox at ``base_url``."""
    from hotfolder.venice import SERVICE, VeniceSection

    runtime.set_service(SERVICE, sandbox_client(base_url, runtime.section(VeniceSection)))
    return runtime
