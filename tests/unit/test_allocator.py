"""The CLI fixes glibc's mmap threshold for the commands that hold images: checked on the real
allocator, in a fresh process each (the setting is the process's)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"),
    reason="glibc only",
)

#: Frees an 8 MiB block (glibc's sliding threshold then rises to 8 MiB), then asks for 2 MiB and
#: prints whether that came from its own mmap (given back to the system when freed) or from
#: the heap.
PROBE = """
import ctypes, sys

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
if sys.argv[1] == "fix":
    from hotfolder.cli._allocator import fix_mmap_threshold
    print("fixed" if fix_mmap_threshold() else "left")
libc.free(libc.malloc(8 << 20))
before = libc.mallinfo2().hblks
block = libc.malloc(2 << 20)
print("mmap" if libc.mallinfo2().hblks > before else "heap")
"""


def _probe(mode: str, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


def test_glibc_alone_serves_a_2_mib_block_from_the_heap_after_a_larger_one_was_freed() -> None:
    assert _probe("plain") == ["heap"]


def test_with_the_threshold_fixed_a_2_mib_block_is_mapped_and_so_given_back_when_freed() -> None:
    assert _probe("fix") == ["fixed", "mmap"]


def test_the_users_own_malloc_setting_wins() -> None:
    assert _probe("fix", MALLOC_MMAP_THRESHOLD_=str(32 << 20)) == ["left", "heap"]
