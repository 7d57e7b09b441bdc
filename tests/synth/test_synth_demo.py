"""The bundled demo study: small, loads cleanly, bilateral ethmoid-predominant disease, and
exactly what ``python -m sinusapp.synth.demo`` regenerates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sinusapp.dicom import load_volume
from sinusapp.imaging.masks import load_reference_mask
from sinusapp.resources import assets_dir
from sinusapp.synth.demo import demo_phantom
from sinusapp.synth.phantom import LABEL_IDS


@pytest.fixture(scope="module")
def demo():
    folder = assets_dir() / "demo"
    if not (folder / "clinical.json").exists():
        pytest.fail(f"demo study missing in {folder}; run python -m sinusapp.synth.demo")
    volume = load_volume(folder / "ct")
    lesion = load_reference_mask(folder / "lesion_seg.dcm", volume=volume)
    labels = load_reference_mask(folder / "sinus_labels.nii.gz", volume=volume)
    return folder, volume, lesion, labels


def test_demo_is_small_and_loads_without_warnings(demo) -> None:
    folder, volume, _, _ = demo
    size_mb = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    assert size_mb <= 15.0
    assert volume.findings == ()
    assert volume.info.patient_name == "SYNTHETIC^CASEDEMO0001"
    clinical = json.loads((folder / "clinical.json").read_text(encoding="utf-8"))
    assert clinical["asthma"] is True and clinical["allergic_rhinitis"] is True
    assert clinical["eosinophils_per_ul"] > 0
    assert clinical["series_uid"] == volume.info.series_uid


def test_demo_disease_is_bilateral_and_ethmoid_predominant(demo) -> None:
    _, _, lesion, labels = demo

    def opacified(name: str) -> float:
        m = labels == LABEL_IDS[name]
        return float(lesion[m].mean())

    for side in ("L", "R"):
        ethmoid = (opacified(f"ethmoid_ant_{side}") + opacified(f"ethmoid_post_{side}")) / 2
        assert ethmoid > 0.6
        assert ethmoid > 1.5 * opacified(f"maxillary_{side}")
    assert lesion[labels == LABEL_IDS["nasal_cavity"]].sum() > 0  # nasal polyps


def test_demo_assets_match_the_generator(demo) -> None:
    _, volume, lesion, _ = demo
    ph = demo_phantom()
    assert np.array_equal(volume.array, ph.hu), (
        "assets/demo is stale: python -m sinusapp.synth.demo"
    )
    assert np.array_equal(lesion > 0, ph.lesion > 0)
