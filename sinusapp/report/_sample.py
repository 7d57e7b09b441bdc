"""A small, fully synthetic analysis result for tests, previews and documentation images.

Not a model output: a phantom head (skull, orbits, nasal cavity, maxillary / ethmoid /
sphenoid / frontal sinus air cavities) with a lesion blob, and fixed nomogram numbers, so the
report, the DICOM export and the report dialog can be exercised without the network or the
fitted nomogram.
"""

from __future__ import annotations

import numpy as np

from sinusapp.findings import Finding, Severity
from sinusapp.imaging.volume import SeriesInfo, Volume, affine_from_geometry
from sinusapp.nomogram import DEFAULT_FACTORS, Nomogram, TrainingSummary
from sinusapp.pipeline import AnalysisResult, ModelInfo

__all__ = ["sample_nomogram", "sample_result", "sample_volume"]

STUDY_UID = "1.2.826.0.1.3680043.8.498.1000001"
SERIES_UID = "1.2.826.0.1.3680043.8.498.1000002"
FOR_UID = "1.2.826.0.1.3680043.8.498.1000003"


def sample_volume(shape: tuple[int, int, int] = (40, 128, 128)) -> tuple[Volume, np.ndarray]:
    """A phantom axial head CT and a lesion mask (in the left maxillary and ethmoid sinuses).

    Slice 0 is the most inferior; rows run anterior → posterior, columns right → left
    (the usual axial ``ImageOrientationPatient`` ``1\\0\\0\\0\\1\\0``).
    """
    n_s, n_r, n_c = shape
    spacing = (2.5, 1.6, 1.6)
    k, j, i = np.meshgrid(
        np.arange(n_s, dtype=np.float32),
        np.arange(n_r, dtype=np.float32),
        np.arange(n_c, dtype=np.float32),
        indexing="ij",
    )
    # physical coordinates (mm) centred in the volume
    z = (k - (n_s - 1) / 2) * spacing[0]
    y = (j - (n_r - 1) / 2) * spacing[1]
    x = (i - (n_c - 1) / 2) * spacing[2]
    hu = np.full(shape, -1000.0, dtype=np.float32)
    head = (x / 80) ** 2 + (y / 95) ** 2 + (z / 70) ** 2 <= 1
    inner = (x / 74) ** 2 + (y / 89) ** 2 + (z / 64) ** 2 <= 1
    hu[head] = 1200.0  # bone shell
    hu[inner] = 35.0  # soft tissue
    rng = np.random.default_rng(0)

    def ellipsoid(cx: float, cy: float, cz: float, rx: float, ry: float, rz: float) -> np.ndarray:
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1

    cavities = [
        ellipsoid(-24, -30, -12, 15, 17, 17),  # maxillary, right (patient's right = −x)
        ellipsoid(24, -30, -12, 15, 17, 17),  # maxillary, left
        ellipsoid(0, -40, -5, 6, 22, 26),  # nasal cavity
        ellipsoid(-9, -12, 8, 6, 14, 9),  # ethmoid right
        ellipsoid(9, -12, 8, 6, 14, 9),  # ethmoid left
        ellipsoid(0, 12, 5, 11, 9, 9),  # sphenoid
        ellipsoid(0, -55, 35, 16, 7, 10),  # frontal
    ]
    for cav in cavities:
        hu[cav] = -1000.0
    # thin bony septum
    septum = (np.abs(x) < 1.2) & ellipsoid(0, -40, -5, 6, 22, 26)
    hu[septum] = 700.0
    # orbits (fat)
    for sx in (-32, 32):
        hu[ellipsoid(sx, -45, 20, 16, 20, 14)] = -90.0
    # lesion: polypoid mucosal disease filling the lower left maxillary sinus + left ethmoid
    lesion = (cavities[1] & (z < -8)) | (cavities[4] & (y < -6))
    hu[lesion] = 25.0
    hu += rng.normal(0, 12, size=shape).astype(np.float32)
    array = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    affine = affine_from_geometry(
        origin_lps=np.array(
            [-(n_c - 1) / 2 * spacing[2], -(n_r - 1) / 2 * spacing[1], -(n_s - 1) / 2 * spacing[0]]
        ),
        row_cosines=np.array([1.0, 0.0, 0.0]),
        column_cosines=np.array([0.0, 1.0, 0.0]),
        slice_direction=np.array([0.0, 0.0, 1.0]),
        spacing_mm=spacing,
    )
    info = SeriesInfo(
        series_uid=SERIES_UID,
        study_uid=STUDY_UID,
        frame_of_reference_uid=FOR_UID,
        sop_instance_uids=tuple(f"{SERIES_UID}.{s + 1}" for s in range(n_s)),
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        modality="CT",
        series_description="Sinus 1.0 bone (synthetic)",
        series_number=3,
        study_description="CT paranasal sinuses",
        study_date="20261120",
        study_time="101500",
        accession_number="ACC-000123",
        patient_name="Phantom^Alice",
        patient_id="SYN-0001",
        patient_birth_date="19800214",
        patient_sex="F",
        manufacturer="SinusApp Synth",
        manufacturer_model="Phantom CT",
        convolution_kernel="BONE",
        slice_thickness_mm=2.5,
        body_part="SINUS",
        kvp=120.0,
    )
    volume = Volume(array=array, affine=affine, info=info)
    return volume, lesion.astype(np.uint8)


