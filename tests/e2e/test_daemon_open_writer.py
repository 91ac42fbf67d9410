"""A writer that holds its file open, pauses longer than the quiet period, then rewrites it:
the daemon waits until the file is closed (Linux refuses a read lease while a writer holds it)
and the output comes from the final bytes. The folder is polled, so no open or close event
helps; only the lease check does."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from tests.helpers.daemon import Daemon, convert_to_png_config, files_under

pytestmark = pytest.mark.e2e

CONFIG = convert_to_png_config(observer="polling", poll_seconds=0.2)

WRITER = textwrap.dedent(
    """
    import sys, time
    first, final, target = sys.argv[1:4]
    with open(target, "wb") as f:
        f.write(open(first, "rb").read())  # a whole, valid PNG
        f.flush()
        time.sleep(3)  # ten quiet periods, still open
        f.seek(0)
        f.truncate()
        f.write(open(final, "rb").read())
        f.flush()
        time.sleep(0.5)
    """
)


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 50).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.skipif(sys.platform != "linux", reason="file leases are a Linux feature")
def test_a_file_held_open_is_taken_only_once_closed(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "first.png").write_bytes(png((64, 48)))
    (tmp_path / "final.png").write_bytes(png((80, 60)))
    with Daemon(tmp_path) as daemon:
        daemon.start()
        subprocess.run(
            [sys.executable, "-c", WRITER, "first.png", "final.png", "inbox/slow.png"],
            cwd=tmp_path,
            check=True,
        )
        rows = daemon.wait_states(done=1)
    assert len(rows) == 1
    (output,) = files_under(tmp_path / "out")
    with Image.open(output) as image:
        assert image.size == (80, 60)  # the final bytes, not the first ones
    (archived,) = files_under(tmp_path / "inbox" / ".hotfolder" / "archive")
    assert archived.read_bytes() == (tmp_path / "final.png").read_bytes()
