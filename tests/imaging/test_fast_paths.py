"""The lean labelling / counting paths give exactly what the plain formulations gave.

Issue 15 moved the automatic sinus labelling, the per-sinus count and the pipeline's merge
of the model's and the rule-based labels onto the sinus region's box, the cavity voxels and
``np.bincount`` (no CT-sized float64 / int64 copies, no second locate). The straightforward
versions they replaced are kept here verbatim as references (``_ref_*``) and compared, array
for array and number for number, on generated heads, the demo study and real CTs (skipped
with a message when the shared data is absent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from sinusapp.imaging import sinus_labels as sl
from sinusapp.imaging.quantify import (
    BONE_HU,
    LABEL_IDS,
    NOT_GRADED,
    SINUS_LABELS,
    lund_mackay_grade,
    nonzero_box,
    per_sinus_opacification,
)
from sinusapp.imaging.volume import Volume
from sinusapp.model.testing import make_sinus_phantom

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
DEMO_CT = REPO / "assets" / "demo" / "ct"
REAL_CTS = {
    "vhf": SHARED / "realct" / "vhf_visible_human_female_head",
    "harvard": SHARED / "realct" / "harvard02_cadaver_head_sinus_coverage",
    "nasalseg_P002": SHARED / "nasalseg" / "P002" / "ct",
}


# -- the reference implementations (as they were before issue 15) ----------------------------


def _ref_enclosed(bone: np.ndarray) -> np.ndarray:
    out = np.zeros(bone.shape, bool)
    plane = ndimage.generate_binary_structure(2, 1)
    for axis in range(3):
        st = np.zeros((3, 3, 3), bool)
        idx: list[slice | int] = [slice(None)] * 3
        idx[axis] = 1
        st[tuple(idx)] = plane
        out |= ndimage.binary_fill_holes(bone, structure=st)
    return out & ~bone


def _ref_label_sinuses(volume: Volume, *, region_center_lps: np.ndarray) -> np.ndarray | None:
    """The full-crop labelling: float32 HU, zones and offsets of every crop voxel,
    ``sum_labels``, the rim grown on the whole crop."""
    zones_of = sl._zones
    centre = np.asarray(region_center_lps, float).reshape(3).copy()
    centre += np.asarray(sl._ZONES_FROM_REGION_MM)
    corners = (
        np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
        * np.asarray(sl._CROP_HALF_MM)
        + centre
    )
    idx = volume.lps_to_index(corners)
    lo = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, None)
    hi = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + 1, volume.shape)
    if np.any(hi - lo < 3):
        return None
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    hu = np.asarray(volume.array[box], np.float32)
    k, j, i = (np.arange(s.start, s.stop, dtype=np.float32) for s in box)
    a = volume.affine.astype(np.float32)
    rel = [
        a[c, 0] * k[:, None, None]
        + a[c, 1] * j[None, :, None]
        + a[c, 2] * i[None, None, :]
        + (a[c, 3] - np.float32(centre[c]))
        for c in range(3)
    ]
    zones = zones_of(rel[0], rel[1], rel[2])
    bone = hu > sl._BONE_HU
    cavity = _ref_enclosed(bone)
    comp, n_comp = ndimage.label(cavity)
    if n_comp == 0:
        return None
    ids = np.arange(1, n_comp + 1)
    size = ndimage.sum_labels(cavity, comp, ids)
    sigma = [sl._FAT_SMOOTH_MM / s for s in volume.spacing_mm]
    hu_s = ndimage.gaussian_filter(hu, sigma=sigma, truncate=2.0)
    fat = ndimage.sum_labels((hu_s > sl._FAT_LO_HU) & (hu_s < sl._FAT_HI_HU), comp, ids)

    def kept(zones: np.ndarray) -> np.ndarray:
        in_zone = ndimage.sum_labels(zones > 0, comp, ids)
        keep = (in_zone >= sl._INSIDE_ZONES_FRACTION * size) & (fat <= sl._MAX_FAT_FRACTION * size)
        return np.asarray(keep, bool)

    keep = kept(zones)
    u, v, w = rel
    band = np.concatenate([[False], keep])[comp] & (np.abs(u) < 17) & (w > -7) & (w <= 20)
    band &= (v > -28) & (v <= 23)
    if band.sum() > 100:
        u_lo, u_hi = np.percentile(u[band], [2, 98])
        shift = float(
            np.clip(0.5 * (u_lo + u_hi), -sl._MAX_MIDLINE_SHIFT_MM, sl._MAX_MIDLINE_SHIFT_MM)
        )
        if abs(shift) > 0.25:
            rel[0] = u - np.float32(shift)
            zones = zones_of(rel[0], rel[1], rel[2])
            keep = kept(zones)
    keep_lut = np.concatenate([[False], keep])
    labels = np.where(keep_lut[comp], zones, 0).astype(np.uint8)
    for ant, post in (("ethmoid_ant_L", "ethmoid_post_L"), ("ethmoid_ant_R", "ethmoid_post_R")):
        sel = labels == LABEL_IDS[ant]
        if sel.sum() < 10:
            continue
        v_lo, v_hi = np.percentile(rel[1][sel], [2, 98])
        labels[sel & (rel[1] > v_lo + sl._ETHMOID_SPLIT * (v_hi - v_lo))] = LABEL_IDS[post]
    kept_ids = ids[keep]
    if kept_ids.size:
        n_lab = max(LABEL_IDS.values()) + 1
        flat = comp[labels > 0].astype(np.int64) * n_lab + labels[labels > 0]
        counts = np.bincount(flat, minlength=(n_comp + 1) * n_lab).reshape(n_comp + 1, n_lab)
        best = counts.argmax(axis=1)
        best_n = counts.max(axis=1)
        pure = np.zeros(n_comp + 1, bool)
        pure[1:] = keep & (best_n[1:] >= sl._PURE_FRACTION * size)
        sel = pure[comp]
        labels[sel] = best[comp[sel]].astype(np.uint8)
    rim = bone & (hu < sl._RIM_MAX_HU)
    grown = ndimage.grey_dilation(labels, footprint=ndimage.generate_binary_structure(3, 1))
    rim &= grown > 0
    labels[rim] = grown[rim]
    voxel_ml = float(volume.voxel_volume_ml)
    total_ml = float((labels > 0).sum()) * voxel_ml
    if not (sl._MIN_CAVITY_ML <= total_ml <= sl._MAX_CAVITY_ML):
        return None
    max_ml = [
        float((labels == LABEL_IDS[n]).sum()) * voxel_ml for n in ("maxillary_L", "maxillary_R")
    ]
    if max(max_ml) < sl._MIN_MAXILLARY_ML:
        return None
    out = np.zeros(volume.shape, np.uint8)
    out[box] = labels
    return out


def _ref_per_sinus(
    *, lesion_mask: np.ndarray, sinus_labels: np.ndarray, volume: Volume
) -> dict[str, dict[str, float]]:
    """The whole-grid count: an int64 copy of the labels, float64 lesion weights."""
    names = SINUS_LABELS
    voxel_ml = float(volume.voxel_volume_ml)
    labels = np.asarray(sinus_labels).astype(np.int64, copy=True)
    labels[np.asarray(volume.array) > BONE_HU] = 0
    n = max(int(labels.max(initial=0)) + 1, max(names, default=0) + 1)
    cavity_voxels = np.bincount(labels.ravel(), minlength=n)
    lesion_voxels = np.bincount(labels.ravel(), weights=(lesion_mask != 0).ravel(), minlength=n)
    out: dict[str, dict[str, float]] = {}
    for value in sorted(names):
        if value <= 0 or value >= n or cavity_voxels[value] == 0:
            continue
        name = names[value]
        pct = 100.0 * float(lesion_voxels[value]) / float(cavity_voxels[value])
        row = {
            "volume_ml": round(float(cavity_voxels[value]) * voxel_ml, 3),
            "opacified_ml": round(float(lesion_voxels[value]) * voxel_ml, 3),
            "opacification_pct": round(pct, 2),
        }
        if name not in NOT_GRADED:
            row["lund_mackay"] = float(lund_mackay_grade(pct))
        out[name] = row
    return out


def _ref_merge(volume: Volume, model_labels: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The pipeline's merge, CT-sized: the model's labels, then the upper sinuses anchored on
    them (or, when those find none, the phantom-tuned rules)."""
    from sinusapp.imaging.upper_sinuses import label_upper_sinuses

    labels = model_labels.astype(np.uint8, copy=True)
    upper = label_upper_sinuses(hu=volume.array, affine=volume.affine, model_labels=model_labels)
    if upper is not None and upper[0].any():
        rules = np.zeros(volume.shape, np.uint8)
        rules[upper[1]] = upper[0]
    else:
        rules = _ref_label_sinuses(volume, region_center_lps=centre)
    if rules is None:
        return labels
    own = [LABEL_IDS[r] for r in ("maxillary_L", "maxillary_R", "nasal_cavity")]
    take = (labels == 0) & (rules > 0) & ~np.isin(rules, own)
    labels[take] = rules[take]
    return labels


