"""Read the header of one DICOM file (never its pixel data) into a flat, picklable record.

Scanning a CD or a PACS export must be fast and must never abort on a bad file, so
:func:`read_header` returns either an :class:`InstanceHeader` or a :class:`SkippedFile` with
the reason (not DICOM, truncated, a DICOM directory, no image...). Multi-frame (Enhanced CT)
files carry their per-frame geometry from the functional groups.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator, MutableSequence
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


# --------------------------------------------------------------------------------------------
# Fast values: the ~35 header values a scan needs, straight from pydicom's raw elements.
#
# Converting an element through pydicom (Dataset.get → DataElement → value classes) costs
# several times what parsing the whole header does, and a scan converts ~35 per file. For a
# value that is plainly well formed (printable ASCII of the VR's repertoire, little-endian
# binary), the result of pydicom's conversion is unambiguous, so it is computed here, exactly
# as pydicom's ``multi_string`` / ``convert_text`` / ``convert_PN`` / DS / IS / US conversions
# followed by :func:`_s` / :func:`_i` / :func:`_f` / :func:`_floats` give it; anything else
# (non-ASCII text, escape sequences, odd numbers, converted or deferred elements, another VR,
# big endian) goes through pydicom as before. ``tests/dicom/test_header_values.py`` checks
# both ways agree on real and deliberately odd files.

#: keyword → (tag, VR) of every value read the fast way
_FAST_TAGS: dict[str, tuple[int, str]] = {
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "StudyDate": (0x00080020, "DA"),
    "StudyTime": (0x00080030, "TM"),
    "AccessionNumber": (0x00080050, "SH"),
    "Modality": (0x00080060, "CS"),
    "Manufacturer": (0x00080070, "LO"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "ManufacturerModelName": (0x00081090, "LO"),
    "ImageType": (0x00080008, "CS"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "PatientBirthDate": (0x00100030, "DA"),
    "PatientSex": (0x00100040, "CS"),
    "BodyPartExamined": (0x00180015, "CS"),
    "SliceThickness": (0x00180050, "DS"),
    "KVP": (0x00180060, "DS"),
    "GantryDetectorTilt": (0x00181120, "DS"),
    "ConvolutionKernel": (0x00181210, "SH"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "SeriesNumber": (0x00200011, "IS"),
    "AcquisitionNumber": (0x00200012, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "FrameOfReferenceUID": (0x00200052, "UI"),
    "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "HighBit": (0x00280102, "US"),
    "PixelRepresentation": (0x00280103, "US"),
    "RescaleIntercept": (0x00281052, "DS"),
    "RescaleSlope": (0x00281053, "DS"),
    # file meta (read from ds.file_meta by _meta_uid)
    "MediaStorageSOPClassUID": (0x00020002, "UI"),
    "TransferSyntaxUID": (0x00020010, "UI"),
}
#: printable ASCII without the backslash (the multi-value delimiter)
_PLAIN = re.compile(rb"[\x20-\x5b\x5d-\x7e]*")
#: printable ASCII, backslashes allowed
_PLAIN_MULTI = re.compile(rb"[\x20-\x7e]*")
#: the same and NUL (the numbers of the one-pass read)
_PLAIN_MULTI_NUL = re.compile(rb"[\x00\x20-\x7e]*")
_DS_ITEM = re.compile(r" *[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)? *")
_IS_ITEM = re.compile(r" *[-+]?[0-9]+ *")
_TEXT_VRS = ("SH", "LO", "PN")
#: set False to read every value through pydicom (tests compare the two)
FAST_VALUES = True
_MISSING = object()


_pd: Any = None  # (pydicom.config, RawDataElement), imported at first use


def _fast_ok() -> bool:
    """pydicom settings under which the fast values equal pydicom's (once per scope)."""
    fast = getattr(_scope, "fast", None)
    return _fast_settings() if fast is None else bool(fast)


def _fast_settings() -> bool:
    global _pd
    if _pd is None:
        from pydicom.dataelem import DataElement, RawDataElement

        from sinusapp.dicom._pydicom import pydicom

        _pd = (pydicom.config, RawDataElement, DataElement)
    cfg = _pd[0]
    return FAST_VALUES and not (
        cfg.use_DS_numpy or cfg.use_IS_numpy or cfg.datetime_conversion or cfg.use_DS_decimal
    )


