"""A fleet: one ``hotfolder run`` watching, any number of ``hotfolder worker`` processes on
any machines running the chains, Dramatiq over Redis between them, one Venice account's limits
shared in Redis. See docs/scale-out.md.

``[executor] kind = "dramatiq"`` needs ``pip install 'hotfolder[distributed]'`` (Dramatiq and
redis-py); :mod:`.settings` imports neither, so a local install validates the table too.

====================  ==========================================================
:mod:`.settings`      ``[executor]`` (ExecutorSection); registers the table
:mod:`.messages`      JobMessage, Outcome: plain data between watcher and workers
:mod:`.broker`        the Redis broker, the two queues and actors
:mod:`.dispatch`      FleetRunner: the watcher's side (send, await the outcome)
:mod:`.worker`        FleetWorker: ``hotfolder worker`` (run once, report)
:mod:`.account`       RedisAccount: the Venice rate limit, breaker, pause, spend in Redis
:mod:`.roster`        workers seen and the queue's length, for ``status``
====================  ==========================================================
"""
