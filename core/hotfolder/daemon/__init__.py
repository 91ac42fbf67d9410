"""The hot-folder daemon: watch folders, wait for complete files, claim, journal, run, recover.

One module per job:

* :mod:`.settings`: the ``[daemon]`` and ``[[folders]]`` tables, and a folder's paths;
* :mod:`.folders`: one watched folder as a plan (places, name filter, excluded folders, lock);
* :mod:`.readiness`: the ignore list, name filters, quiet periods, header checks (what is
  unsafe to read is :mod:`hotfolder.localfiles`' policy, shared with the path resolver);
* :mod:`.watcher`: observers (:mod:`.inotify` for a folder that is not recursive on Linux,
  watchdog's otherwise), hints and rescans;
* :mod:`.intake`: candidates, readiness, claims and quarantine;
* :mod:`.claim`: moves between a folder's places (``.hotfolder/processing/``,
  archive, failed), each one rename;
* :mod:`.journal`: the SQLite job ledger, which is the queue;
* :mod:`.scheduler`: concurrency, pauses, timeouts, attempts, duplicates;
* :mod:`.recovery`: journal and ``processing/`` made to agree at start-up;
* :mod:`.lock`: one daemon per state dir, and the pid of the running one;
* :mod:`.service`: the run loop, signals, reload;
* :mod:`.status`: what ``hotfolder status`` reports;
* :mod:`.requeue`: what ``hotfolder retry`` does to a failed job.

The commands themselves (``run``, ``status``, ``retry``) are in :mod:`hotfolder.cli`.
"""
