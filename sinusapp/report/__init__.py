"""The preoperative risk report: pure content (:class:`ReportContext`) and its PDF renderer.

::

    ctx = ReportContext.from_result(result, nomogram=nomogram, page_size="A4")
    render_pdf(ctx, "report.pdf")        # atomic write; OutputError on an unwritable path

Nothing here imports Qt; printing and the preview live in :mod:`sinusapp.ui.report_dialog`.
"""

from sinusapp.report.context import KeySlice, ReportContext
from sinusapp.report.render import render_pdf, render_pdf_bytes

__all__ = [
    "KeySlice",
    "ReportContext",
    "render_pdf",
    "render_pdf_bytes",
]
