"""Results panel and session: per-sinus table, what-if on the DLR-score, reset."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sinusapp.ui.results import ResultsPanel
from sinusapp.ui.session import CaseSession


def _result(per_sinus=None):
    return SimpleNamespace(
        dlr_score=0.4,
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
            {
                "maxillary_left": {"volume_ml": 15.2, "opacification_pct": 62.0},
                "ethmoid_right": {"volume_ml": 4.0, "opacification_pct": 90.0},
            }
        )
    )
    assert panel.lesion.text() == "12.3 mL"
    assert "sinus_unet 1.0" in panel.model.text() and "synthetic" in panel.model.text()
    assert panel.table.rowCount() == 2 and panel.table.item(0, 2).text() == "62 %"
    assert f"{s.prediction.probability:.0%}" in panel.headline.text()
    assert panel.risk.text().startswith(("HIGH", "LOW"))
    p0 = s.prediction.probability
    s.set_factor("dlr_score", 0.95)
    assert s.prediction.probability > p0 and s.is_what_if
    assert "(what-if)" in panel.dlr.text() and not panel.reset_button.isHidden()
    panel.reset_button.click()
    assert s.prediction.probability == pytest.approx(p0) and not s.is_what_if
    s.set_result(_result(None))
    assert panel.table.isHidden() and not panel.no_sinus.isHidden()


def test_invalid_form_gives_no_prediction(nomogram):
    s = CaseSession(nomogram=nomogram)
    s.set_result(_result())
    s.set_clinical({"asthma": True, "allergic_rhinitis": False, "eosinophils": "-1"})
    assert s.prediction is None and "clinical form" in s.prediction_error
    s.set_factor("eosinophils_per_ul", 500.0)  # what-if writes a valid value back
    assert s.raw_clinical["eosinophils"] == "500" and s.prediction is not None


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
    s.set_result(_result())
    lay = view.layout_obj
    row = lay.row("asthma")
    x_no = next(t.x for t in row.ticks if t.label == "No")
    scene_pt = view.view.mapViewToScene(QtCore.QPointF(x_no, row.y))
    pos = view.graphics.mapFromScene(scene_pt)
    p0 = s.prediction.probability
    qtbot.mouseClick(view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
    assert s.raw_clinical["asthma"] is False
    assert s.prediction.probability < p0
    assert "what-if" in view.summary.text()
