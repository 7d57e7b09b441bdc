"""A tiny synthetic sinus-like CT for UI tests and benchmarks (no disk, no Qt)."""

from __future__ import annotations

import numpy as np

from sinusapp.imaging.volume import SeriesInfo, Volume, affine_from_geometry


def phantom_volume(
    *, shape: tuple[int, int, int] = (40, 96, 96), spacing_mm=(1.25, 0.5, 0.5)
) -> tuple[Volume, np.ndarray, np.ndarray]:
    """Axial LPS phantom: head ellipsoid, skull, two maxillary sinuses (air) with mucosa.

    Returns ``(volume, lesion_mask, reference_mask)``. The left sinus (patient's left,
    +x, screen right in coronal) is fuller than the right one, so orientation is testable.
    """
    nz, ny, nx = shape
    k, j, i = np.meshgrid(
        np.linspace(-1, 1, nz), np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij"
    )
    r = np.sqrt((i / 0.9) ** 2 + (j / 0.95) ** 2 + (k / 1.2) ** 2)
    hu = np.full(shape, -1000, np.int16)
    hu[r < 1.0] = 1200  # skull
    hu[r < 0.9] = 40  # soft tissue
    lesion = np.zeros(shape, np.uint8)
    for side in (-1, 1):
        rs = np.sqrt(((i - side * 0.35) / 0.25) ** 2 + ((j + 0.2) / 0.3) ** 2 + (k / 0.5) ** 2)
        cavity = rs < 1.0
        hu[cavity] = -1000
        # mucosal thickening: more on the patient's left (+x = +i = larger column index)
        thick = 0.55 if side > 0 else 0.8
        disease = cavity & (rs > thick)
        hu[disease] = 35
        lesion[disease] = 1
    # air in the nasal cavity
    hu[(np.abs(i) < 0.06) & (np.abs(j + 0.3) < 0.3) & (np.abs(k) < 0.6)] = -1000
    reference = lesion.copy()
    reference[:, :, : nx // 2 + 2] = np.roll(reference, 1, axis=1)[:, :, : nx // 2 + 2]
    affine = affine_from_geometry(
        origin_lps=np.array(
            [-nx * spacing_mm[2] / 2, -ny * spacing_mm[1] / 2, -nz * spacing_mm[0] / 2]
        ),
        row_cosines=np.array([1.0, 0.0, 0.0]),
        column_cosines=np.array([0.0, 1.0, 0.0]),
        slice_direction=np.array([0.0, 0.0, 1.0]),
        spacing_mm=spacing_mm,
    )
    info = SeriesInfo(
        series_uid="1.2.3.4.5",
        study_uid="1.2.3.4",
        patient_name="DEMO^Patient",
        patient_id="SYN-0001",
        patient_birth_date="19800101",
        patient_sex="F",
        study_date="20260115",
        series_description="Sinus 1.0 H70 bone",
        series_number=3,
        convolution_kernel="H70s",
        slice_thickness_mm=spacing_mm[0],
    )
    return Volume(array=hu, affine=affine, info=info), lesion, reference
