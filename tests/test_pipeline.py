"""One analysis run, headless: pipeline.analyse and run_headless with injected fakes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from sinusapp.dicom import load_volume, scan
from sinusapp.errors import ClinicalInputError, OutputError
from sinusapp.headless import run_headless
from sinusapp.model import FakePredictor
from sinusapp.pipeline import analyse

CLINICAL = {
    "asthma": "yes",
    "allergic_rhinitis": "no",
    "eosinophils": 0.45,
    "eosinophil_unit": "1e9_per_l",
    "age_years": 50,
    "sex": "female",
}


@pytest.fixture
def ct_folder(tmp_path: Path, series_writer) -> Path:
    series_writer(tmp_path / "ct", n=24, rows=48, cols=40, spacing=1.0, pixel_spacing=(1.0, 1.0))
    return tmp_path / "ct"


def test_analyse_combines_prediction_and_nomogram(ct_folder: Path, fitted_nomogram) -> None:
    volume = load_volume(ct_folder)
    seen: list[float] = []
    result = analyse(
        volume,
        {"asthma": True, "allergic_rhinitis": False, "eosinophils_per_ul": 450.0},
        predictor=FakePredictor(dlr_score=0.6, locate=False),
        nomogram=fitted_nomogram,
        progress=lambda f, s: seen.append(f),
    )
    expected = fitted_nomogram.predict(
        dlr_score=0.6, asthma=True, allergic_rhinitis=False, eosinophils_per_ul=450.0
    )
    assert result.probability == pytest.approx(expected.probability)
    assert result.probability_ci95 == pytest.approx(expected.ci95)
    assert result.total_points == pytest.approx(expected.total_points)
    assert result.mask.shape == volume.shape and result.mask.any()
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert result.model is not None and result.model.name == "fake"
    d = result.to_json_dict()
    for key in (
        "dlr_score",
        "probability",
        "probability_ci95",
        "risk_group",
        "cutoff",
        "points",
        "clinical_inputs",
        "lesion_volume_ml",
        "per_sinus",
        "series",
        "model",
        "warnings",
        "software_version",
    ):
        assert key in d, key
    json.dumps(d)  # serialisable


def test_run_headless_writes_json_report_and_seg(
    ct_folder: Path, tmp_path: Path, fitted_nomogram
) -> None:
    nomo_path = tmp_path / "nomogram.json"
    fitted_nomogram.save(nomo_path)
    out = run_headless(
        ct_folder,
        CLINICAL,
        json_path=tmp_path / "out" / "result.json",
        report_path=tmp_path / "out" / "report.pdf",
        seg_path=tmp_path / "out" / "seg.dcm",
        nomogram_path=nomo_path,
        predictor=FakePredictor(dlr_score=0.3, locate=False),
    )
    data = json.loads((tmp_path / "out" / "result.json").read_text())
    assert data["clinical_inputs"]["eosinophils_per_ul"] == pytest.approx(450.0)  # unit converted
    assert data["dlr_score"] == pytest.approx(0.3)
    assert (
        0 <= data["probability_ci95"][0] <= data["probability"] <= data["probability_ci95"][1] <= 1
    )
    assert (tmp_path / "out" / "report.pdf").read_bytes().startswith(b"%PDF")
    seg = pydicom.dcmread(tmp_path / "out" / "seg.dcm")
    assert seg.Modality == "SEG"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == out.result.volume.info.series_uid


def test_bad_clinical_value_fails_before_reading_the_ct(tmp_path: Path) -> None:
    with pytest.raises(ClinicalInputError, match=r"(?i)eosinophil"):
        run_headless(
            tmp_path / "does-not-matter",
            {**CLINICAL, "eosinophils": -5},
            predictor=FakePredictor(locate=False),
        )


def test_unwritable_output_is_refused_up_front(
    ct_folder: Path, tmp_path: Path, fitted_nomogram
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    nomo_path = tmp_path / "nomogram.json"
    fitted_nomogram.save(nomo_path)
    with pytest.raises(OutputError):
        run_headless(
            ct_folder,
            CLINICAL,
            json_path=blocker / "sub" / "result.json",
            nomogram_path=nomo_path,
            predictor=FakePredictor(locate=False),
        )
    assert np.all(blocker.read_text() == "x")


# -- per-sinus quantification -------------------------------------------------------------


class _TruthPredictor:
    """Returns a fixed lesion mask (the phantom's truth), optionally with ``per_sinus``."""

    def __init__(self, mask: np.ndarray, per_sinus=None) -> None:
        self.mask = mask
        self.per_sinus = per_sinus

    def predict(self, volume, *, progress=None, should_cancel=None):
        from types import SimpleNamespace

        return SimpleNamespace(
            mask=self.mask,
            dlr_score=0.5,
            lesion_volume_ml=float(self.mask.sum() * volume.voxel_volume_ml),
            per_sinus=self.per_sinus,
        )


@pytest.fixture(scope="module")
def phantom_case():
    from sinusapp.imaging.volume import Volume
    from sinusapp.synth.cohort import sample_cohort
    from sinusapp.synth.write import render_case

    ph, _ = render_case(sample_cohort(n_cases=1, seed=5, center="A")[0], low_res=True)
    return Volume(array=ph.hu, affine=ph.affine), ph.labels, ph.lesion


CLINICAL_FACTORS = {"asthma": True, "allergic_rhinitis": False, "eosinophils_per_ul": 450.0}


def test_per_sinus_from_given_labels_sums_to_the_lesion_in_the_cavities(
    phantom_case, fitted_nomogram
) -> None:
    from sinusapp.imaging.quantify import BONE_HU, lund_mackay_total

    volume, labels, lesion = phantom_case
    result = analyse(
        volume,
        CLINICAL_FACTORS,
        predictor=_TruthPredictor(lesion),
        nomogram=fitted_nomogram,
        sinus_labels=labels,
    )
    ps = result.per_sinus
    assert ps is not None and result.sinus_labels_source == "given"
    # the eight paranasal sinus items; the nasal cavity is not a Lund–Mackay item
    assert set(ps) == {
        "maxillary_L",
        "maxillary_R",
        "ethmoid_ant_L",
        "ethmoid_ant_R",
        "ethmoid_post_L",
        "ethmoid_post_R",
        "frontal",
        "sphenoid",
    }
    in_sinuses = (lesion > 0) & (labels >= 1) & (labels <= 8) & (volume.array <= BONE_HU)
    expected_ml = float(in_sinuses.sum()) * volume.voxel_volume_ml
    assert sum(v["opacified_ml"] for v in ps.values()) == pytest.approx(expected_ml, abs=0.01)
    assert 0 < expected_ml < result.lesion_volume_ml
    for v in ps.values():
        assert 0.0 <= v["opacification_pct"] <= 100.0 and v["lund_mackay"] in (0, 1, 2)
    d = result.to_json_dict()
    assert d["lund_mackay_total"] == lund_mackay_total(ps)
    assert d["sinus_labels_source"] == "given"
    json.dumps(d)


def test_regions_the_model_does_not_assess_keep_their_volume_only(
    phantom_case, fitted_nomogram
) -> None:
    """A bundle's lesion_regions: outside them the model's 0 % is no evidence of a clear
    sinus, so the row has its volume, no opacification, no grade, and the sum skips it."""
    from sinusapp.imaging.quantify import OPACIFICATION_KEYS, lund_mackay_total

    volume, labels, lesion = phantom_case
    predictor = _TruthPredictor(lesion)
    full = analyse(
        volume, CLINICAL_FACTORS, predictor=predictor, nomogram=fitted_nomogram, sinus_labels=labels
    )
    predictor.manifest = {"lesion_regions": {"assessed": ["maxillary_L", "maxillary_R"]}}
    part = analyse(
        volume, CLINICAL_FACTORS, predictor=predictor, nomogram=fitted_nomogram, sinus_labels=labels
    )
    assert full.per_sinus is not None and part.per_sinus is not None
    assert set(part.per_sinus) == set(full.per_sinus)
    upper = sorted(set(full.per_sinus) - {"maxillary_L", "maxillary_R"})
    assert len(upper) == 6
    for name in upper:
        assert part.per_sinus[name] == {"volume_ml": full.per_sinus[name]["volume_ml"]}
    for name in ("maxillary_L", "maxillary_R"):
        assert part.per_sinus[name] == full.per_sinus[name]
    # the phantom's ethmoid disease is graded in the full result and not in the partial one
    assert sum(int(full.per_sinus[n]["lund_mackay"]) for n in upper) > 0
    assert lund_mackay_total(part.per_sinus) == sum(
        int(full.per_sinus[n]["lund_mackay"]) for n in ("maxillary_L", "maxillary_R")
    )
    d = part.to_json_dict()
    assert d["opacification_not_assessed"] == upper
    assert not any(k in d["per_sinus"][n] for n in upper for k in OPACIFICATION_KEYS)
    assert full.to_json_dict()["opacification_not_assessed"] == []
    json.dumps(d)


def test_a_sinus_the_labels_hold_nothing_of_is_named_not_found(
    phantom_case, fitted_nomogram
) -> None:
    from sinusapp.imaging.quantify import LABEL_IDS, REGIONS, sinuses_found

    volume, labels, lesion = phantom_case
    cut = labels.copy()
    cut[np.isin(cut, [LABEL_IDS["frontal"], LABEL_IDS["ethmoid_ant_R"]])] = 0
    result = analyse(
        volume,
        CLINICAL_FACTORS,
        predictor=_TruthPredictor(lesion),
        nomogram=fitted_nomogram,
        sinus_labels=cut,
    )
    ps = result.per_sinus
    assert ps is not None
    assert ps["frontal"] == {"volume_ml": 0.0} and ps["ethmoid_ant_R"] == {"volume_ml": 0.0}
    assert list(ps) == [r for r in REGIONS if r != "nasal_cavity"]  # label order
    assert sorted(sinuses_found(ps)[1]) == ["ethmoid_ant_R", "frontal"]
    d = result.to_json_dict()
    assert sorted(d["sinuses_not_found"]) == ["ethmoid_ant_R", "frontal"]
    assert d["opacification_not_assessed"] == []


def test_unknown_lesion_region_in_a_manifest_is_refused() -> None:
    from sinusapp.model.bundle import lesion_assessed_regions

    assert lesion_assessed_regions({}) is None
    assert lesion_assessed_regions({"lesion_regions": {"assessed": ["frontal"]}}) == {"frontal"}
    with pytest.raises(ValueError, match=r"unknown regions.*ethmoid_L"):
        lesion_assessed_regions({"lesion_regions": {"assessed": ["ethmoid_L"]}})
    with pytest.raises(ValueError, match="list of region names"):
        lesion_assessed_regions({"lesion_regions": {"assessed": "maxillary_L"}})


def test_per_sinus_automatic_and_from_the_predictor(phantom_case, fitted_nomogram) -> None:
    volume, _, lesion = phantom_case
    auto = analyse(
        volume, CLINICAL_FACTORS, predictor=_TruthPredictor(lesion), nomogram=fitted_nomogram
    )
    assert auto.sinus_labels_source == "automatic"
    assert auto.per_sinus is not None and {"maxillary_L", "maxillary_R"} <= set(auto.per_sinus)
    own = {"maxillary_L": {"volume_ml": 1.0, "opacified_ml": 0.5, "opacification_pct": 50.0}}
    kept = analyse(
        volume,
        CLINICAL_FACTORS,
        predictor=_TruthPredictor(lesion, per_sinus=own),
        nomogram=fitted_nomogram,
        sinus_labels=np.zeros(volume.shape, np.uint8),
    )
    assert kept.per_sinus == own and kept.sinus_labels_source == "predictor"


def test_a_region_located_on_opening_is_forwarded_to_the_predictor(
    phantom_case, fitted_nomogram
) -> None:
    """The GUI locates the region when it opens a series; the analysis hands it on
    (``region=``) instead of locating it again, and predictors that take no ``region`` keep
    working when there is none to give."""
    from sinusapp.model.preprocess import locate_sinus_region

    volume, _, lesion = phantom_case
    seen: list[dict] = []

    class Recording(_TruthPredictor):
        def predict(self, volume, **kw):
            seen.append(kw)
            return super().predict(volume, progress=kw.get("progress"))

    region = locate_sinus_region(volume)
    analyse(
        volume,
        CLINICAL_FACTORS,
        predictor=Recording(lesion),
        nomogram=fitted_nomogram,
        sinus_region=region,
    )
    assert seen[-1]["region"] is region
    analyse(volume, CLINICAL_FACTORS, predictor=_TruthPredictor(lesion), nomogram=fitted_nomogram)


def test_no_labels_on_a_ct_without_anatomy_leaves_per_sinus_empty(
    ct_folder: Path, fitted_nomogram
) -> None:
    result = analyse(
        load_volume(ct_folder),
        CLINICAL_FACTORS,
        predictor=FakePredictor(locate=False),
        nomogram=fitted_nomogram,
    )
    assert result.per_sinus is None and result.to_json_dict()["lund_mackay_total"] is None


def test_run_headless_reads_a_sinus_label_file(
    ct_folder: Path, tmp_path: Path, fitted_nomogram
) -> None:
    from sinusapp.imaging.quantify import BONE_HU, sinuses_found
    from sinusapp.synth.dicomio import write_label_nifti

    volume = load_volume(ct_folder)
    labels = np.zeros(volume.shape, np.uint8)
    labels[4:20, 5:40, 3:18] = 1  # maxillary_L where the fake puts lesion blobs
    labels[4:20, 5:40, 22:38] = 2
    path = tmp_path / "sinus_labels.nii.gz"
    write_label_nifti(labels=labels, affine=volume.affine, out_path=path)
    nomo_path = tmp_path / "nomogram.json"
    fitted_nomogram.save(nomo_path)
    out = run_headless(
        ct_folder,
        CLINICAL,
        json_path=tmp_path / "out" / "result.json",
        nomogram_path=nomo_path,
        predictor=FakePredictor(locate=False),
        sinus_labels_path=path,
    )
    assert out.result.sinus_labels_source == "given"
    ps = out.result.per_sinus
    assert ps is not None
    found, not_found = sinuses_found(ps)
    assert set(found) == {"maxillary_L", "maxillary_R"}
    # the label file holds no other sinus: named as not found, not left out
    assert len(not_found) == 6 and all(ps[n] == {"volume_ml": 0.0} for n in not_found)
    non_bone = (labels == 1) & (volume.array <= BONE_HU)  # bone voxels are not cavity
    assert ps["maxillary_L"]["volume_ml"] == pytest.approx(
        non_bone.sum() * volume.voxel_volume_ml, abs=0.002
    )
    data = json.loads((tmp_path / "out" / "result.json").read_text())
    assert data["per_sinus"] == json.loads(json.dumps(dict(ps)))
    assert sorted(data["sinuses_not_found"]) == sorted(not_found)


def test_segmentation_only_bundle_is_refused_with_a_message(
    ct_folder: Path, fitted_nomogram
) -> None:
    from sinusapp.errors import BundleError

    class SegOnly(FakePredictor):
        def predict(self, volume, **kw):
            return dataclasses.replace(super().predict(volume, **kw), dlr_score=None)

    with pytest.raises(BundleError, match="segmentation-only"):
        analyse(
            load_volume(ct_folder),
            {"asthma": True, "allergic_rhinitis": False, "eosinophils_per_ul": 200.0},
            predictor=SegOnly(locate=False),
            nomogram=fitted_nomogram,
        )


@pytest.mark.realdata
def test_seg_export_through_a_dicomdir(realct: Path, tmp_path: Path, fitted_nomogram) -> None:
    """`predict CD/DICOMDIR --seg` takes the source headers from the scan, not a folder walk."""
    nomo_path = tmp_path / "nomogram.json"
    fitted_nomogram.save(nomo_path)
    dicomdir = realct / "philips_ingenuity_skullphantom_cd" / "DICOMDIR"
    # its 5 mm brain series is never proposed (not a sinus-capable CT): chosen by UID
    (head,) = [s for s in scan(dicomdir).series if s.series_number == 201]
    out = run_headless(
        dicomdir,
        CLINICAL,
        series_uid=head.series_uid,
        seg_path=tmp_path / "seg.dcm",
        nomogram_path=nomo_path,
        predictor=FakePredictor(locate=False),
    )
    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == out.result.volume.info.series_uid
    referenced = {
        r.ReferencedSOPInstanceUID
        for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == set(out.result.volume.info.sop_instance_uids)
