"""Write a synthetic case as DICOM: CT Image Storage series, DICOM SEG lesion, NIfTI labels.

Everything written is deterministic for a case's seed: UIDs are derived from the seed and the
case id (:func:`pydicom.uid.generate_uid` with entropy sources), dates and times are fixed, and
file names are either ``IM0001.dcm``... or (``shuffle_names``) seeded random hex names.

Conventions
-----------
- Axial slices, ImageOrientationPatient ``1\\0\\0\\0\\1\\0`` (with ``tilt_deg`` the column
  direction is tilted about x and the slices still advance along z, like a tilted gantry; the
  header carries GantryDetectorTilt). Stored values are ``HU + 1024`` (unsigned, 12 bits
  stored), RescaleIntercept −1024, RescaleSlope 1.
- The lesion mask is a BINARY DICOM SEG (highdicom) referencing the CT instances, one segment
  "CRS lesion". The sinus label map is NIfTI-1 (``sinus_labels.nii.gz``), data stored
  ``[column, row, slice]`` with the RAS affine ``diag(−1, −1, 1) · A_LPS`` (the label table is
  in the NIfTI description and in :data:`sinusapp.synth.phantom.SINUS_LABELS`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from sinusapp._version import __version__
from sinusapp.synth.phantom import SINUS_LABELS

__all__ = [
    "COMPRESSIONS",
    "CaseDicomInfo",
    "CtSeriesOptions",
    "lps_to_ras_affine",
    "write_ct_series",
    "write_label_nifti",
    "write_lesion_seg",
    "write_study",
]

log = logging.getLogger(__name__)

#: ``--compress`` choices → transfer syntax.
COMPRESSIONS: dict[str, pydicom.uid.UID] = {
    "none": ExplicitVRLittleEndian,
    "rle": RLELossless,
    "jpegls": JPEGLSLossless,
    "j2k": JPEG2000Lossless,
}

MANUFACTURER = "SinusApp Synthetic"
_STUDY_DATE = "20230315"
_STUDY_TIME = "101500"
_IMPLEMENTATION_UID = pydicom.uid.UID(generate_uid(entropy_srcs=["sinusapp-synth-implementation"]))


def uid(*parts: object) -> str:
    """Deterministic DICOM UID (2.25 root) from ``parts``."""
    return str(generate_uid(entropy_srcs=["sinusapp-synth", *(str(p) for p in parts)]))


@dataclass(frozen=True, slots=True)
class CaseDicomInfo:
    """Patient / study identity of a case (all synthetic)."""

    case_id: str
    seed: int
    sex: str = "O"
    age_years: int = 45
    study_uid: str = ""
    frame_of_reference_uid: str = ""

    @property
    def patient_name(self) -> str:
        """Obviously synthetic name, e.g. ``SYNTHETIC^CASEA0001``."""
        return f"SYNTHETIC^CASE{self.case_id}"

    def study(self) -> str:
        """StudyInstanceUID (deterministic)."""
        return self.study_uid or uid(self.seed, self.case_id, "study")

    def frame_of_reference(self) -> str:
        """FrameOfReferenceUID (deterministic)."""
        return self.frame_of_reference_uid or uid(self.seed, self.case_id, "for")


@dataclass(frozen=True, slots=True)
class CtSeriesOptions:
    """How to write one CT series."""

    series_number: int = 2
    series_description: str = "SINUS BONE AXIAL"
    kernel: str = "BONE"
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL")
    compress: str = "none"
    shuffle_names: bool = False
    drop_slices: tuple[int, ...] = ()
    tilt_deg: float = 0.0
    kvp: float = 120.0
    model: str = "Synthetic CT"
    slice_thickness_mm: float | None = None


def lps_to_ras_affine(affine_lps: np.ndarray) -> np.ndarray:
    """NIfTI (RAS) affine for data stored ``[column, row, slice]``, from our LPS affine of
    ``[slice, row, column]`` arrays."""
    a = np.asarray(affine_lps, float)
    perm = np.zeros((4, 4))
    perm[0, 2] = perm[1, 1] = perm[2, 0] = perm[3, 3] = 1.0  # (i, j, k) → (k, j, i)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ a @ perm


def _file_names(n: int, *, shuffle: bool, seed: int, series_number: int) -> list[str]:
    if not shuffle:
        return [f"S{series_number:02d}_IM{i + 1:04d}.dcm" for i in range(n)]
    rng = np.random.default_rng(np.random.SeedSequence([seed, series_number, 7]))
    names = {f"{int(v):016X}" for v in rng.integers(0, 2**62, size=n * 2)}
    ordered = sorted(names)  # set order is not deterministic across runs; sorting is
    rng.shuffle(ordered)
    return ordered[:n]


def _accession(case_id: str) -> str:
    """``SYN<case_id>``, within the 16 characters of an SH value: a longer id (the head
    cases' ``HEAD_harvard02_5_000``) becomes ``SYN`` + 13 hex digits of its hash, distinct
    per id."""
    text = f"SYN{case_id}"
    if len(text) <= 16:
        return text
    import hashlib

    return "SYN" + hashlib.sha1(case_id.encode("utf-8")).hexdigest()[:13].upper()


def write_ct_series(
    *,
    hu: np.ndarray,
    affine: np.ndarray,
    out_dir: Path,
    case: CaseDicomInfo,
    options: CtSeriesOptions,
) -> list[pydicom.Dataset]:
    """Write ``hu`` (int16, ``[slice, row, column]``) as a CT Image Storage series.

    Parameters
    ----------
    hu:
        Hounsfield units on the grid of ``affine``.
    affine:
        Index → LPS affine. Its column directions become ImageOrientationPatient, each slice's
        origin ImagePositionPatient (rounded to 0.001 mm).
    out_dir:
        Folder to write into (created).
    case:
        Patient / study identity.
    options:
        Series number, kernel, compression, names, dropped slices, tilt.

    Returns
    -------
    list of pydicom.Dataset
        The written datasets (headers + pixel data), in slice order, without dropped ones.
    """
    if hu.ndim != 3 or hu.dtype != np.int16:
        raise ValueError(f"hu must be int16 [slice, row, column], got {hu.dtype} {hu.shape}")
    if options.compress not in COMPRESSIONS:
        raise ValueError(
            f"compress must be one of {sorted(COMPRESSIONS)}, got {options.compress!r}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    a = np.asarray(affine, float)
    sp = np.linalg.norm(a[:3, :3], axis=0)
    row_cos = a[:3, 2] / sp[2]
    col_cos = a[:3, 1] / sp[1]
    normal = np.cross(row_cos, col_cos)
    series_uid = uid(case.seed, case.case_id, "series", options.series_number)
    keep = [k for k in range(hu.shape[0]) if k not in set(options.drop_slices)]
    names = _file_names(
        len(keep),
        shuffle=options.shuffle_names,
        seed=case.seed,
        series_number=options.series_number,
    )
    tsyntax = COMPRESSIONS[options.compress]
    stored = np.clip(hu.astype(np.int32) + 1024, 0, 4095).astype(np.uint16)
    datasets: list[pydicom.Dataset] = []
    for n, k in enumerate(keep):
        ipp = a[:3, 0] * k + a[:3, 3]
        sop_uid = uid(case.seed, case.case_id, "ct", options.series_number, k)
        ds = _ct_header(case=case, options=options, series_uid=series_uid, sop_uid=sop_uid)
        ds.InstanceNumber = n + 1
        ds.ImagePositionPatient = [_ds(v) for v in ipp]
        ds.ImageOrientationPatient = [_ds(v, 6) for v in (*row_cos, *col_cos)]
        ds.PixelSpacing = [_ds(sp[1]), _ds(sp[2])]
        ds.SliceThickness = _ds(options.slice_thickness_mm or sp[0])
        ds.SpacingBetweenSlices = _ds(sp[0] * abs(float(normal @ a[:3, 0] / sp[0])))
        ds.SliceLocation = _ds(float(ipp @ normal))
        ds.Rows, ds.Columns = int(hu.shape[1]), int(hu.shape[2])
        ds.PixelData = stored[k].tobytes()
        if tsyntax != ExplicitVRLittleEndian:
            # pydicom would give the instance a new random UID when compressing; keep ours
            ds.compress(
                tsyntax,
                stored[k],
                encoding_plugin=_plugin(options.compress),
                generate_instance_uid=False,
            )
        ds.file_meta.TransferSyntaxUID = tsyntax
        pydicom.dcmwrite(out_dir / names[n], ds, enforce_file_format=True)
        datasets.append(ds)
    log.debug("wrote %d CT slices to %s", len(datasets), out_dir)
    return datasets


def _plugin(compress: str) -> str:
    """Encoder plugin: pylibjpeg-rle is much faster than pydicom's own RLE encoder."""
    if compress == "rle":
        from pydicom.pixels.encoders import RLELosslessEncoder

        return "pylibjpeg" if "pylibjpeg" in RLELosslessEncoder.available_plugins else "pydicom"
    return {"jpegls": "pyjpegls", "j2k": "pylibjpeg"}.get(compress, "")


def _ds(v: float, nd: int = 3) -> str:
    s = f"{float(v):.{nd}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _ct_header(
    *, case: CaseDicomInfo, options: CtSeriesOptions, series_uid: str, sop_uid: str
) -> pydicom.Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _IMPLEMENTATION_UID
    meta.ImplementationVersionName = "SINUSAPP_SYNTH"
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(options.image_type)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = _STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = _STUDY_TIME
    ds.AccessionNumber = _accession(case.case_id)
    ds.Modality = "CT"
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = "SinusApp synthetic cohort"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT PARANASAL SINUSES (SYNTHETIC)"
    ds.SeriesDescription = options.series_description
    ds.ManufacturerModelName = options.model
    ds.PatientName = case.patient_name
    ds.PatientID = f"SYN-{case.case_id}"
    ds.PatientBirthDate = ""
    ds.PatientSex = case.sex if case.sex in ("M", "F", "O") else "O"
    ds.PatientAge = f"{int(case.age_years):03d}Y"
    ds.PatientIdentityRemoved = "NO"
    ds.BodyPartExamined = "HEAD"
    ds.SliceThickness = "1"
    ds.KVP = _ds(options.kvp)
    ds.SoftwareVersions = f"sinusapp {__version__}"
    ds.ConvolutionKernel = options.kernel
    ds.PatientPosition = "HFS"
    ds.GantryDetectorTilt = _ds(options.tilt_deg)
    ds.StudyInstanceUID = case.study()
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = options.series_number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = case.frame_of_reference()
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = ["400", "40"]
    ds.WindowWidth = ["2200", "400"]
    ds.WindowCenterWidthExplanation = ["SINUS BONE", "SOFT TISSUE"]
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    return ds


