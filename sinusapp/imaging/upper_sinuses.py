"""Ethmoid, frontal and sphenoid cavities of a real head CT, placed by the model's own labels.

The model's sinus head outlines what real labelled CT teaches it (both maxillary sinuses and
the nasal cavity, NasalSeg). The other paranasal sinuses have no public labels; the
phantom-tuned zones of :mod:`sinusapp.imaging.sinus_labels` sit around a located centre and
missed them on real heads (0 mL of ethmoid on the Visible Human head). Here the zones are
placed relative to the anatomy the model found, which real heads share:

- **midline**: the median LPS x of the nasal-cavity label;
- **orbit floor** (``z_roof``): the 95th percentile of the maxillary labels' z;
- **front / back of the maxillary sinuses** (``y_front`` / ``y_back``): 5th / 95th
  percentiles of their LPS y.

Candidates are the air cells (below -400 HU) in a box above and behind the maxillary sinuses,
two voxels away from the model's cavities (that cuts the ostia joining them). Their
6-connected components are kept when they are sinus-sized, do not reach the box's faces
(outside air, the pharynx, the mastoids) and do not reach down into the nasopharynx; each
then takes its one-voxel partial-volume rim. Only aerated cells are found: a cell opacified
throughout is not told from the orbit or brain tissue next to it, so it is *not found*
(and the report says so) rather than guessed. Each kept voxel gets a zone:

================ ==================================================================
frontal          ``z > z_roof + 20 mm``, ``y < y_front + 20 mm``, ``|u| < 35 mm``
sphenoid         ``y > y_back - 2 mm``, ``|u| < 25 mm``, ``-15 < z - z_roof < 35 mm``
ethmoid          ``|u| < u_max`` (medial maxillary wall + 6 mm, at most 22 mm),
                 ``y_front - 10 < y <= y_back - 2``, ``-10 < z - z_roof <= 30`` mm;
                 anterior / posterior at 55 % of that side's antero-posterior extent
================ ==================================================================

and a component that is at least 75 % one zone takes it whole (a cell belongs to one sinus).
Checked by eye on the real heads in ``../shared/data/realct`` (Visible Human female, the GE
tilted head): see ``tests/imaging/test_upper_sinuses.py`` and the note of the session that
built it. A rough outline, as the report says: check it against the images.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from sinusapp.imaging.quantify import LABEL_IDS

__all__ = ["label_upper_sinuses"]

log = logging.getLogger(__name__)

_BONE_HU = 300.0
_AIR_HU = -400.0
_MAX_COMPONENT_ML = 40.0
_MIN_COMPONENT_ML = 0.03
_PURE_FRACTION = 0.75
_ETHMOID_SPLIT = 0.55
_LOWEST_BELOW_ROOF_MM = 25.0


def _frame(model_labels: np.ndarray, affine: np.ndarray) -> dict[str, float] | None:
    """Midline, orbit floor and maxillary front / back (LPS mm) from the model's labels."""
    mx = np.argwhere(np.isin(model_labels, (LABEL_IDS["maxillary_L"], LABEL_IDS["maxillary_R"])))
    nasal = np.argwhere(model_labels == LABEL_IDS["nasal_cavity"])
    if len(mx) < 200 or len(nasal) < 200:
        return None
    lps_mx = mx @ affine[:3, :3].T + affine[:3, 3]
    lps_nasal = nasal @ affine[:3, :3].T + affine[:3, 3]
    x0 = float(np.median(lps_nasal[:, 0]))
    medial = []
    for value in (LABEL_IDS["maxillary_L"], LABEL_IDS["maxillary_R"]):
        side = lps_mx[model_labels[tuple(mx.T)] == value]
        if len(side) > 100:
            medial.append(float(np.quantile(np.abs(side[:, 0] - x0), 0.05)))
    return {
        "x0": x0,
        "z_roof": float(np.quantile(lps_mx[:, 2], 0.95)),
        "y_front": float(np.quantile(lps_mx[:, 1], 0.05)),
        "y_back": float(np.quantile(lps_mx[:, 1], 0.95)),
        "u_max": float(min((max(medial) if medial else 10.0) + 6.0, 22.0)),
    }


