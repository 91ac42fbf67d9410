"""Empty processing folders made ahead of time, so that a claim is renames only.

A claim moves a file into a folder of its own (:mod:`hotfolder.daemon.claim`). Making a folder
costs ext4 about 100 µs (an inode and a block, journaled), renaming one about 15 µs: with
10,000 files present at start-up, making each job's folder at its claim was half of the time
spent claiming. A thread keeps a stock of empty folders in ``<folder>/.hotfolder/spare/``,
making them while the loop does the rest. A claim renames a spare to
``processing/<job-id>``, naming the job then (ids still sort by claim time), and then its file
into it; with no spare left it makes the folder itself.

The thread makes spares a batch at a time, each batch in a folder of its own
(``spare/<batch>/<n>``), and hands a batch over only once it is made: a ``mkdir`` holds its
parent folder's lock, and a rename out of a folder in which spares were being made waited for
it (measured: 127 µs a rename, against 11 µs out of a folder no longer written to).

Spares are empty and journaled nowhere. Those a stop leaves are used by the next run; a crash
between a spare's rename and the file's leaves an empty processing folder, which recovery
removes, as a crash between a ``mkdir`` and the rename always could.
"""

from __future__ import annotations

import collections
import os
import threading
import uuid

from loguru import logger

from hotfolder.daemon import settings

SPARE = "spare"
#: Spares kept per folder when nothing is waiting: a file that arrives is claimed by renames.
LOW_WATER = 16
#: The most spares made ahead for one folder however many files a scan found.
MOST = 20_000
#: Spares made in one batch folder before it is handed over.
BATCH = 128


def spare_root(folder_root: str) -> str:
    """``<folder>/.hotfolder/spare``."""
    return os.path.join(folder_root, settings.STATE_SUBDIR, SPARE)


class SpareFolders:
    """Stocks of empty folders, one per watched folder, kept by one thread."""

    def __init__(self, low_water: int = LOW_WATER) -> None:
        self.low_water = low_water
        self._stock: dict[str, collections.deque[str]] = {}
        #: Spares still to make, per folder.
        self._owed: dict[str, int] = {}
        self._lock = threading.Lock()
        self._work = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- the loop's side --------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spare folders", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._work.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def keep(self, folder_root: str) -> None:
        """Keep a stock for ``folder_root``: the spares a previous run left, topped up."""
        if folder_root in self._stock:
            return
        left: collections.deque[str] = collections.deque()
        for batch in _folders_in(spare_root(folder_root)):
            spares = _folders_in(batch)
            left.extend(spares)
            if not spares:
                _remove_empty(batch)
        with self._lock:
            self._stock[folder_root] = left
            self._owed[folder_root] = max(0, self.low_water - len(left))
        self._work.set()

    def forget(self, folder_root: str) -> None:
        """Stop stocking ``folder_root`` (no longer watched); its spares stay for a next run."""
        with self._lock:
            self._stock.pop(folder_root, None)
            self._owed.pop(folder_root, None)

    def want(self, folder_root: str, count: int) -> None:
        """``count`` files are about to be claimed in ``folder_root``: have spares for them."""
        with self._lock:
            stock = self._stock.get(folder_root)
            if stock is None:
                return
            short = min(count, MOST) - len(stock) - self._owed[folder_root]
            if short <= 0:
                return
            self._owed[folder_root] += short
        self._work.set()

    def take(self, folder_root: str) -> str | None:
        """A spare of ``folder_root`` for a claim, or None (the claim makes its own folder)."""
        with self._lock:
            stock = self._stock.get(folder_root)
            if stock is None:
                return None
            if stock:
                spare = stock.popleft()
                if len(stock) + self._owed[folder_root] < self.low_water:
                    self._owed[folder_root] += 1
                    self._work.set()
                return spare
            # The claim makes one itself: one fewer to make.
            self._owed[folder_root] = max(0, self._owed[folder_root] - 1)
            return None

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        spent: list[str] = []  # batch folders handed over, to remove once emptied by claims
        while not self._stopping:
            self._work.wait()
            self._work.clear()
            spent = [batch for batch in spent if not _remove_empty(batch)]
            for folder_root in self._due():
                spent += self._make(folder_root)

    def _due(self) -> list[str]:
        with self._lock:
            return [root for root, owed in self._owed.items() if owed > 0]

    def _make(self, folder_root: str) -> list[str]:
        """Make the spares owed to ``folder_root``, a batch folder at a time; the batch
        folders made."""
        batches: list[str] = []
        while not self._stopping:
            with self._lock:
                count = min(self._owed.get(folder_root, 0), BATCH)
            if count <= 0:
                break
            batch = os.path.join(spare_root(folder_root), uuid.uuid4().hex)
            made: list[str] = []
            try:
                os.makedirs(batch)
                for n in range(count):
                    os.mkdir(path := os.path.join(batch, str(n)))
                    made.append(path)
            except OSError as exc:
                # The folder is unreachable or full: claims make their own folders (and
                # report what is wrong); try again when more are wanted.
                logger.debug("cannot make a spare folder in {}: {}", batch, exc)
                with self._lock:
                    if folder_root in self._owed:
                        self._owed[folder_root] = 0
            batches.append(batch)
            with self._lock:
                stock = self._stock.get(folder_root)
                if stock is None:
                    break
                stock.extend(made)
                self._owed[folder_root] = max(0, self._owed[folder_root] - len(made))
            if len(made) < count:
                break
        return batches


def _folders_in(path: str) -> list[str]:
    """The folders (not links to them) in ``path``; none when it cannot be read."""
    try:
        with os.scandir(path) as entries:
            return [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _remove_empty(path: str) -> bool:
    """Remove the folder ``path`` if it is empty; whether it is gone."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
