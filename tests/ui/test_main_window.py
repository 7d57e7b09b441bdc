"""End-to-end GUI tests: import → tree → open → coronal → form → analyse → nomogram what-if."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from sinusapp.case import format_probability
from sinusapp.imaging.planes import Plane

pytestmark = pytest.mark.timeout(120)


def _import_and_open(qtbot, window, folder):
    with qtbot.waitSignal(window.session.volume_changed, timeout=30_000):
        window.import_path(folder, open_after=True)
    assert window.session.volume is not None
    return window.session.volume


def _fill_form(window, *, asthma=True, ar=False, eos="450"):
    f = window.form
    (f.asthma.yes if asthma else f.asthma.no).click()
    (f.allergic_rhinitis.yes if ar else f.allergic_rhinitis.no).click()
    f.eosinophils.setText(eos)
    f.eosinophils.textEdited.emit(eos)


def test_import_shows_tree_and_opens_proposed_series_in_coronal(qtbot, make_window, dicom_folder):
    w = make_window()
    assert w.browser.series_count() == 0 and w.browser.empty_hint.isVisibleTo(w.browser)
    vol = _import_and_open(qtbot, w, dicom_folder)
    assert w.browser.series_count() == 1
    top = w.browser.tree.topLevelItem(0)
    assert "DEMO Patient" in top.text(0)
    series_item = top.child(0).child(0)
    assert series_item.text(3) == str(vol.shape[0])  # images column
    assert w.browser.selected_series_uid() == vol.info.series_uid
    # coronal first, showing the coronal reformat of the volume
    assert w.viewer.model.plane is Plane.CORONAL
    view = w.viewer.views[Plane.CORONAL]
    assert view.isVisible()
    g = w.viewer.model.geometry[Plane.CORONAL]
    assert view.image.image.shape == (vol.shape[0], vol.shape[2], 4)
    shown = g.extract(vol.array, w.viewer.model.slice_index(Plane.CORONAL))
    assert np.array_equal(view.image.image, w.viewer.model.to_rgba(shown))
    assert view.edge["t"].text() == "S" and view.edge["l"].text() == "R"


def test_search_filters_tree(qtbot, make_window, dicom_folder):
    w = make_window()
    _import_and_open(qtbot, w, dicom_folder)
    w.browser.search.setText("nomatch-xyz")
    assert w.browser.tree.topLevelItem(0).isHidden()
    w.browser.search.setText("syn-0001")
    assert not w.browser.tree.topLevelItem(0).isHidden()


def test_analysis_with_fake_predictor_shows_results_contour_and_nomogram(
    qtbot, make_window, dicom_folder
):
    w = make_window()
    _import_and_open(qtbot, w, dicom_folder)
    assert not w.analyse_button.isEnabled()  # form empty
    _fill_form(w)
    assert w.form.is_valid() and w.analyse_button.isEnabled()
    with qtbot.waitSignal(w.session.result_changed, timeout=30_000):
        job = w.start_analysis()
        assert job is not None and w.cancel_button.isEnabled()
    r = w.session.result
    assert r is not None and r.dlr_score == pytest.approx(0.55)
    assert w.viewer.model.masks["model"] is not None
    assert "%" in w.results.headline.text()
    where = "at or above" if r.risk_group == "high" else "below"
    assert w.results.risk.text().endswith(f"{where} the {format_probability(r.cutoff)} cutoff")
    # the nomogram caption and the PDF report say the risk group in the same words
    assert w.results.risk.text() in w.nomogram_view.summary.text()
    # nomogram drawn with marks
    assert w.nomogram_view.layout_obj is not None and w.nomogram_view.layout_obj.marks
    p0 = w.session.prediction.probability
    assert p0 == pytest.approx(r.probability)
    # what-if on the nomogram: asthma → No lowers the shown risk, labelled, form untouched
    w.nomogram_view.pick_factor("asthma", 0.0)
    assert w.form.asthma.value() is True
    assert w.session.prediction.probability < p0
    assert "What-if" in w.results.headline.text() and "what-if" in w.nomogram_view.summary.text()
    assert w.session.result.probability == pytest.approx(p0)
    # reset to patient
    w.nomogram_view.reset_button.click()
    assert w.session.prediction.probability == pytest.approx(p0)
    assert not w.session.is_what_if
    # the form changes the patient: the analysed result and the nomogram follow
    w.form.eosinophils.setText("1500")
    w.form.eosinophils.textEdited.emit("1500")
    m = w.nomogram_view.layout_obj.mark("eosinophils_per_ul")
    assert m is not None and m.value == pytest.approx(1500)
    assert w.session.result.clinical_inputs["eosinophils_per_ul"] == pytest.approx(1500)
    assert not w.session.is_what_if


def test_what_if_never_changes_the_patient_form_record_or_report(
    qtbot, make_window, dicom_folder, nomogram
):
    """Issue 12 item 1: dragging the eosinophil mark wrote the what-if into the form and the
    saved case; after a restart the screen showed it as the patient's risk."""
    w = make_window()
    vol = _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w, eos="620")
    with qtbot.waitSignal(w.session.result_changed, timeout=30_000):
        w.start_analysis()
    analysed = w.session.result.probability
    w.nomogram_view.pick_factor("eosinophils_per_ul", 100.0)
    assert w.session.is_what_if and w.session.prediction.probability != pytest.approx(analysed)
    assert w.form.eosinophils.text() == "620"
    w._flush_clinical()
    w._save_clinical()  # what the debounce timer would do
    rec = w.records.load(series_uid=vol.info.series_uid)
    assert rec.clinical["eosinophils"] == "620"
    assert rec.result["probability"] == pytest.approx(analysed)
    dlg = w.show_report()
    assert dlg is not None
    assert dlg._result.probability == pytest.approx(analysed)
    assert dlg._result.clinical_inputs["eosinophils_per_ul"] == pytest.approx(620)
    dlg.close()
    w.close()
    # restart: the patient's analysed risk, no what-if
    w2 = make_window()
    with qtbot.waitSignal(w2.session.volume_changed, timeout=30_000):
        w2.open_series(vol.info.series_uid)
    assert w2.form.eosinophils.text() == "620"
    assert not w2.session.is_what_if
    assert w2.session.prediction.probability == pytest.approx(analysed)
    assert "What-if" not in w2.results.headline.text()