# -- fixtures -------------------------------------------------------------------------------


def _load(path: Path) -> Volume:
    from sinusapp.dicom import load_volume, scan

    if not path.exists():
        pytest.skip(f"data not found at {path} (shared data next to the repo / demo assets)")
    cts = [s for s in scan(path).series if s.modality == "CT"]
    return load_volume(path, series_uid=cts[0].series_uid)


def _centre(volume: Volume) -> np.ndarray:
    from sinusapp.model.preprocess import locate_sinus_region

    region = locate_sinus_region(volume)
    centre = np.array(region.center_lps, float)
    centre[0] = region.midline_x_mm
    return centre


@pytest.fixture(scope="module")
def demo() -> Volume:
    return _load(DEMO_CT)


def _phantom(*, tilt_deg: float = 0.0) -> Volume:
    t = np.deg2rad(tilt_deg)
    rot = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(t), -np.sin(t)], [0.0, np.sin(t), np.cos(t)]])
    vol, _ = make_sinus_phantom(
        shape=(96, 128, 128),
        spacing_mm=(1.5, 1.0, 1.0),
        severity=(0.7, 0.4),
        seed=3,
        rotation=rot if tilt_deg else None,
    )
    return vol


# -- the cavity search ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_enclosed_equals_hole_filling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bone = ndimage.binary_opening(rng.random((23, 31, 29)) < 0.55 + 0.05 * seed)
    bone[5:15, 5:20, 5:20] = True  # a walled box with a cavity and a septum inside
    bone[7:13, 7:18, 7:18] = False
    bone[7:13, 12, 7:18] = seed % 2 == 0
    fast = sl._enclosed(bone)
    assert fast.any()  # the random walls do enclose something: the test can fail
    np.testing.assert_array_equal(fast, _ref_enclosed(bone))


