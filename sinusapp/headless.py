"""The main job without a screen: CT folder + clinical values → result.json, report.pdf, SEG.

Used by ``sinusapp predict`` and ``sinusapp demo --headless`` (and by IT smoke tests and
research batches). Each output is written atomically; inputs are validated before the CT is
read, so a typo in a clinical value costs no time.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sinusapp.atomic import check_output_paths
from sinusapp.errors import InputError, SeriesSelectionError
from sinusapp.findings import Finding, Severity
from sinusapp.pipeline import AnalysisResult, analyse, write_json_atomic

log = logging.getLogger(__name__)

__all__ = [
    "HeadlessOutputs",
    "borderline_finding",
    "clinical_finding",
    "run_headless",
    "with_input_findings",
]

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True, slots=True)
class HeadlessOutputs:
    """The result and the files that were written.

    ``case`` is the :class:`sinusapp.case.CaseModel` the run went through (the GUI's
    Qt-free case model): its ``clinical_raw`` holds the inputs as entered on the command
    line, its ``result`` is ``result`` (the analysed result of those inputs).
    """

    result: AnalysisResult
    json_path: Path | None
    report_path: Path | None
    seg_path: Path | None
    case: Any = None


#: Two proposed candidates closer than this in score are a tie (see ``scan``'s ranking).
TIE_SCORE = 0.5


def clinical_finding(message: Any) -> Finding:
    """A clinical validator :class:`~sinusapp.clinical.FieldMessage` as a :class:`Finding`.

    The code is ``clinical_<field>_<code>`` (e.g. ``clinical_eosinophils_unit_mixup``), so
    the report, result.json and stdout carry every warning the validator raised.
    """
    return Finding(
        code=f"clinical_{message.field}_{message.code}",
        severity=Severity(str(message.severity)),
        message=message.message,
    )


#: A probability closer than this to the cutoff makes the risk group borderline.
BORDERLINE_MARGIN = 0.03


def borderline_finding(probability: float, cutoff: float, risk_group: str) -> Finding | None:
    """A warning when the probability lies within :data:`BORDERLINE_MARGIN` of the cutoff."""
    if not (math.isfinite(probability) and math.isfinite(cutoff)):
        return None
    gap = probability - cutoff
    if abs(gap) >= BORDERLINE_MARGIN:
        return None
    return Finding(
        code="borderline_risk",
        severity=Severity.WARNING,
        message=(
            f"Borderline: the probability of recurrence {probability:.1%} is within "
            f"{BORDERLINE_MARGIN * 100:.0f} percentage points of the cutoff {cutoff:.1%}, so the "
            f"risk group ({risk_group}) could change with a small difference in the inputs."
        ),
        value=float(gap),
        unit="",
    )


def _is_input_finding(finding: Finding) -> bool:
    return finding.code.startswith("clinical_") or finding.code == "borderline_risk"


def with_input_findings(
    result: AnalysisResult, *, inputs: Any, extra: tuple[Finding, ...] = ()
) -> AnalysisResult:
    """``result`` with the findings about its inputs in front of its warnings: every warning
    the clinical validator raised for ``inputs`` (a :class:`~sinusapp.clinical.ClinicalInputs`;
    unit mix-up, hypereosinophilia...), a borderline risk, and ``extra`` (e.g. the
    nomogram–model pairing). Earlier clinical and borderline findings are replaced, so the
    headless path and the GUI's case model (which re-applies it when the entries change)
    show the same warnings on screen, in result.json and in the report.
    """
    fresh = tuple(clinical_finding(m) for m in inputs.warnings) + tuple(extra)
    borderline = borderline_finding(result.probability, result.cutoff, result.risk_group)
    if borderline is not None:
        fresh += (borderline,)
    kept = tuple(w for w in result.warnings if not _is_input_finding(w) and w not in fresh)
    if not fresh and len(kept) == len(result.warnings):
        return result
    return dataclasses.replace(result, warnings=fresh + kept)


def _refuse_tie_across_patients(examined: Any, ct_path: str | os.PathLike[str]) -> None:
    """Refuse to pick a series silently when candidates of different patients tie."""
    owner: dict[str, tuple[str, str]] = {}
    for patient in examined.patients:
        for study in patient.studies:
            for s in study.series:
                owner[s.series_uid] = (patient.patient_id, patient.patient_name)
    best = examined.proposed
    if best is None:
        return
    ties = [
        s
        for s in examined.series
        if s.candidate.eligible
        and s.series_uid != best.series_uid
        and owner.get(s.series_uid) != owner.get(best.series_uid)
        and abs(s.candidate.score - best.candidate.score) < TIE_SCORE
    ]
    if not ties:
        return
    listed = "; ".join(
        f"{s.series_uid} (patient {owner[s.series_uid][1] or '?'} / ID "
        f"{owner[s.series_uid][0] or '?'}, '{s.description or s.modality}', "
        f"score {s.candidate.score:.1f})"
        for s in [best, *ties]
    )
    raise SeriesSelectionError(
        f"the folder holds equally suitable series of {len(ties) + 1} different patients: {listed}",
        path=ct_path,
        hint="pass --series UID to say which one to analyse",
    )


def _check_sinus_labels_source(path: Path, volume: Any) -> None:
    """A DICOM sinus label file must belong to the CT's patient (PatientID)."""
    if path.name.lower().endswith((".nii", ".nii.gz", ".nrrd", ".nhdr")) or not path.is_file():
        return
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError):
        return  # load_reference_mask reports an unreadable file
    pid = str(ds.get("PatientID", "")).strip()
    vol_pid = volume.info.patient_id
    if pid and vol_pid and pid != vol_pid:
        raise InputError(
            f"the sinus labels belong to another patient (PatientID {pid!r}, the CT's is "
            f"{vol_pid!r})",
            path=path,
            hint="give --sinus-labels the label map made on this CT",
        )
    if not str(ds.get("FrameOfReferenceUID", "")).strip():
        raise InputError(
            "the sinus label SEG has no FrameOfReferenceUID, so it cannot be tied to this CT",
            path=path,
            hint="give --sinus-labels the label map made on this CT",
        )


