"""The simulated mark: what says, inside an image file, that a simulated server made it.

**The simulated mark.** An image whose pixels came from a simulated answer (a Venice server
that said ``X-Simulated: true``, such as the local sandbox) carries :data:`SIMULATED_MARK`,
``hotfolder: simulated (a simulated Venice server made this image, not Venice)``, in its file
metadata. :func:`mark_simulated` writes it into encoded bytes without re-encoding the pixels;
``Artifact.data`` calls it for every artifact whose ``info["simulated"]`` is true, so the
mark is in every output, whichever sink writes it, whatever format, sidecar or not, and
``strip-metadata`` does not remove it. Where it goes, and where tools show it:

* PNG: a ``tEXt`` chunk with the keyword ``Comment``, the last text chunk before the image
  data. ``identify -verbose``: ``Comment: ...``; exiftool: ``Comment``; Pillow:
  ``info["Comment"]``.
* JPEG: a ``COM`` segment after the APPn segments, so the last comment (in an MPO, before its
  ``MPF`` segment, whose offsets must not move). ``identify``: ``comment: ...``; exiftool:
  ``Comment``; Pillow: ``info["comment"]`` (every comment is in ``applist``).
* WebP: EXIF ``ImageDescription`` (0x010E) in the ``EXIF`` chunk; a simple (VP8/VP8L) file
  becomes an extended (VP8X) one. exiftool: ``Image Description``; Pillow:
  ``getexif()[0x010E]``. (ImageMagick 6 lists the EXIF profile but not its fields.)
* TIFF: ``ImageDescription`` (tag 270) in the first IFD, written as a new copy of that IFD at
  the end of the file, so no other offset moves. ``identify``: ``comment: ...``; exiftool:
  ``Image Description``; Pillow: ``tag_v2[270]``.
* GIF: a comment extension before the first image. ``identify``: ``comment: ...``;
  exiftool: ``Comment``; Pillow: ``info["comment"]``.
* BMP has no metadata: it stays unmarked (with a warning); its sidecar still says
  ``"simulated": true``.

An ``ImageDescription`` the file had already is kept, followed by ``" | "`` and the mark.
:func:`has_simulated_mark` finds the mark in any of these.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from loguru import logger
from PIL import Image

from hotfolder._gif import color_table_size, skip_sub_blocks
from hotfolder.errors import OperationError

__all__ = ["SIMULATED_MARK", "has_simulated_mark", "mark_simulated"]

SIMULATED_MARK = "hotfolder: simulated (a simulated Venice server made this image, not Venice)"
_PNG_MARK_KEYWORD = b"Comment"
_IMAGE_DESCRIPTION = 0x010E
_DESCRIPTION_JOINER = b" | "


def mark_simulated(data: bytes, *, name: str = "image") -> bytes:
    """``data`` with :data:`SIMULATED_MARK` in its metadata; the pixels are not re-encoded.

    The format is read from the magic bytes; where the mark goes in each is in the module's
    docstring. Bytes that carry the mark already come back unchanged, so marking twice is
    harmless. A BMP (which has no metadata) comes back unchanged, with a warning naming
    ``name``. Raises :class:`OperationError` when the file's structure cannot be walked.
    """
    kind = _container(data)
    marker = _MARKERS.get(kind or "")
    if marker is None:
        logger.warning(
            "{}: a {} file has no metadata to hold the simulated mark; only its sidecar says "
            "it is simulated",
            name,
            kind or "unknown",
        )
        return data
    try:
        return marker(data)
    except Exception as exc:
        msg = f"{name}: cannot write the simulated mark into this {kind} file ({exc})"
        raise OperationError(msg, hint="write the output as png or jpeg") from exc


def has_simulated_mark(data: bytes) -> bool:
    """Whether ``data`` carries :data:`SIMULATED_MARK` where :func:`mark_simulated` puts it."""
    kind = _container(data)
    finder = _FINDERS.get(kind or "")
    if finder is None:
        return False
    try:
        return finder(data)
    except Exception:  # a file whose structure cannot be walked carries no mark we wrote
        return False


def _container(data: bytes) -> str | None:
    """The file format by its magic bytes, for the formats :func:`mark_simulated` knows."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    return None


