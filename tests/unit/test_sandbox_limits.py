"""The sandbox's per-key rate limit and failed-requests lockout, on a hand-moved clock."""

from __future__ import annotations

import pytest

from hotfolder_sandbox.faults import RESET, FaultPlan
from hotfolder_sandbox.limits import FailureLockout, KeyRateLimiter


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rate_limit_counts_per_key_and_slides() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(clock)
    first = limiter.hit("a", 2, 60)
    assert (first.allowed, first.remaining, first.reset_at) == (True, 1, clock.now + 60)
    clock.now += 10
    assert limiter.hit("a", 2, 60).remaining == 0
    denied = limiter.hit("a", 2, 60)
    assert not denied.allowed
    assert denied.retry_after(clock.now) == 50
    assert limiter.hit("b", 2, 60).allowed  # another key has its own budget
    clock.now += 50  # the first request leaves the window
    again = limiter.hit("a", 2, 60)
    assert again.allowed and again.remaining == 0


def test_denied_requests_do_not_use_up_the_budget() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(clock)
    limiter.hit("a", 1, 60)
    for _ in range(5):
        assert not limiter.hit("a", 1, 60).allowed
    clock.now += 60
    assert limiter.hit("a", 1, 60).allowed


def test_rate_headers_give_the_reset_as_a_whole_unix_timestamp() -> None:
    clock = Clock(1_800_000_000.4)
    headers = KeyRateLimiter(clock).hit("a", 20, 60).headers()
    assert headers == {
        "x-ratelimit-limit-requests": "20",
        "x-ratelimit-remaining-requests": "19",
        "x-ratelimit-reset-requests": "1800000061",
    }


def test_more_than_threshold_failures_in_the_window_lock_the_key() -> None:
    clock = Clock()
    lockout = FailureLockout(clock)
    assert [lockout.record_failure("k", 3, 30, 30) for _ in range(3)] == [False] * 3
    assert lockout.locked_until("k") is None
    assert lockout.record_failure("k", 3, 30, 30) is True
    assert lockout.locked_until("k") == clock.now + 30
    assert lockout.locked_until("other") is None
    clock.now += 30
    assert lockout.locked_until("k") is None


def test_failures_outside_the_window_are_forgotten() -> None:
    clock = Clock()
    lockout = FailureLockout(clock)
    for _ in range(3):
        lockout.record_failure("k", 3, 30, 30)
        clock.now += 11
    assert lockout.record_failure("k", 3, 30, 30) is False  # the first one has aged out
    assert lockout.locked_until("k") is None


def test_reset_forgets_everything() -> None:
    clock = Clock()
    lockout, limiter = FailureLockout(clock), KeyRateLimiter(clock)
    for _ in range(2):
        lockout.record_failure("k", 1, 30, 30)
    limiter.hit("k", 1, 60)
    lockout.reset()
    limiter.reset()
    assert lockout.locked_until("k") is None
    assert limiter.hit("k", 1, 60).allowed


def test_fault_draws_repeat_with_the_seed() -> None:
    rates = {500: 0.3, 503: 0.2}
    first = FaultPlan(7).draw(rates, 0.1)
    plan_a, plan_b = FaultPlan(7), FaultPlan(7)
    draws_a = [plan_a.draw(rates, 0.1) for _ in range(200)]
    draws_b = [plan_b.draw(rates, 0.1) for _ in range(200)]
    assert draws_a == draws_b
    assert draws_a[0] == first
    assert {None, 500, 503, RESET} == set(draws_a)
    assert draws_a.count(500) == pytest.approx(60, abs=25)


def test_no_rates_draw_nothing() -> None:
    plan = FaultPlan(None)
    assert {plan.draw({}, 0.0) for _ in range(50)} == {None}
    assert {plan.draw({429: 1.0}, 0.0) for _ in range(5)} == {429}