def write_localizer(
    *,
    hu: np.ndarray,
    affine: np.ndarray,
    out_dir: Path,
    case: CaseDicomInfo,
    series_number: int = 1,
) -> pydicom.Dataset:
    """Write a lateral scout (a projection of the volume) as a LOCALIZER CT image."""
    a = np.asarray(affine, float)
    sp = np.linalg.norm(a[:3, :3], axis=0)
    mu = np.clip((hu.astype(np.float32) + 1000.0) / 1000.0, 0, None)
    proj = mu.sum(axis=2) * sp[2] / 10.0  # line integral over x, [slice, row]
    img = (proj / max(float(proj.max()), 1e-6) * 3000.0 - 1000.0)[::-1, :]  # superior at top
    img16 = np.clip(np.rint(img), -1024, 3071).astype(np.int16)[None]
    # sagittal plane: rows along +y (posterior), columns (row index) along −z (inferior)
    aff = np.eye(4)
    top = a[:3, 0] * (hu.shape[0] - 1) + a[:3, 3]
    aff[:3, 0] = (1.0, 0.0, 0.0)
    aff[:3, 1] = (0.0, 0.0, -sp[0])
    aff[:3, 2] = (0.0, sp[1], 0.0)
    aff[:3, 3] = (0.0, top[1], top[2])
    options = CtSeriesOptions(
        series_number=series_number,
        series_description="SCOUT LATERAL",
        kernel="STANDARD",
        image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        model="Synthetic CT",
    )
    ds_list = write_ct_series(hu=img16, affine=aff, out_dir=out_dir, case=case, options=options)
    return ds_list[0]


