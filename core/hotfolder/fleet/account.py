"""One Venice account's limits kept in Redis, for every process of a fleet
(:class:`~hotfolder.venice.sharing.SharedAccount`).

* the rate limit: a sliding log of sends (a sorted set), checked and added to in one Lua
  script on Redis' own clock, so N workers on N machines together send at most
  ``requests_per_minute`` image requests in any window, and a 429's hold stops all of them;
* the circuit breaker: recent failures and leases of the requests in flight, in the same way,
  so the fleet together never walks into the key lockout;
* the pause (a JSON value) and the spend per day (a hash).

Redis that cannot be reached holds requests back (they wait and ask again); a pause or spend
that cannot be read is taken as last seen. Keys live under ``<namespace>:venice:<account>``,
where the account is a digest of the API root and key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from typing import Any

import redis
from loguru import logger

from hotfolder.venice.headers import RateLimitState

#: The longest a request may hold its breaker lease (a worker that died keeps it this long).
LEASE_SECONDS = 600.0
#: How long a sender waits before asking Redis again for a slot (a slot freed elsewhere is
#: not announced).
POLL_SECONDS = 0.25

# KEYS: sent, hold; ARGV: window ms, capacity, member, take (1) or peek (0).
# Returns 0 when a slot was taken (or would be), else the milliseconds to wait.
_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local hold = tonumber(redis.call('GET', KEYS[2]) or '0')
if hold > now then return hold - now end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  if ARGV[4] == '1' then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window)
  end
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

# KEYS: sent, hold; ARGV: window ms. Returns {sends in the window, ms until a slot is free}
# for a capacity given as ARGV[2].
_RATE_STATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local wait = math.max(0, tonumber(redis.call('GET', KEYS[2]) or '0') - now)
if n >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  wait = math.max(wait, tonumber(oldest[2]) + window - now)
end
return {n, wait}
"""

# KEYS: hold; ARGV: milliseconds.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
if until_ms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], until_ms, 'PX', ARGV[1])
end
return until_ms
"""

# KEYS: failures, leases; ARGV: window ms, max failures, token, lease ms, take (1) or peek (0).
_BREAKER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local used = redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])
if used < tonumber(ARGV[2]) then
  if ARGV[5] == '1' then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
    redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
  end
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then return math.max(1, tonumber(oldest[2]) + tonumber(ARGV[1]) - now) end
return 1000
"""

# KEYS: failures, leases; ARGV: token, failed (1/0), window ms.
_RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
end
return 0
"""


def account_prefix(namespace: str, base_url: str, api_key: str) -> str:
    """``<namespace>:venice:<digest>``: one prefix per API root and key (an account)."""
    digest = hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()[:16]
    return f"{namespace}:venice:{digest}"


class RedisAccount:
    """The :class:`~hotfolder.venice.sharing.SharedAccount` of one Venice account in Redis."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def rate_limiter(self, per_minute: int) -> RedisRateLimiter:
        return RedisRateLimiter(self, per_minute)

    def circuit_breaker(self, max_failures: int, window_seconds: float) -> RedisBreaker:
        return RedisBreaker(self, max_failures, window_seconds)

    def pause_store(self) -> RedisPauseStore:
        return RedisPauseStore(self)

    def spend_store(self) -> RedisSpendStore:
        return RedisSpendStore(self)


