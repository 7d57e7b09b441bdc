"""Saved-cases list, DICOM tag viewer, skipped files, first/last slice keys, crosshair toggle."""

from __future__ import annotations

import pytest
from PySide6 import QtWidgets

from sinusapp.imaging.planes import Plane

pytestmark = pytest.mark.timeout(120)


def _open(qtbot, w, folder):
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        w.import_path(folder, open_after=True)
    return w.session.volume


def test_saved_cases_list_opens_a_case(qtbot, make_window, dicom_folder):
    w = make_window()
    vol = _open(qtbot, w, dicom_folder)
    f = w.form
    f.asthma.yes.click()
    f.allergic_rhinitis.no.click()
    f.eosinophils.setText("450")
    f.eosinophils.textEdited.emit("450")
    with qtbot.waitSignal(w.session.result_changed, timeout=30_000):
        w.start_analysis()
    w.set_volume(None)
    dlg = w.show_cases()
    assert dlg is not None and dlg.table.rowCount() == 1
    row = [dlg.table.item(0, c).text() for c in range(dlg.table.columnCount())]
    assert row[0] == vol.info.patient_id
    assert row[3].endswith(("(high risk)", "(low risk)")) and "%" in row[3]
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        dlg.open_button.click()
    assert w.series_uid == vol.info.series_uid
    assert w.session.result is not None and w.form.eosinophils.text() == "450"


def test_records_list_cases_newest_first(tmp_path):
    from sinusapp.records import CaseRecords

    r = CaseRecords(tmp_path / "r.sqlite")
    r.save_clinical(series_uid="1.1", clinical={"eosinophils": "1"})
    r.save_clinical(series_uid="1.2", clinical={"eosinophils": "2"})
    r.save_clinical(series_uid="1.1", clinical={"eosinophils": "3"})
    cases = r.list_cases()
    assert len(cases) == 2
    assert {c.series_uid: c.clinical["eosinophils"] for c in cases} == {"1.1": "3", "1.2": "2"}
    with pytest.raises(ValueError, match="limit"):
        r.list_cases(limit=0)


def test_tag_viewer_shows_and_filters_the_header(qtbot, make_window, dicom_folder):
    w = make_window()
    vol = _open(qtbot, w, dicom_folder)
    dlg = w.show_tags()
    assert dlg is not None
    names = dlg.visible_names()
    assert "Patient ID" in names and "Modality" in names and "Series Instance UID" in names
    values = {
        dlg.tree.topLevelItem(i).text(1): dlg.tree.topLevelItem(i).text(3)
        for i in range(dlg.tree.topLevelItemCount())
    }
    assert values["Series Instance UID"] == vol.info.series_uid
    dlg.filter.setText("modality")
    assert dlg.visible_names() == ["Modality"]
    dlg.close()


def test_skipped_files_are_listed(qtbot, make_window, dicom_folder):
    (dicom_folder / "notes.txt").write_text("not a DICOM file", encoding="utf-8")
    w = make_window()
    _open(qtbot, w, dicom_folder)
    assert w.skipped_button.isVisibleTo(w) and "1 file(s) skipped" in w.skipped_button.text()
    dlg = w.show_skipped()
    assert dlg.table.rowCount() == 1 and dlg.table.item(0, 0).text().endswith("notes.txt")
    assert dlg.table.item(0, 1).text()
    dlg.close()


def test_first_last_slice_keys_and_crosshair_toggle(qtbot, make_window, dicom_folder):
    w = make_window()
    _open(qtbot, w, dicom_folder)
    v = w.viewer
    n = v.model.geometry[Plane.CORONAL].n_slices
    v.last_action.trigger()
    assert v.model.slice_index(Plane.CORONAL) == n - 1
    v.first_action.trigger()
    assert v.model.slice_index(Plane.CORONAL) == 0
    v.model.set_triple(True)
    axial = v.views[Plane.AXIAL]
    assert axial.vline.isVisible()
    v.crosshair_action.trigger()
    assert not v.model.crosshair and not axial.vline.isVisible() and not axial.hline.isVisible()
    v.crosshair_action.trigger()
    assert axial.vline.isVisible()
    assert isinstance(v, QtWidgets.QWidget)


def test_smooth_interpolation_and_shadowed_corner_text(qtbot, make_window, dicom_folder):
    from PySide6 import QtGui

    w = make_window()
    _open(qtbot, w, dicom_folder)
    view = w.viewer.current_view()
    smooth = QtGui.QPainter.RenderHint.SmoothPixmapTransform
    assert view.graphics.renderHints() & smooth
    w.viewer.smooth_action.trigger()
    assert not (view.graphics.renderHints() & smooth)
    assert isinstance(view.corner["bl"].graphicsEffect(), QtWidgets.QGraphicsDropShadowEffect)
