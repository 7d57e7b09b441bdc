"""Run the whole analysis on a CT, headless: the model's lesion mask and DLR-score, the
nomogram's probability of recurrence with its 95 % CI and risk group; writes result.json, the
PDF report and the DICOM SEG on request. Exit status 0 ok, 2 bad input, 1 internal error.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sinusapp.headless import HeadlessOutputs

__all__ = ["add_arguments", "check_clinical_options", "print_summary", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="folder, DICOMDIR or file holding the sinus CT")
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID (default: proposed)")
    parser.add_argument("--asthma", required=True, choices=["yes", "no"])
    parser.add_argument("--allergic-rhinitis", required=True, choices=["yes", "no"])
    parser.add_argument(
        "--eosinophils",
        required=True,
        metavar="VALUE",
        help="blood eosinophil count, in --eosinophil-unit",
    )
    parser.add_argument(
        "--eosinophil-unit",
        default="per_ul",
        choices=["per_ul", "1e9_per_l"],
        help="cells/µL (per_ul, default) or ×10⁹/L (1e9_per_l)",
    )
    parser.add_argument("--age", metavar="YEARS", help="age in years (recorded only)")
    parser.add_argument("--sex", choices=["female", "male"], help="recorded only")
    parser.add_argument("--report", metavar="FILE.pdf", help="write the PDF report")
    parser.add_argument("--json", metavar="FILE", help="write result.json")
    parser.add_argument("--seg", metavar="FILE.dcm", help="write the lesion mask as DICOM SEG")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (never an input); default: refuse them",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--bundle", metavar="DIR", help="model bundle (default: the bundled one)")
    parser.add_argument("--nomogram", metavar="FILE", help="nomogram JSON (default: bundled)")
    parser.add_argument(
        "--sinus-labels",
        metavar="FILE",
        help="sinus label map on this CT (DICOM SEG, NRRD or NIfTI; 1 maxillary L, 2 maxillary "
        "R, 3/4 anterior ethmoid L/R, 5/6 posterior ethmoid L/R, 7 frontal, 8 sphenoid, "
        "9 nasal cavity) for per-sinus opacification; default: automatic labelling",
    )


def print_summary(out: HeadlessOutputs) -> None:
    r = out.result
    lo, hi = r.probability_ci95
    print(
        f"Series: {r.volume.info.series_description or r.volume.info.series_uid} "
        f"({r.volume.shape[0]} slices)"
    )
    print(f"DLR-score: {r.dlr_score:.3f}   lesion volume: {r.lesion_volume_ml:.1f} mL")
    if r.per_sinus:
        from sinusapp.imaging.quantify import (
            lund_mackay_score,
            opacification_assessed,
            sinuses_found,
        )

        found, missing = sinuses_found(r.per_sinus)
        parts = ", ".join(
            f"{k} {float(v['opacification_pct']):.0f} %"
            if opacification_assessed(v)
            else f"{k} not assessed"
            for k, v in found.items()
        )
        lm, lm_max = lund_mackay_score(r.per_sinus)
        print(
            f"Opacification ({r.sinus_labels_source or 'unknown'} sinus labels): {parts or '-'}"
            + ("" if lm is None else f"; Lund–Mackay {lm} / {lm_max}")
            + (f"; not found: {', '.join(missing)}" if missing else "")
        )
    from sinusapp.case import format_ci95, format_probability, format_risk_group

    # the GUI's and the report's formatters: never "100.0%", never "59.0%–100.0%", and the
    # badge's words for the group ("High risk: at or above the 39 % cutoff")
    print(
        f"Probability of recurrence: {format_probability(r.probability)} "
        f"(95 % CI {format_ci95(lo, hi)}); "
        f"{format_risk_group(risk_group=r.risk_group, cutoff=r.cutoff)}"
    )
    for f in r.warnings:
        print(f"  [{f.severity}] {f.message}")
    for f in r.quality:  # the input plausibility gate (info lines are in result.json)
        if f.severity != "info" and f not in r.warnings:
            print(f"  [{f.severity}] input quality: {f.message}")
    if r.model is not None and r.model.trained_on_synthetic:
        print(
            "Note: the model was trained on synthetic disease (placed on real CT anatomy); "
            "not for clinical use."
        )
    for label, p in (("result", out.json_path), ("report", out.report_path), ("SEG", out.seg_path)):
        if p is not None:
            print(f"Wrote {label}: {p}")


#: clinical field → the option that gives it (errors name the option the user typed)
_FLAGS = {
    "asthma": "--asthma",
    "allergic_rhinitis": "--allergic-rhinitis",
    "eosinophils": "--eosinophils",
    "eosinophil_unit": "--eosinophil-unit",
    "age_years": "--age",
    "sex": "--sex",
}


def check_clinical_options(clinical: dict[str, object]) -> None:
    """Validate the clinical options before anything is read; errors name the option."""
    from sinusapp.clinical import normalise_raw, validate_clinical
    from sinusapp.errors import ClinicalInputError

    errors = [m for m in validate_clinical(normalise_raw(clinical)) if m.severity == "error"]
    if errors:
        raise ClinicalInputError(
            "; ".join(f"{_FLAGS.get(m.field, m.field)}: {m.message}" for m in errors),
            hint="correct the option(s) and run again",
        )


def run(args: argparse.Namespace) -> int:
    from sinusapp.headless import run_headless

    clinical = {
        "asthma": args.asthma,
        "allergic_rhinitis": args.allergic_rhinitis,
        "eosinophils": args.eosinophils,
        "eosinophil_unit": args.eosinophil_unit,
        "age_years": args.age,
        "sex": args.sex,
    }
    check_clinical_options(clinical)

    last: list[object] = [None]
    interactive = sys.stderr.isatty()

    def progress(f: float, stage: str) -> None:
        # A live line on a terminal; in logs and pipes one line per stage, not per slice.
        key = (round(100 * f), stage) if interactive else stage
        if key == last[0]:
            return
        last[0] = key
        if interactive:
            print(f"\r{f:4.0%} {stage:<40}", end="", file=sys.stderr, flush=True)
        else:
            print(f"{f:4.0%} {stage}", file=sys.stderr, flush=True)

    out = run_headless(
        args.path,
        clinical,
        series_uid=args.series,
        json_path=args.json,
        report_path=args.report,
        seg_path=args.seg,
        device=args.device,
        bundle_dir=args.bundle,
        nomogram_path=args.nomogram,
        progress=progress,
        sinus_labels_path=args.sinus_labels,
        overwrite=args.overwrite,
    )
    if interactive:
        print(file=sys.stderr)
    print_summary(out)
    return 0
