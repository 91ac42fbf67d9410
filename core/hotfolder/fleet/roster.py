"""Who is in the fleet: each worker says it is alive (host, pid, jobs done, last seen) in a
Redis hash, and anyone can read the list and the queue's length. A job that waits on its worker
for something shared (a Venice rate slot, a free connection) is told too, one key a job, so
that the watcher's ``status`` shows the wait as it does for jobs it runs itself."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import redis

from hotfolder.fleet.broker import jobs_queue
from hotfolder.fleet.settings import ExecutorSection
from hotfolder.pauses import iso_time
from hotfolder.waits import Wait

#: A worker not heard of for this long is no longer listed.
FORGET_SECONDS = 300.0
#: A job's wait that its worker did not take back (killed mid-wait) is forgotten after this.
WAIT_KEEP_SECONDS = 3600


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


def wait_key(settings: ExecutorSection, job_id: str) -> str:
    return f"{settings.namespace}:waiting:{job_id}"


def say_waiting(
    client: redis.Redis, settings: ExecutorSection, job_id: str, wait: Wait | None, worker: str
) -> None:
    """Record that job ``job_id`` waits on ``worker`` for ``wait`` (None: no longer)."""
    key = wait_key(settings, job_id)
    if wait is None:
        client.delete(key)
        return
    record = {
        "what": wait.what,
        "since": iso_time(wait.since),
        "worker": worker,
    }
    client.set(key, json.dumps(record), ex=WAIT_KEEP_SECONDS)


def jobs_waiting(
    client: redis.Redis, settings: ExecutorSection, job_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """What each of ``job_ids`` that waits on its worker waits for (``what``, ``since``,
    ``worker``)."""
    if not job_ids:
        return {}
    values: list[bytes | None] = client.mget([wait_key(settings, j) for j in job_ids])  # type: ignore[assignment]
    return {j: json.loads(v) for j, v in zip(job_ids, values, strict=True) if v}
