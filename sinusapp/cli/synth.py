"""Write a synthetic sinus CT cohort in the training-dataset format (DESIGN §3).

Each case is a procedural head CT with paranasal-sinus disease, written as a CT DICOM series,
a DICOM SEG lesion mask and a NIfTI sinus label map; clinical.csv follows Table 1 of
He et al. 2023 and records each case's true recurrence probability. The oracle AUC (the best
any model can reach on this cohort) is printed with the imaging-only and clinical-only ones.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sinusapp.errors import OutputError

if TYPE_CHECKING:
    from sinusapp.synth.cohort import CaseSpec

__all__ = ["CENTER_NAMES", "COMPRESSION_NAMES", "add_arguments", "run"]

#: ``--center`` / ``--compress`` choices, spelled here so that building the parser (every
#: ``sinusapp`` call) imports no numpy / scipy / pydicom; a test checks them against
#: :data:`sinusapp.synth.cohort.CENTERS` and :data:`sinusapp.synth.dicomio.COMPRESSIONS`.
CENTER_NAMES: tuple[str, ...] = ("A", "B")
COMPRESSION_NAMES: tuple[str, ...] = ("j2k", "jpegls", "none", "rle")

log = logging.getLogger(__name__)


#: Gantry tilts beyond this are not a head CT any scanner makes (and 90° is degenerate).
MAX_TILT_DEG = 30.0


def _tilt_deg(text: str) -> float:
    """``--tilt``: a finite angle within ±``MAX_TILT_DEG`` degrees."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of degrees") from None
    if not math.isfinite(value) or abs(value) > MAX_TILT_DEG:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a gantry tilt between -{MAX_TILT_DEG:g} and {MAX_TILT_DEG:g} degrees"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``synth`` options to ``parser``."""
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument(
        "--cases",
        type=int,
        default=None,
        help="number of cases (default: the paper's size of the centre)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (same seed → identical files)"
    )
    parser.add_argument(
        "--center",
        choices=CENTER_NAMES,
        default="A",
        help="A: training centre (default), B: test centre",
    )
    parser.add_argument(
        "--preset",
        choices=["paper"],
        default=None,
        help="paper: centre A 200 cases (train) + centre B 65 cases (test)",
    )
    parser.add_argument(
        "--low-res",
        action="store_true",
        help="1 mm (A) / 1.2 mm (B) sinus-region grid instead of 512² diagnostic slices",
    )
    parser.add_argument(
        "--tilt",
        type=_tilt_deg,
        default=0.0,
        metavar="DEG",
        help=f"gantry tilt in degrees (within ±{MAX_TILT_DEG:g})",
    )
    parser.add_argument(
        "--missing-slice", action="store_true", help="drop one slice from the middle of each series"
    )
    parser.add_argument(
        "--shuffle-names",
        action="store_true",
        help="random file names (order only from the headers)",
    )
    parser.add_argument(
        "--extra-series",
        action="store_true",
        help="add a lateral localizer and a soft-kernel series",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes rendering cases in parallel (same files as a serial run)",
    )
    parser.add_argument(
        "--real-anatomy",
        type=Path,
        default=None,
        metavar="NASALSEG_DIR",
        help="real NasalSeg CT crops as backgrounds with placed disease (docs/dataset_format.md)",
    )
    parser.add_argument(
        "--compress",
        choices=COMPRESSION_NAMES,
        default="none",
        help="transfer syntax (lossless)",
    )


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(
            "the output path exists and is not a folder", path=out, hint="choose a folder"
        )
    if out.is_dir() and (out / "clinical.csv").exists():
        raise OutputError(
            "the output folder already holds a dataset (clinical.csv)",
            path=out,
            hint="choose an empty or new folder",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".sinusapp_write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(
            f"cannot write to the output folder ({exc.strerror})",
            path=out,
            hint="choose a writable folder",
        ) from exc


def _run_real(args: argparse.Namespace, out: Path) -> int:
    """The real-anatomy cohort (NasalSeg backgrounds, :mod:`sinusapp.synth.realanat`)."""
    from tqdm import tqdm

    from sinusapp.synth.realanat import background_patients
    from sinusapp.synth.realanat_write import write_real_cohort

    root: Path = args.real_anatomy
    if not background_patients(root):
        raise OutputError(
            "--real-anatomy: no NasalSeg cases (Pxxx/ct, Pxxx/labels.nrrd) or pack entries "
            "(Pxxx.npz.xz, benchmarks/pack_nasalseg.py) in the folder",
            path=root,
            hint="give the nasalseg folder, e.g. ../shared/data/nasalseg, or a pack of it",
        )
    n = 300 if args.cases is None else args.cases
    bar = tqdm(total=n, desc="synth real", unit="case", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        summary = write_real_cohort(
            root=root,
            out_dir=out,
            n_cases=n,
            seed=args.seed,
            workers=max(1, args.workers),
            compress=args.compress,
            progress=progress,
        )
    finally:
        bar.close()
    for key in ("cohort_train", "cohort_test"):
        if key in summary:
            s = summary[key]
            print(
                f"{key[7:]}: {s['n_cases']} cases, {s['n_recurrence']} recurrences; "
                f"oracle AUC {s['oracle_auc']:.3f} (imaging only {s['imaging_only_auc']:.3f}, "
                f"clinical only {s['clinical_only_auc']:.3f})"
            )
    print(
        f"wrote {n} real-anatomy cases to {out} (backgrounds {summary['background_split_counts']})"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Generate the cohort(s), write them, print the oracle AUCs."""
    from tqdm import tqdm

    from sinusapp.synth.cohort import CENTERS, sample_cohort
    from sinusapp.synth.write import WriteOptions, write_cohort

    out: Path = args.out
    _check_out(out)
    if args.cases is not None and args.cases < 1:
        raise OutputError(f"--cases must be at least 1, got {args.cases}")
    if getattr(args, "real_anatomy", None) is not None:
        return _run_real(args, out)
    cases: list[CaseSpec] = []
    if args.preset == "paper":
        for name, spec in CENTERS.items():
            n = spec.n_cases if args.cases is None else args.cases
            cases += sample_cohort(
                n_cases=n,
                seed=args.seed,
                center=name,
                n_recurrence=spec.n_recurrence if args.cases is None else None,
            )
    else:
        spec = CENTERS[args.center]
        n = spec.n_cases if args.cases is None else args.cases
        cases = sample_cohort(n_cases=n, seed=args.seed, center=args.center)
    options = WriteOptions(
        low_res=args.low_res,
        tilt_deg=args.tilt,
        missing_slice=args.missing_slice,
        shuffle_names=args.shuffle_names,
        extra_series=args.extra_series,
        compress=args.compress,
    )
    bar = tqdm(total=len(cases), desc="synth", unit="case", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        summary = write_cohort(
            cases,
            out_dir=out,
            options=options,
            seed=args.seed,
            progress=progress,
            workers=max(1, args.workers),
        )
    finally:
        bar.close()
    for key in sorted(k for k in summary if k.startswith("center_")):
        s = summary[key]
        print(
            f"centre {key[-1]}: {s['n_cases']} cases, {s['n_recurrence']} recurrences; "
            f"oracle AUC {s['oracle_auc']:.3f} (imaging only {s['imaging_only_auc']:.3f}, "
            f"clinical only {s['clinical_only_auc']:.3f})"
        )
    print(f"wrote {len(cases)} cases to {out}")
    return 0
