"""Whole-head backgrounds (:mod:`sinusapp.synth.realhead`): upper-sinus disease stays in its
cells, the rest of the sinonasal box is unlabelled, outside it everything is labelled clear."""

from __future__ import annotations

import numpy as np

from sinusapp.imaging.volume import Volume
from sinusapp.synth.cohort import sample_cohort
from sinusapp.synth.realhead import UPPER_REGIONS, box_mask, head_background, render_head_case

# index (k, j, i) → LPS (i, j, k) mm at 1 mm: an axial series
AXIAL = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)


def _head() -> tuple[Volume, np.ndarray, np.ndarray]:
    """A soft-tissue block with air cells of every upper sinus, labelled as the app would."""
    rng = np.random.default_rng(0)
    hu = (30.0 + rng.normal(0, 8, (90, 100, 110))).astype(np.int16)
    labels = np.zeros(hu.shape, np.uint8)
    for n, value in enumerate(UPPER_REGIONS):
        k0, i0 = 35 + 6 * (n % 2), 25 + 10 * n
        hu[k0 : k0 + 7, 45:55, i0 : i0 + 7] = -1000
        labels[k0 : k0 + 7, 45:55, i0 : i0 + 7] = value
    labels[84:88, 2:6, 104:108] = 3  # a stray "cell" far from the box: not a sinus
    box = np.array([[30.0, 80.0], [35.0, 65.0], [25.0, 55.0]])  # x, y, z (LPS mm)
    return Volume(array=hu, affine=AXIAL), labels, box


def test_box_mask_follows_the_affine() -> None:
    vol = Volume(array=np.zeros((10, 12, 14), np.int16), affine=AXIAL)
    m = box_mask(vol, box_lps_mm=np.array([[2.0, 5.0], [0.0, 3.0], [4.0, 4.0]]))
    assert m.sum() == 4 * 4 * 1 and m[4, 0:4, 2:6].all()


def test_disease_stays_in_the_cells_and_the_box_is_unlabelled() -> None:
    volume, labels, box = _head()
    bg, info = head_background(volume, labels=labels, box_lps_mm=box, name="synthetic")
    # every cell is kept (7 x 10 x 7 voxels of 1 mm³), the stray one is not
    assert info["upper_cells_ml"] == dict.fromkeys(UPPER_REGIONS.values(), 0.49)
    spec = next(
        c
        for c in sample_cohort(n_cases=30, seed=3, center="A")
        if c.disease.get("ethmoid_ant_L").opacification > 0.3
    )
    case = render_head_case(bg, spec=spec, healthy=False)
    assert case.lesion.any() and case.lesion.shape == case.hu.shape
    # the lesion is soft tissue placed in the air cells, never in the unlabelled box
    assert not (case.lesion.astype(bool) & case.unlabelled.astype(bool)).any()
    assert np.median(case.hu[case.lesion > 0]) > -100
    assert 0.05 < case.unlabelled.mean() < 0.9
    healthy = render_head_case(bg, spec=spec, healthy=True)
    assert not healthy.lesion.any()
    # the reference cells: the healthy head's upper cells through the same augmentation,
    # whatever the disease did to their air; they hold the placed lesion (up to its rim)
    assert set(np.unique(case.cells)) <= {0, *UPPER_REGIONS}
    assert np.array_equal(case.cells, healthy.cells) and case.cells.any()
    assert (case.cells[case.lesion > 0] > 0).mean() > 0.5
    # same seed, same case
    again = render_head_case(bg, spec=spec, healthy=False)
    assert np.array_equal(again.hu, case.hu) and np.array_equal(again.lesion, case.lesion)
