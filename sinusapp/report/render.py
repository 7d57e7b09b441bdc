"""The one renderer of the preoperative risk report: :class:`ReportContext` → PDF (reportlab).

Page layout (A4 or US Letter, portrait):

1. Summary: the result (probability with its 95 % CI, risk group and cutoff), patient and
   study identification, clinical inputs as entered with their nomogram points, input
   quality findings.
2. Imaging: the key coronal and axial slices in a bone window with the red model contour
   (and blue reference contour) drawn as vector polylines over the image, scale bar and
   orientation letters; lesion volume; per-sinus opacification and Lund–Mackay grades.
3. The nomogram (vector graphics from the nomogram's layout) with the patient's values and
   total points marked; intended use, limitations, model card summary, signature lines.

Every page carries a header (product, software version, model name / version / short
checksum, date and time of analysis, patient, page x of y) and a footer with the
"not for clinical use" notice where it applies.

:func:`render_pdf` writes atomically: the PDF is built in memory, written to a temporary file
beside the target and moved over it with :func:`os.replace`, so a failed or interrupted save
never leaves a half file, and an existing report stays intact.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4, letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from sinusapp.atomic import write_bytes_atomic
from sinusapp.nomogram.layout import NomogramLayout
from sinusapp.report.context import KeySlice, ReportContext, severity_rank

__all__ = ["render_pdf", "render_pdf_bytes"]

log = logging.getLogger(__name__)

PAGE_SIZES = {"A4": A4, "Letter": letter}
MODEL_RED = colors.Color(0.92, 0.10, 0.10)
REFERENCE_BLUE = colors.Color(0.15, 0.45, 1.0)
INK = colors.Color(0.12, 0.12, 0.14)
MUTED = colors.Color(0.38, 0.38, 0.42)
RULE = colors.Color(0.75, 0.75, 0.78)
PANEL = colors.Color(0.95, 0.96, 0.97)
WARN_BG = colors.Color(1.0, 0.94, 0.92)
WARN_FG = colors.Color(0.65, 0.05, 0.05)

_FONTS: dict[str, str] = {}


# --------------------------------------------------------------------------------------------
# Fonts and styles
# --------------------------------------------------------------------------------------------


def _fonts() -> dict[str, str]:
    """Register DejaVu Sans (matplotlib ships it: µ, ⁹, ≥, −, Greek, Cyrillic) once.

    Falls back to Helvetica (Latin-1 only) when the TTF files cannot be found.
    """
    if _FONTS:
        return _FONTS
    regular, bold = "Helvetica", "Helvetica-Bold"
    try:
        import matplotlib

        base = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        pdfmetrics.registerFont(TTFont("SinusSans", str(base / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("SinusSans-Bold", str(base / "DejaVuSans-Bold.ttf")))
        regular, bold = "SinusSans", "SinusSans-Bold"
    except (ImportError, OSError, TTFError) as exc:
        log.warning("DejaVu Sans not available (%s); using Helvetica", exc)
    _FONTS.update(regular=regular, bold=bold)
    return _FONTS


def _styles() -> dict[str, ParagraphStyle]:
    f = _fonts()
    base = ParagraphStyle("base", fontName=f["regular"], fontSize=9, leading=11.5, textColor=INK)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5, textColor=MUTED),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8.5, leading=10.5),
        "cell_b": ParagraphStyle(
            "cell_b", parent=base, fontSize=8.5, leading=10.5, fontName=f["bold"]
        ),
        "title": ParagraphStyle(
            "title", parent=base, fontName=f["bold"], fontSize=15, leading=19, spaceAfter=2
        ),
        "subtitle": ParagraphStyle(
            "subtitle", parent=base, fontSize=9.5, leading=12, textColor=MUTED, spaceAfter=6
        ),
        "h2": ParagraphStyle(
            "h2",
            parent=base,
            fontName=f["bold"],
            fontSize=11,
            leading=14,
            spaceBefore=9,
            spaceAfter=4,
        ),
        "big": ParagraphStyle("big", parent=base, fontName=f["bold"], fontSize=17, leading=21),
        "risk": ParagraphStyle("risk", parent=base, fontName=f["bold"], fontSize=11.5, leading=15),
        "warn": ParagraphStyle(
            "warn", parent=base, fontName=f["bold"], fontSize=9, leading=11.5, textColor=WARN_FG
        ),
        "caption": ParagraphStyle(
            "caption", parent=base, fontSize=8, leading=10, textColor=MUTED, alignment=TA_CENTER
        ),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


# --------------------------------------------------------------------------------------------
# Page header / footer with "page x of y"
# --------------------------------------------------------------------------------------------


def _canvas_class(ctx: ReportContext) -> type[rl_canvas.Canvas]:
    """A canvas that defers each page, then draws header and footer knowing the page count."""
    fonts = _fonts()

    class _NumberedCanvas(rl_canvas.Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._saved_pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab API)
            self._saved_pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._saved_pages)
            for state in self._saved_pages:
                self.__dict__.update(state)
                self._draw_furniture(total)
                super().showPage()
            super().save()

        def _draw_furniture(self, total: int) -> None:
            w, h = self._pagesize
            left, right = 15 * mm, w - 15 * mm
            top = h - 10 * mm
            self.saveState()
            self.setFillColor(INK)
            self.setFont(fonts["bold"], 9)
            self.drawString(left, top, f"{ctx.product} {ctx.software_version}")
            self.setFont(fonts["regular"], 8)
            self.drawString(left + 30 * mm, top, "Preoperative CRS recurrence risk report")
            self.drawRightString(right, top, f"Page {self._pageNumber} of {total}")
            self.setFillColor(MUTED)
            self.setFont(fonts["regular"], 7.5)
            self.drawString(left, top - 10, f"Model: {ctx.header_model_text}")
            self.drawRightString(right, top - 10, f"Analysed: {ctx.analysed_at_display}")
            self.drawString(left, top - 19, f"Patient: {ctx.patient_name} · ID {ctx.patient_id}")
            if ctx.nomogram_version:
                self.drawRightString(right, top - 19, f"Nomogram: {ctx.nomogram_version}")
            self.setStrokeColor(RULE)
            self.setLineWidth(0.6)
            self.line(left, top - 23, right, top - 23)
            # footer
            self.line(left, 12 * mm, right, 12 * mm)
            if ctx.not_for_clinical_use:
                self.setFillColor(WARN_FG)
                self.setFont(fonts["bold"], 7.5)
                self.drawString(
                    left,
                    12 * mm - 9,
                    "AI-generated, not for diagnostic use. Not validated for clinical use.",
                )
            self.setFillColor(MUTED)
            self.setFont(fonts["regular"], 7.5)
            self.drawRightString(
                right, 12 * mm - 9, f"Generated by {ctx.product} {ctx.software_version}"
            )
            self.restoreState()

    return _NumberedCanvas


# --------------------------------------------------------------------------------------------
# Flowables: key slice, nomogram
# --------------------------------------------------------------------------------------------


class _SliceFlowable(Flowable):
    """A key slice: the image at its physical aspect, contours as vector paths, scale bar."""

    def __init__(self, key: KeySlice, *, max_width: float, scale: float) -> None:
        super().__init__()
        self.key = key
        w_mm, h_mm = key.size_mm
        self.img_w = w_mm * scale
        self.img_h = h_mm * scale
        self.width = max_width
        self.height = self.img_h
        self._font = _fonts()

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        from PIL import Image

        c = self.canv
        key = self.key
        x0 = (self.width - self.img_w) / 2.0
        y0 = 0.0
        rows, cols = key.image.shape
        sx, sy = self.img_w / cols, self.img_h / rows
        c.saveState()
        c.setFillColor(colors.black)
        c.rect(x0, y0, self.img_w, self.img_h, stroke=0, fill=1)
        img = Image.fromarray(np.ascontiguousarray(key.image), mode="L")
        c.drawImage(ImageReader(img), x0, y0, self.img_w, self.img_h)

        def to_page(xy: np.ndarray) -> list[tuple[float, float]]:
            return [(x0 + float(x) * sx, y0 + self.img_h - float(y) * sy) for x, y in xy]

        # clip contours to the image
        path = c.beginPath()
        path.rect(x0, y0, self.img_w, self.img_h)
        c.clipPath(path, stroke=0, fill=0)
        for polylines, color in (
            (key.reference_contours, REFERENCE_BLUE),
            (key.model_contours, MODEL_RED),
        ):
            c.setStrokeColor(color)
            c.setLineWidth(0.9)
            c.setLineJoin(1)
            for poly in polylines:
                pts = to_page(poly)
                p = c.beginPath()
                p.moveTo(*pts[0])
                for pt in pts[1:]:
                    p.lineTo(*pt)
                p.close()
                c.drawPath(p, stroke=1, fill=0)
        # scale bar, bottom right
        bar_pt = key.scale_bar_mm / key.pixel_spacing_mm[1] * sx
        bx1 = x0 + self.img_w - 6
        bx0 = bx1 - bar_pt
        by = y0 + 7
        c.setStrokeColor(colors.white)
        c.setLineWidth(1.6)
        c.line(bx0, by, bx1, by)
        c.line(bx0, by - 2.5, bx0, by + 2.5)
        c.line(bx1, by - 2.5, bx1, by + 2.5)
        c.setFillColor(colors.white)
        c.setFont(self._font["regular"], 7)
        c.drawCentredString((bx0 + bx1) / 2, by + 4, f"{key.scale_bar_mm:g} mm")
        # orientation letters
        o = key.orientation
        cx, cy = x0 + self.img_w / 2, y0 + self.img_h / 2
        for text, (lx, ly) in (
            (o["top"], (cx, y0 + self.img_h - 8)),
            (o["bottom"], (cx, y0 + 8)),
            (o["left"], (x0 + 8, cy)),
            (o["right"], (x0 + self.img_w - 8, cy)),
        ):
            self._letter(text, lx, ly)
        c.restoreState()

    def _letter(self, text: str, cx: float, cy: float) -> None:
        """An orientation letter centred at ``(cx, cy)`` on a dark backing."""
        c = self.canv
        size = 8.5
        w = pdfmetrics.stringWidth(text, self._font["bold"], size) + 4
        c.setFillColor(colors.Color(0, 0, 0, alpha=0.6))
        c.rect(cx - w / 2, cy - 6, w, 12, stroke=0, fill=1)
        c.setFillColor(colors.Color(1.0, 0.9, 0.3))
        c.setFont(self._font["bold"], size)
        c.drawCentredString(cx, cy - 3, text)


class _NomogramFlowable(Flowable):
    """The nomogram drawn as vector graphics from its :class:`NomogramLayout` (the same object
    the screen draws), with the patient's marks, projection lines and the cutoff."""

    ROW = 27.0

    def __init__(self, layout: NomogramLayout, *, width: float) -> None:
        super().__init__()
        self.layout = layout
        self.width = width
        self.height = self.ROW * len(layout.rows) + 10
        self._font = _fonts()

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        c = self.canv
        f = self._font
        lay = self.layout
        label_w = 0.25 * self.width
        ax0 = label_w + 8
        ax1 = self.width - 10
        span = ax1 - ax0

        def to_x(u: float) -> float:
            return ax0 + u * span

        rows = sorted(lay.rows, key=lambda r: r.index)
        y_of = {r.key: self.height - 14 - i * self.ROW for i, r in enumerate(rows)}
        c.saveState()
        for i, r in enumerate(rows):  # light bands for readability
            if i % 2 == 0:
                c.setFillColor(PANEL)
                c.rect(0, y_of[r.key] - self.ROW / 2 - 3, self.width, self.ROW, stroke=0, fill=1)
        # projection lines: factor marks up to the Points axis, total down to probability
        c.setDash(2, 2)
        c.setLineWidth(0.6)
        c.setStrokeColor(MODEL_RED)
        roles = {r.key: r.role for r in rows}
        for m in lay.marks:
            if roles.get(m.key) == "factor" and m.points_x is not None and "points" in y_of:
                c.line(to_x(m.x), y_of[m.key], to_x(m.points_x), y_of["points"])
        total = lay.mark("total_points")
        if total is not None:
            bottom = max(
                (k for k in y_of if roles[k] in ("linear_predictor", "probability")),
                key=lambda k: -y_of[k],
                default=None,
            )
            if bottom is not None:
                c.line(to_x(total.x), y_of["total_points"], to_x(total.x), y_of[bottom])
        c.setDash()
        for i, r in enumerate(rows):
            y = y_of[r.key]
            band = PANEL if i % 2 == 0 else colors.white
            c.setFillColor(INK)
            c.setFont(f["bold"] if r.role != "factor" else f["regular"], 8.5)
            c.drawRightString(label_w, y - 3, r.label)
            c.setStrokeColor(INK)
            c.setLineWidth(0.8)
            c.line(to_x(r.x_start), y, to_x(r.x_end), y)
            c.setFont(f["regular"], 7)
            last_right = -math.inf
            for t in sorted(r.ticks, key=lambda t: t.x):
                c.line(to_x(t.x), y, to_x(t.x), y + 3)
                half = pdfmetrics.stringWidth(t.label, f["regular"], 7) / 2
                if to_x(t.x) - half >= last_right + 2:  # never print overlapping labels
                    # on a patch of the row's own band: a projection line passes under it
                    c.setFillColor(band)
                    c.rect(to_x(t.x) - half - 1, y + 4, 2 * half + 2, 6.5, stroke=0, fill=1)
                    c.setFillColor(INK)
                    c.drawCentredString(to_x(t.x), y + 5, t.label)
                    last_right = to_x(t.x) + half
            if r.role == "probability" and lay.cutoff_x is not None:
                cx = to_x(lay.cutoff_x)
                c.setFillColor(INK)
                p = c.beginPath()
                p.moveTo(cx, y - 1.5)
                p.lineTo(cx - 3, y - 7)
                p.lineTo(cx + 3, y - 7)
                p.close()
                c.drawPath(p, stroke=0, fill=1)
                c.setFont(f["regular"], 6.5)
                pm = lay.mark("probability")
                text = f"cutoff {lay.cutoff:.2f}"
                if pm is not None and pm.x >= lay.cutoff_x:  # keep clear of the patient's label
                    c.drawRightString(cx - 4, y - 8, text)
                else:
                    c.drawString(cx + 4, y - 8, text)
        for m in lay.marks:
            if m.key not in y_of:
                continue
            y = y_of[m.key]
            x = to_x(m.x)
            c.setFillColor(MODEL_RED)
            c.setStrokeColor(colors.white)
            c.setLineWidth(0.5)
            c.circle(x, y, 3.2, stroke=1, fill=1)
            text = m.label + (" (beyond axis)" if m.clamped else "")
            if text:
                lw = pdfmetrics.stringWidth(text, f["bold"], 7.5) + 4
                lx = min(max(x, ax0 + lw / 2 - 4), ax1 - lw / 2)
                c.setFillColor(colors.white)
                c.rect(lx - lw / 2, y - 13.5, lw, 9, stroke=0, fill=1)
                c.setFillColor(MODEL_RED)
                c.setFont(f["bold"], 7.5)
                c.drawCentredString(lx, y - 11.5, text)
        c.restoreState()


