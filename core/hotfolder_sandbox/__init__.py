"""``hotfolder_sandbox``: a local stand-in for Venice's image API, faithful to its contract,
for tests and drills.

It serves ``/image/edit``, ``/image/multi-edit``, ``/image/upscale``,
``/image/background-remove``, ``/models`` and ``/billing/balance`` under ``/api/v1``, checks
requests as the real API does (see ``shared/venice/CONTRACT.md``), bills a simulated balance,
rate-limits and locks out per key, injects seeded faults, and answers with simulated images.
Every simulated image response carries the header ``X-Simulated: true``, which clients read;
the image itself is marked ``hotfolder-sandbox: simulated`` in its metadata, which people see.
Admin routes live under ``/_sandbox``; ``docs/sandbox.md`` describes them, the config and the
``hotfolder sandbox`` command.

It is its own import package and imports nothing from ``hotfolder``: any HTTP client can use
it. It fails with :class:`SandboxError` when it cannot listen or start.

::

    with start_sandbox(SandboxConfig(requests_per_minute=5)) as sandbox:
        httpx.post(f"{sandbox.base_url}/image/upscale", ...)
        sandbox.stats()
"""

from __future__ import annotations

from hotfolder_sandbox.app import SIMULATED_HEADER, SimulatedConnectionReset, create_app
from hotfolder_sandbox.config import SandboxConfig
from hotfolder_sandbox.errors import SandboxError
from hotfolder_sandbox.server import SandboxHandle, serve, start_sandbox

__all__ = [
    "SIMULATED_HEADER",
    "SandboxConfig",
    "SandboxError",
    "SandboxHandle",
    "SimulatedConnectionReset",
    "create_app",
    "serve",
    "start_sandbox",
]
