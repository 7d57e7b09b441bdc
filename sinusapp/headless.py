"""The main job without a screen: CT folder + clinical values → result.json, report.pdf, SEG.

Used by ``sinusapp predict`` and ``sinusapp demo --headless`` (and by IT smoke tests and
research batches). Each output is written atomically; inputs are validated before the CT is
read, so a typo in a clinical value costs no time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sinusapp.errors import OutputError
from sinusapp.pipeline import AnalysisResult, analyse, write_json_atomic

log = logging.getLogger(__name__)

__all__ = ["HeadlessOutputs", "run_headless"]

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True, slots=True)
class HeadlessOutputs:
    """The result and the files that were written."""

    result: AnalysisResult
    json_path: Path | None
    report_path: Path | None
    seg_path: Path | None


def _check_writable(path: Path | None, what: str) -> None:
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the folder for the {what}: {exc.strerror}",
            path=parent,
            hint="choose a folder you can write to",
        ) from exc
    if not os.access(parent, os.W_OK):
        raise OutputError(
            f"the folder for the {what} is not writable",
            path=parent,
            hint="choose a folder you can write to",
        )


def run_headless(
    ct_path: str | os.PathLike[str],
    clinical: Mapping[str, Any],
    *,
    series_uid: str | None = None,
    json_path: str | os.PathLike[str] | None = None,
    report_path: str | os.PathLike[str] | None = None,
    seg_path: str | os.PathLike[str] | None = None,
    device: str = "auto",
    bundle_dir: str | os.PathLike[str] | None = None,
    nomogram_path: str | os.PathLike[str] | None = None,
    predictor: Any | None = None,
    progress: ProgressFn | None = None,
    sinus_labels_path: str | os.PathLike[str] | None = None,
) -> HeadlessOutputs:
    """Run the whole analysis on the CT under ``ct_path`` and write the requested outputs.

    Parameters
    ----------
    ct_path:
        Folder, DICOMDIR or file holding the CT.
    clinical:
        Raw clinical values (see :meth:`sinusapp.clinical.ClinicalInputs.from_dict`).
    series_uid:
        Series to analyse; default the proposed one.
    json_path, report_path, seg_path:
        Where to write ``result.json``, the PDF report and the DICOM SEG (each optional).
    device:
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    bundle_dir, nomogram_path:
        A hospital's own model bundle / nomogram JSON; default the bundled ones.
    predictor:
        Inject a predictor (tests); default :class:`sinusapp.model.Predictor`.
    sinus_labels_path:
        A sinus label map (DICOM SEG, NRRD or NIfTI with
        :data:`sinusapp.imaging.quantify.SINUS_LABELS` values) made on this CT, for the
        per-sinus quantification; default: the automatic labelling.
    """
    from sinusapp.clinical import ClinicalInputs
    from sinusapp.dicom import load_volume, scan
    from sinusapp.nomogram import Nomogram

    inputs = ClinicalInputs.from_dict(clinical)
    out_json = Path(json_path) if json_path else None
    out_pdf = Path(report_path) if report_path else None
    out_seg = Path(seg_path) if seg_path else None
    for p, what in ((out_json, "result JSON"), (out_pdf, "report"), (out_seg, "DICOM SEG")):
        _check_writable(p, what)
    nomogram = Nomogram.load(nomogram_path)
    if predictor is None:
        from sinusapp.model import Predictor

        predictor = Predictor(Path(bundle_dir) if bundle_dir else None, device=device)

    def report(f: float, stage: str) -> None:
        if progress is not None:
            progress(f, stage)

    report(0.0, "reading the CT")
    examined = scan(ct_path)
    volume = load_volume(
        ct_path,
        series_uid=series_uid,
        scan_result=examined,
        progress=lambda f, s: report(0.15 * f, s),
    )
    sinus_labels = None
    if sinus_labels_path is not None:
        from sinusapp.imaging.masks import load_reference_mask

        sinus_labels = load_reference_mask(sinus_labels_path, volume=volume)
        log.info("sinus labels from %s", sinus_labels_path)
    result = analyse(
        volume,
        inputs.to_dict() | inputs.nomogram_factors(),
        predictor=predictor,
        nomogram=nomogram,
        progress=lambda f, s: report(0.15 + 0.75 * f, s),
        sinus_labels=sinus_labels,
    )
    if out_json is not None:
        write_json_atomic(result.to_json_dict(), out_json)
        log.info("wrote %s", out_json)
    if out_pdf is not None:
        report(0.92, "writing the report")
        from sinusapp.report import ReportContext, render_pdf

        ctx = ReportContext.from_result(result, nomogram=nomogram)
        render_pdf(ctx, out_pdf)
        log.info("wrote %s", out_pdf)
    if out_seg is not None:
        report(0.97, "writing the DICOM SEG")
        import pydicom

        from sinusapp.dicom.export import export_seg

        # the headers of exactly the analysed instances, from the scan already made (a
        # DICOMDIR or a CD with many series needs no second walk over every file)
        used = set(volume.info.sop_instance_uids)
        sources = [
            pydicom.dcmread(h.path, stop_before_pixels=True)
            for h in examined.headers_of(volume.info.series_uid)
            if h.sop_instance_uid in used
        ]
        export_seg(result, out_path=out_seg, source_datasets=sources)
        log.info("wrote %s", out_seg)
    report(1.0, "done")
    return HeadlessOutputs(result, out_json, out_pdf, out_seg)
