"""The phantom: label table, lesion mask agreeing with HU, sinus centre, determinism, speed path."""

from __future__ import annotations

import numpy as np
import pytest
from synth_helpers import coarse_scanner

from sinusapp.synth.demo import demo_disease
from sinusapp.synth.phantom import (
    LABEL_IDS,
    SINUS_LABELS,
    Anatomy,
    Disease,
    Pose,
    RegionDisease,
    ScannerSettings,
    render_phantom,
)

POSE = Pose(rotation_deg=(2.0, -3.0, 4.0), shift_mm=(3.0, -2.0, 5.0))


@pytest.fixture(scope="module")
def diseased_1mm():
    """Noise-free 1 mm render of the demo disease, slightly rotated and shifted."""
    return render_phantom(
        anatomy=Anatomy(),
        disease=demo_disease(),
        pose=POSE,
        scanner=ScannerSettings.low_res(),
        seed=3,
        noise=False,
    )


def test_label_table_is_the_documented_one() -> None:
    assert SINUS_LABELS == {
        1: "maxillary_L",
        2: "maxillary_R",
        3: "ethmoid_ant_L",
        4: "ethmoid_ant_R",
        5: "ethmoid_post_L",
        6: "ethmoid_post_R",
        7: "frontal",
        8: "sphenoid",
        9: "nasal_cavity",
    }
    assert LABEL_IDS["nasal_cavity"] == 9


def test_every_sinus_is_labelled_on_its_side(diseased_1mm) -> None:
    ph = diseased_1mm
    assert ph.hu.dtype == np.int16 and ph.lesion.dtype == np.uint8 and ph.labels.dtype == np.uint8
    assert set(np.unique(ph.labels)) == set(range(10))
    # left structures (+x in LPS) lie left of right ones
    xs = {}
    for value, name in SINUS_LABELS.items():
        idx = np.argwhere(ph.labels == value)
        xs[name] = (ph.affine[:3, :3] @ idx.mean(axis=0) + ph.affine[:3, 3])[0]
    for pair in (("maxillary_L", "maxillary_R"), ("ethmoid_ant_L", "ethmoid_ant_R")):
        assert xs[pair[0]] > xs[pair[1]] + 10
    # maxillary sinus volume in the adult range (about 10-25 mL)
    ml = (ph.labels == LABEL_IDS["maxillary_L"]).sum() * 1e-3
    assert 8 < ml < 30


def test_lesion_voxels_are_soft_tissue_inside_the_cavities(diseased_1mm) -> None:
    ph = diseased_1mm
    lesion = ph.lesion > 0
    assert lesion.sum() > 1000
    assert np.all(ph.labels[lesion] > 0), "lesion outside the nasal cavity / sinuses"
    hu = ph.hu[lesion]
    assert 10 <= np.median(hu) <= 60
    assert (hu > 600).mean() < 0.03, "lesion voxels on bone"
    assert (hu < -500).mean() < 0.01, "lesion voxels in air"
    # the cavities' non-lesion voxels are air
    air = ph.hu[(ph.labels > 0) & ~lesion]
    assert np.median(air) < -900


def test_healthy_phantom_has_no_lesion_and_air_filled_sinuses() -> None:
    ph = render_phantom(
        anatomy=Anatomy(), disease=Disease(), pose=Pose(), scanner=coarse_scanner(), seed=1
    )
    assert ph.lesion.sum() == 0
    assert np.median(ph.hu[ph.labels == LABEL_IDS["maxillary_R"]]) < -900


def test_disease_patterns_fill_the_intended_fraction() -> None:
    scanner = coarse_scanner(noise_hu=0.0)
    full = Disease(regions={"maxillary_L": RegionDisease(opacification=1.0, pattern="complete")})
    ph = render_phantom(anatomy=Anatomy(), disease=full, pose=Pose(), scanner=scanner, seed=1)
    m = ph.labels == LABEL_IDS["maxillary_L"]
    assert ph.lesion[m].mean() > 0.98
    assert ph.lesion[ph.labels == LABEL_IDS["maxillary_R"]].sum() == 0
    half = Disease(regions={"maxillary_L": RegionDisease(opacification=0.5, pattern="mucosal")})
    ph = render_phantom(anatomy=Anatomy(), disease=half, pose=Pose(), scanner=scanner, seed=1)
    assert 0.25 < ph.lesion[ph.labels == LABEL_IDS["maxillary_L"]].mean() < 0.75


def test_air_fluid_level_is_dependent_in_lps() -> None:
    """A supine patient's fluid lies posterior (+y LPS), whatever the head frame."""
    scanner = coarse_scanner(noise_hu=0.0)
    d = Disease(regions={"maxillary_R": RegionDisease(opacification=0.5, pattern="air_fluid")})
    ph = render_phantom(anatomy=Anatomy(), disease=d, pose=Pose(), scanner=scanner, seed=2)
    m = ph.labels == LABEL_IDS["maxillary_R"]
    rows_fluid = np.argwhere(m & (ph.lesion > 0))[:, 1].mean()
    rows_air = np.argwhere(m & (ph.lesion == 0))[:, 1].mean()
    assert rows_fluid > rows_air  # the row index grows posteriorly


def test_sinus_centre_metadata_matches_the_labels(diseased_1mm) -> None:
    ph = diseased_1mm
    idx = np.argwhere(ph.labels > 0)
    centre = ph.affine[:3, :3] @ ((idx.min(axis=0) + idx.max(axis=0)) / 2) + ph.affine[:3, 3]
    assert np.linalg.norm(centre - np.asarray(ph.meta["sinus_centre_lps_mm"])) < 6.0


def test_same_seed_same_voxels_other_seed_other_noise() -> None:
    kw = dict(anatomy=Anatomy(), disease=demo_disease(), pose=POSE, scanner=coarse_scanner())
    a = render_phantom(seed=5, **kw)
    b = render_phantom(seed=5, **kw)
    c = render_phantom(seed=6, **kw)
    assert np.array_equal(a.hu, b.hu) and np.array_equal(a.lesion, b.lesion)
    assert not np.array_equal(a.hu, c.hu)


def test_invalid_disease_is_refused() -> None:
    with pytest.raises(ValueError, match="opacification"):
        RegionDisease(opacification=1.5)
    with pytest.raises(ValueError, match="unknown"):
        Disease(regions={"maxillary": RegionDisease()})
    with pytest.raises(ValueError, match="lesion_hu"):
        Disease(lesion_hu=120.0)