# --------------------------------------------------------------------------------------------
# Story
# --------------------------------------------------------------------------------------------


def _kv_table(
    rows: Sequence[tuple[str, str]],
    styles: dict[str, ParagraphStyle],
    col_widths: tuple[float, float],
) -> Table:
    data = [[_p(k, styles["cell_b"]), _p(v, styles["cell"])] for k, v in rows]
    t = Table(data, colWidths=col_widths, hAlign="LEFT")
    t.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
            ]
        )
    )
    return t


def _grid_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    styles: dict[str, ParagraphStyle],
    col_widths: Sequence[float],
) -> Table:
    data = [[_p(h, styles["cell_b"]) for h in header]]
    data += [[_p(v, styles["cell"]) for v in r] for r in rows]
    t = Table(data, colWidths=list(col_widths), hAlign="LEFT", repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (-1, 0), PANEL),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, INK),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return t


def _fmt(v: float | None, fmt: str) -> str:
    return "—" if v is None or not math.isfinite(v) else format(v, fmt)


def _summary_box(ctx: ReportContext, styles: dict[str, ParagraphStyle], width: float) -> Table:
    prob = Paragraph(f"Probability of recurrence: {escape(ctx.probability_text)}", styles["big"])
    risk = _p(ctx.risk_text, styles["risk"])
    facts = _p(
        f"Total points {ctx.total_points:.0f} · DLR-score {ctx.dlr_score:.3f} · "
        f"lesion volume {ctx.lesion_volume_ml:.1f} mL",
        styles["base"],
    )
    rows = [[prob], [risk], [facts]]
    from sinusapp.case import UNSUITABLE_SERIES

    # a series opened although it is no sinus-capable CT: said in the box itself (the GUI
    # shows it above the result too), not only as one row of the Input quality table
    for f in ctx.findings:
        if f.code == UNSUITABLE_SERIES:
            rows.append([_p(f"⚠ {f.message}", styles["warn"])])
    n_problems = sum(str(f.severity) in ("warning", "error") for f in ctx.findings)
    if n_problems or not ctx.quality_checked:
        # next to the number it qualifies, not only in the Input quality section
        note = (
            f"{n_problems} input quality warning{'s' if n_problems != 1 else ''} (see Input "
            "quality): this number may be unreliable for this CT."
            if ctx.quality_checked
            else "The input plausibility checks were not run (see Input quality)."
        )
        rows.append([_p(note, styles["warn"])])
    t = Table(rows, colWidths=[width])
    high = ctx.probability >= ctx.cutoff if math.isfinite(ctx.cutoff) else False
    t.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.2, WARN_FG if high else INK),
                ("BACKGROUND", (0, 0), (-1, -1), PANEL),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, 0), 7),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 7),
            ]
        )
    )
    return t


