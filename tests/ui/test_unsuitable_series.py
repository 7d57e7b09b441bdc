"""Issue 12: a dropped folder whose only series is no sinus-capable CT (a 5-slice cardiac
series, a localizer, a 6 mm soft-kernel brain series, an MR) is not opened silently; the
surgeon sees why and may open it anyway, and the warning then stays above the result and in
the report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest
from PySide6 import QtCore, QtGui

from sinusapp.case import UNSUITABLE_SERIES
from tests._dicomgen import write_volume_series

pytestmark = pytest.mark.timeout(120)


def _cardiac(vol):
    """5 slices, like the "SmartScore - Gated" series of the multi-patient DICOMDIR."""
    return dataclasses.replace(vol, array=vol.array[:5].copy()), "SmartScore - Gated"


def _brain(vol):
    """24 slices of 6 mm in a soft kernel (the Philips CD's 5 mm brain series)."""
    thick = dataclasses.replace(
        vol,
        affine=vol.affine @ np.diag([4.0, 1.0, 1.0, 1.0]),
        info=dataclasses.replace(vol.info, convolution_kernel="UB"),
    )
    return thick, "BRAIN 6MM"


def _localizer(vol):
    return dataclasses.replace(vol, array=vol.array[:3].copy()), "Topogram 0.6 T20s"


CASES = {
    "cardiac_5_slices": (_cardiac, "only 5 slices"),
    "brain_6mm_soft": (_brain, "too thick"),
    "localizer": (_localizer, "localizer"),
    "mr": (lambda vol: (vol, "T1 SE"), "not CT"),
}


def _write(tmp_path, phantom, case):
    make, _ = CASES[case]
    vol, description = make(phantom[0])
    folder = tmp_path / case
    paths = write_volume_series(folder, vol, series_number=7, description=description)
    if case == "mr":
        for p in paths:
            ds = pydicom.dcmread(p)
            ds.Modality = "MR"
            ds.save_as(p)
    return folder, description


def _drop(window, folder):
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(folder))])
    window.dropEvent(
        QtGui.QDropEvent(
            QtCore.QPointF(10, 10),
            QtCore.Qt.DropAction.CopyAction,
            mime,
            QtCore.Qt.MouseButton.LeftButton,
            QtCore.Qt.KeyboardModifier.NoModifier,
        )
    )


def _settle(qtbot, window):
    qtbot.waitUntil(lambda: window.import_job is None, timeout=30_000)
    qtbot.wait(100)  # an open would have started a load job by now


@pytest.mark.parametrize("case", sorted(CASES))
def test_dropped_folder_whose_only_series_is_unsuitable_is_not_opened(
    qtbot, make_window, tmp_path, phantom, case
):
    folder, description = _write(tmp_path, phantom, case)
    w = make_window()
    _drop(w, folder)
    _settle(qtbot, w)
    (uid,) = list(w.browser._entries)
    assert not w.browser._entries[uid][2].candidate.eligible
    # nothing opened, nothing loading
    assert w.session.volume is None and w.viewer.model.volume is None
    assert w.load_job is None
    # the browser shows the series (selected, reasons in its details); the dialog says why
    assert w.browser.selected_series_uid() == uid
    assert CASES[case][1] in w.browser.details.text()
    dlg = w.unsuitable_dialog
    assert dlg is not None and dlg.isVisible()
    assert dlg.series_uids() == [uid]
    row = dlg.tree.topLevelItem(0)
    assert description in row.text(0) and CASES[case][1] in row.text(1)
    assert dlg.close_button.isDefault() and not dlg.open_button.isDefault()
    dlg.close_button.click()
    assert w.unsuitable_dialog is None and w.session.volume is None


