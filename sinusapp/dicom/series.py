"""Series → :class:`~sinusapp.imaging.Volume`: pixels in HU on a regular LPS grid.

Steps: examine (headers only) → choose the proposed or the named series → assess geometry
(order along the slice normal, tilt, gaps, duplicates) → decode every frame into one
preallocated int16 array, applying RescaleSlope / Intercept per frame → resample onto an
orthogonal, regular grid when the series is tilted or irregularly spaced (flagged in
``findings``). Peak memory stays near 2× the volume's int16 size: the raw stack plus, only
when resampling, the output.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from sinusapp.dicom._pydicom import InvalidDicomError, pydicom
from sinusapp.dicom.codecs import (
    IMAGECODECS_PLUGIN,
    JPEG_EXTENDED_12BIT,
    describe_transfer_syntax,
    imagecodecs_available,
    register_plugins,
)
from sinusapp.dicom.geometry import FrameRef, GeometryAssessment, assess_geometry, frames_of
from sinusapp.dicom.headers import InstanceHeader
from sinusapp.dicom.scan import ScanResult, SeriesEntry, scan
from sinusapp.errors import (
    Cancelled,
    DicomReadError,
    GeometryError,
    SeriesSelectionError,
    UnsupportedTransferSyntaxError,
)
from sinusapp.findings import Finding, Severity
from sinusapp.imaging.volume import SeriesInfo, Volume, affine_from_geometry

log = logging.getLogger(__name__)

__all__ = ["load_volume", "read_frame_hu", "unreadable_beside", "volume_from_headers"]

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]
AIR_HU = -1024
_INT16_MIN, _INT16_MAX = -32768, 32767


def read_frame_hu(path: str | os.PathLike[str], *, frame: int = 0) -> np.ndarray:
    """Decode one frame of a file and return it in HU (float32, rescale applied).

    Raises :class:`UnsupportedTransferSyntaxError` (naming the transfer syntax) when no
    installed decoder can read the compression, :class:`DicomReadError` for a damaged file.
    """
    register_plugins()
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, EOFError, OSError) as exc:
        raise DicomReadError(f"cannot read DICOM file ({exc})", path=path) from exc
    raw = _decode(ds, path=str(path))
    if raw.ndim == 3:
        raw = raw[frame]
    from sinusapp.dicom.headers import frame_geometries

    g = frame_geometries(ds)[frame]
    return raw.astype(np.float32) * np.float32(g.rescale_slope) + np.float32(g.rescale_intercept)


def _decode(ds: pydicom.Dataset, *, path: str) -> np.ndarray:
    tsyntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    if (
        tsyntax == JPEG_EXTENDED_12BIT
        and int(ds.get("BitsStored", 8)) > 8
        and imagecodecs_available()
    ):
        # GDCM and Pillow refuse 12-bit JPEG Extended; going to the plugin that can decode it
        # directly avoids two logged failures (with tracebacks) per slice.
        ds.pixel_array_options(decoding_plugin=IMAGECODECS_PLUGIN)
    try:
        return ds.pixel_array
    except NotImplementedError as exc:
        raise UnsupportedTransferSyntaxError(
            f"the pixel data is compressed with {describe_transfer_syntax(tsyntax)}, which "
            "SinusApp cannot decode (no maintained decoder exists for this retired JPEG process)",
            path=path,
            hint="ask for the series uncompressed or in a lossless transfer syntax "
            "(e.g. re-export from the PACS, or convert with `dcmdjpeg` / `gdcmconv --raw`)",
        ) from exc
    except (RuntimeError, ValueError) as exc:
        msg = str(exc)
        if "plugin" in msg.lower() or (
            "decode" in msg.lower() and tsyntax.startswith("1.2.840.10008.1.2.4")
        ):
            raise UnsupportedTransferSyntaxError(
                f"no installed decoder could read pixel data compressed with "
                f"{describe_transfer_syntax(tsyntax)} ({msg.splitlines()[0]})",
                path=path,
                hint="ask for the series uncompressed or losslessly compressed",
            ) from exc
        raise DicomReadError(
            f"damaged pixel data ({msg.splitlines()[0]})",
            path=path,
            hint="copy the series again from the PACS or CD",
        ) from exc
    except (EOFError, OSError, AttributeError, KeyError) as exc:
        raise DicomReadError(
            f"cannot decode the pixel data ({type(exc).__name__}: {exc})",
            path=path,
            hint="the file may be truncated; copy the series again",
        ) from exc


_NATIVE_LE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
_JPEG_LS = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
_JPEG_2000 = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91")
_UNDEFINED_LENGTH = 0xFFFFFFFF


def _stored_bits_ok(h: InstanceHeader) -> bool:
    """Bits Stored / High Bit as pydicom's native decoding assumes them (HighBit = BitsStored
    - 1, or absent); anything else goes to pydicom."""
    return 0 < h.bits_stored <= h.bits_allocated and h.high_bit in (-1, h.bits_stored - 1)


def _read_native(h: InstanceHeader) -> np.ndarray | None:
    """Fast path for uncompressed little-endian files: read the pixel bytes straight from the
    file after checking the Pixel Data element header in front of them (at the offset the
    header read found, else at the end of the file, where it sits in practically every CT
    file). Unused high bits (12 of 16 stored) are cleared / sign-extended exactly as pydicom
    does (``correct_unused_bits``: shift left then right by BitsAllocated - BitsStored).
    Returns None whenever an assumption does not hold, and the caller falls back to pydicom."""
    if (
        h.transfer_syntax_uid not in _NATIVE_LE
        or h.samples_per_pixel != 1
        or h.bits_allocated not in (8, 16)
        or not _stored_bits_ok(h)
    ):
        return None
    n_frames = max(h.number_of_frames, 1)
    nbytes = h.rows * h.columns * (h.bits_allocated // 8) * n_frames
    try:
        with open(h.path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            starts = []
            if h.pixel_offset >= 0:
                starts += [(h.pixel_offset, 12), (h.pixel_offset, 8)]
            starts += [(size - nbytes - 12, 12), (size - nbytes - 8, 8)]
            for start, head in starts:  # explicit VR (tag, VR, 2 reserved, length) / implicit
                if start < 0 or start + head + nbytes > size:
                    continue
                fh.seek(start)
                elem = fh.read(head)
                length = int.from_bytes(elem[-4:], "little")
                vr_ok = head == 8 or elem[4:6] in (b"OW", b"OB")
                if elem[:4] == _PIXEL_DATA_TAG and vr_ok and length == nbytes:
                    data = fh.read(nbytes)
                    break
            else:
                return None
    except OSError:
        return None
    signed = 1 if h.pixel_representation else 0
    dtype = {(8, 0): "u1", (8, 1): "i1", (16, 0): "<u2", (16, 1): "<i2"}[(h.bits_allocated, signed)]
    arr = np.frombuffer(data, dtype=dtype).reshape(n_frames, h.rows, h.columns)
    shift = h.bits_allocated - h.bits_stored
    if shift:
        arr = arr.copy()
        if signed:  # sign-extend the stored bits
            np.left_shift(arr, shift, out=arr)
            np.right_shift(arr, shift, out=arr)
        else:  # clear the unused high bits (overlay bits, noise)
            np.bitwise_and(arr, (1 << h.bits_stored) - 1, out=arr)
    return arr


def _read_compressed(h: InstanceHeader) -> np.ndarray | None:
    """Fast path for single-frame JPEG-LS and JPEG 2000 files: read the encapsulated frame
    from the Pixel Data offset found by the header read and decode it with imagecodecs
    (CharLS / OpenJPEG), which releases the GIL, so the loading threads decode in parallel
    (GDCM holds it). The sign correction pydicom applies is applied the same way, from the
    same codestream parameters (pydicom's own parsers), so the values equal ``pixel_array``.
    Returns None (caller falls back to pydicom) whenever an assumption does not hold."""
    ts = h.transfer_syntax_uid
    if (
        (ts not in _JPEG_LS and ts not in _JPEG_2000)
        or h.pixel_offset < 0
        or h.samples_per_pixel != 1
        or h.photometric not in ("MONOCHROME1", "MONOCHROME2")
        or h.bits_allocated not in (8, 16)
        or max(h.number_of_frames, 1) != 1
        or not _stored_bits_ok(h)
        or not imagecodecs_available()
    ):
        return None
    import imagecodecs
    from pydicom.encaps import generate_frames
    from pydicom.pixels.utils import _get_jpg_parameters, get_j2k_parameters

    try:
        with open(h.path, "rb") as fh:
            fh.seek(h.pixel_offset)
            elem = fh.read(12)
            if (
                len(elem) < 12
                or elem[:4] != _PIXEL_DATA_TAG
                or elem[4:6] not in (b"OB", b"OW")
                or int.from_bytes(elem[8:12], "little") != _UNDEFINED_LENGTH
            ):
                return None
            value = fh.read()
        src = next(generate_frames(value, number_of_frames=1))
        if ts in _JPEG_LS:
            decoded = imagecodecs.jpegls_decode(src)
        else:
            decoded = imagecodecs.jpeg2k_decode(src)
    except (OSError, ValueError, RuntimeError, StopIteration) as exc:
        log.debug("fast decode of %s refused (%s); using pydicom", h.path, exc)
        return None
    itemsize = h.bits_allocated // 8
    if decoded.shape != (h.rows, h.columns) or decoded.dtype.itemsize != itemsize:
        return None
    signed = 1 if h.pixel_representation else 0
    dtype = np.dtype(f"<{'i' if signed else 'u'}{itemsize}")
    arr = np.ascontiguousarray(decoded).view(dtype)  # our own array: corrected in place
    # pydicom's _apply_sign_correction, with its defaults when the codestream says nothing
    if ts in _JPEG_LS:
        if signed:
            precision = _get_jpg_parameters(src).get("precision", h.bits_stored)
            shift = 8 * itemsize - precision
            if shift:
                np.left_shift(arr, shift, out=arr)
                np.right_shift(arr, shift, out=arr)
    else:
        j2k = get_j2k_parameters(src)
        shift = 8 * itemsize - j2k.get("precision", h.bits_stored)
        if shift and j2k.get("is_signed", signed) != signed:
            np.left_shift(arr, shift, out=arr)
            np.right_shift(arr, shift, out=arr)
    return arr[np.newaxis]


def _to_hu_int16(raw: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    if slope == 1.0 and float(intercept).is_integer():
        out = raw.astype(np.int32) + int(intercept)
    else:
        out = np.rint(raw.astype(np.float32) * np.float32(slope) + np.float32(intercept))
    return np.clip(out, _INT16_MIN, _INT16_MAX).astype(np.int16)


def _to_hu_into(dst: np.ndarray, raw: np.ndarray, slope: float, intercept: float) -> None:
    """``dst[...] = _to_hu_int16(raw, slope, intercept)``, in int16 arithmetic without int32
    temporaries when the stored values, the intercept and every sum fit in int16 (12-bit CT
    with intercept -1024: always); otherwise exactly :func:`_to_hu_int16`."""
    if slope == 1.0 and float(intercept).is_integer() and raw.dtype.kind in "iu" and raw.size:
        lo, hi, b = int(raw.min()), int(raw.max()), int(intercept)
        if (
            lo >= _INT16_MIN
            and hi <= _INT16_MAX
            and _INT16_MIN <= b <= _INT16_MAX
            and lo + b >= _INT16_MIN
            and hi + b <= _INT16_MAX
        ):
            if raw.dtype == np.uint16:
                r16 = raw.view(np.int16)  # every value below 2**15: same bits
            else:
                r16 = raw.astype(np.int16, copy=False)
            np.add(r16, np.int16(b), out=dst)
            return
    dst[...] = _to_hu_int16(raw, slope, intercept)


def _read_stack(
    frames: list[FrameRef],
    shape: tuple[int, int, int],
    progress: ProgressFn | None,
    should_cancel: CancelFn | None = None,
) -> np.ndarray:
    """Decode all frames into one preallocated int16 array (threads: decoders release the GIL)."""
    register_plugins()
    out = np.empty(shape, dtype=np.int16)
    by_file: dict[str, list[tuple[int, FrameRef]]] = {}
    for k, f in enumerate(frames):
        by_file.setdefault(f.header.path, []).append((k, f))
    items = list(by_file.items())

    def work(item: tuple[str, list[tuple[int, FrameRef]]]) -> int:
        path, refs = item
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"loading cancelled before {Path(path).name}")
        h = refs[0][1].header
        planes = _read_native(h)
        if planes is None:
            planes = _read_compressed(h)
        if planes is None:
            try:
                ds = pydicom.dcmread(path)
            except (InvalidDicomError, EOFError, OSError) as exc:
                raise DicomReadError(
                    f"cannot read DICOM file ({exc})",
                    path=path,
                    hint="the file may have changed since the scan; scan again",
                ) from exc
            raw = _decode(ds, path=path)
            multi = raw.ndim == 3 and ds.get("SamplesPerPixel", 1) == 1
            planes = raw if multi else raw[np.newaxis]
        for k, f in refs:
            plane = planes[f.frame_index]
            if plane.shape != shape[1:]:
                raise GeometryError(
                    f"frame of shape {plane.shape} in a series of {shape[1:]}", path=path
                )
            _to_hu_into(out[k], plane, f.geometry.rescale_slope, f.geometry.rescale_intercept)
        return len(refs)

    n_workers = min(4, os.cpu_count() or 1)
    done = 0
    if n_workers > 1 and len(items) > 8:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            for n in pool.map(work, items):
                done += n
                if progress is not None:
                    progress(done / len(frames), "reading slices")
    else:
        for item in items:
            done += work(item)
            if progress is not None:
                progress(done / len(frames), "reading slices")
    return out


def _series_info(headers: list[InstanceHeader], frames: list[FrameRef]) -> SeriesInfo:
    h = frames[0].header
    return SeriesInfo(
        series_uid=h.series_uid,
        study_uid=h.study_uid,
        frame_of_reference_uid=h.frame_of_reference_uid,
        sop_instance_uids=tuple(dict.fromkeys(f.header.sop_instance_uid for f in frames)),
        sop_class_uid=h.sop_class_uid,
        modality=h.modality,
        series_description=h.series_description,
        series_number=h.series_number,
        study_description=h.study_description,
        study_date=h.study_date,
        study_time=h.study_time,
        accession_number=h.accession_number,
        patient_name=h.patient_name,
        patient_id=h.patient_id,
        patient_birth_date=h.patient_birth_date,
        patient_sex=h.patient_sex,
        manufacturer=h.manufacturer,
        manufacturer_model=h.manufacturer_model,
        convolution_kernel=h.convolution_kernel,
        slice_thickness_mm=frames[0].geometry.slice_thickness,
        body_part=h.body_part,
        kvp=h.kvp,
    )


def _regular_spacing(geo: GeometryAssessment) -> float:
    assert geo.positions_mm is not None, "geometry not assessed"
    gaps = np.diff(geo.positions_mm)
    if geo.regular:
        return float(np.mean(gaps))
    return float(max(np.percentile(gaps, 10), 0.25))


def _resample_regular(stack: np.ndarray, geo: GeometryAssessment) -> tuple[np.ndarray, np.ndarray]:
    """Resample a tilted and/or irregularly spaced stack onto an orthogonal regular grid.

    Output slices are planes perpendicular to the slice normal, evenly spaced from the first to
    the last source slice. Each output slice interpolates linearly between the two nearest
    source planes (parallel to it), each shifted in-plane by its own ImagePositionPatient, so a
    gantry tilt (shear) is undone; the in-plane grid grows to hold the whole sheared extent.
    """
    from scipy import ndimage

    row_c, col_c, normal = geo.row_cosines, geo.column_cosines, geo.normal
    assert row_c is not None and col_c is not None and normal is not None
    assert geo.pixel_spacing is not None and geo.positions_mm is not None
    d = np.asarray(geo.positions_mm)
    dr, dc = geo.pixel_spacing
    pos = np.array([f.geometry.position for f in geo.frames], float)
    rel = pos - pos[0]
    u = rel @ row_c / dc  # in-plane offsets in columns
    v = rel @ col_c / dr  # in-plane offsets in rows
    u0, u1 = math.floor(u.min()), math.ceil(u.max())
    v0, v1 = math.floor(v.min()), math.ceil(v.max())
    n_src, rows, cols = stack.shape
    out_rows, out_cols = rows + (v1 - v0), cols + (u1 - u0)
    spacing = _regular_spacing(geo)
    n_out = math.floor((d[-1] - d[0]) / spacing + 1e-6) + 1
    spacing = (d[-1] - d[0]) / (n_out - 1) if n_out > 1 else spacing
    out = np.empty((n_out, out_rows, out_cols), dtype=np.int16)
    idx = np.arange(n_src, dtype=float)
    for k in range(n_out):
        t = d[0] + k * spacing
        f = float(np.interp(t, d, idx))
        i0 = min(math.floor(f), n_src - 1)
        w = f - i0
        acc = np.zeros((out_rows, out_cols), dtype=np.float32)
        for i, wt in ((i0, 1.0 - w), (min(i0 + 1, n_src - 1), w)):
            if wt <= 1e-6:
                continue
            # output pixel (r, c) ↔ source pixel (r + v0 - v[i], c + u0 - u[i]) of slice i
            shifted = ndimage.affine_transform(
                stack[i].astype(np.float32, copy=False),
                np.eye(2),
                offset=(v0 - v[i], u0 - u[i]),
                output_shape=(out_rows, out_cols),
                order=1,
                mode="constant",
                cval=AIR_HU,
            )
            acc += np.float32(wt) * shifted
        out[k] = np.clip(np.rint(acc), _INT16_MIN, _INT16_MAX).astype(np.int16)
    origin = pos[0] + u0 * dc * row_c + v0 * dr * col_c
    affine = affine_from_geometry(
        origin_lps=origin,
        row_cosines=row_c,
        column_cosines=col_c,
        slice_direction=normal,
        spacing_mm=(float(spacing), dr, dc),
    )
    return out, affine


def volume_from_headers(
    headers: list[InstanceHeader],
    *,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> Volume:
    """Build a :class:`Volume` from the headers of one series (as found by :func:`scan`).

    ``should_cancel()`` is polled before each file is decoded; when it returns True,
    :class:`~sinusapp.errors.Cancelled` is raised and nothing is returned.
    """
    if not headers:
        raise SeriesSelectionError("no images in the selected series")
    geo = assess_geometry(frames_of(headers))
    label = headers[0].series_description or headers[0].series_uid
    if not geo.usable:
        raise GeometryError(
            f"series '{label}' cannot be made into a 3-D volume: {geo.error}",
            path=Path(headers[0].path).parent,
            hint="choose another series (a thin axial CT of the sinuses)",
        )
    frames = geo.frames
    shape = (len(frames), headers[0].rows, headers[0].columns)
    stack = _read_stack(frames, shape, progress, should_cancel)
    assert geo.row_cosines is not None and geo.column_cosines is not None
    assert geo.pixel_spacing is not None
    if geo.regular:
        step = np.array(frames[-1].geometry.position) - np.array(frames[0].geometry.position)
        direction = step / np.linalg.norm(step)
        affine = affine_from_geometry(
            origin_lps=np.array(frames[0].geometry.position),
            row_cosines=geo.row_cosines,
            column_cosines=geo.column_cosines,
            slice_direction=direction,
            spacing_mm=(_regular_spacing(geo), *geo.pixel_spacing),
        )
        array = stack
        resampled = False
    else:
        if progress is not None:
            progress(1.0, "resampling onto a regular grid")
        array, affine = _resample_regular(stack, geo)
        del stack
        resampled = True
    findings = tuple(f for f in geo.findings if f.severity != Severity.ERROR)
    return Volume(
        array=array,
        affine=affine,
        info=_series_info(headers, frames),
        findings=findings,
        resampled=resampled,
    )


def _choose(
    result: ScanResult, series_uid: str | None, path: str | os.PathLike[str]
) -> SeriesEntry:
    if series_uid is not None:
        entry = result.find_series(series_uid)
        if entry is None:
            available = (
                ", ".join(f"{s.series_uid} ({s.description or s.modality})" for s in result.series)
                or "none"
            )
            raise SeriesSelectionError(
                f"series {series_uid} is not in {path}",
                path=path,
                hint=f"series found: {available}; run `sinusapp scan {path}` to list them",
            )
        if entry.kind != "image":
            raise SeriesSelectionError(
                f"series {series_uid} is a {entry.kind}, not an image series",
                path=path,
                hint="choose the CT series it belongs to",
            )
        return entry
    entry = result.proposed
    if entry is None:
        if not result.series:
            why = "; ".join(f"{s.path}: {s.reason}" for s in result.skipped[:3])
            raise SeriesSelectionError(
                "no DICOM image series found" + (f" (skipped: {why})" if why else ""),
                path=path,
                hint="point SinusApp at the folder, CD or DICOMDIR that holds the CT",
            )
        lines = "; ".join(
            f"series {s.series_number} '{s.description or s.modality}': "
            f"{s.candidate.reasons[0] if s.candidate.reasons else 'not eligible'}"
            for s in result.series[:6]
        )
        raise SeriesSelectionError(
            f"no series suitable for the sinus analysis ({lines})",
            path=path,
            hint="a 3-D axial CT of the paranasal sinuses is needed; "
            "pass --series UID to force one",
        )
    return entry


def load_volume(
    path: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
    scan_result: ScanResult | None = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> Volume:
    """Load the proposed (or the named) series under ``path`` as a :class:`Volume`.

    Parameters
    ----------
    path:
        A folder, a DICOMDIR or a single file.
    series_uid:
        SeriesInstanceUID to load; default: the series :func:`scan` proposes.
    scan_result:
        A previous :func:`scan` of ``path`` (avoids reading the headers twice).
    progress:
        ``progress(fraction, stage)``.
    should_cancel:
        Polled before each file; True raises :class:`~sinusapp.errors.Cancelled`.

    Returns
    -------
    Volume
        ``.array`` int16 HU ``[slice, row, column]``, ``.spacing_mm`` (slice, row, column),
        ``.affine`` (4×4 LPS) and ``.findings`` (geometry findings).

    Raises
    ------
    SeriesSelectionError, GeometryError, DicomReadError, UnsupportedTransferSyntaxError
        With a message saying what was wrong and what to do.
    """
    result = scan_result if scan_result is not None else scan(path)
    entry = _choose(result, series_uid, path)
    headers = result.headers_of(entry.series_uid)
    volume = volume_from_headers(headers, progress=progress, should_cancel=should_cancel)
    unreadable = unreadable_beside(result, headers)
    return volume.with_findings(unreadable) if unreadable is not None else volume


#: Skip codes of files that were probably slices of the series (not stray non-DICOM files).
_LOST_SLICE_CODES = {"truncated", "malformed", "no_uid", "missing", "not_regular"}


def unreadable_beside(result: ScanResult, headers: list[InstanceHeader]) -> Finding | None:
    """A warning naming the files next to the series' slices that could not be read.

    A truncated or damaged slice is skipped by the scan, so the series shows only a gap
    (``missing_slices``); this names each such file and why it was skipped. Files that are
    plainly not DICOM (``not_dicom``) count only when named like DICOM (``.dcm``, ``.ima``).
    """
    folders = {os.path.dirname(os.path.abspath(h.path)) for h in headers}
    lost = [
        s
        for s in result.skipped
        if os.path.dirname(os.path.abspath(s.path)) in folders
        and (
            s.code in _LOST_SLICE_CODES
            or (s.code == "not_dicom" and s.path.lower().endswith((".dcm", ".ima")))
        )
    ]
    if not lost:
        return None
    listed = "; ".join(f"{os.path.basename(s.path)}: {s.reason}" for s in lost[:5])
    more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
    return Finding(
        "unreadable_files",
        Severity.WARNING,
        f"{len(lost)} file(s) beside this series' slices could not be read and are left out "
        f"({listed}{more})",
        float(len(lost)),
        "files",
    )
