"""Read the header of one DICOM file (never its pixel data) into a flat, picklable record.

Scanning a CD or a PACS export must be fast and must never abort on a bad file, so
:func:`read_header` returns either an :class:`InstanceHeader` or a :class:`SkippedFile` with
the reason (not DICOM, truncated, a DICOM directory, no image...). Multi-frame (Enhanced CT)
files carry their per-frame geometry from the functional groups.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import MutableSequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

__all__ = [
    "HEADER_FORMAT",
    "FrameGeometry",
    "InstanceHeader",
    "SkippedFile",
    "frame_geometries",
    "read_header",
]

#: Version of what :func:`read_header` records; cached headers of another version are read
#: again (bump it whenever :class:`InstanceHeader` or :func:`read_header` changes).
HEADER_FORMAT = 2
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"

#: SOP classes that are not images (or not images we analyse), by UID prefix → kind
_NON_IMAGE_KINDS = {
    SEGMENTATION_STORAGE: "segmentation",
    "1.2.840.10008.5.1.4.1.1.104.1": "encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.88": "structured report",
    "1.2.840.10008.5.1.4.1.1.481": "radiotherapy object",
    "1.2.840.10008.5.1.4.1.1.11": "presentation state",
    "1.2.840.10008.5.1.4.1.1.66": "registration / spatial object",
    "1.2.840.10008.5.1.4.1.1.9": "waveform",
}


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file that was not catalogued, with the reason (shown to the user, never fatal)."""

    path: str
    reason: str
    code: str = "unreadable"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason, "code": self.code}


@dataclass(frozen=True, slots=True)
class FrameGeometry:
    """Geometry of one 2-D frame (a slice of a single-frame file or a frame of a multi-frame)."""

    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    rescale_slope: float
    rescale_intercept: float


@dataclass(frozen=True, slots=True)
class InstanceHeader:
    """What SinusApp needs from one DICOM instance's header (all plain Python values)."""

    path: str
    size: int
    mtime: float
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    modality: str
    patient_name: str
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    study_uid: str
    study_date: str
    study_time: str
    study_description: str
    accession_number: str
    series_uid: str
    series_number: int | None
    series_description: str
    body_part: str
    image_type: tuple[str, ...]
    convolution_kernel: str
    manufacturer: str
    manufacturer_model: str
    frame_of_reference_uid: str
    rows: int
    columns: int
    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    number_of_frames: int
    instance_number: int | None
    acquisition_number: int | None
    gantry_tilt_deg: float | None
    kvp: float | None
    has_pixels: bool
    frames: tuple[FrameGeometry, ...] = field(default=())
    bits_stored: int = 0
    pixel_representation: int = 0
    #: HighBit (0028,0102); -1 when absent
    high_bit: int = -1
    #: byte offset of the Pixel Data element (its tag) in the file, as found by the header
    #: read (-1 unknown); the pixel fast paths check the element header there before use
    pixel_offset: int = -1

    @property
    def kind(self) -> str:
        """``'image'`` or the kind of non-image object (``'segmentation'``, ...)."""
        for prefix, kind in _NON_IMAGE_KINDS.items():
            if self.sop_class_uid.startswith(prefix):
                return kind
        return "image" if self.has_pixels else "non-image"

    @property
    def is_secondary_capture(self) -> bool:
        return self.sop_class_uid.startswith("1.2.840.10008.5.1.4.1.1.7")

    @property
    def is_multiframe(self) -> bool:
        return self.number_of_frames > 1 or len(self.frames) > 1


def _s(ds: Dataset, keyword: str) -> str:
    v = ds.get(keyword, "")
    if v is None:
        return ""
    if isinstance(v, MutableSequence):  # pydicom's MultiValue (pydicom imported lazily)
        return "\\".join(str(x) for x in v)
    return str(v).strip()


