"""The one local-file policy: what is never read (links, hard links, special files), what
``[resolvers.path]`` may allow, and how the daemon finds the configured policy."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import pytest

from hotfolder.config import validate_config
from hotfolder.errors import InputError, UnsafeInputError
from hotfolder.localfiles import (
    STRICT,
    LocalFile,
    LocalFilePolicy,
    open_regular,
    policy_for,
    read_local,
    stat_path,
    unsafe_reason,
)
from hotfolder.plugins import build_registry, make_plugin_manager


def test_unsafe_reasons(tmp_path):
    regular = tmp_path / "a.jpg"
    regular.write_bytes(b"x")
    assert unsafe_reason(regular.lstat()) is None
    (tmp_path / "link.jpg").symlink_to(regular)
    assert "symbolic link" in unsafe_reason((tmp_path / "link.jpg").lstat())
    os.mkfifo(tmp_path / "pipe.jpg")
    assert "FIFO" in unsafe_reason((tmp_path / "pipe.jpg").lstat())
    os.link(regular, tmp_path / "hard.jpg")
    assert "2 hard links" in unsafe_reason(regular.lstat())
    assert "device" in unsafe_reason(os.lstat("/dev/null"))


def test_open_regular_never_follows_a_link_or_blocks_on_a_fifo(tmp_path):
    target = tmp_path / "t.jpg"
    target.write_bytes(b"x")
    (tmp_path / "l.jpg").symlink_to(target)
    with pytest.raises(OSError):
        open_regular(tmp_path / "l.jpg")
    os.mkfifo(tmp_path / "p.jpg")
    with pytest.raises(ValueError, match="FIFO"):
        open_regular(tmp_path / "p.jpg")  # returns at once: O_NONBLOCK


def test_hard_links_are_read_only_when_allowed(tmp_path):
    regular = tmp_path / "a.jpg"
    regular.write_bytes(b"bytes")
    os.link(regular, tmp_path / "hard.jpg")
    allow = LocalFilePolicy(allow_hardlinks=True)
    assert unsafe_reason(regular.lstat(), allow) is None
    with pytest.raises(ValueError, match="2 hard links"):
        open_regular(regular)
    os.close(open_regular(regular, allow))
    with pytest.raises(UnsafeInputError, match="2 hard links"):
        read_local(regular)
    assert read_local(regular, allow) == b"bytes"


def test_links_are_followed_only_when_allowed(tmp_path):
    target = tmp_path / "t.jpg"
    target.write_bytes(b"bytes")
    link = tmp_path / "l.jpg"
    link.symlink_to(target)
    follow = LocalFilePolicy(follow_symlinks=True)
    assert stat_path(link).st_ino == link.lstat().st_ino
    assert stat_path(link, follow).st_ino == target.stat().st_ino
    assert unsafe_reason(stat_path(link, follow), follow) is None
    os.close(open_regular(link, follow))
    with pytest.raises(UnsafeInputError, match="symbolic link"):
        read_local(link)
    assert read_local(link, follow) == b"bytes"

    dangling = tmp_path / "d.jpg"
    dangling.symlink_to(tmp_path / "nowhere.jpg")
    assert "symbolic link to nothing" in unsafe_reason(stat_path(dangling, follow), follow)
    fifo = tmp_path / "p.jpg"
    os.mkfifo(fifo)
    (tmp_path / "to-fifo.jpg").symlink_to(fifo)
    assert "FIFO" in unsafe_reason(stat_path(tmp_path / "to-fifo.jpg", follow), follow)


def test_read_local_caps_bytes_only_when_told(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x" * 3_000_000)
    assert len(read_local(path)) == 3_000_000
    with pytest.raises(InputError, match="over the limit of 1000"):
        read_local(path, LocalFilePolicy(max_bytes=1000))
    with pytest.raises(InputError, match="does not exist"):
        read_local(tmp_path / "nope.jpg")


def test_the_policy_comes_from_resolvers_path():
    registry = build_registry(make_plugin_manager(load_entrypoints=False))
    assert policy_for(validate_config({}, registry)) == STRICT
    raw = {"resolvers": {"path": {"allow_hardlinks": True, "follow_symlinks": True}}}
    policy = policy_for(validate_config(raw, registry))
    assert policy == LocalFilePolicy(follow_symlinks=True, allow_hardlinks=True)


def test_a_local_file_is_read_again_only_while_it_holds_the_same_bytes(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 200_000)
    file, data = LocalFile.read(path)
    assert data == b"x" * 200_000
    assert (file.size, file.sha256) == (200_000, hashlib.sha256(data).hexdigest())
    assert file.read_bytes() == data
    with file.open() as reader:  # streamed in the chunks asked for, then checked at the end
        chunks = iter(lambda: reader.read(65_536), b"")
        assert [len(c) for c in chunks] == [65_536, 65_536, 65_536, 3_392]
        reader.seek(0)  # a retry sends it again from the start
        assert reader.read() == data
        assert reader.read() == b""
    path.write_bytes(b"y" * 200_000)  # the same size, other bytes
    for again in (file.read_bytes, lambda: file.open().read()):
        with pytest.raises(InputError) as caught:
            again()
        assert caught.value.message == f"{path} changed while hotfolder was working on it"
        assert "move them in when complete" in (caught.value.hint or "")


def test_a_settled_file_is_read_again_without_hashing_it(tmp_path, monkeypatch):
    """A file last changed SETTLED_SECONDS or more before it was read is compared by its
    identity, size and times when read again (a later write moves its change time); a file
    changed more lately is compared by its bytes' sha256 too."""
    from hotfolder import localfiles

    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 1000)
    fresh, data = LocalFile.read(path)
    assert not fresh.settled  # written just now
    monkeypatch.setattr(localfiles, "SETTLED_SECONDS", 0.0)
    settled, _ = LocalFile.read(path)
    assert settled.settled

    hashed: list[int] = []
    real_sha256 = hashlib.sha256

    def counting_sha256(data: bytes = b"") -> Any:
        hashed.append(len(data))
        return real_sha256(data)

    monkeypatch.setattr(localfiles.hashlib, "sha256", counting_sha256)
    assert settled.read_bytes() == data and hashed == []
    assert fresh.read_bytes() == data and hashed == [1000]
    time.sleep(0.05)  # past the kernel's clock tick: the write gets a later change time
    with path.open("r+b") as writer:  # the same size, another byte
        writer.seek(500)
        writer.write(b"y")
    with pytest.raises(InputError, match="changed while hotfolder was working on it"):
        settled.read_bytes()


