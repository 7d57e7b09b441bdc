"""Results panel and session: per-sinus table, what-if on the DLR-score, reset."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sinusapp.case import format_ci95, format_probability
from sinusapp.ui.results import ResultsPanel
from sinusapp.ui.session import CaseSession


def _result(nomogram, per_sinus=None, raw=None):
    """A stand-in for an AnalysisResult of the entries ``raw`` with DLR-score 0.4."""
    from sinusapp.clinical import ClinicalInputs

    inputs = ClinicalInputs.from_dict(
        raw or {"asthma": True, "allergic_rhinitis": False, "eosinophils": "300"}
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
        lesion_volume_ml=12.34,
        per_sinus=per_sinus,
        warnings=(),
        model=SimpleNamespace(name="sinus_unet", version="1.0", trained_on_synthetic=True),
    )


def test_panel_shows_numbers_table_and_what_if(qtbot, nomogram):
    s = CaseSession(nomogram=nomogram)
    panel = ResultsPanel(s)
    qtbot.addWidget(panel)
    s.set_clinical({"asthma": True, "allergic_rhinitis": False, "eosinophils": "300"})
    assert "run the analysis" in panel.headline.text()
    s.set_result(
        _result(
            nomogram,
            {
                "maxillary_left": {"volume_ml": 15.2, "opacification_pct": 62.0},
                "ethmoid_right": {"volume_ml": 4.0, "opacification_pct": 90.0},
            },
        )
    )
    assert panel.lesion.text() == "12.3 mL"
    assert "sinus_unet 1.0" in panel.model.text() and "synthetic" in panel.model.text()
    assert panel.table.rowCount() == 2 and panel.table.item(0, 2).text() == "62 %"
    assert format_probability(s.prediction.probability) in panel.headline.text()
    assert panel.risk.text().startswith(("High risk: ", "Low risk: "))
    p0 = s.prediction.probability
    s.set_factor("dlr_score", 0.95)
    assert s.prediction.probability > p0 and s.is_what_if
    # the panel keeps the patient's analysed risk; the what-if is one labelled extra line
    assert panel.dlr.text() == "0.400"
    head = panel.headline.text()
    assert head.index(format_probability(p0)) < head.index("What-if")
    assert format_probability(s.prediction.probability) in head and "not saved" in head
    assert not panel.reset_button.isHidden()
    panel.reset_button.click()
    assert s.prediction.probability == pytest.approx(p0) and not s.is_what_if
    assert "What-if" not in panel.headline.text()
    s.set_result(_result(nomogram, None))
    assert panel.table.isHidden() and not panel.no_sinus.isHidden()


def test_what_if_leaves_the_entries_alone(nomogram):
    s = CaseSession(nomogram=nomogram)
    raw = {"asthma": True, "allergic_rhinitis": False, "eosinophils": "300"}
    s.set_clinical(raw)
    s.set_result(_result(nomogram))
    entered = []
    s.clinical_changed.connect(entered.append)
    s.set_factor("eosinophils_per_ul", 900.0)
    assert s.is_what_if and s.raw_clinical == raw and entered == []
    assert s.prediction.inputs["eosinophils_per_ul"] == 900.0
    assert s.result.clinical_inputs["eosinophils_per_ul"] == 300.0


def test_result_shows_more_than_99_not_100(qtbot, nomogram):
    s = CaseSession(nomogram=nomogram)
    panel = ResultsPanel(s)
    qtbot.addWidget(panel)
    r = _result(nomogram)
    r.probability, r.probability_ci95 = 0.9996, (0.998, 0.9999)
    s.set_clinical({"asthma": True, "allergic_rhinitis": False, "eosinophils": "300"})
    s.set_result(r)
    assert ">99 %" in panel.headline.text() and "100" not in panel.headline.text()


def test_real_mouse_click_on_nomogram_axis_changes_value(qtbot, nomogram):
    from PySide6 import QtCore

    from sinusapp.ui.nomogram_view import NomogramView

    s = CaseSession(nomogram=nomogram)
    view = NomogramView(s)
    qtbot.addWidget(view)
    view.resize(900, 400)
    view.show()
    qtbot.waitExposed(view)
    s.set_clinical({"asthma": True, "allergic_rhinitis": False, "eosinophils": "300"})
    s.set_result(_result(nomogram))
    lay = view.layout_obj
    row = lay.row("asthma")
    x_no = next(t.x for t in row.ticks if t.label == "No")
    scene_pt = view.view.mapViewToScene(QtCore.QPointF(x_no, row.y))
    pos = view.graphics.mapFromScene(scene_pt)
    p0 = s.prediction.probability
    qtbot.mouseClick(view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
    assert s.raw_clinical["asthma"] is True  # the what-if does not touch the entries
    assert s.prediction.inputs["asthma"] == 0.0
    assert s.prediction.probability < p0
    assert "what-if" in view.summary.text()


def test_sinus_not_found_is_not_shown_as_clear(qtbot, nomogram):
    s = CaseSession(nomogram=nomogram)
    panel = ResultsPanel(s)
    qtbot.addWidget(panel)
    s.set_clinical({"asthma": True, "allergic_rhinitis": False, "eosinophils": "300"})
    s.set_result(
        _result(
            nomogram,
            {
                "maxillary_L": {"volume_ml": 15.2, "opacification_pct": 62.0, "lund_mackay": 1},
                "ethmoid_ant_L": {"volume_ml": 0.0, "opacification_pct": 0.0, "lund_mackay": 0},
            },
        )
    )
    assert panel.table.rowCount() == 1
    assert panel.table.item(0, 0).text() == "maxillary L"
    assert "ethmoid ant L" in panel.table.toolTip()
    assert panel.lund_mackay.text().startswith("1 / 2 (1 regions graded")
    assert "not found: ethmoid ant L" in panel.lund_mackay.text()


def test_sinus_not_assessed_is_shown_as_such_not_as_clear(qtbot, nomogram):
    s = CaseSession(nomogram=nomogram)
    panel = ResultsPanel(s)
    qtbot.addWidget(panel)
    s.set_clinical({"asthma": True, "allergic_rhinitis": False, "eosinophils": "300"})
    s.set_result(
        _result(
            nomogram,
            {
                "maxillary_L": {"volume_ml": 15.2, "opacification_pct": 62.0, "lund_mackay": 1},
                "frontal": {"volume_ml": 3.4},
            },
        )
    )
    assert panel.table.rowCount() == 2
    assert [panel.table.item(1, c).text() for c in range(4)] == [
        "frontal",
        "3.4",
        "not assessed",
        "—",
    ]
    assert "not assessed" in panel.table.toolTip() and "frontal" in panel.table.toolTip()
    assert panel.lund_mackay.text().startswith("1 / 2 (1 regions graded")
    assert "not assessed: frontal" in panel.lund_mackay.text()


def test_ci_beyond_the_nomogram_reads_well_in_the_panel_and_the_nomogram(qtbot, nomogram):
    """Issue 12: the CI of a risk beyond the nomogram read "59 %–>99 %"."""
    from sinusapp.ui.nomogram_view import NomogramView

    s = CaseSession(nomogram=nomogram)
    panel, view = ResultsPanel(s), NomogramView(s)
    for w in (panel, view):
        qtbot.addWidget(w)
    raw = {"asthma": True, "allergic_rhinitis": True, "eosinophils": "2400"}
    s.set_clinical(raw)
    r = _result(nomogram, raw=raw)
    r.probability_ci95 = (0.59, 0.9996)
    s.set_result(r)
    head = panel.headline.text()
    assert "95 % CI 59 % to >99 %" in head and "–&gt;" not in head and "–>" not in head
    lo, hi = s.prediction.ci95
    assert f"95 % CI {format_ci95(lo, hi)})" in view.summary.text()
    assert "–>" not in view.summary.text() and "–<" not in view.summary.text()
