"""Benchmark 9's own arithmetic: the sliding window's bound and the distinct copies it sends."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from tests.bench.common import venice_photos
from tests.bench.real_rate import distinct_copies, window_bound


def test_bound_repeats_the_first_window_a_window_later() -> None:
    # 4 a minute; the first 4 admitted at 1, 2, 3, 4 s after launch; the run ended 0.5 s after
    # the last admission. Fastest: 5-8 at 61-64, 9 at 121; then the 0.5 s tail.
    admitted = [1, 2, 3, 4, 62, 62.5, 66, 66, 125.0]
    bound = window_bound(admitted, 0.0, 125.5, limit=4, window=60)
    assert bound == pytest.approx(121.5), (
        "window_bound: request k > limit should be admitted at b_(k-limit) + window and the "
        "tail after the last admission added; fix the recursion in tests/bench/real_rate.py"
    )


def test_bound_equals_the_time_when_the_window_never_binds() -> None:
    admitted = [3.0, 1.0, 2.0]  # order of recording does not matter
    assert window_bound(admitted, 0.0, 4.0, limit=20, window=60) == pytest.approx(4.0), (
        "with fewer requests than the limit the bound is the run itself: see window_bound"
    )


def test_bound_needs_an_admitted_request() -> None:
    with pytest.raises(ValueError, match="admitted no request"):
        window_bound([], 0.0, 1.0, limit=20, window=60)


def test_distinct_copies_differ_in_bytes_not_pixels(tmp_path: Path) -> None:
    sources = venice_photos()
    distinct_copies(sources, 2 * len(sources), tmp_path)
    copies = sorted(tmp_path.iterdir())
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in copies}
    assert len(digests) == len(copies) == 2 * len(sources), (
        f"distinct_copies wrote byte-identical copies in {tmp_path}: hotfolder would pay for "
        "them once; mark each copy (tests/bench/real_rate.py)"
    )
    for copy in copies:
        source = next(s for s in sources if copy.name.startswith(f"{s.stem}-"))
        with Image.open(copy) as got, Image.open(source) as want:
            assert (got.format, got.size, got.mode) == (want.format, want.size, want.mode), copy
            diff = ImageChops.difference(got.convert("RGBA"), want.convert("RGBA")).getbbox()
        assert diff is None, f"{copy}: its pixels differ from {source}; mark it without re-encoding"
