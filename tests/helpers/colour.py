"""Colour test material made here, with no profile files from elsewhere: ICC v4 matrix/TRC
profiles built from a colour space's published primaries (Display P3, Adobe RGB (1998),
ProPhoto RGB), and CIE76 ΔE computed from the sRGB formulas (IEC 61966-2-1) by hand, so that
the check does not lean on the LittleCMS that made the conversion.

A matrix/TRC profile is what cameras and phones embed for these spaces: a white point, three
colorants (the primaries as XYZ, adapted to the D50 of the profile connection space with the
Bradford transform, as ICC requires) and a tone curve. The colorants are computed here, apart
from hotfolder's own nclx profiles (:mod:`hotfolder._nclx`), whose writer only lays out the
bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from hotfolder._nclx import rgb_profile

Matrix = tuple[tuple[float, float, float], ...]
XY = tuple[float, float]

D65: XY = (0.3127, 0.3290)
D50: XY = (0.3457, 0.3585)
#: The ICC profile connection space's illuminant, as the spec gives it in s15Fixed16.
PCS_D50 = (0.9642, 1.0, 0.8249)

#: (red, green, blue) primaries and white point, as xy chromaticities.
SPACES: dict[str, tuple[tuple[XY, XY, XY], XY]] = {
    "Display P3": (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65),
    "Adobe RGB (1998)": (((0.640, 0.330), (0.210, 0.710), (0.150, 0.060)), D65),
    "ProPhoto RGB": (((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), D50),
}
#: The sRGB curve (Display P3 uses it): parametric curve type 3 (g, a, b, c, d).
SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
#: Adobe RGB (1998): a pure gamma of 563/256; ProPhoto: 1.8.
CURVES: dict[str, tuple[float, ...]] = {
    "Display P3": SRGB_CURVE,
    "Adobe RGB (1998)": (563 / 256,),
    "ProPhoto RGB": (1.8,),
}
_BRADFORD: Matrix = (
    (0.8951, 0.2664, -0.1614),
    (-0.7502, 1.7135, 0.0367),
    (0.0389, -0.0685, 1.0296),
)


def icc_profile(space: str) -> bytes:
    """An ICC v4 display profile of ``space`` (a key of :data:`SPACES`). Its matrix is
    computed here; only the bytes are laid out by hotfolder's writer of such profiles."""
    primaries, white = SPACES[space]
    to_xyz = _adapt(_rgb_to_xyz(primaries, white), _xyz(white), PCS_D50)
    return rgb_profile(space, to_xyz, CURVES[space])


def srgb_to_lab(rgb: Sequence[int]) -> tuple[float, float, float]:
    """CIELAB (D65 white) of an 8-bit sRGB colour, from the sRGB and CIE formulas."""
    linear = [_srgb_linear(v / 255) for v in rgb[:3]]
    matrix = _rgb_to_xyz(SPACES_SRGB, D65)
    x, y, z = (sum(matrix[r][c] * linear[c] for c in range(3)) for r in range(3))
    wx, wy, wz = _xyz(D65)
    fx, fy, fz = (_lab_f(v) for v in (x / wx, y / wy, z / wz))
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def delta_e76(a: Sequence[int], b: Sequence[int]) -> float:
    """CIE76 ΔE between two 8-bit sRGB colours (about 2.3 is a just noticeable difference)."""
    la, lb = srgb_to_lab(a), srgb_to_lab(b)
    return float(sum((p - q) ** 2 for p, q in zip(la, lb, strict=True)) ** 0.5)


SPACES_SRGB: tuple[XY, XY, XY] = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))


def _srgb_linear(v: float) -> float:
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _lab_f(t: float) -> float:
    delta = 6 / 29
    return t ** (1 / 3) if t > delta**3 else t / (3 * delta**2) + 4 / 29


def _xyz(xy: XY) -> tuple[float, float, float]:
    x, y = xy
    return x / y, 1.0, (1 - x - y) / y


def _rgb_to_xyz(primaries: tuple[XY, XY, XY], white: XY) -> Matrix:
    """The matrix taking linear RGB to XYZ (white Y = 1) for these primaries."""
    columns = [_xyz(p) for p in primaries]
    m = tuple(tuple(columns[c][r] for c in range(3)) for r in range(3))
    scale = _solve(m, _xyz(white))
    return tuple(tuple(m[r][c] * scale[c] for c in range(3)) for r in range(3))


def _adapt(m: Matrix, source: tuple[float, ...], target: tuple[float, ...]) -> Matrix:
    """``m`` followed by a Bradford adaptation from the ``source`` white to ``target``."""
    cone_s = _apply(_BRADFORD, source)
    cone_t = _apply(_BRADFORD, target)
    diag: Matrix = tuple(
        tuple(cone_t[i] / cone_s[i] if i == j else 0.0 for j in range(3)) for i in range(3)
    )
    adapt = _mul(_inverse(_BRADFORD), _mul(diag, _BRADFORD))
    return _mul(adapt, m)


def _apply(m: Matrix, v: Sequence[float]) -> tuple[float, float, float]:
    a, b, c = (sum(m[r][k] * v[k] for k in range(3)) for r in range(3))
    return a, b, c


def _mul(a: Matrix, b: Matrix) -> Matrix:
    return tuple(
        tuple(sum(a[r][k] * b[k][c] for k in range(3)) for c in range(3)) for r in range(3)
    )


def _det(m: Matrix) -> float:
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


def _inverse(m: Matrix) -> Matrix:
    d = _det(m)
    cof = [
        [
            (m[(r + 1) % 3][(c + 1) % 3] * m[(r + 2) % 3][(c + 2) % 3])
            - (m[(r + 1) % 3][(c + 2) % 3] * m[(r + 2) % 3][(c + 1) % 3])
            for c in range(3)
        ]
        for r in range(3)
    ]
    return tuple(tuple(cof[c][r] / d for c in range(3)) for r in range(3))


def _solve(m: Matrix, v: Sequence[float]) -> tuple[float, float, float]:
    return _apply(_inverse(m), v)
