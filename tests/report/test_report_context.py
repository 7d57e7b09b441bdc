"""ReportContext: every field of a known analysis, without reportlab."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sinusapp.nomogram import NomogramLayout
from sinusapp.pipeline import AnalysisResult, ModelInfo
from sinusapp.report import ReportContext
from sinusapp.report.context import choose_key_slices


def test_context_holds_every_field(result: AnalysisResult, nomogram) -> None:
    ctx = ReportContext.from_result(result, nomogram=nomogram, institution="ENT Clinic")
    # header / provenance
    assert ctx.product == "SinusApp"
    assert ctx.software_version == "0.1.0"
    assert ctx.model_name == "sinusapp-unet3d-synthetic"
    assert ctx.model_version == "1.0.0"
    assert ctx.model_sha256_short == result.model.sha256[:12]
    assert ctx.analysed_at_display == "2026-11-27 09:30 (UTC+01:00)"
    assert ctx.institution == "ENT Clinic"
    # identification
    patient = {lv.label: lv.value for lv in ctx.patient}
    assert patient == {
        "Name": "PHANTOM, Alice",
        "Patient ID": "SYN-0001",
        "Birth date": "1980-02-14",
        "Sex": "female",
    }
    study = {lv.label: lv.value for lv in ctx.study}
    assert study["Accession"] == "ACC-000123"
    assert study["Study date"] == "2026-11-20"
    assert study["Series UID"] == result.volume.info.series_uid
    assert "Sinus 1.0 bone (synthetic)" in study["Series"]
    assert study["Slices"].startswith("24 × 96 × 96")
    assert "2.50 mm between slices" in study["Spacing"]
    assert study["Kernel"] == "BONE"
    assert study["Scanner"] == "SinusApp Synth Phantom CT"
    # findings, clinical inputs with units and points
    assert [f.code for f in ctx.findings] == ["coverage_superior"]
    rows = {c.key: c for c in ctx.clinical}
    assert rows["asthma"].value == "yes" and rows["allergic_rhinitis"].value == "no"
    assert rows["eosinophils_per_ul"].value == "420"
    assert rows["eosinophils_per_ul"].unit == "cells/µL"
    assert rows["age"].unit == "years"
    assert rows["eosinophils_per_ul"].points == pytest.approx(result.points["eosinophils_per_ul"])
    assert rows["dlr_score"].value == "0.612"
    # imaging
    assert ctx.lesion_volume_ml == pytest.approx(result.lesion_volume_ml)
    assert {s.name for s in ctx.sinuses} == set(result.per_sinus)
    lm = {s.name: s.lund_mackay for s in ctx.sinuses}
    assert lm["maxillary_left"] == 1 and lm["ethmoid_left"] == 2 and lm["frontal"] == 0
    assert ctx.lund_mackay_total == 3 and ctx.lund_mackay_max == 12
    # risk
    assert ctx.probability == pytest.approx(result.probability)
    assert ctx.probability_ci95 == pytest.approx(result.probability_ci95)
    assert ctx.risk_group == result.risk_group
    assert ctx.cutoff == pytest.approx(0.38)
    assert "95 % CI" in ctx.probability_text
    # the GUI's wording (sinusapp.case.format_risk_group), the relation said in words
    where = "at or above" if result.risk_group == "high" else "below"
    assert ctx.risk_text.endswith(f"{where} the 38 % cutoff")
    assert isinstance(ctx.nomogram_layout, NomogramLayout)
    marks = {m.key: m for m in ctx.nomogram_layout.marks}
    assert marks["total_points"].value == pytest.approx(result.total_points)
    # texts
    assert "synthetic" in ctx.limitations[0] and "NOT validated" in ctx.limitations[0]
    assert ctx.not_for_clinical_use
    assert "He et al." in ctx.intended_use
    assert any(lv.label == "Training data" and "Synthetic" in lv.value for lv in ctx.model_card)
    assert ctx.signature_lines == ("Surgeon", "Signature", "Date")


def test_key_slices_show_the_largest_lesion_area(result: AnalysisResult) -> None:
    ctx = ReportContext.from_result(result)
    planes = {k.plane: k for k in ctx.key_slices}
    assert set(planes) == {"coronal", "axial"}
    mask = result.mask > 0
    axial = planes["axial"]
    per_slice = mask.sum(axis=(1, 2))
    assert per_slice[axial.index] == per_slice.max()
    coronal = planes["coronal"]
    per_row = mask.sum(axis=(0, 2))
    assert per_row[coronal.index] == per_row.max()
    for k in ctx.key_slices:
        assert k.image.dtype == np.uint8 and k.image.std() > 10
        assert k.model_contours and k.reference_contours == ()
        assert k.lesion_area_mm2 > 0
        assert k.scale_bar_mm in (1, 2, 5, 10, 20, 50, 100)
        h, w = k.image.shape
        for c in k.model_contours:  # inside the image, in (x, y) pixel coordinates
            assert c.shape[1] == 2
            assert (c[:, 0] >= 0).all() and (c[:, 0] <= w).all()
            assert (c[:, 1] >= 0).all() and (c[:, 1] <= h).all()
    assert dict(coronal.orientation) == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    assert dict(axial.orientation) == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    # lesion is in the patient's LEFT maxillary sinus → right half of a radiological image
    xs = np.concatenate([c[:, 0] for c in axial.model_contours])
    assert xs.mean() > axial.image.shape[1] / 2


def test_key_slice_orientation_survives_a_flipped_volume(result: AnalysisResult) -> None:
    """A volume stored superior-first, columns right-to-left, is displayed the same way."""
    vol = result.volume
    aff = vol.affine.copy()
    n_s, _, n_c = vol.shape
    # flip slice and column axes: index k' = n-1-k
    aff[:3, 3] = aff[:3, 3] + aff[:3, 0] * (n_s - 1) + aff[:3, 2] * (n_c - 1)
    aff[:3, 0] *= -1
    aff[:3, 2] *= -1
    flipped = dataclasses.replace(
        vol, array=np.ascontiguousarray(vol.array[::-1, :, ::-1]), affine=aff
    )
    mask = np.ascontiguousarray(result.mask[::-1, :, ::-1])
    a = choose_key_slices(vol, result.mask)
    b = choose_key_slices(flipped, mask)
    for ka, kb in zip(a, b, strict=True):
        assert ka.plane == kb.plane
        np.testing.assert_array_equal(ka.image, kb.image)
        assert dict(ka.orientation) == dict(kb.orientation)


def test_reference_mask_gives_blue_contours_and_dice(result: AnalysisResult) -> None:
    ref = np.roll(result.mask, 1, axis=2)
    ctx = ReportContext.from_result(result, reference_mask=ref)
    assert all(k.reference_contours for k in ctx.key_slices)
    assert 0.5 < ctx.dice_vs_reference < 1.0
    with pytest.raises(ValueError, match="CT grid"):
        ReportContext.from_result(result, reference_mask=ref[:, :10])


def test_empty_mask_and_no_nomogram(result: AnalysisResult) -> None:
    empty = dataclasses.replace(result, mask=np.zeros_like(result.mask), per_sinus=None)
    ctx = ReportContext.from_result(empty, page_size="Letter")
    assert ctx.nomogram_layout is None
    assert all(k.model_contours == () and k.lesion_area_mm2 == 0 for k in ctx.key_slices)
    assert ctx.sinuses == () and ctx.lund_mackay_total is None
    assert ctx.page_size == "Letter"


def test_model_provenance_drives_the_limitations(result: AnalysisResult) -> None:
    clinical = dataclasses.replace(
        result, model=ModelInfo("hospital-model", "2.0", "ab" * 32, trained_on_synthetic=False)
    )
    ctx = ReportContext.from_result(clinical)
    assert not ctx.not_for_clinical_use
    assert not any("synthetic" in t for t in ctx.limitations)
    unknown = ReportContext.from_result(dataclasses.replace(result, model=None))
    assert unknown.not_for_clinical_use
    assert "No model provenance" in unknown.limitations[0]
    assert unknown.header_model_text == "model: not recorded"


def test_wrong_nomogram_is_refused(result: AnalysisResult, nomogram) -> None:
    other = dataclasses.replace(result, probability=0.01)
    with pytest.raises(ValueError, match="nomogram that produced"):
        ReportContext.from_result(other, nomogram=nomogram)
    with pytest.raises(ValueError, match="page_size"):
        ReportContext.from_result(result, page_size="A5")  # type: ignore[arg-type]


def test_report_never_prints_100_percent(result: AnalysisResult) -> None:
    """Issue 12 item 3: an eosinophil count far beyond the nomogram gave "100 %"."""
    near_one = dataclasses.replace(result, probability=0.9996, probability_ci95=(0.997, 0.99995))
    ctx = ReportContext.from_result(near_one)
    assert ctx.probability_text.startswith(">99 %") and "100" not in ctx.probability_text


def test_report_ci_reads_like_the_screen(result: AnalysisResult) -> None:
    """One formatter for the GUI and the report: "59 % to >99 %", never "59–>99 %"."""
    from sinusapp.case import format_ci95, format_probability

    far = dataclasses.replace(result, probability=0.97, probability_ci95=(0.59, 0.9996))
    ctx = ReportContext.from_result(far)
    assert ctx.probability_text == "97 % (95 % CI 59 % to >99 %)"
    assert (
        ctx.probability_text == f"{format_probability(0.97)} (95 % CI {format_ci95(0.59, 0.9996)})"
    )
    low = dataclasses.replace(result, probability=0.02, probability_ci95=(0.001, 0.06))
    assert ReportContext.from_result(low).probability_text == "2 % (95 % CI <1 % to 6 %)"


def test_sinus_not_found_is_neither_listed_nor_graded(result: AnalysisResult, nomogram) -> None:
    per_sinus = {k: dict(v) for k, v in result.per_sinus.items()}
    per_sinus["ethmoid_left"] = {"volume_ml": 0.0, "opacified_ml": 0.0, "opacification_pct": 0.0}
    ctx = ReportContext.from_result(
        dataclasses.replace(result, per_sinus=per_sinus), nomogram=nomogram
    )
    assert "ethmoid_left" not in {s.name for s in ctx.sinuses}
    assert len(ctx.sinuses) == len(per_sinus) - 1
    # the full result grades ethmoid_left 2 (97 %); without it the sum loses those 2 points
    # and the maximum one region's 2, instead of counting a missing sinus as clear
    assert ctx.lund_mackay_total == 1 and ctx.lund_mackay_max == 10
    assert "not graded" in ctx.lund_mackay_note and "thmoid" in ctx.lund_mackay_note


def test_sinus_not_assessed_is_listed_with_its_volume_and_not_graded(
    result: AnalysisResult, nomogram
) -> None:
    """A region the model's lesion head does not assess (volume only): listed, not graded."""
    per_sinus = {k: dict(v) for k, v in result.per_sinus.items()}
    per_sinus["ethmoid_left"] = {"volume_ml": 3.2}
    ctx = ReportContext.from_result(
        dataclasses.replace(result, per_sinus=per_sinus), nomogram=nomogram
    )
    row = next(r for r in ctx.sinuses if r.name == "ethmoid_left")
    assert row.volume_ml == 3.2 and row.opacification_pct is None and row.lund_mackay is None
    assert len(ctx.sinuses) == len(per_sinus)
    # as for a sinus not found, its 2 points (97 % in the full result) leave the sum
    assert ctx.lund_mackay_total == 1 and ctx.lund_mackay_max == 10
    assert "Opacification not assessed" in ctx.lund_mackay_note
    assert f"so not graded: {row.label}." in ctx.lund_mackay_note
