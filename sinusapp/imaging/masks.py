"""Load a reference segmentation onto a CT volume's grid: DICOM SEG, NRRD (3D Slicer), NIfTI.

Every format is first read as *an array with its own index → LPS affine*, then resampled by
nearest neighbour onto the :class:`~sinusapp.imaging.Volume` grid (a plain copy when the grids
coincide). So a mask drawn on the original tilted slices, on a resampled grid or on a cropped
sub-volume lands where it belongs, and one that does not overlap the CT is refused.

Conventions handled here
------------------------
- DICOM SEG: frames are matched to CT slices by ReferencedSOPInstanceUID when the volume was
  not resampled, otherwise placed by PlanePositionSequence / PlaneOrientationSequence /
  PixelMeasuresSequence. Segment *n* becomes label value *n*. A different FrameOfReferenceUID
  than the CT's is an error.
- NRRD: ``space`` ``left-posterior-superior`` (Slicer's default) or
  ``right-anterior-superior``; ``space directions`` rows are the axis vectors, ``space
  origin`` the first voxel's centre. A 4-D Slicer ``.seg.nrrd`` (one layer per segment) is
  flattened with the layer's ``SegmentN_LabelValue`` values.
- NIfTI: the sform (or qform) maps to RAS; LPS = diag(−1, −1, 1) · RAS.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sinusapp.errors import InputError
from sinusapp.imaging.volume import Volume

__all__ = ["MaskOnGrid", "load_reference_mask", "read_mask_file", "resample_nearest"]

log = logging.getLogger(__name__)

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


class MaskOnGrid:
    """A label array ``[a, b, c]`` with its index → LPS affine and FrameOfReferenceUID."""

    __slots__ = ("affine", "array", "frame_of_reference_uid")

    def __init__(self, array: np.ndarray, affine: np.ndarray, frame_of_reference_uid: str = ""):
        if array.ndim != 3:
            raise ValueError(f"mask array must be 3-D, got shape {array.shape}")
        self.array = array
        self.affine = np.asarray(affine, float)
        self.frame_of_reference_uid = frame_of_reference_uid


def load_reference_mask(path: str | os.PathLike[str], *, volume: Volume) -> np.ndarray:
    """Load a reference mask and return it on ``volume``'s grid.

    Parameters
    ----------
    path:
        A DICOM SEG file (``.dcm``), an NRRD file (``.nrrd``, ``.seg.nrrd``) or a NIfTI file
        (``.nii``, ``.nii.gz``).
    volume:
        The CT the mask belongs to.

    Returns
    -------
    numpy.ndarray
        uint8 labels ``[slice, row, column]`` of ``volume.shape`` (0 = background; a binary
        mask is 0 / 1, a DICOM SEG's segment *n* is *n*).

    Raises
    ------
    InputError
        The file is missing or unreadable, or the mask does not belong to this series
        (different FrameOfReferenceUID, or no overlap with the CT).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("the reference mask file does not exist", path=p, hint="check the path")
    mask = read_mask_file(p, volume=volume)
    vol_for = volume.info.frame_of_reference_uid
    if mask.frame_of_reference_uid and vol_for and mask.frame_of_reference_uid != vol_for:
        raise InputError(
            f"the mask belongs to another frame of reference ({mask.frame_of_reference_uid}) than "
            f"the CT series ({vol_for})",
            path=p,
            hint="choose the segmentation made on this CT series",
        )
    out = resample_nearest(mask.array, mask.affine, shape=volume.shape, target_affine=volume.affine)
    if out is None:
        raise InputError(
            "the mask does not overlap the CT series (no voxel of the mask lies inside the CT)",
            path=p,
            hint="choose the segmentation made on this CT series",
        )
    if mask.array.any() and not out.any():
        log.warning("mask %s has labelled voxels but none inside the CT grid", p)
    return out


def read_mask_file(path: Path, *, volume: Volume | None = None) -> MaskOnGrid:
    """Read a mask file as a :class:`MaskOnGrid` (its own grid), by extension / content."""
    name = path.name.lower()
    try:
        if name.endswith((".nii", ".nii.gz")):
            return _read_nifti(path)
        if name.endswith(".nrrd") or name.endswith(".nhdr"):
            return _read_nrrd(path)
        return _read_seg(path, volume=volume)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, AttributeError, IndexError, TypeError) as exc:
        raise InputError(
            f"the mask file cannot be read ({type(exc).__name__}: {exc})",
            path=path,
            hint="export it again as DICOM SEG, NRRD or NIfTI",
        ) from exc


