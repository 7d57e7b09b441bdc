"""Small procedural CT phantoms for tests and benchmarks (numpy only; not the synthetic cohort).

:func:`make_sinus_phantom` builds a crude head — soft-tissue ellipsoid, skull cap, a nasal
cavity with septum and maxillary / ethmoid sinuses walled by bone — with lesions (mucosal
thickening, an air–fluid level, a nasal polyp) whose mask is returned as the truth.
:func:`make_chest_phantom` and :func:`make_brain_slab` are CTs that must be refused.

The full synthetic cohort with realistic anatomy lives in :mod:`sinusapp.synth`; these are
for fast, self-contained tests of the model package (and of packages that use
:class:`~sinusapp.model.FakePredictor`).
"""

from __future__ import annotations

import numpy as np

from sinusapp.imaging.volume import Volume

__all__ = ["make_brain_slab", "make_chest_phantom", "make_sinus_phantom", "rotation_matrix"]


def rotation_matrix(*, degrees_about_x: float = 0.0, degrees_about_z: float = 0.0) -> np.ndarray:
    """3×3 rotation (about LPS x: a gantry-tilt-like nod; about z: head turned)."""
    a, b = np.deg2rad(degrees_about_x), np.deg2rad(degrees_about_z)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    return rz @ rx


def _affine(
    shape: tuple[int, int, int], spacing_mm: tuple[float, float, float], rotation: np.ndarray | None
) -> np.ndarray:
    """Axial grid centred on the LPS origin: slice → +z, row → +y, column → +x (then rotated)."""
    r = np.eye(3) if rotation is None else np.asarray(rotation, float)
    a = np.eye(4)
    a[:3, 0] = r @ np.array([0.0, 0.0, 1.0]) * spacing_mm[0]
    a[:3, 1] = r @ np.array([0.0, 1.0, 0.0]) * spacing_mm[1]
    a[:3, 2] = r @ np.array([1.0, 0.0, 0.0]) * spacing_mm[2]
    half = (np.asarray(shape, float) - 1) / 2
    a[:3, 3] = -a[:3, :3] @ half
    return a


def _ell(
    p: tuple[np.ndarray, ...], c: tuple[float, float, float], r: tuple[float, float, float]
) -> np.ndarray:
    x, y, z = p
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2


def _box(p: tuple[np.ndarray, ...], lo: tuple[float, ...], hi: tuple[float, ...]) -> np.ndarray:
    x, y, z = p
    return (x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1]) & (z >= lo[2]) & (z <= hi[2])


def _head_slab(
    p: tuple[np.ndarray, ...], *, severity: tuple[float, float], polyp: bool
) -> tuple[np.ndarray, np.ndarray]:
    """HU and lesion mask of the head phantom at LPS points ``p`` (arrays of equal shape)."""
    x, y, z = p
    hu = np.full(x.shape, -1000.0, np.float32)
    lesion = np.zeros(x.shape, bool)
    head = _ell(p, (0, 0, 0), (75, 95, 110)) <= 1
    hu[head] = 40
    cap = head & (_ell(p, (0, 0, 0), (69, 89, 104)) > 1) & (z > 0)
    hu[cap] = 900
    brain = (_ell(p, (0, 0, 0), (69, 89, 104)) <= 1) & (z > 15)
    hu[brain] = 35
    # Sinus cavities (air), each walled by ~3 mm of bone.
    maxl = _ell(p, (-28, -45, -25), (15, 18, 20))
    maxr = _ell(p, (28, -45, -25), (15, 18, 20))
    nasal = _box(p, (-9, -92, -48), (9, -20, 5))
    nostril = _box(p, (-6, -120, -48), (6, -85, -40))
    ethm = _box(p, (-20, -68, -4), (20, -30, 16)) & (np.abs(x) > 10)
    cav = (maxl <= 1) | (maxr <= 1) | nasal | ethm
    walls = (
        (maxl <= 1.45)
        | (maxr <= 1.45)
        | _box(p, (-13, -96, -52), (13, -16, 9))
        | _box(p, (-24, -72, -8), (24, -26, 20))
    )
    hu[walls & head] = 600
    hu[cav] = -1000
    hu[nostril & ~head] = -1000
    hu[nostril & head] = -1000
    septum = (np.abs(x) < 1.2) & nasal & (y > -80)
    hu[septum] = 500
    # Lesions: mucosal thickening + air-fluid level in each maxillary sinus, a nasal polyp.
    for side, (m, sev) in enumerate(((maxl, severity[0]), (maxr, severity[1]))):
        if sev <= 0:
            continue
        thick = (m <= 1) & (m > (1 - 0.45 * sev) ** 2)
        fluid = (m <= 1) & (z < -25 - 20 + 30 * sev)
        les = thick | fluid
        hu[les] = 25 + 5 * side
        lesion |= les
    if polyp:
        pol = _ell(p, (-5, -55, -30), (4, 8, 7)) <= 1
        pol &= nasal & ~septum
        hu[pol] = 35
        lesion |= pol
    return hu, lesion