def test_cancel_analysis_emits_no_result(qtbot, make_window, dicom_folder):
    from sinusapp.model import FakePredictor

    w = make_window(predictor_factory=lambda: FakePredictor(locate=False, delay_s=0.3))
    _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w)
    job = w.start_analysis()
    with qtbot.waitSignal(job.cancelled, timeout=10_000):
        w.cancel_button.click()
    assert w.session.result is None
    assert w.viewer.model.masks["model"] is None
    assert w.analyse_button.isEnabled()


def test_closing_mid_analysis_leaves_no_thread(qtbot, make_window, dicom_folder):
    from sinusapp.model import FakePredictor

    w = make_window(predictor_factory=lambda: FakePredictor(locate=False, delay_s=0.5))
    _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w)
    job = w.start_analysis()
    thread = job._thread
    w.close()  # does not block: postponed until the job has stopped
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10_000)
    assert not thread.isRunning()
    assert w.session.result is None


def test_clinical_entries_saved_and_reopened_with_result(qtbot, make_window, dicom_folder):
    w = make_window()
    vol = _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w, eos="0.45")
    w.form.eosinophil_unit.setCurrentIndex(1)  # ×10⁹/L
    with qtbot.waitSignal(w.session.result_changed, timeout=30_000):
        w.start_analysis()
    prob = w.session.result.probability
    w.close()
    w2 = make_window()
    with qtbot.waitSignal(w2.session.volume_changed, timeout=30_000):
        w2.open_series(vol.info.series_uid)
    assert w2.form.eosinophils.text() == "0.45"
    assert w2.form.eosinophil_unit.currentData() == "1e9_per_l"
    assert w2.session.result is not None
    assert w2.session.result.probability == pytest.approx(prob)
    assert w2.viewer.model.masks["model"] is not None
    assert w2.viewer.model.masks["model"].any()


def test_bad_series_shows_error_dialog(qtbot, make_window):
    from sinusapp.errors import GeometryError

    def broken(uid, progress, should_cancel):
        raise GeometryError("slices have inconsistent orientation", hint="choose another series")

    w = make_window(load_volume=broken)
    job = w.open_series("1.2.3")
    with qtbot.waitSignal(job.done, timeout=10_000):
        pass
    assert "inconsistent orientation" in w.last_error
    assert w.session.volume is None