def _box(
    frame: dict[str, float], affine: np.ndarray, shape: tuple[int, ...]
) -> tuple[slice, slice, slice]:
    """Index box of the LPS box that can hold the upper sinuses."""
    x0, zr, yf, yb = frame["x0"], frame["z_roof"], frame["y_front"], frame["y_back"]
    corners = np.array(
        [
            [x, y, z]
            for x in (x0 - 40.0, x0 + 40.0)
            for y in (yf - 25.0, yb + 45.0)
            for z in (zr - 20.0, zr + 75.0)
        ]
    )
    idx = (corners - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    lo = np.maximum(np.floor(idx.min(0)).astype(int), 0)
    hi = np.minimum(np.ceil(idx.max(0)).astype(int) + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


def label_upper_sinuses(
    *, hu: np.ndarray, affine: np.ndarray, model_labels: np.ndarray
) -> tuple[np.ndarray, tuple[slice, slice, slice]] | None:
    """Ethmoid (anterior / posterior, left / right), frontal and sphenoid labels.

    Parameters
    ----------
    hu:
        The CT (``[slice, row, column]``, HU).
    affine:
        Index → LPS (mm) affine of ``hu``.
    model_labels:
        The model's sinus labels on the same grid (``SINUS_LABELS`` values: maxillary L/R,
        nasal cavity).

    Returns
    -------
    ``(labels, box)``: the uint8 upper-sinus labels of ``hu[box]`` (0 elsewhere; no CT-sized
    map is made), or ``None`` when the model's labels give no frame (no maxillary sinus or
    nasal cavity found).
    """
    if hu.shape != model_labels.shape:
        raise ValueError(f"hu {hu.shape} and model_labels {model_labels.shape} differ in shape")
    frame = _frame(model_labels, affine)
    if frame is None:
        log.info("upper sinuses: the model found no maxillary sinus / nasal cavity to anchor on")
        return None
    box = _box(frame, affine, hu.shape)
    sub = hu[box]
    # two voxels around the model's cavities cut the ostia that join the cells to them
    taken = ndimage.binary_dilation(model_labels[box] > 0, iterations=2)
    air = (sub < _AIR_HU) & ~taken
    comp, n = ndimage.label(air)
    if n == 0:
        return np.zeros(sub.shape, np.uint8), box
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
    size = np.bincount(comp.ravel(), minlength=n + 1)
    # air reaching the box's faces is outside air, the pharynx or the mastoids: no sinus
    edge = np.zeros(n + 1, bool)
    for axis in range(3):
        edge[np.take(comp, 0, axis=axis)] = True
        edge[np.take(comp, -1, axis=axis)] = True
    # sinus-sized cells away from the box's faces; coordinates only for their voxels (the
    # outside air and the pharynx, most of the air, never get any)
    keep = (size * voxel_ml >= _MIN_COMPONENT_ML) & (size * voxel_ml <= _MAX_COMPONENT_ML) & ~edge
    keep[0] = False
    idx = np.nonzero(keep[comp])
    cid = comp[idx]
    del comp
    start = np.array([sl.start for sl in box], np.float32)
    rot = affine[:3, :3].astype(np.float32)
    lps = (np.stack(idx, axis=1).astype(np.float32) + start) @ rot.T + affine[:3, 3].astype(
        np.float32
    )
    u = lps[:, 0] - np.float32(frame["x0"])
    y, dz = lps[:, 1], lps[:, 2] - np.float32(frame["z_roof"])
    del lps
    # a cell that reaches down into the nasopharynx is no sinus
    lowest = np.full(n + 1, np.inf, np.float32)
    np.minimum.at(lowest, cid, dz)
    keep &= lowest > -_LOWEST_BELOW_ROOF_MM
    kept = keep[cid]
    au = np.abs(u)
    vz = np.zeros(len(cid), np.uint8)  # the zone of each air voxel
    eth = (
        (au < frame["u_max"])
        & (y > frame["y_front"] - 10.0)
        & (y <= frame["y_back"] - 2.0)
        & (dz > -10.0)
        & (dz <= 30.0)
    )
    vz[eth & (u >= 0)] = LABEL_IDS["ethmoid_ant_L"]
    vz[eth & (u < 0)] = LABEL_IDS["ethmoid_ant_R"]
    vz[(y > frame["y_back"] - 2.0) & (au < 25.0) & (dz > -15.0) & (dz < 35.0)] = LABEL_IDS[
        "sphenoid"
    ]
    vz[(dz > 20.0) & (y < frame["y_front"] + 20.0) & (au < 35.0)] = LABEL_IDS["frontal"]
    vz[~kept] = 0
    # a cell belongs to one sinus: a component mostly of one zone takes it whole
    counts = np.bincount(cid.astype(np.int64) * 16 + vz, minlength=(n + 1) * 16).reshape(n + 1, 16)
    best = np.argmax(counts[:, 1:], axis=1) + 1
    pure = keep & (counts[np.arange(n + 1), best] >= _PURE_FRACTION * np.maximum(size, 1))
    vz = np.where(pure[cid], best[cid], vz).astype(np.uint8)
    # ethmoid: anterior / posterior split per side at 55 % of its antero-posterior extent
    for ant, post in (("ethmoid_ant_L", "ethmoid_post_L"), ("ethmoid_ant_R", "ethmoid_post_R")):
        m = vz == LABEL_IDS[ant]
        if m.sum() < 10:
            continue
        ys = y[m]
        cut = float(ys.min() + _ETHMOID_SPLIT * (ys.max() - ys.min()))
        vz[m & (y > cut)] = LABEL_IDS[post]
    zone = np.zeros(sub.shape, np.uint8)
    zone[idx] = vz
    del idx, cid, u, y, dz
    # the partial-volume rim and thin mucosa of each cell (non-bone, not the model's)
    rim = (sub < _BONE_HU) & ~taken & (zone == 0)
    grown = ndimage.grey_dilation(zone, size=(3, 3, 3))
    zone[rim & (grown > 0)] = grown[rim & (grown > 0)]
    counts = np.bincount(zone.ravel(), minlength=16)
    found = {
        name: round(float(counts[LABEL_IDS[name]]) * voxel_ml, 2)
        for name in (
            "ethmoid_ant_L",
            "ethmoid_ant_R",
            "ethmoid_post_L",
            "ethmoid_post_R",
            "frontal",
            "sphenoid",
        )
    }
    log.info("upper sinuses (anchored on the model's labels): %s mL", found)
    return zone, box
