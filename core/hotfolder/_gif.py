"""Walking a GIF's blocks: shared by the imaging gate (frame extents) and the simulated mark
(comment extensions)."""

from __future__ import annotations


def color_table_size(flags: int) -> int:
    """The bytes of the colour table that ``flags`` (a screen or image descriptor) announces."""
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def skip_sub_blocks(data: bytes, position: int) -> int:
    """The position after the data sub-blocks that start at ``position``."""
    while position < len(data) and data[position]:
        position += data[position] + 1
    return position + 1
