"""DICOM browser over the local catalogue: patient → study → series, search, thumbnail,
the proposed analysis series highlighted with its reasons and geometry warnings.

The browser only shows and asks: importing and loading run as jobs in the main window; the
catalogue (:class:`sinusapp.dicom.catalogue.Catalogue`) does the work.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

__all__ = ["DicomBrowser"]

log = logging.getLogger(__name__)

_COLUMNS = ("Patient / study / series", "#", "Mod.", "Images", "Thick. (mm)", "Kernel")
_UID_ROLE = QtCore.Qt.ItemDataRole.UserRole
_KIND_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
_PROPOSED_BG = QtGui.QColor(46, 125, 50, 60)


def _fmt_date(d: str) -> str:
    d = (d or "").strip()
    return f"{d[:4]}-{d[4:6]}-{d[6:]}" if len(d) == 8 and d.isdigit() else d


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
        self._thumbs: dict[str, QtGui.QImage | None] = {}

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
        self.tree.setUniformRowHeights(True)
        self.tree.setRootIsDecorated(True)
        self.tree.header().setStretchLastSection(False)
        # first column takes the rest (patient / study rows span all columns)
        self.tree.header().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.tree.header().setMinimumSectionSize(24)
        for c in range(1, len(_COLUMNS)):
            self.tree.header().setSectionResizeMode(
                c, QtWidgets.QHeaderView.ResizeMode.ResizeToContents
            )
        self.tree.itemSelectionChanged.connect(self._on_selection_changed)
        self.tree.itemDoubleClicked.connect(self._on_item_double_clicked)

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
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.thumb, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        bottom.addWidget(self.details, 1)
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
                    desc = se.description or "(no description)"
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

    @staticmethod
    def _candidate_text(se: Any, *, plain: bool = False) -> str:
        lines = []
        if se.proposed:
            lines.append("Proposed for analysis")
        cand = se.candidate
        if not cand.eligible:
            lines.append("Not suitable for analysis")
        lines += [f"• {r}" for r in cand.reasons]
        lines += [f"⚠ {f.message}" for f in se.findings]
        if plain:
            return "\n".join(lines)
        return "<br>".join(
            f"<span style='color:#d29922'>{line}</span>" if line.startswith("⚠") else line
            for line in lines
        )

    def _thumbnail(self, se: Any) -> QtGui.QImage | None:
        uid = se.series_uid
        if uid in self._thumbs:
            return self._thumbs[uid]
        img = None
        try:
            headers = self.catalogue.headers(uid)
            if headers:
                from sinusapp.dicom import read_frame_hu

                h = headers[len(headers) // 2]
                frame = max(int(h.number_of_frames or 1) // 2, 0) if len(headers) == 1 else 0
                img = thumbnail_image(read_frame_hu(h.path, frame=frame))
        except Exception as exc:  # noqa: BLE001 — a thumbnail failing must not break browsing
            log.info("no thumbnail for %s: %s", uid, exc)
        self._thumbs[uid] = img
        return img

    # -- handlers ---------------------------------------------------------------------------
    def _on_selection_changed(self) -> None:
        uid = self.selected_series_uid()
        self.open_button.setEnabled(uid is not None)
        self.delete_button.setEnabled(uid is not None)
        if uid is None or uid not in self._entries:
            self.thumb.clear()
            self.thumb.setText("")
            self.details.setText("")
            return
        se = self._entries[uid][2]
        img = self._thumbnail(se)
        if img is None:
            self.thumb.setText("no preview")
        else:
            self.thumb.setPixmap(QtGui.QPixmap.fromImage(img))
        thick = "?" if se.slice_thickness_mm is None else f"{se.slice_thickness_mm:g} mm"
        self.details.setText(
            f"<b>{se.description or '(no description)'}</b> — {se.modality}, "
            f"{se.n_frames or se.n_instances} images, {thick}, "
            f"kernel {se.convolution_kernel or '?'}"
            f"<br>{self._candidate_text(se)}"
        )

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

    # -- drag and drop --------------------------------------------------------------------
    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:  # noqa: N802 (Qt API)
        for url in ev.mimeData().urls():
            if url.isLocalFile():
                self.import_requested.emit(str(Path(url.toLocalFile())))
        ev.acceptProposedAction()
