"""Readiness: the ignore list, name filters, unsafe file types, header checks, quiet periods.
What counts as unsafe is tested with the policy itself, in test_localfiles."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from hotfolder.daemon.readiness import Candidate, NameFilter, check, header_state
from hotfolder.localfiles import LocalFilePolicy

IMAGES = NameFilter(include=("*.jpg", "*.jpeg", "*.png"))


@pytest.mark.parametrize(
    "name",
    [
        ".hidden.jpg", ".photo.jpg.Xa81Zq", "photo.jpg.part", "photo.jpg.crdownload", "photo.tmp",
        "photo.jpg.download", "photo.jpg.filepart", "~$photo.jpg", ".~lock.photo.jpg#",
        ".DS_Store", "._photo.jpg", "Thumbs.db", "desktop.ini", ".syncthing.photo.jpg.tmp",
        "~syncthing~photo.jpg.tmp", "sub/.hotfolder/x.jpg", ".hotfolder/processing/1/x.jpg",
    ],
)  # fmt: skip
def test_temp_junk_and_hidden_names_are_never_taken(name):
    assert IMAGES.ignored(name)
    assert not IMAGES.wanted(name)


def test_globs_are_case_insensitive_unless_asked():
    assert IMAGES.wanted("IMG_0001.JPG")
    assert not NameFilter(include=("*.jpg",), case_sensitive=True).wanted("IMG_0001.JPG")
    assert not NameFilter(include=("*.jpg",), exclude=("draft-*",)).wanted("Draft-1.jpg")
    assert not NameFilter(include=("*.jpg",), ignore=("*-proof.jpg",)).wanted("a-proof.jpg")
    assert NameFilter(include=("*.png",)).wanted("order.job.toml")  # manifests are jobs too
    assert not IMAGES.wanted("notes.txt")


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_header_state_sees_placeholders_and_missing_end_markers(tmp_path, fmt):
    data = _encoded(fmt)
    path = tmp_path / "x"
    path.write_bytes(b"")
    assert header_state(str(path)) == "empty"
    path.write_bytes(data[: len(data) // 2])
    assert header_state(str(path)) == "incomplete"
    path.write_bytes(data)
    assert header_state(str(path)) == "ok"


def test_quiet_period_resets_on_change_and_close_write_is_ready_at_once(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(_encoded("PNG"))
    cand = Candidate(str(path))
    assert check(cand, 1.0, now=100.0)[0] == "wait"
    assert check(cand, 1.0, now=100.5)[0] == "wait"
    with path.open("ab") as f:
        f.write(b"more")
    os.utime(path, ns=(1, 1))
    assert check(cand, 1.0, now=100.9)[0] == "wait"  # changed: the period starts again
    assert check(cand, 1.0, now=101.5)[0] == "wait"
    assert check(cand, 1.0, now=102.0)[0] == "ready"

    arrived = Candidate(str(path))
    from hotfolder.daemon.readiness import Signature

    arrived.arrived = Signature.of(path.lstat())
    assert check(arrived, 60.0, now=0.0)[0] == "ready"
    arrived.opened = 1  # someone still has it open: wait
    arrived.sig = None
    assert check(arrived, 60.0, now=1.0)[0] == "wait"


def test_a_gone_or_unsafe_candidate_is_reported(tmp_path):
    assert check(Candidate(str(tmp_path / "none.png")), 0.1, now=0)[0] == "gone"
    (tmp_path / "l.png").symlink_to(tmp_path / "none.png")
    assert check(Candidate(str(tmp_path / "l.png")), 0.1, now=0)[0] == "unsafe"


def test_links_are_unsafe_unless_the_policy_allows_them(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(_encoded("PNG"))
    os.link(path, tmp_path / "second-name.png")
    (tmp_path / "link.png").symlink_to(path)
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    assert check(Candidate(str(path)), 0, now=100.0)[0] == "unsafe"
    assert check(Candidate(str(tmp_path / "link.png")), 0, now=100.0)[0] == "unsafe"

    hard_links = LocalFilePolicy(allow_hardlinks=True)
    follow = LocalFilePolicy(follow_symlinks=True, allow_hardlinks=True)
    for policy, name in [(hard_links, "a.png"), (follow, "link.png")]:
        cand = Candidate(str(tmp_path / name))
        assert check(cand, 0, now=100.0, policy=policy)[0] == "wait"  # first look
        state, st = check(cand, 0, now=100.1, policy=policy)
        assert state == "ready"
        assert st is not None and st.st_ino == path.stat().st_ino  # the file, not the link
    assert check(Candidate(str(tmp_path / "link.png")), 0, 100.0, hard_links)[0] == "unsafe"
    assert check(Candidate(str(tmp_path / "dangling.png")), 0, 100.0, follow)[0] == "unsafe"


def _noisy(fmt: str, **options: object) -> bytes:
    import hotfolder.imaging  # noqa: F401  (registers the HEIF opener)

    buffer = io.BytesIO()
    Image.effect_noise((160, 120), 40).convert("RGB").save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("WEBP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("BMP", {}),
        ("HEIF", {}),
        ("AVIF", {}),
    ],
)
def test_header_state_sees_cut_webp_tiff_bmp_heic_and_avif(tmp_path, fmt, options):
    data = _noisy(fmt, **options)
    path = tmp_path / "x"
    for cut in (12, len(data) // 3, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        assert header_state(str(path)) == "incomplete", cut
    path.write_bytes(data)
    assert header_state(str(path)) == "ok"


def test_a_writer_closing_between_appended_chunks_is_taken_once_whole(tmp_path):
    from hotfolder.daemon.readiness import Signature

    data = _noisy("WEBP")
    path = tmp_path / "slow.webp"
    cand = Candidate(str(path))
    chunks = [data[i : i + len(data) // 5] for i in range(0, len(data), len(data) // 5)]
    now = 0.0
    for i, chunk in enumerate(chunks):
        with path.open("ab") as f:
            f.write(chunk)
        os.utime(path, ns=(i + 1, i + 1))
        cand.arrived = Signature.of(path.lstat())  # the close-write event
        state = check(cand, 2.0, now=now)[0]
        whole = path.stat().st_size == len(data)
        assert state == ("ready" if whole else "wait"), i
        if not whole:
            assert cand.why == "incomplete image"
        now += 3.5


def test_why_a_file_waits(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    cand = Candidate(str(path))
    assert check(cand, 1.0, now=0.0)[0] == "wait" and cand.why == "quiet period"
    assert check(cand, 1.0, now=2.0)[0] == "empty" and cand.why == "empty"
    path.write_bytes(_encoded("PNG")[:30])
    assert check(cand, 1.0, now=3.0)[0] == "wait" and cand.why == "being written"
    assert check(cand, 1.0, now=3.5)[0] == "wait" and cand.why == "quiet period"
    assert check(cand, 1.0, now=4.5)[0] == "wait" and cand.why == "incomplete image"


def test_why_a_name_is_not_taken():
    names = NameFilter(include=("*.jpg",), exclude=("draft-*",), ignore=("*-proof.jpg",))
    assert names.why_not("a.jpg") is None
    assert names.why_not("a.jpg.part") == "temp name"
    assert names.why_not(".DS_Store") == "temp name"
    assert names.why_not("a-proof.jpg") == "ignored"
    assert names.why_not("draft-1.jpg") == "excluded"
    assert names.why_not("readme.txt") == "not in include"


def test_an_old_file_found_by_a_scan_is_taken_at_once_unless_held_open(tmp_path):
    """A scan (start-up, rescan) finding a file whose mtime is older than the quiet period,
    and that no program has open for writing, takes it at the first look; a recent one, or
    one a writer still holds, waits the quiet period as before."""
    import time

    from hotfolder.daemon.readiness import held_for_writing

    old, recent = tmp_path / "old.png", tmp_path / "recent.png"
    for path in (old, recent):
        path.write_bytes(_encoded("PNG"))
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))

    state, _ = check(Candidate(str(old), scanned=True), 60.0, now=100.0)
    assert state == "ready", f"{old} is an hour old and closed: it should be taken at once"
    recent_cand = Candidate(str(recent), scanned=True)
    assert check(recent_cand, 60.0, now=100.0)[0] == "wait"
    assert recent_cand.why == "quiet period"
    # named by an event rather than found by a scan: the quiet period applies as before
    assert check(Candidate(str(old)), 60.0, now=100.0)[0] == "wait"

    with old.open("ab"):  # a writer has it open (it appends nothing yet)
        if held_for_writing(str(old)) is None:
            pytest.skip("this file system grants no read leases: nothing tells a held file")
        held = Candidate(str(old), scanned=True)
        assert check(held, 60.0, now=100.0)[0] == "wait"
        assert check(held, 60.0, now=200.0)[0] == "wait"  # however long it is quiet
        assert held.why == "open for writing"
    assert check(held, 60.0, now=201.0)[0] == "ready"  # closed: taken


def test_the_look_for_a_writer_leaves_no_lease_behind(tmp_path):
    """The read lease that tells a file held for writing ends with the look: a program that
    opens the file for writing afterwards is not made to wait for a lease break."""
    from hotfolder.daemon.readiness import held_for_writing

    path = tmp_path / "photo.png"
    path.write_bytes(_encoded("PNG"))
    found = held_for_writing(str(path))
    if found is None:
        pytest.skip("this file system grants no read leases")
    assert found is False
    # With a lease still held, a non-blocking open for writing fails with EWOULDBLOCK.
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    os.close(fd)
    assert held_for_writing(str(path)) is False  # and the next look is granted one again
