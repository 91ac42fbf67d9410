"""A local stand-in for Venice's image API, faithful to its contract, for tests and drills.

It serves ``/image/edit``, ``/image/multi-edit``, ``/image/upscale``,
``/image/background-remove``, ``/models`` and ``/billing/balance`` under ``/api/v1``, checks
requests as the real API does (see ``shared/venice/CONTRACT.md``), bills a simulated balance,
rate-limits and locks out per key, injects seeded faults, and answers with simulated images
marked ``hotfolder-sandbox: simulated``. Admin routes live under ``/_sandbox``.

::

    with start_sandbox(SandboxConfig(requests_per_minute=5)) as sandbox:
        httpx.post(f"{sandbox.base_url}/image/upscale", ...)
        sandbox.stats()
"""

from __future__ import annotations

from hotfolder.venice.sandbox.app import SimulatedConnectionReset, create_app
from hotfolder.venice.sandbox.config import SandboxConfig
from hotfolder.venice.sandbox.server import SandboxHandle, serve, start_sandbox

__all__ = [
    "SandboxConfig",
    "SandboxHandle",
    "SimulatedConnectionReset",
    "create_app",
    "serve",
    "start_sandbox",
]
