"""Real-anatomy cohort (sinusapp.synth.realanat): NasalSeg backgrounds with placed disease."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sinusapp.synth import realanat
from sinusapp.synth.realanat import (
    MAX_L,
    MAX_R,
    NASAL,
    Background,
    augment_background,
    excluded_patients,
    grow_to_walls,
    load_background,
    load_split,
    mirror_background,
    place_disease,
    render_real_case,
)

NASALSEG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nasalseg"


def require(path: Path) -> Path:
    """Skip (with the reason) when the shared NasalSeg data is absent."""
    if not path.is_dir():
        pytest.skip(f"NasalSeg data not found at {path} (expected ../shared/data/nasalseg)")
    return path


@pytest.fixture(scope="module")
def root() -> Path:
    return require(NASALSEG)


@pytest.fixture(scope="module")
def bg(root: Path) -> Background:
    return load_background(root=root, patient="P002")


def _centroid_x(labels: np.ndarray, value: int, affine: np.ndarray) -> float:
    idx = np.argwhere(labels == value).mean(0)
    return float(affine[0, :3] @ idx + affine[0, 3])


def test_split_disjoint_complete() -> None:
    split = load_split()
    excluded = excluded_patients()
    # the split file assigns each of the 90 ids to exactly one split, excluded ones included
    # (exclusion never moves a patient: the split was fixed before anything was fitted)
    doc = realanat._split_doc()  # the package's split file as it is
    assigned = [p for s in ("train", "val", "test") for p in doc[s]]
    assert len(assigned) == len(set(assigned)) == 90
    assert set(excluded) <= set(assigned)
    assert set(split) == set(assigned) - set(excluded)
    assert all(p in doc[split[p]] for p in split)
    assert all(reason for reason in excluded.values())
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "val", "test")}
    # labels: P037 P053 P089 (train), P056 P083 P096 (test); the same image as another id:
    # P084 (train, = P083), P031 P061 P062 (val, = train P030 / P060), P079 (test, = P078)
    n_out = {"train": 4, "val": 3, "test": 4}
    assert counts == {s: n - n_out[s] for s, n in (("train", 60), ("val", 15), ("test", 15))}
    if NASALSEG.exists():
        present = {p.name for p in NASALSEG.iterdir() if p.name.startswith("P")}
        assert set(split) | set(excluded) == present


def test_no_image_is_in_two_splits() -> None:
    """NasalSeg repeats scans under new ids (79 distinct images in 90): a validation or test
    patient whose CT is a training patient's image would measure memorised anatomy."""
    from sinusapp.synth.realanat import recorded_duplicates

    split, excluded = load_split(), excluded_patients()
    assert len(recorded_duplicates()) == 9  # found in NasalSeg by the pixel-data digest
    for group in recorded_duplicates():
        used = {split[p] for p in group if p in split}
        assert len(used) <= 1, (group, {p: split.get(p, "excluded") for p in group})
        assert all(p in split or p in excluded for p in group)


@pytest.mark.skipif(not NASALSEG.exists(), reason=f"NasalSeg not found at {NASALSEG}")
def test_recorded_duplicates_are_the_identical_images() -> None:
    from sinusapp.synth.realanat import duplicate_images, recorded_duplicates

    assert duplicate_images(NASALSEG) == sorted(sorted(g) for g in recorded_duplicates())


