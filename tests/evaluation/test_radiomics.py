"""The radiomics-style baseline (not pyradiomics): features on shapes of known size, the
features shared with pyradiomics against pyradiomics itself where it is importable, and the
logistic baseline's out-of-fold / test probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sinusapp.evaluation.radiomics import (
    FEATURE_NAMES,
    fit_radiomics_baseline,
    radiomics_features,
)

SPACING = (1.0, 0.8, 0.6)


def _ellipsoid(shape, radii_mm, spacing=SPACING) -> np.ndarray:
    z, y, x = (np.arange(n) - (n - 1) / 2 for n in shape)
    zz, yy, xx = np.meshgrid(z * spacing[0], y * spacing[1], x * spacing[2], indexing="ij")
    return ((zz / radii_mm[0]) ** 2 + (yy / radii_mm[1]) ** 2 + (xx / radii_mm[2]) ** 2) <= 1


def test_first_order_features_of_known_values() -> None:
    mask = _ellipsoid((30, 40, 50), (10, 10, 10))
    hu = np.full(mask.shape, 40.0)
    f = radiomics_features(hu, mask, spacing_mm=SPACING)
    assert f["firstorder_Mean"] == 40.0 and f["firstorder_Variance"] == 0.0
    assert f["firstorder_Entropy"] == pytest.approx(0.0, abs=1e-9)  # one bin
    # two equal halves 25 HU apart: two bins, entropy 1 bit
    hu[:, :, :25] = 65.0
    f = radiomics_features(hu, mask, spacing_mm=SPACING)
    assert f["firstorder_Entropy"] == pytest.approx(1.0, abs=0.02)
    assert f["firstorder_Range"] == 25.0 and f["firstorder_Skewness"] == pytest.approx(0, abs=0.1)


def test_shape_features_of_a_sphere_and_an_ellipsoid() -> None:
    sphere = _ellipsoid((40, 50, 60), (12, 12, 12))
    f = radiomics_features(np.zeros(sphere.shape), sphere, spacing_mm=SPACING)
    true_ml = 4 / 3 * math.pi * 12**3 / 1000
    assert f["shape_VoxelVolume_ml"] == pytest.approx(true_ml, rel=0.03)
    # a mesh of voxel faces overestimates a smooth surface by ~10 % (pyradiomics alike)
    assert f["shape_SurfaceArea"] == pytest.approx(1.1 * 4 * math.pi * 12**2, rel=0.05)
    assert 0.85 < f["shape_Sphericity"] <= 1.0
    assert f["shape_Elongation"] == pytest.approx(1.0, abs=0.03)
    cigar = _ellipsoid((40, 60, 80), (6, 12, 20))  # z 6, y 12, x 20 mm
    g = radiomics_features(np.zeros(cigar.shape), cigar, spacing_mm=SPACING)
    assert g["shape_Elongation"] == pytest.approx(12 / 20, abs=0.03)
    assert g["shape_Flatness"] == pytest.approx(6 / 20, abs=0.03)
    assert g["shape_Sphericity"] < f["shape_Sphericity"]


def test_an_empty_mask_has_volume_zero_and_nan_features() -> None:
    f = radiomics_features(np.zeros((5, 5, 5)), np.zeros((5, 5, 5)), spacing_mm=(1, 1, 1))
    assert f["shape_VoxelVolume_ml"] == 0.0
    assert all(math.isnan(f[k]) for k in FEATURE_NAMES if k != "shape_VoxelVolume_ml")
    with pytest.raises(ValueError, match="one shape"):
        radiomics_features(np.zeros((5, 5, 5)), np.zeros((5, 5, 4)), spacing_mm=(1, 1, 1))


def test_the_shared_features_agree_with_pyradiomics() -> None:
    featureextractor = pytest.importorskip(
        "radiomics.featureextractor",
        reason="pyradiomics is not installed (3.1.0 does not install from the package index; "
        "see sinusapp/evaluation/radiomics.py)",
    )
    import SimpleITK

    rng = np.random.default_rng(0)
    mask = _ellipsoid((30, 40, 50), (9, 12, 14)).astype(np.uint8)
    hu = rng.normal(30, 40, mask.shape).round()
    ours = radiomics_features(hu, mask, spacing_mm=SPACING)
    img, msk = SimpleITK.GetImageFromArray(hu.astype(np.float32)), SimpleITK.GetImageFromArray(mask)
    for im in (img, msk):
        im.SetSpacing(SPACING[::-1])  # SimpleITK: (x, y, z)
    ex = featureextractor.RadiomicsFeatureExtractor()
    ex.disableAllFeatures()
    ex.enableFeatureClassByName("firstorder")
    ex.enableFeatureClassByName("shape")
    theirs = ex.execute(img, msk)
    for name in FEATURE_NAMES:
        key = "original_" + name.replace("_ml", "")
        expected = float(theirs[key]) / (1000.0 if name.endswith("_ml") else 1.0)
        rel = 0.03 if name.startswith("shape_") else 1e-6
        assert ours[name] == pytest.approx(expected, rel=rel, abs=1e-6), name


def test_the_baseline_gives_out_of_fold_and_test_probabilities() -> None:
    rng = np.random.default_rng(3)
    features, outcomes = {}, {}
    for i in range(60):
        y = bool(i % 2)
        cid = f"c{i}"
        f = dict.fromkeys(FEATURE_NAMES, 0.0)
        f.update({k: float(rng.normal()) for k in FEATURE_NAMES})
        f["shape_VoxelVolume_ml"] = float(rng.normal(10 + 6 * y, 3))  # the signal
        if i == 5:
            f["firstorder_Skewness"] = math.nan  # imputed, not fatal
        features[cid] = f
        outcomes[cid] = ("train" if i < 40 else "test", y)
    b = fit_radiomics_baseline(features, outcomes=outcomes)
    assert set(b.train_probability) == {f"c{i}" for i in range(40)}
    assert set(b.test_probability) == {f"c{i}" for i in range(40, 60)}
    assert set(b.train_fold.values()) == set(range(5))
    from sinusapp.stats.roc import auc_ci

    ids = sorted(b.test_probability)
    auc = auc_ci(
        np.array([outcomes[c][1] for c in ids]), np.array([b.test_probability[c] for c in ids])
    ).auc
    assert auc > 0.8
    assert max(b.coefficients, key=lambda k: abs(b.coefficients[k])) == "shape_VoxelVolume_ml"
    with pytest.raises(ValueError, match="2 cases and 2 controls"):
        fit_radiomics_baseline(
            features, outcomes={c: ("train", False) for c in list(features)[:10]}
        )


def test_evaluate_adds_the_baseline_to_the_comparison(tmp_path, monkeypatch) -> None:
    """``evaluate --radiomics-baseline``: features of each case's reference mask, written to
    radiomics_features.csv, the baseline labelled as not pyradiomics."""
    from types import SimpleNamespace

    from sinusapp.cli.evaluate import _radiomics_scores
    from sinusapp.evaluation.radiomics import BASELINE_LABEL
    from sinusapp.imaging.volume import Volume

    def fake_load(case):
        k = int(case.case_id[1:])
        mask = _ellipsoid((20, 24, 24), (6 + k % 3, 8, 8), spacing=(1, 1, 1)).astype(np.uint8)
        hu = np.where(mask > 0, 30 + 10 * (k % 2), -1000).astype(np.int16)
        return Volume(array=hu, affine=np.eye(4)), mask, None

    monkeypatch.setattr("sinusapp.dataset.load_case", fake_load)
    records = [
        {"case_id": f"c{i}", "cohort": "train" if i < 12 else "test", "recurrence": i % 2}
        for i in range(16)
    ]
    dataset = SimpleNamespace(cases=[SimpleNamespace(case_id=r["case_id"]) for r in records])
    scores = _radiomics_scores(records, dataset=dataset, out=tmp_path)
    assert scores.label == BASELINE_LABEL and "not pyradiomics" in scores.label
    assert set(scores.dlr_score) == {r["case_id"] for r in records}
    assert set(scores.folds) == {f"c{i}" for i in range(12)}  # training: out-of-fold
    lines = (tmp_path / "radiomics_features.csv").read_text().splitlines()
    assert len(lines) == 17 and lines[0].startswith("case_id,firstorder_Mean")
