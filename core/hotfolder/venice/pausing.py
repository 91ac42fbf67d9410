"""The Venice client's pause: entered on a refused key, an empty balance or a spent budget.

==========  ============================  =============================  ====================
kind        entered on                    holds back                     lifted when
==========  ============================  =============================  ====================
``auth``    401 or 403, on any request    every request                  a probe gets a 200
``balance`` 402 on an image request       image requests                 a probe's balance
                                                                         can pay the call
``budget``  ``max_usd_per_day`` reached   image requests                 the next local day
==========  ============================  =============================  ====================

A held-back request raises the pause's error at once, without being sent and without waiting
(see :mod:`hotfolder.pauses`). :meth:`VenicePause.probe` is the only way out: for ``auth`` and
``balance`` one ``GET /billing/balance`` that passes the pause, for ``budget`` a look at the
ledger. A key that works again on an empty account turns an ``auth`` pause into ``balance``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from loguru import logger

from hotfolder.errors import AuthError, BalanceError, BudgetExceeded, HotfolderError, VeniceError
from hotfolder.pauses import Pause, iso_time, next_local_midnight

__all__ = ["SERVICE_NAME", "VenicePause", "can_pay"]

#: The runtime service key of the client, and the ``service`` of its pauses.
SERVICE_NAME = "venice"

_KINDS: dict[type[VeniceError], str] = {
    AuthError: "auth",
    BalanceError: "balance",
    BudgetExceeded: "budget",
}


class VenicePause:
    """The pause of one client. ``balance`` sends the probe request (past the pause);
    ``budget_fits(usd)`` says whether today's budget can take ``usd`` more."""

    def __init__(
        self,
        *,
        balance: Callable[[], Awaitable[Mapping[str, Any]]],
        budget_fits: Callable[[float], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._balance = balance
        self._budget_fits = budget_fits
        self._clock = clock
        self.current: Pause | None = None
        self._error: VeniceError | None = None
        self._needed_usd = 0.0
        #: How many times work was paused, for logs and tests.
        self.entered = 0

    def enter(
        self, error: VeniceError, *, needed_usd: float | None = None, lifts_by_probe: bool = True
    ) -> None:
        """Pause for ``error`` (an AuthError, BalanceError or BudgetExceeded);
        ``lifts_by_probe=False`` when only a new client can end it (no key was given)."""
        kind = _KINDS[type(error)]
        self._needed_usd = max(self._needed_usd, needed_usd or 0.0)
        if self.current is not None and self.current.kind == kind:
            return  # the requests in flight when it began say the same
        now = self._clock()
        not_before = next_local_midnight(now) if kind == "budget" else None
        since = self.current.since if self.current is not None else now
        self.current = Pause(
            SERVICE_NAME,
            kind,
            error.message,
            error.hint,
            since,
            not_before=not_before,
            lifts_by_probe=lifts_by_probe,
        )
        self._error = error
        self.entered += 1
        if not lifts_by_probe:
            until = "the config is reloaded with a key, or hotfolder restarted with one"
        elif kind == "budget":
            until = "the next day begins"
        else:
            until = "a check of the key and balance passes"
        logger.error(
            "Venice work paused ({}): {}; nothing is failed, work goes on once {}",
            kind,
            error,
            until,
        )

    def check(self, *, image: bool) -> None:
        """Raise the pause's error if it holds back this kind of request."""
        if self.current is None or self._error is None:
            return
        if self.current.kind == "auth" or image:
            error = self._error
            raise type(error)(
                error.message,
                hint=error.hint,
                status=error.status,
                code=error.code,
                request_id=error.request_id,
            )

    async def probe(self) -> bool:
        """One check whether work can go on; lifts the pause and returns True if it can."""
        pause = self.current
        if pause is None:
            return True
        if pause.kind == "budget":
            if not self._budget_fits(self._needed_usd):
                return False
            return self._lift("the daily budget has room again")
        try:
            balance = await self._balance()
        except (AuthError, BalanceError):
            return False  # the failed probe re-entered the pause it met
        except HotfolderError as exc:
            logger.warning("checking the Venice key and balance failed: {}", exc)
            return False
        if can_pay(balance, self._needed_usd):
            return self._lift("the key and the balance are good again")
        if pause.kind == "auth":
            message = "the key works again, but the account cannot pay for image requests"
            self.enter(
                BalanceError(message, hint="top up the Venice balance", status=402),
                needed_usd=self._needed_usd,
            )
        return False

    def _lift(self, why: str) -> bool:
        assert self.current is not None
        logger.info("Venice work resumes: {} (paused since {})", why, iso_time(self.current.since))
        self.current = None
        self._error = None
        self._needed_usd = 0.0
        return True


def can_pay(balance: Mapping[str, Any], needed_usd: float) -> bool:
    """``GET /billing/balance`` says the account can pay ``needed_usd`` (USD or DIEM)."""
    if not balance.get("canConsume"):
        return False
    amounts = [v for v in (balance.get("balances") or {}).values() if isinstance(v, int | float)]
    return not amounts or needed_usd <= 0 or max(amounts) >= needed_usd
