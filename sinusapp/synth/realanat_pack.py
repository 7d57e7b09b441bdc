"""A compact copy of the NasalSeg backgrounds, for a machine the shared data do not reach.

The lent GPU machine receives only the repository and at most 64 MiB of carried files, and
``../shared`` does not travel: the 90 NasalSeg crops are 102 MB as lossless JPEG-LS DICOM.
A *pack* holds each crop resampled to about one spacing on every axis (the crop's extent
divided into whole voxels, e.g. 1.254 / 1.241 / 1.250 mm for 1.25; HU trilinear without a
prefilter, or a cubic spline (``hu_order=3``: the head packs), labels nearest)
as an LZMA-compressed ``.npz`` (int16 HU rounded to ``hu_step``, uint8 SinusApp labels, LPS
affine), plus ``PACK.json`` (source, spacing, patients). Measured on all 90 crops: at 1.25
mm 36.4 MB with HU kept to 1 HU, 27.6 MB with ``hu_step`` 4; at 1.0 mm 68.4 MB (1 HU); the
lossless DICOM are 102 MB. The repository (18 MB) and the wheels the device lacks (~10 MB)
travel in the same 64 MiB: see ``benchmarks/gpu_real_anatomy.sh``.

:func:`sinusapp.synth.realanat.load_background` reads a pack entry when the folder holds one
(``<patient>.npz.xz``), so ``sinusapp synth --real-anatomy PACK_DIR`` renders the cohort from a
pack as from the DICOM folder. The cohort differs only by the pack's resampling: train at the
pack's spacing or coarser.
"""

from __future__ import annotations

import io
import json
import logging
import lzma
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from sinusapp.synth.realanat import Background, background_patients, load_background

__all__ = [
    "PACK_MANIFEST",
    "PACK_SUFFIX",
    "read_pack_entry",
    "write_background_pack",
    "write_pack_entry",
]

log = logging.getLogger(__name__)

#: file name of one pack entry: ``<patient>`` + this
PACK_SUFFIX = ".npz.xz"
#: the pack's description (source, spacing, patients)
PACK_MANIFEST = "PACK.json"


#: HU interpolation of a pack: 1 trilinear, 3 cubic spline (see :func:`write_pack_entry`)
HU_ORDERS = (1, 3)


def _resample(bg: Background, *, spacing_mm: float, hu_order: int = 1) -> Background:
    """``bg`` on a grid of about ``spacing_mm`` per axis over the same extent and orientation
    (a whole number of voxels per axis; each voxel keeps its LPS position); HU interpolated
    with spline order ``hu_order``, labels nearest."""
    step = np.sqrt((bg.affine[:3, :3] ** 2).sum(axis=0))  # mm per index along each axis
    zoom = step / float(spacing_mm)
    hu = ndimage.zoom(
        bg.hu.astype(np.float32), zoom, order=hu_order, mode="nearest", grid_mode=True
    )
    shape = np.array(hu.shape)
    labels = ndimage.zoom(
        bg.labels, shape / np.array(bg.labels.shape), order=0, mode="nearest", grid_mode=True
    )
    scale = np.array(bg.labels.shape) / shape  # old index per new index
    affine = bg.affine.copy()
    affine[:3, :3] = bg.affine[:3, :3] * scale
    # grid_mode: voxel centres of the new grid sit at (i + 0.5) * scale - 0.5 old indices
    affine[:3, 3] = bg.affine[:3, :3] @ (0.5 * scale - 0.5) + bg.affine[:3, 3]
    return Background(patient=bg.patient, hu=hu, labels=labels.astype(np.uint8), affine=affine)


def _check(*, spacing_mm: float, hu_step: int, hu_order: int = 1) -> None:
    if hu_order not in HU_ORDERS:
        raise ValueError(f"hu_order must be one of {HU_ORDERS}, got {hu_order!r}")
    if not spacing_mm > 0:
        raise ValueError(f"spacing_mm must be > 0 mm, got {spacing_mm!r}")
    if isinstance(hu_step, bool) or not isinstance(hu_step, int) or hu_step < 1:
        raise ValueError(f"hu_step must be a positive integer (HU), got {hu_step!r}")