def test_about_box_mentions_synthetic_training(make_window):
    w = make_window()
    text = w.about_text()
    assert "synthetic data" in text and "not for clinical use" in text
    assert "pyqtgraph" in text


def test_keyboard_switches_planes(qtbot, make_window, dicom_folder):
    w = make_window()
    _import_and_open(qtbot, w, dicom_folder)
    w.viewer.plane_actions[Plane.AXIAL].trigger()
    assert w.viewer.model.plane is Plane.AXIAL
    assert w.viewer.views[Plane.AXIAL].isVisible()
    assert not w.viewer.views[Plane.CORONAL].isVisible()
    w.viewer.triple_action.trigger()
    assert all(v.isVisible() for v in w.viewer.views.values())
    assert w.viewer.plane_actions[Plane.AXIAL].shortcut().toString() == "A"
    assert QtCore.Qt.Key.Key_C  # keys documented in the shortcuts box


def _write_nifti(path, mask, affine_lps):
    import nibabel as nib

    # our [k, j, i] with index → LPS; NIfTI [i, j, k] with index → RAS
    a = np.eye(4)
    a[:3, 0], a[:3, 1], a[:3, 2], a[:3, 3] = (
        affine_lps[:3, 2],
        affine_lps[:3, 1],
        affine_lps[:3, 0],
        affine_lps[:3, 3],
    )
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ a
    nib.save(nib.Nifti1Image(np.ascontiguousarray(mask.transpose(2, 1, 0)), ras), str(path))


def test_reference_segmentation_shows_blue_contour_and_dice(
    qtbot, make_window, dicom_folder, phantom, tmp_path
):
    w = make_window()
    vol = _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w)
    with qtbot.waitSignal(w.session.result_changed, timeout=30_000):
        w.start_analysis()
    _, _, reference = phantom
    path = tmp_path / "ref.nii.gz"
    _write_nifti(path, reference, vol.affine)
    with qtbot.waitSignal(w.load_reference(path).done, timeout=30_000):
        pass
    assert not w.last_error, w.last_error
    m = w.viewer.model
    assert np.array_equal(m.masks["reference"] > 0, reference > 0)
    view = w.viewer.current_view()
    assert view.curves["reference"].isVisible()
    assert np.isfinite(view.curves["reference"].getData()[0]).sum() > 10
    assert w.viewer.dice_label.text().startswith("DSC 0.")
    # a segmentation of another region is refused with a message, the old one stays
    far = vol.affine.copy()
    far[:3, 3] += 500.0
    _write_nifti(tmp_path / "far.nii.gz", reference, far)
    with qtbot.waitSignal(w.load_reference(tmp_path / "far.nii.gz").done, timeout=30_000):
        pass
    assert "reference segmentation" in w.last_error
    assert m.masks["reference"] is not None


def test_window_stays_responsive_during_analysis(qtbot, make_window, dicom_folder):
    # no timed assertion here (speed is measured in benchmarks/ui_speed.py): the GUI event
    # loop must keep delivering timer events while the analysis thread is alive
    from sinusapp.model import FakePredictor

    w = make_window(predictor_factory=lambda: FakePredictor(locate=False, delay_s=0.15))
    _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w)
    ticks_while_running = []
    timer = QtCore.QTimer()
    timer.setInterval(10)
    job = w.start_analysis()
    assert job is not None
    timer.timeout.connect(lambda: ticks_while_running.append(job.is_running()))
    timer.start()
    with qtbot.waitSignal(job.done, timeout=30_000):
        pass
    timer.stop()
    assert w.session.result is not None
    assert sum(ticks_while_running) >= 3, "the event loop did not run while the job ran"


def test_open_demo_study_fills_form_and_opens(qtbot, make_window, tmp_path, phantom):
    import json

    from sinusapp.ui.app import open_demo_study
    from tests.ui.conftest import write_ct_series

    demo = tmp_path / "demo"
    write_ct_series(demo / "ct", phantom[0])
    (demo / "clinical.json").write_text(
        json.dumps(
            {
                "asthma": True,
                "allergic_rhinitis": False,
                "eosinophils_per_ul": 620.0,
                "age": 46,
                "sex": "M",
                "synthetic": True,
            }
        )
    )
    w = make_window()
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        open_demo_study(w, demo_dir=demo)
    qtbot.waitUntil(lambda: w.form.is_valid(), timeout=5000)
    assert w.form.eosinophils.text() == "620" and w.form.sex.currentData() == "male"
    assert w.analyse_button.isEnabled()


