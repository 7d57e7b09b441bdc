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
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        sop = generate_uid()
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
        ds.Modality = modality
        ds.PatientName, ds.PatientID = "TEST^SERIES", "T0001"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesNumber, ds.InstanceNumber = 3, k + 1
        ds.SeriesDescription = "TEST BONE"
        ds.ImageType = image_type
        ds.ConvolutionKernel = "BONE"
        ds.ImagePositionPatient = [-10.0, -20.0 + k * tilt_shift_mm, float(z)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = list(pixel_spacing)
        ds.SliceThickness = spacing
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
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
