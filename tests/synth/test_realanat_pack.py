"""The NasalSeg pack (for the GPU machine): a packed background is the crop, resampled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sinusapp.synth.realanat import load_background
from sinusapp.synth.realanat_pack import PACK_MANIFEST, write_background_pack

NASALSEG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nasalseg"

needs_nasalseg = pytest.mark.skipif(not NASALSEG.is_dir(), reason="needs ../shared/data/nasalseg")


def _centroid_lps(labels: np.ndarray, affine: np.ndarray, value: int) -> np.ndarray:
    idx = np.argwhere(labels == value).astype(float)
    return idx.mean(0) @ affine[:3, :3].T + affine[:3, 3]


@needs_nasalseg
def test_a_packed_background_is_the_crop_on_a_coarser_grid(tmp_path: Path) -> None:
    manifest = write_background_pack(
        root=NASALSEG, out=tmp_path / "pack", spacing_mm=1.25, patients=["P002"]
    )
    assert json.loads((tmp_path / "pack" / PACK_MANIFEST).read_text()) == manifest
    assert manifest["patients"] == ["P002"] and 0 < manifest["bytes"] < 1_000_000
    orig = load_background(root=NASALSEG, patient="P002")
    packed = load_background(root=tmp_path / "pack", patient="P002")
    assert np.allclose(np.sqrt((packed.affine[:3, :3] ** 2).sum(0)), 1.25, atol=0.02)
    vox = lambda b: abs(np.linalg.det(b.affine[:3, :3])) / 1000.0  # noqa: E731
    for value in np.unique(orig.labels[orig.labels > 0]):
        ml_o = float((orig.labels == value).sum()) * vox(orig)
        ml_p = float((packed.labels == value).sum()) * vox(packed)
        assert ml_p == pytest.approx(ml_o, rel=0.06), value
        # the same place in the patient (LPS), within a fraction of a voxel
        shift = _centroid_lps(packed.labels, packed.affine, value) - _centroid_lps(
            orig.labels, orig.affine, value
        )
        assert np.abs(shift).max() < 0.5, (value, shift)
    # the HU of the cavity air and of the whole crop survive the resampling
    assert np.median(packed.hu[packed.labels == 1]) == pytest.approx(
        np.median(orig.hu[orig.labels == 1]), abs=40
    )
    assert packed.hu.mean() == pytest.approx(orig.hu.mean(), abs=15)
    with pytest.raises(ValueError, match="spacing_mm"):
        write_background_pack(root=NASALSEG, out=tmp_path / "x", spacing_mm=0, patients=["P002"])


def test_a_pack_folder_counts_as_the_nasalseg_folder_for_the_cohort_plan(tmp_path: Path) -> None:
    """plan_real_cohort finds the patients of a pack (entries only; it reads nothing)."""
    from sinusapp.synth.realanat import load_split
    from sinusapp.synth.realanat_pack import PACK_SUFFIX
    from sinusapp.synth.realanat_write import plan_real_cohort

    split = load_split()
    for patient in split:
        (tmp_path / f"{patient}{PACK_SUFFIX}").write_bytes(b"")
    jobs = plan_real_cohort(root=tmp_path, n_cases=20, seed=3)
    assert len(jobs) == 20 and {j.background for j in jobs} <= set(split)
    (tmp_path / f"{sorted(split)[0]}{PACK_SUFFIX}").unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        plan_real_cohort(root=tmp_path, n_cases=20, seed=3)


def test_any_background_round_trips_through_a_pack_entry(tmp_path: Path) -> None:
    """A head crop's labels (cells 3-8, the unlabelled marker 200) survive; HU in steps."""
    from sinusapp.synth.realanat import Background
    from sinusapp.synth.realanat_pack import read_pack_entry, write_pack_entry

    rng = np.random.default_rng(0)
    labels = np.zeros((20, 24, 28), np.uint8)
    labels[4:12, 4:12, 4:12] = 3
    labels[12:18, 10:20, 10:24] = 200
    affine = np.array([[0, 0, 0.5, -10], [0, 0.5, 0, 20], [1.0, 0, 0, -30], [0, 0, 0, 1]])
    bg = Background(
        patient="head",
        hu=rng.normal(0, 30, labels.shape).astype(np.float32) - 900 * (labels == 3),
        labels=labels,
        affine=affine,
    )
    size = write_pack_entry(bg, path=tmp_path / "head.npz.xz", spacing_mm=1.0, hu_step=4)
    back = read_pack_entry(tmp_path / "head.npz.xz", patient="head")
    assert size == (tmp_path / "head.npz.xz").stat().st_size and back.patient == "head"
    assert set(np.unique(back.labels)) == {0, 3, 200}
    assert np.all(back.hu % 4 == 0) and back.hu.shape == (20, 12, 14)
    for value in (3, 200):  # the same volume in mL
        assert float((back.labels == value).sum()) * 1.0 == pytest.approx(
            float((labels == value).sum()) * 0.25, rel=0.1
        )
    with pytest.raises(ValueError, match="hu_step"):
        write_pack_entry(bg, path=tmp_path / "x.npz.xz", spacing_mm=1.0, hu_step=0)


