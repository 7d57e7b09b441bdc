"""Export to the PACS as files: the report as DICOM Encapsulated PDF, the mask as DICOM SEG.

Both objects

- belong to the source CT's study (patient and study identifiers copied from the source),
- reference the source series (SEG: per-frame derivation + Referenced Series Sequence;
  PDF: Source Instance Sequence listing the CT instances),
- carry provenance: Manufacturer ``"SinusApp"``, ManufacturerModelName, SoftwareVersions
  (application and model), the model's name / version / checksum in the SEG's algorithm
  identification, and ``"AI-generated, not for diagnostic use"`` in the SeriesDescription
  (and in the SEG's ContentDescription),
- get fixed series numbers (:data:`SEG_SERIES_NUMBER`, :data:`PDF_SERIES_NUMBER`) and
  deterministic UIDs: the series UID is derived from the source series UID and the software
  version (re-exports land in the same series); the SOP instance UID also from a checksum of
  the content, so different content never shares a UID.

highdicom builds the SEG (:class:`highdicom.seg.Segmentation`). highdicom has no Encapsulated
PDF class; :class:`EncapsulatedPDF` is built on :class:`highdicom.base.SOPClass` (which fills
and validates the Patient, General Study, Series, General Equipment and SOP Common modules)
and adds the SC Equipment and Encapsulated Document modules (PS3.3 A.45.1).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian, generate_uid

from sinusapp._version import __version__
from sinusapp.atomic import write_bytes_atomic
from sinusapp.dicom._pydicom import pydicom
from sinusapp.errors import InputError

__all__ = [
    "AI_NOTICE",
    "MANUFACTURER",
    "PDF_SERIES_NUMBER",
    "SEG_SERIES_NUMBER",
    "EncapsulatedPDF",
    "export_encapsulated_pdf",
    "export_seg",
    "read_source_datasets",
]

log = logging.getLogger(__name__)

MANUFACTURER = "SinusApp"
MANUFACTURER_MODEL_NAME = "SinusApp CRS recurrence risk"
AI_NOTICE = "AI-generated, not for diagnostic use"
SEG_SERIES_NUMBER = 9001
PDF_SERIES_NUMBER = 9002
SEGMENT_LABEL = "CRS lesion"


# --------------------------------------------------------------------------------------------
# Encapsulated PDF IOD
# --------------------------------------------------------------------------------------------


class EncapsulatedPDF(hd.base.SOPClass):
    """DICOM Encapsulated PDF Storage instance (PS3.3 A.45.1).

    Parameters
    ----------
    pdf:
        The PDF document (must start with ``%PDF-``).
    document_title:
        DocumentTitle (0042,0010).
    source_instances:
        ``(sop_class_uid, sop_instance_uid)`` of the instances the document was derived from
        (Source Instance Sequence, required when there are any).
    content_datetime:
        When the document content was created (ContentDate / ContentTime and
        AcquisitionDateTime).
    kwargs:
        Passed to :class:`highdicom.base.SOPClass` (study / series / instance UIDs, numbers,
        patient and study identifiers, manufacturer, software versions, ...).

    Raises
    ------
    ValueError
        ``pdf`` is empty or not a PDF.
    """

    def __init__(
        self,
        *,
        pdf: bytes,
        document_title: str,
        source_instances: Sequence[tuple[str, str]],
        content_datetime: _dt.datetime,
        **kwargs: Any,
    ) -> None:
        if not pdf.startswith(b"%PDF-"):
            raise ValueError("pdf: the document does not start with '%PDF-'; not a PDF file")
        super().__init__(
            sop_class_uid=EncapsulatedPDFStorage,
            modality="DOC",
            transfer_syntax_uid=ExplicitVRLittleEndian,
            content_date=content_datetime.date(),
            content_time=content_datetime.time().replace(microsecond=0),
            **kwargs,
        )
        # SC Equipment module: a workstation made the document
        self.ConversionType = "WSD"
        # Encapsulated Document module
        self.AcquisitionDateTime = content_datetime.strftime("%Y%m%d%H%M%S")
        self.BurnedInAnnotation = "YES"  # the report shows the patient's name and ID
        self.DocumentTitle = document_title
        self.ConceptNameCodeSequence: list[Dataset] = []
        self.MIMETypeOfEncapsulatedDocument = "application/pdf"
        self.EncapsulatedDocumentLength = len(pdf)
        self.EncapsulatedDocument = pdf + (b"\x00" if len(pdf) % 2 else b"")
        items = []
        for sop_class_uid, sop_instance_uid in source_instances:
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class_uid
            item.ReferencedSOPInstanceUID = sop_instance_uid
            items.append(item)
        if items:
            self.SourceInstanceSequence = items


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _derived_uid(*parts: str) -> str:
    """A UID derived deterministically from ``parts`` (pydicom's root + a hash)."""
    return str(generate_uid(entropy_srcs=[MANUFACTURER, *parts]))


def _analysed_datetime(result: Any) -> _dt.datetime:
    try:
        t = _dt.datetime.fromisoformat(str(result.analysed_at))
    except ValueError:
        log.warning("analysed_at %r is not ISO 8601; using the current time", result.analysed_at)
        t = _dt.datetime.now().astimezone()
    return t.replace(microsecond=0)


def _software_versions(result: Any) -> tuple[str, ...]:
    versions = [f"SinusApp {result.software_version or __version__}"]
    if result.model is not None:
        versions.append(f"{result.model.name} {result.model.version}")
    return tuple(versions)


def _not_for_clinical_use(result: Any) -> bool:
    return result.model is None or bool(result.model.trained_on_synthetic)


def read_source_datasets(source_dir: str | os.PathLike[str], *, series_uid: str) -> list[Dataset]:
    """Read the headers (no pixel data) of every instance of ``series_uid`` under a folder.

    Non-DICOM files and other series are skipped. Raises :class:`InputError` when none of
    the series' images is found.
    """
    root = Path(source_dir)
    if not root.is_dir():
        raise InputError(
            "the source folder does not exist",
            path=root,
            hint="give the folder that holds the analysed CT series",
        )
    found: list[Dataset] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        if str(getattr(ds, "SeriesInstanceUID", "")) == series_uid:
            found.append(ds)
    if not found:
        raise InputError(
            f"no image of the analysed series {series_uid} was found",
            path=root,
            hint="give the folder that holds the analysed CT series",
        )
    return found


def _sources(
    result: Any,
    source_datasets: Iterable[Dataset] | None,
    source_dir: str | os.PathLike[str] | None,
) -> list[Dataset]:
    info = result.volume.info
    if source_datasets is not None:
        sources = list(source_datasets)
    elif source_dir is not None:
        sources = read_source_datasets(source_dir, series_uid=info.series_uid)
    else:
        raise ValueError("give either source_datasets or source_dir")
    if not sources:
        raise InputError("no source CT instances were given for the export")
    wrong = [
        str(getattr(ds, "SeriesInstanceUID", ""))
        for ds in sources
        if str(getattr(ds, "SeriesInstanceUID", "")) != info.series_uid
    ]
    if wrong:
        raise InputError(
            f"the source instances belong to series {sorted(set(wrong))}, the analysis to "
            f"{info.series_uid}",
            hint="pass the images of the analysed series",
        )
    # keep the volume's slice order where it is known
    order = {uid: i for i, uid in enumerate(info.sop_instance_uids)}
    sources.sort(key=lambda ds: order.get(str(ds.SOPInstanceUID), len(order)))
    for ds in sources:
        # Real-world CT often omits Type 2 patient / study attributes that highdicom copies
        # into the derived object; they may be empty but must be present (PS3.3 C.7.1.1, C.7.2.1).
        for keyword in _TYPE2_COPIED:
            if keyword not in ds:
                setattr(ds, keyword, "")
    return sources


_TYPE2_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def _patient_study_from(ds: Dataset) -> dict[str, Any]:
    """Patient and study identifiers of a source dataset, as highdicom keyword arguments."""
    return {
        "study_instance_uid": str(ds.StudyInstanceUID),
        "patient_id": str(getattr(ds, "PatientID", "") or "") or None,
        "patient_name": getattr(ds, "PatientName", None) or None,
        "patient_birth_date": str(getattr(ds, "PatientBirthDate", "") or "") or None,
        "patient_sex": str(getattr(ds, "PatientSex", "") or "") or None,
        "accession_number": str(getattr(ds, "AccessionNumber", "") or "") or None,
        "study_id": str(getattr(ds, "StudyID", "") or "") or None,
        "study_date": str(getattr(ds, "StudyDate", "") or "") or None,
        "study_time": str(getattr(ds, "StudyTime", "") or "") or None,
        "referring_physician_name": getattr(ds, "ReferringPhysicianName", None) or None,
    }


def _patient_study_from_info(info: Any) -> dict[str, Any]:
    return {
        "study_instance_uid": info.study_uid,
        "patient_id": info.patient_id or None,
        "patient_name": info.patient_name or None,
        "patient_birth_date": info.patient_birth_date or None,
        "patient_sex": info.patient_sex or None,
        "accession_number": info.accession_number or None,
        "study_date": info.study_date or None,
        "study_time": info.study_time or None,
    }


def _save(ds: Dataset, out_path: str | os.PathLike[str], what: str) -> Path:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    target = write_bytes_atomic(buf.getvalue(), out_path, what=what)
    log.info("%s written: %s (%d bytes)", what, target, buf.tell())
    return target


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def export_encapsulated_pdf(
    pdf_path: str | os.PathLike[str],
    *,
    result: Any,
    out_path: str | os.PathLike[str],
    source_datasets: Iterable[Dataset] | None = None,
) -> Path:
    """Write the PDF report as a DICOM Encapsulated PDF in the source CT's study.

    Parameters
    ----------
    pdf_path:
        The report (from :func:`sinusapp.report.render_pdf`).
    result:
        The :class:`~sinusapp.pipeline.AnalysisResult` the report was made from.
    out_path:
        The ``.dcm`` file to write (atomically).
    source_datasets:
        Optional source CT datasets; when given, patient and study identifiers are copied
        from them (otherwise from ``result.volume.info``, which was read from the same files).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InputError
        ``pdf_path`` cannot be read or is not a PDF; the source has no StudyInstanceUID.
    OutputError
        ``out_path`` cannot be written.
    """
    src = Path(pdf_path)
    try:
        pdf = src.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the report PDF: {exc.strerror or exc}", path=src) from exc
    if not pdf.startswith(b"%PDF-"):
        raise InputError("the report file is not a PDF", path=src)
    info = result.volume.info
    sources = list(source_datasets) if source_datasets is not None else []
    ids = _patient_study_from(sources[0]) if sources else _patient_study_from_info(info)
    if not ids["study_instance_uid"]:
        raise InputError(
            "the source series has no StudyInstanceUID; cannot place the report in its study"
        )
    version = str(result.software_version or __version__)
    content_hash = hashlib.sha256(pdf).hexdigest()
    series_uid = _derived_uid("encapsulated-pdf", info.series_uid, version)
    sop_uid = _derived_uid("encapsulated-pdf", info.series_uid, version, content_hash)
    when = _analysed_datetime(result)
    notice = f" - {AI_NOTICE}" if _not_for_clinical_use(result) else ""
    sop_class = info.sop_class_uid or "1.2.840.10008.5.1.4.1.1.2"
    source_instances = (
        [(str(ds.SOPClassUID), str(ds.SOPInstanceUID)) for ds in sources]
        if sources
        else [(sop_class, uid) for uid in info.sop_instance_uids]
    )
    doc = EncapsulatedPDF(
        pdf=pdf,
        document_title=f"CRS recurrence risk report{notice}",
        source_instances=source_instances,
        content_datetime=when,
        series_instance_uid=series_uid,
        series_number=PDF_SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER_MODEL_NAME,
        software_versions=_software_versions(result),
        series_description=f"SinusApp report{notice}"[:64],
        series_date=when.date(),
        series_time=when.time(),
        specific_character_set="ISO_IR 192",
        **ids,
    )
    return _save(doc, out_path, "the DICOM encapsulated PDF")


def export_seg(
    result: Any,
    *,
    out_path: str | os.PathLike[str],
    source_datasets: Iterable[Dataset] | None = None,
    source_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the model's lesion mask as a binary DICOM SEG referencing the source CT.

    Parameters
    ----------
    result:
        The :class:`~sinusapp.pipeline.AnalysisResult`; ``result.mask`` is on the CT grid
        ``result.volume`` (whose affine gives the SEG's geometry, so a resampled volume —
        gantry tilt — is exported on its own regular grid, in the same frame of reference).
    out_path:
        The ``.dcm`` file to write (atomically).
    source_datasets, source_dir:
        The source CT instances (headers suffice), or a folder to find them in.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InputError
        No source instances of the analysed series were found, or the CT grid is sheared.
    OutputError
        ``out_path`` cannot be written.
    ValueError
        Neither ``source_datasets`` nor ``source_dir`` was given.
    """
    volume = result.volume
    info = volume.info
    sources = _sources(result, source_datasets, source_dir)
    mask = np.asarray(result.mask) > 0
    if mask.shape != volume.shape:
        raise ValueError(f"result.mask has shape {mask.shape}, the CT grid {volume.shape}")
    frame_of_reference = info.frame_of_reference_uid or str(sources[0].FrameOfReferenceUID)
    axes = volume.affine[:3, :3] / np.linalg.norm(volume.affine[:3, :3], axis=0)
    orthogonal = np.allclose(axes.T @ axes, np.eye(3), atol=1e-4)
    kept = set(info.sop_instance_uids)
    sources = [ds for ds in sources if not kept or str(ds.SOPInstanceUID) in kept]
    single_frame = all(int(getattr(ds, "NumberOfFrames", 1) or 1) == 1 for ds in sources)
    seg_pixels: Any
    if not volume.resampled and single_frame and len(sources) == mask.shape[0]:
        # The volume's slices are the source images themselves (sorted in volume order by
        # _sources): one mask frame per source image, so each frame takes its source image's
        # own position, exact even for a grid that is very slightly sheared. Check that.
        ipp = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in sources])
        grid = volume.index_to_lps(
            np.column_stack([np.arange(len(sources)), np.zeros((len(sources), 2))])
        )
        worst_mm = float(np.max(np.linalg.norm(ipp - grid, axis=1)))
        if worst_mm > 0.05 * min(volume.spacing_mm):
            raise InputError(
                f"the CT grid is sheared or moved relative to the source images (slice "
                f"positions differ by up to {worst_mm:.2f} mm), so the mask cannot be placed",
                hint="export from the series exactly as SinusApp loaded it",
            )
        seg_pixels = mask.astype(np.uint8)
    elif orthogonal:
        seg_pixels = hd.Volume(
            array=mask.astype(np.uint8),
            affine=np.asarray(volume.affine, float),
            coordinate_system="PATIENT",
            frame_of_reference_uid=frame_of_reference,
        )
    else:
        raise InputError(
            "the CT grid is sheared and its slices are not the source images, so the mask "
            "cannot be placed in a DICOM SEG",
            hint="export from the series as loaded by SinusApp (tilted series are resampled)",
        )
    model = result.model
    version = str(result.software_version or __version__)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=(model.name if model else "SinusApp lesion model")[:64],
        family=codes.DCM.ArtificialIntelligence,
        version=(model.version if model else version)[:64] or version,
        source=f"SinusApp {version}",
        parameters=({"weights_sha256": model.sha256} if model and model.sha256 else None),
    )
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        anatomic_regions=[codes.SCT.ParanasalSinus],
        tracking_id="CRS lesion (model)",
        tracking_uid=_derived_uid("seg-tracking", info.series_uid),
    )
    content_hash = hashlib.sha256(np.packbits(mask).tobytes()).hexdigest()
    notice = f" - {AI_NOTICE}" if _not_for_clinical_use(result) else ""
    when = _analysed_datetime(result)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=seg_pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=_derived_uid("seg", info.series_uid, version),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=_derived_uid(
            "seg", info.series_uid, version, model.sha256 if model else "", content_hash
        ),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER_MODEL_NAME,
        software_versions=_software_versions(result),  # type: ignore[arg-type]  # multi-valued
        device_serial_number=f"sinusapp-{version}",
        content_description=(AI_NOTICE if notice else "CRS lesion segmentation")[:64],
        content_label="CRS_LESION",
        content_creator_name="SinusApp^Model",
        series_description=f"SinusApp lesion{notice}"[:64],
        series_date=when.date(),
        series_time=when.time(),
        content_date=when.date(),
        content_time=when.time(),
        omit_empty_frames=bool(mask.any()),
    )
    return _save(seg, out_path, "the DICOM SEG")
