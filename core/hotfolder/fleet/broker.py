"""The Dramatiq broker of a fleet: Redis, two queues, two actors.

=======================  ============================  ==============================
queue                    actor                         consumed by
=======================  ============================  ==============================
``<namespace>-jobs``     ``hotfolder_run_job``         every ``hotfolder worker``
``<namespace>-outcomes`` ``hotfolder_job_outcome``     the one ``hotfolder run``
=======================  ============================  ==============================

Dramatiq acknowledges a message only once its actor returned (at-least-once); a worker that
stops beating for ``heartbeat_seconds`` is dead, and its unacknowledged messages go back on the
queue for another worker. Maintenance (the requeueing) runs on a share of the broker's
commands; it is set high here so that a dead worker's job moves on within seconds, not minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO, CurrentMessage, Retries, ShutdownNotifications

from hotfolder.fleet.settings import ExecutorSection

RUN_JOB = "hotfolder_run_job"
JOB_OUTCOME = "hotfolder_job_outcome"
#: Of every million broker commands, how many also look for dead workers' messages (Dramatiq's
#: default is 1,000; idle consumers poll about once a second, so this is every few seconds).
MAINTENANCE_CHANCE = 100_000
#: How often an actor that raised is tried again (the actors report their errors as
#: outcomes; only a bug or a lost Redis raises).
MAX_RETRIES = 5


def jobs_queue(settings: ExecutorSection) -> str:
    return f"{settings.namespace}-jobs"


def outcomes_queue(settings: ExecutorSection) -> str:
    return f"{settings.namespace}-outcomes"


def redis_client(settings: ExecutorSection) -> redis.Redis:
    """A client of the fleet's Redis, with timeouts so that an unreachable Redis fails fast
    (and is waited for) rather than hanging a sender."""
    return redis.Redis.from_url(
        settings.effective_redis_url(),
        socket_timeout=5,
        socket_connect_timeout=3,
        health_check_interval=10,
    )


def make_broker(settings: ExecutorSection, *, asyncio_actors: bool = False) -> RedisBroker:
    middleware: list[Any] = [
        Retries(max_retries=MAX_RETRIES, min_backoff=1000, max_backoff=30_000),
        ShutdownNotifications(),
        CurrentMessage(),
    ]
    if asyncio_actors:
        middleware.append(AsyncIO())
    return RedisBroker(  # type: ignore[no-untyped-call]
        client=redis_client(settings),
        namespace=f"{settings.namespace}.dramatiq",
        middleware=middleware,
        heartbeat_timeout=int(settings.heartbeat_seconds * 1000),
        maintenance_chance=MAINTENANCE_CHANCE,
    )


def declare(
    broker: dramatiq.Broker, name: str, queue: str, fn: Callable[..., Any]
) -> dramatiq.Actor[Any, Any]:
    """Register ``fn`` as the actor ``name`` on ``queue``."""
    return dramatiq.Actor(fn, broker=broker, actor_name=name, queue_name=queue, priority=0,
                          options={})  # fmt: skip


def message(actor: str, queue: str, data: dict[str, Any]) -> dramatiq.Message[Any]:
    """A message for ``actor`` with one argument, plain data."""
    return dramatiq.Message(queue_name=queue, actor_name=actor, args=(data,), kwargs={},
                            options={})  # fmt: skip
