"""The hot-folder daemon: watch folders, wait for complete files, claim, journal, run, recover.

One module per job: :mod:`.settings` (``[daemon]`` and folder paths), :mod:`.readiness`
(ignore list, quiet period, regular-file checks), :mod:`.watcher` (watchdog observers and
rescans), :mod:`.claim` (rename into ``processing/<job-id>/``, finishing, reconciliation),
:mod:`.scheduler` (concurrency, pauses, timeouts, attempts), :mod:`.service` (the run loop,
signals, reload, single instance), :mod:`.status` (what ``hotfolder status`` reports) and
:mod:`.commands` (``run``, ``status``, ``retry``). The queue itself is the SQLite journal in
:mod:`hotfolder.journal`.
"""
