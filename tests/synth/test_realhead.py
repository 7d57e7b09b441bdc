"""Whole-head backgrounds (:mod:`sinusapp.synth.realhead`): upper-sinus disease stays in its
cells; the tissue inside the model's maxillary / nasal cavities is unlabelled for the lesion
(the cavities still known to the sinus labelling, their air known clear); the rim around
them, the rest of the box and everything outside it is labelled clear."""

from __future__ import annotations

import numpy as np

from sinusapp.imaging.quantify import SINUS_LABELS
from sinusapp.imaging.volume import Volume
from sinusapp.synth.cohort import sample_cohort
from sinusapp.synth.realanat import (
    CAVITY_BASE,
    HIDDEN_BASE,
    MAX_L,
    MAX_R,
    NASAL,
    mirror_background,
)
from sinusapp.synth.realhead import (
    UPPER_REGIONS,
    box_mask,
    head_background,
    render_head_case,
)

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
    # the model's cavities below the cells (1.6, 0.96 and 1.6 mL)
    for value, (i0, i1) in ((MAX_L, (35, 45)), (NASAL, (50, 56)), (MAX_R, (60, 70))):
        hu[26:34, 40:60, i0:i1] = -1000
        labels[26:34, 40:60, i0:i1] = value
    hu[26:34, 40:60, 50:53] = 30  # half the nasal cavity filled with tissue (as in the VHF)
    labels[28, 64:66, 75:77] = MAX_L  # a stray bit of "maxillary sinus": not kept
    labels[84:88, 90:94, 2:6] = NASAL  # model cavity outside the box: not kept
    hu[26:34, 62:66, 40:44] = -1000  # air no label holds, next to the left maxillary sinus
    hu[50:53, 36:39, 30:33] = -1000  # air no label holds, far from every cavity
    box = np.array([[30.0, 80.0], [35.0, 65.0], [25.0, 55.0]])  # x, y, z (LPS mm)
    return Volume(array=hu, affine=AXIAL), labels, box


def test_box_mask_follows_the_affine() -> None:
    vol = Volume(array=np.zeros((10, 12, 14), np.int16), affine=AXIAL)
    m = box_mask(vol, box_lps_mm=np.array([[2.0, 5.0], [0.0, 3.0], [4.0, 4.0]]))
    assert m.sum() == 4 * 4 * 1 and m[4, 0:4, 2:6].all()


def test_disease_stays_in_the_cells_outside_the_unlabelled_region() -> None:
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
    # the lesion is soft tissue placed in the air cells, never in the unlabelled region
    assert case.unlabelled.any()
    assert not (case.lesion.astype(bool) & case.unlabelled.astype(bool)).any()
    assert np.median(case.hu[case.lesion > 0]) > -100
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


def test_model_cavities_are_known_to_the_sinus_labelling_only() -> None:
    volume, labels, box = _head()
    bg, info = head_background(volume, labels=labels, box_lps_mm=box, name="synthetic")
    names = {v: SINUS_LABELS[v] for v in (MAX_L, MAX_R, NASAL)}
    assert info["model_cavities_ml"] == {
        names[MAX_L]: 1.6,
        names[MAX_R]: 1.6,
        names[NASAL]: 0.96,
    }
    lo = np.asarray(info["crop_index_lo"])
    lab = np.zeros(volume.shape, np.uint8)
    lab[tuple(slice(a, a + n) for a, n in zip(lo, bg.labels.shape, strict=True))] = bg.labels
    assert set(np.unique(lab)) == {
        0,
        *UPPER_REGIONS,
        HIDDEN_BASE + NASAL,
        *(CAVITY_BASE + v for v in names),
    }
    # the cavities' air is known (no lesion), their tissue is not
    assert (lab[26:34, 40:60, 35:45] == CAVITY_BASE + MAX_L).all()
    assert (lab[26:34, 40:60, 60:70] == CAVITY_BASE + MAX_R).all()
    assert (lab[26:34, 40:60, 50:53] == HIDDEN_BASE + NASAL).all()
    assert (lab[26:34, 40:60, 53:56] == CAVITY_BASE + NASAL).all()
    assert info["unlabelled_ml"] == 0.48 and info["cavity_air_ml"] == 3.68
    assert info["air_level_hu"] == -1000
    assert lab[28, 64, 75] == 0 and lab[86, 92, 4] == 0  # stray pieces: known clear
    # the rim next to a cavity and the air no label holds beside it are known clear (a
    # model trained with them unknown grew its labels and its lesion into them)
    assert lab[30, 50, 34] == 0 and lab[30, 50, 33] == 0
    assert (lab[26:34, 62:66, 40:44] == 0).all()
    assert (lab[50:53, 36:39, 30:33] == 0).all()
    assert lab[54, 38, 50] == 0 and box_mask(volume, box_lps_mm=box)[54, 38, 50]
    # a left-right mirror swaps the maxillary labels of both kinds
    mirrored = mirror_background(bg)
    for base in (HIDDEN_BASE, CAVITY_BASE):
        assert np.array_equal(
            mirrored.labels == base + MAX_R, (bg.labels == base + MAX_L)[:, :, ::-1]
        )
        assert np.array_equal(
            mirrored.labels == base + NASAL, (bg.labels == base + NASAL)[:, :, ::-1]
        )
    spec = sample_cohort(n_cases=5, seed=3, center="A")[0]
    case = render_head_case(bg, spec=spec, healthy=False)
    assert set(np.unique(case.cavities)) == {0, MAX_L, MAX_R, NASAL}
    # the unlabelled region is the tissue of the nasal cavity: inside the cavities, never in
    # their air or the cells
    unl = case.unlabelled > 0
    assert unl.any() and (case.cavities[unl] == NASAL).all()
    assert np.median(case.hu[unl]) > 0 and np.median(case.hu[(case.cavities > 0) & ~unl]) < -500
    assert not unl[case.cells > 0].any()
    assert not (case.cavities.astype(bool) & (case.cells > 0)).any()
