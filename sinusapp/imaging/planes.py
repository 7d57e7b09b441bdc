"""Plane geometry for the slice viewer: reformat a ``[slice, row, column]`` volume into
axial, coronal and sagittal screen images with radiological orientation. No Qt here.

Screen conventions (radiological, as in every PACS viewer):

============  ==================  ==================  ================
plane          screen left→right   screen top→bottom   through-plane
============  ==================  ==================  ================
axial          R → L  (+x LPS)     A → P  (+y LPS)     S/I
coronal        R → L  (+x LPS)     S → I  (−z LPS)     A/P
sagittal       A → P  (+y LPS)     S → I  (−z LPS)     R/L
============  ==================  ==================  ================

Each array axis is matched to the patient axis its direction (a column of the affine) is
closest to; a plane view is then a transposed / flipped *view* of the array (no copy), with
the pixel size of the two in-plane array axes, so the physical aspect is right. An oblique
series is shown on its nearest orthogonal planes (the DICOM layer resamples gantry tilt).

Screen coordinates are millimetres from the top-left corner of the image: pixel ``(r, c)``
covers ``[c·sx, (c+1)·sx) × [r·sy, (r+1)·sy)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from skimage import measure

from sinusapp.imaging.metrics import dice

__all__ = [
    "Plane",
    "PlaneGeometry",
    "array_axes_to_patient",
    "body_bbox",
    "contour_polyline",
    "mask_bbox",
    "plane_geometry",
]


class Plane(StrEnum):
    """The three orthogonal viewing planes."""

    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


# plane → (through LPS axis, (screen-x LPS axis, direction), (screen-y LPS axis, direction),
#          labels left, right, top, bottom)
_PLANES: dict[Plane, tuple[int, tuple[int, int], tuple[int, int], tuple[str, str, str, str]]] = {
    Plane.AXIAL: (2, (0, +1), (1, +1), ("R", "L", "A", "P")),
    Plane.CORONAL: (1, (0, +1), (2, -1), ("R", "L", "S", "I")),
    Plane.SAGITTAL: (0, (1, +1), (2, -1), ("A", "P", "S", "I")),
}


def array_axes_to_patient(affine: np.ndarray) -> tuple[tuple[int, int], ...]:
    """For each patient axis (L, P, S): ``(array axis, sign)`` whose direction is closest.

    ``sign`` is +1 when the index growing along that array axis moves towards +L / +P / +S.

    Raises
    ------
    ValueError
        When two array axes map to the same patient axis (degenerate orientation).
    """
    directions = np.asarray(affine, float)[:3, :3]
    norms = np.linalg.norm(directions, axis=0)
    cos = directions / norms  # column a = unit direction of array axis a in LPS
    result: list[tuple[int, int]] = [(-1, 0)] * 3
    used: set[int] = set()
    # assign greedily by the strongest alignment first
    order = sorted(((abs(cos[p, a]), p, a) for p in range(3) for a in range(3)), reverse=True)
    for _, p, a in order:
        if result[p][0] >= 0 or a in used:
            continue
        result[p] = (a, 1 if cos[p, a] >= 0 else -1)
        used.add(a)
    if len(used) != 3:
        raise ValueError(f"cannot match array axes to patient axes for affine {affine!r}")
    return tuple(result)


@dataclass(frozen=True, slots=True)
class PlaneGeometry:
    """How one plane is cut from the array and laid out on screen.

    Attributes
    ----------
    plane:
        Which plane.
    through_axis:
        Array axis perpendicular to the screen (the slice index runs along it).
    x_axis, y_axis:
        Array axes shown left→right and top→bottom.
    flip_x, flip_y:
        Whether those axes are reversed on screen.
    n_slices, width, height:
        Number of slices along ``through_axis``; image size in pixels.
    spacing_x_mm, spacing_y_mm, spacing_through_mm:
        Pixel size on screen and slice spacing.
    labels:
        Orientation letters at the left, right, top and bottom edges.
    """

    plane: Plane
    through_axis: int
    x_axis: int
    y_axis: int
    flip_x: bool
    flip_y: bool
    n_slices: int
    width: int
    height: int
    spacing_x_mm: float
    spacing_y_mm: float
    spacing_through_mm: float
    labels: tuple[str, str, str, str]

    @property
    def extent_mm(self) -> tuple[float, float]:
        """Image width and height on screen in mm."""
        return self.width * self.spacing_x_mm, self.height * self.spacing_y_mm

    def extract(self, array: np.ndarray, index: int) -> np.ndarray:
        """The 2-D screen image ``[screen row, screen column]`` of slice ``index`` (a view)."""
        key: list[int | slice] = [slice(None)] * 3
        key[self.through_axis] = int(index)
        sl = array[tuple(key)]  # a view, no copy
        # remaining axes keep their order; find where x and y ended up
        remaining = [a for a in range(3) if a != self.through_axis]
        img = sl if remaining.index(self.y_axis) == 0 else sl.T
        if self.flip_y:
            img = img[::-1, :]
        if self.flip_x:
            img = img[:, ::-1]
        return img

    def pixel_of_voxel(self, voxel: tuple[int, int, int]) -> tuple[int, int]:
        """Screen ``(row, column)`` of a voxel ``(k, j, i)``."""
        r = int(voxel[self.y_axis])
        c = int(voxel[self.x_axis])
        if self.flip_y:
            r = self.height - 1 - r
        if self.flip_x:
            c = self.width - 1 - c
        return r, c

    def voxel_of_pixel(self, row: int, col: int, index: int) -> tuple[int, int, int]:
        """Voxel ``(k, j, i)`` shown at screen pixel ``(row, col)`` of slice ``index``."""
        if self.flip_y:
            row = self.height - 1 - row
        if self.flip_x:
            col = self.width - 1 - col
        v = [0, 0, 0]
        v[self.through_axis] = int(index)
        v[self.y_axis] = int(row)
        v[self.x_axis] = int(col)
        return v[0], v[1], v[2]

    def mm_to_pixel(self, x_mm: float, y_mm: float) -> tuple[int, int] | None:
        """Screen pixel ``(row, col)`` under a point in screen mm, or ``None`` outside."""
        c = int(np.floor(x_mm / self.spacing_x_mm))
        r = int(np.floor(y_mm / self.spacing_y_mm))
        if 0 <= r < self.height and 0 <= c < self.width:
            return r, c
        return None

    def pixel_centre_mm(self, row: float, col: float) -> tuple[float, float]:
        """Screen mm of a pixel centre."""
        return (col + 0.5) * self.spacing_x_mm, (row + 0.5) * self.spacing_y_mm

    def box_rect_mm(self, box: BBox) -> tuple[float, float, float, float]:
        """Screen rectangle ``(x, y, width, height)`` in mm covered by a voxel box ``(k, j, i)``
        slices (:func:`body_bbox`, :func:`mask_bbox`) on this plane."""
        xs, ys = box[self.x_axis], box[self.y_axis]
        c0, c1 = (xs.start, xs.stop)
        if self.flip_x:
            c0, c1 = self.width - xs.stop, self.width - xs.start
        r0, r1 = (ys.start, ys.stop)
        if self.flip_y:
            r0, r1 = self.height - ys.stop, self.height - ys.start
        return (
            c0 * self.spacing_x_mm,
            r0 * self.spacing_y_mm,
            (c1 - c0) * self.spacing_x_mm,
            (r1 - r0) * self.spacing_y_mm,
        )


def plane_geometry(
    *, plane: Plane, shape: tuple[int, int, int], affine: np.ndarray
) -> PlaneGeometry:
    """Geometry of ``plane`` for a volume of ``shape`` with index → LPS ``affine``."""
    mapping = array_axes_to_patient(affine)
    spacing = np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0)
    through_lps, (x_lps, x_dir), (y_lps, y_dir), labels = _PLANES[Plane(plane)]
    through_axis = mapping[through_lps][0]
    x_axis, x_sign = mapping[x_lps]
    y_axis, y_sign = mapping[y_lps]
    return PlaneGeometry(
        plane=Plane(plane),
        through_axis=through_axis,
        x_axis=x_axis,
        y_axis=y_axis,
        flip_x=x_sign != x_dir,
        flip_y=y_sign != y_dir,
        n_slices=int(shape[through_axis]),
        width=int(shape[x_axis]),
        height=int(shape[y_axis]),
        spacing_x_mm=float(spacing[x_axis]),
        spacing_y_mm=float(spacing[y_axis]),
        spacing_through_mm=float(spacing[through_axis]),
        labels=labels,
    )


def contour_polyline(
    mask2d: np.ndarray, *, spacing_x_mm: float, spacing_y_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Outline of a binary slice as one NaN-separated polyline in screen mm.

    Uses :func:`skimage.measure.find_contours` at level 0.5 on the mask's bounding box (fast
    on sparse masks). Returns two empty arrays when the slice holds no mask.
    """
    m = np.asarray(mask2d)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return np.empty(0), np.empty(0)
    cols = np.flatnonzero(m.any(axis=0))
    r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, m.shape[0])
    c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, m.shape[1])
    crop = np.zeros((r1 - r0 + 2, c1 - c0 + 2), dtype=np.uint8)
    crop[1:-1, 1:-1] = m[r0:r1, c0:c1] > 0
    pieces = measure.find_contours(crop, 0.5)
    if not pieces:
        return np.empty(0), np.empty(0)
    total = sum(len(p) for p in pieces) + len(pieces)
    xs = np.full(total, np.nan)
    ys = np.full(total, np.nan)
    pos = 0
    for p in pieces:
        n = len(p)
        ys[pos : pos + n] = (p[:, 0] - 1 + r0 + 0.5) * spacing_y_mm
        xs[pos : pos + n] = (p[:, 1] - 1 + c0 + 0.5) * spacing_x_mm
        pos += n + 1
    return xs, ys


