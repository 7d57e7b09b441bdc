"""DICOM browser over the local catalogue: patient → study → series, search, thumbnails,
the proposed analysis series highlighted with its reasons, geometry warnings and the input
plausibility gate's findings (a warning icon with a tooltip on the series).

Thumbnails are made lazily, for the rows on screen, by a background job (one at a time,
never on the GUI thread), in a window that suits the series (:func:`thumbnail_window`), and
kept for the session.

The browser only shows and asks: importing and loading run as jobs in the main window; the
catalogue (:class:`sinusapp.dicom.catalogue.Catalogue`) does the work.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

__all__ = ["DicomBrowser", "render_thumbnail", "thumbnail_window"]

log = logging.getLogger(__name__)

_COLUMNS = ("Patient / study / series", "#", "Mod.", "Images", "Thick. (mm)", "Kernel")
_UID_ROLE = QtCore.Qt.ItemDataRole.UserRole
_KIND_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
_PROPOSED_BG = QtGui.QColor(46, 125, 50, 60)
#: most height the series details below the tree take (they scroll beyond it)
_DETAILS_MAX_PX = 240
#: size of the thumbnails in the tree rows (the preview below the tree is 160 px)
TREE_ICON_PX = 36
_PREVIEW_PX = 160


def _fmt_date(d: str) -> str:
    d = (d or "").strip()
    return f"{d[:4]}-{d[4:6]}-{d[6:]}" if len(d) == 8 and d.isdigit() else d


def thumbnail_window(
    pixels: np.ndarray, *, kernel: str = "", modality: str = "CT"
) -> tuple[float, float, str]:
    """``(window, level, name)`` for a series' thumbnail.

    A CT in a sharp (bone) kernel gets the sinus / bone window (2000 / 400 HU), one in a soft
    kernel the soft-tissue window (400 / 40 HU): what the reconstruction was made to show.
    An unknown kernel, or values that are not HU (MR, CR), get a percentile window over the
    image's own values (1st to 99.5th percentile of the pixels above the background), so
    every thumbnail shows its anatomy rather than a white or black square.
    """
    from sinusapp.imaging.plausibility import classify_kernel

    if (modality or "CT").upper() == "CT":
        kind = classify_kernel(kernel or "")
        if kind == "sharp":
            return 2000.0, 400.0, "bone"
        if kind == "soft":
            return 400.0, 40.0, "soft tissue"
    a = np.asarray(pixels, np.float32)
    fg = a[a > a.min()] if a.size else a
    if fg.size < 16:
        fg = a.ravel()
    if fg.size == 0:
        return 1.0, 0.0, "percentile"
    lo, hi = (float(v) for v in np.percentile(fg, [1.0, 99.5]))
    width = max(hi - lo, 1.0)
    return width, lo + width / 2, "percentile"


def render_thumbnail(headers: list[Any], *, kernel: str = "", modality: str = "CT") -> QtGui.QImage:
    """The middle image of a series as a grey QImage (:data:`_PREVIEW_PX` px) in the window
    :func:`thumbnail_window` chooses. Runs on a worker thread (a QImage, unlike a QPixmap,
    may be made off the GUI thread).

    Raises
    ------
    ValueError
        ``headers`` is empty.
    """
    if not headers:
        raise ValueError("a thumbnail needs at least one image header; got none")
    from sinusapp.dicom import read_frame_hu

    ordered = sorted(headers, key=lambda h: (h.instance_number or 0, h.path))
    h = ordered[len(ordered) // 2]
    n = int(h.number_of_frames or 1)
    frame = n // 2 if len(ordered) == 1 and n > 1 else 0
    pixels = read_frame_hu(h.path, frame=frame)
    window, level, _ = thumbnail_window(pixels, kernel=kernel, modality=modality)
    return thumbnail_image(pixels, size=_PREVIEW_PX, window_hu=window, level_hu=level)


def series_gate_findings(se: Any) -> tuple[Any, ...]:
    """The plausibility gate's header findings for a catalogue series (image series only)."""
    if getattr(se, "kind", "image") != "image":
        return ()
    from sinusapp.imaging.plausibility import check_series_header

    return check_series_header(
        modality=se.modality,
        slice_thickness_mm=se.slice_thickness_mm,
        spacing_mm=getattr(se, "spacing_mm", None),
        convolution_kernel=se.convolution_kernel,
    )