def _read_nifti(path: Path) -> MaskOnGrid:
    import nibabel as nib

    img = nib.load(str(path))
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(f"not a NIfTI-1/2 image ({type(img).__name__})", path=path)
    data = np.asarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"a NIfTI mask must be 3-D, got shape {data.shape}", path=path)
    affine, code = img.get_sform(coded=True)
    if affine is None or not code:
        affine, code = img.get_qform(coded=True)
    if affine is None:
        affine = img.affine
    return MaskOnGrid(_as_labels(data), _RAS_TO_LPS @ np.asarray(affine, float))


def _read_nrrd(path: Path) -> MaskOnGrid:
    import nrrd

    data, header = nrrd.read(str(path))
    space = str(header.get("space", "left-posterior-superior")).lower()
    dirs = header.get("space directions")
    if dirs is None:
        raise InputError(
            "the NRRD mask has no 'space directions' (no geometry)",
            path=path,
            hint="export it from 3D Slicer as .seg.nrrd or .nrrd",
        )
    rows = [
        None
        if (d is None or (np.ndim(d) == 1 and np.any(np.isnan(np.asarray(d, float)))))
        else np.asarray(d, float)
        for d in dirs
    ]
    spatial = [i for i, d in enumerate(rows) if d is not None]
    if len(spatial) != 3:
        raise InputError(f"the NRRD mask must have 3 spatial axes, got {len(spatial)}", path=path)
    if data.ndim == 4:
        layer_axis = next(i for i in range(4) if i not in spatial)
        data = _flatten_layers(np.moveaxis(data, layer_axis, 0), header)
    origin = np.asarray(header.get("space origin", [0.0, 0.0, 0.0]), float)
    aff = np.eye(4)
    for n, i in enumerate(spatial):
        aff[:3, n] = rows[i]  # type: ignore[index]
    aff[:3, 3] = origin
    if space in ("right-anterior-superior", "ras"):
        aff = _RAS_TO_LPS @ aff
    elif space not in ("left-posterior-superior", "lps"):
        raise InputError(f"unsupported NRRD space {space!r}", path=path, hint="use LPS or RAS")
    return MaskOnGrid(_as_labels(data), aff)


def _flatten_layers(layers: np.ndarray, header: dict) -> np.ndarray:
    out = np.zeros(layers.shape[1:], np.uint8)
    for n in range(layers.shape[0]):
        out = np.where(layers[n] > 0, np.maximum(out, layers[n]).astype(np.uint8), out)
    return out


