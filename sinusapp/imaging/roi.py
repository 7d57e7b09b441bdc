"""Measurements on one screen slice, without Qt: the HU statistics of an elliptical ROI.

The viewer draws the ROI in screen millimetres (x to the right, y down, the slice's pixel
``(row, col)`` covering ``[col·sx, (col+1)·sx) × [row·sy, (row+1)·sy)``); a pixel belongs to
the ROI when its centre lies inside the ellipse inscribed in the dragged rectangle, as in
RadiAnt's and Horos' ellipse tools.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["RoiStats", "ellipse_roi_stats"]


@dataclass(frozen=True, slots=True)
class RoiStats:
    """HU statistics of an ROI: ``n`` pixels, their mean / SD / min / max, and the area."""

    n: int
    mean_hu: float
    sd_hu: float
    min_hu: float
    max_hu: float
    area_mm2: float

    def text(self) -> str:
        """``"mean 35 ± 12 HU (SD), 150 mm²"`` (``"empty ROI"`` with no pixel inside)."""
        if self.n == 0:
            return "empty ROI"
        return f"mean {self.mean_hu:.0f} ± {self.sd_hu:.0f} HU (SD), {self.area_mm2:.0f} mm²"

    def short_text(self) -> str:
        """``"35 ± 12 HU, 150 mm²"`` (mean ± SD) for a narrow list."""
        if self.n == 0:
            return "empty ROI"
        return f"{self.mean_hu:.0f} ± {self.sd_hu:.0f} HU, {self.area_mm2:.0f} mm²"


def ellipse_roi_stats(
    image: np.ndarray,
    *,
    spacing_x_mm: float,
    spacing_y_mm: float,
    x0_mm: float,
    y0_mm: float,
    x1_mm: float,
    y1_mm: float,
) -> RoiStats:
    """Statistics of the pixels of ``image`` (a 2-D HU slice in screen order) whose centres
    lie inside the ellipse inscribed in the rectangle with corners ``(x0, y0)`` and
    ``(x1, y1)`` (screen mm; any order). The SD is the sample SD (n − 1), 0 for one pixel.

    Raises
    ------
    ValueError
        ``image`` is not 2-D or a spacing is not positive.
    """
    a = np.asarray(image)
    if a.ndim != 2:
        raise ValueError(f"an ROI needs a 2-D slice; got an array of shape {a.shape}")
    if not (spacing_x_mm > 0 and spacing_y_mm > 0):
        raise ValueError(
            f"pixel spacing must be positive; got x {spacing_x_mm} mm, y {spacing_y_mm} mm"
        )
    cx, cy = (x0_mm + x1_mm) / 2, (y0_mm + y1_mm) / 2
    rx, ry = abs(x1_mm - x0_mm) / 2, abs(y1_mm - y0_mm) / 2
    empty = RoiStats(0, math.nan, math.nan, math.nan, math.nan, 0.0)
    if rx <= 0 or ry <= 0:
        return empty
    h, w = a.shape
    # only the pixels of the bounding box are looked at
    c_lo = max(math.floor((cx - rx) / spacing_x_mm), 0)
    c_hi = min(math.ceil((cx + rx) / spacing_x_mm), w)
    r_lo = max(math.floor((cy - ry) / spacing_y_mm), 0)
    r_hi = min(math.ceil((cy + ry) / spacing_y_mm), h)
    if c_lo >= c_hi or r_lo >= r_hi:
        return empty
    xs = (np.arange(c_lo, c_hi) + 0.5) * spacing_x_mm
    ys = (np.arange(r_lo, r_hi) + 0.5) * spacing_y_mm
    inside = ((xs[None, :] - cx) / rx) ** 2 + ((ys[:, None] - cy) / ry) ** 2 <= 1.0
    vals = a[r_lo:r_hi, c_lo:c_hi][inside].astype(np.float64)
    if vals.size == 0:
        return empty
    return RoiStats(
        n=int(vals.size),
        mean_hu=float(vals.mean()),
        sd_hu=float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
        min_hu=float(vals.min()),
        max_hu=float(vals.max()),
        area_mm2=float(vals.size * spacing_x_mm * spacing_y_mm),
    )
