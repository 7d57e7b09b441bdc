"""The nomogram's drawing, as pure data: axes, ticks, labels and the patient's marks.

The Qt nomogram widget, the PDF report and the evaluation figure all draw from one
:class:`NomogramLayout`, so what the surgeon sees on screen and on paper always agree. No Qt,
no reportlab, no matplotlib here.

Coordinates (abstract "page" coordinates)
-----------------------------------------
- **x** ∈ [0, 1] across the *axis area*: the region right of the row labels where the axis
  lines are drawn. A renderer maps it linearly to its own pixels / points:
  ``px = axis_left + x * axis_width``. Row labels go left of ``x = 0`` (right-aligned).
- **Rows** are numbered from the top (``AxisRow.index`` = 0, 1, …, ``n_rows − 1``);
  ``AxisRow.y = (index + 0.5) / n_rows`` ∈ (0, 1) is the row's centre line, **0 = top**.
  Use whichever is handier (equal row spacing is the rms look).
- Every row shares one horizontal scale with its neighbours as in ``rms::nomogram``:

  ===================  ===================================================================
  row (``key``)        x of a value
  ===================  ===================================================================
  ``"points"``         ``points / 100``                     (axis 0–100, the full width)
  each factor name     ``points_for(factor, value) / 100``  (read its points straight up)
  ``"total_points"``   ``total / total_points_max``         (axis 0–``total_points_max``)
  ``"linear_predictor"`` x of the total points giving that LP (optional row)
  ``"probability"``    x of the total points giving that probability
  ===================  ===================================================================

  So a factor's mark is vertically below its points on the Points axis, and the patient's
  total-points mark is vertically above their probability on the Probability axis.
- A factor whose coefficient is negative runs right-to-left (``AxisRow.reversed``); its
  ``x_start`` < ``x_end`` always, ticks carry their own x.
- Binary factors have two ticks, labelled "No" (value 0) and "Yes" (value 1); when the
  effect is too small for two labels, one reads "No ≈ Yes" (see :func:`_binary_ticks`).

What-if
-------
:meth:`NomogramLayout.value_at` is the inverse mapping: an x on a row → the value (a dragged
marker on the eosinophil axis → eosinophils; on a binary axis → the nearer of No/Yes as a
``bool``). :meth:`NomogramLayout.x_for` maps a value to x. Recompute the prediction with
:meth:`Nomogram.predict` and rebuild the layout (cheap: microseconds) to move all marks.

Example
-------
>>> nomo = Nomogram.load()
>>> pred = nomo.predict(dlr_score=0.6, asthma=True, allergic_rhinitis=False,
...                     eosinophils_per_ul=450)
>>> lay = build_layout(nomo, prediction=pred)
>>> for row in lay.rows:
...     draw_line(row.x_start, row.y, row.x_end, row.y); draw_label(row.label, row.y)
...     for t in row.ticks: draw_tick(t.x, row.y, t.label)
>>> for m in lay.marks: draw_marker(m.x, lay.row(m.key).y, m.label)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from sinusapp.nomogram._ticks import format_tick, nice_range, nice_step, nice_ticks

if TYPE_CHECKING:
    from sinusapp.nomogram.model import Nomogram, NomogramPrediction

__all__ = [
    "DEFAULT_PROBABILITY_TICKS",
    "AxisRow",
    "Mark",
    "NomogramLayout",
    "Tick",
    "build_layout",
]

RowRole = Literal["points", "factor", "total_points", "linear_predictor", "probability"]

DEFAULT_PROBABILITY_TICKS: tuple[float, ...] = (
    0.01,
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    0.95,
    0.99,
)
#: Ticks closer than this (in x) are thinned so labels do not overlap.
MIN_TICK_GAP = 0.045


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick on an axis: its ``value`` (in the row's unit), position ``x`` and ``label``."""

    value: float
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class AxisRow:
    """One horizontal axis of the nomogram.

    Attributes
    ----------
    key:
        ``"points"``, a factor name, ``"total_points"``, ``"linear_predictor"`` or
        ``"probability"``.
    role:
        What kind of row it is (``"factor"`` for every factor).
    label:
        Row label with unit, drawn left of the axis (e.g. ``"Eosinophils (cells/µL)"``).
    index, y:
        Row number from the top and its centre ``(index + 0.5) / n_rows`` (0 = top).
    x_start, x_end:
        Extent of the axis line (``x_start ≤ x_end``).
    ticks:
        Ticks with labels, in increasing value.
    kind:
        ``"continuous"`` or ``"binary"`` for factor rows, ``"continuous"`` otherwise.
    reversed:
        True when the value increases from right to left (negative coefficient).
    """

    key: str
    role: RowRole
    label: str
    index: int
    y: float
    x_start: float
    x_end: float
    ticks: tuple[Tick, ...]
    kind: Literal["continuous", "binary"] = "continuous"
    reversed: bool = False