def _i(ds: Dataset, keyword: str) -> int | None:
    v = ds.get(keyword, None)
    try:
        return int(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _f(ds: Dataset, keyword: str) -> float | None:
    v = ds.get(keyword, None)
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _floats(v: Any, n: int) -> tuple[float, ...] | None:
    if v is None:
        return None
    try:
        vals = tuple(float(x) for x in v)
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n else None


def _first(seq_owner: Dataset | None, seq: str) -> Dataset | None:
    if seq_owner is None:
        return None
    s = seq_owner.get(seq)
    if s is None or len(s) == 0:
        return None
    return s[0]


def frame_geometries(ds: Dataset) -> tuple[FrameGeometry, ...]:
    """Geometry of every frame: from the functional groups for Enhanced (multi-frame) objects,
    from the top-level attributes otherwise."""
    n_frames = _i(ds, "NumberOfFrames") or 1
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    top_slope = _f(ds, "RescaleSlope")
    top_intercept = _f(ds, "RescaleIntercept")
    if shared is None and per_frame is None:
        g = FrameGeometry(
            position=_floats(ds.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
            orientation=_floats(ds.get("ImageOrientationPatient"), 6),
            pixel_spacing=_floats(ds.get("PixelSpacing"), 2),  # type: ignore[arg-type]
            slice_thickness=_f(ds, "SliceThickness"),
            rescale_slope=top_slope if top_slope is not None else 1.0,
            rescale_intercept=top_intercept if top_intercept is not None else 0.0,
        )
        return (g,) * n_frames if n_frames > 1 else (g,)

    def lookup(frame: Dataset | None, seq: str, attr: str) -> Any:
        for owner in (frame, shared):
            item = _first(owner, seq)
            if item is not None and attr in item:
                return item.get(attr)
        return ds.get(attr)

    out = []
    for k in range(n_frames):
        frame = per_frame[k] if per_frame is not None and k < len(per_frame) else None
        slope = lookup(frame, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = lookup(frame, "PixelValueTransformationSequence", "RescaleIntercept")
        thick = lookup(frame, "PixelMeasuresSequence", "SliceThickness")
        out.append(
            FrameGeometry(
                position=_floats(lookup(frame, "PlanePositionSequence", "ImagePositionPatient"), 3),  # type: ignore[arg-type]
                orientation=_floats(
                    lookup(frame, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
                ),
                pixel_spacing=_floats(lookup(frame, "PixelMeasuresSequence", "PixelSpacing"), 2),  # type: ignore[arg-type]
                slice_thickness=float(thick) if thick not in (None, "") else None,
                rescale_slope=float(slope) if slope not in (None, "") else 1.0,
                rescale_intercept=float(intercept) if intercept not in (None, "") else 0.0,
            )
        )
    return tuple(out)


def header_from_dataset(
    ds: Dataset, *, path: str, size: int, mtime: float, pixel_offset: int = -1
) -> InstanceHeader:
    """Build an :class:`InstanceHeader` from an already-read dataset."""
    meta = getattr(ds, "file_meta", None)
    tsyntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    sop_class = _s(ds, "SOPClassUID") or (
        str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
    )
    kernel = ds.get("ConvolutionKernel", "")
    if isinstance(kernel, MutableSequence):
        kernel = "\\".join(str(k) for k in kernel)
    image_type = ds.get("ImageType", ())
    if isinstance(image_type, str):
        image_type = (image_type,)
    has_pixels = any(t in ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    # With stop_before_pixels the element is absent; Rows/Columns tell an image apart.
    if not has_pixels and "Rows" in ds and "Columns" in ds and sop_class != MEDIA_STORAGE_DIRECTORY:
        has_pixels = True
    high_bit = _i(ds, "HighBit")
    return InstanceHeader(
        path=path,
        size=size,
        mtime=mtime,
        sop_class_uid=sop_class,
        sop_instance_uid=_s(ds, "SOPInstanceUID"),
        transfer_syntax_uid=tsyntax,
        modality=_s(ds, "Modality").upper(),
        patient_name=_s(ds, "PatientName"),
        patient_id=_s(ds, "PatientID"),
        patient_birth_date=_s(ds, "PatientBirthDate"),
        patient_sex=_s(ds, "PatientSex"),
        study_uid=_s(ds, "StudyInstanceUID"),
        study_date=_s(ds, "StudyDate"),
        study_time=_s(ds, "StudyTime"),
        study_description=_s(ds, "StudyDescription"),
        accession_number=_s(ds, "AccessionNumber"),
        series_uid=_s(ds, "SeriesInstanceUID"),
        series_number=_i(ds, "SeriesNumber"),
        series_description=_s(ds, "SeriesDescription"),
        body_part=_s(ds, "BodyPartExamined"),
        image_type=tuple(str(t).upper() for t in image_type),
        convolution_kernel=str(kernel).strip(),
        manufacturer=_s(ds, "Manufacturer"),
        manufacturer_model=_s(ds, "ManufacturerModelName"),
        frame_of_reference_uid=_s(ds, "FrameOfReferenceUID"),
        rows=_i(ds, "Rows") or 0,
        columns=_i(ds, "Columns") or 0,
        samples_per_pixel=_i(ds, "SamplesPerPixel") or 1,
        photometric=_s(ds, "PhotometricInterpretation"),
        bits_allocated=_i(ds, "BitsAllocated") or 0,
        number_of_frames=_i(ds, "NumberOfFrames") or 1,
        instance_number=_i(ds, "InstanceNumber"),
        acquisition_number=_i(ds, "AcquisitionNumber"),
        gantry_tilt_deg=_f(ds, "GantryDetectorTilt"),
        kvp=_f(ds, "KVP"),
        has_pixels=has_pixels,
        frames=frame_geometries(ds) if has_pixels else (),
        bits_stored=_i(ds, "BitsStored") or 0,
        pixel_representation=_i(ds, "PixelRepresentation") or 0,
        high_bit=-1 if high_bit is None else high_bit,
        pixel_offset=pixel_offset,
    )


def read_header(path: str | os.PathLike[str]) -> InstanceHeader | SkippedFile:
    """Read one file's header without its pixel data.

    Never raises for a bad file: returns a :class:`SkippedFile` with the reason instead.
    """
    from sinusapp.dicom._pydicom import InvalidDicomError, pydicom

    p = str(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        return SkippedFile(p, f"cannot open file: {exc.strerror}", "missing")
    if not stat.S_ISREG(st.st_mode):
        # a FIFO would block open() forever; a device is not a file someone exported
        return SkippedFile(
            p, "not a regular file (a pipe, device or socket); not read", "not_regular"
        )
    try:
        with open(p, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
            # pydicom stops with the file positioned at the Pixel Data tag (if any)
            pixel_offset = fh.tell()
    except InvalidDicomError:
        return SkippedFile(p, "not a DICOM file (no DICM preamble or valid header)", "not_dicom")
    except (EOFError, OSError) as exc:
        return SkippedFile(p, f"truncated or unreadable DICOM file ({exc})", "truncated")
    except Exception as exc:
        log.debug("failed to parse %s", p, exc_info=True)
        return SkippedFile(p, f"malformed DICOM header ({type(exc).__name__}: {exc})", "malformed")
    try:
        meta = getattr(ds, "file_meta", None)
        msc = str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
        if msc == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
            return SkippedFile(p, "DICOM directory (DICOMDIR / DIRFILE), not an image", "directory")
        if not _s(ds, "SeriesInstanceUID") or not _s(ds, "SOPInstanceUID"):
            if len(ds) == 0:
                if meta is not None and len(meta) > 0:
                    return SkippedFile(
                        p,
                        f"truncated DICOM file: the header ends after {st.st_size} bytes",
                        "truncated",
                    )
                return SkippedFile(p, "not a DICOM file (empty dataset)", "not_dicom")
            return SkippedFile(
                p, "DICOM file without Series/SOP Instance UID; cannot be catalogued", "no_uid"
            )
        return header_from_dataset(
            ds,
            path=str(Path(p).resolve()),
            size=st.st_size,
            mtime=st.st_mtime,
            pixel_offset=pixel_offset,
        )
    except Exception as exc:
        log.debug("failed to interpret %s", p, exc_info=True)
        return SkippedFile(p, f"malformed DICOM header ({type(exc).__name__}: {exc})", "malformed")