class _Unreachable:
    """Logs once that Redis cannot be reached, and once that it can again."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.down = False

    def failed(self, exc: Exception) -> None:
        if not self.down:
            self.down = True
            logger.warning("Redis cannot be reached for {} ({}); waiting for it", self.what, exc)

    def ok(self) -> None:
        if self.down:
            self.down = False
            logger.info("Redis is back for {}", self.what)


class RedisRateLimiter:
    """At most ``per_minute`` image requests in any 61 s, over the whole fleet."""

    def __init__(self, account: RedisAccount, per_minute: int, *, margin_seconds: float = 1.0):
        self.configured = per_minute
        self.capacity = per_minute
        self.window_ms = int((60.0 + margin_seconds) * 1000)
        self._keys = [account.key("rate:sent"), account.key("rate:hold")]
        self._rate = account.client.register_script(_RATE)
        self._hold = account.client.register_script(_HOLD)
        self._state = account.client.register_script(_RATE_STATE)
        self._hold_key = account.key("rate:hold")
        self._unreachable = _Unreachable("the Venice rate limit")

    def _ask(self, take: bool) -> int:
        member = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}"
        return int(
            self._rate(keys=self._keys, args=[self.window_ms, self.capacity, member, int(take)])
        )

    async def acquire(self) -> None:
        while True:
            try:
                wait_ms = await asyncio.to_thread(self._ask, True)
                self._unreachable.ok()
            except redis.RedisError as exc:
                self._unreachable.failed(exc)
                wait_ms = 1000
            if wait_ms <= 0:
                return
            await asyncio.sleep(min(wait_ms / 1000, POLL_SECONDS * 4))

    def would_wait(self) -> bool:
        try:
            return self._ask(False) > 0
        except redis.RedisError:
            return True

    def state(self) -> dict[str, Any]:
        try:
            sent, wait_ms = self._state(keys=self._keys, args=[self.window_ms, self.capacity])
        except redis.RedisError:
            return {"limit": self.capacity, "sent": None, "free_in_seconds": None}
        return {"limit": self.capacity, "sent": int(sent), "free_in_seconds": round(
            int(wait_ms) / 1000, 1)}  # fmt: skip

    def observe(self, state: RateLimitState) -> None:
        if state.limit is not None and state.limit > 0:
            self.capacity = min(self.configured, state.limit)

    def hold(self, seconds: float) -> None:
        try:
            self._hold(keys=[self._hold_key], args=[max(1, int(seconds * 1000))])
        except redis.RedisError as exc:
            logger.warning("cannot hold the fleet's Venice requests after a 429: {}", exc)


class RedisBreaker:
    """Failures in the window plus requests in flight stay below ``max_failures`` over the
    whole fleet; a request in flight holds a lease that a dead worker's leaves behind for at
    most :data:`LEASE_SECONDS`."""

    def __init__(self, account: RedisAccount, max_failures: int, window_seconds: float) -> None:
        self.max_failures = max_failures
        self.window_ms = int(window_seconds * 1000)
        self._keys = [account.key("breaker:failures"), account.key("breaker:leases")]
        self._take = account.client.register_script(_BREAKER)
        self._release = account.client.register_script(_RELEASE)
        self._tokens: list[str] = []
        self.opened = 0
        self._unreachable = _Unreachable("the Venice circuit breaker")

    def _ask(self, token: str, take: bool) -> int:
        args: list[str | int] = [
            self.window_ms,
            self.max_failures,
            token,
            int(LEASE_SECONDS * 1000),
            int(take),
        ]
        return int(self._take(keys=self._keys, args=args))

    def would_wait(self) -> bool:
        try:
            return self._ask("-", False) > 0
        except redis.RedisError:
            return True

    async def acquire(self) -> None:
        token = uuid.uuid4().hex
        waited = False
        while True:
            try:
                wait_ms = await asyncio.to_thread(self._ask, token, True)
                self._unreachable.ok()
            except redis.RedisError as exc:
                self._unreachable.failed(exc)
                wait_ms = 1000
            if wait_ms <= 0:
                self._tokens.append(token)
                return
            if not waited:
                waited = True
                self.opened += 1
                logger.warning(
                    "Venice circuit open over the fleet: too many failed requests in the last "
                    "{:.0f}s; holding requests to stay clear of the key lockout",
                    self.window_ms / 1000,
                )
            await asyncio.sleep(min(wait_ms / 1000, POLL_SECONDS * 4))

    async def release(self, *, failed: bool) -> None:
        token = self._tokens.pop(0) if self._tokens else uuid.uuid4().hex
        args: list[str | int] = [token, int(failed), self.window_ms]
        try:
            await asyncio.to_thread(self._release, keys=self._keys, args=args)
        except redis.RedisError as exc:  # the lease runs out by itself
            logger.warning("cannot record a Venice request's end in Redis: {}", exc)


class RedisPauseStore:
    """The pause as a JSON value, read fresh each time (one GET: every request and every
    dispatch asks, and a pause one worker entered must hold the next request of every other);
    read as last seen while Redis cannot be reached, asking again every
    :data:`RETRY_SECONDS` rather than at each call."""

    RETRY_SECONDS = 2.0

    def __init__(self, account: RedisAccount) -> None:
        self.client = account.client
        self.key = account.key("pause")
        self._last: dict[str, Any] | None = None
        self._down_until = 0.0
        self._unreachable = _Unreachable("the Venice pause")

    def load(self) -> dict[str, Any] | None:
        now = time.monotonic()
        if now < self._down_until:
            return self._last
        try:
            raw = self.client.get(self.key)
            self._unreachable.ok()
        except redis.RedisError as exc:
            self._unreachable.failed(exc)
            self._down_until = now + self.RETRY_SECONDS
            return self._last
        self._last = json.loads(raw) if raw else None
        return self._last

    def save(self, state: dict[str, Any] | None) -> None:
        self._last = state
        try:
            if state is None:
                self.client.delete(self.key)
            else:
                self.client.set(self.key, json.dumps(state))
        except redis.RedisError as exc:
            logger.error("cannot share the Venice pause through Redis: {}", exc)


class RedisSpendStore:
    """Spend per local day in a hash; the last 7 days are kept."""

    def __init__(self, account: RedisAccount) -> None:
        self.client = account.client
        self.key = account.key("spend")
        self._last: dict[str, float] = {}

    def read(self) -> dict[str, float]:
        try:
            raw: dict[bytes, bytes] = self.client.hgetall(self.key)  # type: ignore[assignment]
        except redis.RedisError as exc:
            logger.warning("cannot read the fleet's Venice spend from Redis: {}", exc)
            return dict(self._last)
        self._last = {k.decode(): float(v) for k, v in raw.items()}
        return dict(self._last)

    def add(self, day: str, usd: float) -> None:
        try:
            self.client.hincrbyfloat(self.key, day, usd)
            days = sorted(self.read())
            if len(days) > 7:
                self.client.hdel(self.key, *days[:-7])
        except redis.RedisError as exc:
            logger.error("cannot book ${:.4f} of Venice spend in Redis: {}", usd, exc)
