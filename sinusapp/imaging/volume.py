"""The :class:`Volume`: a CT as an int16 HU array with its geometry and source metadata.

Coordinate convention (the only one in SinusApp): DICOM patient coordinates (LPS: +x to the
patient's Left, +y Posterior, +z Superior), arrays indexed ``[slice, row, column]``, and a 4×4
``affine`` that maps an index ``(k, j, i)`` — slice, row, column — to LPS millimetres::

    xyz = affine[:3, :3] @ (k, j, i) + affine[:3, 3]

Column 0 of the affine is the slice direction (scaled by the slice spacing), column 1 the
direction in which the *row index* grows (i.e. DICOM's column cosines, scaled by
PixelSpacing[0], the row spacing), column 2 the direction in which the *column index* grows
(DICOM's row cosines, scaled by PixelSpacing[1]). Trap: ImageOrientationPatient lists the row
cosines first, PixelSpacing lists the row spacing first — they do not pair up by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sinusapp.findings import Finding

__all__ = ["SeriesInfo", "Volume", "affine_from_geometry", "sub_grid_affine"]


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """Identifying metadata of the source series (empty strings when absent)."""

    series_uid: str = ""
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    sop_instance_uids: tuple[str, ...] = ()
    sop_class_uid: str = ""
    modality: str = "CT"
    series_description: str = ""
    series_number: int | None = None
    study_description: str = ""
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    manufacturer: str = ""
    manufacturer_model: str = ""
    convolution_kernel: str = ""
    slice_thickness_mm: float | None = None
    body_part: str = ""
    kvp: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]


def affine_from_geometry(
    *,
    origin_lps: np.ndarray,
    row_cosines: np.ndarray,
    column_cosines: np.ndarray,
    slice_direction: np.ndarray,
    spacing_mm: tuple[float, float, float],
) -> np.ndarray:
    """Build the index → LPS affine.

    Parameters
    ----------
    origin_lps:
        ImagePositionPatient of the first slice (centre of voxel ``(0, 0, 0)``).
    row_cosines, column_cosines:
        The two halves of ImageOrientationPatient: the direction of a row (column index grows)
        and of a column (row index grows).
    slice_direction:
        Unit vector from one slice to the next (equals the normal for an untilted series).
    spacing_mm:
        ``(slice, row, column)`` spacing: slice step, PixelSpacing[0], PixelSpacing[1].
    """
    a = np.eye(4)
    a[:3, 0] = np.asarray(slice_direction, float) * spacing_mm[0]
    a[:3, 1] = np.asarray(column_cosines, float) * spacing_mm[1]
    a[:3, 2] = np.asarray(row_cosines, float) * spacing_mm[2]
    a[:3, 3] = np.asarray(origin_lps, float)
    return a


def sub_grid_affine(affine: np.ndarray, *, start: ArrayLike) -> np.ndarray:
    """The index → LPS affine of the sub-grid whose first voxel is index ``start`` (k, j, i)
    of ``affine``'s grid: same axes and spacing, origin moved there (a crop keeps its place
    in the patient)."""
    out = np.array(affine, dtype=float, copy=True)
    out[:3, 3] = out[:3, :3] @ np.asarray(start, dtype=float) + out[:3, 3]
    return out


@dataclass(frozen=True, slots=True, eq=False)
class Volume:
    """A CT volume: int16 HU voxels on a regular grid, its geometry, and where it came from.

    Attributes
    ----------
    array:
        int16 Hounsfield units, ``[slice, row, column]``.
    affine:
        4×4 index → LPS mm (see the module docstring).
    info:
        :class:`SeriesInfo` of the source series.
    findings:
        Geometry and quality findings made while building the volume (tilt, gaps, ...).
    resampled:
        True when the slices were resampled onto a regular grid (tilt or irregular spacing).
    """

    array: np.ndarray
    affine: np.ndarray
    info: SeriesInfo = field(default_factory=SeriesInfo)
    findings: tuple[Finding, ...] = ()
    resampled: bool = False

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(
                f"Volume.array must be 3-D [slice, row, column], got shape {self.array.shape}"
            )
        if self.array.dtype != np.int16:
            raise ValueError(f"Volume.array must be int16 HU, got {self.array.dtype}")
        aff = np.asarray(self.affine, dtype=float)
        if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
            raise ValueError(f"Volume.affine must be a finite 4×4 matrix, got {aff!r}")
        if abs(np.linalg.det(aff[:3, :3])) < 1e-9:
            raise ValueError("Volume.affine is singular (zero spacing or collinear axes)")
        object.__setattr__(self, "affine", aff)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, columns)``."""
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing ``(slice, row, column)`` in mm (lengths of the affine's columns)."""
        s = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(s[0]), float(s[1]), float(s[2]))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (the affine's determinant, mm³ / 1000)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Physical extent ``(slice, row, column)`` from first to last voxel centre, in mm."""
        sp = self.spacing_mm
        return tuple(float((n - 1) * s) for n, s in zip(self.shape, sp, strict=True))  # type: ignore[return-value]

    def index_to_lps(self, index: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` indices ``(k, j, i)`` to LPS millimetres."""
        idx = np.asarray(index, float)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` LPS millimetres to (fractional) indices ``(k, j, i)``."""
        inv = np.linalg.inv(self.affine)
        p = np.asarray(xyz, float)
        return p @ inv[:3, :3].T + inv[:3, 3]

    def index_box(self, lo_lps: ArrayLike, hi_lps: ArrayLike) -> tuple[slice, slice, slice]:
        """The smallest index box of this grid that holds the LPS box ``[lo_lps, hi_lps]``
        (its eight corners mapped through the affine, so an oblique grid is covered too),
        clipped to the grid; empty along an axis the box misses."""
        lo, hi = np.asarray(lo_lps, dtype=float), np.asarray(hi_lps, dtype=float)
        corners = np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        idx = self.lps_to_index(corners)
        shape = np.asarray(self.shape)
        first = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, shape)
        last = np.clip(np.ceil(idx.max(axis=0)).astype(int) + 1, first, shape)
        return tuple(slice(int(a), int(b)) for a, b in zip(first, last, strict=True))  # type: ignore[return-value]

    def with_findings(self, *extra: Finding) -> Volume:
        """Return a copy with more findings appended."""
        return replace(self, findings=(*self.findings, *extra))
