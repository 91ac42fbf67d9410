"""Rate limit, retries, circuit breaker and pauses of the Venice client, against scripted
transports (no network)."""

from __future__ import annotations

import asyncio
import io
import time
from collections import deque
from typing import Any

import httpx
import pytest
from PIL import Image

from hotfolder.errors import AuthError, BalanceError, Unavailable
from hotfolder.venice import ImageInput, VeniceClient, VeniceSection
from hotfolder.venice.headers import RateLimitState
from hotfolder.venice.limiter import CircuitBreaker, RateLimiter

KEY = "sk-venice-limiter-test-key"
BASE = "https://api.venice.test/api/v1"


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (1, 2, 3)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png()
IMAGE = ImageInput(data=PNG, media_type="image/png")


def ok() -> httpx.Response:
    return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})


class FakeTime:
    """A clock that only moves when someone sleeps: rate tests run instantly."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


def client_with(handler: Any, tmp_path: Any, *, sleep: Any = None, **settings: Any) -> VeniceClient:
    defaults: dict[str, Any] = {
        "cache_dir": tmp_path,
        "requests_per_minute": 10_000,
        "backoff_base_seconds": 0.0,
        "balance_poll_seconds": 0.01,
        "balance_poll_max_seconds": 0.02,
    }
    kwargs: dict[str, Any] = {"sleep": sleep} if sleep else {}
    return VeniceClient(
        base_url=BASE,
        api_key=KEY,
        settings=VeniceSection(**{**defaults, **settings}),
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


def image_paths(requests: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in requests if "/image/" in r.url.path]


# --- rate limit ----------------------------------------------------------------------------


class WindowServer:
    """Answers 429 whenever more than ``limit`` requests fall in ``window`` seconds of the
    fake clock, with Venice's x-ratelimit headers."""

    def __init__(self, fake: FakeTime, limit: int, window: float = 60.0) -> None:
        self.fake, self.limit, self.window = fake, limit, window
        self.log: deque[float] = deque()
        self.statuses: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = self.fake.now
        while self.log and self.log[0] <= now - self.window:
            self.log.popleft()
        allowed = len(self.log) < self.limit
        if allowed:
            self.log.append(now)
        reset = (self.log[0] + self.window) if self.log else now + self.window
        headers = {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.limit - len(self.log)),
            # the server's reset is a Unix time; the fake clock stands for it here
            "x-ratelimit-reset-requests": str(time.time() + reset - now),
        }
        self.statuses.append(200 if allowed else 429)
        if not allowed:
            return httpx.Response(429, json={"error": "Rate limit exceeded"}, headers=headers)
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png", **headers})


def _fake_limited(client: VeniceClient, fake: FakeTime, per_minute: int) -> None:
    client.throttle.limiter = RateLimiter(per_minute, clock=fake.clock, sleep=fake.sleep)


@pytest.mark.parametrize(("configured", "server_limit"), [(20, 20), (20, 7)])
def test_a_steady_stream_never_sees_a_429(tmp_path, configured, server_limit):
    fake = FakeTime()
    server = WindowServer(fake, server_limit)
    client = client_with(server, tmp_path, requests_per_minute=configured)
    _fake_limited(client, fake, configured)

    async def stream() -> None:
        async with client:
            for _ in range(3 * server_limit + 5):
                await client.upscale(IMAGE)

    asyncio.run(stream())
    assert server.statuses.count(429) == 0
    assert len(server.statuses) == 3 * server_limit + 5
    assert fake.now - 1_000.0 >= 3 * 60  # it really waited for the windows


def test_remaining_zero_waits_until_the_reset():
    fake = FakeTime()
    limiter = RateLimiter(100, clock=fake.clock, sleep=fake.sleep)
    limiter.observe(RateLimitState(limit=100, remaining=0, reset_at=time.time() + 17))
    asyncio.run(limiter.acquire())
    assert fake.now - 1_000.0 == pytest.approx(17, abs=1.0)


def test_a_429_holds_every_sender_until_its_reset(tmp_path):
    fake = FakeTime()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(fake.now)
        if len(calls) == 1:
            headers = {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": str(int(time.time()) + 30),
            }
            return httpx.Response(429, json={"error": "Rate limit exceeded"}, headers=headers)
        return ok()

    client = client_with(handler, tmp_path, sleep=fake.sleep)
    _fake_limited(client, fake, 10_000)

    async def go() -> None:
        async with client:
            await client.upscale(IMAGE)

    asyncio.run(go())
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 29


