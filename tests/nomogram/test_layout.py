"""The pure layout: rows, ticks and marks agree with the model; the inverse mapping works."""

from __future__ import annotations

import itertools
import math

import pytest

from sinusapp.nomogram import build_layout
from sinusapp.nomogram.plot import draw_nomogram

PATIENT = {"dlr_score": 0.6, "asthma": True, "allergic_rhinitis": False, "eosinophils_per_ul": 450}


def test_rows_in_rms_order(nomogram):
    lay = build_layout(nomogram, include_linear_predictor=True)
    assert [r.key for r in lay.rows] == [
        "points",
        "dlr_score",
        "asthma",
        "allergic_rhinitis",
        "eosinophils_per_ul",
        "total_points",
        "linear_predictor",
        "probability",
    ]
    assert [r.index for r in lay.rows] == list(range(lay.n_rows))
    assert all(0 < r.y < 1 for r in lay.rows)
    assert [r.y for r in lay.rows] == sorted(r.y for r in lay.rows)
    assert lay.row("eosinophils_per_ul").label == "Eosinophils (cells/µL)"
    assert [t.label for t in lay.row("asthma").ticks] == ["No", "Yes"]
    assert lay.marks == () and lay.probability is None
    assert [r.key for r in build_layout(nomogram).rows][-2:] == ["total_points", "probability"]


def test_ticks_sit_where_the_model_puts_them(nomogram):
    lay = build_layout(nomogram, include_linear_predictor=True)
    pts = lay.row("points")
    assert (pts.x_start, pts.x_end) == (0.0, 1.0)
    assert [t.value for t in pts.ticks] == [10.0 * k for k in range(11)]
    widest = max((r for r in lay.rows if r.role == "factor"), key=lambda r: r.x_end - r.x_start)
    assert (widest.x_start, widest.x_end) == (pytest.approx(0.0), pytest.approx(1.0))
    for row in lay.rows:
        for t in row.ticks:
            assert row.x_start - 1e-9 <= t.x <= row.x_end + 1e-9
            if row.role == "factor":
                assert t.x == pytest.approx(nomogram.points_for(row.key, t.value) / 100)
    for t in lay.row("probability").ticks:
        total = t.x * lay.total_points_max
        assert float(nomogram.probability_for_points(total)) == pytest.approx(t.value)
    for t in lay.row("linear_predictor").ticks:
        total = t.x * lay.total_points_max
        assert float(nomogram.linear_predictor_for_points(total)) == pytest.approx(t.value)
    assert lay.total_points_max >= nomogram.max_total_points
    probs = [t.x for t in lay.row("probability").ticks]
    assert all(b - a >= 0.045 - 1e-12 for a, b in itertools.pairwise(probs))
    assert "0.5" in [t.label for t in lay.row("probability").ticks]


def test_patient_marks_line_up(nomogram):
    pred = nomogram.predict(**PATIENT)
    lay = build_layout(nomogram, prediction=pred, include_linear_predictor=True)
    for name in PATIENT:
        m = lay.mark(name)
        assert m.x == pytest.approx(pred.points[name] / 100)
        assert m.points_x == pytest.approx(m.x)
        assert not m.clamped
    assert lay.mark("asthma").label == "Yes" and lay.mark("allergic_rhinitis").label == "No"
    total = lay.mark("total_points")
    assert total.value == pytest.approx(pred.total_points)
    assert total.x == pytest.approx(pred.total_points / lay.total_points_max)
    # vertically aligned: total points above the probability and the linear predictor
    assert lay.mark("probability").x == pytest.approx(total.x)
    assert lay.mark("linear_predictor").x == pytest.approx(total.x)
    assert lay.x_for("probability", pred.probability) == pytest.approx(total.x)
    assert (lay.probability, lay.risk_group) == (pred.probability, pred.risk_group)
    assert lay.cutoff_x == pytest.approx(lay.x_for("probability", nomogram.cutoff))


def test_out_of_axis_value_is_clamped_and_flagged(nomogram):
    hi = nomogram.factor("eosinophils_per_ul").axis_range[1]
    pred = nomogram.predict(**{**PATIENT, "eosinophils_per_ul": hi + 1500})
    m = build_layout(nomogram, prediction=pred).mark("eosinophils_per_ul")
    assert m.clamped and m.x == pytest.approx(1.0)
    assert m.points > 100


def test_value_at_inverts_x_for(nomogram):
    lay = build_layout(nomogram)
    for value in (0.0, 137.0, 450.0, 800.0):
        x = lay.x_for("eosinophils_per_ul", value)
        assert lay.value_at("eosinophils_per_ul", x) == pytest.approx(value)
    assert lay.value_at("dlr_score", lay.x_for("dlr_score", 0.37)) == pytest.approx(0.37)
    yes_x = lay.x_for("asthma", 1.0)
    assert lay.value_at("asthma", yes_x - 0.01) is True
    assert lay.value_at("asthma", 0.01) is False
    assert lay.value_at("points", 0.42) == pytest.approx(42.0)
    assert lay.value_at("total_points", 0.5) == pytest.approx(0.5 * lay.total_points_max)
    x = lay.x_for("probability", 0.3)
    assert lay.value_at("probability", x) == pytest.approx(0.3)
    # dragging past the axis end stays on the axis
    assert (
        lay.value_at("eosinophils_per_ul", 5.0)
        == nomogram.factor("eosinophils_per_ul").axis_range[1]
    )


def test_reference_plot_renders(nomogram, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    pred = nomogram.predict(**PATIENT)
    fig = draw_nomogram(build_layout(nomogram, prediction=pred))
    out = tmp_path / "nomogram.png"
    fig.savefig(out)
    assert out.stat().st_size > 10_000
    assert math.isfinite(pred.probability)


def test_a_short_axis_labels_both_its_ends() -> None:
    """No round step lands on both ends of a short DLR-score axis (0.1-0.6 over 21 % of the
    page: the bundled nomogram after its refit); the ends are labelled anyway, in place of a
    tick too close to them, and a label always reads its own value."""
    from sinusapp.nomogram._ticks import format_tick
    from sinusapp.nomogram.layout import MIN_TICK_GAP, _factor_tick_values

    values, step = _factor_tick_values(0.1, 0.6, 0.21)
    assert values[0] == pytest.approx(0.1) and values[-1] == pytest.approx(0.6)
    xs = [0.21 * (v - 0.1) / 0.5 for v in values]
    assert all(b - a >= MIN_TICK_GAP for a, b in itertools.pairwise(xs))
    assert [float(format_tick(v, step)) for v in values] == pytest.approx(values)
    # an end that its step cannot label truly (0.133 at step 0.1 would read "0.1") is left out
    values, step = _factor_tick_values(0.133, 0.571, 0.3)
    assert [float(format_tick(v, step)) for v in values] == pytest.approx(values)
    # a long axis keeps its plain round ticks
    assert _factor_tick_values(0.0, 800.0, 1.0)[0] == [float(v) for v in range(0, 801, 100)]