def _check_sinus_label_values(labels: Any, path: Path) -> None:
    """Sinus labels use :data:`~sinusapp.imaging.quantify.SINUS_LABELS` values (a lesion mask
    given by mistake holds only 0 / 1)."""
    import numpy as np

    from sinusapp.imaging.quantify import SINUS_LABELS

    values = {int(v) for v in np.unique(labels)} - {0}
    unknown = sorted(values - set(SINUS_LABELS))
    if unknown:
        raise InputError(
            f"the sinus label map holds label value(s) {unknown} that are not sinus labels "
            f"(expected {min(SINUS_LABELS)}–{max(SINUS_LABELS)})",
            path=path,
            hint="give --sinus-labels a sinus label map (see `sinusapp predict --help`)",
        )
    if values == {1}:
        raise InputError(
            "the sinus label map holds label 1 only: it looks like a lesion mask, not a sinus "
            "label map (1 would mean the left maxillary sinus alone)",
            path=path,
            hint="give --sinus-labels the sinus label map, not the lesion segmentation",
        )
    if not values:
        raise InputError(
            "the sinus label map is empty (no labelled voxel on this CT)",
            path=path,
            hint="give --sinus-labels the label map made on this CT",
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
    overwrite: bool = False,
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
    overwrite:
        Replace existing output files (never an input). Without it an existing output file is
        refused before anything is read.

    Every output path is checked before the CT is read (see
    :func:`sinusapp.atomic.check_output_paths`): an empty name, two outputs on one path, an
    output on an input, an existing file without ``overwrite``, a device or a folder, an
    unwritable folder are all refused with an :class:`~sinusapp.errors.OutputError`.
    """
    from sinusapp.clinical import ClinicalInputs
    from sinusapp.dicom import load_volume, scan
    from sinusapp.nomogram import Nomogram
    from sinusapp.nomogram.factors import check_app_factors

    inputs = ClinicalInputs.from_dict(clinical)
    outs = check_output_paths(
        {"--json": json_path, "--report": report_path, "--seg": seg_path},
        inputs=(ct_path, nomogram_path, sinus_labels_path, bundle_dir),
        overwrite=overwrite,
    )
    out_json, out_pdf, out_seg = (outs.get(k) for k in ("--json", "--report", "--seg"))
    nomogram = Nomogram.load(nomogram_path)
    check_app_factors(nomogram, source=nomogram_path)
    if predictor is None:
        from sinusapp.model import Predictor

        predictor = Predictor(Path(bundle_dir) if bundle_dir else None, device=device)
        _check_nomogram_pairing(nomogram, predictor.model_info, nomogram_path=nomogram_path)

    def report(f: float, stage: str) -> None:
        if progress is not None:
            progress(f, stage)

    report(0.0, "reading the CT")
    from sinusapp.dicom.catalogue import open_header_cache

    # unchanged files' headers come from the catalogue (a second run on the same disc)
    examined = scan(ct_path, cache=open_header_cache())
    if series_uid is None:
        _refuse_tie_across_patients(examined, ct_path)
    volume = load_volume(
        ct_path,
        series_uid=series_uid,
        scan_result=examined,
        progress=lambda f, s: report(0.15 * f, s),
    )
    sinus_labels = None
    if sinus_labels_path is not None:
        from sinusapp.imaging.masks import load_reference_mask

        _check_sinus_labels_source(Path(sinus_labels_path), volume)
        sinus_labels = load_reference_mask(sinus_labels_path, volume=volume)
        _check_sinus_label_values(sinus_labels, Path(sinus_labels_path))
        log.info("sinus labels from %s", sinus_labels_path)
    from sinusapp.case import CaseModel

    # the GUI's case model, without a screen or records: the inputs as entered, and the
    # analysed result is the nomogram of exactly those inputs (the model's rule)
    case = CaseModel(nomogram=nomogram)
    case.open_case(volume=volume, series_uid=volume.info.series_uid)
    case.set_clinical(dict(clinical))
    result = analyse(
        volume,
        inputs.to_dict() | inputs.nomogram_factors(),
        predictor=predictor,
        nomogram=nomogram,
        progress=lambda f, s: report(0.15 + 0.75 * f, s),
        sinus_labels=sinus_labels,
    )
    # the validator's warnings (unit mix-up, hypereosinophilia...) and a borderline risk
    # reach stdout, result.json and the report
    result = case.accept_result(with_input_findings(result, inputs=inputs))
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
    return HeadlessOutputs(result, out_json, out_pdf, out_seg, case=case)


def _check_nomogram_pairing(
    nomogram: Any, model_info: Mapping[str, Any], *, nomogram_path: str | os.PathLike[str] | None
) -> None:
    """Refuse a nomogram fitted on another model's DLR-scores; warn when it records none.

    (``predict --bundle NEW`` without ``--nomogram`` would otherwise use the shipped nomogram
    on the new model's scores.)
    """
    from sinusapp.errors import NomogramFileError
    from sinusapp.findings import Severity

    finding = nomogram.model_pairing(model_info)
    if finding is None:
        return
    if finding.severity is Severity.ERROR:
        raise NomogramFileError(
            finding.message,
            path=nomogram_path,
            hint="pass the nomogram fitted for this bundle with --nomogram (`sinusapp evaluate "
            "--bundle` writes one), or keep bundle and nomogram.json together in one "
            "SINUSAPP_MODELS folder",
        )
    log.warning("%s", finding.message)
