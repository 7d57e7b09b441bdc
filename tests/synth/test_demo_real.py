"""The real-anatomy demo study (assets/demo_real): a real NasalSeg crop with placed disease,
attributed, loading cleanly, and exactly what ``python -m sinusapp.synth.demo_real`` writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sinusapp.dicom import load_volume
from sinusapp.imaging.masks import load_reference_mask
from sinusapp.resources import assets_dir
from sinusapp.synth.demo_real import DEMO_REAL_PATIENT, write_real_demo
from sinusapp.synth.realanat import load_split

NASALSEG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nasalseg"


@pytest.fixture(scope="module")
def demo():
    folder = assets_dir() / "demo_real"
    if not (folder / "clinical.json").exists():
        pytest.fail(f"demo study missing in {folder}; run python -m sinusapp.synth.demo_real")
    volume = load_volume(folder / "ct")
    lesion = load_reference_mask(folder / "lesion_seg.dcm", volume=volume)
    labels = load_reference_mask(folder / "sinus_labels.nii.gz", volume=volume)
    return folder, volume, lesion, labels


def test_background_is_a_test_patient_never_trained_on() -> None:
    assert load_split()[DEMO_REAL_PATIENT] == "test"


def test_real_demo_is_small_attributed_and_loads_without_warnings(demo) -> None:
    folder, volume, lesion, _ = demo
    size_mb = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    assert size_mb <= 5.0
    assert volume.findings == ()
    text = (folder / "ATTRIBUTION.txt").read_text(encoding="utf-8")
    assert "CC BY 4.0" in text and "10.5281/zenodo.13893419" in text and DEMO_REAL_PATIENT in text
    clinical = json.loads((folder / "clinical.json").read_text(encoding="utf-8"))
    assert clinical["series_uid"] == volume.info.series_uid
    assert clinical["eosinophils_per_ul"] > 0 and "not a real patient" in clinical["note"]
    ml = float(lesion.astype(bool).sum()) * volume.voxel_volume_ml
    assert ml == pytest.approx(clinical["lesion_volume_ml"], rel=0.02)


def test_real_demo_disease_lies_in_both_maxillary_sinuses_and_the_nose(demo) -> None:
    _, volume, lesion, labels = demo
    lesion = lesion.astype(bool)
    for value in (1, 2):  # maxillary L, R: partly opacified
        share = float(lesion[labels == value].mean())
        assert 0.15 < share < 0.9, (value, share)
    nasal = float(lesion[labels == 9].mean())  # a few nasal polyps, the airway kept open
    assert 0.003 < nasal < 0.3, nasal
    # the placed disease is soft tissue on a real scan whose cavities are otherwise air
    assert float(np.median(volume.array[lesion])) > -100
    assert float(np.median(volume.array[(labels > 0) & ~lesion])) < -500


@pytest.mark.skipif(not NASALSEG.exists(), reason="needs ../shared/data/nasalseg")
def test_real_demo_assets_match_the_generator(demo, tmp_path: Path) -> None:
    _, volume, lesion, _ = demo
    clinical = write_real_demo(nasalseg_root=NASALSEG, out_dir=tmp_path / "d")
    again = load_volume(tmp_path / "d" / "ct")
    assert np.array_equal(again.array, volume.array), (
        "assets/demo_real is stale: python -m sinusapp.synth.demo_real"
    )
    seg = load_reference_mask(tmp_path / "d" / "lesion_seg.dcm", volume=again)
    assert np.array_equal(seg.astype(bool), lesion.astype(bool))
    assert clinical["series_uid"] == volume.info.series_uid