def write_lesion_seg(
    *,
    mask: np.ndarray,
    source_images: Sequence[pydicom.Dataset],
    slice_indices: Sequence[int] | None,
    out_path: Path,
    case: CaseDicomInfo,
) -> None:
    """Write the lesion mask as a BINARY DICOM SEG referencing ``source_images``.

    ``mask`` is ``[slice, row, column]`` on the CT grid; ``slice_indices`` gives, for each
    source image, its slice index in ``mask`` (default: all slices, in order).
    """
    idx = list(range(mask.shape[0])) if slice_indices is None else list(slice_indices)
    frames = (mask[idx] > 0).astype(np.uint8)
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="CRS lesion",
        segmented_property_category=hd.sr.CodedConcept(
            "49755003", "SCT", "Morphologically Altered Structure"
        ),
        segmented_property_type=hd.sr.CodedConcept("52988006", "SCT", "Lesion"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="SinusApp synthetic phantom (ground truth)",
            family=hd.sr.CodedConcept("123109", "DCM", "Manual Processing"),
            version=__version__,
        ),
        anatomic_regions=[hd.sr.CodedConcept("2095001", "SCT", "Nasal sinus")],
    )
    seg = hd.seg.Segmentation(
        source_images=list(source_images),
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=uid(case.seed, case.case_id, "seg-series"),
        series_number=100,
        sop_instance_uid=uid(case.seed, case.case_id, "seg"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="SinusApp synth",
        software_versions=f"sinusapp {__version__}",
        device_serial_number="SYNTH-0001",
        content_description="Reference lesion mask (synthetic ground truth)",
        series_description="CRS LESION REFERENCE",
        omit_empty_frames=bool(frames.any()),
    )
    for keyword in ("ContentDate", "SeriesDate"):
        setattr(seg, keyword, _STUDY_DATE)
    for keyword in ("ContentTime", "SeriesTime"):
        setattr(seg, keyword, _STUDY_TIME)
    if "InstanceCreationDate" in seg:
        setattr(seg, "InstanceCreationDate", _STUDY_DATE)  # noqa: B010 - typed as DA
        setattr(seg, "InstanceCreationTime", _STUDY_TIME)  # noqa: B010 - typed as TM
    # highdicom stamps the current time and random UIDs here; fix them for reproducibility
    for item in seg.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = _STUDY_DATE + _STUDY_TIME
    dim_uid = uid(case.seed, case.case_id, "seg-dimension-organization")
    for keyword in ("DimensionOrganizationSequence", "DimensionIndexSequence"):
        for item in seg.get(keyword, []):
            if "DimensionOrganizationUID" in item:
                item.DimensionOrganizationUID = dim_uid
    seg.file_meta.ImplementationClassUID = _IMPLEMENTATION_UID
    seg.file_meta.ImplementationVersionName = "SINUSAPP_SYNTH"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out_path, enforce_file_format=True)