# -- the labelling --------------------------------------------------------------------------


def _assert_same_labels(volume: Volume, *, expect_labels: bool | None = None) -> None:
    centre = _centre(volume)
    ref = _ref_label_sinuses(volume, region_center_lps=centre)
    fast = sl.label_sinuses(volume, region_center_lps=centre)
    if expect_labels is not None:
        assert (ref is not None) == expect_labels
    assert (fast is None) == (ref is None)
    if ref is not None:
        assert fast is not None and fast.dtype == np.uint8 and fast.shape == volume.shape
        np.testing.assert_array_equal(fast, ref)
        found = sl.label_sinuses_box(volume, region_center_lps=centre)
        assert found is not None
        labels, box = found
        inside = np.zeros(ref.shape, bool)
        inside[box] = True
        assert not ref[~inside].any()
        np.testing.assert_array_equal(labels, ref[box])


@pytest.mark.parametrize("tilt_deg", [0.0, 14.0])
def test_labels_equal_reference_on_a_generated_head(tilt_deg: float) -> None:
    _assert_same_labels(_phantom(tilt_deg=tilt_deg), expect_labels=True)


def test_labels_equal_reference_on_the_demo_study(demo: Volume) -> None:
    _assert_same_labels(demo, expect_labels=True)


@pytest.mark.parametrize("name", sorted(REAL_CTS))
def test_labels_equal_reference_on_real_ct(name: str) -> None:
    _assert_same_labels(_load(REAL_CTS[name]))


def test_given_located_centre_equals_self_located(demo: Volume) -> None:
    """The pipeline passes the Predictor's located region: same labels as locating again."""
    np.testing.assert_array_equal(
        sl.label_sinuses(demo), sl.label_sinuses(demo, region_center_lps=_centre(demo))
    )


# -- the count ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64, np.uint64, float])
def test_counts_equal_reference_on_random_maps(dtype: type) -> None:
    vol = _phantom()
    rng = np.random.default_rng(7)
    labels = np.zeros(vol.shape, np.int64)
    labels[20:70, 30:100, 25:90] = rng.integers(0, 10, (50, 70, 65))
    labels[5, 5, 5] = 3  # a far-away labelled voxel widens the box to the grid's edge
    lesion = (rng.random(vol.shape) < 0.3).astype(np.uint8)
    lesion[vol.array > 500] = 1  # lesion over bone is never counted
    ref = _ref_per_sinus(lesion_mask=lesion, sinus_labels=labels, volume=vol)
    fast = per_sinus_opacification(
        lesion_mask=lesion, sinus_labels=labels.astype(dtype), volume=vol
    )
    assert len(ref) == 9 and fast == ref


def test_counts_on_a_box_equal_the_whole_grid() -> None:
    vol = _phantom()
    rng = np.random.default_rng(8)
    labels = np.zeros(vol.shape, np.uint8)
    box = (slice(10, 60), slice(40, 100), slice(30, 70))
    labels[box] = rng.integers(0, 10, (50, 60, 40))
    lesion = (rng.random(vol.shape) < 0.4).astype(bool)
    full = per_sinus_opacification(lesion_mask=lesion, sinus_labels=labels, volume=vol)
    boxed = per_sinus_opacification(
        lesion_mask=lesion, sinus_labels=labels[box], volume=vol, labels_box=box
    )
    assert full and boxed == full == _ref_per_sinus(
        lesion_mask=lesion, sinus_labels=labels, volume=vol
    )
    with pytest.raises(ValueError, match="box"):
        per_sinus_opacification(lesion_mask=lesion, sinus_labels=labels, volume=vol, labels_box=box)