BBox = tuple[slice, slice, slice]


#: most samples :func:`body_bbox` filters (bounds its time on any grid)
_BODY_MAX_SAMPLES = 2_000_000


def body_bbox(
    array: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    margin_mm: float = 10.0,
    tissue_hu: float = -300.0,
) -> BBox | None:
    """Voxel box of the patient's body (the largest connected piece of tissue), with a
    margin: what the viewer's "Fit" shows.

    A whole head in a 500 mm field of view filled a third of the view at "Fit" (VHF): the
    surgeon zoomed in on every series first. The couch and a head holder are usually
    apart from the head (air between), so the largest piece is the head; when they touch
    it the box only grows back towards the whole image. Found on a grid of about 4 mm,
    smoothed over 3 samples (3-31 ms on the real heads of ``../shared/data``).
    ``tissue_hu`` −300 sits between air (−1000, or −500 on an uncalibrated scanner such as
    harvard02) and fat (−100). ``None`` when there is no tissue.
    """
    from scipy import ndimage

    a = np.asarray(array)
    sp = np.asarray(spacing_mm, float)
    step = np.maximum(1, np.round(4.0 / np.maximum(sp, 1e-6))).astype(int)
    # at most ~2 million samples whatever the grid (a 700 × 512² series of 2.7 mm voxels
    # would otherwise be filtered at full resolution on the GUI thread)
    while np.prod(np.ceil(np.asarray(a.shape) / step)) > _BODY_MAX_SAMPLES:
        step = step + 1
    # the mean of 3×3×3 samples: single noisy air voxels of a low-dose or uncalibrated scan
    # (harvard02's air at −500 HU) would otherwise join into one piece with the head
    sampled = a[:: step[0], :: step[1], :: step[2]].astype(np.float32)
    small = ndimage.uniform_filter(sampled, size=3, mode="nearest") > tissue_hu
    if not small.any():
        return None
    labels, n = ndimage.label(small)
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        small = labels == int(np.argmax(sizes))
    box = mask_bbox(small)
    if box is None:  # pragma: no cover - small.any() above
        return None
    out = []
    for axis, sl in enumerate(box):
        # one sample more each side: the 3-sample mean drops the body's outermost sample
        pad = int(np.ceil(margin_mm / sp[axis])) + int(step[axis])
        start = max(0, sl.start * step[axis] - pad)
        stop = min(a.shape[axis], sl.stop * step[axis] + pad)
        out.append(slice(int(start), int(stop)))
    return out[0], out[1], out[2]


def mask_bbox(mask: np.ndarray) -> BBox | None:
    """Bounding box of the non-zero voxels as three slices, or ``None`` for an empty mask.

    Scans the whole array (tens of ms at 512×512×300): call it off the GUI thread for big
    masks and pass the result along.
    """
    m = np.asarray(mask)
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(m.any(axis=other))
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return out[0], out[1], out[2]


def _union(a: BBox | None, b: BBox | None) -> BBox | None:
    if a is None:
        return b
    if b is None:
        return a
    return tuple(  # type: ignore[return-value]
        slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True)
    )


def dice_in_boxes(a: np.ndarray, b: np.ndarray, *, box_a: BBox | None, box_b: BBox | None) -> float:
    """Dice (:func:`sinusapp.imaging.metrics.dice`) inside the union of the two masks'
    bounding boxes (fast); 1.0 when both are empty."""
    box = _union(box_a, box_b)
    if box is None:
        return 1.0
    return dice(a[box], b[box])
