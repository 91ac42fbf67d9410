"""``hotfolder run --sandbox``: one local Venice sandbox for the daemon's whole life.

The sandbox is started once; every runtime the daemon builds (at start and at each config
reload) gets a Venice client pointed at it.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from hotfolder.runtime import Runtime


def start() -> Any:
    """Start the sandbox on a free loopback port; returns its handle (``.stop()`` ends it)."""
    from hotfolder.venice.sandbox import SandboxConfig, start_sandbox

    handle = start_sandbox(SandboxConfig())
    logger.warning(
        "--sandbox: Venice calls go to the local sandbox at {}; results are simulated",
        handle.base_url,
    )
    return handle


def attach(runtime: Runtime, handle: Any) -> None:
    """Point ``runtime``'s Venice client at the sandbox."""
    from hotfolder.venice import SERVICE, VeniceClient

    client = VeniceClient(
        base_url=handle.base_url, api_key="sandbox-key", settings=runtime.config.venice
    )
    runtime.set_service(SERVICE, client)
