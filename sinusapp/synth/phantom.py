"""Procedural head CT phantom in Hounsfield units, with paranasal-sinus disease.

The phantom is a list of signed-distance shapes (ellipsoids, rounded boxes, capsules, a
Voronoi honeycomb for the ethmoid cells) painted in order onto a CT grid, each with a
partial-volume edge (occupancy ``clip(0.5 − sdf / voxel, 0, 1)``), then blurred by the scanner
kernel and slice profile and given correlated noise. Everything is vectorised numpy, evaluated
only on each shape's bounding box, slab by slab, so a 1 mm sinus-region case renders in well
under a second and a 512² diagnostic case in seconds.

Head frame
----------
Shapes are defined in a *head frame* in millimetres with LPS axes (+x patient left,
+y posterior, +z superior) whose origin is the centre of the ethmoid labyrinth, between the
orbits at mid-orbit height. A :class:`Pose` (a small rotation and shift) maps the head frame to
DICOM patient coordinates::

    p_lps = R @ p_head + translation_lps

The *sinus region centre* (:data:`SINUS_CENTRE_HEAD_MM`, the middle of the box holding all
sinus labels) is reported in LPS in :attr:`Phantom.meta` (``"sinus_centre_lps_mm"``) so that a
localiser can be tested against it.

Outputs
-------
:class:`Phantom` holds the int16 HU volume ``[slice, row, column]``, the lesion mask (uint8,
diseased soft tissue inside the nasal cavity and sinuses, as a radiologist would draw it), the
sinus label map (uint8, :data:`SINUS_LABELS`) and the 4×4 index → LPS affine (same convention
as :class:`sinusapp.imaging.Volume`). Air–fluid levels follow gravity in LPS (+y is down for a
supine patient), not the head frame.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

# The label table is data shared with the core (quantification, dataset reader): it lives in
# sinusapp.imaging and is re-exported here.
from sinusapp.imaging.quantify import LABEL_IDS, REGIONS, SINUS_LABELS

__all__ = [
    "HU",
    "LABEL_IDS",
    "REGIONS",
    "SINUS_CENTRE_HEAD_MM",
    "SINUS_LABELS",
    "Anatomy",
    "Disease",
    "Grid",
    "Phantom",
    "Pose",
    "RegionDisease",
    "ScannerSettings",
    "acquire_image",
    "make_grid",
    "render_phantom",
]

log = logging.getLogger(__name__)

#: A 3-vector: a tuple / list of floats or a numpy array.
_Vec = Sequence[float] | np.ndarray

#: Centre of the box holding all sinus labels, in the head frame (mm, LPS axes).
SINUS_CENTRE_HEAD_MM: tuple[float, float, float] = (0.0, -8.0, -4.0)

#: Tissue values in HU (before noise and blur).
HU: dict[str, float] = {
    "air": -1000.0,
    "fat": -95.0,
    "skin": 35.0,
    "muscle": 48.0,
    "csf": 8.0,
    "brain": 34.0,
    "cortical": 1450.0,
    "diploe": 620.0,
    "thin_bone": 1100.0,
    "cancellous": 420.0,
    "cartilage": 95.0,
    "tooth": 2300.0,
    "vitreous": 12.0,
    "lens": 95.0,
    "nerve": 32.0,
    "mucosa": 40.0,
}

_PATTERNS = ("none", "mucosal", "polypoid", "cyst", "air_fluid", "complete")


# --------------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScannerSettings:
    """Acquisition and reconstruction settings of the simulated scanner.

    Attributes
    ----------
    pixel_spacing_mm:
        In-plane spacing (square pixels).
    slice_spacing_mm:
        Distance between slice centres.
    slice_thickness_mm:
        Nominal reconstructed thickness (sets the slice-profile blur).
    matrix:
        Rows = columns of each slice.
    noise_hu:
        Standard deviation of the image noise in a uniform region.
    kernel_sigma_mm:
        In-plane Gaussian blur of the reconstruction kernel.
    edge_enhance:
        Unsharp-mask gain (bone kernels overshoot at edges; 0 for a soft kernel).
    kernel:
        ConvolutionKernel written to DICOM (``"BONE"``, ``"SOFT"``...).
    z_range_head_mm:
        Scan range along the head's superior axis, in the head frame (the technologist
        plans the scan on the anatomy).
    fov_centre_head_mm:
        In-plane display-FOV centre in the head frame (x, y).
    kvp:
        Tube voltage written to DICOM.
    model:
        ManufacturerModelName written to DICOM.
    """

    pixel_spacing_mm: float = 0.4
    slice_spacing_mm: float = 1.0
    slice_thickness_mm: float = 1.0
    matrix: int = 512
    noise_hu: float = 35.0
    kernel_sigma_mm: float = 0.35
    edge_enhance: float = 0.6
    kernel: str = "BONE"
    z_range_head_mm: tuple[float, float] = (-58.0, 50.0)
    fov_centre_head_mm: tuple[float, float] = (0.0, 10.0)
    kvp: float = 120.0
    model: str = "Synthetic CT A"

    def __post_init__(self) -> None:
        for name in ("pixel_spacing_mm", "slice_spacing_mm", "slice_thickness_mm"):
            v = getattr(self, name)
            if not (0.05 <= v <= 10.0):
                raise ValueError(f"ScannerSettings.{name} must be in [0.05, 10] mm, got {v}")
        if not (16 <= self.matrix <= 2048):
            raise ValueError(f"ScannerSettings.matrix must be in [16, 2048], got {self.matrix}")
        if self.noise_hu < 0 or self.kernel_sigma_mm < 0:
            raise ValueError("ScannerSettings.noise_hu and kernel_sigma_mm must be >= 0")
        if self.z_range_head_mm[1] <= self.z_range_head_mm[0]:
            raise ValueError(f"ScannerSettings.z_range_head_mm is empty: {self.z_range_head_mm}")

    @classmethod
    def low_res(cls, *, noise_hu: float = 20.0) -> ScannerSettings:
        """1 mm isotropic, sinus region only (144 × 144 × 104): fast enough to train on the fly."""
        return cls(
            pixel_spacing_mm=1.0,
            slice_spacing_mm=1.0,
            slice_thickness_mm=1.0,
            matrix=144,
            noise_hu=noise_hu,
            kernel_sigma_mm=0.3,
            edge_enhance=0.0,
            z_range_head_mm=(-56.0, 48.0),
            fov_centre_head_mm=(0.0, -5.0),
            model="Synthetic CT low-res",
        )


@dataclass(frozen=True, slots=True)
class Pose:
    """Head position on the table: rotation (degrees about LPS x, y, z) and shift (mm)."""

    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: LPS position of the head-frame origin before the shift (isocentre at the head centre).
    base_lps_mm: tuple[float, float, float] = (0.0, -35.0, -40.0)

    @property
    def rotation(self) -> np.ndarray:
        """3×3 rotation head frame → LPS (x, then y, then z)."""
        ax, ay, az = (math.radians(a) for a in self.rotation_deg)
        rx = np.array(
            [[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]]
        )
        ry = np.array(
            [[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]]
        )
        rz = np.array(
            [[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]]
        )
        return rz @ ry @ rx

    @property
    def translation_lps_mm(self) -> np.ndarray:
        """LPS position of the head-frame origin."""
        return np.asarray(self.base_lps_mm, float) + np.asarray(self.shift_mm, float)

    def head_to_lps(self, p_head_mm: Sequence[float] | np.ndarray) -> np.ndarray:
        """Map head-frame millimetres ``(..., 3)`` to LPS millimetres."""
        p = np.asarray(p_head_mm, float)
        return p @ self.rotation.T + self.translation_lps_mm


@dataclass(frozen=True, slots=True)
class Anatomy:
    """Between-patient variation of the anatomy (sizes as factors of an average adult).

    Use :meth:`sample` for a random adult, or the defaults for the average one.
    """

    scale: float = 1.0
    maxillary_left: float = 1.0
    maxillary_right: float = 1.0
    frontal_left: float = 1.0
    frontal_right: float = 1.0
    sphenoid: float = 1.0
    sphenoid_septum_x_mm: float = 1.5
    ethmoid_cells: tuple[int, int] = (18, 17)
    septum_deviation_mm: float = 2.0
    septum_spur_mm: float = 0.0
    turbinate: float = 1.0
    cell_seed: int = 0

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Anatomy:
        """A random adult: sinus sizes in adult ranges, asymmetry, sometimes hypoplastic frontal."""
        mx = float(rng.normal(1.0, 0.09))
        front = float(rng.uniform(0.75, 1.25))
        fl, fr = front * rng.normal(1.0, 0.12), front * rng.normal(1.0, 0.12)
        u = rng.uniform()
        if u < 0.08:  # unilateral hypoplastic / aplastic frontal sinus
            if rng.uniform() < 0.5:
                fl = 0.0 if rng.uniform() < 0.4 else 0.45
            else:
                fr = 0.0 if rng.uniform() < 0.4 else 0.45
        elif u < 0.11:
            fl = fr = 0.45
        return cls(
            scale=float(np.clip(rng.normal(1.0, 0.035), 0.92, 1.08)),
            maxillary_left=float(np.clip(mx * rng.normal(1.0, 0.06), 0.75, 1.25)),
            maxillary_right=float(np.clip(mx * rng.normal(1.0, 0.06), 0.75, 1.25)),
            frontal_left=float(np.clip(fl, 0.0, 1.4)),
            frontal_right=float(np.clip(fr, 0.0, 1.4)),
            sphenoid=float(np.clip(rng.normal(1.0, 0.12), 0.7, 1.3)),
            sphenoid_septum_x_mm=float(rng.normal(0.0, 2.5)),
            ethmoid_cells=(int(rng.integers(14, 23)), int(rng.integers(14, 23))),
            septum_deviation_mm=float(rng.normal(0.0, 2.5)),
            septum_spur_mm=float(max(0.0, rng.normal(0.0, 2.0))),
            turbinate=float(np.clip(rng.normal(1.0, 0.1), 0.8, 1.25)),
            cell_seed=int(rng.integers(0, 2**31 - 1)),
        )


@dataclass(frozen=True, slots=True)
class RegionDisease:
    """Disease of one sinus region.

    Attributes
    ----------
    opacification:
        Target fraction of the cavity filled with soft tissue, 0–1.
    pattern:
        ``none``, ``mucosal`` (lobulated mucosal thickening), ``polypoid`` (thickening plus
        polyps), ``cyst`` (retention cyst plus thickening), ``air_fluid`` (dependent fluid with
        an air–fluid level) or ``complete`` (full opacification).
    polyps:
        Number of polyps (in ``nasal_cavity``: nasal polyps in the middle meatus, split L / R).
    hyperdense_foci:
        Small hyperdense spots (inspissated secretions / eosinophilic mucin) in the lesion.
    """

    opacification: float = 0.0
    pattern: str = "none"
    polyps: int = 0
    hyperdense_foci: bool = False

    def __post_init__(self) -> None:
        if not (0.0 <= self.opacification <= 1.0):
            raise ValueError(
                f"RegionDisease.opacification must be in [0, 1], got {self.opacification}"
            )
        if self.pattern not in _PATTERNS:
            raise ValueError(
                f"RegionDisease.pattern must be one of {_PATTERNS}, got {self.pattern!r}"
            )
        if self.polyps < 0:
            raise ValueError(f"RegionDisease.polyps must be >= 0, got {self.polyps}")


@dataclass(frozen=True, slots=True)
class Disease:
    """Disease of all regions (:data:`REGIONS` names → :class:`RegionDisease`) and lesion HU."""

    regions: Mapping[str, RegionDisease] = field(default_factory=dict)
    lesion_hu: float = 35.0

    def __post_init__(self) -> None:
        unknown = set(self.regions) - set(REGIONS)
        if unknown:
            raise ValueError(f"Disease.regions has unknown names {sorted(unknown)}; use {REGIONS}")
        if not (10.0 <= self.lesion_hu <= 60.0):
            raise ValueError(f"Disease.lesion_hu must be in [10, 60] HU, got {self.lesion_hu}")

    def get(self, name: str) -> RegionDisease:
        """The disease of region ``name`` (none when absent)."""
        return self.regions.get(name, RegionDisease())


@dataclass(frozen=True, slots=True)
class Grid:
    """An image grid: shape ``(slices, rows, columns)`` and the 4×4 index → LPS affine."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """``(slice, row, column)`` spacing."""
        s = np.linalg.norm(np.asarray(self.affine)[:3, :3], axis=0)
        return (float(s[0]), float(s[1]), float(s[2]))


@dataclass(frozen=True, slots=True, eq=False)
class Phantom:
    """A rendered case: HU volume, lesion mask, sinus labels, affine and metadata."""

    hu: np.ndarray
    lesion: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any]
    #: float32 HU before blur and noise (only with ``keep_ideal=True``), for other kernels
    ideal: np.ndarray | None = None


def make_grid(*, scanner: ScannerSettings, pose: Pose) -> Grid:
    """Axial grid planned on the head: slices cover ``z_range_head_mm``, FOV on its centre.

    Rows run anterior → posterior (+y), columns right → left (+x), slices inferior →
    superior (+z), i.e. ImageOrientationPatient ``1\\0\\0\\0\\1\\0``.
    """
    z0, z1 = scanner.z_range_head_mm
    t = pose.translation_lps_mm
    n_slices = math.floor((z1 - z0) / scanner.slice_spacing_mm) + 1
    n = scanner.matrix
    ps = scanner.pixel_spacing_mm
    cx = t[0] + scanner.fov_centre_head_mm[0]
    cy = t[1] + scanner.fov_centre_head_mm[1]
    aff = np.eye(4)
    aff[:3, 0] = (0.0, 0.0, scanner.slice_spacing_mm)
    aff[:3, 1] = (0.0, ps, 0.0)
    aff[:3, 2] = (ps, 0.0, 0.0)
    # Round the origin to 0.01 mm so DICOM decimal strings reproduce the affine exactly.
    origin = np.array([cx - ps * (n - 1) / 2.0, cy - ps * (n - 1) / 2.0, t[2] + z0])
    aff[:3, 3] = np.round(origin, 2)
    return Grid(shape=(n_slices, n, n), affine=aff)


# --------------------------------------------------------------------------------------------
# Signed-distance shapes (head frame). ``P`` carries x, y, z (head) and ylps (gravity).
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Points:
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    ylps: np.ndarray

    def __getitem__(self, sl: tuple[slice, ...]) -> _Points:
        return _Points(self.x[sl], self.y[sl], self.z[sl], self.ylps[sl])


class _Shape:
    lo: np.ndarray
    hi: np.ndarray

    def sdf(self, p: _Points) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class _Ellipsoid(_Shape):
    """Approximate Euclidean SDF (Quilez): ``k0 (k0 − 1) / k1``; optional yaw / pitch."""

    def __init__(
        self,
        c: _Vec,
        r: _Vec,
        *,
        rot: np.ndarray | None = None,
        taper: float = 0.0,
        taper_down: bool = False,
    ):
        self.c = np.asarray(c, float)
        self.r = np.maximum(np.asarray(r, float), 0.3)
        self.rot = rot
        self.taper = float(taper)  # x / z radii shrink towards +y (a cone-like orbit)
        self.taper_down = taper_down  # instead: x / y radii shrink towards −z (maxillary floor)
        ext = self.r if rot is None else np.abs(rot) @ self.r
        self.lo, self.hi = self.c - ext, self.c + ext

    def sdf(self, p: _Points) -> np.ndarray:
        cx, cy, cz = (float(v) for v in self.c)
        x, y, z = p.x - cx, p.y - cy, p.z - cz
        if self.rot is not None:
            m = self.rot.T.tolist()
            x, y, z = (
                m[0][0] * x + m[0][1] * y + m[0][2] * z,
                m[1][0] * x + m[1][1] * y + m[1][2] * z,
                m[2][0] * x + m[2][1] * y + m[2][2] * z,
            )
        ix, iy, iz = (1.0 / float(v) for v in self.r)
        if self.taper and self.taper_down:
            f = 1.0 / (1.0 - self.taper * np.clip(-z * iz, 0.0, 1.0))
            x = x * f
            y = y * f
        elif self.taper:
            f = 1.0 / (1.0 - self.taper * np.clip(y * iy, 0.0, 1.0))
            x = x * f
            z = z * f
        x *= ix
        y *= iy
        z *= iz
        k0 = np.sqrt(x * x + y * y + z * z)
        x *= ix
        y *= iy
        z *= iz
        k1 = np.sqrt(x * x + y * y + z * z)
        np.maximum(k1, 1e-6, out=k1)
        return k0 * (k0 - 1.0) / k1


class _Box(_Shape):
    def __init__(self, c: _Vec, half: _Vec, *, rad: float = 0.0):
        self.c = np.asarray(c, float)
        self.h = np.asarray(half, float) - rad
        self.rad = rad
        self.lo, self.hi = self.c - np.asarray(half), self.c + np.asarray(half)

    def sdf(self, p: _Points) -> np.ndarray:
        c, h = self.c.tolist(), self.h.tolist()
        qx = np.abs(p.x - c[0]) - h[0]
        qy = np.abs(p.y - c[1]) - h[1]
        qz = np.abs(p.z - c[2]) - h[2]
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
        inside = np.minimum(np.maximum(qx, np.maximum(qy, qz)), 0)
        return outside + inside - self.rad


class _Capsule(_Shape):
    def __init__(self, a: _Vec, b: _Vec, r: float):
        self.a, self.b, self.r = np.asarray(a, float), np.asarray(b, float), float(r)
        self.lo = np.minimum(self.a, self.b) - r
        self.hi = np.maximum(self.a, self.b) + r

    def sdf(self, p: _Points) -> np.ndarray:
        ba = (self.b - self.a).tolist()
        a = self.a.tolist()
        px, py, pz = p.x - a[0], p.y - a[1], p.z - a[2]
        inv = 1.0 / (ba[0] ** 2 + ba[1] ** 2 + ba[2] ** 2)
        h = np.clip((px * ba[0] + py * ba[1] + pz * ba[2]) * inv, 0.0, 1.0)
        return (
            np.sqrt((px - h * ba[0]) ** 2 + (py - h * ba[1]) ** 2 + (pz - h * ba[2]) ** 2) - self.r
        )


class _Fn(_Shape):
    """A shape given by a function, with an explicit bounding box."""

    def __init__(self, fn: Callable[[_Points], np.ndarray], lo: _Vec, hi: _Vec):
        self.fn = fn
        self.lo, self.hi = np.asarray(lo, float), np.asarray(hi, float)

    def sdf(self, p: _Points) -> np.ndarray:
        return self.fn(p)


class _Union(_Shape):
    def __init__(self, *shapes: _Shape):
        self.shapes = shapes
        self.lo = np.min([s.lo for s in shapes], axis=0)
        self.hi = np.max([s.hi for s in shapes], axis=0)

    def sdf(self, p: _Points) -> np.ndarray:
        d = self.shapes[0].sdf(p)
        for s in self.shapes[1:]:
            d = np.minimum(d, s.sdf(p))
        return d


class _Intersect(_Shape):
    def __init__(self, *shapes: _Shape):
        self.shapes = shapes
        self.lo = np.max([s.lo for s in shapes], axis=0)
        self.hi = np.min([s.hi for s in shapes], axis=0)

    def sdf(self, p: _Points) -> np.ndarray:
        d = self.shapes[0].sdf(p)
        for s in self.shapes[1:]:
            d = np.maximum(d, s.sdf(p))
        return d


class _Subtract(_Shape):
    def __init__(self, a: _Shape, b: _Shape):
        self.a, self.b = a, b
        self.lo, self.hi = a.lo, a.hi

    def sdf(self, p: _Points) -> np.ndarray:
        return np.maximum(self.a.sdf(p), -self.b.sdf(p))


class _Offset(_Shape):
    """Grow (d > 0) or shrink (d < 0) a shape by ``d`` mm."""

    def __init__(self, s: _Shape, d: float):
        self.s, self.d = s, float(d)
        self.lo, self.hi = s.lo - max(self.d, 0), s.hi + max(self.d, 0)

    def sdf(self, p: _Points) -> np.ndarray:
        return self.s.sdf(p) - self.d


class _Voronoi(_Shape):
    """Air cells of a honeycomb: Voronoi cells of ``seeds`` inside ``container``, thin walls."""

    def __init__(self, seeds: np.ndarray, container: _Shape, wall_mm: float):
        self.seeds = np.asarray(seeds, float)
        self.container = container
        self.wall = wall_mm
        self.lo, self.hi = container.lo, container.hi

    def nearest(self, p: _Points) -> tuple[np.ndarray, np.ndarray]:
        """(index of the nearest seed, distance to the nearest cell wall)."""
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] is p:
            return cached[1]
        result = self._nearest(p)
        self._cache = (p, result)
        return result

    def _nearest(self, p: _Points) -> tuple[np.ndarray, np.ndarray]:
        d1 = np.full(p.x.shape, np.inf, np.float32)
        d2 = np.full(p.x.shape, np.inf, np.float32)
        idx = np.zeros(p.x.shape, np.int16)
        for k, s in enumerate(self.seeds.tolist()):
            d = (p.x - s[0]) ** 2 + (p.y - s[1]) ** 2 + (p.z - s[2]) ** 2
            closer = d < d1
            d2 = np.where(closer, d1, np.minimum(d2, d))
            d1 = np.where(closer, d, d1)
            idx[closer] = k
        return idx, (np.sqrt(d2) - np.sqrt(d1)) * 0.5

    def sdf(self, p: _Points) -> np.ndarray:
        _, wall_dist = self.nearest(p)
        return np.maximum(self.container.sdf(p), self.wall * 0.5 - wall_dist)


# --------------------------------------------------------------------------------------------
# Paint operations
# --------------------------------------------------------------------------------------------

#: content(P, d_cavity) -> (hu, lesion occupancy) for cavity carving.
_Content = Callable[[_Points, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(slots=True)
class _Op:
    shape: _Shape
    hu: float | Callable[[_Points], np.ndarray]
    label: int | Callable[[_Points], np.ndarray] | None = None
    clear: bool = False  # clear label and lesion where painted (walls, septum, turbinates)
    content: _Content | None = None  # cavity carve: air + disease
    #: onion layers sharing one evaluation of ``shape``: (sdf of the layer from (d, P), HU)
    layers: list[tuple[Callable[[np.ndarray, _Points], np.ndarray], float]] | None = None


def _wobble(
    rng: np.random.Generator, n: int = 3, wavelength_mm: float = 18.0
) -> Callable[[_Points], np.ndarray]:
    """Smooth random field in [-1, 1] (sum of random plane waves), for lobulated surfaces."""
    k = rng.normal(size=(n, 3))
    k = k / np.linalg.norm(k, axis=1, keepdims=True) * (2 * math.pi / wavelength_mm)
    k *= rng.uniform(0.7, 1.4, size=(n, 1))
    ph = rng.uniform(0, 2 * math.pi, size=n)

    def f(p: _Points) -> np.ndarray:
        acc = np.zeros(p.x.shape, np.float32)
        for (kx, ky, kz), phase in zip(k, ph, strict=True):
            acc += np.cos(kx * p.x + ky * p.y + kz * p.z + phase)
        return acc / n

    return f


def _occ(d: np.ndarray, inv_w: float) -> np.ndarray:
    return np.clip(0.5 - d * inv_w, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Disease content of a cavity
# --------------------------------------------------------------------------------------------


def _cap_level(fraction: float) -> float:
    """Normalised depth t∈[0,1] of a plane cutting a unit sphere's volume fraction ``fraction``."""
    ts = np.linspace(0, 1, 201)
    vol = ts**2 * (3 - 2 * ts)
    return float(np.interp(fraction, vol, ts))


