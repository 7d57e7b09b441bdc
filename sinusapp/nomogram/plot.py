"""Reference drawing of a :class:`~sinusapp.nomogram.layout.NomogramLayout` with matplotlib.

Used for the evaluation figures and as the reference the Qt widget and the PDF renderer can be
compared with. matplotlib is imported inside the function, so importing this module is cheap;
call it with the Agg backend (``matplotlib.use("Agg")``) in headless code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sinusapp.nomogram.layout import NomogramLayout

__all__ = ["draw_nomogram"]

_LABEL_GAP = 0.02
_MARK_COLOUR = "#c0392b"


def draw_nomogram(
    layout: NomogramLayout,
    *,
    ax: Any | None = None,
    show_marks: bool = True,
    show_grid: bool = True,
    title: str | None = None,
) -> Any:
    """Draw the nomogram in rms style and return the matplotlib ``Figure``.

    Parameters
    ----------
    layout:
        The layout to draw (:func:`sinusapp.nomogram.layout.build_layout`).
    ax:
        An Axes to draw into; a new figure sized to the number of rows when ``None``.
    show_marks:
        Draw the patient's marks (if the layout has any), with projection lines to the
        Points axis and from Total Points down to the probability.
    show_grid:
        Faint vertical lines at the Points ticks.
    title:
        Figure title; default the layout's title.
    """
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(9.0, 0.62 * layout.n_rows + 0.9), dpi=150)
        ax = fig.add_axes((0.24, 0.03, 0.72, 0.88 if title != "" else 0.94))
    else:
        fig = ax.figure
    ax.set_xlim(-0.01, 1.02)
    ax.set_ylim(1.0, 0.0)
    ax.axis("off")

    points_row = layout.row("points")
    if show_grid:
        factor_rows = [r for r in layout.rows if r.role == "factor"]
        bottom = max((r.y for r in factor_rows), default=points_row.y)
        for t in points_row.ticks:
            ax.plot([t.x, t.x], [points_row.y, bottom], color="0.88", lw=0.6, zorder=0)

    for row in layout.rows:
        y = row.y
        ax.plot([row.x_start, row.x_end], [y, y], color="black", lw=1.0, solid_capstyle="butt")
        ax.text(
            -_LABEL_GAP,
            y,
            row.label,
            ha="right",
            va="center",
            fontsize=9,
            fontweight="bold" if row.role != "factor" else "normal",
            transform=ax.transData,
            clip_on=False,
        )
        tick_h = 0.12 / layout.n_rows
        for t in row.ticks:
            ax.plot([t.x, t.x], [y, y - tick_h], color="black", lw=0.8)
            ax.text(t.x, y - tick_h * 1.3, t.label, ha="center", va="bottom", fontsize=7.5)

    if layout.cutoff_x is not None:
        prow = layout.row("probability")
        ax.plot(
            [layout.cutoff_x],
            [prow.y + 0.18 / layout.n_rows],
            marker="^",
            color="0.35",
            ms=5,
            clip_on=False,
        )
        ax.text(
            layout.cutoff_x,
            prow.y + 0.3 / layout.n_rows,
            f"cutoff {layout.cutoff:.2f}",
            ha="center",
            va="top",
            fontsize=7,
            color="0.35",
        )

    if show_marks and layout.marks:
        for m in layout.marks:
            row = layout.row(m.key)
            if m.points_x is not None:
                ax.plot(
                    [m.x, m.points_x],
                    [row.y, points_row.y],
                    color=_MARK_COLOUR,
                    lw=0.7,
                    ls="--",
                    alpha=0.55,
                )
        total = layout.mark("total_points")
        prob = layout.mark("probability")
        if total is not None and prob is not None:
            ax.plot(
                [total.x, prob.x],
                [layout.row("total_points").y, layout.row("probability").y],
                color=_MARK_COLOUR,
                lw=0.9,
                ls="--",
            )
        for m in layout.marks:
            row = layout.row(m.key)
            ax.plot([m.x], [row.y], marker="o", ms=5.5, color=_MARK_COLOUR, zorder=5)
            ax.text(
                m.x + 0.006,
                row.y + 0.16 / layout.n_rows,
                m.label,
                ha="left",
                va="top",
                fontsize=7,
                color=_MARK_COLOUR,
                fontweight="bold",
            )

    heading = layout.title if title is None else title
    if heading:
        sub = ""
        if layout.probability is not None and layout.ci95 is not None:
            sub = (
                f"  —  risk {layout.probability:.2f} (95% CI {layout.ci95[0]:.2f}–"
                f"{layout.ci95[1]:.2f}), {layout.risk_group} risk"
            )
        fig.suptitle(heading + sub, fontsize=11, x=0.5, y=0.985)
    return fig
