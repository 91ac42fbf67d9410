"""Rate limit, retries, circuit breaker and pauses of the Venice client, against scripted
transports (no network)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import deque
from typing import Any

import httpx
import pytest
from PIL import Image

from hotfolder.errors import AuthError, BalanceError, BudgetExceeded, Unavailable
from hotfolder.venice import ImageInput, VeniceClient, VeniceSection
from hotfolder.venice.headers import RateLimitState
from hotfolder.venice.limiter import CircuitBreaker, RateLimiter
from hotfolder.waits import StepWaits, Wait, step_waits

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
    }
    kwargs: dict[str, Any] = {"sleep": sleep} if sleep else {}
    return VeniceClient(
        base_url=BASE,
        api_key=KEY,
        settings=VeniceSection(**{**defaults, **settings}),
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


def upscale(client: VeniceClient, cost_usd: float | None = None) -> Any:
    """One image call through the client's common path (what the four endpoints call)."""
    return client.call("upscale", {}, [IMAGE], cost_usd)


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
                await upscale(client)

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
            await upscale(client)

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
                *(upscale(client) for _ in range(6)), return_exceptions=True
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


def test_402_pauses_at_once_and_only_a_probe_that_sees_money_resumes(tmp_path):
    account = Account(polls_until_funded=3)
    client = client_with(account, tmp_path, max_connections=1)

    async def scenario() -> tuple[list[Any], list[bool], Any]:
        async with client:
            first = await asyncio.gather(
                *(upscale(client) for _ in range(4)), return_exceptions=True
            )
            probes = [await client.probe() for _ in range(3)]  # the 3rd poll sees the top-up
            return first, probes, await upscale(client)

    first, probes, after = asyncio.run(scenario())
    assert all(isinstance(e, BalanceError) for e in first)  # none waited inside the call
    assert account.image_requests == [402, 200]  # nothing sent while paused
    assert probes == [False, False, True]
    assert account.polls == 3
    assert after.format == "PNG"
    assert client.pause is None and client.pausing.entered == 1


def test_the_pause_is_data_with_its_reason_since_and_fix(tmp_path):
    account = Account(polls_until_funded=10**9)
    client = client_with(account, tmp_path)
    with pytest.raises(BalanceError):
        asyncio.run(_one(client))
    pause = client.pause
    assert pause is not None
    assert (pause.service, pause.kind) == ("venice", "balance")
    assert "402" in pause.reason and "venice.ai/settings/api" in (pause.hint or "")
    assert abs(pause.since - time.time()) < 5 and pause.not_before is None
    assert pause.to_dict()["since"].startswith(time.strftime("%Y-"))


def test_401_pauses_all_sending_until_a_probe_gets_through(tmp_path):
    seen: list[str] = []
    key_works = False

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path.rsplit("/", 1)[-1])
        if not key_works:
            return httpx.Response(401, json={"error": "Authentication failed"})
        if request.url.path.endswith("/billing/balance"):
            return httpx.Response(200, json={"canConsume": True, "balances": {"usd": 5.0}})
        return ok()

    client = client_with(handler, tmp_path)

    async def scenario() -> tuple[list[Any], bool, Any]:
        nonlocal key_works
        async with client:
            first = await asyncio.gather(upscale(client), return_exceptions=True)
            edit = client.call("edit", {"prompt": "p"}, [IMAGE])
            second = await asyncio.gather(edit, return_exceptions=True)
            models = await asyncio.gather(client.list_models("image"), return_exceptions=True)
            failed_probe = await client.probe()
            key_works = True
            assert await client.probe()
            return first + second + models, failed_probe, await upscale(client)

    errors, failed_probe, after = asyncio.run(scenario())
    assert all(isinstance(e, AuthError) for e in errors)
    assert "VENICE_API_KEY" in errors[0].hint
    assert failed_probe is False
    # refused calls were not sent; only the probes passed the pause
    assert seen == ["upscale", "balance", "balance", "upscale"]
    assert after.format == "PNG" and client.pause is None