def _make_content(
    *,
    disease: RegionDisease,
    cavity: _Shape,
    centre: np.ndarray,
    radii: np.ndarray,
    lesion_hu: float,
    rng: np.random.Generator,
    inv_w: float,
    pose: Pose,
    polyp_sites: Sequence[tuple[np.ndarray, np.ndarray]] = (),
) -> _Content | None:
    """Build the content function (air + disease) of one cavity, or None for a healthy one."""
    o = disease.opacification
    if disease.pattern == "none" or (o <= 0.0 and disease.polyps == 0):
        return None
    wob = _wobble(rng, n=4, wavelength_mm=float(rng.uniform(12, 24)))
    hu_wob = _wobble(rng, n=3, wavelength_mm=25.0)
    r_min = float(np.min(radii))
    complete = disease.pattern == "complete" or o >= 0.95
    # mucosal thickness giving the target volume fraction for an ellipsoid-like cavity
    base_o = o
    if disease.pattern in ("cyst", "air_fluid"):
        base_o = o * 0.35
    elif disease.pattern == "polypoid":
        base_o = o * 0.6
    m0 = r_min * (1.0 - (1.0 - min(base_o, 0.97)) ** (1.0 / 3.0))
    comps: list[tuple[_Shape | Callable[[_Points, np.ndarray], np.ndarray], float]] = []

    if not complete and base_o > 0:

        def mucosa(p: _Points, d: np.ndarray, m0: float = m0) -> np.ndarray:
            m = m0 * (1.0 + 0.45 * wob(p))
            return -(d + m)

        comps.append((mucosa, lesion_hu))
    if disease.pattern == "cyst" and not complete:
        rc = float(np.clip(r_min * (o ** (1 / 3)) * 0.95, 4.0, 0.9 * r_min))
        cc = centre + np.array([rng.normal(0, 0.2) * radii[0], rng.normal(0, 0.2) * radii[1], 0.0])
        cc[2] = centre[2] - radii[2] + 0.55 * rc
        comps.append((_Ellipsoid(cc, (rc, rc * 1.05, rc * 0.95)), float(rng.uniform(12, 22))))
    if disease.pattern == "air_fluid" and not complete:
        # dependent fluid: posterior in LPS for a supine patient
        c_lps = pose.head_to_lps(centre)
        ext = float(np.abs(pose.rotation[1]) @ radii)
        level = c_lps[1] + ext * (1.0 - 2.0 * _cap_level(min(o * 0.75, 0.9)))

        def fluid(p: _Points, d: np.ndarray, level: float = level) -> np.ndarray:
            return level - p.ylps

        comps.append((fluid, float(rng.uniform(14, 24))))
    n_polyps = disease.polyps if disease.pattern in ("polypoid", "mucosal", "none") else 0
    if polyp_sites:
        for k in range(disease.polyps):
            site_c, site_r = polyp_sites[k % len(polyp_sites)]
            jitter = rng.normal(0, 1, 3) * np.array([0.6, 4.0, 2.0])
            size = rng.uniform(0.8, 1.3)
            comps.append((_Ellipsoid(site_c + jitter, site_r * size), lesion_hu))
    else:
        for _ in range(n_polyps):
            u = rng.normal(size=3)
            u[2] -= 0.8  # polyps hang from the floor / medial wall more often
            u /= np.linalg.norm(u)
            pc = centre + 0.85 * radii * u
            pr = float(rng.uniform(0.25, 0.45)) * r_min + 2.0
            comps.append((_Ellipsoid(pc, (pr, pr * 1.2, pr * 1.1)), lesion_hu))
    foci: list[_Ellipsoid] = []
    if disease.hyperdense_foci and (complete or o > 0.5):
        for _ in range(int(rng.integers(2, 5))):
            u = rng.normal(size=3)
            u /= np.linalg.norm(u)
            pc = centre + radii * u * rng.uniform(0.0, 0.5)
            fr = float(rng.uniform(1.2, 2.5))
            foci.append(_Ellipsoid(pc, (fr, fr * 1.3, fr)))
    foci_hu = float(rng.uniform(110, 220))

    def content(p: _Points, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dis_hu = (lesion_hu + 6.0 * hu_wob(p)).astype(np.float32)
        if complete:
            frac = np.ones(d.shape, np.float32)
            hu = dis_hu
        else:
            frac = np.zeros(d.shape, np.float32)
            hu = dis_hu.copy()
            for comp, comp_hu in comps:
                dd = comp.sdf(p) if isinstance(comp, _Shape) else comp(p, d)
                a = _occ(dd, inv_w).astype(np.float32)
                if comp_hu != lesion_hu:
                    hu = np.where(a > frac, np.float32(comp_hu), hu)
                frac = np.maximum(frac, a)
        for f in foci:
            a = _occ(f.sdf(p), inv_w) * frac
            hu = hu + a * (foci_hu - hu)
        out = HU["air"] + frac * (hu - HU["air"])
        return out.astype(np.float32), frac

    return content


# --------------------------------------------------------------------------------------------
# The scene
# --------------------------------------------------------------------------------------------


def _mirror(v: _Vec, side: int) -> np.ndarray:
    a = np.asarray(v, float).copy()
    a[0] *= side
    return a


def _yaw(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])