def test_pixel_digest_ignores_the_header_and_sees_one_changed_pixel(tmp_path: Path) -> None:
    import shutil

    import pydicom

    from sinusapp.synth.realanat import pixel_digest
    from tests._dicomgen import write_series

    a = tmp_path / "a"
    write_series(a, n=3, rows=8, cols=8, names=lambda k: f"IM{k:04d}.dcm")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    for f in sorted(b.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient = [v + 15.0 for v in ds.ImagePositionPatient]
        ds.PatientID = "other"
        ds.save_as(f)
    assert pixel_digest(a) == pixel_digest(b)  # another origin and id: the same image
    f = sorted(b.glob("*.dcm"))[1]
    ds = pydicom.dcmread(f)
    arr = ds.pixel_array.copy()
    arr[0, 0] += 1
    ds.PixelData = arr.tobytes()
    ds.save_as(f)
    assert pixel_digest(a) != pixel_digest(b)
    with pytest.raises(FileNotFoundError, match=r"no \.dcm"):
        pixel_digest(tmp_path / "empty")


def test_background_labels_and_sides(bg: Background) -> None:
    assert set(np.unique(bg.labels)) == {0, MAX_L, MAX_R, NASAL, 15}
    # LPS: +x is patient left, so the left maxillary lies at larger x
    assert _centroid_x(bg.labels, MAX_L, bg.affine) > _centroid_x(bg.labels, MAX_R, bg.affine)
    assert bg.hu.shape == bg.labels.shape
    assert np.median(bg.hu[bg.labels == MAX_L]) < -800  # labels cover the air space


def test_mirror_swaps_sides_keeps_geometry(bg: Background) -> None:
    m = mirror_background(bg)
    np.testing.assert_array_equal(m.affine, bg.affine)
    np.testing.assert_array_equal(m.hu, bg.hu[:, :, ::-1])
    np.testing.assert_array_equal(m.labels == MAX_L, (bg.labels == MAX_R)[:, :, ::-1])
    assert _centroid_x(m.labels, MAX_L, m.affine) > _centroid_x(m.labels, MAX_R, m.affine)


def test_mirror_swaps_the_ethmoid_sides_of_a_whole_head_background() -> None:
    # whole-head backgrounds (benchmarks/make_head_disease.py) carry the upper sinuses too
    lab = np.zeros((2, 3, 8), np.uint8)
    lab[0, 0, :4] = [3, 5, 7, 8]  # ethmoid ant L, post L, frontal, sphenoid on the right half
    lab[1, 1, 5:] = [4, 6, 9]
    axial = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    bg = Background(patient="x", hu=np.zeros(lab.shape, np.float32), labels=lab, affine=axial)
    m = mirror_background(bg).labels
    assert m[0, 0, 4:].tolist() == [8, 7, 6, 4]  # sides swap, midline regions keep their value
    assert m[1, 1, :3].tolist() == [9, 5, 3]


def test_air_fluid_level_horizontal_and_posterior(bg: Background) -> None:
    rng = np.random.default_rng(5)
    hu, lab, aff, _ = augment_background(bg, rng=rng)
    lab = grow_to_walls(lab, hu)
    lab[lab == 15] = 0
    plan = {
        MAX_L: {
            "region": "maxillary_L",
            "pattern": "air_fluid",
            "opacification": 0.5,
            "polyps": 0,
            "hyperdense_foci": False,
        },
    }
    out, lesion, info = place_disease(
        hu=hu, labels=lab, affine=aff, plan=plan, lesion_hu=35.0, rng=rng
    )
    level = info["maxillary_L"]["fluid_level_lps_y_mm"]
    idx = np.indices(lab.shape)
    y = sum(aff[1, a] * idx[a] for a in range(3)) + aff[1, 3]
    cav = lab == MAX_L
    sp = float(np.linalg.norm(aff[:3, 1]))
    below = cav & (y > level + sp)  # dependent (posterior) side: all fluid
    assert below.any() and lesion[below].all()
    assert not (lesion.astype(bool) & (lab == 0)).any()
    fluid_hu = out[below & (y > level + 3)]
    assert -20 < float(np.median(fluid_hu)) < 50
    # anterior of the level only the wall mucosa: the cavity's centre above the level is air
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(cav, sampling=np.linalg.norm(aff[:3, :3], axis=0))
    above = cav & (y < level - sp) & (dist > 6.0)
    assert above.any() and not lesion[above].any()
    assert float(np.median(out[above])) < -700


def test_render_lesion_inside_labels_hu_and_determinism(root: Path) -> None:
    from sinusapp.synth.cohort import sample_cohort

    spec = next(
        c
        for c in sample_cohort(n_cases=30, seed=2, center="A")
        if c.disease.get("maxillary_L").pattern == "mucosal"
    )
    bg = load_background(root=root, patient="P005")
    a = render_real_case(case=spec, background=bg, healthy=False)
    b = render_real_case(case=spec, background=bg, healthy=False)
    np.testing.assert_array_equal(a.hu, b.hu)
    np.testing.assert_array_equal(a.lesion, b.lesion)
    assert set(np.unique(a.labels)) <= {0, MAX_L, MAX_R, NASAL}
    assert a.lesion.any()
    from scipy import ndimage

    # NasalSeg's labels are written; the disease lies in them and the one-voxel wall rim
    assert not (a.lesion.astype(bool) & ~ndimage.binary_dilation(a.labels > 0)).any()
    assert (a.lesion.astype(bool) & (a.labels > 0)).sum() > 0.8 * a.lesion.sum()
    core = a.lesion.astype(bool)

    core = ndimage.binary_erosion(core, iterations=2)
    if core.sum() > 200:
        vals = a.hu[core].astype(float)
        assert 0 < np.median(vals) < 80
        assert 2 < vals.std() < 60
    h = render_real_case(case=spec, background=bg, healthy=True)
    assert not h.lesion.any()


def test_written_case_reads_back(root: Path, tmp_path: Path) -> None:
    from sinusapp.dataset import Dataset, load_case
    from sinusapp.synth.realanat_write import write_real_cohort

    out = tmp_path / "ds"
    summary = write_real_cohort(root=root, out_dir=out, n_cases=3, seed=4)
    assert summary["background_split_counts"] == {"train": 1, "val": 1, "test": 1}
    ds = Dataset.open(out)
    assert {c.clinical["background_split"] for c in ds.cases} == {"train", "val", "test"}
    for c in ds.cases:
        assert (c.cohort == "test") == (c.clinical["background_split"] == "test")
    case = ds.cases[0]
    vol, lesion, labels = load_case(case)
    meta = json.loads((case.folder / "case.json").read_text())
    assert labels is not None and labels.shape == vol.shape == lesion.shape
    assert set(np.unique(labels)) <= {0, 1, 2, 9}
    from scipy import ndimage

    assert not (lesion.astype(bool) & ~ndimage.binary_dilation(labels > 0)).any()
    ml = float(lesion.sum()) * vol.voxel_volume_ml
    assert ml == pytest.approx(meta["lesion_volume_ml"], rel=1e-3, abs=1e-3)
    if lesion.any():
        assert float(np.median(vol.array[lesion > 0])) > -300  # lesion voxels are soft tissue
    assert float(np.median(vol.array[(labels > 0) & (lesion == 0)])) < -500  # the rest is air
    where = np.argwhere(labels > 0)
    centre = vol.index_to_lps(((where.min(0) + where.max(0)) / 2.0)[None])[0]
    np.testing.assert_allclose(centre, meta["sinus_centre_lps_mm"], atol=0.05)
    assert meta["background"] == case.clinical["background"]