@pytest.mark.parametrize("angle", [0.0, 0.3])
def test_resampling_keeps_every_voxel_at_its_lps_position(angle: float) -> None:
    """HU that rise linearly with the LPS position read the same at the new voxel centres:
    catches a half-voxel shift, which the label centroids above would barely see."""
    from sinusapp.synth.realanat import Background
    from sinusapp.synth.realanat_pack import _resample

    c, s_ = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s_, 0.0], [s_, c, 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.array([[0, 0, 0.43], [0, 0.43, 0], [2.0, 0, 0]])
    affine[:3, 3] = [-12.0, 30.0, -80.0]
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in (12, 40, 44)), indexing="ij"), -1)
    lps = idx @ affine[:3, :3].T + affine[:3, 3]
    coef = np.array([3.0, -2.0, 5.0])
    bg = Background(
        patient="lin",
        hu=(lps @ coef).astype(np.float32),
        labels=np.zeros((12, 40, 44), np.uint8),
        affine=affine,
    )
    out = _resample(bg, spacing_mm=1.25)
    idx2 = np.stack(np.meshgrid(*(np.arange(n) for n in out.hu.shape), indexing="ij"), -1)
    expected = (idx2 @ out.affine[:3, :3].T + out.affine[:3, 3]) @ coef
    inner = (slice(1, -1),) * 3  # the edge voxels are clamped ("nearest")
    assert np.abs(out.hu[inner] - expected[inner]).max() < 1e-2
    assert np.allclose(np.sqrt((out.affine[:3, :3] ** 2).sum(0)), 1.25, atol=0.1)


def test_background_patients_are_dicom_folders_and_pack_entries(tmp_path: Path) -> None:
    from sinusapp.synth.realanat import background_patients

    (tmp_path / "P001").mkdir()
    (tmp_path / "P001" / "labels.nrrd").write_bytes(b"")
    (tmp_path / "P002").mkdir()  # no labels: not a background
    (tmp_path / "P003.npz.xz").write_bytes(b"")
    assert background_patients(tmp_path) == {"P001", "P003"}
    assert background_patients(tmp_path / "nowhere") == set()


def test_head_pack_keeps_bone_edges_nearer_the_scan(tmp_path: Path) -> None:
    """A head case is rendered from its pack onto finer pixels again: the head packs' 0.75 mm
    cubic entries keep a bone edge nearer the scan's than the former 1.25 mm trilinear ones
    (measured on the real heads: session 30, benchmarks/RESULTS.md), and at one spacing the
    cubic spline is the sharper."""
    from _benchscripts import load_benchmark
    from scipy import ndimage

    from sinusapp.synth.realanat import Background
    from sinusapp.synth.realanat_pack import read_pack_entry, write_pack_entry

    heads = load_benchmark("make_head_disease")
    new = (heads.HEAD_PACK_SPACING_MM, heads.HEAD_PACK_HU_ORDER)
    x = np.arange(96) * 0.5  # mm, 0.5 mm pixels like harvard02
    edge = 1000.0 / (1.0 + np.exp(-(x - 23.3) / 0.3))  # a bone edge about 1 mm wide
    hu = np.broadcast_to(edge, (12, 12, 96)).astype(np.float32) - 200.0
    # index (k, j, i) -> LPS (x, y, z), 0.5 mm on every axis
    affine = np.array([[0, 0, 0.5, 0], [0, 0.5, 0, 0], [0.5, 0, 0, 0], [0, 0, 0, 1.0]])
    bg = Background(patient="h", hu=hu, labels=np.zeros(hu.shape, np.uint8), affine=affine)

    def width_mm(profile: np.ndarray) -> float:
        return float(np.ptp(profile) / np.abs(np.diff(profile)).max() * 0.5)

    widths = {}
    for spacing, order in ((1.25, 1), (1.25, 3), (0.75, 1), (0.75, 3), new):
        path = tmp_path / f"{spacing}_{order}.npz.xz"
        write_pack_entry(bg, path=path, spacing_mm=spacing, hu_step=1, hu_order=order)
        back = read_pack_entry(path, patient="h").hu[2, 2].astype(np.float64)
        # rendered again onto 0.5 mm pixels, trilinear as the renderer does
        fine = ndimage.zoom(back, spacing / 0.5, order=1, mode="nearest", grid_mode=True)
        widths[spacing, order] = width_mm(fine)
    original = width_mm(hu[6, 6].astype(np.float64))
    assert original < widths[0.75, 3] < widths[0.75, 1]
    assert widths[1.25, 3] < widths[1.25, 1]
    # the head packs' default takes about half of the former pack's extra width away
    assert widths[new] - original < 0.6 * (widths[1.25, 1] - original)
    with pytest.raises(ValueError, match="hu_order"):
        write_pack_entry(bg, path=tmp_path / "x.npz.xz", spacing_mm=1.0, hu_order=2)
