"""Damaged images made here, for failures the shared corpus does not cover."""

from __future__ import annotations

import io
import struct

from PIL import Image

#: What :func:`tiff_with_samples` declares: Pillow logs "More samples per pixel than can be
#: decoded: 303169682" (a log record, not an exception) before it gives up on the file.
SAMPLES = 303_169_682


def tiff_with_samples(samples: int = SAMPLES) -> bytes:
    """A small RGB TIFF whose SamplesPerPixel tag (277) is rewritten to ``samples`` (LONG)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 277:
            struct.pack_into("<HHII", data, entry, 277, 4, 1, samples)
            return bytes(data)
    raise AssertionError("Pillow wrote a TIFF without SamplesPerPixel")