def _build_scene(
    *, anatomy: Anatomy, disease: Disease, pose: Pose, rng: np.random.Generator, inv_w: float
) -> list[_Op]:
    s = anatomy.scale
    ops: list[_Op] = []

    def S(v: _Vec) -> np.ndarray:  # noqa: N802 - scale helper
        return np.asarray(v, float) * s

    # ---- soft-tissue envelope
    cranium = _Ellipsoid(S((0, 40, 34)), S((78, 98, 90)))
    face = _Ellipsoid(S((0, -4, -30)), S((62, 62, 40)))
    nose = _Ellipsoid(
        S((0, -55, -27)),
        S((13, 14, 24)),
        rot=np.array(
            [[1, 0, 0], [0, math.cos(0.35), -math.sin(0.35)], [0, math.sin(0.35), math.cos(0.35)]]
        ),
    )
    env = _Union(cranium, face, nose)
    ops.append(
        _Op(
            env,
            0.0,
            layers=[
                (lambda d, p: d, HU["skin"]),
                (lambda d, p: d + 2.5, HU["fat"]),
                (lambda d, p: d + 9.0, HU["muscle"]),
            ],
        )
    )

    # ---- cranial vault (only above the face), brain
    def floor_z(p: _Points) -> np.ndarray:
        ramp_y = np.clip((p.y - 8.0 * s) / (14.0 * s), 0, 1)
        ramp_x = np.clip((np.abs(p.x) - 18.0 * s) / (10.0 * s), 0, 1)
        return 18.0 * s - 43.0 * s * ramp_y * ramp_x

    def vault_cut(p: _Points) -> np.ndarray:
        zc = 16.0 * s - 41.0 * s * np.clip((p.y - 5.0 * s) / (20.0 * s), 0, 1)
        # the frontal bone comes down to the nasion between the orbits
        nasion = np.clip((14.0 * s - np.abs(p.x)) / (6.0 * s), 0, 1)
        nasion *= np.clip((-p.y - 30.0 * s) / (10.0 * s), 0, 1)
        return zc - 13.0 * s * nasion - p.z

    def thick(p: _Points) -> np.ndarray:
        """Skull thickness from the skin (mm): thicker where the frontal sinus lies."""
        bump = np.exp(-((p.x / (22.0 * s)) ** 2 + ((p.z - 28.0 * s) / (12.0 * s)) ** 2))
        return 13.0 + 6.5 * bump * np.clip((-p.y - 20.0 * s) / (10.0 * s), 0, 1)

    ops.append(
        _Op(
            cranium,
            0.0,
            layers=[
                (
                    lambda d, p: np.maximum(np.maximum(d + 5.0, -(d + thick(p))), vault_cut(p)),
                    HU["cortical"],
                ),
                (
                    lambda d, p: np.maximum(
                        np.maximum(d + 6.8, -(d + thick(p) - 1.8)), vault_cut(p)
                    ),
                    HU["diploe"],
                ),
                (lambda d, p: np.maximum(d + thick(p), floor_z(p) - 2.0 - p.z), HU["csf"]),
                (lambda d, p: np.maximum(d + thick(p) + 1.2, floor_z(p) - 1.0 - p.z), HU["brain"]),
            ],
        )
    )
    # anterior cranial fossa floor (orbital roofs, fovea ethmoidalis)
    ops.append(_Op(_Box(S((0, -8, 16.8)), S((46, 28, 1.3)), rad=0.8), HU["thin_bone"]))

    # ---- facial skeleton blocks
    sph_block = _Ellipsoid(S((0, 30, -6)), S((17, 14, 14.5)))
    ops.append(_Op(sph_block, HU["cancellous"] - 120))
    ops.append(_Op(_Box(S((0, -8, -41.5)), S((19, 39, 2.8)), rad=1.0), HU["thin_bone"]))  # palate
    # alveolar ridge and teeth
    alv = _Intersect(
        _Subtract(
            _Ellipsoid(S((0, -12, -51)), S((31, 37, 7))),
            _Ellipsoid(S((0, -4, -51)), S((21, 28, 9))),
        ),
        _Box(S((0, -20, -51)), S((40, 32, 10))),
    )
    ops.append(_Op(alv, HU["cancellous"] + 300))
    for th in np.linspace(-1.35, 1.35, 12):
        c = S((26.0 * math.sin(th), -12.0 - 32.0 * math.cos(th), -53.5))
        ops.append(_Op(_Ellipsoid(c, S((3.2, 3.6, 6.0))), HU["tooth"]))
    for side in (1, -1):
        zyg = _Ellipsoid(S(_mirror((46, -16, -15), side)), S((4.5, 14, 10)))
        ops.append(_Op(zyg, HU["thin_bone"] * 0.8))  # zygoma: cortex and marrow
        ops.append(_Op(_Offset(zyg, -1.4), HU["cancellous"] - 100))
        ops.append(
            _Op(
                _Capsule(S(_mirror((52, -6, -17), side)), S(_mirror((60, 28, -19), side)), 3.2 * s),
                HU["thin_bone"],
            )
        )
        ops.append(
            _Op(
                _Capsule(S(_mirror((19, 20, -22), side)), S(_mirror((22, 24, -46), side)), 1.6 * s),
                HU["thin_bone"],
            )
        )  # pterygoid
        ops.append(
            _Op(
                _Capsule(S(_mirror((5.5, -45, 3), side)), S(_mirror((8, -53, -14), side)), 1.5 * s),
                HU["thin_bone"],
            )
        )  # nasal bone
        ops.append(
            _Op(
                _Capsule(S(_mirror((47, 16, -62), side)), S(_mirror((45, 12, -18), side)), 4.5 * s),
                HU["cortical"] - 300,
            )
        )  # mandibular ramus

    # ---- cavities
    les_hu = disease.lesion_hu
    wall = 1.3

    def carve(
        name: str,
        cav: _Shape,
        c: np.ndarray,
        r: np.ndarray,
        *,
        wall_mm: float = wall,
        label: int | Callable[[_Points], np.ndarray] | None = None,
        polyp_sites: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    ) -> None:
        ops.append(_Op(_Offset(cav, wall_mm), HU["thin_bone"], clear=True))
        content = (
            _make_content(
                disease=disease.get(name),
                cavity=cav,
                centre=c,
                radii=r,
                lesion_hu=les_hu,
                rng=rng,
                inv_w=inv_w,
                pose=pose,
                polyp_sites=polyp_sites,
            )
            if name
            else None
        )
        ops.append(
            _Op(
                cav,
                HU["air"],
                label=LABEL_IDS[name] if label is None and name else label,
                content=content,
            )
        )

    # maxillary sinuses: flat medial wall (lateral nasal wall), rounded lateral recess
    for side, nm, f in (
        (1, "maxillary_L", anatomy.maxillary_left),
        (-1, "maxillary_R", anatomy.maxillary_right),
    ):
        c = S(_mirror((25.5 - 10.0 * (1 - f), -9, -29.0), side))
        r = S((16.0 * f, 17 * f, 17.0 * f))
        medial = 13.8 * s

        def walls(
            p: _Points, side: int = side, medial: float = medial, c: np.ndarray = c
        ) -> np.ndarray:
            """Flat medial wall; flattened anterior and posterolateral walls (axial triangle)."""
            med = medial - side * p.x
            ant = -(p.y - c[1]) - 0.86 * 17.0 * s
            post = 0.6 * side * (p.x - c[0]) + 0.8 * (p.y - c[1]) - 13.0 * s
            return np.maximum(med, np.maximum(ant, post))

        cav = _Intersect(_Ellipsoid(c, r, taper=0.42, taper_down=True), _Fn(walls, c - r, c + r))
        carve(nm, cav, c, r * np.array([0.8, 1.0, 1.0]), wall_mm=1.5)

    # nasal cavity (one label, both sides); septum and turbinates painted afterwards
    nc_low = _Intersect(
        _Box(S((0, -5, -26.0)), S((12.4, 37, 12.5)), rad=4.0),
        _Ellipsoid(S((0, -3, -22.0)), S((19.0, 45, 22.0))),  # rounds the piriform aperture
    )
    nc_up = _Box(S((0, -6, -2)), S((4.6, 24, 14.5)), rad=2.0)
    nc_mid = _Box(S((0, -5, -17)), S((12.3, 30, 6.5)), rad=3.0)
    nc = _Union(nc_low, nc_mid, nc_up)
    turb = anatomy.turbinate
    sites = []
    for side in (1, -1):
        sites.append((S(_mirror((9.5, -6, -18), side)), S((2.8 * 1.0, 7.0, 4.0))))
        sites.append((S(_mirror((10.5, 4, -25), side)), S((3.0, 8.0, 4.5))))
    carve("nasal_cavity", nc, S((0, -6, -20)), S((12, 40, 16)), wall_mm=1.4, polyp_sites=sites)
    ops.append(_Op(_Ellipsoid(S((0, 44, -31)), S((15, 11, 11))), HU["air"]))  # nasopharynx
    for side in (1, -1):
        ops.append(
            _Op(_Ellipsoid(S(_mirror((7, -50, -38), side)), S((4.5, 11, 6))), HU["air"])
        )  # vestibule

    # ethmoid labyrinths: Voronoi honeycomb, anterior / posterior split at the basal lamella
    cell_rng = np.random.default_rng(anatomy.cell_seed)
    for side, n_cells in ((1, anatomy.ethmoid_cells[0]), (-1, anatomy.ethmoid_cells[1])):
        cont = _Box(S(_mirror((9.0, -7, 2.5), side)), S((5.2, 23, 11.5)), rad=2.0)
        lo, hi = cont.lo + 1.5, cont.hi - 1.5
        seeds = lo + cell_rng.uniform(size=(n_cells, 3)) * (hi - lo)
        seeds = seeds[np.argsort(seeds[:, 1])]
        n_ant = max(2, round(n_cells * 0.55))
        vor = _Voronoi(seeds, cont, wall_mm=0.9)
        lab_ant = LABEL_IDS["ethmoid_ant_L" if side == 1 else "ethmoid_ant_R"]
        lab_post = LABEL_IDS["ethmoid_post_L" if side == 1 else "ethmoid_post_R"]

        def eth_label(
            p: _Points, vor: _Voronoi = vor, n_ant: int = n_ant, a: int = lab_ant, b: int = lab_post
        ) -> np.ndarray:
            idx, _ = vor.nearest(p)
            return np.where(idx < n_ant, a, b).astype(np.uint8)

        ops.append(_Op(_Offset(cont, 1.2), HU["thin_bone"], clear=True))
        sfx = "L" if side == 1 else "R"
        contents = []
        for part, sel in (("ant", slice(0, n_ant)), ("post", slice(n_ant, None))):
            dz = disease.get(f"ethmoid_{part}_{sfx}")
            contents.append(_cell_contents(dz, seeds[sel], rng))
        ops.append(
            _Op(
                vor,
                HU["air"],
                label=eth_label,
                content=_ethmoid_content(vor, contents, lesion_hu=les_hu, inv_w=inv_w),
            )
        )

    # septum (deviation, spur), after the nasal air
    dev, spur = anatomy.septum_deviation_mm, anatomy.septum_spur_mm
    spur_side = 1.0 if dev >= 0 else -1.0

    def septum(p: _Points) -> np.ndarray:
        bump = dev * np.exp(-(((p.y + 5) / 22.0) ** 2 + ((p.z + 12) / 14.0) ** 2))
        spur_b = spur_side * spur * np.exp(-(((p.y - 2) / 8.0) ** 2 + ((p.z + 30) / 2.5) ** 2))
        return np.abs(p.x - bump - spur_b) - 1.0

    sept = _Intersect(
        _Fn(septum, nc.lo, nc.hi), _Offset(nc, 0.8), _Fn(lambda p: p.y - 30.0 * s, nc.lo, nc.hi)
    )
    ops.append(
        _Op(
            sept,
            lambda p: np.where(p.y > -25 * s, HU["thin_bone"] * 0.7, HU["cartilage"]),
            clear=True,
        )
    )

    # turbinates: mucosa with a bony core; the ostiomeatal channel of each maxillary sinus
    for side in (1, -1):
        it_c, it_r = S(_mirror((11.2, -4, -29.0), side)), S((4.8 * turb, 28, 6.5 * turb))
        mt_c, mt_r = S(_mirror((6.4, 1, -15.0), side)), S((2.6 * turb, 20, 6.0 * turb))
        for c, r in ((it_c, it_r), (mt_c, mt_r)):
            ops.append(_Op(_Intersect(_Ellipsoid(c, r), nc), HU["mucosa"], clear=True))
            ops.append(
                _Op(
                    _Ellipsoid(c + _mirror((0.6, 0, 0), side), r * np.array([0.3, 0.9, 0.55])),
                    HU["thin_bone"] * 0.6,
                    clear=True,
                )
            )
        ops.append(
            _Op(
                _Capsule(S(_mirror((6.0, -6, -9), side)), S(_mirror((4.6, 6, 12), side)), 0.7),
                HU["thin_bone"],
                clear=True,
            )
        )
        ost = _Capsule(
            S(_mirror((16.0, -11, -19.5), side)), S(_mirror((10.5, -9, -16.5), side)), 1.3 * s
        )
        ops.append(
            _Op(
                ost,
                HU["air"],
                label=LABEL_IDS["nasal_cavity"],
                content=_make_content(
                    disease=RegionDisease(opacification=1.0, pattern="complete")
                    if disease.get("maxillary_L" if side == 1 else "maxillary_R").opacification
                    > 0.5
                    else RegionDisease(),
                    cavity=ost,
                    centre=ost.a,
                    radii=np.array([2.0, 2.0, 2.0]),
                    lesion_hu=les_hu,
                    rng=rng,
                    inv_w=inv_w,
                    pose=pose,
                ),
            )
        )

    # greater wings of the sphenoid: between the orbits and the middle cranial fossae
    for side in (1, -1):
        wing = _Ellipsoid(S(_mirror((34, 20, -2), side)), S((17, 1.3, 15)), rot=_yaw(side * 28.0))
        ops.append(_Op(wing, HU["thin_bone"]))

    # orbits: bony shell, fat, globe, lens, optic nerve, recti
    for side in (1, -1):
        oc, orr = S(_mirror((31, -15, 2), side)), S((17.5, 24, 16.5))
        orb = _Ellipsoid(oc, orr, rot=_yaw(side * 14.0), taper=0.6)
        ops.append(_Op(_Offset(orb, 1.2), HU["thin_bone"], clear=True))
        ops.append(_Op(orb, HU["fat"], clear=True))
        g = S(_mirror((31, -27, 3), side))
        ops.append(_Op(_Ellipsoid(g, S((12, 12, 12))), HU["muscle"] + 5))
        ops.append(_Op(_Ellipsoid(g, S((11.1, 11.1, 11.1))), HU["vitreous"]))
        ops.append(_Op(_Ellipsoid(g + S((0, -9.5, 0)), S((4.2, 1.8, 4.2))), HU["lens"]))
        ops.append(
            _Op(
                _Capsule(
                    S(_mirror((29.5, -15.5, 2), side)), S(_mirror((16, 12, 0), side)), 2.3 * s
                ),
                HU["nerve"],
            )
        )
        for a, b in (
            ((16.5, -24, 2), (16.5, 10, 1)),
            ((45.5, -22, 2), (22, 12, 1)),
            ((31, -22, -10.5), (19, 10, -3)),
            ((31, -22, 14.5), (19, 10, 6)),
        ):
            ops.append(
                _Op(_Capsule(S(_mirror(a, side)), S(_mirror(b, side)), 2.4 * s), HU["muscle"])
            )

    # frontal sinus (two lobes, intersinus septum) in the frontal bone
    front_disease = disease.get("frontal")
    for side, f in ((1, anatomy.frontal_left), (-1, anatomy.frontal_right)):
        if f <= 0.05:
            continue
        c = S(_mirror((1.2 + 10.5 * f, -46.5, 24 + 6 * f), side))
        r = S((10.5 * f, 5.5, 4.0 + 8.5 * f))
        lobe = _Ellipsoid(c, r)
        ops.append(_Op(_Offset(lobe, 1.2), HU["cortical"], clear=True))
        content = _make_content(
            disease=front_disease,
            cavity=lobe,
            centre=c,
            radii=r,
            lesion_hu=les_hu,
            rng=rng,
            inv_w=inv_w,
            pose=pose,
        )
        ops.append(_Op(lobe, HU["air"], label=LABEL_IDS["frontal"], content=content))

    # sphenoid sinus (two halves, off-midline septum)
    sc, sr = S((0, 29, -5)), S((13.0, 10.5, 10.5)) * anatomy.sphenoid
    sx = anatomy.sphenoid_septum_x_mm * s
    sph_disease = disease.get("sphenoid")
    for sgn in (1, -1):

        def half_space(p: _Points, sgn: int = sgn) -> np.ndarray:
            return sgn * (sx - p.x) + 0.5

        half = _Intersect(_Ellipsoid(sc, sr), _Fn(half_space, sc - sr, sc + sr))
        ops.append(_Op(_Offset(half, 1.1), HU["thin_bone"], clear=True))
        content = _make_content(
            disease=sph_disease,
            cavity=half,
            centre=sc,
            radii=sr,
            lesion_hu=les_hu,
            rng=rng,
            inv_w=inv_w,
            pose=pose,
        )
        ops.append(_Op(half, HU["air"], label=LABEL_IDS["sphenoid"], content=content))
    return ops