# --- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_server_errors_are_retried_up_to_max_attempts(tmp_path, status):
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(status)
        return httpx.Response(status, json={"error": "busy"})

    client = client_with(handler, tmp_path, max_attempts=4)
    with pytest.raises(Unavailable):
        asyncio.run(_one(client))
    assert len(seen) == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 415, 422])
def test_client_errors_are_never_retried(tmp_path, status):
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(status)
        return httpx.Response(status, json={"error": "no"})

    with pytest.raises(Exception) as caught:
        asyncio.run(_one(client_with(handler, tmp_path, max_attempts=6)))
    assert not isinstance(caught.value, Unavailable)
    assert len(seen) == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")],
)
def test_network_failures_are_retried(tmp_path, failure):
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        if len(seen) < 3:
            raise failure
        return ok()

    result = asyncio.run(_one(client_with(handler, tmp_path, max_attempts=6)))
    assert result.format == "PNG" and len(seen) == 3


def test_backoff_is_capped_exponential_with_full_jitter(tmp_path):
    fake = FakeTime()
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        return httpx.Response(500, json={"error": "boom"})

    client = client_with(
        handler,
        tmp_path,
        sleep=fake.sleep,
        max_attempts=8,
        backoff_base_seconds=1.0,
        backoff_cap_seconds=8.0,
        breaker_failures=19,
    )
    with pytest.raises(Unavailable):
        asyncio.run(_one(client))
    assert len(seen) == 8
    assert len(fake.slept) == 7
    assert all(0 <= w <= min(8.0, 2**i) for i, w in enumerate(fake.slept))
    assert len(set(fake.slept)) > 1  # jittered, not a fixed schedule


def test_retrying_is_bounded_in_total_time(tmp_path):
    seen: list[float] = []
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        return httpx.Response(503, json={"error": "at capacity"})

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(seconds)

    client = client_with(
        handler,
        tmp_path,
        sleep=sleep,
        max_attempts=100,
        backoff_base_seconds=0.05,
        backoff_cap_seconds=0.1,
        max_retry_seconds=0.6,
        breaker_failures=19,
        breaker_window_seconds=1.0,
    )
    with pytest.raises(Unavailable):
        asyncio.run(_one(client))
    # No wait is started that would end past the budget, however slow the machine is.
    assert sum(slept) <= 0.6
    assert 2 < len(seen) < 100


def test_retry_after_is_honoured(tmp_path):
    fake = FakeTime()
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        if len(seen) == 1:
            return httpx.Response(503, json={"error": "at capacity"}, headers={"Retry-After": "7"})
        return ok()

    asyncio.run(_one(client_with(handler, tmp_path, sleep=fake.sleep, backoff_cap_seconds=0.1)))
    assert len(seen) == 2
    assert 7.0 <= fake.slept[0] <= 7.3


# --- circuit breaker ------------------------------------------------------------------------


def test_a_500_storm_never_puts_more_than_the_threshold_of_failures_in_a_window(tmp_path):
    failures: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        failures.append(time.monotonic())
        return httpx.Response(500, json={"error": "Image edit failed"})

    client = client_with(
        handler,
        tmp_path,
        max_attempts=4,
        breaker_failures=5,
        breaker_window_seconds=1.0,
        max_connections=4,
    )

    async def storm() -> list[Any]:
        async with client:
            return await asyncio.gather(
                *(client.upscale(IMAGE) for _ in range(6)), return_exceptions=True
            )

    results = asyncio.run(storm())
    assert all(isinstance(r, Unavailable) for r in results)
    assert len(failures) == 24
    for i, t in enumerate(failures):
        in_window = [u for u in failures[i:] if u - t < 1.0]
        assert len(in_window) <= 5, f"{len(in_window)} failures within 1s starting at #{i}"
    assert client.throttle.breaker.opened > 0


