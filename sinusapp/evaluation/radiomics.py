"""A radiomics-style baseline (the paper's "traditional radiomics model", Table 2 row 2) —
**not pyradiomics**.

He et al. (2023) compare their DLR-score with a traditional radiomics model built on the
lesion segmentation (testing AUC 0.496). pyradiomics is the usual tool, but it does not
install here from the package index: 3.1.0's source archive declares version 3.0.1a1 in its
metadata, so pip refuses it ("inconsistent version"), and no wheel exists for Python 3.11;
3.0.1 builds only with ``--no-build-isolation`` (its setup imports numpy without declaring
it), which neither ``pip install -e .`` nor the PyInstaller build can rely on. This module
therefore computes a small, documented set of features with numpy and scikit-image, named as
pyradiomics names them and following its definitions, and fits an L2-penalised logistic
regression on them. Where pyradiomics is importable, the tests check every feature against it
(checked with 3.0.1 built by hand: first order to 1e-6, shape within 3 %, the meshes differ).

Features (from the CT's HU inside the lesion mask and the mask's shape, on the CT grid):

- first order (pyradiomics ``firstorder``): Mean, Median, 10Percentile, 90Percentile,
  InterquartileRange, Range, RootMeanSquared (on HU, no shift), Variance, Skewness,
  Kurtosis (non-excess, as pyradiomics), Entropy (bin width 25 HU, as pyradiomics' default,
  bins from the minimum);
- shape (``shape``): VoxelVolume (mm³; here reported in mL as ``shape_VoxelVolume_ml``),
  SurfaceArea (mm², marching cubes), Sphericity (``π^(1/3) (6V)^(2/3) / A`` on the mesh
  volume), Elongation and Flatness (square roots of the ratios of the principal-moment
  eigenvalues of the voxel coordinates: minor / major and least / major).

A case with an empty mask has volume 0 and NaN for the rest; NaNs are replaced by the
training cohort's median before standardisation. The baseline's training-cohort
probabilities are out-of-fold (stratified k-fold within the training cohort), its testing
probabilities come from the fit on the whole training cohort.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BASELINE_LABEL",
    "FEATURE_NAMES",
    "RadiomicsBaseline",
    "fit_radiomics_baseline",
    "radiomics_features",
]

log = logging.getLogger(__name__)

#: How the baseline is named in tables: it is not pyradiomics, and says so.
BASELINE_LABEL = "radiomics-style baseline (not pyradiomics)"
#: Entropy bin width in HU (pyradiomics' ``binWidth`` default).
BIN_WIDTH_HU = 25.0

FEATURE_NAMES: tuple[str, ...] = (
    "firstorder_Mean",
    "firstorder_Median",
    "firstorder_10Percentile",
    "firstorder_90Percentile",
    "firstorder_InterquartileRange",
    "firstorder_Range",
    "firstorder_RootMeanSquared",
    "firstorder_Variance",
    "firstorder_Skewness",
    "firstorder_Kurtosis",
    "firstorder_Entropy",
    "shape_VoxelVolume_ml",
    "shape_SurfaceArea",
    "shape_Sphericity",
    "shape_Elongation",
    "shape_Flatness",
)


def radiomics_features(
    hu: np.ndarray, mask: np.ndarray, *, spacing_mm: Sequence[float]
) -> dict[str, float]:
    """The :data:`FEATURE_NAMES` of one lesion (``mask`` > 0) on the CT ``hu``.

    Parameters
    ----------
    hu:
        The CT in HU, ``[slice, row, column]``.
    mask:
        The lesion mask on the same grid.
    spacing_mm:
        Voxel spacing ``(slice, row, column)`` in mm.

    Raises
    ------
    ValueError
        ``hu`` and ``mask`` differ in shape, or a spacing is not positive.
    """
    hu = np.asarray(hu)
    m = np.asarray(mask) > 0
    sp = np.asarray(spacing_mm, float)
    if hu.shape != m.shape:
        raise ValueError(f"hu {hu.shape} and mask {m.shape} must have one shape")
    if sp.shape != (3,) or not np.all(sp > 0):
        raise ValueError(f"spacing_mm must be 3 positive numbers, got {spacing_mm!r}")
    out = dict.fromkeys(FEATURE_NAMES, math.nan)
    n = int(m.sum())
    out["shape_VoxelVolume_ml"] = n * float(np.prod(sp)) / 1000.0
    if n == 0:
        return out
    x = hu[m].astype(np.float64)
    p10, p25, p50, p75, p90 = np.percentile(x, [10, 25, 50, 75, 90])
    mean = float(x.mean())
    var = float(x.var())
    out.update(
        {
            "firstorder_Mean": mean,
            "firstorder_Median": float(p50),
            "firstorder_10Percentile": float(p10),
            "firstorder_90Percentile": float(p90),
            "firstorder_InterquartileRange": float(p75 - p25),
            "firstorder_Range": float(x.max() - x.min()),
            "firstorder_RootMeanSquared": float(np.sqrt(np.mean(x**2))),
            "firstorder_Variance": var,
            "firstorder_Skewness": float(np.mean((x - mean) ** 3) / var**1.5) if var > 0 else 0.0,
            "firstorder_Kurtosis": float(np.mean((x - mean) ** 4) / var**2) if var > 0 else 0.0,
        }
    )
    # pyradiomics bins with edges at multiples of the bin width from the minimum (binWidth)
    lo = math.floor(x.min() / BIN_WIDTH_HU) * BIN_WIDTH_HU
    counts = np.bincount(((x - lo) // BIN_WIDTH_HU).astype(np.int64))
    pk = counts[counts > 0] / n
    out["firstorder_Entropy"] = float(-np.sum(pk * np.log2(pk + 2.2e-16)))
    out.update(_shape(m, sp))
    return out


def _shape(m: np.ndarray, sp: np.ndarray) -> dict[str, float]:
    from skimage.measure import marching_cubes, mesh_surface_area

    idx = np.argwhere(m).astype(np.float64) * sp
    if idx.shape[0] >= 3:
        cov = np.cov(idx, rowvar=False)
        ev = np.sort(np.clip(np.linalg.eigvalsh(cov), 0.0, None))  # least, minor, major
        major = ev[2]
        elong = float(np.sqrt(ev[1] / major)) if major > 0 else math.nan
        flat = float(np.sqrt(ev[0] / major)) if major > 0 else math.nan
    else:
        elong = flat = math.nan
    padded = np.pad(m, 1).astype(np.float32)
    try:
        verts, faces, _, _ = marching_cubes(padded, level=0.5, spacing=tuple(sp))
    except (ValueError, RuntimeError):
        return {"shape_Elongation": elong, "shape_Flatness": flat}
    area = float(mesh_surface_area(verts, faces))
    tri = verts[faces]
    mesh_volume = abs(
        float(np.sum(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2]))))
    )
    mesh_volume /= 6.0
    sphericity = (
        float(math.pi ** (1 / 3) * (6 * mesh_volume) ** (2 / 3) / area) if area > 0 else math.nan
    )
    return {
        "shape_SurfaceArea": area,
        "shape_Sphericity": sphericity,
        "shape_Elongation": elong,
        "shape_Flatness": flat,
    }


@dataclass(frozen=True, slots=True)
class RadiomicsBaseline:
    """The fitted baseline and its probabilities.

    Attributes
    ----------
    train_probability:
        ``case_id`` → out-of-fold probability (training cohort).
    train_fold:
        ``case_id`` → the fold that held the case out.
    test_probability:
        ``case_id`` → probability from the model fitted on the whole training cohort.
    coefficients:
        Feature → coefficient of the standardised feature in the final fit.
    """

    train_probability: Mapping[str, float]
    train_fold: Mapping[str, int]
    test_probability: Mapping[str, float]
    coefficients: Mapping[str, float]


def fit_radiomics_baseline(
    features: Mapping[str, Mapping[str, float]],
    *,
    outcomes: Mapping[str, tuple[str, bool]],
    folds: int = 5,
    c: float = 1.0,
    seed: int = 0,
) -> RadiomicsBaseline:
    """Fit the baseline on the training cohort's ``features`` (``case_id`` → features).

    ``outcomes``: ``case_id`` → ``(cohort, recurrence)``. L2-penalised logistic regression
    (scikit-learn, ``C = c``) on the standardised :data:`FEATURE_NAMES`, NaN → training
    median. Training probabilities are out-of-fold (stratified ``folds``-fold, fewer when a
    class is smaller).

    Raises
    ------
    ValueError
        The training cohort lacks cases or controls, or a case has no features.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    missing = [cid for cid in outcomes if cid not in features]
    if missing:
        raise ValueError(f"no radiomics features for case(s) {missing[:5]}")
    train = [cid for cid, (co, _) in outcomes.items() if co == "train"]
    test = [cid for cid, (co, _) in outcomes.items() if co == "test"]
    y = np.array([outcomes[cid][1] for cid in train], dtype=int)
    if y.sum() < 2 or (1 - y).sum() < 2:
        raise ValueError("the training cohort needs at least 2 cases and 2 controls")

    def matrix(ids: Sequence[str]) -> np.ndarray:
        return np.array([[features[cid][f] for f in FEATURE_NAMES] for cid in ids], float)

    x_train = matrix(train)
    median = np.nanmedian(np.where(np.isfinite(x_train), x_train, np.nan), axis=0)
    median = np.where(np.isfinite(median), median, 0.0)

    def impute(x: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(x), x, median)

    def model() -> object:
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    k = int(max(2, min(folds, y.sum(), (1 - y).sum())))
    oof = np.full(len(train), np.nan)
    fold_of = np.zeros(len(train), int)
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (tr, te) in enumerate(split.split(x_train, y)):
        m = model()
        m.fit(impute(x_train[tr]), y[tr])  # type: ignore[attr-defined]
        oof[te] = m.predict_proba(impute(x_train[te]))[:, 1]  # type: ignore[attr-defined]
        fold_of[te] = f
    final = model()
    final.fit(impute(x_train), y)  # type: ignore[attr-defined]
    test_p = final.predict_proba(impute(matrix(test)))[:, 1] if test else np.array([])  # type: ignore[attr-defined]
    coef = final[-1].coef_[0]  # type: ignore[index]
    log.info("radiomics-style baseline: %d-fold out-of-fold on %d training cases", k, len(train))
    return RadiomicsBaseline(
        train_probability=dict(zip(train, map(float, oof), strict=True)),
        train_fold=dict(zip(train, map(int, fold_of), strict=True)),
        test_probability=dict(zip(test, map(float, test_p), strict=True)),
        coefficients=dict(zip(FEATURE_NAMES, map(float, coef), strict=True)),
    )