def test_delete_series_and_drop_folder_to_import(qtbot, make_window, dicom_folder):
    from PySide6 import QtCore, QtGui

    w = make_window()
    # drag and drop a folder onto the window imports and opens it
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(dicom_folder))])
    drop = QtGui.QDropEvent(
        QtCore.QPointF(10, 10),
        QtCore.Qt.DropAction.CopyAction,
        mime,
        QtCore.Qt.MouseButton.LeftButton,
        QtCore.Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        w.dropEvent(drop)
    uid = w.browser.selected_series_uid()
    assert uid and w.browser.series_count() == 1
    w.browser.delete_requested.emit(uid)
    assert w.browser.series_count() == 0
    assert w.session.volume is None and w.viewer.model.volume is None


def test_reference_dicom_seg_shows_blue_contour(qtbot, make_window, tmp_path, phantom):
    import pydicom

    from tests.ui.conftest import write_ct_series

    dicomio = pytest.importorskip("sinusapp.synth.dicomio")
    vol, _, reference = phantom
    paths = write_ct_series(tmp_path / "ct", vol)
    sources = [pydicom.dcmread(p) for p in paths]
    seg_path = tmp_path / "lesion_seg.dcm"
    dicomio.write_lesion_seg(
        mask=reference,
        source_images=sources,
        slice_indices=None,
        out_path=seg_path,
        case=dicomio.CaseDicomInfo(case_id="T1", seed=1),
    )
    w = make_window()
    _import_and_open(qtbot, w, tmp_path / "ct")
    with qtbot.waitSignal(w.load_reference(seg_path).done, timeout=30_000):
        pass
    assert not w.last_error, w.last_error
    ref = w.viewer.model.masks["reference"]
    assert ref is not None and np.array_equal(ref > 0, reference > 0)
    view = w.viewer.current_view()
    assert view.curves["reference"].isVisible()
    assert np.isfinite(view.curves["reference"].getData()[0]).sum() > 10


def test_layout_and_settings_remembered(make_window):
    w = make_window()
    w.viewer.triple_action.trigger()
    w.nomogram_dock.hide()
    w.close()
    w2 = make_window()
    assert w2.viewer.model.triple
    assert not w2.nomogram_dock.isVisible()


def test_report_dialog_opens_for_the_result(qtbot, make_window, dicom_folder):
    w = make_window()
    _import_and_open(qtbot, w, dicom_folder)
    assert not w.report_action.isEnabled()
    _fill_form(w)
    with qtbot.waitSignal(w.session.result_changed, timeout=30_000):
        w.start_analysis()
    assert w.report_action.isEnabled()
    dlg = w.show_report()
    assert dlg is not None and dlg.isVisible(), w.last_error
    assert dlg.pdf.startswith(b"%PDF")
    dlg.close()


def test_clinical_values_are_not_carried_to_another_patient(qtbot, make_window, tmp_path, phantom):
    from dataclasses import replace

    from tests.ui.conftest import write_ct_series

    vol_a = phantom[0]
    vol_b = replace(vol_a, info=replace(vol_a.info, patient_id="OTHER-2", patient_name="OTHER^P"))
    write_ct_series(tmp_path / "a", vol_a)
    write_ct_series(tmp_path / "b", vol_b)
    w = make_window()
    _import_and_open(qtbot, w, tmp_path / "a")
    _fill_form(w)
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        w.import_path(tmp_path / "b", open_after=True)
    assert w.session.volume.info.patient_id == "OTHER-2"
    assert w.form.raw()["eosinophils"] == "" and w.form.asthma.value() is None
    # going back to patient A brings A's values back from the case record
    uid_a = next(u for u, e in w.browser._entries.items() if e[0].patient_id == "SYN-0001")
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        w.open_series(uid_a)
    assert w.form.raw()["eosinophils"] == "450" and w.form.asthma.value() is True


@pytest.mark.realdata
def test_real_philips_cd_import_proposes_no_series_and_flags_the_5mm_brain_series(
    qtbot, make_window
):
    """The CD holds a localizer, report pages and a 5 mm soft-kernel (UB) brain series of a
    skull phantom: none is a sinus-capable CT, so nothing is proposed or opened (issue 12);
    the brain series carries the gate's findings and still opens when chosen."""
    from pathlib import Path

    cd = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "realct"
    cd = (cd / "philips_ingenuity_skullphantom_cd").resolve()
    if not cd.is_dir():
        pytest.skip(f"real CT data not present at {cd}")
    w = make_window()
    with qtbot.waitSignal(w.import_path(cd, open_after=True).done, timeout=60_000):
        pass
    assert w.browser.series_count() >= 3
    assert w.browser.proposed_series_uid() is None
    assert w.session.volume is None
    (uid,) = [u for u, (_, _, se) in w.browser._entries.items() if se.series_number == 201]
    _, _, se = w.browser._entries[uid]
    assert not se.candidate.eligible and "too thick" in se.candidate.reasons[0]
    assert {f.code for f in w.browser.gate_findings[uid]} == {"thick_slices", "soft_kernel"}
    assert not w.browser._item_for(uid).icon(1).isNull()
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        w.open_series(uid)
    assert w.viewer.current_view().image.image is not None


def test_form_edits_during_analysis_are_kept_and_used(qtbot, make_window, dicom_folder, nomogram):
    from sinusapp.model import FakePredictor

    w = make_window(
        predictor_factory=lambda: FakePredictor(dlr_score=0.55, locate=False, delay_s=0.2)
    )
    vol = _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w, asthma=True, ar=False, eos="450")
    job = w.start_analysis()
    assert job is not None and job.is_running()
    # the user keeps typing while the model runs
    w.form.eosinophils.setText("1500")
    w.form.eosinophils.textEdited.emit("1500")
    with qtbot.waitSignal(w.session.result_changed, timeout=30_000):
        pass
    assert w.form.eosinophils.text() == "1500"
    expected = nomogram.predict(
        dlr_score=0.55, asthma=True, allergic_rhinitis=False, eosinophils_per_ul=1500.0
    )
    r = w.session.result
    assert r.dlr_score == pytest.approx(0.55)
    assert r.probability == pytest.approx(expected.probability)
    assert r.clinical_inputs["eosinophils_per_ul"] == pytest.approx(1500.0)
    assert r.total_points == pytest.approx(expected.total_points)
    assert w.session.prediction.probability == pytest.approx(expected.probability)
    assert not w.session.is_what_if
    assert "what-if" not in w.results.headline.text()
    # the case record holds the values on screen, with the matching result
    rec = w.records.load(series_uid=vol.info.series_uid)
    assert rec.clinical["eosinophils"] == "1500"
    assert rec.result["probability"] == pytest.approx(expected.probability)


