"""The input plausibility gate in the analysis flow: a severe finding stops ``analyse`` before
the model runs; a warning reaches result.json, the report text and the rendered PDF."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sinusapp.errors import InputQualityError
from sinusapp.model import FakePredictor
from sinusapp.pipeline import analyse

DEMO_CT = Path(__file__).resolve().parent.parent / "assets" / "demo" / "ct"
CLINICAL = {"asthma": True, "allergic_rhinitis": False, "eosinophils_per_ul": 450.0}
NO_PROBLEMS = "No input quality problems"


@pytest.fixture(scope="module")
def demo():
    if not DEMO_CT.is_dir():
        pytest.skip(f"demo study not found at {DEMO_CT}")
    from sinusapp.dicom import load_volume

    return load_volume(DEMO_CT)


class _CountingPredictor(FakePredictor):
    calls = 0

    def predict(self, volume, **kw):
        type(self).calls += 1
        return super().predict(volume, **kw)


def test_uncalibrated_air_stops_the_analysis_before_the_model(demo, fitted_nomogram) -> None:
    a = demo.array.copy()
    a[a < -800] += 480  # air reads about -520 HU, like the uncalibrated harvard02 head
    predictor = _CountingPredictor()
    with pytest.raises(InputQualityError) as info:
        analyse(replace(demo, array=a), CLINICAL, predictor=predictor, nomogram=fitted_nomogram)
    text = str(info.value)
    assert "Air reads -5" in text and "expected about −1000 HU" in text
    assert "calibrated scanner" in text  # what to do
    assert info.value.exit_code == 2
    assert [f.code for f in info.value.findings if f.severity == "error"] == ["air_calibration"]
    assert _CountingPredictor.calls == 0  # no number was computed


def test_ct_without_sinus_cavity_stops_with_a_finding(fitted_nomogram) -> None:
    from sinusapp.model.testing import make_chest_phantom

    with pytest.raises(InputQualityError, match="no_sinus_cavity") as info:
        analyse(make_chest_phantom(), CLINICAL, predictor=FakePredictor(), nomogram=fitted_nomogram)
    assert "Choose the patient's" in str(info.value)


def test_warning_reaches_result_json_and_report(demo, fitted_nomogram, tmp_path: Path) -> None:
    from sinusapp.report import ReportContext, render_pdf

    soft = replace(demo, info=replace(demo.info, convolution_kernel="STANDARD"))
    result = analyse(soft, CLINICAL, predictor=FakePredictor(), nomogram=fitted_nomogram)
    assert result.quality_checked
    kernel = next(f for f in result.quality if f.code == "soft_kernel")
    assert kernel.severity == "warning" and "STANDARD" in kernel.message

    data = json.loads(json.dumps(result.to_json_dict()))
    assert "warnings" in data  # kept as before
    q = data["quality"]
    assert q["checked"] is True and q["passed"] is True  # warnings do not fail the gate
    assert "soft_kernel" in [f["code"] for f in q["findings"]]

    ctx = ReportContext.from_result(result, nomogram=fitted_nomogram)
    items = ctx.text_items()
    assert kernel.message in items
    assert not any(NO_PROBLEMS in t for t in items)

    pdfium = pytest.importorskip("pypdfium2")
    pdf = render_pdf(ctx, tmp_path / "report.pdf")
    doc = pdfium.PdfDocument(str(pdf))
    text = " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    flat = " ".join(text.split())
    assert "soft-tissue kernel (STANDARD)" in flat
    assert "Input quality warnings were found" in flat and NO_PROBLEMS not in flat


def test_report_never_says_no_problems_unless_the_gate_ran() -> None:
    from sinusapp.report import ReportContext
    from sinusapp.report._sample import sample_result

    result = replace(sample_result(), warnings=(), quality=(), quality_checked=False)
    ctx = ReportContext.from_result(result)
    assert "were not run" in ctx.quality_summary and NO_PROBLEMS not in ctx.quality_summary
    checked = ReportContext.from_result(replace(result, quality_checked=True))
    assert checked.quality_summary.startswith(NO_PROBLEMS)
    assert result.to_json_dict()["quality"] == {"checked": False, "passed": False, "findings": []}


def test_headless_predict_writes_the_quality_findings(tmp_path: Path, fitted_nomogram) -> None:
    if not DEMO_CT.is_dir():
        pytest.skip(f"demo study not found at {DEMO_CT}")
    from sinusapp.headless import run_headless

    nomo = tmp_path / "nomogram.json"
    fitted_nomogram.save(nomo)
    out = run_headless(
        DEMO_CT,
        {"asthma": "no", "allergic_rhinitis": "no", "eosinophils": 200},
        json_path=tmp_path / "result.json",
        nomogram_path=nomo,
        predictor=FakePredictor(),
    )
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["quality"]["checked"] is True and data["quality"]["passed"] is True
    codes = {f["code"] for f in data["quality"]["findings"]}
    # the demo itself passes the acquisition and region checks (any finding is about the
    # fake predictor's blobs, not the input)
    assert codes <= {"lesion_outside_cavities", "lesion_outside_region"}, codes
    assert np.isclose(out.result.dlr_score, data["dlr_score"])
