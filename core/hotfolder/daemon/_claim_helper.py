"""The backlog claimer's second process: it claims old files a scan found, doing the system
calls of each (look, lease, rename, look again) while the daemon journals the batch before.

Run by path as ``python -I -S _claim_helper.py`` (see :mod:`hotfolder.daemon.backlog`): it
imports nothing of hotfolder and no site packages, so it starts in milliseconds and shares none
of the daemon's locks. One request a line on stdin, one answer a line on stdout, both JSON::

    [folder, processing, older_than, [[name, claimed_name, prompt_name], ...]]
    [[size, mtime_ns, ino, mode, nlink] | "look" | "gone", ...]

``name`` and ``prompt_name`` are relative to ``folder``, ``claimed_name`` to ``processing``.
A file is claimed (renamed to its claimed name, and its ``lstat`` answered) only when the
daemon's own readiness rule for a file a scan found would take it at once: a regular file with
one link, not empty, last changed before ``older_than`` (epoch seconds), that no program holds
open for writing (a read lease is granted), with nothing at its prompt file's name. Any other
file is answered ``"look"`` (the daemon looks at it the usual way) or ``"gone"``. The process
ends at the end of its input.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import sys

Answer = list[int] | str


def claim(source: str, target: str, prompt: str, older_than: float) -> Answer:
    """Claim one file, or say why not."""
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        return "gone"
    except OSError:
        return "look"
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size == 0:
        return "look"  # quarantined, or waited for, by the daemon itself
    if st.st_mtime >= older_than or os.path.lexists(prompt):
        return "look"
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return "gone"
    except OSError:
        return "look"
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError:
        return "look"  # held open for writing, or no lease to be had here
    finally:
        os.close(fd)  # the lease ends with it
    try:
        os.rename(source, target)
    except FileNotFoundError:
        return "gone" if not os.path.lexists(source) else "look"
    except OSError:
        return "look"
    try:
        st = os.lstat(target)
    except OSError:
        return "look"
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode, st.st_nlink]


def answer(request: list) -> list[Answer]:  # type: ignore[type-arg]
    """The answers to one request, in its order."""
    folder, processing, older_than, files = request
    join = os.path.join
    return [
        claim(join(folder, name), join(processing, claimed), join(folder, prompt), older_than)
        for name, claimed, prompt in files
    ]


def main() -> None:
    # A program opening a leased file for writing breaks the lease with SIGIO, whose default
    # action would end this process; the lease lasts microseconds and needs no answer.
    signal.signal(signal.SIGIO, signal.SIG_IGN)
    for line in sys.stdin:
        sys.stdout.write(json.dumps(answer(json.loads(line))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