_scope = threading.local()


@contextlib.contextmanager
def _fast_scope(ds: Dataset) -> Iterator[None]:
    """Within: :func:`_elements` of ``ds`` is built once (per thread; nothing is kept after)."""
    if getattr(_scope, "ds", None) is not None:  # nested (frame_geometries in a header read)
        yield
        return
    _scope.ds, _scope.elements, _scope.fast = ds, None, _fast_settings()
    try:
        yield
    finally:
        _scope.ds = _scope.elements = _scope.fast = None


def _elements(ds: Dataset) -> dict[int, Any]:
    """The dataset's elements by plain int tag (pydicom's ``Dataset._dict`` is keyed by
    ``BaseTag``, whose Python ``__eq__`` every dict hit would call; ``get_item()`` builds a
    Tag per look-up). Built once per :func:`_fast_scope`: a header read makes ~40 look-ups."""
    if getattr(_scope, "ds", None) is ds and _scope.elements is not None:
        return _scope.elements  # type: ignore[no-any-return]
    raw = getattr(ds, "_dict", None)
    if isinstance(raw, dict):
        elements = {int(k): v for k, v in raw.items()}
    else:  # not pydicom's usual Dataset layout: go through its API
        elements = {int(k): ds.get_item(k) for k in ds.keys()}  # noqa: SIM118 (iter converts)
    if getattr(_scope, "ds", None) is ds:
        _scope.elements = elements
    return elements


def _meta_uid(meta: Dataset | None, keyword: str) -> str:
    """``str(meta.get(keyword, ""))`` of a file-meta UID, the fast way when it is plain."""
    if meta is None:
        return ""
    if _fast_ok():
        raw = _raw_bytes(meta, keyword)
        if raw is None:
            return ""
        if isinstance(raw, bytes):
            stripped = raw.rstrip(b"\x00 ")
            if _PLAIN.fullmatch(stripped):
                return stripped.decode("ascii")
    return str(meta.get(keyword, ""))


def _raw_bytes(ds: Dataset, keyword: str) -> bytes | object | None:
    """The raw value bytes of ``keyword`` when it can be converted here; None when the
    element is absent; ``_MISSING`` when pydicom must convert it. (Call after
    :func:`_fast_ok`.)"""
    tag, vr = _FAST_TAGS[keyword]
    elem = _elements(ds).get(tag)
    if elem is None:
        return None
    if not isinstance(elem, _pd[1]) or elem.VR not in (None, vr):
        return _MISSING
    value = elem.value
    if not isinstance(value, bytes) or getattr(elem, "is_buffered", False):  # deferred / buffer
        return _MISSING
    if vr == "US" and not elem.is_little_endian:
        return _MISSING
    return value


def _fast_str(ds: Dataset, keyword: str) -> str | object:
    """:func:`_s` of a plain string element, or ``_MISSING``."""
    raw = _raw_bytes(ds, keyword)
    if raw is None:
        return ""
    if raw is _MISSING:
        return _MISSING
    assert isinstance(raw, bytes)
    vr = _FAST_TAGS[keyword][1]
    if vr in _TEXT_VRS:
        # convert_text / convert_PN strip the padding of each value, then _s strips
        stripped = raw.rstrip(b"\x00 ")
        if _PLAIN.fullmatch(stripped) is None:
            return _MISSING
        return stripped.decode("ascii").strip()
    stripped = raw.rstrip(b"\x00 ")  # multi_string (UI, CS, DA, TM)
    if _PLAIN_MULTI.fullmatch(stripped) is None:
        return _MISSING
    text = stripped.decode("ascii")
    return text if "\\" in text else text.strip()