def thumbnail_image(
    hu: np.ndarray, *, size: int = 160, window_hu: float = 2000.0, level_hu: float = 400.0
) -> QtGui.QImage:
    """A grey QImage of a HU slice in the given window, scaled to ``size`` pixels."""
    lo = level_hu - window_hu / 2
    g = np.clip((np.asarray(hu, np.float32) - lo) / window_hu * 255.0, 0, 255).astype(np.uint8)
    g = np.ascontiguousarray(g)
    h, w = g.shape
    img = QtGui.QImage(g.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8).copy()
    return img.scaled(
        size,
        size,
        QtCore.Qt.AspectRatioMode.KeepAspectRatio,
        QtCore.Qt.TransformationMode.SmoothTransformation,
    )


class _DetailsBox(QtWidgets.QScrollArea):
    """The series details below the tree: as tall as their wrapped text, at most
    ``_DETAILS_MAX_PX`` (then they scroll), never lower than the preview beside them."""

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt API)
        hint = super().sizeHint()
        label = self.widget()
        if label is None:
            return hint
        width = max(self.viewport().width(), 60)
        text_h = label.heightForWidth(width)
        if text_h < 0:
            text_h = label.sizeHint().height()
        return QtCore.QSize(
            hint.width(), int(min(max(text_h + 4, self.minimumHeight()), _DETAILS_MAX_PX))
        )

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(ev)
        if ev.oldSize().width() != ev.size().width():
            self.updateGeometry()  # the text wraps to another height