def test_a_local_file_checked_without_reading_it(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 1000)
    file, _ = LocalFile.read(path)
    file.check()  # unchanged: nothing raised
    os.utime(path, ns=(0, 0))  # a change time that cannot be set back: a write, or a touch
    for changed in ("touched", "replaced", "gone"):
        if changed == "replaced":
            (tmp_path / "b.bin").write_bytes(b"x" * 1000)
            os.replace(tmp_path / "b.bin", path)
        elif changed == "gone":
            path.unlink()
        with pytest.raises(InputError, match="changed while hotfolder was working on it"):
            file.check()


def test_a_reader_refuses_bytes_changed_while_it_streams_them(tmp_path):
    """A writer changing the file after the reader opened it (the file's times were checked
    then): the last read raises instead of ending, so that a request is never completed."""
    path = tmp_path / "a.bin"
    path.write_bytes(b"a" * 1000)
    file, _ = LocalFile.read(path)
    with file.open() as reader:
        assert reader.read(500) == b"a" * 500
        with path.open("r+b") as writer:  # the same size, another byte in the part not read
            writer.seek(900)
            writer.write(b"b")
        assert reader.read(999) == b"a" * 400 + b"b" + b"a" * 99
        with pytest.raises(InputError, match="changed while hotfolder was working on it"):
            reader.read(999)
    path.write_bytes(b"a" * 1001)  # grown
    with pytest.raises(InputError, match="changed"):
        file.read_bytes()


def test_a_local_file_is_reopened_under_its_policy(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"data")
    file, _ = LocalFile.read(path)
    path.unlink()
    (tmp_path / "elsewhere").write_bytes(b"data")
    path.symlink_to(tmp_path / "elsewhere")  # a link swapped in: never read through
    with pytest.raises(UnsafeInputError, match="symbolic link"):
        file.read_bytes()
    path.unlink()
    with pytest.raises(InputError, match="does not exist"):
        file.open()