def test_close_waits_for_work_that_does_not_stop_in_time(qtbot, make_window):
    import threading

    w = make_window()
    w.shutdown_timeout_ms = 50
    release = threading.Event()

    def stubborn(progress, should_cancel):
        release.wait(30)  # ignores the cancel until the test lets it go

    job = w.runner.start(stubborn, name="stubborn")
    w.close()
    assert w.isVisible(), "the window must not close while a thread still runs"
    assert job.is_running()
    assert "still stopping" in w.statusBar().currentMessage().lower()
    w.close()  # asking again neither blocks nor closes
    assert w.isVisible()
    release.set()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10_000)
    assert not job.is_running() and not w.runner.jobs


def test_opening_another_series_cancels_the_load(qtbot, make_window, dicom_folder, monkeypatch):
    import threading

    import sinusapp.dicom

    w = make_window()
    vol = _import_and_open(qtbot, w, dicom_folder)
    uid = vol.info.series_uid
    real = sinusapp.dicom.volume_from_headers
    first_call = threading.Event()
    seen_cancel = []

    def slow_first(headers, *, progress=None, should_cancel=None):
        if not first_call.is_set():
            first_call.set()
            while not should_cancel():  # series A: slow, until it is cancelled
                threading.Event().wait(0.005)
            seen_cancel.append(True)
        return real(headers, progress=progress, should_cancel=should_cancel)

    monkeypatch.setattr(sinusapp.dicom, "volume_from_headers", slow_first)
    outcomes = []
    job_a = w.open_series(uid)
    job_a.finished.connect(lambda _r: outcomes.append("finished"))
    job_a.failed.connect(lambda _e: outcomes.append("failed"))
    job_a.cancelled.connect(lambda: outcomes.append("cancelled"))
    assert first_call.wait(10)
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        job_b = w.open_series(uid)
    qtbot.waitUntil(lambda: job_a.is_done, timeout=10_000)
    assert seen_cancel == [True]
    assert outcomes == ["cancelled"]
    assert job_b.is_done and w.load_job is None
    assert not w.last_error, w.last_error
    assert w.session.volume is not None


