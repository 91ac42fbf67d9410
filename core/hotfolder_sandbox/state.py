"""Everything the sandbox remembers between requests, in one object per app.

The config is replaced, never mutated: ``configure`` validates the merged fields and swaps
it in, so a request sees one consistent config from start to end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from hotfolder_sandbox.billing import Ledger
from hotfolder_sandbox.catalog import SandboxCatalog, load_catalog
from hotfolder_sandbox.config import SandboxConfig, renamed_fields
from hotfolder_sandbox.faults import FaultPlan
from hotfolder_sandbox.limits import FailureLockout, KeyRateLimiter
from hotfolder_sandbox.stats import Stats

__all__ = ["SandboxState"]


class SandboxState:
    """Config, model list, balance, rate limit, lockout, fault draws and counters."""

    def __init__(self, config: SandboxConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.catalog: SandboxCatalog = load_catalog()
        self.ledger = Ledger(config.balance_usd, config.balance_diem)
        self.limiter = KeyRateLimiter(clock)
        self.lockout = FailureLockout(clock)
        self.faults = FaultPlan(config.seed)
        self.stats = Stats()

    def configure(self, changes: Mapping[str, Any]) -> SandboxConfig:
        """Apply some config fields; raises pydantic's ``ValidationError`` on bad values.

        ``seed`` reseeds the fault draws; ``balance_usd`` / ``balance_diem`` set the balance.
        """
        changes = renamed_fields(changes)
        merged = {**self.config.model_dump(), **changes}
        config = SandboxConfig.model_validate(merged)
        if "seed" in changes:
            self.faults.reseed(config.seed)
        if "balance_usd" in changes or "balance_diem" in changes:
            self.ledger.set(
                usd=config.balance_usd if "balance_usd" in changes else None,
                diem=config.balance_diem if "balance_diem" in changes else None,
            )
        self.config = config
        return config

    def reset(self) -> None:
        """Start over: counters, rate limits, lockouts, fault draws and the configured balance."""
        config = self.config
        self.stats.reset()
        self.limiter.reset()
        self.lockout.reset()
        self.faults.reseed(config.seed)
        self.ledger = Ledger(config.balance_usd, config.balance_diem)
