"""Generate small, conformant CT series on disk for the DICOM-layer tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def write_series(
    folder: Path,
    *,
    n: int = 12,
    rows: int = 32,
    cols: int = 28,
    spacing: float = 1.0,
    pixel_spacing: tuple[float, float] = (0.5, 0.6),
    positions: Sequence[float] | None = None,
    modality: str = "CT",
    tilt_shift_mm: float = 0.0,
    names: Callable[[int], str] | None = None,
    signed: bool = True,
    intercept: float = 0.0,
    seed: int = 0,
    series_uid: str | None = None,
    image_type: str = "ORIGINAL\\PRIMARY\\AXIAL",
) -> tuple[str, np.ndarray]:
    """Write an axial series; return (SeriesInstanceUID, HU array [slice,row,col] in z order)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    zs = list(positions) if positions is not None else [10.0 + k * spacing for k in range(n)]
    hu = rng.integers(-1000, 1500, size=(len(zs), rows, cols)).astype(np.int16)
    study, series, frame = generate_uid(), series_uid or generate_uid(), generate_uid()
    for k, z in enumerate(zs):
        ds = ct_slice_dataset(
            study=study,
            series=series,
            frame=frame,
            instance=k + 1,
            position=(-10.0, -20.0 + k * tilt_shift_mm, float(z)),
            rows=rows,
            cols=cols,
            description="TEST BONE",
            modality=modality,
            image_type=image_type,
            pixel_spacing=pixel_spacing,
            thickness=spacing,
        )
        ds.ConvolutionKernel = "BONE"
        ds.RescaleSlope, ds.RescaleIntercept = 1, intercept
        stored = hu[k] - int(intercept)
        if signed:
            ds.PixelRepresentation = 0 + 1
            ds.PixelData = stored.astype("<i2").tobytes()
        else:
            ds.PixelRepresentation = 0
            ds.PixelData = stored.astype("<u2").tobytes()
        name = names(k) if names else f"IM{k:04d}.dcm"
        pydicom.dcmwrite(folder / name, ds, enforce_file_format=True)
    return series, hu


def ct_slice_dataset(
    *,
    study: str,
    series: str,
    frame: str,
    instance: int,
    position: Sequence[float],
    rows: int,
    cols: int,
    patient: tuple[str, str] = ("TEST^SERIES", "T0001"),
    series_number: int = 3,
    description: str | None = None,
    modality: str = "CT",
    image_type: str = "ORIGINAL\\PRIMARY\\AXIAL",
    pixel_spacing: Sequence[float] = (0.5, 0.5),
    thickness: float = 1.0,
    bits_stored: int = 16,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """One axial CT Image Storage slice with its file meta: identity, geometry and the image
    pixel module up to ``HighBit``; the caller sets PixelRepresentation, rescale and
    PixelData (and anything odd the test is about)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    sop = generate_uid()
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
    ds.Modality = modality
    ds.PatientName, ds.PatientID = patient
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
    ds.SeriesNumber, ds.InstanceNumber = series_number, instance
    if description is not None:
        ds.SeriesDescription = description
    ds.ImageType = image_type
    ds.ImagePositionPatient = [float(x) for x in position]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = list(pixel_spacing)
    ds.SliceThickness = thickness
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    return ds


def write_volume_series(
    folder: Path,
    volume,
    *,
    keep_uids: bool = False,
    series_number: int | None = None,
    description: str | None = None,
) -> list[Path]:
    """Write a :class:`~sinusapp.imaging.Volume` as a conformant single-frame CT series with
    the volume's own geometry (orientation from its affine); return the files in slice order.

    ``keep_uids`` reuses the volume's study / series / frame-of-reference / SOP instance UIDs
    (so exports built from the volume reference these files); otherwise fresh UIDs are made.
    """
    import datetime as _dt

    folder.mkdir(parents=True, exist_ok=True)
    info = volume.info
    sp = volume.spacing_mm
    aff = volume.affine
    row_cos = aff[:3, 2] / sp[2]
    col_cos = aff[:3, 1] / sp[1]
    n = volume.shape[0]
    if keep_uids:
        study, series, frame = info.study_uid, info.series_uid, info.frame_of_reference_uid
        sops = list(info.sop_instance_uids)
    else:
        study, series, frame = info.study_uid or generate_uid(), generate_uid(), generate_uid()
        sops = [generate_uid() for _ in range(n)]
    paths = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sops[k]
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sops[k]
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.Modality = "CT"
        ds.PatientName, ds.PatientID = info.patient_name, info.patient_id
        ds.PatientBirthDate, ds.PatientSex = info.patient_birth_date, info.patient_sex
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PositionReferenceIndicator = ""
        ds.StudyDate = info.study_date or _dt.date.today().strftime("%Y%m%d")
        ds.StudyTime = info.study_time or "101500"
        ds.StudyID = "1"
        ds.AccessionNumber = info.accession_number or "ACC1"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = info.study_description or "CT paranasal sinuses"
        ds.SeriesDescription = description or info.series_description
        ds.SeriesNumber = series_number if series_number is not None else (info.series_number or 3)
        ds.InstanceNumber = k + 1
        ds.Manufacturer = info.manufacturer or "SinusApp test"
        ds.ManufacturerModelName = info.manufacturer_model
        ds.ConvolutionKernel = info.convolution_kernel
        ds.BodyPartExamined = "HEAD"
        ds.KVP = 120
        ds.SliceThickness = sp[0]
        ds.ImagePositionPatient = [round(float(v), 4) for v in volume.index_to_lps([k, 0, 0])]
        ds.ImageOrientationPatient = [round(float(v), 6) for v in (*row_cos, *col_cos)]
        ds.PixelSpacing = [sp[1], sp[2]]
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.PixelData = np.ascontiguousarray(volume.array[k]).tobytes()
        p = folder / f"im{k:04d}.dcm"
        pydicom.dcmwrite(p, ds, enforce_file_format=True)
        paths.append(p)
    return paths
