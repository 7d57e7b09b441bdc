"""Paper-style evaluation of a model bundle on a dataset (DESIGN §3 format): runs the model on
every case (DLR-score, DSC against the reference mask), fits the clinical model and the
nomogram on the training cohort, and writes Table-1 / Table-2 style tables, DeLong tests, the
DSC summary and the figures (ROC, calibration, decision curves, nomogram) as Markdown, CSV,
PNG and PDF. The fitted nomogram.json can be shipped next to the bundle.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run", "score_dataset"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset folder (clinical.csv + one folder per case)")
    parser.add_argument("--bundle", metavar="DIR", help="model bundle (default: the bundled one)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--scores",
        metavar="CSV",
        help="reuse per-case scores written by an earlier run (case_id, dlr_score, dsc)",
    )


def score_dataset(dataset: Any, predictor: Any, *, progress: Any = None) -> list[dict[str, Any]]:
    """Run ``predictor`` on every case; return one record per case (clinical row + scores)."""
    from sinusapp.dataset import load_case
    from sinusapp.imaging.metrics import dice

    records = []
    n = len(dataset.cases)
    for i, case in enumerate(dataset.cases):
        volume, lesion, _ = load_case(case)
        pred = predictor.predict(volume)
        rec = dict(case.clinical)
        rec["case_id"] = case.case_id
        rec["dlr_score"] = float(pred.dlr_score)
        rec["dsc"] = dice(pred.mask, lesion) if lesion.any() else float("nan")
        rec["lesion_volume_ml"] = float(pred.lesion_volume_ml)
        records.append(rec)
        if progress is not None:
            progress((i + 1) / n, f"case {case.case_id}")
    return records


def _write_scores(records: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["case_id", "cohort", "dlr_score", "dsc", "lesion_volume_ml"])
        for r in records:
            w.writerow(
                [
                    r["case_id"],
                    r["cohort"],
                    f"{r['dlr_score']:.6f}",
                    f"{r['dsc']:.6f}",
                    f"{r['lesion_volume_ml']:.3f}",
                ]
            )


def _read_scores(path: Path, dataset: Any) -> list[dict[str, Any]]:
    from sinusapp.errors import InputError

    hint = "give --scores the scores.csv an earlier `sinusapp evaluate` wrote, or leave it out"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"case_id", "dlr_score", "dsc"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(
                    f"--scores: the file lacks the column(s) {sorted(missing)} (found "
                    f"{list(reader.fieldnames or [])})",
                    path=path,
                    hint=hint,
                )
            rows = {r["case_id"]: r for r in reader}
    except FileNotFoundError as exc:
        raise InputError("--scores: the file does not exist", path=path, hint=hint) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"--scores: the file cannot be read ({exc})", path=path, hint=hint
        ) from exc
    records = []
    for case in dataset.cases:
        if case.case_id not in rows:
            raise InputError(
                f"case {case.case_id} has no score in {path.name}",
                path=path,
                hint="run evaluate without --scores to score every case",
            )
        r = rows[case.case_id]
        rec = dict(case.clinical)
        try:
            scores = {
                "dlr_score": float(r["dlr_score"]),
                "dsc": float(r["dsc"]),
                "lesion_volume_ml": float(r.get("lesion_volume_ml") or "nan"),
            }
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"--scores: case {case.case_id} has a score that is not a number ({exc})",
                path=path,
                hint=hint,
            ) from exc
        if not 0.0 <= scores["dlr_score"] <= 1.0:
            raise InputError(
                f"--scores: case {case.case_id} has dlr_score {scores['dlr_score']!r}, "
                "expected a probability in [0, 1]",
                path=path,
                hint=hint,
            )
        rec.update(case_id=case.case_id, **scores)
        records.append(rec)
    return records


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sinusapp.dataset import Dataset
    from sinusapp.evaluation import write_evaluation

    dataset = Dataset.open(args.dataset)
    out = Path(args.out)
    if args.scores:
        records = _read_scores(Path(args.scores), dataset)
    else:
        from sinusapp.model import Predictor

        predictor = Predictor(args.bundle, device=args.device)
        bar = tqdm(total=len(dataset.cases), desc="scoring cases", unit="case", file=sys.stderr)

        def step(_f: float, _stage: str) -> None:
            bar.update(1)

        records = score_dataset(dataset, predictor, progress=step)
        bar.close()
        _write_scores(records, out / "scores.csv")
    bar2 = tqdm(total=100, desc="evaluation", file=sys.stderr)

    def prog(f: float, _msg: str) -> None:
        bar2.n = int(100 * f)
        bar2.refresh()

    summary = write_evaluation(records, out_dir=out, progress=prog)
    bar2.close()
    print(f"Wrote the evaluation to {out} (report.md, tables, figures, nomogram.json)")
    for p in summary.performance:
        print(
            f"  {p.cohort:<5} {p.model:<9} AUC {p.auc.auc:.3f} "
            f"(95% CI {p.auc.low:.3f}–{p.auc.high:.3f})"
        )
    for cohort, auc in summary.oracle_auc.items():
        print(f"  {cohort:<5} oracle AUC (true risk) {auc:.3f}")
    for d in summary.dsc:
        print(f"  {d.cohort:<5} DSC {d.mean:.3f} ± {d.sd:.3f} (median {d.median:.3f}, n={d.n})")
    return 0
