"""Empty processing folders made ahead (hotfolder.daemon.spares) and claims that use them, on
real folders."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotfolder.daemon import claim
from hotfolder.daemon.spares import SpareFolders, spare_root


def _until(what: str, condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def _spares(folder: Path) -> list[Path]:
    """The spares made in ``folder``: ``spare/<batch>/<n>``."""
    parent = Path(spare_root(str(folder)))
    return sorted(p for p in parent.glob("*/*")) if parent.is_dir() else []


@pytest.fixture
def spares() -> Iterator[SpareFolders]:
    stock = SpareFolders(low_water=4)
    stock.start()
    yield stock
    stock.stop()


def test_a_folder_is_kept_stocked_and_a_scan_asks_for_more(
    tmp_path: Path, spares: SpareFolders
) -> None:
    spares.keep(str(tmp_path))
    _until("the low-water stock", lambda: len(_spares(tmp_path)) == 4)
    spares.want(str(tmp_path), 50)
    _until("a spare for each file found", lambda: len(_spares(tmp_path)) == 50)
    time.sleep(0.2)  # nothing more is made than was asked for
    assert len(_spares(tmp_path)) == 50
    assert all(p.is_dir() and not os.listdir(p) for p in _spares(tmp_path))


def test_a_claim_renames_a_spare_into_place_and_the_stock_is_topped_up(
    tmp_path: Path, spares: SpareFolders
) -> None:
    spares.keep(str(tmp_path))
    _until("the low-water stock", lambda: len(_spares(tmp_path)) == 4)
    (tmp_path / "photo.jpg").write_bytes(b"jpeg")
    spare = spares.take(str(tmp_path))
    assert spare is not None
    claimed = claim.claim(tmp_path, "photo.jpg", spare=spare)
    assert claimed is not None
    assert not os.path.exists(spare)
    assert claimed.path == claim.job_dir(tmp_path, claimed.id) / "photo.jpg"
    assert claimed.path.read_bytes() == b"jpeg"
    assert not (tmp_path / "photo.jpg").exists()
    _until("the stock topped up again", lambda: len(_spares(tmp_path)) == 4)


def test_a_claim_makes_its_own_folder_when_the_spare_is_gone(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"jpeg")
    claimed = claim.claim(tmp_path, "photo.jpg", spare=str(tmp_path / "no-such-spare"))
    assert claimed is not None
    assert claimed.path.read_bytes() == b"jpeg"


def test_a_spare_whose_file_vanished_leaves_no_processing_folder(tmp_path: Path) -> None:
    spare = Path(spare_root(str(tmp_path)), "b", "0")
    spare.mkdir(parents=True)
    assert claim.claim(tmp_path, "gone.jpg", spare=str(spare)) is None
    assert list(claim.processing_root(tmp_path).iterdir()) == []


def test_spares_a_previous_run_left_are_used_first(tmp_path: Path) -> None:
    left = Path(spare_root(str(tmp_path)), "a-batch", "0")
    left.mkdir(parents=True)
    spent = Path(spare_root(str(tmp_path)), "an-emptied-batch")
    spent.mkdir()
    stock = SpareFolders(low_water=1)
    stock.keep(str(tmp_path))  # not started: nothing is made, the one left is there
    assert not spent.exists()
    assert stock.take(str(tmp_path)) == str(left)
    assert stock.take(str(tmp_path)) is None


def test_a_batch_folder_emptied_by_claims_is_removed(tmp_path: Path, spares: SpareFolders) -> None:
    spares.keep(str(tmp_path))
    _until("the low-water stock", lambda: len(_spares(tmp_path)) == 4)
    (batch,) = {p.parent for p in _spares(tmp_path)}
    for _ in range(4):
        spare = spares.take(str(tmp_path))
        assert spare is not None and Path(spare).parent == batch
        os.rename(spare, tmp_path / Path(spare).name)  # as a claim takes it
    _until("the emptied batch folder removed", lambda: not batch.exists())
    _until("the stock made again", lambda: len(_spares(tmp_path)) == 4)


def test_a_folder_no_longer_watched_gets_no_more_spares(
    tmp_path: Path, spares: SpareFolders
) -> None:
    spares.keep(str(tmp_path))
    _until("the low-water stock", lambda: len(_spares(tmp_path)) == 4)
    spares.forget(str(tmp_path))
    assert spares.take(str(tmp_path)) is None
    spares.want(str(tmp_path), 100)
    time.sleep(0.2)
    assert len(_spares(tmp_path)) == 4


def test_a_folder_that_cannot_hold_spares_leaves_claims_to_make_their_own(
    tmp_path: Path, spares: SpareFolders
) -> None:
    (tmp_path / ".hotfolder").write_text("a file where the state folder should be")
    spares.keep(str(tmp_path))
    spares.want(str(tmp_path), 10)
    time.sleep(0.2)
    assert spares.take(str(tmp_path)) is None
