"""The colour space a HEIF names in its ``nclx`` box, as an ICC profile.

A HEIF (or AVIF) says what its pixels mean either by an embedded ICC profile or by an ``nclx``
colour box: code points of ITU-T H.273 for the primaries and the transfer characteristics.
pillow-heif hands the box over as ``info["nclx_profile"]``, with the primaries spelt out as
chromaticities. :func:`icc_for_nclx` turns it into an ICC v4 matrix/TRC display profile (the
primaries as XYZ adapted to the D50 of the profile connection space with the Bradford
transform, the white point, a tone curve), so that such an image is converted to sRGB like one
with an embedded Display P3 or BT.2020 profile (:mod:`hotfolder.colour`).

Only standard-dynamic-range transfers are mapped: PQ and HLG (HDR) and unknown codes give no
profile, and the pixels are taken as they are.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["icc_for_nclx", "rgb_profile"]

_Vector = tuple[float, float, float]
_Matrix = tuple[_Vector, _Vector, _Vector]

#: H.273 colour primaries by code, for the profile's name (others: "nclx primaries N").
_PRIMARIES = {1: "BT.709", 9: "BT.2020", 11: "DCI-P3", 12: "Display P3", 22: "EBU 3213"}
#: Codes whose primaries and white are sRGB's (BT.709; 2: unspecified, taken as sRGB).
_SRGB_PRIMARIES = frozenset({1, 2})
#: The sRGB tone curve as an ICC parametric curve of type 3 (g, a, b, c, d).
_SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
#: H.273 transfer characteristics by code, as the curve a display shows them with: the
#: BT.709 family (1, 6, 14, 15) and unspecified (2) as sRGB's curve, as browsers do.
_CURVES: dict[int, tuple[float, ...]] = {
    1: _SRGB_CURVE, 2: _SRGB_CURVE, 6: _SRGB_CURVE, 13: _SRGB_CURVE, 14: _SRGB_CURVE,
    15: _SRGB_CURVE, 4: (2.2,), 5: (2.8,), 8: (1.0,),
}  # fmt: skip
#: The profile connection space's white (D50), as ICC gives it.
_PCS_WHITE: _Vector = (0.9642, 1.0, 0.8249)
_BRADFORD: _Matrix = (
    (0.8951, 0.2664, -0.1614),
    (-0.7502, 1.7135, 0.0367),
    (0.0389, -0.0685, 1.0296),
)


def icc_for_nclx(nclx: Mapping[str, Any]) -> bytes | None:
    """An ICC profile of the colour space ``nclx`` names (pillow-heif's ``nclx_profile``), or
    None when that is sRGB, a transfer other than a standard-dynamic-range one (PQ, HLG), or
    not spelt out."""
    primaries, transfer = nclx.get("color_primaries"), nclx.get("transfer_characteristics")
    curve = _CURVES.get(transfer) if isinstance(transfer, int) else None
    if curve is None or not isinstance(primaries, int):
        return None
    if primaries in _SRGB_PRIMARIES and curve == _SRGB_CURVE:
        return None
    try:
        xy = [
            (float(nclx[f"color_primary_{c}_x"]), float(nclx[f"color_primary_{c}_y"]))
            for c in ("red", "green", "blue", "white")
        ]
        to_pcs = _to_pcs(xy[:3], xy[3])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    name = f"{_PRIMARIES.get(primaries, f'nclx primaries {primaries}')} (from the HEIF's nclx)"
    return rgb_profile(name, to_pcs, curve)


def rgb_profile(name: str, to_pcs: Sequence[Sequence[float]], curve: tuple[float, ...]) -> bytes:
    """An ICC v4.3 matrix/TRC display profile named ``name``: ``to_pcs`` takes linear RGB to
    the connection space's D50 XYZ (its columns are the colorants), ``curve`` is the tone
    curve of every channel (a gamma, or the five parameters of sRGB's form)."""
    trc = _para(curve)
    columns = [(b"rXYZ", 0), (b"gXYZ", 1), (b"bXYZ", 2)]
    tags = [
        (b"desc", _mluc(name)),
        (b"cprt", _mluc("No copyright")),
        (b"wtpt", _xyz(_PCS_WHITE)),
        *((tag, _xyz([row[i] for row in to_pcs])) for tag, i in columns),
        (b"rTRC", trc),
        (b"gTRC", trc),
        (b"bTRC", trc),
    ]
    return _profile(tags)


def _to_pcs(primaries: Sequence[tuple[float, float]], white: tuple[float, float]) -> _Matrix:
    """Linear RGB to the D50 XYZ of the connection space: the primaries scaled so that RGB
    1, 1, 1 is ``white``, then adapted from ``white`` to D50 (Bradford)."""
    columns = [_from_xy(p) for p in primaries]
    rgb_to_xyz: _Matrix = _rows(lambda r, c: columns[c][r])
    white_xyz = _from_xy(white)
    scale = _apply(_inverse(rgb_to_xyz), white_xyz)
    scaled = _rows(lambda r, c: rgb_to_xyz[r][c] * scale[c])
    cone_from, cone_to = _apply(_BRADFORD, white_xyz), _apply(_BRADFORD, _PCS_WHITE)
    gain = _rows(lambda r, c: cone_to[r] / cone_from[r] if r == c else 0.0)
    adapt = _times(_inverse(_BRADFORD), _times(gain, _BRADFORD))
    return _times(adapt, scaled)


def _from_xy(xy: tuple[float, float]) -> _Vector:
    x, y = xy
    return x / y, 1.0, (1 - x - y) / y


def _rows(cell: Callable[[int, int], float]) -> _Matrix:
    a, b, c = ((cell(r, 0), cell(r, 1), cell(r, 2)) for r in range(3))
    return a, b, c


def _times(a: _Matrix, b: _Matrix) -> _Matrix:
    return _rows(lambda r, c: sum(a[r][k] * b[k][c] for k in range(3)))


def _apply(m: _Matrix, v: Sequence[float]) -> _Vector:
    a, b, c = (sum(m[r][k] * v[k] for k in range(3)) for r in range(3))
    return a, b, c


def _inverse(m: _Matrix) -> _Matrix:
    def minor(r: int, c: int) -> float:
        (a, b), (d, e) = ([m[i][j] for j in range(3) if j != c] for i in range(3) if i != r)
        return a * e - b * d

    det = sum((-1) ** c * m[0][c] * minor(0, c) for c in range(3))
    return _rows(lambda r, c: (-1) ** (r + c) * minor(c, r) / det)


def _fixed(v: float) -> bytes:
    """An s15Fixed16Number."""
    return struct.pack(">i", round(v * 65536))


def _xyz(v: Sequence[float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_fixed(x) for x in v)


def _para(params: tuple[float, ...]) -> bytes:
    """A parametricCurveType: a pure gamma (type 0), or type 3 (sRGB's form)."""
    kind = 0 if len(params) == 1 else 3
    return b"para\0\0\0\0" + struct.pack(">HH", kind, 0) + b"".join(_fixed(p) for p in params)


def _mluc(text: str) -> bytes:
    """A multiLocalizedUnicodeType of one record (English, US)."""
    body = text.encode("utf-16-be")
    return (
        b"mluc\0\0\0\0"
        + struct.pack(">II", 1, 12)
        + b"enUS"
        + struct.pack(">II", len(body), 28)
        + body
    )


def _profile(tags: Sequence[tuple[bytes, bytes]]) -> bytes:
    """An ICC v4.3 RGB display profile with ``tags``, each 4-byte aligned."""
    start = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags:
        table += signature + struct.pack(">II", start + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    header = b"".join(
        [
            struct.pack(">I", start + len(data)),
            b"\0\0\0\0",  # no preferred CMM
            bytes((4, 0x30, 0, 0)),  # version 4.3
            b"mntrRGB XYZ ",  # a display profile, RGB to XYZ
            b"\0" * 12,  # no date
            b"acsp",
            b"\0" * 28,  # platform, flags, manufacturer, model, attributes, intent (perceptual)
            b"".join(_fixed(v) for v in _PCS_WHITE),
            b"\0" * 48,  # creator, profile id, reserved
        ]
    )
    return header + table + data
