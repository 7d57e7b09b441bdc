"""The "Report…" dialog: preview the PDF report, save it, print it, export it for the PACS.

The dialog is thin: the content comes from :class:`sinusapp.report.ReportContext`, the pages
from the one reportlab renderer (:func:`sinusapp.report.render_pdf_bytes`). The preview and
the printout are the rendered PDF pages themselves (rasterised with pypdfium2), so what is
previewed, printed and saved is the same document. Without pypdfium2 the preview falls back
to the report's text and printing is disabled (saving still works).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPageSize, QPainter, QPixmap
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sinusapp.atomic import write_bytes_atomic
from sinusapp.errors import SinusAppError
from sinusapp.report import ReportContext, render_pdf_bytes

__all__ = ["ReportDialog", "pdf_page_images"]

log = logging.getLogger(__name__)

PREVIEW_DPI = 90
MAX_PRINT_DPI = 300


def _pdfium() -> Any | None:
    try:
        import pypdfium2
    except ImportError:
        log.warning("pypdfium2 is not installed: report preview shows text, printing disabled")
        return None
    return pypdfium2


def pdf_page_images(pdf: bytes, *, dpi: float) -> list[QImage]:
    """Rasterise every page of ``pdf`` at ``dpi`` as RGB :class:`QImage` s (needs pypdfium2)."""
    pdfium = _pdfium()
    if pdfium is None:
        raise RuntimeError("pypdfium2 is needed to rasterise PDF pages")
    doc = pdfium.PdfDocument(pdf)
    images = []
    try:
        for i in range(len(doc)):
            page = doc[i]
            bitmap = page.render(scale=dpi / 72.0)
            pil = bitmap.to_pil().convert("RGB")
            data = pil.tobytes()
            img = QImage(data, pil.width, pil.height, 3 * pil.width, QImage.Format.Format_RGB888)
            images.append(img.copy())  # own the pixels before ``data`` goes away
            page.close()
    finally:
        doc.close()
    return images


class ReportDialog(QDialog):
    """Preview, save as PDF, print, and (optionally) export the report to DICOM files.

    Parameters
    ----------
    result:
        The :class:`~sinusapp.pipeline.AnalysisResult` to report.
    parent:
        Parent widget.
    nomogram:
        The nomogram (or the layout on screen) for the nomogram figure; see
        :meth:`ReportContext.from_result`.
    reference_mask:
        Optional reference segmentation on the CT grid (blue contour).
    page_size:
        Initial paper size, ``"A4"`` or ``"Letter"``.
    institution:
        Printed under the title.
    source_dir:
        Folder holding the analysed CT series; enables "Export for PACS…" (DICOM SEG +
        Encapsulated PDF).
    """

    def __init__(
        self,
        result: Any,
        parent: QWidget | None = None,
        *,
        nomogram: Any | None = None,
        reference_mask: Any | None = None,
        page_size: str = "A4",
        institution: str = "",
        source_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Report")
        self.resize(820, 900)
        self._result = result
        self._nomogram = nomogram
        self._reference_mask = reference_mask
        self._institution = institution
        self._source_dir = None if source_dir is None else Path(source_dir)
        self._pdfium_available = _pdfium() is not None
        self.context: ReportContext
        self.pdf: bytes = b""

        self._page_size = QComboBox()
        self._page_size.addItems(["A4", "Letter"])
        self._page_size.setCurrentText(page_size)
        self._page_size.setToolTip("Paper size of the report")
        self._save_button = QPushButton("Save as PDF…")
        self._print_button = QPushButton("Print…")
        self._export_button = QPushButton("Export for PACS…")
        self._close_button = QPushButton("Close")
        if not self._pdfium_available:
            self._print_button.setEnabled(False)
            self._print_button.setToolTip("Printing needs the pypdfium2 package")
        self._export_button.setVisible(self._source_dir is not None)

        self._pages = QWidget()
        self._pages_layout = QVBoxLayout(self._pages)
        self._pages_layout.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self._scroll = QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setWidget(self._pages)
        self._scroll.setStyleSheet("QScrollArea { background: #6b6b70; }")

        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Paper:"))
        buttons.addWidget(self._page_size)
        buttons.addStretch(1)
        for b in (self._export_button, self._save_button, self._print_button, self._close_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self._scroll, 1)
        layout.addLayout(buttons)

        self._page_size.currentTextChanged.connect(self._on_page_size_changed)
        self._save_button.clicked.connect(self._on_save_clicked)
        self._print_button.clicked.connect(self._on_print_clicked)
        self._export_button.clicked.connect(self._on_export_clicked)
        self._close_button.clicked.connect(self.accept)
        self._rebuild()

    # ------------------------------------------------------------------ model
    def _rebuild(self) -> None:
        """Rebuild the context and the PDF, then the preview."""
        self.context = ReportContext.from_result(
            self._result,
            nomogram=self._nomogram,
            reference_mask=self._reference_mask,
            page_size=self._page_size.currentText(),  # type: ignore[arg-type]
            institution=self._institution,
        )
        self.pdf = render_pdf_bytes(self.context)
        self._show_preview()

    def _show_preview(self) -> None:
        while self._pages_layout.count():
            item = self._pages_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        if self._pdfium_available:
            for i, img in enumerate(pdf_page_images(self.pdf, dpi=PREVIEW_DPI)):
                label = QLabel()
                label.setPixmap(QPixmap.fromImage(img))
                label.setObjectName(f"reportPage{i + 1}")
                label.setStyleSheet("background: white; margin: 6px;")
                self._pages_layout.addWidget(label)
        else:
            text = QTextBrowser()
            text.setPlainText("\n\n".join(self.context.text_items()))
            self._pages_layout.addWidget(text)

    @property
    def page_count(self) -> int:
        """Number of pages of the current PDF."""
        return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", self.pdf))

    # ------------------------------------------------------------------ actions (testable)
    def save_pdf(self, path: str | os.PathLike[str]) -> Path:
        """Write the previewed PDF to ``path`` atomically (raises ``OutputError``)."""
        return write_bytes_atomic(self.pdf, Path(path), what="the report")

    def print_to(self, printer: QPrinter) -> None:
        """Print the PDF's pages on ``printer`` (each page fitted to the paper, aspect kept).

        Raises
        ------
        RuntimeError
            pypdfium2 is not installed, or the printer cannot be opened.
        """
        dpi = min(float(printer.resolution()), MAX_PRINT_DPI)
        images = pdf_page_images(self.pdf, dpi=dpi)
        printer.setFullPage(True)
        painter = QPainter()
        if not painter.begin(printer):
            raise RuntimeError("the printer could not be opened")
        try:
            for i, img in enumerate(images):
                if i > 0:
                    printer.newPage()
                target = QRectF(painter.viewport())
                scale = min(target.width() / img.width(), target.height() / img.height())
                w, h = img.width() * scale, img.height() * scale
                painter.drawImage(
                    QRectF(
                        target.x() + (target.width() - w) / 2,
                        target.y() + (target.height() - h) / 2,
                        w,
                        h,
                    ),
                    img,
                )
        finally:
            painter.end()

    def export_dicom(self, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write the report PDF, the Encapsulated PDF and the lesion SEG into ``folder``;
        needs ``source_dir``. The names carry patient, series and time
        (:func:`sinusapp.case.export_paths`), so nothing in the folder (another patient's
        export) is ever replaced."""
        from sinusapp.case import export_paths
        from sinusapp.dicom.export import (
            export_encapsulated_pdf,
            export_seg,
            read_source_datasets,
        )

        if self._source_dir is None:
            raise RuntimeError("no source_dir was given to the report dialog")
        info = self._result.volume.info
        paths = export_paths(
            folder,
            patient_id=info.patient_id or info.patient_name or "",
            series_number=info.series_number,
            series_uid=info.series_uid,
        )
        sources = read_source_datasets(self._source_dir, series_uid=info.series_uid)
        pdf_path = paths["report.pdf"]
        self.save_pdf(pdf_path)
        doc = export_encapsulated_pdf(
            pdf_path, result=self._result, out_path=paths["report.dcm"], source_datasets=sources
        )
        seg = export_seg(self._result, source_datasets=sources, out_path=paths["lesion_seg.dcm"])
        return doc, seg

    # ------------------------------------------------------------------ handlers
    def _on_page_size_changed(self, _text: str) -> None:
        self._rebuild()

    def _default_name(self) -> str:
        pid = "".join(ch for ch in self.context.patient_id if ch.isalnum() or ch in "-_")
        day = self.context.analysed_at[:10]
        return f"sinusapp_report_{pid or 'patient'}_{day}.pdf"

    def _on_save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save report as PDF", self._default_name(), "PDF (*.pdf)"
        )
        if not path:
            return
        if not path.lower().endswith(".pdf"):
            path += ".pdf"
        try:
            self.save_pdf(path)
        except SinusAppError as exc:
            QMessageBox.critical(self, "Report not saved", str(exc))

    def _on_print_clicked(self) -> None:
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setPageSize(
            QPageSize(
                QPageSize.PageSizeId.A4
                if self.context.page_size == "A4"
                else QPageSize.PageSizeId.Letter
            )
        )
        dialog = QPrintDialog(printer, self)
        dialog.setWindowTitle("Print report")
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            self.print_to(printer)
        except RuntimeError as exc:
            QMessageBox.critical(self, "Report not printed", str(exc))

    def _on_export_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export report and segmentation as DICOM")
        if not folder:
            return
        try:
            doc, seg = self.export_dicom(folder)
        except SinusAppError as exc:
            QMessageBox.critical(self, "Export failed", str(exc))
            return
        QMessageBox.information(
            self, "Exported", f"Written for the PACS into {doc.parent}:\n{doc.name}\n{seg.name}"
        )