def _fast_number_items(ds: Dataset, keyword: str) -> list[str] | object | None:
    """The items of a plain DS / IS element (None when absent or empty), or ``_MISSING``."""
    raw = _raw_bytes(ds, keyword)
    if raw is None or raw == b"":
        return None
    if raw is _MISSING:
        return _MISSING
    assert isinstance(raw, bytes)
    if _PLAIN_MULTI.fullmatch(raw) is None:
        return _MISSING
    vr = _FAST_TAGS[keyword][1]
    text = raw.decode("ascii")
    text = text.strip() if vr == "DS" else text  # convert_DS_string strips first
    items = text.rstrip(" \x00").split("\\")
    pattern = _DS_ITEM if vr == "DS" else _IS_ITEM
    if not all(pattern.fullmatch(x) for x in items):
        return _MISSING
    return items


def _s(ds: Dataset, keyword: str) -> str:
    if keyword in _FAST_TAGS and _fast_ok():
        v = _fast_str(ds, keyword)
        if v is not _MISSING:
            assert isinstance(v, str)
            return v
    return _s_pydicom(ds, keyword)


def _s_pydicom(ds: Dataset, keyword: str) -> str:
    v = ds.get(keyword, "")
    if v is None:
        return ""
    if isinstance(v, MutableSequence):  # pydicom's MultiValue (pydicom imported lazily)
        return "\\".join(str(x) for x in v)
    return str(v).strip()


def _i(ds: Dataset, keyword: str) -> int | None:
    if keyword in _FAST_TAGS and _fast_ok() and _FAST_TAGS[keyword][1] == "US":
        raw = _raw_bytes(ds, keyword)
        if raw is None or raw == b"":
            return None
        if isinstance(raw, bytes) and len(raw) == 2:
            return int.from_bytes(raw, "little")
        return _number_of(ds, keyword, int, fast=False)
    return _number_of(ds, keyword, int)


def _f(ds: Dataset, keyword: str) -> float | None:
    return _number_of(ds, keyword, float)


