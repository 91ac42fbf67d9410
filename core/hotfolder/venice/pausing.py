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

With a :class:`~hotfolder.venice.sharing.PauseStore` the pause lives there, as plain data:
every process of a fleet sees a pause entered by any of them, and a probe by any of them
lifts it for all.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from loguru import logger

from hotfolder.errors import AuthError, BalanceError, BudgetExceeded, HotfolderError, VeniceError
from hotfolder.pauses import Pause, iso_time, next_local_midnight
from hotfolder.venice.sharing import PauseStore

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
        store: PauseStore | None = None,
    ) -> None:
        self._balance = balance
        self._budget_fits = budget_fits
        self._clock = clock
        self._store = store
        self._current: Pause | None = None
        self._error: VeniceError | None = None
        self._needed_usd = 0.0
        #: How many times work was paused, for logs and tests.
        self.entered = 0

    @property
    def current(self) -> Pause | None:
        """The pause in force, or None (with a store: as the store says now)."""
        if self._store is not None:
            self._pull(self._store.load())
        return self._current

    def state(self) -> dict[str, Any] | None:
        """The pause as plain data, for a :class:`~hotfolder.venice.sharing.PauseStore`."""
        if self._current is None or self._error is None:
            return None
        error = self._error
        return {
            "pause": dataclasses.asdict(self._current),
            "error": {"class": type(error).__name__, "message": error.message,
                      "hint": error.hint, "status": error.status, "code": error.code},
            "needed_usd": self._needed_usd,
        }  # fmt: skip

    def _pull(self, state: dict[str, Any] | None) -> None:
        if state is None:
            self._current, self._error, self._needed_usd = None, None, 0.0
            return
        pause = Pause(**state["pause"])
        if pause == self._current:
            return
        error = state["error"]
        kind = next(cls for cls, name in _KINDS.items() if name == pause.kind)
        self._current = pause
        self._error = kind(
            error["message"], hint=error["hint"], status=error["status"], code=error["code"]
        )
        self._needed_usd = float(state.get("needed_usd") or 0.0)

    def _push(self) -> None:
        if self._store is not None:
            self._store.save(self.state())

    def enter(
        self, error: VeniceError, *, needed_usd: float | None = None, lifts_by_probe: bool = True
    ) -> None:
        """Pause for ``error`` (an AuthError, BalanceError or BudgetExceeded);
        ``lifts_by_probe=False`` when only a new client can end it (no key was given)."""
        kind = _KINDS[type(error)]
        current = self.current
        self._needed_usd = max(self._needed_usd, needed_usd or 0.0)
        if current is not None and current.kind == kind:
            self._push()  # the requests in flight when it began say the same
            return
        now = self._clock()
        not_before = next_local_midnight(now) if kind == "budget" else None
        since = current.since if current is not None else now
        self._current = Pause(
            SERVICE_NAME,
            kind,
            error.message,
            error.hint,
            since,
            not_before=not_before,
            lifts_by_probe=lifts_by_probe,
        )
        self._error = error
        self._push()
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
        current = self.current
        if current is None or self._error is None:
            return
        if current.kind == "auth" or image:
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
        assert self._current is not None
        logger.info("Venice work resumes: {} (paused since {})", why, iso_time(self._current.since))
        self._current = None
        self._error = None
        self._needed_usd = 0.0
        self._push()
        return True


def can_pay(balance: Mapping[str, Any], needed_usd: float) -> bool:
    """``GET /billing/balance`` says the account can pay ``needed_usd`` (USD or DIEM)."""
    if not balance.get("canConsume"):
        return False
    amounts = [v for v in (balance.get("balances") or {}).values() if isinstance(v, int | float)]
    return not amounts or needed_usd <= 0 or max(amounts) >= needed_usd
