"""The list of the viewer's measurements: every distance and ROI of the open series, with
its plane, slice and value; a double-click shows its slice, Delete removes it.

The measurements live in :class:`sinusapp.ui.viewer.ViewerModel` (``annotations``); this
panel only shows and deletes them.
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

__all__ = ["MeasurementsPanel"]

_ID_ROLE = QtCore.Qt.ItemDataRole.UserRole


class MeasurementsPanel(QtWidgets.QWidget):
    """Table of the measurements with Delete and Delete all.

    Parameters
    ----------
    model:
        The viewer's :class:`~sinusapp.ui.viewer.ViewerModel`.
    """

    def __init__(self, model: Any, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.table = QtWidgets.QTreeWidget(self)
        self.table.setHeaderLabels(["", "Where", "Value"])
        self.table.headerItem().setToolTip(
            2, "Distance in mm; ROI: mean ± SD of the HU inside, and its area"
        )
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.table.header()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemDoubleClicked.connect(self._on_double_clicked)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        self.hint = QtWidgets.QLabel(
            "No measurements. Choose <b>Measure</b> (M) or <b>ROI</b> (E) in the viewer's "
            "toolbar and drag on the image.",
            self,
        )
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #8b949e; padding: 8px;")
        self.delete_button = QtWidgets.QPushButton("Delete", self)
        self.delete_button.setToolTip("Delete the selected measurements (Del)")
        self.delete_button.clicked.connect(self.delete_selected)
        self.clear_button = QtWidgets.QPushButton("Delete all", self)
        self.clear_button.clicked.connect(self.model.clear_annotations)
        delete = QtGui.QShortcut(QtGui.QKeySequence.StandardKey.Delete, self.table)
        delete.setContext(QtCore.Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self.delete_selected)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)
        buttons.addWidget(self.clear_button)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.hint)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        model.annotations_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the table from the model."""
        self.table.clear()
        for a in self.model.annotations:
            value = a.stats.short_text() if a.stats is not None else a.value_text()
            item = QtWidgets.QTreeWidgetItem(
                [a.label, f"{a.plane.value.capitalize()} {a.index + 1}", value]
            )
            item.setData(0, _ID_ROLE, a.id)
            if a.stats is not None and a.stats.n:
                st = a.stats
                item.setToolTip(
                    2,
                    f"{st.n} pixels, mean {st.mean_hu:.1f} HU, SD {st.sd_hu:.1f} HU, "
                    f"min {st.min_hu:.0f}, max {st.max_hu:.0f} HU, area {st.area_mm2:.1f} mm²",
                )
            self.table.addTopLevelItem(item)
        has = bool(self.model.annotations)
        self.hint.setVisible(not has)
        self.table.setVisible(has)
        self.clear_button.setEnabled(has)
        self._on_selection_changed()

    def rows(self) -> list[tuple[str, str, str]]:
        """The table's rows as text (label, where, value)."""
        out = []
        for i in range(self.table.topLevelItemCount()):
            it = self.table.topLevelItem(i)
            if it is not None:
                out.append((it.text(0), it.text(1), it.text(2)))
        return out

    def delete_selected(self) -> None:
        """Delete the selected measurements."""
        for item in self.table.selectedItems():
            self.model.remove_annotation(int(item.data(0, _ID_ROLE)))

    def _on_selection_changed(self) -> None:
        self.delete_button.setEnabled(bool(self.table.selectedItems()))

    def _on_double_clicked(self, item: QtWidgets.QTreeWidgetItem, _column: int) -> None:
        self.model.go_to_annotation(int(item.data(0, _ID_ROLE)))