@dataclass(frozen=True, slots=True)
class Mark:
    """The patient's position on one row.

    Attributes
    ----------
    key:
        The row (``AxisRow.key``).
    value:
        The value on that row (factor value, total points, probability…).
    x:
        Where to draw it, clamped to the row's axis line.
    label:
        Text for the marker (``"450"``, ``"Yes"``, ``"0.62"``, ``"123.4"``).
    clamped:
        True when the value lies beyond the drawn axis (the mark is pinned to its end).
    points:
        For factor rows, the factor's points; ``None`` otherwise.
    points_x:
        For factor rows, x of ``points`` on the Points row (``points / 100``, clamped to
        0–1), for drawing the projection line up to the Points axis; ``None`` otherwise.

    The probability mark sits at the x of the total points (on the Probability row it can lie
    outside the ticked part of the axis; it is clamped to [0, 1] only).
    """

    key: str
    value: float
    x: float
    label: str
    clamped: bool = False
    points: float | None = None
    points_x: float | None = None


@dataclass(frozen=True, slots=True)
class NomogramLayout:
    """Everything needed to draw the nomogram (see the module docstring for coordinates).

    Attributes
    ----------
    title:
        The nomogram's title (e.g. ``"Nomogram"``).
    rows:
        Axis rows from top to bottom.
    marks:
        The patient's marks (empty without a prediction).
    n_rows:
        Number of rows.
    total_points_max:
        The Total Points axis spans 0 … ``total_points_max`` over x ∈ [0, 1].
    cutoff:
        The risk-group cutoff probability; ``cutoff_x`` is its x on the probability row
        (``None`` if it lies off that axis).
    probability, ci95, risk_group:
        From the prediction (``None`` without one).
    nomogram:
        The model the layout was built from (used by the mappings).
    """

    title: str
    rows: tuple[AxisRow, ...]
    marks: tuple[Mark, ...]
    n_rows: int
    total_points_max: float
    cutoff: float
    cutoff_x: float | None
    probability: float | None
    ci95: tuple[float, float] | None
    risk_group: str | None
    nomogram: Nomogram

    def row(self, key: str) -> AxisRow:
        """The row called ``key``; ``KeyError`` if there is none."""
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(key)

    def mark(self, key: str) -> Mark | None:
        """The patient's mark on row ``key``, if any."""
        for m in self.marks:
            if m.key == key:
                return m
        return None

    def x_for(self, key: str, value: float) -> float:
        """x of ``value`` on row ``key`` (not clamped; may leave the axis line)."""
        nomo = self.nomogram
        row = self.row(key)
        if row.role == "points":
            return float(value) / 100.0
        if row.role == "factor":
            return nomo.points_for(key, float(value)) / 100.0
        if row.role == "total_points":
            return float(value) / self.total_points_max
        if row.role == "linear_predictor":
            return float(nomo.points_for_linear_predictor(value)) / self.total_points_max
        p = min(max(float(value), 1e-12), 1 - 1e-12)
        return float(nomo.points_for_probability(p)) / self.total_points_max

    def value_at(self, key: str, x: float) -> float | bool:
        """Inverse of :meth:`x_for`, for what-if dragging: the value at ``x`` on row ``key``.

        x is first clamped to the row's axis line, so the value stays within the axis range.
        Binary factors return the nearer of No/Yes as ``bool``. A continuous factor with a
        zero coefficient (points do not vary) returns its axis low end.
        """
        nomo = self.nomogram
        row = self.row(key)
        xc = min(max(float(x), row.x_start), row.x_end)
        if row.role == "points":
            return xc * 100.0
        if row.role == "factor":
            f = nomo.factor(key)
            if f.kind == "binary":
                x0 = nomo.points_for(key, 0.0) / 100.0
                x1 = nomo.points_for(key, 1.0) / 100.0
                return bool(abs(xc - x1) < abs(xc - x0))
            lo, hi = f.axis_range  # type: ignore[misc]
            if nomo.coefficients[key] == 0:
                return lo
            v = float(min(max(nomo.value_for_points(key, xc * 100.0), lo), hi))
            tol = 1e-9 * (hi - lo)
            return lo if abs(v - lo) <= tol else hi if abs(v - hi) <= tol else v
        total = xc * self.total_points_max
        if row.role == "total_points":
            return total
        if row.role == "linear_predictor":
            return float(nomo.linear_predictor_for_points(total))
        return float(nomo.probability_for_points(total))