def write_label_nifti(
    *, labels: np.ndarray, affine: np.ndarray, out_path: Path, description: str | None = None
) -> None:
    """Write the sinus label map as NIfTI-1 (RAS affine, data ``[column, row, slice]``).

    ``description``: the header's ``descrip`` (default: the sinus-label legend); any other
    uint8 map on the CT grid (e.g. a segmentation-only case's ``unlabelled``) uses it too.
    """
    data = np.ascontiguousarray(labels.transpose(2, 1, 0).astype(np.uint8))
    ras = lps_to_ras_affine(affine)
    img = nib.Nifti1Image(data, ras)
    img.set_qform(ras, code=1)
    img.set_sform(ras, code=1)
    img.header["descrip"] = (
        description or f"SinusApp sinus labels 1-{max(SINUS_LABELS)} (docs/dataset_format.md)"
    ).encode()
    img.header.set_xyzt_units("mm")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(out_path))


def write_study(
    *,
    hu: np.ndarray,
    affine: np.ndarray,
    lesion: np.ndarray,
    labels: np.ndarray,
    out_dir: Path,
    case: CaseDicomInfo,
    options: CtSeriesOptions,
    slice_indices: Sequence[int] | None = None,
) -> list[pydicom.Dataset]:
    """The study layout every generator writes: ``ct/`` (the CT series), ``lesion_seg.dcm``
    (the lesion as DICOM SEG on that series) and ``sinus_labels.nii.gz``.

    ``slice_indices``: for each written CT image, its slice of ``lesion`` (default: all, in
    order; a series with dropped slices passes the kept ones). Returns the CT datasets.
    """
    datasets = write_ct_series(
        hu=hu, affine=affine, out_dir=out_dir / "ct", case=case, options=options
    )
    write_lesion_seg(
        mask=lesion,
        source_images=datasets,
        slice_indices=slice_indices,
        out_path=out_dir / "lesion_seg.dcm",
        case=case,
    )
    write_label_nifti(labels=labels, affine=affine, out_path=out_dir / "sinus_labels.nii.gz")
    return datasets