def _mark_text() -> bytes:
    return SIMULATED_MARK.encode("ascii")


# --- PNG: a tEXt chunk "Comment", the last text chunk before the image data ------------------


def _png_chunks(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """``(offset, type, body)`` of each chunk, up to and including IEND."""
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if end > len(data):
            msg = f"the {kind!r} chunk runs past the end of the file"
            raise ValueError(msg)
        yield position, kind, data[position + 8 : position + 8 + length]
        if kind == b"IEND":
            return
        position = end
    msg = "no IEND chunk"
    raise ValueError(msg)


def _png_mark_body() -> bytes:
    return _PNG_MARK_KEYWORD + b"\x00" + _mark_text()


def _png_has_mark(data: bytes) -> bool:
    body = _png_mark_body()
    return any(kind == b"tEXt" and text == body for _, kind, text in _png_chunks(data))


def _png_mark(data: bytes) -> bytes:
    body = _png_mark_body()
    insert_at = None
    for offset, kind, text in _png_chunks(data):
        if kind == b"tEXt" and text == body:
            return data
        if insert_at is None and kind in (b"IDAT", b"fcTL", b"IEND"):
            insert_at = offset
    assert insert_at is not None  # _png_chunks raised if there was no IEND
    crc = zlib.crc32(b"tEXt" + body)
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", crc)
    return data[:insert_at] + chunk + data[insert_at:]


# --- JPEG: a COM segment after the APPn segments (Pillow's info["comment"] is the last one) ---


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(offset, marker, payload)`` of each header segment, up to and including SOS."""
    position = 2
    while True:
        if data[position] != 0xFF:
            msg = f"no segment marker at byte {position}"
            raise ValueError(msg)
        while data[position + 1] == 0xFF:  # fill bytes
            position += 1
        marker = data[position + 1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length
            position += 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        if length < 2 or position + 2 + length > len(data):
            msg = f"segment 0xFF{marker:02X} at byte {position} has a bad length"
            raise ValueError(msg)
        yield position, marker, data[position + 4 : position + 2 + length]
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            return
        position += 2 + length


def _jpeg_has_mark(data: bytes) -> bool:
    text = _mark_text()
    return any(marker == 0xFE and body == text for _, marker, body in _jpeg_segments(data))


def _jpeg_mark(data: bytes) -> bytes:
    text = _mark_text()
    insert_at = None
    for offset, marker, body in _jpeg_segments(data):
        if marker == 0xFE and body == text:
            return data
        is_app_or_comment = 0xE0 <= marker <= 0xEF or marker == 0xFE
        # An MPO's offsets to its later images count from its APP2 "MPF" segment: nothing
        # may be inserted between the two, so the comment goes before that segment.
        is_mpf = marker == 0xE2 and body.startswith(b"MPF\x00")
        if insert_at is None and (is_mpf or not is_app_or_comment):
            insert_at = offset
    assert insert_at is not None  # the walk ends at SOS, which is not APPn or COM
    segment = b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text
    return data[:insert_at] + segment + data[insert_at:]


# --- WebP: EXIF ImageDescription in the EXIF chunk (an extended, VP8X, file) ---------------

_VP8X_EXIF, _VP8X_ALPHA = 0x08, 0x10


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(fourcc, payload)`` of each chunk of a WebP file."""
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = min(len(data), 8 + riff_size)
    chunks, position = [], 12
    while position + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, position)
        if position + 8 + size > end:
            msg = f"the {fourcc!r} chunk runs past the end of the file"
            raise ValueError(msg)
        chunks.append((fourcc, data[position + 8 : position + 8 + size]))
        position += 8 + size + (size & 1)
    if not chunks:
        msg = "no chunks"
        raise ValueError(msg)
    return chunks