def _cell_contents(
    dz: RegionDisease, seeds: np.ndarray, rng: np.random.Generator
) -> list[tuple[float, bool]]:
    """Per ethmoid cell: (mucosal thickness mm, complete?) giving about the region's fraction."""
    out: list[tuple[float, bool]] = []
    o = dz.opacification if dz.pattern != "none" else 0.0
    for _ in range(len(seeds)):
        if o <= 0:
            out.append((0.0, False))
            continue
        u = rng.uniform()
        if u < o**1.3:
            out.append((0.0, True))
        else:
            out.append((float(np.clip(rng.normal(1.0, 0.35), 0.2, 2.0) * 2.6 * o), False))
    return out


def _ethmoid_content(
    vor: _Voronoi, contents: list[list[tuple[float, bool]]], *, lesion_hu: float, inv_w: float
) -> _Content | None:
    cells = contents[0] + contents[1]
    if not any(c or m > 0 for m, c in cells):
        return None
    thick = np.array([m for m, _ in cells], np.float32)
    full = np.array([c for _, c in cells], bool)

    def content(p: _Points, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx, _ = vor.nearest(p)
        # distance into the cell from its wall: d is negative inside; mucosa where d > -m
        m = thick[idx]
        frac = np.clip(0.5 - (-(d + m)) * inv_w, 0.0, 1.0).astype(np.float32)
        frac = np.where(full[idx], np.float32(1.0), frac)
        frac = np.where(m > 0, frac, np.where(full[idx], frac, np.float32(0.0)))
        hu = HU["air"] + frac * (np.float32(lesion_hu) - HU["air"])
        return hu.astype(np.float32), frac

    return content


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _head_points(
    grid_affine: np.ndarray, pose: Pose, ks: slice, shape_rc: tuple[int, int]
) -> _Points:
    k = np.arange(ks.start, ks.stop, dtype=np.float32)[:, None, None]
    j = np.arange(shape_rc[0], dtype=np.float32)[None, :, None]
    i = np.arange(shape_rc[1], dtype=np.float32)[None, None, :]
    a = grid_affine.astype(np.float32)
    lps = [a[d, 0] * k + a[d, 1] * j + a[d, 2] * i + a[d, 3] for d in range(3)]
    rt = pose.rotation.T.astype(np.float32)
    t = pose.translation_lps_mm.astype(np.float32)
    rel = [lps[d] - t[d] for d in range(3)]
    head = [rt[d, 0] * rel[0] + rt[d, 1] * rel[1] + rt[d, 2] * rel[2] for d in range(3)]
    return _Points(head[0], head[1], head[2], np.broadcast_to(lps[1], head[0].shape))


def _index_box(
    shape: _Shape,
    grid_affine: np.ndarray,
    pose: Pose,
    grid_shape: tuple[int, int, int],
    margin: int = 2,
) -> tuple[slice, slice, slice] | None:
    lo, hi = shape.lo, shape.hi
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    lps = pose.head_to_lps(corners)
    inv = np.linalg.inv(grid_affine)
    idx = lps @ inv[:3, :3].T + inv[:3, 3]
    a = np.floor(idx.min(axis=0)).astype(int) - margin
    b = np.ceil(idx.max(axis=0)).astype(int) + margin + 1
    a = np.maximum(a, 0)
    b = np.minimum(b, grid_shape)
    if np.any(b <= a):
        return None
    return (slice(a[0], b[0]), slice(a[1], b[1]), slice(a[2], b[2]))


def render_phantom(
    *,
    anatomy: Anatomy,
    disease: Disease,
    pose: Pose,
    scanner: ScannerSettings,
    seed: int,
    grid: Grid | None = None,
    noise: bool = True,
    slab_slices: int = 24,
    keep_ideal: bool = False,
) -> Phantom:
    """Render one case.

    Parameters
    ----------
    anatomy, disease, pose, scanner:
        What to render and how it is acquired.
    seed:
        Seeds the disease geometry details and the noise (same seed → same voxels).
    grid:
        Image grid; default :func:`make_grid` from ``scanner`` and ``pose``.
    noise:
        Add scanner noise (off for clean reference images in tests).
    slab_slices:
        Slices evaluated at once (bounds memory for 512² grids).
    keep_ideal:
        Keep the noiseless, unblurred HU (``Phantom.ideal``) to reconstruct other kernels
        with :func:`acquire_image`.

    Returns
    -------
    Phantom
        int16 HU, uint8 lesion mask, uint8 sinus labels, affine and metadata.
    """
    if grid is None:
        grid = make_grid(scanner=scanner, pose=pose)
    rng = np.random.default_rng(seed)
    shape = grid.shape
    sp = grid.spacing_mm
    inv_w = 1.0 / float(np.cbrt(sp[0] * sp[1] * sp[2]))
    ops = _build_scene(anatomy=anatomy, disease=disease, pose=pose, rng=rng, inv_w=inv_w)

    hu = np.full(shape, HU["air"], np.float32)
    labels = np.zeros(shape, np.uint8)
    lesion = np.zeros(shape, np.uint8)
    boxes = [_index_box(op.shape, grid.affine, pose, shape) for op in ops]
    for k0 in range(0, shape[0], slab_slices):
        k1 = min(shape[0], k0 + slab_slices)
        pts_slab: _Points | None = None
        for op, box in zip(ops, boxes, strict=True):
            if box is None or box[0].stop <= k0 or box[0].start >= k1:
                continue
            if pts_slab is None:
                pts_slab = _head_points(grid.affine, pose, slice(k0, k1), shape[1:])
            ks = slice(max(box[0].start, k0), min(box[0].stop, k1))
            local = (slice(ks.start - k0, ks.stop - k0), box[1], box[2])
            gsl = (ks, box[1], box[2])
            p = pts_slab[local]
            d = op.shape.sdf(p)
            if op.layers is not None:
                h = hu[gsl]
                for layer_sdf, layer_hu in op.layers:
                    a = _occ(layer_sdf(d, p), inv_w)
                    h += a * (layer_hu - h)
                continue
            a = _occ(d, inv_w)
            if not np.any(a > 0):
                continue
            h = hu[gsl]
            val: np.ndarray | float
            frac: np.ndarray | None = None
            if op.content is not None:
                val, frac = op.content(p, d)
            else:
                val = op.hu(p) if callable(op.hu) else op.hu
            h += a * (val - h)
            inside = d < 0
            if op.clear:
                labels[gsl][a >= 0.5] = 0
                lesion[gsl][a >= 0.5] = 0
            if op.label is not None:
                lab = op.label(p) if callable(op.label) else op.label
                labels[gsl] = np.where(inside, lab, labels[gsl])
                les = lesion[gsl]
                les[inside] = 0
                if frac is not None:
                    les[inside & (frac >= 0.5)] = 1
            elif op.content is None and not op.clear:
                # plain tissue painted over a cavity (globe, septum...) removes labels there
                pass

    sinus_lps = pose.head_to_lps(np.asarray(SINUS_CENTRE_HEAD_MM) * anatomy.scale)
    ideal = hu if keep_ideal else None
    hu = acquire_image(hu, spacing_mm=sp, scanner=scanner, rng=rng, noise=noise)
    meta: dict[str, Any] = {
        "sinus_centre_lps_mm": [round(float(v), 3) for v in sinus_lps],
        "head_origin_lps_mm": [round(float(v), 3) for v in pose.translation_lps_mm],
        "pose_rotation_deg": list(pose.rotation_deg),
        "pose_shift_mm": list(pose.shift_mm),
        "spacing_mm": list(sp),
        "noise_hu": scanner.noise_hu,
        "kernel": scanner.kernel,
        "lesion_volume_ml": float(lesion.sum() * abs(np.linalg.det(grid.affine[:3, :3])) / 1000.0),
    }
    return Phantom(
        hu=hu,
        lesion=lesion,
        labels=labels,
        affine=np.asarray(grid.affine, float),
        meta=meta,
        ideal=ideal,
    )


def acquire_image(
    hu: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    scanner: ScannerSettings,
    rng: np.random.Generator,
    noise: bool = True,
) -> np.ndarray:
    """Ideal HU → reconstructed int16 image: slice profile and kernel blur, edge enhancement
    (bone kernels), correlated noise, −1024 outside the reconstruction circle."""
    ds, dr, _ = spacing_mm
    sig_z = scanner.slice_thickness_mm / 2.355 / ds
    sig_xy = scanner.kernel_sigma_mm / dr
    sig = (sig_z * 0.6, sig_xy, sig_xy)
    out = (
        ndimage.gaussian_filter(hu, sigma=sig, mode="nearest", truncate=3.0)
        if max(sig) > 0.05
        else hu
    )
    if scanner.edge_enhance > 0:
        wide = ndimage.gaussian_filter(
            out, sigma=(0, 1.6 / dr, 1.6 / dr), mode="nearest", truncate=3.0
        )
        out = out + scanner.edge_enhance * (out - wide)
    if noise and scanner.noise_hu > 0:
        n = rng.standard_normal(size=hu.shape, dtype=np.float32)
        corr = 0.45 / dr
        n = ndimage.gaussian_filter(n, sigma=(0.0, corr, corr), mode="wrap", truncate=3.0)
        std = float(n.std()) or 1.0
        out = out + n * np.float32(scanner.noise_hu / std)
    rows, cols = hu.shape[1:]
    yy, xx = np.ogrid[:rows, :cols]
    r2 = (yy - (rows - 1) / 2) ** 2 + (xx - (cols - 1) / 2) ** 2
    outside = r2 > ((min(rows, cols) / 2) ** 2)
    out = np.clip(np.rint(out), -1024, 3071).astype(np.int16)
    out[:, outside] = -1024
    return out