class DicomBrowser(QtWidgets.QWidget):
    """Catalogue tree with search, import / delete buttons, thumbnail and candidate details.

    Signals
    -------
    open_requested(str):
        The user wants to open the series with this UID (double-click or Open).
    import_requested(str):
        A folder / DICOMDIR to import (button or drag and drop).
    delete_requested(str):
        Remove this series from the catalogue (after confirmation).
    """

    open_requested = QtCore.Signal(str)
    import_requested = QtCore.Signal(str)
    delete_requested = QtCore.Signal(str)

    def __init__(self, catalogue: Any, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.catalogue = catalogue
        self._entries: dict[str, tuple[Any, Any, Any]] = {}  # series uid → (patient, study, series)
        #: thumbnails made so far (series uid → image; None: none could be made)
        self.thumbnails: dict[str, QtGui.QImage | None] = {}
        self._thumb_queue: list[str] = []
        self._thumb_job: Any | None = None
        #: the gate's header findings per series uid
        self.gate_findings: dict[str, tuple[Any, ...]] = {}
        from sinusapp.ui.worker import JobRunner

        #: the thumbnail jobs (its own runner: they never make the window look busy)
        self.thumb_runner = JobRunner(self)
        self._visible_timer = QtCore.QTimer(self)
        self._visible_timer.setSingleShot(True)
        self._visible_timer.setInterval(60)
        self._visible_timer.timeout.connect(self._request_visible_thumbnails)

        self.search = QtWidgets.QLineEdit(self)
        self.search.setPlaceholderText("Search patient, ID, study, series…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._on_search_changed)
        self.import_button = QtWidgets.QPushButton("Import…", self)
        self.import_button.setToolTip("Import a folder, CD or DICOMDIR into the local catalogue")
        self.import_button.clicked.connect(self._on_import_clicked)
        self.open_button = QtWidgets.QPushButton("Open", self)
        self.open_button.setToolTip("Open the selected series in the viewer")
        self.open_button.clicked.connect(self._on_open_clicked)
        self.delete_button = QtWidgets.QPushButton("Delete", self)
        self.delete_button.setToolTip("Remove the selected series from the catalogue")
        self.delete_button.clicked.connect(self._on_delete_clicked)

        self.tree = QtWidgets.QTreeWidget(self)
        self.tree.setColumnCount(len(_COLUMNS))
        self.tree.setHeaderLabels(list(_COLUMNS))
        self.tree.setAlternatingRowColors(True)
        self.tree.setRootIsDecorated(True)
        self.tree.header().setStretchLastSection(False)
        # first column takes the rest (patient / study rows span all columns)
        self.tree.header().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.tree.header().setMinimumSectionSize(24)
        for c in range(1, len(_COLUMNS)):
            self.tree.header().setSectionResizeMode(
                c, QtWidgets.QHeaderView.ResizeMode.ResizeToContents
            )
        self.tree.setIconSize(QtCore.QSize(TREE_ICON_PX, TREE_ICON_PX))
        self.tree.setUniformRowHeights(False)
        self.tree.itemSelectionChanged.connect(self._on_selection_changed)
        self.tree.itemDoubleClicked.connect(self._on_item_double_clicked)
        self.tree.verticalScrollBar().valueChanged.connect(lambda _v: self._visible_timer.start())
        self.tree.itemExpanded.connect(lambda _i: self._visible_timer.start())

        self.thumb = QtWidgets.QLabel(self)
        self.thumb.setFixedSize(164, 164)
        self.thumb.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.thumb.setStyleSheet("background: black; color: #777;")
        self.details = QtWidgets.QLabel(self)
        self.details.setWordWrap(True)
        self.details.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.details.setAlignment(
            QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft
        )
        self.empty_hint = QtWidgets.QLabel(
            "No studies yet. Click <b>Import…</b> or drop a DICOM folder / DICOMDIR here.", self
        )
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setStyleSheet("color: #8b949e; padding: 20px;")

        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.search, 1)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.delete_button)
        # the details of an unsuitable series run to 30 lines of warnings (the GE brain head:
        # tilt, spacing, thickness, kernel); unbounded they squeezed the tree to three rows.
        # They sit in a box as tall as the text, from the preview's height up to
        # _DETAILS_MAX_PX, and scroll beyond it.
        self.details_scroll = _DetailsBox(self)
        self.details_scroll.setWidget(self.details)
        self.details_scroll.setWidgetResizable(True)
        self.details_scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.details_scroll.setHorizontalScrollBarPolicy(
            QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
        self.details_scroll.setMinimumHeight(self.thumb.height())
        self.details_scroll.setMaximumHeight(_DETAILS_MAX_PX)
        # wrap to the box's width (a word-wrapped label's own width hint overflowed it)
        self.details.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred
        )
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.thumb, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        bottom.addWidget(self.details_scroll, 1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(buttons)
        lay.addWidget(self.tree, 1)
        lay.addWidget(self.empty_hint)
        lay.addLayout(bottom)
        self.setAcceptDrops(True)
        self.refresh()

    # -- public -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the catalogue and rebuild the tree (keeps the selection if it still exists)."""
        selected = self.selected_series_uid()
        try:
            patients = self.catalogue.tree() if self.catalogue is not None else []
        except Exception:  # a damaged catalogue must not take the window down
            log.exception("cannot read the catalogue")
            patients = []
        self._entries.clear()
        self.tree.clear()
        proposed_item: QtWidgets.QTreeWidgetItem | None = None
        for p in patients:
            name = (p.patient_name or "(no name)").replace("^", " ")
            born = f" · born {_fmt_date(p.birth_date)}" if p.birth_date else ""
            p_item = QtWidgets.QTreeWidgetItem([f"{name}  [{p.patient_id}]{born}"])
            p_item.setData(0, _KIND_ROLE, "patient")
            f = p_item.font(0)
            f.setBold(True)
            p_item.setFont(0, f)
            self.tree.addTopLevelItem(p_item)
            p_item.setFirstColumnSpanned(True)
            for st in p.studies:
                s_item = QtWidgets.QTreeWidgetItem(
                    [f"{_fmt_date(st.study_date)}  {st.description or '(study)'}"]
                )
                s_item.setData(0, _KIND_ROLE, "study")
                s_item.setData(0, _UID_ROLE, st.study_uid)
                p_item.addChild(s_item)
                s_item.setFirstColumnSpanned(True)
                for se in sorted(
                    st.series, key=lambda s: (s.series_number is None, s.series_number or 0)
                ):
                    self._entries[se.series_uid] = (p, st, se)
                    gate = series_gate_findings(se)
                    self.gate_findings[se.series_uid] = gate
                    desc = se.description or "(no description)"
                    if se.kind == "segmentation":
                        desc = f"{desc} (segmentation: use as the blue reference)"
                    if se.proposed:
                        desc = f"★ {desc}"
                    thick = "" if se.slice_thickness_mm is None else f"{se.slice_thickness_mm:g}"
                    item = QtWidgets.QTreeWidgetItem(
                        [
                            desc,
                            "" if se.series_number is None else str(se.series_number),
                            se.modality,
                            str(se.n_frames or se.n_instances),
                            thick,
                            se.convolution_kernel,
                        ]
                    )
                    item.setData(0, _UID_ROLE, se.series_uid)
                    item.setData(0, _KIND_ROLE, "series")
                    tip = self._candidate_text(se, plain=True)
                    for c in range(len(_COLUMNS)):
                        item.setToolTip(c, tip)
                    if any(str(f.severity) in ("warning", "error") for f in gate):
                        severe = any(str(f.severity) == "error" for f in gate)
                        icon = (
                            QtWidgets.QStyle.StandardPixmap.SP_MessageBoxCritical
                            if severe
                            else QtWidgets.QStyle.StandardPixmap.SP_MessageBoxWarning
                        )
                        item.setIcon(1, self.style().standardIcon(icon))
                    thumb = self.thumbnails.get(se.series_uid)
                    if thumb is not None:
                        item.setIcon(0, _tree_icon(thumb))
                    if se.proposed:
                        for c in range(len(_COLUMNS)):
                            item.setBackground(c, _PROPOSED_BG)
                        bf = item.font(0)
                        bf.setBold(True)
                        item.setFont(0, bf)
                        proposed_item = proposed_item or item
                    elif not se.candidate.eligible:
                        for c in range(len(_COLUMNS)):
                            item.setForeground(c, QtGui.QColor(140, 140, 140))
                    s_item.addChild(item)
        self.tree.expandAll()
        self.empty_hint.setVisible(not self._entries)
        self.tree.setVisible(bool(self._entries))
        target = self._item_for(selected) if selected else None
        if target is None:
            target = proposed_item
        if target is not None:
            self.tree.setCurrentItem(target)
        self._on_search_changed(self.search.text())
        self._on_selection_changed()
        self._fit_columns()
        self._visible_timer.start()

    def selected_series_uid(self) -> str | None:
        """UID of the selected series, if a series row is selected."""
        item = self.tree.currentItem()
        if item is None or item.data(0, _KIND_ROLE) != "series":
            return None
        return str(item.data(0, _UID_ROLE))

    def select_series(self, series_uid: str) -> bool:
        """Select a series row; False if it is not in the tree."""
        item = self._item_for(series_uid)
        if item is None:
            return False
        self.tree.setCurrentItem(item)
        return True

    def proposed_series_uid(self) -> str | None:
        """UID of the first proposed series in the catalogue."""
        for _, _, se in self._entries.values():
            if se.proposed:
                return str(se.series_uid)
        return None

    def series_count(self) -> int:
        """Number of series rows."""
        return len(self._entries)

    # -- helpers ----------------------------------------------------------------------------
    def _item_for(self, series_uid: str | None) -> QtWidgets.QTreeWidgetItem | None:
        it = QtWidgets.QTreeWidgetItemIterator(self.tree)
        while it.value() is not None:
            item = it.value()
            if item.data(0, _KIND_ROLE) == "series" and item.data(0, _UID_ROLE) == series_uid:
                return item
            it += 1
        return None

    def _candidate_text(self, se: Any, *, plain: bool = False) -> str:
        lines = []
        if se.proposed:
            lines.append("Proposed for analysis")
        cand = se.candidate
        if se.kind == "segmentation":
            lines.append("Segmentation: open it to show it as the blue reference on its CT")
        elif not cand.eligible:
            lines.append("Not suitable for analysis")
        lines += [f"• {r}" for r in cand.reasons]
        lines += [f"⚠ {f.message}" for f in se.findings]
        lines += [
            f"⚠ Input quality: {f.message}"
            for f in self.gate_findings.get(se.series_uid, ())
            if str(f.severity) in ("warning", "error")
        ]
        if plain:
            return "\n".join(lines)
        return "<br>".join(
            f"<span style='color:#d29922'>{line}</span>" if line.startswith("⚠") else line
            for line in lines
        )

    # -- thumbnails (lazy, off the GUI thread) ---------------------------------------------
    def request_thumbnail(self, series_uid: str, *, first: bool = False) -> None:
        """Queue the thumbnail of a series (no-op when made or queued already)."""
        if series_uid in self.thumbnails or series_uid not in self._entries:
            return
        if series_uid in self._thumb_queue:
            if not first:
                return
            self._thumb_queue.remove(series_uid)
        if first:
            self._thumb_queue.insert(0, series_uid)
        else:
            self._thumb_queue.append(series_uid)
        self._next_thumbnail()

    def _request_visible_thumbnails(self) -> None:
        """Queue the thumbnails of the series rows on screen (the rest wait for a scroll)."""
        if not self.tree.isVisible():
            return
        view = self.tree.viewport().rect()
        it = QtWidgets.QTreeWidgetItemIterator(self.tree)
        while it.value() is not None:
            item = it.value()
            it += 1
            if item.data(0, _KIND_ROLE) != "series" or item.isHidden():
                continue
            if self.tree.visualItemRect(item).intersects(view):
                self.request_thumbnail(str(item.data(0, _UID_ROLE)))

    def _next_thumbnail(self) -> None:
        if self._thumb_job is not None:
            return
        while self._thumb_queue:
            uid = self._thumb_queue.pop(0)
            entry = self._entries.get(uid)
            if entry is None or uid in self.thumbnails:
                continue
            se = entry[2]
            if se.kind != "image":
                self.thumbnails[uid] = None
                continue
            break
        else:
            return
        catalogue, kernel, modality = self.catalogue, se.convolution_kernel, se.modality

        def work(_progress: Any, _should_cancel: Any) -> QtGui.QImage:
            return render_thumbnail(catalogue.headers(uid), kernel=kernel, modality=modality)

        def failed(exc: BaseException) -> None:
            log.info("no thumbnail for %s: %s", uid, exc)
            self._thumbnail_ready(uid, None)

        self._thumb_job = self.thumb_runner.start(
            work,
            name="thumbnail",
            on_finished=lambda img: self._thumbnail_ready(uid, img),
            on_failed=failed,
        )
        self._thumb_job.done.connect(self._on_thumbnail_job_done)

    def _thumbnail_ready(self, uid: str, img: QtGui.QImage | None) -> None:
        self.thumbnails[uid] = img
        item = self._item_for(uid)
        if item is not None and img is not None:
            item.setIcon(0, _tree_icon(img))
        if uid == self.selected_series_uid():
            self._show_preview(uid)

    def _on_thumbnail_job_done(self) -> None:
        self._thumb_job = None
        self._next_thumbnail()

    def shutdown(self, *, timeout_ms: int = 300) -> bool:
        """Stop making thumbnails (on close); True when no thumbnail job is left running."""
        self._thumb_queue.clear()
        self._visible_timer.stop()
        return self.thumb_runner.shutdown(timeout_ms=timeout_ms)

    def _show_preview(self, uid: str) -> None:
        if uid in self.thumbnails:
            img = self.thumbnails[uid]
            if img is None:
                self.thumb.setText("no preview")
            else:
                self.thumb.setPixmap(QtGui.QPixmap.fromImage(img))
        else:
            self.thumb.setText("loading…")
            self.request_thumbnail(uid, first=True)

    # -- handlers ---------------------------------------------------------------------------
    def _on_selection_changed(self) -> None:
        uid = self.selected_series_uid()
        self.open_button.setEnabled(uid is not None)
        self.delete_button.setEnabled(uid is not None)
        if uid is None or uid not in self._entries:
            self.thumb.clear()
            self.thumb.setText("")
            self.details.setText("")
            self.details_scroll.updateGeometry()
            return
        se = self._entries[uid][2]
        self._show_preview(uid)
        thick = "?" if se.slice_thickness_mm is None else f"{se.slice_thickness_mm:g} mm"
        self.details.setText(
            f"<b>{se.description or '(no description)'}</b> — {se.modality}, "
            f"{se.n_frames or se.n_instances} images, {thick}, "
            f"kernel {se.convolution_kernel or '?'}"
            f"<br>{self._candidate_text(se)}"
        )
        self.details_scroll.updateGeometry()  # as tall as the new text, up to the cap

    def _on_search_changed(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            p_item = self.tree.topLevelItem(i)
            if p_item is None:
                continue
            p_match = needle in p_item.text(0).lower()
            any_visible = False
            for j in range(p_item.childCount()):
                s_item = p_item.child(j)
                if s_item is None:
                    continue
                s_match = p_match or needle in s_item.text(0).lower()
                st_visible = False
                for k in range(s_item.childCount()):
                    se_item = s_item.child(k)
                    if se_item is None:
                        continue
                    visible = not needle or s_match or needle in se_item.text(0).lower()
                    se_item.setHidden(not visible)
                    st_visible |= visible
                s_item.setHidden(not st_visible)
                any_visible |= st_visible
            p_item.setHidden(not any_visible)
        self._visible_timer.start()

    def _on_item_double_clicked(self, item: QtWidgets.QTreeWidgetItem, _column: int) -> None:
        if item.data(0, _KIND_ROLE) == "series":
            self.open_requested.emit(str(item.data(0, _UID_ROLE)))

    def _on_open_clicked(self) -> None:
        uid = self.selected_series_uid()
        if uid:
            self.open_requested.emit(uid)

    def _on_import_clicked(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Import a DICOM folder, CD or DICOMDIR folder"
        )
        if path:
            self.import_requested.emit(path)

    def _on_delete_clicked(self) -> None:
        uid = self.selected_series_uid()
        if not uid:
            return
        _, _, se = self._entries[uid]
        answer = QtWidgets.QMessageBox.question(
            self,
            "Delete series",
            f"Remove series '{se.description}' from the catalogue?\n"
            "Files in your folders are not deleted.",
        )
        if answer == QtWidgets.QMessageBox.StandardButton.Yes:
            self.delete_requested.emit(uid)

    def showEvent(self, ev: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(ev)
        self._visible_timer.start()

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(ev)
        self._fit_columns()
        self._visible_timer.start()

    #: the description column (thumbnail + name) never gets less than this
    MIN_DESCRIPTION_PX = 200

    def _fit_columns(self) -> None:
        """Keep the description column readable in a narrow panel: the kernel, thickness
        and image-count columns give way in that order (their values stay in the tooltip
        and the details below the tree). At 1280 px the studies panel left the description
        no width at all."""
        avail = self.tree.viewport().width()
        optional = (5, 4, 3)  # Kernel, Thick., Images
        for c in optional:
            self.tree.setColumnHidden(c, False)
        for c in optional:
            used = sum(
                self.tree.header().sectionSizeHint(k)
                if self.tree.header().sectionSize(k) == 0
                else self.tree.header().sectionSize(k)
                for k in range(1, len(_COLUMNS))
                if not self.tree.isColumnHidden(k)
            )
            if avail - used >= self.MIN_DESCRIPTION_PX:
                break
            self.tree.setColumnHidden(c, True)

    # -- drag and drop --------------------------------------------------------------------
    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:  # noqa: N802 (Qt API)
        for url in ev.mimeData().urls():
            if url.isLocalFile():
                self.import_requested.emit(str(Path(url.toLocalFile())))
        ev.acceptProposedAction()


def _tree_icon(img: QtGui.QImage) -> QtGui.QIcon:
    return QtGui.QIcon(
        QtGui.QPixmap.fromImage(
            img.scaled(
                TREE_ICON_PX,
                TREE_ICON_PX,
                QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                QtCore.Qt.TransformationMode.SmoothTransformation,
            )
        )
    )