def test_a_key_that_works_on_an_empty_account_turns_the_pause_into_balance(tmp_path):
    state = {"key": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if not state["key"]:
            return httpx.Response(401, json={"error": "Authentication failed"})
        body = {"canConsume": False, "balances": {"usd": 0.0}}
        return httpx.Response(200, json=body)

    client = client_with(handler, tmp_path)

    async def scenario() -> bool:
        async with client:
            with pytest.raises(AuthError):
                await upscale(client)
            state["key"] = True
            return await client.probe()

    assert asyncio.run(scenario()) is False
    assert client.pause is not None and client.pause.kind == "balance"


def test_without_a_key_the_client_starts_paused_and_sends_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("VENICE_API_KEY", raising=False)
    sent: list[httpx.Request] = []
    settings = VeniceSection(cache_dir=tmp_path)
    client = VeniceClient.from_settings(settings, transport=httpx.MockTransport(sent.append))

    async def scenario() -> bool:
        async with client:
            with pytest.raises(AuthError, match="VENICE_API_KEY"):
                await upscale(client)
            return await client.probe()

    assert asyncio.run(scenario()) is False
    assert client.pause is not None and client.pause.kind == "auth"
    assert sent == []


def test_the_daily_budget_pauses_until_the_next_day(tmp_path):
    now = [time.mktime((2026, 11, 30, 22, 0, 0, 0, 0, -1))]
    sent: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(1)
        return ok()

    client = VeniceClient(
        base_url=BASE,
        api_key=KEY,
        settings=VeniceSection(cache_dir=tmp_path, max_usd_per_day=1.0),
        transport=httpx.MockTransport(handler),
        clock=lambda: now[0],
    )

    async def scenario() -> tuple[bool, bool, Any]:
        async with client:
            await upscale(client, 0.6)
            with pytest.raises(BudgetExceeded, match="max_usd_per_day"):
                await upscale(client, 0.6)
            assert client.pause is not None and client.pause.kind == "budget"
            assert client.pause.not_before == time.mktime((2026, 12, 1, 0, 0, 0, 0, 0, -1))
            same_day = await client.probe()
            now[0] += 3 * 3600  # 01:00 the next day
            next_day = await client.probe()
            return same_day, next_day, await upscale(client, 0.6)

    same_day, next_day, after = asyncio.run(scenario())
    assert (same_day, next_day) == (False, True)
    assert after.format == "PNG"
    assert len(sent) == 2  # the refused call was never sent
    assert client.ledger.spent_today() == pytest.approx(0.6)  # the new day's spend
    assert client.pausing.entered == 1


def test_a_positive_balance_below_the_cost_keeps_the_pause(tmp_path):
    """canConsume is true for any positive balance; the paused request needs its price."""
    polls: list[float] = []
    image_statuses: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        usd = 5.0 if len(polls) >= 3 else 0.01  # topped up from the 4th poll on
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

    async def go() -> tuple[list[bool], Any]:
        async with client_with(handler, tmp_path) as client:
            with pytest.raises(BalanceError):
                await upscale(client, 0.5)
            probes = [await client.probe() for _ in range(4)]
            return probes, await upscale(client, 0.5)

    probes, result = asyncio.run(go())
    assert probes == [False, False, False, True]
    assert result.format == "PNG"
    assert image_statuses == [402, 200]  # no request while 0.01 could not pay 0.50
    assert polls == [0.01, 0.01, 0.01, 5.0]


async def _one(client: VeniceClient) -> Any:
    async with client:
        return await upscale(client)


def test_a_wait_for_a_rate_slot_is_reported_and_kept_apart_from_wire_time(tmp_path):
    client = client_with(lambda request: ok(), tmp_path)
    client.throttle.limiter = RateLimiter(1, window_seconds=0.4, margin_seconds=0)
    heard: list[Wait | None] = []

    async def two_calls() -> list[Any]:
        async with client:
            async with asyncio.timeout(10) as timeout:
                with step_waits(StepWaits(timeout, heard.append)):
                    return [await upscale(client), await upscale(client)]

    first, second = asyncio.run(two_calls())
    assert first.waited_seconds == 0
    assert second.waited_seconds >= 0.3  # the window of the first call
    assert second.seconds < 0.3  # the wire: a local mock answers at once
    assert [w.what if w else None for w in heard] == ["a Venice rate slot", None]


def test_the_breaker_remembers_recent_failures_across_a_restart(tmp_path):
    memory = tmp_path / "venice" / "failures-x.json"

    async def fail(breaker: CircuitBreaker, times: int) -> None:
        for _ in range(times):
            await breaker.acquire()
            await breaker.release(failed=True)

    first = CircuitBreaker(3, 30.0, memory=memory)
    asyncio.run(fail(first, 3))
    assert first.would_wait()
    # a new process during the same outage: it starts where the last one stopped
    second = CircuitBreaker(3, 30.0, memory=memory)
    assert second.recent_failures() == 3 and second.would_wait()
    # old failures are forgotten: a window later, sending is free again
    memory.write_text(json.dumps([time.time() - 40] * 3))
    assert CircuitBreaker(3, 30.0, memory=memory).recent_failures() == 0
    memory.write_text("not json")
    assert CircuitBreaker(3, 30.0, memory=memory).recent_failures() == 0