def write_pack_entry(
    background: Background,
    *,
    path: Path,
    spacing_mm: float,
    hu_step: int = 4,
    hu_order: int = 1,
) -> int:
    """Write one background (any: a NasalSeg crop, a head crop) as a pack entry at
    ``spacing_mm`` with HU in steps of ``hu_step``; returns its size in bytes.

    ``hu_order`` 3 (cubic spline) keeps more of the edges than trilinear (1) when the cases
    rendered from the pack are resampled once more onto finer pixels, as head cases are
    (0.6-1.0 mm): measured on the two packed heads (session 30, benchmarks/RESULTS.md),
    trilinear packs at 1.25 mm made their cases' bone edges about 0.25 mm wider on the
    network's 1.25 mm grid than the real heads' own (``benchmarks/edge_sharpness.py``).
    """
    _check(spacing_mm=spacing_mm, hu_step=hu_step, hu_order=hu_order)
    bg = _resample(background, spacing_mm=spacing_mm, hu_order=hu_order)
    buf = io.BytesIO()
    np.savez(
        buf,
        hu=(np.rint(np.clip(bg.hu, -1024, 3071) / hu_step) * hu_step).astype(np.int16),
        labels=bg.labels,
        affine=bg.affine,
    )
    data = lzma.compress(buf.getvalue(), preset=6)
    Path(path).write_bytes(data)
    log.info("packed %s: %s voxels, %.2f MB", background.patient, bg.hu.shape, len(data) / 1e6)
    return len(data)


def write_background_pack(
    *,
    root: Path,
    out: Path,
    spacing_mm: float,
    hu_step: int = 4,
    patients: list[str] | None = None,
) -> dict[str, Any]:
    """Pack the NasalSeg backgrounds of ``root`` (all, or ``patients``) into ``out``.

    ``hu_step``: HU are stored rounded to multiples of it (4: an error of 1.2 HU rms, far
    below CT noise of 10-20 HU, for about a third less size; 1: lossless after resampling).

    Returns the pack's manifest (also written as ``out/PACK.json``): ``spacing_mm``,
    ``hu_step``, ``source``, ``patients`` and ``bytes`` (their total size).

    Raises
    ------
    ValueError
        ``spacing_mm`` is not positive, ``hu_step`` not a positive integer, or a patient's
        crop fails the checks of :func:`~sinusapp.synth.realanat.load_background`.
    """
    _check(spacing_mm=spacing_mm, hu_step=hu_step)  # before any crop is read
    root, out = Path(root), Path(out)
    names = patients or sorted(background_patients(root))
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in names:
        total += write_pack_entry(
            load_background(root=root, patient=name),
            path=out / f"{name}{PACK_SUFFIX}",
            spacing_mm=spacing_mm,
            hu_step=hu_step,
        )
    manifest = {
        "spacing_mm": float(spacing_mm),
        "hu_step": int(hu_step),
        "source": str(root),
        "patients": list(names),
        "bytes": total,
        "format": "int16 HU, uint8 SinusApp labels, float64 LPS affine; npz in LZMA",
    }
    (out / PACK_MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def read_pack_entry(path: Path, *, patient: str) -> Background:
    """The background stored at ``path`` (a ``<patient>.npz.xz`` pack entry).

    Raises
    ------
    ValueError
        The entry is truncated or not a pack entry.
    """
    try:
        raw = lzma.decompress(Path(path).read_bytes())
    except lzma.LZMAError as exc:
        raise ValueError(
            f"{path}: not a readable pack entry ({exc}); write the pack again "
            "(benchmarks/pack_nasalseg.py or make_head_disease.py --pack-heads)"
        ) from exc
    with np.load(io.BytesIO(raw)) as d:
        return Background(
            patient=patient,
            hu=d["hu"].astype(np.float32),
            labels=d["labels"].astype(np.uint8),
            affine=d["affine"].astype(np.float64),
        )
