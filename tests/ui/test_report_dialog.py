"""The report dialog: preview, save as PDF, print to a PDF file through Qt (offscreen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtPrintSupport import QPrinter
from PySide6.QtWidgets import QLabel

from sinusapp.errors import OutputError
from sinusapp.report._sample import sample_nomogram, sample_result
from sinusapp.ui.report_dialog import ReportDialog

pdfium = pytest.importorskip("pypdfium2", reason="the report preview and printing use pypdfium2")


@pytest.fixture(scope="module")
def analysis():
    nomo = sample_nomogram()
    return sample_result((20, 80, 80), nomogram=nomo), nomo


@pytest.fixture
def dialog(qtbot, analysis):
    result, nomo = analysis
    dlg = ReportDialog(result, nomogram=nomo)
    qtbot.addWidget(dlg)
    return dlg


def test_preview_shows_every_page(dialog: ReportDialog) -> None:
    pages = [w for w in dialog.findChildren(QLabel) if w.objectName().startswith("reportPage")]
    assert len(pages) == dialog.page_count == 3
    assert all(not p.pixmap().isNull() and p.pixmap().width() > 500 for p in pages)


def test_save_as_pdf(dialog: ReportDialog, tmp_path: Path) -> None:
    target = dialog.save_pdf(tmp_path / "r.pdf")
    assert target.read_bytes() == dialog.pdf
    with pytest.raises(OutputError):
        dialog.save_pdf(tmp_path / "missing" / "r.pdf")


def test_paper_size_switch_rerenders(dialog: ReportDialog) -> None:
    dialog._page_size.setCurrentText("Letter")
    assert dialog.context.page_size == "Letter"
    doc = pdfium.PdfDocument(dialog.pdf)
    assert (doc[0].get_width(), doc[0].get_height()) == pytest.approx((612, 792), abs=0.5)


def test_print_to_pdf_file(dialog: ReportDialog, tmp_path: Path) -> None:
    out = tmp_path / "printed.pdf"
    printer = QPrinter(QPrinter.PrinterMode.ScreenResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(out))
    printer.setResolution(100)
    dialog.print_to(printer)
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    doc = pdfium.PdfDocument(data)
    assert len(doc) == dialog.page_count
    # the printed page carries the report (rasterised), not a blank sheet
    img = doc[0].render(scale=30 / 72).to_pil().convert("L")
    assert img.getextrema()[0] < 100
