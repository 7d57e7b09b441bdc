"""Issue 12 remainder: the surgeon's tools (thumbnails, measurements, ROI, SEG reference,
gate findings per series, quality read back, nomogram ticks)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.timeout(120)


def _import_and_open(qtbot, window, folder):
    with qtbot.waitSignal(window.session.volume_changed, timeout=30_000):
        window.import_path(folder, open_after=True)
    assert window.session.volume is not None
    return window.session.volume


def _analyse(qtbot, window):
    f = window.form
    f.asthma.yes.click()
    f.allergic_rhinitis.no.click()
    f.eosinophils.setText("450")
    f.eosinophils.textEdited.emit("450")
    with qtbot.waitSignal(window.session.result_changed, timeout=30_000):
        window.start_analysis()
    assert window.session.result is not None
    return window.session.result


def test_reopened_case_keeps_the_quality_findings(qtbot, make_window, dicom_folder):
    w = make_window()
    vol = _import_and_open(qtbot, w, dicom_folder)
    result = _analyse(qtbot, w)
    assert result.quality_checked
    codes = [f.code for f in result.quality]
    w.close()
    w2 = make_window()
    with qtbot.waitSignal(w2.session.volume_changed, timeout=30_000):
        w2.open_series(vol.info.series_uid)
    again = w2.session.result
    assert again is not None and again.quality_checked
    assert [f.code for f in again.quality] == codes
    assert "not run" not in w2.results.quality_banner.text()