def _webp_has_mark(data: bytes) -> bool:
    exif = next((p for fourcc, p in _riff_chunks(data) if fourcc == b"EXIF"), None)
    return exif is not None and _description_has_mark(_exif_description(exif))


def _webp_mark(data: bytes) -> bytes:
    chunks = _riff_chunks(data)
    exif = next((p for fourcc, p in chunks if fourcc == b"EXIF"), None)
    if exif is not None and _description_has_mark(_exif_description(exif)):
        return data
    marked_exif = _exif_with_mark(exif)
    first_fourcc, first = chunks[0]
    if first_fourcc == b"VP8X":
        header = bytes([first[0] | _VP8X_EXIF]) + first[1:]
        rest = chunks[1:]
    else:
        width, height, alpha = _webp_canvas(first_fourcc, first)
        flags = _VP8X_EXIF | (_VP8X_ALPHA if alpha else 0)
        header = (
            bytes([flags, 0, 0, 0])
            + (width - 1).to_bytes(3, "little")
            + (height - 1).to_bytes(3, "little")
        )
        rest = chunks
    rest = [(fourcc, p) for fourcc, p in rest if fourcc != b"EXIF"]
    # The EXIF chunk follows the image data and comes before an XMP chunk.
    xmp_at = next((i for i, (fourcc, _) in enumerate(rest) if fourcc == b"XMP "), len(rest))
    rest.insert(xmp_at, (b"EXIF", marked_exif))
    body = b"WEBP" + b"".join(_riff_chunk(f, p) for f, p in [(b"VP8X", header), *rest])
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _riff_chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def _webp_canvas(fourcc: bytes, payload: bytes) -> tuple[int, int, bool]:
    """Width, height and whether there is alpha, from a simple file's VP8 or VP8L header."""
    if fourcc == b"VP8L" and payload[:1] == b"\x2f":
        (bits,) = struct.unpack_from("<I", payload, 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    if fourcc == b"VP8 " and payload[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", payload, 6)
        return width & 0x3FFF, height & 0x3FFF, False
    msg = f"an unexpected first chunk {fourcc!r}"
    raise ValueError(msg)


def _exif_description(raw: bytes | None) -> bytes:
    """The EXIF ImageDescription of ``raw`` (a TIFF-structured block, with or without the
    ``Exif`` header), or empty."""
    if not raw:
        return b""
    exif = Image.Exif()
    exif.load(raw)
    value = exif.get(_IMAGE_DESCRIPTION)
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return bytes(value) if isinstance(value, bytes) else b""


def _description_has_mark(description: bytes) -> bool:
    return _mark_text() in description


def _marked_description(description: bytes) -> bytes:
    description = description.rstrip(b"\x00")
    return description + _DESCRIPTION_JOINER + _mark_text() if description else _mark_text()


def _exif_with_mark(raw: bytes | None) -> bytes:
    """``raw`` (or an empty EXIF block) with the mark in ImageDescription, without the
    ``Exif`` header, as WebP's EXIF chunk holds it."""
    exif = Image.Exif()
    if raw:
        exif.load(raw)
        for ifd in (0x8769, 0x8825, 0xA005):  # load the sub-IFDs so that they are written back
            if ifd in exif:
                exif.get_ifd(ifd)
    exif[_IMAGE_DESCRIPTION] = _marked_description(_exif_description(raw)).decode(
        "utf-8", "replace"
    )
    return exif.tobytes().removeprefix(b"Exif\x00\x00")


# --- TIFF: ImageDescription (270) in the first IFD, written as a new first IFD at the end ---


def _tiff_first_ifd(data: bytes) -> tuple[str, int, list[bytes], bytes]:
    """Byte order, offset, raw 12-byte entries and next-IFD pointer of the first IFD."""
    order = "<" if data[:2] == b"II" else ">"
    magic, offset = struct.unpack_from(order + "HI", data, 2)
    if magic != 42:
        msg = "BigTIFF is not supported"
        raise ValueError(msg)
    (count,) = struct.unpack_from(order + "H", data, offset)
    end = offset + 2 + 12 * count
    if end + 4 > len(data):
        msg = "the first IFD runs past the end of the file"
        raise ValueError(msg)
    entries = [data[offset + 2 + 12 * i : offset + 14 + 12 * i] for i in range(count)]
    return order, offset, entries, data[end : end + 4]


def _tiff_description(data: bytes, order: str, entries: list[bytes]) -> bytes:
    for entry in entries:
        tag, kind, count = struct.unpack_from(order + "HHI", entry)
        if tag == 270 and kind == 2:
            if count <= 4:
                return entry[8 : 8 + count].rstrip(b"\x00")
            (at,) = struct.unpack_from(order + "I", entry, 8)
            return data[at : at + count].rstrip(b"\x00")
    return b""


def _tiff_has_mark(data: bytes) -> bool:
    order, _, entries, _ = _tiff_first_ifd(data)
    return _description_has_mark(_tiff_description(data, order, entries))


def _tiff_mark(data: bytes) -> bytes:
    order, _, entries, next_ifd = _tiff_first_ifd(data)
    description = _tiff_description(data, order, entries)
    if _description_has_mark(description):
        return data
    # Append the text and a copy of the first IFD with tag 270 set, and point the header at
    # the copy: every other value stays where it was, so no offset changes.
    text = _marked_description(description) + b"\x00"
    out = bytearray(data)
    out += b"\x00" * (len(out) & 1)
    text_at = len(out)
    out += text + b"\x00" * (len(text) & 1)
    entry = struct.pack(order + "HHII", 270, 2, len(text), text_at)
    kept = [e for e in entries if struct.unpack_from(order + "H", e)[0] != 270]
    ordered = sorted([*kept, entry], key=lambda e: struct.unpack_from(order + "H", e)[0])
    ifd_at = len(out)
    out += struct.pack(order + "H", len(ordered)) + b"".join(ordered) + next_ifd
    struct.pack_into(order + "I", out, 4, ifd_at)
    return bytes(out)


# --- GIF: a comment extension before the first image ----------------------------------------


def _gif_comments(data: bytes) -> Iterator[bytes]:
    position = 13 + color_table_size(data[10])
    while position < len(data):
        block, position = data[position], position + 1
        if block == 0x21:
            label = data[position]
            end = skip_sub_blocks(data, position + 1)
            if label == 0xFE:
                yield _sub_block_payload(data, position + 1)
            position = end
        elif block == 0x2C:
            flags = data[position + 8]
            position = skip_sub_blocks(data, position + 10 + color_table_size(flags))
        else:
            return


def _sub_block_payload(data: bytes, position: int) -> bytes:
    parts = []
    while position < len(data) and data[position]:
        parts.append(data[position + 1 : position + 1 + data[position]])
        position += data[position] + 1
    return b"".join(parts)


def _gif_has_mark(data: bytes) -> bool:
    return any(_mark_text() in comment for comment in _gif_comments(data))


def _gif_mark(data: bytes) -> bytes:
    if _gif_has_mark(data):
        return data
    text = _mark_text()
    blocks = b"".join(
        bytes([len(text[i : i + 255])]) + text[i : i + 255] for i in range(0, len(text), 255)
    )
    insert_at = 13 + color_table_size(data[10])
    return data[:insert_at] + b"\x21\xfe" + blocks + b"\x00" + data[insert_at:]


_MARKERS = {
    "PNG": _png_mark,
    "JPEG": _jpeg_mark,
    "WEBP": _webp_mark,
    "TIFF": _tiff_mark,
    "GIF": _gif_mark,
}
_FINDERS = {
    "PNG": _png_has_mark,
    "JPEG": _jpeg_has_mark,
    "WEBP": _webp_has_mark,
    "TIFF": _tiff_has_mark,
    "GIF": _gif_has_mark,
}
