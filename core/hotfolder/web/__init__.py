"""The dashboard: a small web app over the journal (``hotfolder run --web``, ``hotfolder web``).

Kept out of every import the daemon always makes: only :mod:`.settings` (the ``[web]`` table,
a built-in plugin) is imported with the config; the app, its templates and uvicorn load only
when a command serves the dashboard.

Modules, one job each:

- :mod:`.settings`: ``[web]`` (``listen``, ``token``), the listen address and its rule
  (loopback, or a token).
- :mod:`.queries`: read-only SQL over the journal (pages of jobs, filters, failed jobs).
- :mod:`.status`: the status the overview and ``/api/status`` show, computed again only when
  the journal, the daemon or the config changed.
- :mod:`.thumbs`: thumbnails of the files the journal names for a job, through the imaging
  gate, cached.
- :mod:`.security`: the token, CSRF and the security headers.
- :mod:`.app`: the Starlette app, its routes (pages and JSON API) and server-sent events.
- :mod:`.server`: uvicorn on an existing event loop, as a companion of the daemon.
"""