def test_statement_follows_an_institutions_own_bundle(make_window, tmp_path, monkeypatch):
    import json
    import shutil

    from sinusapp.model import bundled_model_dir

    local = tmp_path / "models"
    shutil.copytree(bundled_model_dir(), local / bundled_model_dir().name)
    manifest_path = local / bundled_model_dir().name / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest.update(name="st_mary_unet", version="2.1.0", trained_on_synthetic=False)
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    from sinusapp.model.bundle import seal_bundle

    seal_bundle(manifest_path.parent)  # the institution's own writer seals its bundle
    monkeypatch.setenv("SINUSAPP_MODELS", str(local))
    w = make_window()
    expected = (
        "Model: st_mary_unet 2.1.0 (trained on local data by your institution); "
        "validate before clinical use."
    )
    text = w.about_text()
    assert expected in text and "synthetic data" not in text.split("<h4>Model card")[0]
    assert "Model card" in text
    assert w.results.disclaimer.text() == expected


def test_results_panel_says_synthetic_for_the_bundled_model(make_window):
    w = make_window()
    assert "synthetic disease" in w.results.disclaimer.text()
    assert "not for clinical use" in w.results.disclaimer.text()


def test_eosinophils_beyond_the_nomogram_warn_while_typing(qtbot, make_window, dicom_folder):
    """Issue 12 item 3: 4500 cells/µL was accepted silently while typing."""
    w = make_window()
    _import_and_open(qtbot, w, dicom_folder)
    hi = next(f for f in w.session.nomogram.factors if f.name == "eosinophils_per_ul").axis_range[1]
    _fill_form(w, eos=f"{hi * 1.8:g}")
    msg = w.form.msg["eosinophils"]
    assert not msg.isHidden() and "beyond the nomogram" in msg.text()
    assert w.analyse_button.isEnabled()  # a warning, not an error
    _fill_form(w, eos="450")
    assert w.form.msg["eosinophils"].isHidden()


def test_ambiguous_thousands_comma_is_asked_and_answered(qtbot, make_window, dicom_folder):
    """Issue 12 item 3: "1,500" was read as 1.5."""
    w = make_window()
    _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w, eos="1,500")
    msg = w.form.msg["eosinophils"]
    assert "ambiguous" in msg.text() and "eos:1500" in msg.text() and "eos:1.5" in msg.text()
    assert not w.analyse_button.isEnabled()
    msg.linkActivated.emit("eos:1500")
    assert w.form.eosinophils.text() == "1500"
    assert w.session.raw_clinical["eosinophils"] == "1500"
    assert w.analyse_button.isEnabled()


def test_invalid_record_only_field_disables_analyse_with_a_hint_naming_it(
    qtbot, make_window, dicom_folder
):
    """Issue 12 item 3: age 150 disabled Analyse with a hint about the nomogram factors."""
    w = make_window()
    _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w)
    w.form.age_years.setText("150")
    w.form.age_years.textEdited.emit("150")
    assert not w.analyse_button.isEnabled()
    hint = w.analyse_hint.text()
    assert "Age" in hint and "150" in hint and "asthma" not in hint.lower()


def test_closing_during_work_does_not_freeze_the_window(qtbot, make_window):
    """Issue 12 item 5: closing during an analysis froze the window for seconds (the close
    blocked on the worker thread). Now it blocks at most ``shutdown_timeout_ms`` (300 ms) and
    the window closes itself when the work has stopped."""
    import threading

    w = make_window()
    release = threading.Event()

    def slow_to_stop(progress, should_cancel):
        release.wait(5)  # longer than the close may block, shorter than the old 15 s wait

    job = w.runner.start(slow_to_stop, name="slow")
    w.close()
    assert job.is_running(), "close() blocked until the job ended (the window froze)"
    assert w.isVisible()
    release.set()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10_000)


