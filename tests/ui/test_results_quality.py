"""The input plausibility gate's findings are shown above the result (issue 12 item 2)."""

from __future__ import annotations

from types import SimpleNamespace

from sinusapp.findings import Finding, Severity
from sinusapp.ui.results import ResultsPanel
from sinusapp.ui.session import CaseSession


def _result(nomogram, *, quality, checked):
    from sinusapp.clinical import ClinicalInputs

    inputs = ClinicalInputs.from_dict(
        {"asthma": True, "allergic_rhinitis": False, "eosinophils": "300"}
    )
    nom = nomogram.predict(dlr_score=0.4, **inputs.nomogram_factors())
    return SimpleNamespace(
        dlr_score=0.4,
        clinical_inputs=inputs.to_dict(),
        probability=nom.probability,
        probability_ci95=nom.ci95,
        risk_group=nom.risk_group,
        cutoff=nom.cutoff,
        total_points=nom.total_points,
        lesion_volume_ml=12.3,
        per_sinus=None,
        warnings=(),
        quality=quality,
        quality_checked=checked,
        model=None,
    )


def test_banner_shows_warnings_or_that_the_checks_did_not_run(qtbot, nomogram):
    s = CaseSession(nomogram=nomogram)
    panel = ResultsPanel(s)
    qtbot.addWidget(panel)
    s.set_clinical({"asthma": True, "allergic_rhinitis": False, "eosinophils": "300"})
    assert panel.quality_banner.isHidden()
    thick = Finding("thick_slices", Severity.WARNING, "Slices are 5.0 mm thick", 5.0, "mm")
    info = Finding("edge_width", Severity.INFO, "edge width 1.6 mm", 1.6, "mm")
    s.set_result(_result(nomogram, quality=(thick, info), checked=True))
    assert not panel.quality_banner.isHidden()
    text = panel.quality_banner.text()
    assert "Slices are 5.0 mm thick" in text and "edge width" not in text
    # checked and clean: no banner
    s.set_result(_result(nomogram, quality=(info,), checked=True))
    assert panel.quality_banner.isHidden()
    # a result without the gate (e.g. restored from elsewhere): say so
    s.set_result(_result(nomogram, quality=(), checked=False))
    assert not panel.quality_banner.isHidden() and "not run" in panel.quality_banner.text()
