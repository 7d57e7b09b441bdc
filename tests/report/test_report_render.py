"""The PDF: its text holds the context's fields, pages render, slices are not blank, and
saving is atomic with a clear error on an unwritable path."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from sinusapp.errors import OutputError
from sinusapp.pipeline import AnalysisResult
from sinusapp.report import ReportContext, render_pdf, render_pdf_bytes

pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 extracts text / renders PDF pages")


def _pages(pdf: bytes) -> list[tuple[str, np.ndarray, tuple[float, float]]]:
    """(text, RGB image at 50 dpi, page size in points) of every page."""
    doc = pdfium.PdfDocument(pdf)
    out = []
    for i in range(len(doc)):
        page = doc[i]
        text = page.get_textpage().get_text_range()
        img = np.asarray(page.render(scale=50 / 72).to_pil().convert("RGB"))
        out.append((text, img, (page.get_width(), page.get_height())))
    return out


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def context(result: AnalysisResult, nomogram) -> ReportContext:
    return ReportContext.from_result(result, nomogram=nomogram)


@pytest.fixture(scope="module")
def pages(context: ReportContext) -> list[tuple[str, np.ndarray, tuple[float, float]]]:
    return _pages(render_pdf_bytes(context))


def test_pdf_text_contains_the_context(context: ReportContext, pages) -> None:
    assert len(pages) == 3
    text = _flat(" ".join(t for t, _, _ in pages))
    expected = [
        "SinusApp 0.1.0",
        context.model_name,
        context.model_version,
        context.model_sha256_short,
        context.analysed_at_display,
        context.probability_text,
        context.risk_text,
        "Intended use",
        "trained on synthetic",
        "NOT validated for clinical use",
        "AI-generated, not for diagnostic use",
        "Signature",
        f"{context.lesion_volume_ml:.1f} mL",
        "cells/µL",
        "Lund–Mackay score: 3 / 12",
        "Total Points",
    ]
    expected += [lv.value for lv in context.patient]
    expected += [lv.value for lv in context.study if lv.label != "Spacing"]
    expected += [c.label for c in context.clinical] + [c.value for c in context.clinical]
    expected += [f.message for f in context.findings]
    expected += [s.label for s in context.sinuses]
    missing = [e for e in expected if _flat(e) not in text]
    assert not missing, f"not in the PDF text: {missing}"


def test_every_page_has_the_header(pages) -> None:
    for i, (text, _, _) in enumerate(pages, start=1):
        flat = _flat(text)
        assert f"Page {i} of {len(pages)}" in flat
        assert "SinusApp 0.1.0" in flat and "sha256 3f5a9c0d1e2b" in flat
        assert "Analysed: 2026-11-27 09:30" in flat


def test_slice_images_are_not_blank_and_contours_are_red(pages) -> None:
    _, img, _ = pages[1]  # page 2: key slices
    # the key slices are greyscale with a red contour: find grey, non-white pixels
    r, g, b = (img[..., i].astype(int) for i in range(3))
    grey = (np.abs(r - g) < 8) & (np.abs(g - b) < 8) & (r < 240)
    assert grey.mean() > 0.05, "no image on the key-slice page"
    assert img[grey].std() > 20, "the key slices are a flat colour"
    red = (r > 180) & (g < 90) & (b < 90)
    assert red.sum() > 20, "no red model contour drawn"


@pytest.mark.parametrize(
    ("size", "expected_pt"), [("A4", (595.3, 841.9)), ("Letter", (612.0, 792.0))]
)
def test_page_sizes(result: AnalysisResult, size: str, expected_pt) -> None:
    ctx = ReportContext.from_result(result, page_size=size)
    pages = _pages(render_pdf_bytes(ctx))
    for _, _, (w, h) in pages:
        assert (w, h) == pytest.approx(expected_pt, abs=0.5)


def test_render_is_deterministic(context: ReportContext) -> None:
    assert render_pdf_bytes(context) == render_pdf_bytes(context)


def test_render_pdf_writes_atomically(context: ReportContext, tmp_path: Path) -> None:
    target = tmp_path / "report.pdf"
    assert render_pdf(context, target) == target
    assert target.read_bytes().startswith(b"%PDF-")
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_missing_folder_is_a_clear_error(context: ReportContext, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist") as err:
        render_pdf(context, tmp_path / "nowhere" / "report.pdf")
    assert "report.pdf" in str(err.value)
    with pytest.raises(OutputError, match="is a folder"):
        render_pdf(context, tmp_path)


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions and a non-root user"
)
def test_read_only_folder_keeps_the_old_file(context: ReportContext, tmp_path: Path) -> None:
    target = tmp_path / "report.pdf"
    target.write_bytes(b"old report")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="cannot save the report"):
            render_pdf(context, target)
    finally:
        tmp_path.chmod(0o755)
    assert target.read_bytes() == b"old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(
    context: ReportContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way (disk full) — simulated — leaves the old file intact."""
    target = tmp_path / "report.pdf"
    target.write_bytes(b"old report")
    real_fdopen = os.fdopen

    class _Full:
        def __init__(self, fh):
            self._fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()
            return False

        def write(self, data):
            self._fh.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: _Full(real_fdopen(fd, mode)))
    with pytest.raises(OutputError, match="No space left on device"):
        render_pdf(context, target)
    monkeypatch.undo()
    assert target.read_bytes() == b"old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_unwritable_folder_is_a_clear_error(
    context: ReportContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the user may not write to (simulated: CI runs as root) → OutputError."""
    import tempfile

    target = tmp_path / "report.pdf"
    target.write_bytes(b"old report")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="Permission denied") as err:
        render_pdf(context, target)
    assert "choose a folder you can write to" in str(err.value)
    assert target.read_bytes() == b"old report"


def test_series_opened_anyway_is_said_in_the_probability_box(result: AnalysisResult) -> None:
    """Issue 12: a series that is no sinus-capable CT, opened at the user's request, says
    so next to the probability (page 1), with the CI read as words ("59 % to >99 %")."""
    import dataclasses

    from sinusapp.case import unsuitable_series_finding

    finding = unsuitable_series_finding(
        description="SmartScore - Gated", reasons=("only 5 slices: cannot cover the sinuses",)
    )
    forced = dataclasses.replace(
        result,
        warnings=(*result.warnings, finding),
        probability=0.97,
        probability_ci95=(0.59, 0.9996),
    )
    ctx = ReportContext.from_result(forced)
    first = _flat(_pages(render_pdf_bytes(ctx))[0][0])
    assert "Probability of recurrence: 97 % (95 % CI 59 % to >99 %)" in first
    box = first.index("Probability of recurrence")
    said = first.index("'SmartScore - Gated' is not a sinus-capable CT")
    assert box < said < first.index("Patient and study")


def test_sinus_not_assessed_reads_so_in_the_table_and_no_sinus_graded_is_said(
    result: AnalysisResult,
) -> None:
    """A row with a volume only says "not assessed"; with no graded sinus at all the note
    still names them (no Lund–Mackay line is printed then)."""
    import dataclasses

    per_sinus = {k: dict(v) for k, v in result.per_sinus.items()}
    per_sinus["frontal"] = {"volume_ml": 4.7}
    text = _flat(
        " ".join(
            t
            for t, _, _ in _pages(
                render_pdf_bytes(
                    ReportContext.from_result(dataclasses.replace(result, per_sinus=per_sinus))
                )
            )
        )
    )
    assert re.search(r"Frontal 4\.7 — not assessed —", text), text[text.find("Frontal") :][:80]
    only_upper = {"frontal": {"volume_ml": 4.7}, "sphenoid": {"volume_ml": 3.7}}
    text = _flat(
        " ".join(
            t
            for t, _, _ in _pages(
                render_pdf_bytes(
                    ReportContext.from_result(dataclasses.replace(result, per_sinus=only_upper))
                )
            )
        )
    )
    assert "Lund–Mackay score" not in text
    assert "No sinus graded. Opacification not assessed" in text
    assert "so not graded: Frontal, Sphenoid." in text