def test_cancel_stops_the_network_pass_itself(qtbot, make_window, dicom_folder):
    """Issue 12 item 5: Cancel waited for the whole network pass (one predictor stage)."""
    import threading
    import time
    from types import SimpleNamespace

    torch = pytest.importorskip("torch")
    calls = []
    started = threading.Event()

    class Layer(torch.nn.Module):
        def forward(self, x):
            calls.append(1)
            started.set()
            time.sleep(0.005)
            return x

    class SlowPredictor:
        def __init__(self):
            self.model_info = {"name": "slow", "version": "0", "sha256": "0"}
            self.net = torch.nn.Sequential(*(Layer() for _ in range(600)))

        def predict(self, volume, *, progress=None, should_cancel=None, region=None):
            if progress is not None:
                progress(0.3, "network")
            with torch.inference_mode():
                self.net(torch.zeros(1))
            return SimpleNamespace(
                mask=np.zeros(volume.shape, np.uint8),
                dlr_score=0.5,
                lesion_volume_ml=0.0,
                per_sinus=None,
            )

    w = make_window(predictor_factory=SlowPredictor)
    _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w)
    job = w.start_analysis()
    assert started.wait(20)
    with qtbot.waitSignal(job.cancelled, timeout=20_000):
        w.cancel_button.click()
    assert len(calls) < 600, "the network pass ran to its end after Cancel"
    assert w.session.result is None and w.analyse_button.isEnabled()


def test_the_region_located_on_opening_is_the_one_the_analysis_uses(qtbot, make_window):
    """The load job locates the sinus region to open at it; the analysis is handed that
    region (the predictor does not locate it a second time), and a series opened next
    replaces it."""
    from sinusapp.model import FakePredictor
    from sinusapp.model.testing import make_sinus_phantom

    volume, _ = make_sinus_phantom(seed=2)
    given: list = []

    class Recording(FakePredictor):
        def predict(self, volume, *, region=None, **kw):
            given.append(region)
            return super().predict(volume, region=region, **kw)

    w = make_window(
        predictor_factory=Recording, load_volume=lambda uid, progress, should_cancel: volume
    )
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        assert w.open_series(volume.info.series_uid or "phantom") is not None
    located = w.session.model.sinus_region
    assert located is not None
    _fill_form(w)
    with qtbot.waitSignal(w.session.result_changed, timeout=30_000):
        w.start_analysis()
    assert given == [located]
    # another series brings its own region; a volume set without an opening has none
    other, _ = make_sinus_phantom(seed=3)
    w._load_volume = lambda uid, progress, should_cancel: other
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        assert w.open_series("phantom-2") is not None
    assert w.session.model.sinus_region is not None
    assert w.session.model.sinus_region is not located
    w.set_volume(volume)
    assert w.session.model.sinus_region is None
    w.set_volume(None)
    assert w.session.model.sinus_region is None


def test_pacs_export_names_by_patient_series_and_time_and_replaces_nothing(
    qtbot, make_window, dicom_folder, tmp_path
):
    """Issue 12 item 4: Export for PACS silently replaced another patient's report.dcm."""
    w = make_window()
    vol = _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w)
    with qtbot.waitSignal(w.session.result_changed, timeout=30_000):
        w.start_analysis()
    dlg = w.show_report()
    assert dlg is not None
    out = tmp_path / "pacs"
    out.mkdir()
    for name in ("report.dcm", "lesion_seg.dcm", "report.pdf"):  # another patient's export
        (out / name).write_bytes(b"other patient")
    doc1, seg1 = dlg.export_dicom(out)
    doc2, seg2 = dlg.export_dicom(out)  # again, within the same second
    dlg.close()
    for name in ("report.dcm", "lesion_seg.dcm", "report.pdf"):
        assert (out / name).read_bytes() == b"other patient"
    assert len({doc1, seg1, doc2, seg2}) == 4 and all(p.is_file() for p in (doc1, seg2))
    pid = vol.info.patient_id
    assert doc1.name.startswith(f"patient-{pid}_series-") and doc1.name.endswith("_report.dcm")
    assert seg1.name.endswith("_lesion_seg.dcm")
    assert len(list(out.glob("*_report.pdf"))) == 2