def sample_nomogram() -> Nomogram:
    """A plausible stand-in nomogram (paper's four factors; made-up coefficients)."""
    axes = {"eosinophils_per_ul": (0.0, 2000.0), "dlr_score": (0.0, 1.0)}
    factors = tuple(
        f.with_axis_range(axes[f.name]) if f.name in axes else f for f in DEFAULT_FACTORS
    )
    names = [f.name for f in factors]
    cov = np.diag([0.30, 0.55, 0.20, 0.15, 4.0e-7])
    return Nomogram(
        factors=factors,
        intercept=-3.4,
        coefficients=dict(zip(names, (3.1, 1.45, 0.65, 0.0016), strict=True)),
        covariance=cov,
        cutoff=0.38,
        training_ranges={
            "dlr_score": (0.02, 0.97),
            "asthma": (0.0, 1.0),
            "allergic_rhinitis": (0.0, 1.0),
            "eosinophils_per_ul": (10.0, 1900.0),
        },
        training=TrainingSummary(
            n=200,
            events=85,
            auc=0.84,
            auc_ci95=(0.78, 0.89),
            description="synthetic cohort, centre A",
        ),
        title="Nomogram",
        created_utc="2026-11-27T08:00:00+00:00",
    )


def sample_result(
    shape: tuple[int, int, int] = (40, 128, 128), *, nomogram: Nomogram | None = None
) -> AnalysisResult:
    """A complete :class:`AnalysisResult` on :func:`sample_volume`, scored by ``nomogram``
    (default :func:`sample_nomogram`), so the numbers agree with the nomogram's layout."""
    volume, mask = sample_volume(shape)
    nomo = nomogram if nomogram is not None else sample_nomogram()
    clinical = {
        "asthma": True,
        "allergic_rhinitis": False,
        "eosinophils_per_ul": 420.0,
        "age": 47,
        "sex": "female",
    }
    dlr = 0.612
    pred = nomo.predict(
        dlr_score=dlr, **{k: clinical[k] for k in nomo.factor_names if k != "dlr_score"}
    )
    lesion_ml = float(mask.sum() * volume.voxel_volume_ml)
    return AnalysisResult(
        volume=volume,
        clinical_inputs=clinical,
        dlr_score=dlr,
        probability=pred.probability,
        probability_ci95=pred.ci95,
        risk_group=pred.risk_group,
        cutoff=nomo.cutoff,
        points=dict(pred.points),
        total_points=pred.total_points,
        lesion_volume_ml=lesion_ml,
        mask=mask,
        per_sinus={
            "maxillary_right": {"volume_ml": 17.9, "opacified_ml": 0.0, "opacification_pct": 0.0},
            "maxillary_left": {"volume_ml": 17.9, "opacified_ml": 8.6, "opacification_pct": 48.0},
            "ethmoid_right": {"volume_ml": 3.2, "opacified_ml": 0.1, "opacification_pct": 3.0},
            "ethmoid_left": {"volume_ml": 3.2, "opacified_ml": 3.1, "opacification_pct": 97.0},
            "frontal": {"volume_ml": 4.7, "opacified_ml": 0.0, "opacification_pct": 0.0},
            "sphenoid": {"volume_ml": 3.7, "opacified_ml": 0.0, "opacification_pct": 0.0},
        },
        model=ModelInfo(
            name="sinusapp-unet3d-synthetic",
            version="1.0.0",
            sha256="3f5a9c0d1e2b4a6f8c7d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
            trained_on_synthetic=True,
        ),
        nomogram_version="he2023-synthetic-1",
        warnings=(
            Finding(
                "coverage_superior",
                Severity.WARNING,
                "The frontal sinuses may be cut off at the top of the scan (5 mm margin).",
                5.0,
                "mm",
            ),
        ),
        analysed_at="2026-11-27T09:30:00+01:00",
        software_version="0.1.0",
    )