def test_the_breaker_counts_requests_in_flight():
    breaker = CircuitBreaker(3, 10.0)

    async def go() -> bool:
        for _ in range(3):
            await breaker.acquire()
        try:
            await asyncio.wait_for(breaker.acquire(), 0.05)
        except TimeoutError:
            blocked = True
        else:
            blocked = False
        await breaker.release(failed=False)
        await asyncio.wait_for(breaker.acquire(), 0.05)  # a slot came free
        return blocked

    assert asyncio.run(go())


# --- pauses ---------------------------------------------------------------------------------


class Account:
    """Image requests get 402 until the balance is topped up; the balance endpoint says so."""

    def __init__(self, polls_until_funded: int) -> None:
        self.polls_until_funded = polls_until_funded
        self.polls = 0
        self.funded = False
        self.image_requests: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/billing/balance"):
            self.polls += 1
            self.funded = self.funded or self.polls >= self.polls_until_funded
            body = {
                "canConsume": self.funded,
                "consumptionCurrency": "USD",
                "balances": {"usd": 5.0 if self.funded else 0.0, "diem": None},
                "diemEpochAllocation": 0,
            }
            return httpx.Response(200, json=body)
        self.image_requests.append(402 if not self.funded else 200)
        if not self.funded:
            body = {"error": "Insufficient USD or Diem balance", "code": "INSUFFICIENT_BALANCE"}
            return httpx.Response(402, json=body)
        return ok()


def test_402_pauses_polls_the_balance_and_resumes_every_waiting_call(tmp_path):
    account = Account(polls_until_funded=3)
    client = client_with(account, tmp_path, max_connections=1)

    async def batch() -> list[Any]:
        async with client:
            return await asyncio.gather(*(client.upscale(IMAGE) for _ in range(4)))

    results = asyncio.run(batch())
    assert len(results) == 4 and all(r.format == "PNG" for r in results)
    assert account.polls == 3
    assert account.image_requests == [402, 200, 200, 200, 200]  # nothing sent while paused
    assert client.throttle.balance.trips == 1


def test_a_bounded_balance_wait_ends_in_balance_error(tmp_path):
    account = Account(polls_until_funded=10**9)
    client = client_with(account, tmp_path, balance_wait_seconds=0.2)
    with pytest.raises(BalanceError, match="still no balance"):
        asyncio.run(_one(client))
    assert account.image_requests == [402]
    assert account.polls >= 2


def test_401_pauses_all_sending_with_a_hint(tmp_path):
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        return httpx.Response(401, json={"error": "Authentication failed"})

    client = client_with(handler, tmp_path)

    async def twice() -> list[Any]:
        async with client:
            first = await asyncio.gather(client.upscale(IMAGE), return_exceptions=True)
            second = await asyncio.gather(client.edit(IMAGE, prompt="p"), return_exceptions=True)
            return first + second

    errors = asyncio.run(twice())
    assert all(isinstance(e, AuthError) for e in errors)
    assert "VENICE_API_KEY" in errors[0].hint
    assert len(seen) == 1  # the second call was refused without a request


async def _one(client: VeniceClient) -> Any:
    async with client:
        return await client.upscale(IMAGE)


def test_a_positive_balance_below_the_cost_keeps_the_pause(tmp_path):
    """canConsume is true for any positive balance; the waiting request needs its price."""
    polls: list[float] = []
    image_statuses: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        usd = 5.0 if len(polls) >= 4 else 0.01  # topped up from the 4th poll on
        if request.url.path.endswith("/billing/balance"):
            polls.append(usd)
            body = {
                "canConsume": True,
                "consumptionCurrency": "USD",
                "balances": {"usd": usd, "diem": None},
                "diemEpochAllocation": 0,
            }
            return httpx.Response(200, json=body)
        image_statuses.append(200 if usd >= 0.5 else 402)
        if image_statuses[-1] == 402:
            return httpx.Response(
                402, json={"error": "Insufficient balance", "code": "INSUFFICIENT_BALANCE"}
            )
        return ok()

    async def go() -> Any:
        async with client_with(handler, tmp_path) as client:
            return await client.upscale(IMAGE, cost_usd=0.5)

    assert asyncio.run(go()).format == "PNG"
    assert image_statuses == [402, 200]  # no request while 0.01 could not pay 0.50
    assert polls == [0.01, 0.01, 0.01, 0.01, 5.0]