def test_about_box_renders_the_model_card_markdown(qtbot, make_window):
    """Issue 12: the About box showed the model card as raw Markdown."""
    from dataclasses import replace

    from PySide6 import QtWidgets

    w = make_window()
    card = (
        "# SinusApp model card\n\n**Trained on synthetic data** — not for clinical use.\n\n"
        "## Metrics\n\n| metric | value |\n|---|---|\n| Dice | 0.85 |\n\n- one\n- two\n"
    )
    w.model_statement = replace(w.model_statement, card=card)
    w.show_about()
    dlg = next(d for d in w.findChildren(QtWidgets.QDialog) if d.windowTitle() == "About SinusApp")
    browser = dlg.findChild(QtWidgets.QTextBrowser)
    plain = browser.toPlainText()
    assert "synthetic" in plain.lower()
    assert "SinusApp model card" in plain and "Dice" in plain
    assert "#" not in plain and "**" not in plain and "|---" not in plain
    dlg.close()


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_image_first_layout(qtbot, make_window, dicom_folder, size):
    """Issue 12: at 1280×800 the image got ~430×390 px and the toolbar hid its tools."""
    w = make_window()
    w.resize(*size)
    w.apply_default_layout()
    _import_and_open(qtbot, w, dicom_folder)
    qtbot.wait(50)
    view = w.viewer.current_view()
    panels = [d for d in (w.browser_dock, w.form_dock) if d.isVisible()]
    assert view.width() > max(d.width() for d in panels), "the image is not the widest panel"
    assert view.width() * view.height() > 0.3 * size[0] * size[1]
    assert view.height() > 0.75 * w.height()
    # every tool fits (no "»" extension button hiding Reference / Fill / Measure / Fit)
    for bar in (w.viewer.toolbar, w.viewer.tools_toolbar):
        for act in bar.actions():
            if act.isVisible() and not act.isSeparator():
                widget = bar.widgetForAction(act)
                assert widget is not None and widget.isVisible(), act.text()
    w.image_only_action.trigger()
    assert not w.browser_dock.isVisible() and not w.form_dock.isVisible()
    w.image_only_action.trigger()
    assert w.browser_dock.isVisible() and w.form_dock.isVisible()


def test_a_ct_stopped_by_the_input_gate_says_so_in_the_status_bar(
    qtbot, make_window, dicom_folder, monkeypatch
):
    """harvard02 (air at about -495 HU) is stopped by the gate; the status bar said only
    "Analysis failed", as if the program had broken (session 31)."""
    from sinusapp.imaging import plausibility

    monkeypatch.setattr(plausibility, "measure_air_hu", lambda volume: -495.0)
    w = make_window()
    _import_and_open(qtbot, w, dicom_folder)
    _fill_form(w)
    job = w.start_analysis()
    assert job is not None
    qtbot.waitUntil(lambda: w.analysis_job is None, timeout=30_000)
    assert w.session.result is None
    status = w.statusBar().currentMessage()
    assert status == "Analysis stopped by the input check: air calibration -495 HU", status
    assert w.last_error.startswith("The analysis was stopped: ")
    assert "[air_calibration] Air reads -495 HU" in w.last_error


@pytest.mark.realdata
def test_a_real_head_opens_at_its_sinuses_not_at_the_middle(qtbot, make_window):
    """harvard02 opened at the middle of its field of view showed the brain stem and the
    temporal bone in coronal, 85 mm behind the sinuses; the viewer now opens at the sinus
    region's centre, inside the head's hand-marked sinonasal box."""
    import json
    from pathlib import Path

    from sinusapp.dicom import load_volume, scan

    repo = Path(__file__).resolve().parents[2]
    name = "harvard02_cadaver_head_sinus_coverage"
    folder = repo.parent / "shared" / "data" / "realct" / name
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    boxes = json.loads((repo / "tests" / "model" / "real_head_boxes.json").read_text())
    box = next(h["box_lps_mm"] for h in boxes["heads"] if h["name"] == name)
    found = scan(folder)
    head = load_volume(folder, series_uid=found.proposed.series_uid, scan_result=found)
    w = make_window(load_volume=lambda uid, progress, should_cancel: head)
    with qtbot.waitSignal(w.session.volume_changed, timeout=30_000):
        assert w.open_series(head.info.series_uid) is not None
    cursor = w.viewer.model.cursor
    middle = tuple(s // 2 for s in head.shape)
    assert cursor != middle
    x, y, z = head.index_to_lps(np.asarray([cursor], float))[0]
    assert box["x"][0] <= x <= box["x"][1], (x, box)
    assert box["y"][0] <= y <= box["y"][1], (y, box)
    assert box["z"][0] <= z <= box["z"][1], (z, box)
    # the coronal view shows that slice
    assert w.viewer.model.slice_index(Plane.CORONAL) == cursor[1]