def test_nonzero_box() -> None:
    a = np.zeros((7, 8, 9), np.uint8)
    assert nonzero_box(a) is None
    a[2, 3, 4] = a[5, 1, 8] = 1
    assert nonzero_box(a) == (slice(2, 6), slice(1, 4), slice(4, 9))


# -- the pipeline ---------------------------------------------------------------------------


def _bundle() -> Path:
    from sinusapp.model import bundled_model_dir

    path = bundled_model_dir()
    if not (path / "manifest.json").is_file():
        pytest.skip(f"the bundled model is not at {path}")
    return path


def test_pipeline_per_sinus_equals_reference(demo: Volume) -> None:
    """The Predictor's region reused, the merge on boxes: the per-sinus numbers are the old
    pipeline's (model labels + the rule-based ones, counted on the whole grid)."""
    from sinusapp import pipeline
    from sinusapp.model import Predictor

    volume = demo
    pred = Predictor(_bundle(), device="cpu").predict(volume)
    assert pred.sinus_region is not None
    np.testing.assert_allclose(pred.sinus_region.center_lps, pred.region_center_lps)
    per_sinus, source = pipeline._per_sinus(volume, pred.mask, pred=pred, sinus_labels=None)
    centre = _centre(volume)
    if pred.sinus_labels is not None:
        labels = _ref_merge(volume, pred.sinus_labels, centre)
    else:
        labels = _ref_label_sinuses(volume, region_center_lps=centre)
    assert labels is not None
    ref = _ref_per_sinus(lesion_mask=pred.mask, sinus_labels=labels, volume=volume)
    ref = {k: v for k, v in ref.items() if k not in NOT_GRADED}
    assert source in ("model + anchored", "model + automatic", "automatic", "model")
    assert per_sinus == ref and len(ref) >= 2


def test_pipeline_automatic_labels_equal_reference(demo: Volume) -> None:
    """A predictor without a sinus head (and without a located region): the automatic
    labelling on its box gives the old whole-grid numbers."""
    from sinusapp import pipeline
    from sinusapp.model.fake import FakePredictor

    pred = FakePredictor(locate=True).predict(demo)
    per_sinus, source = pipeline._per_sinus(demo, pred.mask, pred=pred, sinus_labels=None)
    labels = _ref_label_sinuses(demo, region_center_lps=_centre(demo))
    assert labels is not None and source == "automatic"
    ref = _ref_per_sinus(lesion_mask=pred.mask, sinus_labels=labels, volume=demo)
    assert per_sinus == {k: v for k, v in ref.items() if k not in NOT_GRADED}


# -- the sinus head's labels on the CT grid -------------------------------------------------


def test_head_labels_on_boxes_equal_full_grid_maps() -> None:
    from sinusapp.model.config import SINUS_HEAD_REGIONS
    from sinusapp.model.preprocess import make_block_affine, map_back
    from sinusapp.model.sinus_head import head_probabilities_to_labels

    vol = _phantom()
    shape = (24, 28, 32)
    rng = np.random.default_rng(4)
    logits = ndimage.gaussian_filter(rng.normal(size=(len(SINUS_HEAD_REGIONS), *shape)), 2)
    logits = 2 * logits / logits.std()
    for cls, cols in ((1, slice(22, None)), (2, slice(None, 10)), (3, slice(12, 20))):
        logits[cls, 4:20, 4:24, cols] += 3.0  # each cavity class wins somewhere
    prob = np.exp(logits)
    prob /= prob.sum(axis=0, keepdims=True)

    class _Cfg:
        spacing_mm = 2.0
        block_shape = shape

    aff = make_block_affine(_centre(vol), _Cfg())  # type: ignore[arg-type]
    ref = np.zeros(vol.shape, np.uint8)
    for cls, region in enumerate(SINUS_HEAD_REGIONS):
        if cls:
            hit = map_back(prob[cls].astype(np.float32), block_affine=aff, volume=vol)
            ref[hit > 0] = LABEL_IDS[region]
    fast = head_probabilities_to_labels(prob.astype(np.float32), block_affine=aff, volume=vol)
    assert len(np.unique(ref)) == len(SINUS_HEAD_REGIONS)  # every class is present
    np.testing.assert_array_equal(fast, ref)
