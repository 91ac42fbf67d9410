"""hotfolder.fsutil: atomic writes with names at the file system's limit, and the reading of a
failed write (wait and try again, or fail)."""

from __future__ import annotations

import errno

import pytest

from hotfolder.errors import SinkError, StorageUnavailable
from hotfolder.fsutil import atomic_write, write_failure


@pytest.mark.parametrize(
    "code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ENOENT, errno.EIO]
)
def test_a_full_read_only_or_vanished_place_is_waited_for(code):
    error = write_failure(OSError(code, "whatever the OS says"), "cannot write out/a.png")
    assert isinstance(error, StorageUnavailable)
    assert error.holds and error.retryable
    assert error.message == "cannot write out/a.png: whatever the OS says"
    assert "tried again" in (error.hint or "")


@pytest.mark.parametrize("code", [errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG])
def test_a_wrong_place_fails_the_job(code):
    error = write_failure(OSError(code, "no"), "cannot write out/a.png")
    assert type(error) is SinkError
    assert not error.holds and not error.retryable


def test_an_atomic_write_of_a_name_at_the_limit_works(tmp_path):
    name = "写" * 80 + ".json"  # 245 bytes: its temporary name would not fit
    atomic_write(tmp_path / name, b"{}")
    assert (tmp_path / name).read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == [name]