def make_sinus_phantom(
    *,
    shape: tuple[int, int, int] = (96, 112, 112),
    spacing_mm: tuple[float, float, float] = (2.0, 1.8, 1.8),
    severity: tuple[float, float] = (0.6, 0.3),
    polyp: bool = True,
    rotation: np.ndarray | None = None,
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    noise_hu: float = 15.0,
    seed: int = 0,
) -> tuple[Volume, np.ndarray]:
    """A head CT phantom with sinus lesions and its truth mask.

    Parameters
    ----------
    shape, spacing_mm:
        Grid ``(slices, rows, columns)`` and ``(slice, row, column)`` spacing.
    severity:
        Disease of the (right, left) maxillary sinus, 0 (clear) to 1 (nearly opacified).
    polyp:
        Whether a nasal polyp is present.
    rotation:
        Optional 3×3 rotation of the grid (tilted / oblique affine).
    shift_mm:
        Where the head's centre is, LPS mm, relative to the grid's centre.
    noise_hu, seed:
        Gaussian noise level and its seed.

    Returns
    -------
    (Volume, lesion mask uint8 of the volume's shape)
    """
    aff = _affine(shape, spacing_mm, rotation)
    aff[:3, 3] -= np.asarray(shift_mm, float)
    rng = np.random.default_rng(seed)
    arr = np.empty(shape, np.int16)
    mask = np.empty(shape, np.uint8)
    jj, ii = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    chunk = max(1, 4_000_000 // (shape[1] * shape[2]))
    for k0 in range(0, shape[0], chunk):
        kk = np.arange(k0, min(shape[0], k0 + chunk), dtype=np.float32)[:, None, None]
        pts = [
            (aff[c, 0] * kk + aff[c, 1] * jj + aff[c, 2] * ii + aff[c, 3]).astype(np.float32)
            for c in range(3)
        ]
        pts = [p + np.float32(s) for p, s in zip(pts, shift_mm, strict=True)]
        hu, les = _head_slab(tuple(pts), severity=severity, polyp=polyp)
        if noise_hu > 0:
            hu += rng.normal(0, noise_hu, hu.shape).astype(np.float32)
        arr[k0 : k0 + len(kk)] = np.clip(hu, -1024, 3071).astype(np.int16)
        mask[k0 : k0 + len(kk)] = les
    return Volume(array=arr, affine=aff), mask


def _grid(
    shape: tuple[int, int, int], spacing_mm: tuple[float, float, float]
) -> tuple[np.ndarray, ...]:
    aff = _affine(shape, spacing_mm, None)
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    return tuple(
        (aff[c, 0] * k + aff[c, 1] * j + aff[c, 2] * i + aff[c, 3]).astype(np.float32)
        for c in range(3)
    )


def make_chest_phantom(
    *,
    shape: tuple[int, int, int] = (60, 96, 128),
    spacing_mm: tuple[float, float, float] = (4.0, 3.2, 3.2),
) -> Volume:
    """A chest-like CT: wide soft-tissue trunk, two big air lungs, ribs, spine, trachea."""
    p = _grid(shape, spacing_mm)
    x, y, z = p
    hu = np.full(x.shape, -1000.0, np.float32)
    trunk = _ell(p, (0, 0, 0), (170, 120, 400)) <= 1
    hu[trunk] = 40
    ribs = trunk & (_ell(p, (0, 0, 0), (160, 110, 400)) > 1) & (np.sin(z / 8.0) > 0.3)
    hu[ribs] = 700
    for cx in (-75, 75):
        hu[_ell(p, (cx, 5, 0), (60, 80, 110)) <= 1] = -850
    hu[(np.hypot(x, y - 10) < 9) & (z > 0)] = -1000  # trachea
    hu[np.hypot(x, y - 90) < 18] = 500  # spine
    return Volume(
        array=np.clip(hu, -1024, 3071).astype(np.int16), affine=_affine(shape, spacing_mm, None)
    )


def make_brain_slab(
    *,
    shape: tuple[int, int, int] = (20, 100, 100),
    spacing_mm: tuple[float, float, float] = (2.5, 2.0, 2.0),
) -> Volume:
    """A brain-only axial slab (skull + brain, no air cavities), like a CT above the skull base."""
    p = _grid(shape, spacing_mm)
    hu = np.full(p[0].shape, -1000.0, np.float32)
    head = _ell(p, (0, 0, 0), (75, 95, 200)) <= 1
    hu[head] = 900
    hu[_ell(p, (0, 0, 0), (69, 89, 200)) <= 1] = 35
    return Volume(
        array=np.clip(hu, -1024, 3071).astype(np.int16), affine=_affine(shape, spacing_mm, None)
    )
