"""The interactive nomogram, drawn from :class:`sinusapp.nomogram.layout.NomogramLayout`.

No nomogram arithmetic here: axes, ticks and marks come from the shared layout (the PDF report
draws from the same object), and a click or drag on a factor's axis is turned into a value by
:meth:`NomogramLayout.value_at` and sent to the :class:`~sinusapp.ui.session.CaseSession`
as a what-if: only this view's marks change (labelled what-if); the form, the record and the
report keep the patient's values.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from sinusapp.case import format_ci95, format_probability, format_risk_group
from sinusapp.ui.session import CaseSession

__all__ = ["NomogramView"]

log = logging.getLogger(__name__)

_LABEL_X = -0.025
#: screen width the factor labels need left of the axes
_LABEL_PX = 150
#: screen width kept right of the axes' ends for their last tick label
_RIGHT_PX = 26
_AXIS_PEN = pg.mkPen((205, 208, 212), width=1.5)
_TICK_PEN = pg.mkPen((205, 208, 212), width=1)
_MARK_COLOR = (255, 82, 82)
_GUIDE_PEN = pg.mkPen((255, 82, 82, 160), width=1, style=QtCore.Qt.PenStyle.DashLine)
_CUTOFF_PEN = pg.mkPen((150, 150, 150), width=1.2, style=QtCore.Qt.PenStyle.DotLine)


class _PickViewBox(pg.ViewBox):
    """ViewBox that reports left clicks and drags in data coordinates (no pan / zoom)."""

    picked = QtCore.Signal(float, float, bool)  # x, y, finished

    def __init__(self) -> None:
        super().__init__(invertY=True, enableMenu=False)
        self.setMouseEnabled(x=False, y=False)
        self._drag_y: float | None = None

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802 (Qt API)
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            p = self.mapSceneToView(ev.scenePos())
            self.picked.emit(p.x(), p.y(), True)
        ev.accept()

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 (Qt API)
        if ev.button() != QtCore.Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        p = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            self._drag_y = self.mapSceneToView(ev.buttonDownScenePos()).y()
        # keep the row the drag started on, whatever the vertical wobble
        y = self._drag_y if self._drag_y is not None else p.y()
        self.picked.emit(p.x(), y, bool(ev.isFinish()))

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 (Qt API)
        ev.ignore()


class NomogramView(QtWidgets.QWidget):
    """rms-style nomogram with the patient's marks; click / drag a factor axis for what-if."""

    def __init__(self, session: CaseSession, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.layout_obj: Any | None = None
        self._static_key: tuple[Any, ...] | None = None
        self._mark_items: list[Any] = []

        self.summary = QtWidgets.QLabel(self)
        self.summary.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self.reset_button = QtWidgets.QPushButton("Reset to patient", self)
        self.reset_button.setToolTip("Undo what-if changes: the analysed patient's values")
        self.reset_button.clicked.connect(self._on_reset_clicked)
        top = QtWidgets.QHBoxLayout()
        top.setContentsMargins(6, 4, 6, 0)
        top.addWidget(self.summary, 1)
        top.addWidget(self.reset_button)

        self.graphics = pg.GraphicsView(self)
        self.graphics.setBackground((24, 26, 30))
        self.view = _PickViewBox()
        self.graphics.setCentralItem(self.view)
        self.graphics.setMinimumHeight(220)
        hint = QtWidgets.QLabel(
            "Click or drag on a factor's axis to see how the risk changes (what-if).", self
        )
        hint.setStyleSheet("color: #8b949e; font-size: 11px;")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(top)
        lay.addWidget(self.graphics, 1)
        lay.addWidget(hint)

        self.view.picked.connect(self._on_pick)
        session.prediction_changed.connect(self._on_prediction_changed)
        self._on_prediction_changed()

    # -- drawing ---------------------------------------------------------------------
    def _build_layout(self) -> Any | None:
        nomo = self.session.nomogram
        if nomo is None:
            return None
        from sinusapp.nomogram.layout import build_layout

        return build_layout(nomo, prediction=self.session.prediction)

    def _draw_static(self, lay: Any) -> None:
        self.view.clear()
        self._mark_items = []
        for row in lay.rows:
            label = pg.TextItem(row.label, color=(228, 230, 233), anchor=(1, 0.5))
            label.setPos(_LABEL_X, row.y)
            self.view.addItem(label)
            axis = pg.PlotCurveItem([row.x_start, row.x_end], [row.y, row.y], pen=_AXIS_PEN)
            self.view.addItem(axis)
            tick_h = 0.12 / lay.n_rows
            xs, ys = [], []
            for t in row.ticks:
                xs += [t.x, t.x, np.nan]
                ys += [row.y, row.y - tick_h, np.nan]
            for t in self.labelled_ticks(row.ticks):
                text = pg.TextItem(t.label, color=(165, 170, 176), anchor=(0.5, 0))
                text.setPos(t.x, row.y + 0.02 / lay.n_rows)
                self.view.addItem(text)
            self.view.addItem(pg.PlotCurveItem(xs, ys, pen=_TICK_PEN, connect="finite"))
        if lay.cutoff_x is not None:
            prob_row = lay.row("probability")
            total_row = lay.row("total_points")
            h = 0.5 / lay.n_rows
            cut = pg.PlotCurveItem(
                [lay.cutoff_x, lay.cutoff_x],
                [total_row.y + h * 0.4, prob_row.y + h * 0.6],
                pen=_CUTOFF_PEN,
            )
            self.view.addItem(cut)
            text = pg.TextItem(f"cutoff {lay.cutoff:.2f}", color=(150, 150, 150), anchor=(0.5, 0))
            text.setPos(lay.cutoff_x, prob_row.y + h * 0.6)
            self.view.addItem(text)
        self._fit_range()

    def _x_range(self) -> tuple[float, float]:
        """The x range shown: room for the axis labels whatever the width (a narrow panel
        clipped "Allergic rhinitis" and "Eosinophils")."""
        width_px = max(self.graphics.width(), 200)
        left = min(max(0.27, _LABEL_PX * 1.03 / max(width_px - _LABEL_PX, 1)), 1.2)
        # room for half of the last tick label ("100", "180") right of the axis end
        m = _RIGHT_PX / width_px
        return -left, (1.0 + m * left) / (1.0 - m)

    def _fit_range(self) -> None:
        self.view.setRange(xRange=self._x_range(), yRange=(0.0, 1.04), padding=0)

    def px_per_x(self) -> float:
        """Screen pixels per layout x unit at the view's present width."""
        lo, hi = self._x_range()
        return max(self.graphics.width(), 200) / (hi - lo)

    def labelled_ticks(self, ticks: Any) -> list[Any]:
        """The ticks whose labels fit side by side at the present width.

        The layout thins ticks for the printed page; on screen a short axis (the DLR-score
        spans a few points when the model's scores cluster) still crowded its labels into
        "0.3860.385…". Labels are kept greedily, the two ends first, then the shortest
        (roundest) ones, and a label is dropped when its text would touch a kept one (the
        tick marks stay)."""
        ticks = list(ticks)
        if len(ticks) <= 1:
            return ticks
        fm = self.fontMetrics()
        scale = self.px_per_x()
        pad = fm.horizontalAdvance("  ")
        by_x = sorted(ticks, key=lambda t: t.x)
        order = [by_x[0], by_x[-1], *sorted(by_x[1:-1], key=lambda t: (len(t.label), t.x))]
        kept: list[tuple[float, float, Any]] = []
        for t in order:
            half = fm.horizontalAdvance(t.label) / 2 + pad / 2
            centre = t.x * scale
            if all(centre + half <= k_lo or centre - half >= k_hi for k_lo, k_hi, _ in kept):
                kept.append((centre - half, centre + half, t))
        return sorted((t for _, _, t in kept), key=lambda t: t.x)

    def _width_key(self) -> int:
        return max(self.graphics.width(), 200) // 40

    def resizeEvent(self, ev: Any) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(ev)
        if self._static_key is not None:
            if self._static_key[-1] != self._width_key():
                self._static_key = None  # the labels that fit depend on the width
                self._on_prediction_changed()
            else:
                self._fit_range()

    def _draw_marks(self, lay: Any) -> None:
        for item in self._mark_items:
            self.view.removeItem(item)
        self._mark_items = []
        if not lay.marks:
            return
        points_row = lay.row("points")
        xs, ys = [], []
        gx, gy = [], []
        for m in lay.marks:
            if m.key.startswith("points:"):
                continue  # shown by the guide line reaching the Points axis
            row = lay.row(m.key)
            xs.append(m.x)
            ys.append(row.y)
            label = pg.TextItem(m.label, color=_MARK_COLOR, anchor=(0.5, 1))
            label.setPos(m.x, row.y - 0.09 / lay.n_rows)
            self.view.addItem(label)
            self._mark_items.append(label)
            if row.role == "factor":
                gx += [m.x, m.x, np.nan]
                gy += [row.y, points_row.y, np.nan]
        total = lay.mark("total_points")
        prob = lay.mark("probability")
        if total is not None and prob is not None:
            gx += [total.x, prob.x, np.nan]
            gy += [lay.row("total_points").y, lay.row("probability").y, np.nan]
        guides = pg.PlotCurveItem(gx, gy, pen=_GUIDE_PEN, connect="finite")
        dots = pg.ScatterPlotItem(
            xs, ys, size=11, brush=pg.mkBrush(*_MARK_COLOR), pen=pg.mkPen((24, 26, 30), width=1.5)
        )
        dots.setZValue(10)
        for item in (guides, dots):
            self.view.addItem(item)
            self._mark_items.append(item)

    def _on_prediction_changed(self) -> None:
        lay = self._build_layout()
        self.layout_obj = lay
        s = self.session
        self.reset_button.setEnabled(s.is_what_if)
        if lay is None:
            self.view.clear()
            self._static_key = None
            self.summary.setText(
                f"<span style='color:#b35900'>Nomogram unavailable: {s.nomogram_error}</span>"
            )
            return
        key = (id(s.nomogram), self._width_key())
        if key != self._static_key:
            self._draw_static(lay)
            self._static_key = key
        self._draw_marks(lay)
        pred = s.prediction
        if pred is None:
            self.summary.setText(f"<span style='color:#8b949e'>{s.prediction_error}</span>")
            return
        lo, hi = pred.ci95
        group = format_risk_group(risk_group=pred.risk_group, cutoff=pred.cutoff)
        color = "#c62828" if pred.risk_group == "high" else "#2e7d32"
        whatif = (
            " <b style='color:#b35900'>(what-if — not the patient's values, not saved)</b>"
            if s.is_what_if
            else ""
        )
        p, ci = format_probability(pred.probability), format_ci95(lo, hi)
        self.summary.setText(
            f"Risk of recurrence <b>{p}</b> (95 % CI {ci}) · "
            f"total points {pred.total_points:.0f} · <b style='color:{color}'>{group}</b>{whatif}"
        )

    # -- interaction ------------------------------------------------------------------
    def _on_pick(self, x: float, y: float, finished: bool) -> None:
        lay = self.layout_obj
        if lay is None or self.session.prediction is None:
            return
        row_h = 1.0 / lay.n_rows
        for row in lay.rows:
            if row.role != "factor" or abs(y - row.y) > row_h / 2:
                continue
            if not (row.x_start - 0.05 <= x <= row.x_end + 0.05):
                return
            value = lay.value_at(row.key, x)
            log.debug("what-if %s = %s", row.key, value)
            self.session.set_factor(row.key, value)
            return

    def pick_factor(self, key: str, value: float) -> None:
        """Programmatic what-if (as a click on ``key``'s axis at ``value``); for tests."""
        lay = self.layout_obj
        if lay is None:
            return
        self._on_pick(lay.x_for(key, value), lay.row(key).y, True)

    def _on_reset_clicked(self) -> None:
        self.session.reset_to_patient()
