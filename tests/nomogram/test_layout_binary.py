"""A binary factor with a near-zero effect: its No and Yes ticks nearly coincide, and the two
labels must not print over each other (issue 14)."""

from __future__ import annotations

import dataclasses

import pytest

from sinusapp.nomogram import build_layout
from sinusapp.nomogram.layout import BINARY_CLOSE_LABEL, MIN_TICK_GAP
from sinusapp.nomogram.plot import draw_nomogram


def _with_asthma(nomogram, beta: float):
    coefficients = dict(nomogram.coefficients) | {"asthma": beta}
    return dataclasses.replace(nomogram, coefficients=coefficients)


@pytest.mark.parametrize("beta", [1e-4, -1e-4, 0.0], ids=["tiny+", "tiny-", "zero"])
def test_close_binary_ticks_get_one_label(nomogram, beta) -> None:
    nomo = _with_asthma(nomogram, beta)
    row = build_layout(nomo).row("asthma")
    no, yes = row.ticks
    assert (no.value, yes.value) == (0.0, 1.0)
    assert abs(yes.x - no.x) < MIN_TICK_GAP
    labels = [t.label for t in sorted(row.ticks, key=lambda t: t.x)]
    expected = BINARY_CLOSE_LABEL if beta >= 0 else "Yes ≈ No"
    assert [lbl for lbl in labels if lbl] == [expected]
    assert labels[0] == expected  # on the left tick, read left to right
    lay = build_layout(nomo)  # a what-if drag still reads No / Yes from the tick marks
    assert lay.value_at("asthma", yes.x) is (beta != 0.0)


def test_a_clear_binary_effect_keeps_no_and_yes(nomogram) -> None:
    row = build_layout(nomogram).row("asthma")
    assert abs(row.ticks[1].x - row.ticks[0].x) >= MIN_TICK_GAP
    assert [t.label for t in row.ticks] == ["No", "Yes"]


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("beta", [1e-4, 0.02])
def test_the_drawn_tick_labels_do_not_overlap(nomogram, beta) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    nomo = _with_asthma(nomogram, beta)
    pred = nomo.predict(dlr_score=0.5, asthma=True, allergic_rhinitis=False, eosinophils_per_ul=300)
    fig = draw_nomogram(build_layout(nomo, prediction=pred), show_marks=False)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    y_row = build_layout(nomo).row("asthma").y
    texts = [
        t
        for t in ax.texts
        if t.get_text() and abs(t.get_position()[1] - y_row) < 0.5 / len(build_layout(nomo).rows)
    ]
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_ha() != "right"]  # no row label
    assert boxes, [t.get_text() for t in texts]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b), [t.get_text() for t in texts]