def _as_labels(data: np.ndarray) -> np.ndarray:
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        arr = np.rint(arr)
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def _read_seg(path: Path, *, volume: Volume | None) -> MaskOnGrid:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except (pydicom.errors.InvalidDicomError, OSError) as exc:
        raise InputError(
            "the mask file is not DICOM, NRRD or NIfTI",
            path=path,
            hint="use a DICOM SEG (.dcm), NRRD or NIfTI file",
        ) from exc
    if ds.get("Modality") != "SEG" or "PerFrameFunctionalGroupsSequence" not in ds:
        raise InputError(
            f"the DICOM file is not a segmentation (Modality {ds.get('Modality', '?')})",
            path=path,
            hint="choose the DICOM SEG file",
        )
    frames = np.asarray(ds.pixel_array)
    if frames.ndim == 2:
        frames = frames[None]
    n = frames.shape[0]
    per_frame = ds.PerFrameFunctionalGroupsSequence
    shared = (
        ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    )
    seg_type = str(ds.get("SegmentationType", "BINARY"))
    frame_for = str(ds.get("FrameOfReferenceUID", ""))

    def item(frame: pydicom.Dataset, seq: str) -> pydicom.Dataset | None:
        if seq in frame:
            return frame[seq].value[0]
        if shared is not None and seq in shared:
            return shared[seq].value[0]
        return None

    labels = []
    refs: list[str | None] = []
    positions = []
    for i in range(n):
        f = per_frame[i]
        sid = item(f, "SegmentIdentificationSequence")
        labels.append(int(sid.ReferencedSegmentNumber) if sid is not None else 1)
        ref = None
        if "DerivationImageSequence" in f:
            try:
                ref = str(
                    f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
                )
            except (AttributeError, IndexError):
                ref = None
        refs.append(ref)
        pp = item(f, "PlanePositionSequence")
        positions.append(np.asarray(pp.ImagePositionPatient, float) if pp is not None else None)
    values = (
        (frames > 0)
        if seg_type == "BINARY"
        else (frames >= max(1, int(ds.get("MaximumFractionalValue", 255)) // 2 + 1))
    )

    # 1) by reference to the CT instances (exact, when the volume is the original slices)
    # (one instance per slice: a multi-frame CT has one SOP instance for many slices, so its
    # frames are placed by geometry below)
    if (
        volume is not None
        and not volume.resampled
        and len(volume.info.sop_instance_uids) == volume.shape[0]
        and all(refs)
    ):
        index = {u: k for k, u in enumerate(volume.info.sop_instance_uids)}
        if all(r in index for r in refs) and frames.shape[1:] == volume.shape[1:]:
            out = np.zeros(volume.shape, np.uint8)
            for i in range(n):
                k = index[refs[i]]  # type: ignore[index]
                out[k][values[i]] = labels[i]
            log.debug("SEG %s placed by ReferencedSOPInstanceUID", path)
            return MaskOnGrid(out, volume.affine, frame_for)

    # 2) by geometry: stack frames along the normal of a common orientation
    po = item(per_frame[0], "PlaneOrientationSequence")
    pm = item(per_frame[0], "PixelMeasuresSequence")
    if po is None or pm is None or any(p is None for p in positions):
        raise InputError(
            "the SEG has neither matching references nor plane geometry",
            path=path,
            hint="export the SEG with plane positions",
        )
    iop = np.asarray(po.ImageOrientationPatient, float)
    row_cos, col_cos = iop[:3], iop[3:]
    normal = np.cross(row_cos, col_cos)
    ps = np.asarray(pm.PixelSpacing, float)
    pos = np.array(positions, float)
    dist = pos @ normal
    uniq = np.unique(np.round(dist, 3))
    if len(uniq) > 1:
        steps = np.diff(uniq)
        step = float(np.min(steps))
    else:
        step = float(pm.get("SpacingBetweenSlices", pm.get("SliceThickness", 1.0)) or 1.0)
    k_of = np.rint((np.round(dist, 3) - uniq[0]) / step).astype(int)
    n_slices = int(k_of.max()) + 1
    out = np.zeros((n_slices, frames.shape[1], frames.shape[2]), np.uint8)
    for i in range(n):
        out[k_of[i]][values[i]] = labels[i]
    first = pos[np.argmin(dist)]
    # in-plane origin must agree across frames (a tilted stack keeps its own direction)
    aff = np.eye(4)
    stack_dir = (
        normal
        if len(uniq) == 1
        else (pos[np.argmax(dist)] - first) / max(float(uniq[-1] - uniq[0]), 1e-9) * 1.0
    )
    aff[:3, 0] = stack_dir * step if len(uniq) > 1 else normal * step
    aff[:3, 1] = col_cos * ps[0]
    aff[:3, 2] = row_cos * ps[1]
    aff[:3, 3] = first
    log.debug("SEG %s placed by plane positions (%d frames → %d slices)", path, n, n_slices)
    return MaskOnGrid(out, aff, frame_for)


def resample_nearest(
    array: np.ndarray,
    source_affine: np.ndarray,
    *,
    shape: tuple[int, int, int],
    target_affine: np.ndarray,
) -> np.ndarray | None:
    """Nearest-neighbour resampling of ``array`` (index → LPS ``source_affine``) onto the grid
    ``shape`` / ``target_affine``; None when the two grids do not overlap at all."""
    src_aff = np.asarray(source_affine, float)
    tgt_aff = np.asarray(target_affine, float)
    src_shape = np.array(array.shape)
    # Fast path: same grid
    if tuple(array.shape) == tuple(shape) and np.allclose(src_aff, tgt_aff, atol=1e-3):
        return np.ascontiguousarray(array, dtype=np.uint8)
    # Overlap test on the bounding boxes (in target index space)
    m = np.linalg.inv(src_aff) @ tgt_aff  # target index → source index
    corners = np.array(
        [
            [a, b, c, 1.0]
            for a in (0, shape[0] - 1)
            for b in (0, shape[1] - 1)
            for c in (0, shape[2] - 1)
        ]
    )
    src_c = corners @ m.T
    lo, hi = src_c[:, :3].min(axis=0), src_c[:, :3].max(axis=0)
    if np.any(hi < -0.5) or np.any(lo > src_shape - 0.5):
        return None
    out = np.zeros(shape, np.uint8)
    j = np.arange(shape[1], dtype=float)[:, None]
    i = np.arange(shape[2], dtype=float)[None, :]
    found = False
    for k in range(shape[0]):
        idx = [
            np.rint(m[d, 0] * k + m[d, 1] * j + m[d, 2] * i + m[d, 3]).astype(np.int64)
            for d in range(3)
        ]
        ok = np.ones(idx[0].shape, bool)
        for d in range(3):
            ok &= (idx[d] >= 0) & (idx[d] < src_shape[d])
        if not ok.any():
            continue
        found = True
        out[k][ok] = array[idx[0][ok], idx[1][ok], idx[2][ok]]
    return out if found else None
