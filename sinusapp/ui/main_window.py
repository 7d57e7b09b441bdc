"""SinusApp's main window: DICOM browser, coronal-first viewer, clinical form, analysis,
results and the interactive nomogram, wired to the core packages.

Every long step (import, load, analysis) is a :class:`~sinusapp.ui.worker.JobRunner` job with
progress and Cancel; the window stays responsive. What the user types is saved to the case
records as they type (debounced) and when the window closes.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from sinusapp._version import __version__
from sinusapp.case import (
    UNSUITABLE_SERIES,
    analyse_case,
    analysis_failure_status,
    nomogram_range_messages,
    opening_region,
    opening_voxel,
    result_from_json,
    unsuitable_series_finding,
)
from sinusapp.errors import Cancelled, InputQualityError, SinusAppError
from sinusapp.findings import Severity
from sinusapp.imaging.planes import mask_bbox
from sinusapp.imaging.volume import Volume
from sinusapp.records import pack_mask
from sinusapp.ui.browser import DicomBrowser
from sinusapp.ui.form import ClinicalForm
from sinusapp.ui.model_statement import SYNTHETIC_STATEMENT, ModelStatement, model_statement
from sinusapp.ui.nomogram_view import NomogramView
from sinusapp.ui.results import ResultsPanel
from sinusapp.ui.session import CaseSession
from sinusapp.ui.viewer import SliceViewer
from sinusapp.ui.worker import Job, JobRunner

__all__ = ["SYNTHETIC_STATEMENT", "MainWindow"]

log = logging.getLogger(__name__)


class MainWindow(QtWidgets.QMainWindow):
    """The application window.

    Closing it cancels the background work and waits up to :attr:`shutdown_timeout_ms` for
    it; work that takes longer postpones the close until it has stopped.

    Parameters
    ----------
    catalogue:
        A :class:`sinusapp.dicom.catalogue.Catalogue` (or a fake with ``tree()``,
        ``headers(uid)``, ``import_path(...)``, ``delete_series(uid)``).
    records:
        A :class:`sinusapp.records.CaseRecords`, or ``None`` to keep nothing.
    nomogram:
        A :class:`sinusapp.nomogram.Nomogram` (``None`` when it could not be loaded;
        ``nomogram_error`` then says why).
    predictor_factory:
        Creates the predictor on first use, on the worker thread (so torch is imported only
        then). Default: ``sinusapp.model.Predictor(device="auto")``.
    load_volume:
        ``load_volume(series_uid, progress, should_cancel) -> Volume``; default builds it
        from the catalogue's headers. It may raise :class:`sinusapp.errors.Cancelled` when
        ``should_cancel()`` turns True (another series was opened, or the window closes).
    settings:
        Where window layout and preferences are remembered.
    """

    #: how long closing blocks for background work to stop before it postpones the close
    #: (the window then stays responsive and closes when the work has stopped)
    shutdown_timeout_ms: int = 300

    def __init__(
        self,
        *,
        catalogue: Any,
        records: Any | None = None,
        nomogram: Any | None = None,
        nomogram_error: str = "",
        predictor_factory: Callable[[], Any] | None = None,
        load_volume: Callable[..., Volume] | None = None,
        settings: QtCore.QSettings | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle(f"SinusApp {__version__} — CRS recurrence risk (research use only)")
        self.catalogue = catalogue
        self.records = records
        self.settings = settings
        self._predictor_factory = predictor_factory or _default_predictor
        self._predictor: Any | None = None
        self._predictor_lock = threading.Lock()
        self._load_volume = load_volume or self._load_from_catalogue
        self.runner = JobRunner(self)
        self.analysis_job: Job | None = None
        self.load_job: Job | None = None
        self.import_job: Job | None = None
        self.last_error: str = ""
        #: where the blue reference contour on screen came from (remembered with the case)
        self.reference_source: dict[str, Any] | None = None
        self._dialogs: list[QtWidgets.QDialog] = []
        #: a close was asked while a job would not stop: close when the runner is idle
        self._close_when_idle = False

        #: the case (Qt-free model in ``session.model``); this window only binds widgets to it
        self.session = CaseSession(
            nomogram=nomogram, nomogram_error=nomogram_error, records=records, parent=self
        )
        self.viewer = SliceViewer(parent=self)
        self.setCentralWidget(self.viewer)
        self.browser = DicomBrowser(catalogue, self)
        self.form = ClinicalForm(self)
        self.form.set_extra_check(lambda raw: nomogram_range_messages(raw, nomogram))
        self.results = ResultsPanel(self.session, self)
        #: the model bundle in use (its manifest says whether it was trained on synthetic data)
        self.model_statement: ModelStatement = model_statement()
        self.results.set_model_statement(self.model_statement.short_text)
        self.nomogram_view = NomogramView(self.session, self)

        # analysis box under the form
        self.analyse_button = QtWidgets.QPushButton("Analyse", self)
        self.analyse_button.setToolTip("Run the model and the nomogram (Ctrl+Return)")
        self.analyse_button.setStyleSheet("font-weight: bold; padding: 6px;")
        self.cancel_button = QtWidgets.QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.progress = QtWidgets.QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.analyse_hint = QtWidgets.QLabel(self)
        self.analyse_hint.setWordWrap(True)
        self.analyse_hint.setStyleSheet("color: #8b949e;")
        #: the open series is no sinus-capable CT (opened anyway): said above Analyse
        self.series_warning = QtWidgets.QLabel(self)
        self.series_warning.setWordWrap(True)
        self.series_warning.setStyleSheet(
            "background: #5c3d00; color: #ffe08a; border: 1px solid #d29922; "
            "border-radius: 4px; padding: 4px; font-weight: bold;"
        )
        self.series_warning.setVisible(False)
        #: the dialog shown when a dropped folder held no sinus-capable CT (None: not shown)
        self.unsuitable_dialog: QtWidgets.QDialog | None = None
        clinical = QtWidgets.QWidget(self)
        cl = QtWidgets.QVBoxLayout(clinical)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.form)
        cl.addWidget(self.series_warning)
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(6, 0, 6, 0)
        row.addWidget(self.analyse_button, 1)
        row.addWidget(self.cancel_button)
        cl.addLayout(row)
        for w in (self.progress, self.analyse_hint):
            cl.addWidget(w)
        cl.setStretch(0, 1)

        self.browser_dock = self._dock(
            "Studies", self.browser, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.form_dock = self._dock(
            "Clinical factors", clinical, QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.results_dock = self._dock(
            "Results", self.results, QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.nomogram_dock = self._dock(
            "Nomogram", self.nomogram_view, QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        )
        from sinusapp.ui.measurements import MeasurementsPanel

        self.measurements = MeasurementsPanel(self.viewer.model, self)
        self.measurements_dock = self._dock(
            "Measurements", self.measurements, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
        )
        # the measurements share the left column with the studies (a tab)
        self.tabifyDockWidget(self.browser_dock, self.measurements_dock)
        self.browser_dock.raise_()
        self.viewer.model.annotations_changed.connect(self._on_annotations_changed)
        # image first: the viewer has the full height between two columns; the right column
        # holds the form, the results and the nomogram as tabs (the results come forward
        # when an analysis ends); F11 shows the image alone
        self.tabifyDockWidget(self.form_dock, self.results_dock)
        self.tabifyDockWidget(self.results_dock, self.nomogram_dock)
        self.form_dock.raise_()
        self.setDockOptions(
            QtWidgets.QMainWindow.DockOption.AnimatedDocks
            | QtWidgets.QMainWindow.DockOption.AllowTabbedDocks
            | QtWidgets.QMainWindow.DockOption.AllowNestedDocks
        )
        self._layout_pending = True
        self._image_only_hidden: list[QtWidgets.QDockWidget] = []
        #: the dock layout before "image only" hid the panels (restored, and saved on close)
        self._state_before_image_only: QtCore.QByteArray | None = None
        #: the 1×3 layout folded the panels away (they come back when it ends) / the user
        #: brought them back while in 1×3 (then they stay until 1×3 ends)
        self._triple_folded = False
        self._triple_fold_declined = False

        self._save_timer = QtCore.QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self._save_clinical)

        self._build_menus()
        self.statusBar().showMessage("Ready")
        #: the files the last import skipped, behind a button in the status bar
        self.skipped_files: list[Any] = []
        self.skipped_button = QtWidgets.QPushButton(self)
        self.skipped_button.setFlat(True)
        self.skipped_button.setStyleSheet("color: #d29922;")
        self.skipped_button.setVisible(False)
        self.skipped_button.clicked.connect(self.show_skipped)
        self.statusBar().addPermanentWidget(self.skipped_button)
        self.setAcceptDrops(True)

        self.browser.open_requested.connect(self.open_series)
        self.browser.import_requested.connect(self._on_import_requested)
        self.browser.delete_requested.connect(self._on_delete_requested)
        self.form.changed.connect(self._on_form_changed)
        self.form.validity_changed.connect(self._on_analyse_state_changed)
        self.session.clinical_changed.connect(self._on_session_clinical_changed)
        self.session.result_changed.connect(self._on_analyse_state_changed)
        self.analyse_button.clicked.connect(self.start_analysis)
        self.cancel_button.clicked.connect(self.cancel_analysis)
        self.runner.busy_changed.connect(self._on_analyse_state_changed)
        self.runner.busy_changed.connect(self._on_runner_busy_changed)
        self.browser.thumb_runner.busy_changed.connect(self._on_runner_busy_changed)
        self.viewer.model.layout_changed.connect(self._update_triple_panels)
        self.viewer.model.volume_changed.connect(self._update_triple_panels)
        self._on_analyse_state_changed()
        self._restore_settings()

    # -- construction helpers ---------------------------------------------------------
    def _dock(
        self, title: str, widget: QtWidgets.QWidget, area: QtCore.Qt.DockWidgetArea
    ) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_").lower())
        dock.setWidget(widget)
        dock.setFeatures(
            QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        act = file_menu.addAction("&Import folder / CD / DICOMDIR…")
        act.setShortcut(QtGui.QKeySequence.StandardKey.Open)
        act.triggered.connect(self.browser._on_import_clicked)
        act = file_menu.addAction("Import &DICOMDIR file…")
        act.triggered.connect(self._on_import_dicomdir_clicked)
        self.reference_action = file_menu.addAction("Load &reference segmentation…")
        self.reference_action.setShortcut(QtGui.QKeySequence("Ctrl+R"))
        self.reference_action.setToolTip(
            "DICOM SEG, NRRD or NIfTI matching the open series (blue contour)"
        )
        self.reference_action.triggered.connect(self._on_load_reference_clicked)
        #: the DICOM SEG objects in the catalogue that reference the open series
        self.catalogue_reference_menu = file_menu.addMenu("Reference from the c&atalogue")
        self.catalogue_reference_menu.setToolTip(
            "DICOM SEG objects in the catalogue made on the open series (blue contour)"
        )
        self.catalogue_reference_menu.aboutToShow.connect(self._fill_catalogue_reference_menu)
        self.catalogue_reference_menu.setEnabled(False)
        self.cases_action = file_menu.addAction("Saved &cases…")
        self.cases_action.setShortcut(QtGui.QKeySequence("Ctrl+Shift+O"))
        self.cases_action.triggered.connect(self.show_cases)
        self.tags_action = file_menu.addAction("DICOM &tags of the open series…")
        self.tags_action.setShortcut(QtGui.QKeySequence("Ctrl+I"))
        self.tags_action.triggered.connect(self.show_tags)
        self.report_action = file_menu.addAction("&Report (preview, save PDF, print)…")
        self.report_action.setShortcut(QtGui.QKeySequence.StandardKey.Print)
        self.report_action.triggered.connect(self.show_report)
        self.report_action.setEnabled(False)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("&Quit")
        quit_action.setShortcut(QtGui.QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)

        view_menu = mb.addMenu("&View")
        for a in self.viewer.shortcut_actions():
            view_menu.addAction(a)
        view_menu.addSeparator()
        self.image_only_action = view_menu.addAction("&Image only (hide the panels)")
        self.image_only_action.setCheckable(True)
        self.image_only_action.setShortcut(QtGui.QKeySequence("F11"))
        self.image_only_action.toggled.connect(self._on_image_only_toggled)
        for dock in (
            self.browser_dock,
            self.measurements_dock,
            self.form_dock,
            self.results_dock,
            self.nomogram_dock,
        ):
            view_menu.addAction(dock.toggleViewAction())

        analysis_menu = mb.addMenu("&Analysis")
        self.run_action = analysis_menu.addAction("&Analyse")
        self.run_action.setShortcuts([QtGui.QKeySequence("Ctrl+Return"), QtGui.QKeySequence("F5")])
        self.run_action.triggered.connect(self.start_analysis)
        self.cancel_action = analysis_menu.addAction("&Cancel")
        self.cancel_action.setShortcut(QtGui.QKeySequence("Ctrl+."))
        self.cancel_action.triggered.connect(self.cancel_analysis)
        reset = analysis_menu.addAction("&Reset nomogram to patient")
        reset.triggered.connect(self.session.reset_to_patient)

        help_menu = mb.addMenu("&Help")
        help_menu.addAction("&Keyboard shortcuts", self.show_shortcuts)
        help_menu.addAction("Open &log folder", self._on_open_log_folder)
        help_menu.addAction("&About SinusApp", self.show_about)

    # -- settings ----------------------------------------------------------------------
    def _restore_settings(self) -> None:
        s = self.settings
        if s is None:
            self.resize(1500, 950)
            return
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 950)
        state = s.value("window/state")
        if state is not None and self.restoreState(state, _STATE_VERSION):
            self._layout_pending = False
        triple = s.value("viewer/triple", False, type=bool)
        self.viewer.model.set_triple(bool(triple))

    def _save_settings(self) -> None:
        s = self.settings
        if s is None:
            return
        s.setValue("window/geometry", self.saveGeometry())
        state = self._state_before_image_only if self.image_only_action.isChecked() else None
        # panels hidden by "image only" (or the 1×3 fold) come back at the next start
        s.setValue("window/state", state if state is not None else self.saveState(_STATE_VERSION))
        s.setValue("viewer/triple", self.viewer.model.triple)
        s.sync()

    def showEvent(self, ev: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(ev)
        if self._layout_pending:
            self._layout_pending = False
            self.apply_default_layout()

    def apply_default_layout(self) -> None:
        """Column widths for the window's size: the studies ~18 % (220–340 px), the right
        column ~30 % (400–600 px, what the nomogram needs), the image the rest, full
        height."""
        w = max(self.width(), 800)
        left = int(min(max(0.18 * w, 220), 340))
        right = int(min(max(0.3 * w, 400), 600))
        self.resizeDocks(
            [self.browser_dock, self.form_dock], [left, right], QtCore.Qt.Orientation.Horizontal
        )

    def _on_annotations_changed(self) -> None:
        n = len(self.viewer.model.annotations)
        self.measurements_dock.setWindowTitle(f"Measurements ({n})" if n else "Measurements")

    def _on_image_only_toggled(self, on: bool) -> None:
        docks = (
            self.browser_dock,
            self.measurements_dock,
            self.form_dock,
            self.results_dock,
            self.nomogram_dock,
        )
        if on:
            # every panel that is open (its View-menu entry checked); the layout before is
            # kept so that ending "image only" puts each one back where and as large as it was
            self._state_before_image_only = self.saveState(_STATE_VERSION)
            self._image_only_hidden = [d for d in docks if d.toggleViewAction().isChecked()]
            for d in self._image_only_hidden:
                d.hide()
        else:
            state, self._state_before_image_only = self._state_before_image_only, None
            if state is None or not self.restoreState(state, _STATE_VERSION):
                for d in self._image_only_hidden:
                    d.show()
            self._image_only_hidden = []
            if self._triple_folded:  # the user brought the panels back while in 1×3
                self._triple_folded = False
                self._triple_fold_declined = True

    #: in the 1×3 layout each plane should get at least this width; when the panels leave
    #: it less (1280 × 800: 190 px each), they fold away while the 1×3 layout lasts
    MIN_TRIPLE_PLANE_PX = 400

    def triple_plane_width(self) -> float:
        """The width each plane of the 1×3 layout gets with the panels as they are now."""
        spacing = self.viewer.stage_layout.spacing()
        return (self.viewer.stage.width() - 2 * spacing) / 3

    def _update_triple_panels(self) -> None:
        """Image first in 1×3 too: with a series open, fold the side panels away when they
        would leave each plane less than :attr:`MIN_TRIPLE_PLANE_PX` (F11 brings them back);
        unfold them when the 1×3 layout ends or the series closes."""
        model = self.viewer.model
        if model.triple and model.volume is not None:
            if (
                self._triple_folded
                or self._triple_fold_declined
                or self.image_only_action.isChecked()
                or not self.isVisible()
                or self.triple_plane_width() >= self.MIN_TRIPLE_PLANE_PX
            ):
                return
            self._triple_folded = True
            self.image_only_action.setChecked(True)
            self.statusBar().showMessage(
                "1×3: the panels are folded away to give the three planes room — F11 brings "
                "them back; they return when you leave 1×3 (T)",
                10000,
            )
            return
        self._triple_fold_declined = False
        if self._triple_folded:
            self._triple_folded = False
            self.image_only_action.setChecked(False)
            if self.statusBar().currentMessage().startswith("1×3: the panels are folded"):
                self.statusBar().clearMessage()

    # -- import ------------------------------------------------------------------------
    def _on_import_dicomdir_clicked(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Import a DICOMDIR", "", "DICOMDIR (DICOMDIR dicomdir);;All files (*)"
        )
        if path:
            self.import_path(path)

    def _on_import_requested(self, path: str) -> None:
        self.import_path(path)

    def import_path(
        self,
        path: str | Path,
        *,
        open_after: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> Job | None:
        """Import ``path`` into the catalogue in the background; ``open_after``: open the
        series proposed among the ones ``path`` holds. When none of them is a sinus-capable
        CT nothing is opened: :class:`~sinusapp.ui.tools.UnsuitableSeriesDialog` lists them
        with the reasons and lets the surgeon open one anyway (issue 12)."""
        if self.import_job is not None:
            self.statusBar().showMessage("An import is already running")
            return None
        path = str(path)

        def work(progress: Callable[[float, str], None], should_cancel: Callable[[], bool]) -> Any:
            return self.catalogue.import_path(path, progress=progress, should_cancel=should_cancel)

        def finished(report: Any) -> None:
            self.import_job = None
            self._end_progress(f"Imported {Path(path).name}")
            self.browser.refresh()
            self.skipped_files = list(getattr(report, "skipped", []) or [])
            skipped = len(self.skipped_files)
            self.skipped_button.setText(f"⚠ {skipped} file(s) skipped — show")
            self.skipped_button.setVisible(bool(skipped))
            new = getattr(report, "new_files", 0)
            self.statusBar().showMessage(
                f"Imported {new} new file(s) from {path}"
                + (f"; {skipped} file(s) skipped (not images or unreadable)" if skipped else "")
            )
            # the series the folder holds (catalogued before or now), never another folder's
            uids = list(
                getattr(report, "found_series_uids", None)
                or getattr(report, "series_uids", [])
                or []
            )
            target = self._proposal_among(uids)
            if open_after:
                if target:
                    self.browser.select_series(target)
                    self.open_series(target, on_done=on_done)
                    return
                if uids:
                    self._offer_unsuitable(uids, source=path)
            elif target or len(uids) == 1:
                self.browser.select_series(target or uids[0])
            if on_done is not None:
                on_done()

        def failed(exc: BaseException) -> None:
            self.import_job = None
            self._end_progress("Import failed")
            self.show_error("Import failed", exc)

        def cancelled() -> None:
            self.import_job = None
            self._end_progress("Import cancelled")
            self.browser.refresh()

        self._begin_progress(f"Importing {Path(path).name}…")
        self.import_job = self.runner.start(
            work,
            name="import",
            on_finished=finished,
            on_failed=failed,
            on_cancelled=cancelled,
            on_progress=self._on_progress,
        )
        return self.import_job

    def _proposal_among(self, uids: list[str]) -> str | None:
        """The first proposed (sinus-capable, best-ranked of its study) series among
        ``uids``, else their best-ranked sinus-capable one (its study's proposal may lie in
        another folder); never a series only because it is the folder's only one."""
        series = [e[2] for u in uids if (e := self.browser._entries.get(u)) is not None]
        for se in series:
            if se.proposed:
                return str(se.series_uid)
        eligible = [se for se in series if se.kind == "image" and se.candidate.eligible]
        if eligible:
            return str(max(eligible, key=lambda se: se.candidate.score).series_uid)
        return None

    def _offer_unsuitable(self, uids: list[str], *, source: str) -> QtWidgets.QDialog | None:
        """None of ``uids`` is a sinus-capable CT: open nothing, show them in Studies and in
        a dialog with the reasons, and let the surgeon choose (Open anyway)."""
        from sinusapp.ui.tools import UnsuitableSeriesDialog

        rows = []
        for uid in uids:
            entry = self.browser._entries.get(uid)
            if entry is None or entry[2].kind != "image":
                continue
            se = entry[2]
            thick = "?" if se.slice_thickness_mm is None else f"{se.slice_thickness_mm:g} mm"
            facts = (
                f"{se.modality or '?'}, {se.n_frames or se.n_instances} images, {thick}, "
                f"kernel {se.convolution_kernel or '?'}"
            )
            reasons = list(se.candidate.reasons) + [
                f"input quality: {f.message}"
                for f in self.browser.gate_findings.get(uid, ())
                if str(f.severity) in ("warning", "error")
            ]
            rows.append((uid, se.description, facts, reasons))
        # the browser shows them too (reasons in the tooltip and the details)
        if self.image_only_action.isChecked():
            self.image_only_action.setChecked(False)
        self.browser_dock.show()
        self.browser_dock.raise_()
        self.browser.select_series(rows[0][0] if rows else uids[0])
        self.statusBar().showMessage(
            f"No sinus-capable CT in {Path(source).name or source}: nothing was opened (see ⚠ "
            "and the reasons in Studies)",
            15000,
        )
        if not rows:
            return None
        if self.unsuitable_dialog is not None:
            self.unsuitable_dialog.close()
        dlg = UnsuitableSeriesDialog(rows, source=str(source), parent=self)
        dlg.open_requested.connect(lambda uid: self.open_series(uid))
        dlg.finished.connect(lambda _r, d=dlg: self._forget_unsuitable_dialog(d))
        self.unsuitable_dialog = dlg
        return self._open_dialog(dlg)

    def _forget_unsuitable_dialog(self, dlg: QtWidgets.QDialog) -> None:
        if self.unsuitable_dialog is dlg:
            self.unsuitable_dialog = None

    def _unsuitable_finding(self, series_uid: str) -> Any | None:
        """The warning an image series carries when it is no sinus-capable CT (None when it
        is one, or not in the browser)."""
        entry = self.browser._entries.get(series_uid)
        if entry is None or entry[2].kind != "image" or entry[2].candidate.eligible:
            return None
        se = entry[2]
        return unsuitable_series_finding(description=se.description, reasons=se.candidate.reasons)

    def _on_delete_requested(self, uid: str) -> None:
        try:
            self.catalogue.delete_series(uid)
        except Exception as exc:  # noqa: BLE001 — shown to the user; the catalogue stays as it was
            self.show_error("Cannot delete the series", exc)
            return
        if uid == self.series_uid:
            self.set_volume(None)
        self.browser.refresh()
        self.statusBar().showMessage("Series removed from the catalogue")

    # -- open a series -------------------------------------------------------------------
    def _load_from_catalogue(
        self,
        series_uid: str,
        progress: Callable[[float, str], None],
        should_cancel: Callable[[], bool] | None = None,
    ) -> Volume:
        """Build the series' volume from its catalogued headers (worker thread)."""
        from sinusapp.dicom import volume_from_headers

        headers = self.catalogue.headers(series_uid)
        return volume_from_headers(headers, progress=progress, should_cancel=should_cancel)

    def open_series(
        self, series_uid: str, *, on_done: Callable[[], None] | None = None
    ) -> Job | None:
        """Load a series in the background and show it (coronal first). A DICOM SEG of the
        catalogue is shown as the blue reference on its CT (opened first when needed)."""
        entry = self.browser._entries.get(series_uid)
        if entry is not None and entry[2].kind == "segmentation":
            return self.open_segmentation(series_uid, on_done=on_done)
        if self.load_job is not None:
            self.load_job.cancel()
        self._flush_clinical()

        def work(
            progress: Callable[[float, str], None], should_cancel: Callable[[], bool]
        ) -> _Opened:
            volume = self._load_volume(series_uid, progress, should_cancel)
            if should_cancel():
                raise Cancelled(f"opening series {series_uid} cancelled")
            record = self._read_record(series_uid)
            progress(1.0, "Finding the sinuses…")
            return _Opened(volume, *record, region=opening_region(volume))

        def finished(opened: _Opened) -> None:
            if self.load_job is job:
                self.load_job = None
            self._end_progress("")
            unsuitable = self._unsuitable_finding(series_uid)
            if unsuitable is not None:
                # opened anyway: the volume carries the warning, so every analysis of it
                # (screen, record, report) does too
                opened = dataclasses.replace(opened, volume=opened.volume.with_findings(unsuitable))
            self.set_volume(opened.volume, series_uid=series_uid, opened=opened)
            if on_done is not None:
                on_done()

        def failed(exc: BaseException) -> None:
            if self.load_job is job:
                self.load_job = None
            self._end_progress("Could not open the series")
            self.show_error("Cannot open this series", exc)

        def cancelled() -> None:
            if self.load_job is job:
                self.load_job = None
            self._end_progress("")

        self._begin_progress("Loading series…")
        self.load_job = job = self.runner.start(
            work,
            name="load",
            on_finished=finished,
            on_failed=failed,
            on_cancelled=cancelled,
            on_progress=self._on_progress,
        )
        return self.load_job

    def _read_record(self, series_uid: str) -> tuple[Any, Any, Any]:
        """Case record, saved mask and its bounding box (runs on the worker thread)."""
        if self.records is None or not series_uid:
            return None, None, None
        try:
            rec = self.records.load(series_uid=series_uid)
            mask = self.records.load_mask(series_uid=series_uid) if rec and rec.result else None
        except Exception:  # a damaged record must not stop the series from opening
            log.exception("cannot read the case record of %s", series_uid)
            return None, None, None
        return rec, mask, (mask_bbox(mask) if mask is not None else None)

    def set_volume(
        self,
        volume: Volume | None,
        *,
        series_uid: str | None = None,
        opened: _Opened | None = None,
    ) -> None:
        """Show ``volume``; reopen its case record (clinical entries, last result)."""
        self._flush_clinical()
        if self.analysis_job is not None:
            self.analysis_job.cancel()
        self.viewer.set_volume(volume)
        if volume is None:
            self.session.model.open_case(volume=None)
            self.reference_source = None
            self.catalogue_reference_menu.setEnabled(False)
        else:
            info = volume.info
            self.setWindowTitle(
                f"{(info.patient_name or '').replace('^', ' ')} — {info.series_description} — "
                f"SinusApp {__version__} (research use only)"
            )
            uid = series_uid or volume.info.series_uid
            if opened is None:
                opened = _Opened(volume, *self._read_record(uid))
            focus = opening_voxel(volume, region=opened.region)  # None: stay at the middle
            if focus is not None:
                self.viewer.model.set_cursor(focus)
            self._reopen_record(volume, uid, opened)
            self.statusBar().showMessage(
                f"Opened {info.series_description or 'series'}: {volume.shape[0]} slices, "
                f"{' × '.join(f'{s:.2f}' for s in volume.spacing_mm)} mm"
            )
            for f in volume.findings:
                if f.severity is not Severity.INFO:
                    self.statusBar().showMessage(f"⚠ {f.message}", 10000)
        unsuitable = [
            f
            for f in (volume.findings if volume is not None else ())
            if f.code == UNSUITABLE_SERIES
        ]
        self.series_warning.setText("\n".join(f"⚠ {f.message}" for f in unsuitable))
        self.series_warning.setVisible(bool(unsuitable))
        self._on_analyse_state_changed()

    def _reopen_record(self, volume: Volume, series_uid: str, opened: _Opened) -> None:
        """Open the case in the model with its saved entries and result; the form follows."""
        rec = opened.record
        result = None
        if rec is not None and rec.result:
            try:
                result = result_from_json(rec.result, volume=volume, mask=opened.mask)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("cannot restore the saved result of %s: %s", series_uid, exc)
        if result is not None:
            # a series opened anyway keeps its warning, also on a result saved without it
            missing = [
                f
                for f in volume.findings
                if f.code == UNSUITABLE_SERIES and f not in tuple(result.warnings)
            ]
            if missing:
                result = dataclasses.replace(result, warnings=(*result.warnings, *missing))
        typed_before = any(v not in (None, "") for v in self.form.raw().values())
        self.session.model.open_case(
            volume=volume,
            series_uid=series_uid,
            clinical_raw=rec.clinical if rec is not None else None,
            result=result,
            sinus_region=opened.region,
        )
        if rec is None and typed_before and self.session.model.clinical_raw:
            self._save_timer.start()  # values typed before opening: they belong to this case
        if result is not None:
            self._show_mask(result, bbox=opened.bbox if opened.mask is not None else None)
            self.statusBar().showMessage(
                f"Reopened the case saved {rec.updated_at} (model {rec.model_name} "
                f"{rec.model_version})"
            )
        self.reference_source = None
        reference = getattr(rec, "reference", None) if rec is not None else None
        if reference:
            self._restore_reference(reference)
        else:
            self._offer_catalogue_references()

    # -- clinical ------------------------------------------------------------------------
    @property
    def series_uid(self) -> str:
        """The open series (the case model's)."""
        return self.session.model.series_uid

    def _on_form_changed(self, raw: dict) -> None:
        self.session.set_clinical(raw)
        self._save_timer.start()

    def _on_session_clinical_changed(self, raw: dict) -> None:
        # the model's entered inputs (a record reopened, another patient): the form follows
        if raw != self.form.raw():
            self.form.set_raw(raw)
        self._on_analyse_state_changed()

    def _save_clinical(self) -> None:
        try:
            self.session.model.save_clinical()
        except Exception:  # keep working: the form still holds the values
            log.exception("cannot save the clinical entries")
            self.statusBar().showMessage("⚠ Could not save the clinical entries (see the log)")

    def _flush_clinical(self) -> None:
        if self._save_timer.isActive():
            self._save_timer.stop()
            self._save_clinical()

    # -- analysis ------------------------------------------------------------------------
    def _on_analyse_state_changed(self, *_args: Any) -> None:
        busy = self.analysis_job is not None
        reason = "\n".join(self.session.model.analyse_blockers())
        self.analyse_button.setEnabled(not busy and not reason)
        self.report_action.setEnabled(self.session.result is not None)
        self.run_action.setEnabled(not busy and not reason)
        self.cancel_button.setEnabled(busy)
        self.cancel_action.setEnabled(busy)
        if not busy:
            self.analyse_hint.setText(reason)

    def _get_predictor(self) -> Any:
        with self._predictor_lock:
            if self._predictor is None:
                self._predictor = self._predictor_factory()
            return self._predictor

    def start_analysis(self) -> Job | None:
        """Run segmentation + DLR-score + nomogram on the open series in the background."""
        volume = self.session.volume
        inputs = self.form.inputs()
        if self.analysis_job is not None or volume is None or inputs is None:
            return None
        nomogram = self.session.nomogram
        if nomogram is None:
            return None
        clinical = inputs.to_dict()
        region = self.session.model.sinus_region  # located on opening

        def work(progress: Callable[[float, str], None], should_cancel: Callable[[], bool]) -> Any:
            result = analyse_case(
                volume=volume,
                clinical=clinical,
                get_predictor=self._get_predictor,
                nomogram=nomogram,
                progress=progress,
                should_cancel=should_cancel,
                sinus_region=region,
            )
            # the whole-volume passes, off the GUI thread
            return result, mask_bbox(result.mask), pack_mask(result.mask)

        def finished(out: tuple[Any, Any, bytes | None]) -> None:
            result, bbox, packed = out
            self.analysis_job = None
            self._end_progress("Analysis done")
            self._on_analyse_state_changed()
            if self.session.volume is not volume:
                return  # another series was opened meanwhile
            # never lose what was typed while the model ran: the model recomputes the
            # nomogram part for the entries held now (the DLR-score is the model's)
            self._show_result(result, bbox=bbox)
            self._save_result(packed)
            self.results_dock.raise_()

        def failed(exc: BaseException) -> None:
            self.analysis_job = None
            self._end_progress(analysis_failure_status(exc))
            self._on_analyse_state_changed()
            stopped = isinstance(exc, InputQualityError)
            self.show_error("The analysis was stopped" if stopped else "The analysis failed", exc)

        def cancelled() -> None:
            self.analysis_job = None
            self._end_progress("Analysis cancelled")
            self._on_analyse_state_changed()

        self._begin_progress("Analysing…")
        self.analysis_job = self.runner.start(
            work,
            name="analysis",
            on_finished=finished,
            on_failed=failed,
            on_cancelled=cancelled,
            on_progress=self._on_progress,
        )
        self._on_analyse_state_changed()
        self.analyse_hint.setText("The model runs in the background; you can keep reading the CT.")
        return self.analysis_job

    def show_report(self) -> QtWidgets.QDialog | None:
        """The report dialog for the current result (the analysed patient's values)."""
        result = self.session.result
        if result is None:
            return None
        from sinusapp.ui.report_dialog import ReportDialog

        source_dir = None
        try:
            headers = self.catalogue.headers(self.series_uid) if self.series_uid else []
            folders = {str(Path(h.path).parent) for h in headers}
            if len(folders) == 1:
                source_dir = folders.pop()
        except Exception:  # export for PACS is then simply not offered
            log.exception("cannot find the series folder for the PACS export")
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            dlg = ReportDialog(
                result,
                self,
                nomogram=self.session.nomogram,
                reference_mask=self.viewer.model.masks.get("reference"),
                source_dir=source_dir,
            )
        except Exception as exc:  # noqa: BLE001 — shown to the user with the log path
            self.show_error("The report could not be prepared", exc)
            return None
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        self._dialogs.append(dlg)
        dlg.finished.connect(
            lambda _r, d=dlg: self._dialogs.remove(d) if d in self._dialogs else None
        )
        dlg.open()
        return dlg

    def cancel_analysis(self) -> None:
        """Stop the running analysis (no result will be shown)."""
        if self.analysis_job is not None:
            self.analysis_job.cancel()
            self.progress.setFormat("Cancelling…")

    def _show_mask(self, result: Any, *, bbox: Any = True) -> None:
        try:
            self.viewer.model.set_mask("model", result.mask, bbox=bbox)
            self.viewer.model.focus_mask("model")
        except ValueError as exc:
            log.warning("model mask not shown: %s", exc)

    def _show_result(self, result: Any, *, bbox: Any = True) -> None:
        """Hand a finished analysis to the case model and show its contour."""
        self._show_mask(result, bbox=bbox)
        self.session.set_result(result)

    def _save_result(self, packed: bytes | None) -> None:
        """Store the analysed result and the entered inputs in the case record."""
        self._save_timer.stop()
        try:
            self.session.model.save_result(mask_npz=packed)
        except Exception:  # the result stays on screen; re-running saves it again
            log.exception("cannot save the result")
            self.statusBar().showMessage("⚠ Could not save the result (see the log)")

    # -- reference segmentation --------------------------------------------------------
    def catalogue_segmentations(self, series_uid: str | None = None) -> list[tuple[str, str]]:
        """``(SEG series uid, description)`` of the catalogue's DICOM SEG objects made on
        ``series_uid`` (default: the open series)."""
        uid = series_uid or self.series_uid
        if not uid:
            return []
        out = []
        for seg_uid, (_, _, se) in self.browser._entries.items():
            if se.kind == "segmentation" and uid in (se.referenced_series_uids or ()):
                out.append((seg_uid, se.description or f"SEG series {se.series_number or ''}"))
        return out

    def _fill_catalogue_reference_menu(self) -> None:
        menu = self.catalogue_reference_menu
        menu.clear()
        for seg_uid, desc in self.catalogue_segmentations():
            act = menu.addAction(desc)
            act.triggered.connect(lambda _=False, u=seg_uid: self.open_segmentation(u))
        if menu.isEmpty():
            menu.addAction("(no segmentation of this series in the catalogue)").setEnabled(False)

    def _offer_catalogue_references(self) -> None:
        segs = self.catalogue_segmentations()
        self.catalogue_reference_menu.setEnabled(bool(segs))
        if segs and self.viewer.model.masks.get("reference") is None:
            self.statusBar().showMessage(
                f"{len(segs)} segmentation(s) of this series in the catalogue: File ▸ "
                "Reference from the catalogue, or double-click it in Studies (blue contour)",
                15000,
            )

    def open_segmentation(
        self, seg_uid: str, *, on_done: Callable[[], None] | None = None
    ) -> Job | None:
        """Show the catalogue's DICOM SEG ``seg_uid`` as the blue reference on the CT it was
        made on: at once when that CT is open, else after opening it. A SEG whose CT is not
        in the catalogue ends in an error dialog."""
        entry = self.browser._entries.get(seg_uid)
        if entry is None or entry[2].kind != "segmentation":
            self.show_error(
                "Not a segmentation", SinusAppError(f"series {seg_uid} is no DICOM SEG")
            )
            return None
        refs = tuple(entry[2].referenced_series_uids or ())
        try:
            headers = self.catalogue.headers(seg_uid)
        except Exception as exc:  # noqa: BLE001 — shown to the user with the log path
            self.show_error("Cannot read the segmentation", exc)
            return None
        if not headers:
            self.show_error(
                "Cannot read the segmentation",
                SinusAppError(f"the catalogue has no file for segmentation {seg_uid}"),
            )
            return None
        remember = {
            "source": "catalogue",
            "series_uid": seg_uid,
            "description": entry[2].description,
            "path": headers[0].path,
        }
        if self.series_uid and self.series_uid in refs:
            return self.load_reference(headers[0].path, remember=remember, on_done=on_done)
        target = next((u for u in refs if u in self.browser._entries), None)
        if target is None:
            self.show_error(
                "Cannot use this segmentation",
                SinusAppError(
                    "the CT series this segmentation was made on is not in the catalogue",
                    hint="import the CT series it belongs to, then open the segmentation again",
                ),
            )
            return None
        self.browser.select_series(target)

        def then() -> None:
            if self.series_uid == target:
                self.load_reference(headers[0].path, remember=remember, on_done=on_done)

        return self.open_series(target, on_done=then)

    def _restore_reference(self, reference: Any) -> None:
        """Load the reference remembered with the reopened case (if it is still there)."""
        if not isinstance(reference, dict):
            return
        path = reference.get("path")
        if reference.get("source") == "catalogue":
            try:
                headers = self.catalogue.headers(str(reference.get("series_uid", "")))
            except Exception:  # the reference is then only not shown
                log.exception("cannot look up the remembered reference %s", reference)
                headers = []
            path = headers[0].path if headers else None
        if not path or not Path(path).is_file():
            self.statusBar().showMessage(
                f"⚠ The reference segmentation saved with this case is no longer there "
                f"({reference.get('description') or reference.get('path') or '?'})",
                15000,
            )
            return
        self.load_reference(path, remember=dict(reference, path=str(path)), save=False)

    def _remember_reference(self, reference: dict[str, Any] | None) -> None:
        model = self.session.model
        if self.records is None or not model.series_uid:
            return
        info = model.volume.info if model.volume is not None else None
        try:
            self.records.save_reference(
                series_uid=model.series_uid,
                reference=reference,
                study_uid=info.study_uid if info else "",
                patient_id=info.patient_id if info else "",
            )
        except Exception:  # the contour stays on screen; only the record lacks it
            log.exception("cannot remember the reference segmentation")
            self.statusBar().showMessage("⚠ Could not save the reference with the case")

    def _on_load_reference_clicked(self) -> None:
        if self.session.volume is None:
            self.show_error("No series open", SinusAppError("open a CT series first"))
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self,
            "Reference segmentation",
            "",
            "Segmentations (*.dcm *.nrrd *.seg.nrrd *.nii *.nii.gz);;All files (*)",
        )
        if path:
            self.load_reference(path)

    def load_reference(
        self,
        path: str | Path,
        *,
        remember: dict[str, Any] | None = None,
        save: bool = True,
        on_done: Callable[[], None] | None = None,
    ) -> Job | None:
        """Load a reference mask (blue contour) matching the open series, in the background;
        it is remembered with the case (``remember``: what to record, default the file's
        path; ``save=False``: it came from the record).

        A file that does not match the series (other frame of reference, no overlap, wrong
        format) ends in an error dialog; the previous reference stays.
        """
        volume = self.session.volume
        if volume is None:
            return None
        path = Path(path)
        record = remember or {"source": "file", "path": str(path.resolve())}

        def work(progress: Callable[[float, str], None], _cancel: Callable[[], bool]) -> Any:
            from sinusapp.imaging.masks import load_reference_mask

            progress(0.1, "reading the reference segmentation")
            mask = load_reference_mask(path, volume=volume)
            return mask, mask_bbox(mask)

        def finished(out: tuple[Any, Any]) -> None:
            self._end_progress("")
            if self.session.volume is not volume:
                return
            mask, bbox = out
            try:
                self.viewer.model.set_mask("reference", mask, bbox=bbox)
            except ValueError as exc:
                self.show_error("Cannot use this reference segmentation", exc)
                return
            self.viewer.model.focus_mask("reference")
            self.reference_source = dict(record)
            if save:
                self._remember_reference(self.reference_source)
            d = self.viewer.model.dice()
            what = record.get("description") if record.get("source") == "catalogue" else None
            self.statusBar().showMessage(
                f"Reference segmentation loaded from {what or path.name}"
                + ("" if d is None else f" — DSC model vs reference {d:.3f}")
            )
            if on_done is not None:
                on_done()

        def failed(exc: BaseException) -> None:
            self._end_progress("")
            self.show_error("Cannot use this reference segmentation", exc)

        self._begin_progress("Loading the reference segmentation…")
        return self.runner.start(
            work,
            name="reference",
            on_finished=finished,
            on_failed=failed,
            on_progress=self._on_progress,
        )

    # -- progress / errors ---------------------------------------------------------------
    def _begin_progress(self, text: str) -> None:
        self.progress.setValue(0)
        self.progress.setFormat(text)
        self.statusBar().showMessage(text)

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        if text:
            self.progress.setFormat(f"{text} — %p%")

    def _end_progress(self, text: str) -> None:
        self.progress.setValue(0 if not text.endswith("done") else 1000)
        self.progress.setFormat(text)
        if text:
            self.statusBar().showMessage(text, 8000)

    def show_error(self, title: str, exc: BaseException) -> None:
        """Non-blocking error dialog: what went wrong and what to do."""
        if isinstance(exc, SinusAppError):
            text = exc.message
            if exc.path is not None:
                text += f"\n\nFile: {exc.path}"
            info = exc.hint or ""
        else:
            from sinusapp.paths import log_path

            text = f"An unexpected error occurred: {exc}"
            info = f"Nothing you entered is lost. Details are in the log file:\n{log_path()}"
        self.last_error = f"{title}: {text}"
        log.warning("%s", self.last_error)
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Warning,
            title,
            text,
            QtWidgets.QMessageBox.StandardButton.Ok,
            self,
        )
        if info:
            box.setInformativeText(info)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(
            lambda _r, b=box: self._dialogs.remove(b) if b in self._dialogs else None
        )
        self._dialogs.append(box)
        box.open()

    # -- tools -----------------------------------------------------------------------------
    def _open_dialog(self, dlg: QtWidgets.QDialog) -> QtWidgets.QDialog:
        dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        self._dialogs.append(dlg)
        dlg.finished.connect(
            lambda _r, d=dlg: self._dialogs.remove(d) if d in self._dialogs else None
        )
        dlg.open()
        return dlg

    def show_cases(self) -> QtWidgets.QDialog | None:
        """The list of saved cases; Open loads the series with its record."""
        from sinusapp.ui.tools import CasesDialog

        try:
            dlg = CasesDialog(self.records, self)
        except Exception as exc:  # noqa: BLE001 — shown to the user with the log path
            self.show_error("Cannot list the saved cases", exc)
            return None
        dlg.open_requested.connect(self._on_case_requested)
        return self._open_dialog(dlg)

    def _on_case_requested(self, series_uid: str) -> None:
        self.browser.select_series(series_uid)
        self.open_series(series_uid)

    def show_tags(self) -> QtWidgets.QDialog | None:
        """The DICOM tags of the open (else the selected) series' first file."""
        from sinusapp.ui.tools import TagViewer

        uid = self.series_uid or (self.browser.selected_series_uid() or "")
        if not uid:
            self.show_error("No series", SinusAppError("open or select a series first"))
            return None
        try:
            headers = self.catalogue.headers(uid)
            if not headers:
                raise SinusAppError(f"the catalogue has no files for series {uid}")
            dlg = TagViewer(headers[0].path, self)
        except Exception as exc:  # noqa: BLE001 — shown to the user with the log path
            self.show_error("Cannot show the DICOM tags", exc)
            return None
        return self._open_dialog(dlg)

    def show_skipped(self) -> QtWidgets.QDialog:
        """The files the last import skipped, with the reasons."""
        from sinusapp.ui.tools import SkippedFilesDialog

        return self._open_dialog(SkippedFilesDialog(self.skipped_files, self))

    # -- help ------------------------------------------------------------------------------
    def about_text(self) -> str:
        """Versions, model card and what the model may be used for (HTML); the statement
        follows the bundle's manifest (synthetic training data, or the institution's own)."""
        versions = [f"SinusApp {__version__}", f"Python {platform.python_version()}"]
        for dist in (
            "PySide6-Essentials",
            "pyqtgraph",
            "numpy",
            "pydicom",
            "torch",
            "scikit-image",
        ):
            try:
                versions.append(f"{dist} {metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                continue
        statement = self.model_statement
        card = statement.card
        nomo = self.session.nomogram
        nomo_text = ""
        if nomo is not None:
            t = getattr(nomo, "training", None)
            nomo_text = (
                f"<p><b>Nomogram:</b> {nomo.title}, cutoff {nomo.cutoff:.2f}"
                + (f", fitted on {t.n} patients ({t.events} recurrences)" if t is not None else "")
                + "</p>"
            )
        return (
            f"<h3>SinusApp {__version__}</h3>"
            "<p>Preoperative risk of chronic rhinosinusitis recurrence after endoscopic sinus "
            "surgery from sinus CT and clinical factors, after He et al., <i>iScience</i> 26, "
            "106527 (2023).</p>"
            f"<p style='color:#c62828'><b>{_escape(statement.long_text)}</b></p>"
            f"{nomo_text}"
            f"<p><b>Versions:</b> {', '.join(versions)}</p>"
            "<p>Works offline; no data leaves this workstation.</p>"
            "<h4>Model card</h4>" + _markdown_html(card)
        )

    def show_about(self) -> None:
        """The About box."""
        dlg = QtWidgets.QDialog(self)
        dlg.setWindowTitle("About SinusApp")
        text = QtWidgets.QTextBrowser(dlg)
        text.setHtml(self.about_text())
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close, dlg)
        buttons.rejected.connect(dlg.reject)
        lay = QtWidgets.QVBoxLayout(dlg)
        lay.addWidget(text)
        lay.addWidget(buttons)
        dlg.resize(640, 560)
        dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.open()

    def show_shortcuts(self) -> None:
        """A list of the viewer's keys and mouse gestures."""
        rows = [(a.text(), a.shortcut().toString()) for a in self.viewer.shortcut_actions()]
        rows += [
            ("Next / previous slice", "Up / Down, mouse wheel"),
            ("10 slices", "Page Up / Page Down"),
            ("Zoom", "Ctrl + wheel"),
            ("Pan", "left drag"),
            ("Window / level", "right drag"),
            ("Move the crosshair (1×3)", "left click"),
            ("Analyse", "Ctrl+Return or F5"),
        ]
        html = (
            "<table>"
            + "".join(f"<tr><td>{a}</td><td><b>{k}</b></td></tr>" for a, k in rows)
            + "</table>"
        )
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.NoIcon,
            "Keyboard shortcuts",
            html,
            QtWidgets.QMessageBox.StandardButton.Ok,
            self,
        )
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _on_open_log_folder(self) -> None:
        from sinusapp.paths import log_path

        QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(log_path().parent)))

    # -- window events ---------------------------------------------------------------------
    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:  # noqa: N802 (Qt API)
        for url in ev.mimeData().urls():
            if url.isLocalFile():
                self.import_path(url.toLocalFile(), open_after=True)
                break
        ev.acceptProposedAction()

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt API)
        self._flush_clinical()
        self._save_settings()
        thumbs_stopped = self.browser.shutdown(timeout_ms=self.shutdown_timeout_ms)
        if (
            self._close_when_idle
            or not self.runner.shutdown(timeout_ms=self.shutdown_timeout_ms)
            or not thumbs_stopped
        ):
            # a thread still runs: destroying it would abort the app, so the window stays
            # until the last job reports (then _on_runner_busy_changed closes it again)
            names = ", ".join(
                job.name for job in (*self.runner.jobs, *self.browser.thumb_runner.jobs)
            )
            log.warning("closing postponed: background work still stopping (%s)", names)
            self._close_when_idle = True
            self.statusBar().showMessage(
                "Still stopping the background work… the window closes when it has stopped."
            )
            ev.ignore()
            return
        for dialog in list(self._dialogs):
            dialog.close()
        super().closeEvent(ev)

    def _on_runner_busy_changed(self, busy: bool) -> None:
        """Finish a close that was postponed while background work was stopping."""
        idle = not self.runner.jobs and not self.browser.thumb_runner.jobs
        if not busy and idle and self._close_when_idle:
            self._close_when_idle = False
            log.info("background work stopped: closing the window")
            self.close()


#: version of the saved dock layout; bump when the default arrangement changes
_STATE_VERSION = 3


@dataclass(frozen=True, slots=True)
class _Opened:
    """What the load job hands to the GUI thread: the volume and its saved case."""

    volume: Volume
    record: Any = None
    mask: Any = None
    bbox: Any = None
    #: the sinus region located on opening: the viewer opens at its centre and the analysis
    #: is handed it (None: not found; the viewer opens at the middle)
    region: Any = None


def _default_predictor() -> Any:
    from sinusapp.model import Predictor

    return Predictor(device="auto")


def _markdown_html(markdown: str) -> str:
    """The model card (Markdown) as rich-text HTML body, rendered by Qt's Markdown reader
    (headings, lists, tables and emphasis instead of raw ``##`` and ``**``)."""
    doc = QtGui.QTextDocument()
    doc.setMarkdown(markdown)
    html = doc.toHtml()
    start, end = html.find("<body"), html.rfind("</body>")
    if start < 0 or end < 0:
        return f"<pre style='white-space:pre-wrap'>{_escape(markdown)}</pre>"
    return html[html.index(">", start) + 1 : end]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
