"""Score many studies at once on a Dask cluster (for research; not the clinical app): INPUT is
a folder of studies (one sub-folder each, clinical factors in its clinical.csv) or a CSV
(path, optional case_id and series_uid, clinical factors). Each study is one task running the
same analysis as `sinusapp predict`; each worker loads the model once. Writes
OUT/<case_id>/result.json and OUT/summary.csv (one row per study; a failed study has its
error there and never stops the batch; feeds `sinusapp evaluate --scores`). Run it again to
finish an interrupted batch: studies already done are skipped.

By default a local cluster on this machine's cores listens on the loopback interface only
(127.0.0.1); --scheduler uses an existing Dask cluster. Needs `pip install 'sinusapp[cluster]'`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``batch`` options (Dask is imported only when the batch runs)."""
    parser.add_argument("input", type=Path, help="folder of studies, or CSV of studies")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"worker processes of the local cluster (default: the cores, {os.cpu_count()})",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing Dask cluster (e.g. tcp://head-node:8786) instead of a local "
        "one; its workers must see INPUT and --out",
    )
    parser.add_argument("--reports", action="store_true", help="also write report.pdf per study")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--bundle", metavar="DIR", help="model bundle (default: the bundled one)")
    parser.add_argument("--nomogram", metavar="FILE", help="nomogram JSON (default: bundled)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the batch; returns 0 (failed studies are listed on stderr and in summary.csv)."""
    from sinusapp.batch import ModelSpec, read_studies, run_batch
    from sinusapp.errors import InputError

    if args.workers is not None and args.workers < 1:
        raise InputError(
            f"--workers must be at least 1, got {args.workers}", hint="give --workers 1 or more"
        )
    if args.out.exists() and not args.out.is_dir():
        raise InputError(
            "--out is a file, not a folder", path=args.out, hint="choose a folder for the batch"
        )
    studies = read_studies(args.input)
    spec = ModelSpec(
        bundle_dir=None if args.bundle is None else str(Path(args.bundle).resolve()),
        nomogram_path=None if args.nomogram is None else str(Path(args.nomogram).resolve()),
        device=args.device,
    )
    summary = run_batch(
        studies,
        out_dir=args.out.resolve(),
        spec=spec,
        workers=args.workers,
        scheduler=args.scheduler,
        report=args.reports,
        progress=not args.no_progress,
    )
    print(
        f"{len(summary.rows)} studies: {summary.scored} scored, {summary.skipped} already done, "
        f"{summary.failed} failed, in {summary.seconds:.1f} s; summary: {summary.summary_path}"
    )
    for row in summary.rows:
        if row["status"] == "failed":
            print(f"  failed: {row['case_id']}: {row['error']}", file=sys.stderr)
    return 0