def _warning_banner(
    ctx: ReportContext, styles: dict[str, ParagraphStyle], width: float
) -> Table | None:
    if not ctx.not_for_clinical_use:
        return None
    text = ctx.limitations[0] if ctx.limitations else "Not validated for clinical use."
    t = Table([[_p(f"NOT FOR CLINICAL USE. {text}", styles["warn"])]], colWidths=[width])
    t.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.0, WARN_FG),
                ("BACKGROUND", (0, 0), (-1, -1), WARN_BG),
                ("LEFTPADDING", (0, 0), (-1, -1), 7),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
            ]
        )
    )
    return t


def _story(ctx: ReportContext, width: float, height: float) -> list[Flowable]:
    s = _styles()
    story: list[Flowable] = []
    # ---- page 1: summary, identification, clinical inputs, input quality
    story.append(_p(ctx.title, s["title"]))
    sub = "Decision support for endoscopic sinus surgery planning (He et al., iScience 2023)"
    if ctx.institution:
        sub = f"{ctx.institution} · {sub}"
    story.append(_p(sub, s["subtitle"]))
    banner = _warning_banner(ctx, s, width)
    if banner is not None:
        story += [banner, Spacer(1, 6)]
    story.append(_summary_box(ctx, s, width))

    story.append(_p("Patient and study", s["h2"]))
    half = (width - 8) / 2
    patient_t = _kv_table(
        [(lv.label, lv.value) for lv in ctx.patient], s, (22 * mm, half - 22 * mm)
    )
    study_t = _kv_table([(lv.label, lv.value) for lv in ctx.study], s, (23 * mm, half - 23 * mm))
    two = Table([[patient_t, study_t]], colWidths=[half + 8, half])
    two.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    story.append(two)

    story.append(_p("Clinical inputs (as entered)", s["h2"]))
    rows = [
        (c.label, c.value, c.unit or "—", "—" if c.points is None else f"{c.points:.1f}")
        for c in ctx.clinical
    ]
    rows.append(("Total points", "", "", f"{ctx.total_points:.1f}"))
    story.append(
        _grid_table(
            ("Factor", "Value", "Unit", "Nomogram points"),
            rows,
            s,
            (0.38 * width, 0.22 * width, 0.18 * width, 0.22 * width),
        )
    )

    story.append(_p("Input quality", s["h2"]))
    if ctx.findings:
        frows = [
            (str(f.severity).upper(), f.code, f.message)
            for f in sorted(ctx.findings, key=severity_rank)
        ]
        story.append(
            _grid_table(
                ("Severity", "Check", "Finding"),
                frows,
                s,
                (0.13 * width, 0.22 * width, 0.65 * width),
            )
        )
        story.append(Spacer(1, 3))
    # never "no problems" unless the plausibility gate ran and found no warning or error
    ok = ctx.quality_checked and not ctx.has_quality_problem
    story.append(_p(ctx.quality_summary, s["base"] if ok else s["warn"]))

    story.append(_p("Intended use", s["h2"]))
    story.append(_p(ctx.intended_use, s["base"]))

    # ---- page 2: imaging (on the page the summary spilled onto, when it leaves room for
    # the key slices: a long list of findings must not leave a near-empty page 2)
    story.append(CondPageBreak(min(0.5 * height, 125 * mm) + 45 * mm))
    story.append(_p("Key slices", s["h2"]))
    if ctx.key_slices:
        n = len(ctx.key_slices)
        cell_w = (width - 6 * (n - 1)) / n
        max_h = min(0.5 * height, 125 * mm)
        # one physical scale (pt per mm) for all key slices, so sizes compare at a glance
        scale = min(min(cell_w / k.size_mm[0], max_h / k.size_mm[1]) for k in ctx.key_slices)
        imgs = [_SliceFlowable(k, max_width=cell_w, scale=scale) for k in ctx.key_slices]
        caps = [
            _p(
                f"{k.position_label.capitalize()}; lesion area in this slice "
                f"{k.lesion_area_mm2 / 100.0:.1f} cm²; window L {k.window_hu[0]:.0f} / "
                f"W {k.window_hu[1]:.0f} HU",
                s["caption"],
            )
            for k in ctx.key_slices
        ]
        grid = Table([imgs, caps], colWidths=[cell_w + (6 if i < n - 1 else 0) for i in range(n)])
        grid.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 1), (-2, 1), 8),
                ]
            )
        )
        story.append(grid)
        legend = "<font color='#eb1a1a'>■</font> red contour: lesion segmented by the model"
        if any(k.reference_contours for k in ctx.key_slices) or ctx.dice_vs_reference is not None:
            legend += "; <font color='#2673ff'>■</font> blue contour: reference segmentation"
            if ctx.dice_vs_reference is not None:
                legend += f" (Dice coefficient model vs reference {ctx.dice_vs_reference:.3f})"
        legend += ". Radiological convention: the patient's right is on the image's left."
        story.append(Spacer(1, 4))
        story.append(Paragraph(legend, s["small"]))
    story.append(_p("Lesion quantification", s["h2"]))
    story.append(
        _p(f"Total lesion volume (model segmentation): {ctx.lesion_volume_ml:.1f} mL", s["base"])
    )
    if ctx.sinuses:
        srows = [
            (
                r.label,
                _fmt(r.volume_ml, ".1f"),
                _fmt(r.opacified_ml, ".1f"),
                "not assessed" if r.opacification_pct is None else _fmt(r.opacification_pct, ".0f"),
                "—" if r.lund_mackay is None else str(r.lund_mackay),
            )
            for r in ctx.sinuses
        ]
        story.append(Spacer(1, 4))
        story.append(
            _grid_table(
                (
                    "Sinus",
                    "Volume (mL)",
                    "Opacified (mL)",
                    "Opacification (%)",
                    "Lund–Mackay grade",
                ),
                srows,
                s,
                (0.30 * width, 0.16 * width, 0.18 * width, 0.18 * width, 0.18 * width),
            )
        )
        if ctx.lund_mackay_total is not None:
            story.append(Spacer(1, 3))
            story.append(
                _p(
                    f"Lund–Mackay score: {ctx.lund_mackay_total} / {ctx.lund_mackay_max}. "
                    f"{ctx.lund_mackay_note}",
                    s["base"],
                )
            )
        elif ctx.lund_mackay_note.strip():
            story.append(Spacer(1, 3))
            story.append(_p(f"No sinus graded. {ctx.lund_mackay_note.strip()}", s["base"]))
    else:
        story.append(_p("Per-sinus quantification is not available for this analysis.", s["small"]))

    # ---- page 3: nomogram and texts
    story.append(PageBreak())
    story.append(_p("Nomogram", s["h2"]))
    if ctx.nomogram_layout is not None:
        story.append(_NomogramFlowable(ctx.nomogram_layout, width=width))
        story.append(Spacer(1, 3))
        story.append(
            _p(
                "How to read: each factor's value (red dot) gives points on the top axis; the "
                "points add up to the total points, which give the probability of recurrence "
                "below (▲ marks the risk-group cutoff). "
                + ctx.probability_text.join(("Here: ", ".")),
                s["small"],
            )
        )
    else:
        story.append(
            _p(
                "The nomogram figure is not available; points per factor are listed "
                "with the clinical inputs on page 1.",
                s["small"],
            )
        )
    story.append(
        _p(
            f"Probability of recurrence: {ctx.probability_text}. {ctx.risk_text}.",
            s["cell_b"],
        )
    )

    story.append(CondPageBreak(60 * mm))
    story.append(_p("Limitations", s["h2"]))
    for text in ctx.limitations:
        story.append(Paragraph("• " + escape(text), s["base"]))
    story.append(_p("Model card (summary)", s["h2"]))
    story.append(
        _kv_table([(lv.label, lv.value) for lv in ctx.model_card], s, (32 * mm, width - 32 * mm))
    )

    sig_w = (width - 12) / len(ctx.signature_lines)
    sig = Table(
        [["" for _ in ctx.signature_lines], [_p(t, s["small"]) for t in ctx.signature_lines]],
        colWidths=[sig_w] * len(ctx.signature_lines),
        rowHeights=[13 * mm, None],
    )
    sig.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.7, INK),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 8),
            ]
        )
    )
    story.append(
        KeepTogether(
            [
                _p("Reviewed by the surgeon", s["h2"]),
                _p(
                    "I have reviewed the images, the contours and the inputs of this report.",
                    s["small"],
                ),
                sig,
            ]
        )
    )
    return story


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def render_pdf_bytes(context: ReportContext) -> bytes:
    """Render the report and return the PDF as bytes (deterministic for a given context)."""
    page = PAGE_SIZES[context.page_size]
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=page,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=22 * mm,
        bottomMargin=16 * mm,
        title=f"{context.title}: {context.patient_name} ({context.patient_id})",
        author=f"{context.product} {context.software_version}",
        subject="Preoperative CRS recurrence risk report"
        + (" — AI-generated, not for diagnostic use" if context.not_for_clinical_use else ""),
        creator=f"{context.product} {context.software_version}",
        invariant=True,
    )
    story = _story(context, doc.width, doc.height)
    doc.build(story, canvasmaker=_canvas_class(context))
    return buf.getvalue()


def render_pdf(context: ReportContext, path: str | os.PathLike[str]) -> Path:
    """Render the report to ``path`` atomically.

    The PDF is built in memory first; it is then written to a temporary file in the target
    folder and moved over ``path`` in one step, so a failed or interrupted save never leaves
    a partial file and an existing file at ``path`` stays intact until the new one is
    complete.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputError
        The folder does not exist or cannot be written, ``path`` is a folder, or the disk is
        full; the message names the path.
    """
    target = Path(path)
    data = render_pdf_bytes(context)
    write_bytes_atomic(data, target, what="the report")
    log.info("report written: %s (%d bytes)", target, len(data))
    return target
