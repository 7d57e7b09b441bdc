"""Small tools surgeons reach for (RadiAnt, Horos, Weasis users): the list of saved cases,
a DICOM tag viewer, the list of files an import skipped, and the choice offered when a
dropped folder holds no sinus-capable CT.

Each is a non-modal dialog that only shows data the core packages give it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from sinusapp.case import format_case_risk

__all__ = [
    "CasesDialog",
    "SkippedFilesDialog",
    "TagViewer",
    "UnsuitableSeriesDialog",
    "dataset_rows",
]

log = logging.getLogger(__name__)

#: longest value text shown in the tag viewer (a pixel or LUT element is not for reading)
_MAX_VALUE_CHARS = 200


class CasesDialog(QtWidgets.QDialog):
    """The saved cases (case records), newest first; Open (or a double click) emits
    :attr:`open_requested` with the series UID."""

    open_requested = QtCore.Signal(str)

    def __init__(self, records: Any, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Saved cases")
        self.resize(820, 420)
        self.table = QtWidgets.QTableWidget(0, 6, self)
        self.table.setHorizontalHeaderLabels(
            ["Patient ID", "Patient", "Series", "Risk", "Analysed", "Saved"]
        )
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(lambda *_: self._open_selected())
        buttons = QtWidgets.QDialogButtonBox(self)
        self.open_button = buttons.addButton(
            "Open", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole
        )
        buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.open_button.clicked.connect(self._open_selected)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(buttons)
        self._uids: list[str] = []
        self.fill(records.list_cases() if records is not None else [])

    def fill(self, cases: Sequence[Any]) -> None:
        """Show ``cases`` (:class:`sinusapp.records.CaseRecord` s)."""
        self._uids = [c.series_uid for c in cases]
        self.table.setRowCount(len(cases))
        for i, c in enumerate(cases):
            res = c.result or {}
            patient = res.get("patient") or {}
            series = res.get("series") or {}
            risk = format_case_risk(
                probability=res.get("probability"), risk_group=str(res.get("risk_group") or "")
            )
            cells = (
                c.patient_id or str(patient.get("id", "")),
                str(patient.get("name", "")).replace("^", " "),
                str(series.get("description", "")) or c.series_uid[-16:],
                risk,
                str(res.get("analysed_at", ""))[:16].replace("T", " "),
                c.updated_at[:16].replace("T", " "),
            )
            for col, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(c.series_uid)
                self.table.setItem(i, col, item)
        self.table.resizeColumnsToContents()
        self.open_button.setEnabled(bool(cases))
        if cases:
            self.table.selectRow(0)

    def _open_selected(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self._uids):
            self.open_requested.emit(self._uids[row])
            self.accept()


def dataset_rows(ds: Any, *, depth: int = 0) -> list[tuple[int, str, str, str, str]]:
    """``(depth, tag, name, VR, value)`` for every element of a pydicom dataset, sequences
    expanded (items indented by ``depth``); long and binary values are shortened."""
    rows: list[tuple[int, str, str, str, str]] = []
    for elem in ds:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        name = elem.name
        if elem.VR == "SQ":
            rows.append((depth, tag, name, "SQ", f"{len(elem.value)} item(s)"))
            for n, item in enumerate(elem.value, start=1):
                rows.append((depth + 1, "", f"Item {n}", "", ""))
                rows.extend(dataset_rows(item, depth=depth + 2))
            continue
        if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") or elem.tag == 0x7FE00010:
            length = len(elem.value) if elem.value is not None else 0
            value = f"<{length} bytes>"
        else:
            value = str(elem.value)
            if len(value) > _MAX_VALUE_CHARS:
                value = value[:_MAX_VALUE_CHARS] + "…"
        rows.append((depth, tag, name, str(elem.VR), value))
    return rows


class TagViewer(QtWidgets.QDialog):
    """Every DICOM element of one file (header only), with a filter box."""

    def __init__(self, path: str | Path, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        import pydicom

        self.path = Path(path)
        self.setWindowTitle(f"DICOM tags — {self.path.name}")
        self.resize(900, 640)
        self.filter = QtWidgets.QLineEdit(self)
        self.filter.setPlaceholderText("Filter by tag, name or value…")
        self.filter.setClearButtonEnabled(True)
        self.tree = QtWidgets.QTreeWidget(self)
        self.tree.setHeaderLabels(["Tag", "Name", "VR", "Value"])
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(QtWidgets.QLabel(str(self.path), self))
        lay.addWidget(self.filter)
        lay.addWidget(self.tree, 1)
        lay.addWidget(buttons)
        ds = pydicom.dcmread(str(self.path), stop_before_pixels=True, force=True)
        meta = getattr(ds, "file_meta", None)
        self.rows = (dataset_rows(meta) if meta is not None else []) + dataset_rows(ds)
        self._fill()
        self.filter.textChanged.connect(self._fill)

    def _fill(self, *_args: Any) -> None:
        needle = self.filter.text().strip().lower()
        self.tree.clear()
        parents: dict[int, QtWidgets.QTreeWidgetItem] = {}
        for depth, tag, name, vr, value in self.rows:
            if needle and depth == 0 and needle not in f"{tag} {name} {value}".lower():
                continue
            item = QtWidgets.QTreeWidgetItem([tag, name, vr, value])
            parent = parents.get(depth - 1) if depth else None
            if depth and parent is None:
                continue  # the sequence this item belongs to was filtered out
            if parent is None:
                self.tree.addTopLevelItem(item)
            else:
                parent.addChild(item)
            parents[depth] = item
        for col in range(3):
            self.tree.resizeColumnToContents(col)

    def visible_names(self) -> list[str]:
        """Names of the top-level rows shown (for tests)."""
        return [self.tree.topLevelItem(i).text(1) for i in range(self.tree.topLevelItemCount())]


class SkippedFilesDialog(QtWidgets.QDialog):
    """The files an import did not catalogue, with the reason for each."""

    def __init__(self, skipped: Sequence[Any], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Skipped files ({len(skipped)})")
        self.resize(820, 420)
        self.table = QtWidgets.QTableWidget(len(skipped), 2, self)
        self.table.setHorizontalHeaderLabels(["File", "Why it was skipped"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        for i, s in enumerate(skipped):
            self.table.setItem(i, 0, QtWidgets.QTableWidgetItem(str(getattr(s, "path", s))))
            self.table.setItem(i, 1, QtWidgets.QTableWidgetItem(str(getattr(s, "reason", ""))))
        self.table.resizeColumnToContents(0)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(
            QtWidgets.QLabel(
                "These files are not CT images SinusApp can read (reports, structured "
                "reports, unreadable or non-DICOM files). Nothing else was affected.",
                self,
            )
        )
        lay.addWidget(self.table)
        lay.addWidget(buttons)


class UnsuitableSeriesDialog(QtWidgets.QDialog):
    """A folder was dropped (or imported to open) and none of its series is a sinus-capable
    CT: nothing was opened. Lists each series with the ranking's reasons and the input
    plausibility gate's header findings; **Open anyway** emits :attr:`open_requested` with
    the chosen series (the surgeon's explicit decision), **Don't open** closes.

    Parameters
    ----------
    series:
        ``(series uid, description, facts, reasons)``: ``facts`` a short line (modality,
        images, thickness, kernel), ``reasons`` why it is not suitable.
    source:
        The dropped folder / DICOMDIR, named in the text.
    """

    open_requested = QtCore.Signal(str)

    def __init__(
        self,
        series: Sequence[tuple[str, str, str, Sequence[str]]],
        *,
        source: str,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("No sinus-capable CT in this folder")
        self.resize(900, 440)  # the reasons are long; each is whole in its tooltip
        n = len(series)
        self.text = QtWidgets.QLabel(
            f"<b>None of the {n} series in {_html(Path(source).name or source)} is a "
            "sinus-capable CT, so none was opened.</b><br>SinusApp's model and nomogram were "
            "made for thin-slice CT (at most 2.5 mm) covering the paranasal sinuses. You may "
            "open a series anyway to read it; its result and report then carry this warning.",
            self,
        )
        self.text.setWordWrap(True)
        self.tree = QtWidgets.QTreeWidget(self)
        self.tree.setHeaderLabels(["Series", "Why it is not suitable"])
        self.tree.setRootIsDecorated(False)
        self.tree.setWordWrap(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.header().setSectionResizeMode(
            0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents
        )
        self.tree.header().setStretchLastSection(True)
        for uid, description, facts, reasons in series:
            why = "\n".join(f"⚠ {r}" for r in reasons) or "⚠ not suitable"
            item = QtWidgets.QTreeWidgetItem([f"{description or '(no description)'}\n{facts}", why])
            item.setData(0, QtCore.Qt.ItemDataRole.UserRole, uid)
            item.setToolTip(1, why)
            self.tree.addTopLevelItem(item)
        if self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        self.tree.itemDoubleClicked.connect(lambda *_: self._open_selected())
        buttons = QtWidgets.QDialogButtonBox(self)
        self.open_button = buttons.addButton(
            "Open anyway", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.open_button.setToolTip(
            "Open the selected series although it is not a sinus-capable CT (the warning "
            "stays above the result and in the report)"
        )
        self.close_button = buttons.addButton(
            "Don't open", QtWidgets.QDialogButtonBox.ButtonRole.RejectRole
        )
        self.close_button.setDefault(True)  # Return never opens an unsuitable series
        self.open_button.setAutoDefault(False)
        self.open_button.clicked.connect(self._open_selected)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(self.tree, 1)
        lay.addWidget(buttons)

    def series_uids(self) -> list[str]:
        """The listed series, in order."""
        return [
            str(self.tree.topLevelItem(i).data(0, QtCore.Qt.ItemDataRole.UserRole))
            for i in range(self.tree.topLevelItemCount())
        ]

    def _open_selected(self) -> None:
        item = self.tree.currentItem()
        if item is None:
            return
        uid = str(item.data(0, QtCore.Qt.ItemDataRole.UserRole))
        self.accept()
        self.open_requested.emit(uid)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