def _thin(ticks: list[Tick], gap: float = MIN_TICK_GAP) -> list[Tick]:
    """Drop ticks whose x is within ``gap`` of the previously kept one (keeps both ends)."""
    if len(ticks) <= 2:
        return ticks
    kept = [ticks[0]]
    for t in ticks[1:-1]:
        if abs(t.x - kept[-1].x) >= gap and abs(ticks[-1].x - t.x) >= gap:
            kept.append(t)
    kept.append(ticks[-1])
    return kept


#: Which probability ticks survive first when the axis is crowded.
_PROBABILITY_PRIORITY = (0.5, 0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.05, 0.95, 0.01, 0.99)


def _thin_by_priority(ticks: list[Tick], gap: float = MIN_TICK_GAP) -> list[Tick]:
    """Keep ticks by :data:`_PROBABILITY_PRIORITY`, skipping any too close to a kept one."""

    def rank(t: Tick) -> int:
        for i, p in enumerate(_PROBABILITY_PRIORITY):
            if math.isclose(t.value, p):
                return i
        return len(_PROBABILITY_PRIORITY)

    kept: list[Tick] = []
    for t in sorted(ticks, key=rank):
        if all(abs(t.x - k.x) >= gap for k in kept):
            kept.append(t)
    return sorted(kept, key=lambda t: t.value)


def _factor_tick_values(lo: float, hi: float, width: float) -> tuple[list[float], float]:
    """Round tick values for a continuous factor axis spanning ``width`` of the page.

    The finest round step (1, 2, 2.5, 5 × 10^k) that gives ≤ 11 ticks at least
    :data:`MIN_TICK_GAP` + 0.01 apart and, when possible, labels both ends of the axis. When
    no round step lands on both ends (a short axis: DLR-score 0.1–0.6 at 21 % of the page),
    the finest one's ticks are kept and each unlabelled end is labelled too, in place of a
    tick too close to it, so the axis never starts or stops at a point without a value. If
    the axis is too short for any step, only its two ends are labelled.
    """
    span = hi - lo
    if not span > 0:
        return [float(lo)], 1.0
    gap = MIN_TICK_GAP + 0.01
    tol = 1e-9 * span
    best: tuple[list[float], float] | None = None
    for k in range(-6, 7):
        for m in (1.0, 2.0, 2.5, 5.0):
            step = m * 10.0**k
            if span / step > 10 + 1e-9 or width * step / span < gap:
                continue
            first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
            values = [float(np.round(j * step, 10)) for j in range(first, last + 1)]
            if len(values) < 2:
                continue
            if abs(values[0] - lo) <= tol and abs(values[-1] - hi) <= tol:
                return values, step
            if best is None:
                best = (values, step)
    if best is None:
        return [float(lo), float(hi)], span
    values, step = best
    for end in (float(lo), float(hi)):
        exact = abs(float(format_tick(end, step)) - end) <= tol  # its label reads true
        if exact and all(abs(v - end) > tol for v in values):
            values = [v for v in values if width * abs(v - end) / span >= gap] + [end]
    return sorted(values), step


#: The one label of a binary axis whose No and Yes ticks are too close for two labels.
BINARY_CLOSE_LABEL = "No ≈ Yes"