def _number_of(
    ds: Dataset, keyword: str, kind: type[int] | type[float], *, fast: bool = True
) -> int | float | None:
    """A one-valued IS / DS element as ``kind`` (the raw bytes when plain, else pydicom's
    value); None when absent, empty, multi-valued or not a number."""
    if fast and keyword in _FAST_TAGS and _fast_ok():
        items = _fast_number_items(ds, keyword)
        if items is None:
            return None
        if isinstance(items, list) and len(items) == 1:
            return kind(items[0])
    v = ds.get(keyword, None)
    try:
        return kind(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _floats_of(ds: Dataset, keyword: str, n: int) -> tuple[float, ...] | None:
    """``_floats(ds.get(keyword), n)``, the fast way when the value is plain."""
    if keyword in _FAST_TAGS and _fast_ok():
        items = _fast_number_items(ds, keyword)
        if items is None:
            return None
        if isinstance(items, list):
            # one item: pydicom gives a single DSfloat, which _floats cannot iterate → None
            return tuple(float(x) for x in items) if len(items) == n and n > 1 else None
    return _floats(ds.get(keyword), n)


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
    with _fast_scope(ds):
        return _frame_geometries(ds)


def _frame_geometries(ds: Dataset) -> tuple[FrameGeometry, ...]:
    n_frames = _i(ds, "NumberOfFrames") or 1
    # tag look-ups first: the functional groups are absent from nearly every CT file
    shared = _first(ds, "SharedFunctionalGroupsSequence") if 0x52009229 in ds else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") if 0x52009230 in ds else None
    top_slope = _f(ds, "RescaleSlope")
    top_intercept = _f(ds, "RescaleIntercept")
    if shared is None and per_frame is None:
        g = FrameGeometry(
            position=_floats_of(ds, "ImagePositionPatient", 3),  # type: ignore[arg-type]
            orientation=_floats_of(ds, "ImageOrientationPatient", 6),
            pixel_spacing=_floats_of(ds, "PixelSpacing", 2),  # type: ignore[arg-type]
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


def _kernel_and_image_type(ds: Dataset) -> tuple[str, tuple[str, ...]]:
    """ConvolutionKernel (values joined by backslashes, stripped) and ImageType (upper case)."""
    fast = _fast_ok()
    kernel: Any = _MISSING
    itype: Any = _MISSING
    if fast:
        raw = _raw_bytes(ds, "ConvolutionKernel")
        if raw is None:
            kernel = ""
        elif isinstance(raw, bytes) and _PLAIN_MULTI.fullmatch(raw := raw.rstrip(b"\x00 ")):
            # convert_text: each value's padding stripped; then joined and stripped
            kernel = "\\".join(v.rstrip("\x00 ") for v in raw.decode("ascii").split("\\")).strip()
        raw = _raw_bytes(ds, "ImageType")
        if raw is None:
            itype = ()
        elif isinstance(raw, bytes) and _PLAIN_MULTI.fullmatch(raw := raw.rstrip(b"\x00 ")):
            itype = tuple(v.upper() for v in raw.decode("ascii").split("\\"))  # multi_string
    if kernel is _MISSING:
        k = ds.get("ConvolutionKernel", "")
        if isinstance(k, MutableSequence):
            k = "\\".join(str(x) for x in k)
        kernel = str(k).strip()
    if itype is _MISSING:
        t = ds.get("ImageType", ())
        if isinstance(t, str):
            t = (t,)
        itype = tuple(str(x).upper() for x in t)
    return kernel, itype


# --------------------------------------------------------------------------------------------
# One pass over the elements (issue 15): each value is looked up once, by plain int tag, and
# converted by one small function per kind, exactly as the helpers above convert it (the
# ``_fast_str`` / ``_i`` / ``_f`` / ``_floats_of`` branches); an element that is not plain
# falls back to the pydicom conversion of that one value.


def _raw_of(elem: Any, vr: str) -> bytes | object | None:
    """:func:`_raw_bytes` of an element already looked up (None when absent)."""
    if elem is None:
        return None
    if not isinstance(elem, _pd[1]) or elem.VR not in (None, vr):
        return _MISSING
    value = elem.value
    if not isinstance(value, bytes) or getattr(elem, "is_buffered", False):
        return _MISSING
    if vr == "US" and not elem.is_little_endian:
        return _MISSING
    return value


def _conv_text(elem: Any, vr: str) -> Any:
    """:func:`_fast_str` of an SH / LO / PN element."""
    raw = _raw_of(elem, vr)
    if raw is None:
        return ""
    if raw is _MISSING:
        return _MISSING
    stripped = raw.rstrip(b"\x00 ")  # type: ignore[union-attr]
    if _PLAIN.fullmatch(stripped) is None:
        return _MISSING
    return stripped.decode("ascii").strip()


def _conv_multi(elem: Any, vr: str) -> Any:
    """:func:`_fast_str` of a UI / CS / DA / TM element."""
    raw = _raw_of(elem, vr)
    if raw is None:
        return ""
    if raw is _MISSING:
        return _MISSING
    stripped = raw.rstrip(b"\x00 ")  # type: ignore[union-attr]
    if _PLAIN_MULTI.fullmatch(stripped) is None:
        return _MISSING
    text = stripped.decode("ascii")
    return text if "\\" in text else text.strip()


def _number_items(elem: Any, vr: str) -> Any:
    """:func:`_fast_number_items` of a DS / IS element."""
    raw = _raw_of(elem, vr)
    if raw is None or raw == b"":
        return None
    if raw is _MISSING:
        return _MISSING
    # NULs allowed too (GDCM pads with one): ASCII decodes alike in pydicom's default
    # encoding, the strips below are pydicom's own, and one left inside fails the item test
    if _PLAIN_MULTI_NUL.fullmatch(raw) is None:  # type: ignore[arg-type]
        return _MISSING
    text = raw.decode("ascii")  # type: ignore[union-attr]
    if vr == "DS":
        text = text.strip()
        pattern = _DS_ITEM
    else:
        pattern = _IS_ITEM
    items = text.rstrip(" \x00").split("\\")
    for x in items:
        if pattern.fullmatch(x) is None:
            return _MISSING
    return items


def _conv_us(elem: Any, vr: str) -> Any:
    """The fast branch of :func:`_i` for a US element."""
    raw = _raw_of(elem, vr)
    if raw is None or raw == b"":
        return None
    if isinstance(raw, bytes) and len(raw) == 2:
        return int.from_bytes(raw, "little")
    return _MISSING


def _one_number(cast: Callable[[str], Any]) -> Callable[[Any, str], Any]:
    """The fast branch for a one-valued IS (``cast=int``, :func:`_i`) or DS (``float``,
    :func:`_f`) element: None when empty, ``_MISSING`` when the slow path must decide."""

    def convert(elem: Any, vr: str) -> Any:
        items = _number_items(elem, vr)
        if items is None:
            return None
        if isinstance(items, list) and len(items) == 1:
            return cast(items[0])
        return _MISSING

    return convert


_conv_is = _one_number(int)
_conv_ds = _one_number(float)


def _conv_floats(elem: Any, n: int) -> Any:
    """The fast branch of :func:`_floats_of` (``n`` values)."""
    items = _number_items(elem, "DS")
    if items is None:
        return None
    if isinstance(items, list):
        return tuple(float(x) for x in items) if len(items) == n and n > 1 else None
    return _MISSING


def _i_pydicom(ds: Dataset, keyword: str) -> int | None:
    v = ds.get(keyword, None)
    try:
        return int(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _f_pydicom(ds: Dataset, keyword: str) -> float | None:
    v = ds.get(keyword, None)
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


_CONVERTERS: dict[str, tuple[Any, Any]] = {
    "SH": (_conv_text, _s_pydicom),
    "LO": (_conv_text, _s_pydicom),
    "PN": (_conv_text, _s_pydicom),
    "UI": (_conv_multi, _s_pydicom),
    "CS": (_conv_multi, _s_pydicom),
    "DA": (_conv_multi, _s_pydicom),
    "TM": (_conv_multi, _s_pydicom),
    "US": (_conv_us, _i_pydicom),
    "IS": (_conv_is, _i_pydicom),
    "DS": (_conv_ds, _f_pydicom),
}
#: InstanceHeader field → keyword, for the values read in one pass (kernel, image type,
#: frames and the others are handled separately)
_ONE_PASS_FIELDS = {
    "sop_instance_uid": "SOPInstanceUID",
    "modality": "Modality",
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "patient_birth_date": "PatientBirthDate",
    "patient_sex": "PatientSex",
    "study_uid": "StudyInstanceUID",
    "study_date": "StudyDate",
    "study_time": "StudyTime",
    "study_description": "StudyDescription",
    "accession_number": "AccessionNumber",
    "series_uid": "SeriesInstanceUID",
    "series_number": "SeriesNumber",
    "series_description": "SeriesDescription",
    "body_part": "BodyPartExamined",
    "manufacturer": "Manufacturer",
    "manufacturer_model": "ManufacturerModelName",
    "frame_of_reference_uid": "FrameOfReferenceUID",
    "rows": "Rows",
    "columns": "Columns",
    "samples_per_pixel": "SamplesPerPixel",
    "photometric": "PhotometricInterpretation",
    "bits_allocated": "BitsAllocated",
    "number_of_frames": "NumberOfFrames",
    "instance_number": "InstanceNumber",
    "acquisition_number": "AcquisitionNumber",
    "gantry_tilt_deg": "GantryDetectorTilt",
    "kvp": "KVP",
    "bits_stored": "BitsStored",
    "pixel_representation": "PixelRepresentation",
    "high_bit": "HighBit",
}
#: (field, keyword, tag, VR, fast conversion, pydicom conversion)
_ONE_PASS = tuple(
    (name, kw, _FAST_TAGS[kw][0], _FAST_TAGS[kw][1], *_CONVERTERS[_FAST_TAGS[kw][1]])
    for name, kw in _ONE_PASS_FIELDS.items()
)


def _one_pass_values(ds: Dataset, elements: dict[int, Any]) -> dict[str, Any]:
    """The :data:`_ONE_PASS_FIELDS` values as :func:`_s` / :func:`_i` / :func:`_f` give them."""
    get = elements.get
    out: dict[str, Any] = {}
    for name, kw, tag, vr, fast, slow in _ONE_PASS:
        v = fast(get(tag), vr)
        out[name] = slow(ds, kw) if v is _MISSING else v
    return out


def _plain_geometry(
    ds: Dataset, elements: dict[int, Any], n_frames: int
) -> tuple[FrameGeometry, ...]:
    """:func:`_frame_geometries` of a dataset without functional groups, one look-up each."""
    get = elements.get
    position = _conv_floats(get(0x00200032), 3)
    if position is _MISSING:
        position = _floats(ds.get("ImagePositionPatient"), 3)
    orientation = _conv_floats(get(0x00200037), 6)
    if orientation is _MISSING:
        orientation = _floats(ds.get("ImageOrientationPatient"), 6)
    spacing = _conv_floats(get(0x00280030), 2)
    if spacing is _MISSING:
        spacing = _floats(ds.get("PixelSpacing"), 2)
    thickness = _conv_ds(get(0x00180050), "DS")
    if thickness is _MISSING:
        thickness = _f_pydicom(ds, "SliceThickness")
    slope = _conv_ds(get(0x00281053), "DS")
    if slope is _MISSING:
        slope = _f_pydicom(ds, "RescaleSlope")
    intercept = _conv_ds(get(0x00281052), "DS")
    if intercept is _MISSING:
        intercept = _f_pydicom(ds, "RescaleIntercept")
    g = FrameGeometry(
        position=position,
        orientation=orientation,
        pixel_spacing=spacing,
        slice_thickness=thickness,
        rescale_slope=slope if slope is not None else 1.0,
        rescale_intercept=intercept if intercept is not None else 0.0,
    )
    return (g,) * n_frames if n_frames > 1 else (g,)


def header_from_dataset(
    ds: Dataset, *, path: str, size: int, mtime: float, pixel_offset: int = -1
) -> InstanceHeader:
    """Build an :class:`InstanceHeader` from an already-read dataset."""
    with _fast_scope(ds):
        return _header_from_dataset(
            ds, path=path, size=size, mtime=mtime, pixel_offset=pixel_offset
        )


def _header_from_dataset(
    ds: Dataset, *, path: str, size: int, mtime: float, pixel_offset: int
) -> InstanceHeader:
    if _fast_ok():
        return _header_one_pass(ds, path=path, size=size, mtime=mtime, pixel_offset=pixel_offset)
    return _header_by_helpers(ds, path=path, size=size, mtime=mtime, pixel_offset=pixel_offset)


def _meta_value(meta: Dataset, elements: dict[int, Any], keyword: str) -> str:
    """:func:`_meta_uid` with the file meta's elements already by int tag."""
    tag, vr = _FAST_TAGS[keyword]
    elem = elements.get(tag)
    raw = _raw_of(elem, vr)
    if raw is None:
        return ""
    if raw is _MISSING and type(elem) is _pd[2] and vr == elem.VR:
        # converted while pydicom read the meta (the transfer syntax): ``meta.get`` gives
        # the element's value, a UID (a str)
        value = elem.value
        if isinstance(value, str):
            return str(value)
    if isinstance(raw, bytes):
        stripped = raw.rstrip(b"\x00 ")
        if _PLAIN.fullmatch(stripped):
            return stripped.decode("ascii")
    return str(meta.get(keyword, ""))


def _header_one_pass(
    ds: Dataset, *, path: str, size: int, mtime: float, pixel_offset: int
) -> InstanceHeader:
    """:func:`_header_by_helpers` with one look-up per element (the fast values are on)."""
    elements = _elements(ds)
    meta = getattr(ds, "file_meta", None)
    meta_elements = _elements(meta) if meta is not None else {}
    tsyntax = _meta_value(meta, meta_elements, "TransferSyntaxUID") if meta is not None else ""
    sop_class = _conv_multi(elements.get(0x00080016), "UI")
    if sop_class is _MISSING:
        sop_class = _s_pydicom(ds, "SOPClassUID")
    if not sop_class and meta is not None:
        sop_class = _meta_value(meta, meta_elements, "MediaStorageSOPClassUID")
    kernel, image_type = _kernel_and_image_type(ds)
    has_pixels = 0x7FE00010 in elements or 0x7FE00008 in elements or 0x7FE00009 in elements
    # With stop_before_pixels the element is absent; Rows/Columns tell an image apart.
    if (
        not has_pixels
        and 0x00280010 in elements
        and 0x00280011 in elements
        and sop_class != MEDIA_STORAGE_DIRECTORY
    ):
        has_pixels = True
    v = _one_pass_values(ds, elements)
    n_frames = v["number_of_frames"] or 1
    if not has_pixels:
        frames: tuple[FrameGeometry, ...] = ()
    elif 0x52009229 in elements or 0x52009230 in elements:  # functional groups
        frames = frame_geometries(ds)
    else:
        frames = _plain_geometry(ds, elements, n_frames)
    high_bit = v["high_bit"]
    return InstanceHeader(
        path=path,
        size=size,
        mtime=mtime,
        sop_class_uid=sop_class,
        sop_instance_uid=v["sop_instance_uid"],
        transfer_syntax_uid=tsyntax,
        modality=v["modality"].upper(),
        patient_name=v["patient_name"],
        patient_id=v["patient_id"],
        patient_birth_date=v["patient_birth_date"],
        patient_sex=v["patient_sex"],
        study_uid=v["study_uid"],
        study_date=v["study_date"],
        study_time=v["study_time"],
        study_description=v["study_description"],
        accession_number=v["accession_number"],
        series_uid=v["series_uid"],
        series_number=v["series_number"],
        series_description=v["series_description"],
        body_part=v["body_part"],
        image_type=image_type,
        convolution_kernel=kernel,
        manufacturer=v["manufacturer"],
        manufacturer_model=v["manufacturer_model"],
        frame_of_reference_uid=v["frame_of_reference_uid"],
        rows=v["rows"] or 0,
        columns=v["columns"] or 0,
        samples_per_pixel=v["samples_per_pixel"] or 1,
        photometric=v["photometric"],
        bits_allocated=v["bits_allocated"] or 0,
        number_of_frames=n_frames,
        instance_number=v["instance_number"],
        acquisition_number=v["acquisition_number"],
        gantry_tilt_deg=v["gantry_tilt_deg"],
        kvp=v["kvp"],
        has_pixels=has_pixels,
        frames=frames,
        bits_stored=v["bits_stored"] or 0,
        pixel_representation=v["pixel_representation"] or 0,
        high_bit=-1 if high_bit is None else high_bit,
        pixel_offset=pixel_offset,
    )


def _header_by_helpers(
    ds: Dataset, *, path: str, size: int, mtime: float, pixel_offset: int
) -> InstanceHeader:
    """The header value by value through :func:`_s` / :func:`_i` / :func:`_f` (which go
    through pydicom when the fast values are off)."""
    meta = getattr(ds, "file_meta", None)
    tsyntax = _meta_uid(meta, "TransferSyntaxUID")
    sop_class = _s(ds, "SOPClassUID") or (_meta_uid(meta, "MediaStorageSOPClassUID"))
    kernel, image_type = _kernel_and_image_type(ds)
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
        image_type=image_type,
        convolution_kernel=kernel,
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
    return _read_header(str(path), None)


def _resolved(p: str, is_link: bool, dirs: dict[str, str] | None) -> str:
    """``str(Path(p).resolve())`` of an existing file, with its folder resolved once per
    folder in ``dirs`` (resolving costs a system call per path component, per file).

    Only a file that is not a symbolic link is joined to its resolved folder (that is what
    ``resolve`` gives for it); a link, or no ``dirs``, or Windows (where resolving also
    normalises the case of the name) is resolved whole."""
    if dirs is None or is_link or os.name == "nt":
        return str(Path(p).resolve())
    head, tail = os.path.split(p)
    real = dirs.get(head)
    if real is None:
        real = dirs[head] = str(Path(head or os.curdir).resolve())
    return os.path.join(real, tail)


#: bytes read at once for a header (a CT slice's header is 1-40 KiB)
_HEAD_CHUNK = 64 * 1024
#: (7FE0,0010) Pixel Data, little endian
_PIXEL_TAG_LE = b"\xe0\x7f\x10\x00"


def _parse_header(fh: io.BufferedReader, p: str, pydicom: Any) -> tuple[Dataset, int]:
    """``dcmread(fh, stop_before_pixels=True)`` and the offset where it stopped (the Pixel
    Data tag, if any).

    pydicom reads a header in many small reads and tells; from memory they cost a quarter
    less CPU than from a file object. So the first :data:`_HEAD_CHUNK` bytes are read at
    once and parsed from memory when they hold the whole file or a Pixel Data tag; a parse
    that stops inside them read exactly the bytes the file read would have (pydicom's parse
    depends only on the bytes it has read), so it gives the same dataset. One that ran into
    their end, or failed, while the file is longer is done again from the file, as is a
    chunk without the tag (pixel data further on). (Only a header longer than the chunk with
    the tag's four bytes inside an earlier value is parsed twice, and may then log a pydicom
    warning twice.)"""
    data = fh.read(_HEAD_CHUNK)
    whole = len(data) < _HEAD_CHUNK
    if whole or _PIXEL_TAG_LE in data:
        buf = io.BytesIO(data)
        buf.name = p  # pydicom names the file in its warnings, as for the file object
        if whole:
            return pydicom.dcmread(buf, stop_before_pixels=True), buf.tell()
        try:
            ds = pydicom.dcmread(buf, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 (cut short by the chunk: the file read decides)
            ds = None
        if ds is not None and buf.tell() < len(data):
            return ds, buf.tell()
    fh.seek(0)
    ds = pydicom.dcmread(fh, stop_before_pixels=True)
    return ds, fh.tell()


def _read_header(p: str, dirs: dict[str, str] | None) -> InstanceHeader | SkippedFile:
    """:func:`read_header`; ``dirs`` keeps resolved folders between the calls of one scan
    (see :func:`_resolved`), None resolves every path whole."""
    from sinusapp.dicom._pydicom import InvalidDicomError, pydicom

    try:
        st = os.lstat(p)  # == os.stat for anything but a link, which is followed below
        is_link = stat.S_ISLNK(st.st_mode)
        if is_link:
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
            ds, pixel_offset = _parse_header(fh, p, pydicom)
    except InvalidDicomError:
        return SkippedFile(p, "not a DICOM file (no DICM preamble or valid header)", "not_dicom")
    except (EOFError, OSError) as exc:
        return SkippedFile(p, f"truncated or unreadable DICOM file ({exc})", "truncated")
    except Exception as exc:
        log.debug("failed to parse %s", p, exc_info=True)
        return SkippedFile(p, f"malformed DICOM header ({type(exc).__name__}: {exc})", "malformed")
    try:
        with _fast_scope(ds):
            return _interpret(ds, p=p, st=st, pixel_offset=pixel_offset, is_link=is_link, dirs=dirs)
    except Exception as exc:
        log.debug("failed to interpret %s", p, exc_info=True)
        return SkippedFile(p, f"malformed DICOM header ({type(exc).__name__}: {exc})", "malformed")


def _interpret(
    ds: Dataset,
    *,
    p: str,
    st: os.stat_result,
    pixel_offset: int,
    is_link: bool = True,
    dirs: dict[str, str] | None = None,
) -> InstanceHeader | SkippedFile:
    """The second half of :func:`read_header`: a parsed dataset → header or skipped file."""
    meta = getattr(ds, "file_meta", None)
    if _fast_ok():  # the same tests, one look-up each
        elements = _elements(ds)
        msc = (
            _meta_value(meta, _elements(meta), "MediaStorageSOPClassUID")
            if meta is not None
            else ""
        )
        directory = msc == MEDIA_STORAGE_DIRECTORY or 0x00041220 in elements
        series = _conv_multi(elements.get(0x0020000E), "UI")
        if series is _MISSING:
            series = _s_pydicom(ds, "SeriesInstanceUID")
        sop = _conv_multi(elements.get(0x00080018), "UI")
        if sop is _MISSING:
            sop = _s_pydicom(ds, "SOPInstanceUID")
        no_uid = not series or not sop
    else:
        msc = _meta_uid(meta, "MediaStorageSOPClassUID")
        directory = msc == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds
        no_uid = not _s(ds, "SeriesInstanceUID") or not _s(ds, "SOPInstanceUID")
    if directory:
        return SkippedFile(p, "DICOM directory (DICOMDIR / DIRFILE), not an image", "directory")
    if no_uid:
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
        path=_resolved(p, is_link, dirs),
        size=st.st_size,
        mtime=st.st_mtime,
        pixel_offset=pixel_offset,
    )