def test_open_anyway_keeps_the_warning_above_the_result_and_in_the_report(
    qtbot, make_window, tmp_path, phantom
):
    from sinusapp.report import ReportContext

    folder, _ = _write(tmp_path, phantom, "cardiac_5_slices")
    w = make_window()
    w.import_path(folder, open_after=True)
    _settle(qtbot, w)
    assert w.session.volume is None
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        w.unsuitable_dialog.open_button.click()
    vol = w.session.volume
    assert vol is not None and vol.shape[0] == 5
    assert [f.code for f in vol.findings if f.code == UNSUITABLE_SERIES] == [UNSUITABLE_SERIES]
    # before the analysis: above Analyse
    assert w.series_warning.isVisibleTo(w) and "only 5 slices" in w.series_warning.text()
    f = w.form
    f.asthma.yes.click()
    f.allergic_rhinitis.no.click()
    f.eosinophils.setText("450")
    f.eosinophils.textEdited.emit("450")
    with qtbot.waitSignal(w.session.result_changed, timeout=30_000):
        w.start_analysis()
    result = w.session.result
    assert result is not None
    assert UNSUITABLE_SERIES in {x.code for x in result.warnings}
    # above the numbers on screen, not only at the bottom of the panel
    banner = w.results.quality_banner
    assert banner.isVisibleTo(w.results) and "not a sinus-capable CT" in banner.text()
    assert "not a sinus-capable CT" not in w.results.warnings.text()
    # in the report: listed under Input quality, and the summary never says "no problems"
    ctx = ReportContext.from_result(result)
    assert UNSUITABLE_SERIES in {x.code for x in ctx.findings} and ctx.has_quality_problem
    # and after a restart (the record keeps it)
    w.close()
    w2 = make_window()
    with qtbot.waitSignal(w2.session.volume_changed, timeout=30_000):
        w2.open_series(vol.info.series_uid)
    again = w2.session.result
    assert again is not None
    assert [x.code for x in again.warnings].count(UNSUITABLE_SERIES) == 1
    assert "not a sinus-capable CT" in w2.results.quality_banner.text()


def test_a_suitable_series_still_opens_and_a_dropped_folder_never_opens_another(
    qtbot, make_window, tmp_path, phantom, dicom_folder
):
    """The proposal opens at once; dropping the unsuitable folder (again) never opens the
    catalogue's other proposal, and dropping a catalogued folder again opens its own."""
    w = make_window()
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        w.import_path(dicom_folder, open_after=True)
    good = w.session.volume.info.series_uid
    assert w.series_warning.isHidden()
    assert w.unsuitable_dialog is None
    w.set_volume(None)
    folder, _ = _write(tmp_path, phantom, "cardiac_5_slices")
    for _ in range(2):  # the second drop imports nothing new
        w.import_path(folder, open_after=True)
        _settle(qtbot, w)
        assert w.session.volume is None and w.unsuitable_dialog is not None
        w.unsuitable_dialog.close()
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        w.import_path(dicom_folder, open_after=True)  # catalogued already
    assert w.session.volume.info.series_uid == good


@pytest.mark.parametrize(
    ("lines", "grows", "scrolls"), [(3, False, False), (11, True, False), (40, True, True)]
)
def test_series_details_are_as_tall_as_their_text_up_to_a_cap(
    qtbot, make_window, tmp_path, phantom, monkeypatch, lines, grows, scrolls
):
    """The GE brain head's details (tilt, spacing, thickness, kernel: ~30 wrapped lines)
    squeezed the study tree to three rows at 1280 x 800. The box is now as tall as the text
    (never lower than the 164 px preview beside it), at most 240 px, and scrolls beyond."""
    from sinusapp.ui.browser import _DETAILS_MAX_PX, DicomBrowser

    folder, _ = _write(tmp_path, phantom, "brain_6mm_soft")
    w = make_window()
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    _drop(w, folder)
    _settle(qtbot, w)
    text = "<br>".join(f"⚠ warning {i}" for i in range(lines))
    monkeypatch.setattr(DicomBrowser, "_candidate_text", lambda self, se: text)
    w.browser._on_selection_changed()  # the real path: text set, box re-measured
    qtbot.wait(50)
    box, preview = w.browser.details_scroll, w.browser.thumb.height()
    assert "warning 0" in w.browser.details.text()
    assert preview <= box.height() <= _DETAILS_MAX_PX
    assert (box.height() > preview) is grows, box.height()
    assert (box.verticalScrollBar().maximum() > 0) is scrolls
    assert w.browser.tree.height() >= 250, w.browser.tree.height()