def _binary_ticks(x_no: float, x_yes: float) -> list[Tick]:
    """The No (value 0) and Yes (value 1) ticks of a binary factor.

    When the factor's effect is so small that the two ticks are closer than
    :data:`MIN_TICK_GAP`, two centred labels would print over each other ("NYeos"), and a
    renderer that drops overlapping labels would show "No" alone, as if "Yes" were missing.
    Then the tick further left carries one label, ``"No ≈ Yes"`` (``"Yes ≈ No"`` for a
    negative effect: left to right as drawn), and the other tick none; both tick marks stay,
    so a what-if drag still reads No or Yes.
    """
    if abs(x_yes - x_no) >= MIN_TICK_GAP:
        return [Tick(0.0, x_no, "No"), Tick(1.0, x_yes, "Yes")]
    if x_no <= x_yes:
        return [Tick(0.0, x_no, BINARY_CLOSE_LABEL), Tick(1.0, x_yes, "")]
    return [Tick(0.0, x_no, ""), Tick(1.0, x_yes, "Yes ≈ No")]


def _prob_label(p: float) -> str:
    text = f"{p:.2f}".rstrip("0")
    return text if not text.endswith(".") else text[:-1]


def build_layout(
    nomogram: Nomogram,
    *,
    prediction: NomogramPrediction | None = None,
    include_linear_predictor: bool = False,
    probability_ticks: Sequence[float] = DEFAULT_PROBABILITY_TICKS,
    probability_label: str | None = None,
) -> NomogramLayout:
    """Lay out ``nomogram`` (rms style), with the patient's marks if ``prediction`` is given.

    Parameters
    ----------
    nomogram:
        The fitted model.
    prediction:
        A result of ``nomogram.predict(...)``; its values are marked on every row.
    include_linear_predictor:
        Add a "Linear predictor" row between Total Points and the probability.
    probability_ticks:
        Candidate probabilities for the probability axis; those outside the Total Points
        range are left out, and crowded ones thinned.
    probability_label:
        Label of the probability row (default ``"Risk of <outcome>"``).
    """
    rows: list[AxisRow] = []
    keys: list[tuple[str, RowRole]] = [("points", "points")]
    keys += [(f.name, "factor") for f in nomogram.factors]
    keys.append(("total_points", "total_points"))
    if include_linear_predictor:
        keys.append(("linear_predictor", "linear_predictor"))
    keys.append(("probability", "probability"))
    n_rows = len(keys)
    t_max_raw = nomogram.max_total_points
    t_max = nice_range(0.0, max(t_max_raw, 1e-9), target=10)[1]

    def y_of(i: int) -> float:
        return (i + 0.5) / n_rows

    # Points
    pts_ticks = [Tick(v, v / 100.0, format_tick(v, 10.0)) for v in nice_ticks(0, 100, 10)]
    rows.append(AxisRow("points", "points", "Points", 0, y_of(0), 0.0, 1.0, tuple(pts_ticks)))

    # Factors
    for i, f in enumerate(nomogram.factors, start=1):
        lo, hi = f.axis_range  # type: ignore[misc]
        beta = nomogram.coefficients[f.name]
        x_lo = nomogram.points_for(f.name, lo) / 100.0
        x_hi = nomogram.points_for(f.name, hi) / 100.0
        if f.kind == "binary":
            ticks = _binary_ticks(x_lo, x_hi)
        else:
            values, step = _factor_tick_values(lo, hi, abs(x_hi - x_lo))
            ticks = [
                Tick(v, nomogram.points_for(f.name, v) / 100.0, format_tick(v, step))
                for v in values
            ]
            ticks = sorted(ticks, key=lambda t: t.x)
            ticks = sorted(_thin(ticks), key=lambda t: t.value)
        rows.append(
            AxisRow(
                key=f.name,
                role="factor",
                label=f.display_label,
                index=i,
                y=y_of(i),
                x_start=min(x_lo, x_hi),
                x_end=max(x_lo, x_hi),
                ticks=tuple(ticks),
                kind=f.kind,
                reversed=beta < 0,
            )
        )

    # Total points
    idx = len(nomogram.factors) + 1
    step = nice_step(t_max, 10)
    tp_ticks = [Tick(v, v / t_max, format_tick(v, step)) for v in nice_ticks(0, t_max, 10)]
    rows.append(
        AxisRow(
            "total_points",
            "total_points",
            "Total Points",
            idx,
            y_of(idx),
            0.0,
            1.0,
            tuple(tp_ticks),
        )
    )

    # Linear predictor
    if include_linear_predictor:
        idx += 1
        lp_lo = float(nomogram.linear_predictor_for_points(0.0))
        lp_hi = float(nomogram.linear_predictor_for_points(t_max))
        lp_step = nice_step(lp_hi - lp_lo, 8)
        lp_ticks = [
            Tick(v, float(nomogram.points_for_linear_predictor(v)) / t_max, format_tick(v, lp_step))
            for v in nice_ticks(lp_lo, lp_hi, 8)
        ]
        rows.append(
            AxisRow(
                "linear_predictor",
                "linear_predictor",
                "Linear Predictor",
                idx,
                y_of(idx),
                lp_ticks[0].x if lp_ticks else 0.0,
                lp_ticks[-1].x if lp_ticks else 1.0,
                tuple(lp_ticks),
            )
        )

    # Probability
    idx += 1
    prob_ticks = []
    for p in sorted(probability_ticks):
        if not 0 < p < 1:
            continue
        x = float(nomogram.points_for_probability(p)) / t_max
        if -1e-9 <= x <= 1 + 1e-9:
            prob_ticks.append(Tick(float(p), min(max(x, 0.0), 1.0), _prob_label(p)))
    prob_ticks = _thin_by_priority(prob_ticks)
    x_start = prob_ticks[0].x if prob_ticks else 0.0
    x_end = prob_ticks[-1].x if prob_ticks else 1.0
    label = probability_label or f"Risk of {nomogram.outcome_label.lower()}"
    rows.append(
        AxisRow(
            "probability",
            "probability",
            label,
            idx,
            y_of(idx),
            x_start,
            x_end,
            tuple(prob_ticks),
        )
    )

    cut_x = float(nomogram.points_for_probability(nomogram.cutoff)) / t_max
    cutoff_x = cut_x if 0.0 <= cut_x <= 1.0 else None

    marks: list[Mark] = []
    if prediction is not None:
        by_key = {r.key: r for r in rows}

        def clamp(key: str, x: float) -> tuple[float, bool]:
            r = by_key[key]
            xc = min(max(x, r.x_start), r.x_end)
            return xc, not math.isclose(xc, x, abs_tol=1e-12)

        for f in nomogram.factors:
            v = float(prediction.inputs[f.name])
            pts = float(prediction.points[f.name])
            x, cl = clamp(f.name, pts / 100.0)
            if f.kind == "binary":
                text = "Yes" if v >= 0.5 else "No"
            else:
                text = _mark_text(v)
            xp, _ = clamp("points", pts / 100.0)
            marks.append(Mark(f.name, v, x, text, cl, pts, xp))
        total = float(prediction.total_points)
        x_total = total / t_max
        x, cl = clamp("total_points", x_total)
        marks.append(Mark("total_points", total, x, f"{total:.0f}", cl))
        if include_linear_predictor:
            lp = float(prediction.linear_predictor)
            r = by_key["linear_predictor"]
            xc = float(np.clip(x_total, 0.0, 1.0))
            marks.append(
                Mark("linear_predictor", lp, xc, f"{lp:.2f}", not (r.x_start <= x_total <= r.x_end))
            )
        prob = float(prediction.probability)
        xc = float(np.clip(x_total, 0.0, 1.0))
        marks.append(Mark("probability", prob, xc, f"{prob:.2f}", not (0.0 <= x_total <= 1.0)))

    return NomogramLayout(
        title=nomogram.title,
        rows=tuple(rows),
        marks=tuple(marks),
        n_rows=n_rows,
        total_points_max=t_max,
        cutoff=nomogram.cutoff,
        cutoff_x=cutoff_x,
        probability=None if prediction is None else float(prediction.probability),
        ci95=None if prediction is None else tuple(prediction.ci95),  # type: ignore[arg-type]
        risk_group=None if prediction is None else prediction.risk_group,
        nomogram=nomogram,
    )


def _mark_text(value: float) -> str:
    """A patient's value as a clinician reads it: 0.906441 → "0.91", 620.0 → "620"."""
    a = abs(value)
    if a >= 100 or value == int(value):
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
