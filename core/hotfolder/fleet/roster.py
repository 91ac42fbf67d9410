"""Who is in the fleet: each worker says it is alive (host, pid, jobs done, last seen) in a
Redis hash, and anyone can read the list and the queue's length."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import redis

from hotfolder.fleet.broker import jobs_queue
from hotfolder.fleet.settings import ExecutorSection

#: A worker not heard of for this long is no longer listed.
FORGET_SECONDS = 300.0


def workers_key(settings: ExecutorSection) -> str:
    return f"{settings.namespace}:workers"


def say_alive(client: redis.Redis, settings: ExecutorSection, *, done: int, failed: int,
              running: int, started: float) -> None:  # fmt: skip
    """Record this worker as alive now."""
    me = f"{socket.gethostname()}:{os.getpid()}"
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "done": done,
        "failed": failed,
        "running": running,
        "started": started,
        "last_seen": time.time(),
    }
    client.hset(workers_key(settings), me, json.dumps(record))


def forget_me(client: redis.Redis, settings: ExecutorSection) -> None:
    client.hdel(workers_key(settings), f"{socket.gethostname()}:{os.getpid()}")


def fleet_snapshot(client: redis.Redis, settings: ExecutorSection) -> dict[str, Any]:
    """``{"workers": [...], "queued": N}``: workers heard of in the last
    :data:`FORGET_SECONDS` (older ones are dropped from the hash), newest first."""
    now = time.time()
    raw: dict[bytes, bytes] = client.hgetall(workers_key(settings))  # type: ignore[assignment]
    workers, stale = [], []
    for name, value in raw.items():
        record = json.loads(value)
        if now - float(record.get("last_seen", 0)) > FORGET_SECONDS:
            stale.append(name)
        else:
            workers.append(record)
    if stale:
        client.hdel(workers_key(settings), *stale)
    workers.sort(key=lambda r: -float(r["last_seen"]))
    namespace = f"{settings.namespace}.dramatiq"
    queued = int(client.llen(f"{namespace}:{jobs_queue(settings)}"))
    return {"workers": workers, "queued": queued, "checked": now}
