"""Fit the bundled nomogram from a dataset's ``clinical.csv`` and the model's DLR-scores.

The nomogram needs one DLR-score per training patient from a model that did **not** train on
that patient: the out-of-fold predictions of the cross-validation (``sinusapp train`` writes
them to ``WORK_DIR/predictions.csv``). The final model's scores of its own training cases are
in-sample and would overweight the DLR-score. Two ways to produce ``models/nomogram.json``:

1. ``sinusapp evaluate DATASET --scores WORK_DIR/predictions.csv --bundle BUNDLE_DIR --out
   DIR`` fits the nomogram on the training cohort, records the bundle's sha256 in it and
   writes ``DIR/nomogram.json`` with the whole evaluation; copy it to
   ``models/nomogram.json`` next to the bundle.
2. From a CSV of DLR-scores already computed (``case_id,dlr_score``)::

       python -m sinusapp.nomogram.fit DATASET/clinical.csv predictions.csv \\
           --out models/nomogram.json

   (:func:`fit_nomogram_file`). Only rows with ``cohort = train`` are used (all rows when
   there is no ``cohort`` column); the factor list is the paper's four
   (:data:`~sinusapp.nomogram.DEFAULT_FACTORS`) unless another is given.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sinusapp.errors import InputError
from sinusapp.nomogram.factors import DEFAULT_FACTORS, Factor
from sinusapp.nomogram.model import Nomogram

__all__ = ["fit_nomogram_file", "main", "parse_value", "read_csv_rows"]

log = logging.getLogger(__name__)

_TRUE = {"1", "yes", "y", "true", "t"}
_FALSE = {"0", "no", "n", "false", "f"}


def parse_value(text: str) -> Any:
    """A CSV cell as bool (yes/no, true/false, 1/0), float, ``None`` (empty / NA) or string."""
    t = text.strip()
    low = t.lower()
    if low in ("", "na", "nan", "none", "null"):
        return None
    if low in _TRUE - {"1"}:
        return True
    if low in _FALSE - {"0"}:
        return False
    try:
        return float(t)
    except ValueError:
        return t


def read_csv_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a CSV into row dicts with :func:`parse_value` applied; ``InputError`` if unreadable."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = [
                {k.strip(): parse_value(v or "") for k, v in r.items() if k}
                for r in csv.DictReader(fh)
            ]
    except OSError as exc:
        raise InputError(f"cannot read the CSV file: {exc.strerror or exc}", path=p) from exc
    if not rows:
        raise InputError("the CSV file has no data rows", path=p)
    return rows


def fit_nomogram_file(
    clinical_csv: str | os.PathLike[str],
    scores_csv: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    factors: Sequence[Factor] = DEFAULT_FACTORS,
    outcome: str = "recurrence",
    cohort: str = "train",
    description: str = "",
) -> Nomogram:
    """Fit the nomogram on the ``cohort`` rows of ``clinical_csv`` joined with DLR-scores.

    Parameters
    ----------
    clinical_csv:
        The dataset's ``clinical.csv`` (``case_id``, ``recurrence``, the clinical factors,
        optionally ``cohort``).
    scores_csv:
        ``case_id,dlr_score`` per case (other columns ignored).
    out:
        Where to write the nomogram JSON (e.g. ``models/nomogram.json``).
    factors, outcome, cohort, description:
        Factor list, outcome column, cohort to fit on, and a provenance note stored in the
        file's training summary.

    Raises
    ------
    InputError
        A file is unreadable, a column missing, or a training case has no DLR-score.
    """
    clinical = read_csv_rows(clinical_csv)
    scores = {str(_case_id(r)): r.get("dlr_score") for r in read_csv_rows(scores_csv)}
    rows = []
    for r in clinical:
        if "cohort" in r and r["cohort"] is not None and str(r["cohort"]).lower() != cohort:
            continue
        cid = str(_case_id(r))
        if "dlr_score" not in r or r["dlr_score"] is None:
            if cid not in scores:
                raise InputError(
                    f"case {cid} has no DLR-score in {scores_csv}",
                    hint="run the model on every training case first",
                )
            r = {**r, "dlr_score": scores[cid]}
        rows.append(r)
    if not rows:
        raise InputError(f"no rows with cohort = {cohort!r}", path=Path(clinical_csv))
    text = description or f"fitted on {len(rows)} '{cohort}' cases of {Path(clinical_csv)}"
    nomo = Nomogram.fit(rows, outcome=outcome, factors=factors, description=text)
    nomo.save(out)
    log.info(
        "nomogram fitted on %d cases (AUC %.3f) written to %s", len(rows), nomo.training.auc, out
    )
    return nomo


def _case_id(row: dict[str, Any]) -> Any:
    if "case_id" not in row:
        raise InputError("the CSV has no 'case_id' column")
    v = row["case_id"]
    return int(v) if isinstance(v, float) and v.is_integer() else v


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sinusapp.nomogram.fit CLINICAL_CSV SCORES_CSV --out FILE``."""
    parser = argparse.ArgumentParser(prog="python -m sinusapp.nomogram.fit", description=__doc__)
    parser.add_argument("clinical_csv", type=Path)
    parser.add_argument("scores_csv", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cohort", default="train")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        fit_nomogram_file(args.clinical_csv, args.scores_csv, out=args.out, cohort=args.cohort)
    except InputError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
