"""The bundled model on real anatomy: NasalSeg test patients (never trained on) and a real head.

These guard what issue 11 measured with ``benchmarks/real_anatomy.py`` (numbers in
benchmarks/RESULTS.md): a retrained or replaced bundle that segments phantoms but not real
sinuses fails here. Thresholds sit below the measured values (the benchmark's medians) with
a margin for one case; they are not the targets themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sinusapp.imaging.quantify import LABEL_IDS

ROOT = Path(__file__).resolve().parents[2]
NASALSEG = ROOT.parent / "shared" / "data" / "nasalseg"
VHF = ROOT.parent / "shared" / "data" / "realct" / "vhf_visible_human_female_head"

pytestmark = pytest.mark.skipif(
    not NASALSEG.is_dir(), reason=f"real sinus CT (NasalSeg) not found at {NASALSEG}"
)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * float((a & b).sum()) / max(1, int(a.sum()) + int(b.sum()))


@pytest.fixture(scope="module")
def predictor():  # type: ignore[no-untyped-def]
    import torch

    from sinusapp.model.predictor import Predictor

    torch.set_num_threads(1)
    return Predictor(device="cpu")


@pytest.fixture(scope="module")
def test_patients() -> list[str]:
    from sinusapp.synth.realanat import load_split

    # The first test patient (P004) has real opacification of its left maxillary sinus, which
    # the model rightly marks but no "healthy" or placed-disease truth holds: use the next two.
    return sorted(p for p, s in load_split().items() if s == "test")[1:3]


def test_bundled_model_has_the_sinus_head_and_fine_input(predictor) -> None:  # type: ignore[no-untyped-def]
    cfg = predictor.bundle.preprocess
    assert cfg.spacing_mm <= 1.25  # thin mucosa needs ≤ 1.25 mm (the paper: ~1 mm)
    assert predictor.bundle.network.sinus_classes >= 4
    # measured (benchmarks/make_head_disease.py --score): its lesion head marks almost no
    # ethmoid / frontal / sphenoid disease on real heads, so it must not grade them
    assert predictor.bundle.lesion_assessed_regions == {
        "maxillary_L",
        "maxillary_R",
        "nasal_cavity",
    }
    # ... and the pipeline reads the same from the predictor it is given
    from sinusapp.pipeline import _assessed_regions

    assert _assessed_regions(predictor) == predictor.bundle.lesion_assessed_regions


def test_sinus_head_finds_the_maxillary_sinuses_and_no_lesion_in_healthy_crops(
    predictor,
    test_patients,  # type: ignore[no-untyped-def]
) -> None:
    from sinusapp.imaging.volume import Volume
    from sinusapp.synth.realanat import load_background

    for patient in test_patients:
        bg = load_background(root=NASALSEG, patient=patient)
        volume = Volume(array=bg.hu.astype(np.int16), affine=bg.affine)
        pred = predictor.predict(volume)
        assert pred.sinus_labels is not None
        for region in ("maxillary_L", "maxillary_R"):
            value = LABEL_IDS[region]
            dice = _dice(pred.sinus_labels == value, bg.labels == value)
            assert dice >= 0.65, (patient, region, dice)
        nasal = _dice(pred.sinus_labels == LABEL_IDS["nasal_cavity"], bg.labels == 9)
        assert nasal >= 0.60, (patient, "nasal cavity", nasal)
        assert pred.lesion_volume_ml <= 3.0, (patient, pred.lesion_volume_ml)


def test_placed_disease_on_a_held_out_patient_is_segmented(
    predictor,
    test_patients,  # type: ignore[no-untyped-def]
) -> None:
    from sinusapp.imaging.volume import Volume
    from sinusapp.synth.cohort import sample_cohort
    from sinusapp.synth.realanat import load_background, render_real_case

    bg = load_background(root=NASALSEG, patient=test_patients[0])
    specs = [c for c in sample_cohort(n_cases=20, seed=5, center="A") if c.recurrence][:2]
    for spec in specs:
        case = render_real_case(case=spec, background=bg, healthy=False)
        if case.lesion.sum() * float(abs(np.linalg.det(case.affine[:3, :3]))) < 2000.0:
            continue  # < 2 mL: too little disease for a stable Dice
        pred = predictor.predict(Volume(array=case.hu, affine=case.affine))
        mask, truth = pred.mask.astype(bool), case.lesion.astype(bool)
        precision = float((mask & truth).sum()) / max(1, int(mask.sum()))
        # bundle 2.1.0 with the mirrored pass and the growth on the CT grid: Dice 0.71 / 0.77,
        # precision 0.73 / 0.77 on these two cases (P018); threshold 0.75 alone gave Dice
        # 0.63 / 0.68; 2.0.0's median Dice on the held-out benchmark cases was 0.30.
        assert _dice(mask, truth) >= 0.65, (spec.case_id, _dice(mask, truth))
        assert precision >= 0.60, (spec.case_id, precision)


@pytest.mark.skipif(not VHF.is_dir(), reason=f"real head CT not found at {VHF}")
def test_real_whole_head_gets_both_maxillary_sinuses_and_little_false_lesion(
    predictor,  # type: ignore[no-untyped-def]
) -> None:
    from sinusapp.dicom import load_volume

    volume = load_volume(VHF)
    pred = predictor.predict(volume)
    # This cadaver's nasal airway is filled with soft tissue, which a model trained on nasal
    # swelling reads as disease (bundle 2.1.0: 20.6 of 22.5 mL there); its maxillary sinuses
    # are clear (air), and so must be the rest of the head.
    nasal = pred.sinus_labels == LABEL_IDS["nasal_cavity"]
    maxillary = np.isin(pred.sinus_labels, (LABEL_IDS["maxillary_L"], LABEL_IDS["maxillary_R"]))
    lesion = pred.mask.astype(bool)
    outside_nose = float((lesion & ~nasal).sum() * volume.voxel_volume_ml)
    in_maxillary = float((lesion & maxillary).sum() * volume.voxel_volume_ml)
    assert outside_nose <= 5.0, (outside_nose, pred.lesion_volume_ml)
    assert in_maxillary <= 2.0, in_maxillary
    for region in ("maxillary_L", "maxillary_R"):
        ml = float((pred.sinus_labels == LABEL_IDS[region]).sum() * volume.voxel_volume_ml)
        assert 5.0 <= ml <= 40.0, (region, ml)
    # the upper sinuses, placed by the model's labels (checked by eye on this head: ethmoid
    # cells between the orbits, the sphenoid behind them, the frontal sinus above)
    from sinusapp.imaging.upper_sinuses import label_upper_sinuses

    found = label_upper_sinuses(
        hu=volume.array, affine=volume.affine, model_labels=pred.sinus_labels
    )
    assert found is not None
    zone, box = found
    k, j, i = np.nonzero(zone)
    lps = np.stack([k + box[0].start, j + box[1].start, i + box[2].start], 1)
    lps = lps @ volume.affine[:3, :3].T + volume.affine[:3, 3]
    where = {}
    for name, values in (
        ("ethmoid_L", ("ethmoid_ant_L", "ethmoid_post_L")),
        ("ethmoid_R", ("ethmoid_ant_R", "ethmoid_post_R")),
        ("sphenoid", ("sphenoid",)),
        ("frontal", ("frontal",)),
    ):
        m = np.isin(zone[k, j, i], [LABEL_IDS[v] for v in values])
        ml = float(m.sum() * volume.voxel_volume_ml)
        assert {"ethmoid_L": 1.5, "ethmoid_R": 1.5, "sphenoid": 3.0, "frontal": 0.5}[name] <= ml
        assert ml <= 30.0, (name, ml)
        where[name] = np.median(lps[m], axis=0)
    assert where["ethmoid_L"][0] > where["ethmoid_R"][0]  # LPS x grows to the patient's left
    assert where["sphenoid"][1] > max(where["ethmoid_L"][1], where["ethmoid_R"][1]) + 10
    assert where["frontal"][2] > max(where["ethmoid_L"][2], where["ethmoid_R"][2]) + 10


REALCT = ROOT.parent / "shared" / "data" / "realct"


@pytest.mark.parametrize(
    ("head", "most_ml"),
    [
        # measured with 2.2.0: 4.25 and 0.24 mL (2.1.1: 3.68 and 1.00; 2.1.0's first
        # post-processing, without sinus_component_mm / drop_stray_lesion: 5.00 and 3.61).
        # GE is the head no model trained on.
        ("harvard02_cadaver_head_sinus_coverage", 4.5),
        ("ge_hispeed_dual_head_tilt_varspacing", 0.75),
    ],
)
def test_no_lesion_and_no_sinus_label_far_lateral_of_the_sinuses_on_real_heads(
    predictor,  # type: ignore[no-untyped-def]
    head: str,
    most_ml: float,
) -> None:
    """On these heads the sinus head gave pieces of its "maxillary sinuses" in the temporal
    fossa, the cheek and the middle cranial fossa, with lesion on them (GE: 2.6 mL in the
    temporal pole). Each class must be one cavity, and no lesion may lie on such a piece."""
    from scipy import ndimage

    from sinusapp.dicom import load_volume, scan

    folder = REALCT / head
    if not folder.is_dir():
        pytest.skip(f"real head CT not found at {folder}")
    result = scan(folder)
    series = max(
        (s for s in result.series if s.kind == "image" and s.modality == "CT"),
        key=lambda s: s.n_frames,
    )
    volume = load_volume(folder, series_uid=series.series_uid, scan_result=result)
    pred = predictor.predict(volume)
    assert pred.sinus_labels is not None
    ml = volume.voxel_volume_ml
    for region in ("maxillary_L", "maxillary_R"):
        pieces, n = ndimage.label(pred.sinus_labels == LABEL_IDS[region])
        sizes = np.bincount(pieces.ravel())[1:] * ml
        # one cavity (a piece within 3 mm of it may remain: at most a small share)
        assert n >= 1 and sizes.max() >= 4.0, (region, sizes)
        assert sizes.sum() - sizes.max() <= 0.1 * sizes.max(), (region, sorted(sizes))
    assert pred.lesion_volume_ml <= most_ml, pred.lesion_volume_ml
    x_row = volume.affine[0]
    k, j, i = np.nonzero(pred.sinus_labels)
    x = x_row[0] * k + x_row[1] * j + x_row[2] * i + x_row[3]
    k, j, i = np.nonzero(pred.mask)
    lx = x_row[0] * k + x_row[1] * j + x_row[2] * i + x_row[3]
    lateral = float(((lx < x.min()) | (lx > x.max())).sum() * ml)
    # measured 0.19 / 0.39 mL; drop_stray_lesion removed 1.32 / 2.61 mL lateral of them
    assert lateral <= 0.5, lateral
