"""Compare models on the same patients: the paper's single-task vs multi-task ablation.

He et al. (2023) compare the multi-task network with a segmentation-only network (DSC 0.837
vs 0.833, p = 0.477) and a classification-only network (AUC never above 0.6). Training those
models is ``sinusapp train DATASET --task seg`` / ``--task cls`` (the other head and its loss
are dropped); this module compares their per-case scores with the reference model's:

- AUC of each model's DLR-score with the DeLong 95 % CI, per cohort, and the paired DeLong
  test against the reference (a segmentation-only model has no DLR-score: n/a);
- DSC of each model (mean ± SD, median), and the paired Wilcoxon signed-rank test against
  the reference on the cases both segmented (DSC is bounded and skewed, so the rank test; the
  paper does not name its test). DSCs are compared only when both files give them on the
  same grid (``dsc_grid``: ``ct`` from ``sinusapp evaluate --bundle``, otherwise the model's
  grid of ``sinusapp train``'s predictions.csv); the grid is named in the output.

Training-cohort rows are out-of-fold only when every training case of the file has a
``fold`` (the cross-validation predictions ``sinusapp train`` writes); they are labelled so.

Entry points: :func:`read_model_scores`, :func:`compare_models`, :func:`write_comparison`.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sinusapp.errors import InputError, OutputError
from sinusapp.stats.roc import AucResult, DelongTestResult, auc_ci, delong_test

__all__ = [
    "AucRow",
    "DscRow",
    "ModelComparison",
    "ModelScores",
    "compare_models",
    "read_model_scores",
    "write_comparison",
]

log = logging.getLogger(__name__)

COHORTS: tuple[str, ...] = ("train", "test")
_COHORT_LABELS = {"train": "Training cohort", "test": "Testing cohort"}
_GRID_LABELS = {"ct": "the CT grid", "": "the model's grid"}


@dataclass(frozen=True, slots=True)
class ModelScores:
    """One model's per-case scores (NaN where the model gives none).

    Attributes
    ----------
    label:
        Name in the tables (``multi-task``, ``seg-only``...).
    dlr_score, dsc:
        ``case_id`` → value; NaN for a case without one (a segmentation-only model has no
        DLR-score, a classification-only model no DSC).
    dsc_grid:
        ``"ct"`` (CT grid) or ``""`` (the model's grid).
    folds:
        ``case_id`` → the cross-validation fold of an out-of-fold score, where given.
    source:
        Where the scores were read from.
    """

    label: str
    dlr_score: Mapping[str, float]
    dsc: Mapping[str, float]
    dsc_grid: str = ""
    folds: Mapping[str, str] | None = None
    source: str = ""


def _number(text: str | None, *, what: str, case_id: str, path: Path) -> float:
    t = (text or "").strip()
    if t == "":
        return math.nan
    try:
        v = float(t)
    except ValueError as exc:
        raise InputError(
            f"case {case_id} has {what} {t!r}, which is not a number",
            path=path,
            hint="give a scores file written by `sinusapp train` (predictions.csv) or "
            "`sinusapp evaluate` (scores.csv)",
        ) from exc
    if not (math.isnan(v) or 0.0 <= v <= 1.0):
        raise InputError(
            f"case {case_id} has {what} {v!r}, expected a value in [0, 1]",
            path=path,
            hint="DLR-scores are probabilities and DSCs lie in [0, 1]",
        )
    return v


def read_model_scores(path: str | Path, *, label: str) -> ModelScores:
    """Read a per-case scores CSV (``case_id``; ``dlr_score`` and / or ``dsc``, each may be
    empty; optional ``fold``, ``dsc_grid``).

    Raises
    ------
    InputError
        The file is missing or unreadable, lacks ``case_id`` or both score columns, repeats
        a case, or holds a value that is not a number in [0, 1].
    """
    p = Path(path)
    hint = "give a predictions.csv of `sinusapp train` or a scores.csv of `sinusapp evaluate`"
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or ())
            rows = list(reader)
    except FileNotFoundError as exc:
        raise InputError(f"the scores file of {label!r} does not exist", path=p, hint=hint) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"the scores file of {label!r} cannot be read ({exc})", path=p, hint=hint
        ) from exc
    if "case_id" not in cols or not ({"dlr_score", "dsc"} & cols):
        raise InputError(
            f"the scores file of {label!r} needs a case_id column and a dlr_score or dsc "
            f"column (found {sorted(cols)})",
            path=p,
            hint=hint,
        )
    dlr: dict[str, float] = {}
    dsc: dict[str, float] = {}
    folds: dict[str, str] = {}
    grids: set[str] = set()
    for r in rows:
        cid = (r.get("case_id") or "").strip()
        if not cid:
            continue
        if cid in dlr:
            raise InputError(f"case {cid} appears twice", path=p, hint=hint)
        dlr[cid] = _number(r.get("dlr_score"), what="dlr_score", case_id=cid, path=p)
        dsc[cid] = _number(r.get("dsc"), what="dsc", case_id=cid, path=p)
        fold = (r.get("fold") or "").strip()
        if fold:
            folds[cid] = fold
        if math.isfinite(dsc[cid]):
            grids.add((r.get("dsc_grid") or "").strip().lower())
    if len(grids) > 1:
        raise InputError(
            f"the scores file of {label!r} mixes DSCs on several grids ({sorted(grids)})",
            path=p,
            hint="use one file per evaluation",
        )
    return ModelScores(
        label=label,
        dlr_score=dlr,
        dsc=dsc,
        dsc_grid=next(iter(grids), ""),
        folds=folds,
        source=str(p),
    )


@dataclass(frozen=True, slots=True)
class AucRow:
    """One model's AUC in one cohort, and its paired DeLong test against the reference."""

    cohort: str
    model: str
    n: int
    estimate: str
    auc: AucResult | None
    vs_reference: DelongTestResult | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class DscRow:
    """One model's DSC in one cohort, and its paired Wilcoxon test against the reference."""

    cohort: str
    model: str
    n: int
    mean: float
    sd: float
    median: float
    n_paired: int = 0
    mean_difference: float = math.nan
    p_wilcoxon: float = math.nan
    note: str = ""


@dataclass(frozen=True, slots=True)
class ModelComparison:
    """Everything :func:`compare_models` computed (the reference is the first model)."""

    reference: str
    models: tuple[str, ...]
    auc: tuple[AucRow, ...]
    dsc: tuple[DscRow, ...]
    dsc_grid: str


def _wilcoxon(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired Wilcoxon signed-rank p (scipy; exact for small n without ties)."""
    from scipy.stats import wilcoxon

    d = a - b
    if d.size < 2:
        return math.nan
    if np.all(d == 0):
        return 1.0
    return float(wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)


def compare_models(
    models: Sequence[ModelScores], *, outcomes: Mapping[str, tuple[str, bool]]
) -> ModelComparison:
    """Compare ``models[1:]`` with the reference ``models[0]`` on the patients of
    ``outcomes`` (``case_id`` → ``(cohort, recurrence)``; cohort ``train`` or ``test``).

    Raises
    ------
    InputError
        Fewer than two models, two models with one label, or a patient of ``outcomes`` that
        a model's file does not list.
    """
    if len(models) < 2:
        raise InputError("a comparison needs at least two models (the reference and one more)")
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise InputError(f"the models' labels must differ, got {labels}")
    for m in models:
        missing = [c for c in outcomes if c not in m.dlr_score]
        if missing:
            raise InputError(
                f"{len(missing)} case(s) of the dataset have no row in the scores of "
                f"{m.label!r} (e.g. {', '.join(missing[:5])})",
                path=m.source or None,
                hint="score every case of the dataset with each model",
            )
    ref = models[0]
    grid = ref.dsc_grid
    auc_rows: list[AucRow] = []
    dsc_rows: list[DscRow] = []
    for cohort in COHORTS:
        ids = [c for c, (co, _) in outcomes.items() if co == cohort]
        if not ids:
            continue
        y = np.array([outcomes[c][1] for c in ids], dtype=bool)
        ref_dlr = np.array([ref.dlr_score[c] for c in ids])
        ref_dsc = np.array([ref.dsc[c] for c in ids])
        for m in models:
            s = np.array([m.dlr_score[c] for c in ids])
            estimate = "validation"
            if cohort == "train":
                oof = m.folds is not None and all(c in m.folds for c in ids)
                held = oof and all(str(m.folds[c]).lower() == "holdout" for c in ids)
                estimate = (
                    "held out (no model trained on them)"
                    if held
                    else "out-of-fold"
                    if oof
                    else "source not stated"
                )
            ok = np.isfinite(s)
            if not ok.any():
                auc_rows.append(AucRow(cohort, m.label, 0, estimate, None, None, "no DLR-score"))
            elif ok.all() and 0 < y.sum() < y.size:
                vs = None
                if m is not ref and np.isfinite(ref_dlr).all():
                    vs = delong_test(y, s, ref_dlr)
                auc_rows.append(AucRow(cohort, m.label, int(y.size), estimate, auc_ci(y, s), vs))
            else:
                note = "DLR-score missing for some cases" if not ok.all() else "one outcome only"
                auc_rows.append(AucRow(cohort, m.label, int(ok.sum()), estimate, None, None, note))
            d = np.array([m.dsc[c] for c in ids])
            fin = np.isfinite(d)
            if not fin.any():
                dsc_rows.append(DscRow(cohort, m.label, 0, *(math.nan,) * 3, note="no DSC"))
                continue
            v = d[fin]
            row = DscRow(
                cohort,
                m.label,
                int(v.size),
                float(v.mean()),
                float(v.std(ddof=1)) if v.size > 1 else math.nan,
                float(np.median(v)),
            )
            if m is not ref:
                both = fin & np.isfinite(ref_dsc)
                if m.dsc_grid != grid:
                    row = replace(
                        row,
                        note=f"DSC on {_GRID_LABELS.get(m.dsc_grid, m.dsc_grid)}, the "
                        f"reference's on {_GRID_LABELS.get(grid, grid)}: not compared",
                    )
                elif both.any():
                    row = replace(
                        row,
                        n_paired=int(both.sum()),
                        mean_difference=float(np.mean(d[both] - ref_dsc[both])),
                        p_wilcoxon=_wilcoxon(d[both], ref_dsc[both]),
                    )
            dsc_rows.append(row)
    return ModelComparison(
        reference=ref.label,
        models=tuple(labels),
        auc=tuple(auc_rows),
        dsc=tuple(dsc_rows),
        dsc_grid=grid,
    )


def _f(v: float, d: int = 3) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{d}f}"


def _p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def write_comparison(comparison: ModelComparison, out_dir: str | Path) -> tuple[str, ...]:
    """Write ``comparison.md``, ``comparison_auc.csv`` and ``comparison_dsc.csv`` into
    ``out_dir``; return the file names.

    Raises
    ------
    OutputError
        ``out_dir`` cannot be written.
    """
    out = Path(out_dir)
    ref = comparison.reference
    auc_header = ["Cohort", "Model", "Estimate", "n", "AUC (95% CI)",
                  f"Difference vs {ref} (95% CI)", "DeLong p", "Note"]  # fmt: skip
    auc_table = []
    for r in comparison.auc:
        a, t = r.auc, r.vs_reference
        auc_table.append(
            [
                _COHORT_LABELS[r.cohort], r.model, r.estimate, r.n,
                f"{a.auc:.3f} ({a.low:.3f}–{a.high:.3f})" if a is not None else "n/a",
                f"{_f(t.difference)} ({_f(t.low)} to {_f(t.high)})" if t is not None else "",
                _p(t.p) if t is not None else "", r.note,
            ]
        )  # fmt: skip
    dsc_header = ["Cohort", "Model", "n", "Mean ± SD", "Median", f"Difference vs {ref}",
                  "Wilcoxon p", "Note"]  # fmt: skip
    dsc_table = [
        [
            _COHORT_LABELS[r.cohort], r.model, r.n, f"{_f(r.mean)} ± {_f(r.sd)}", _f(r.median),
            f"{_f(r.mean_difference)} (n = {r.n_paired})" if r.n_paired else "",
            _p(r.p_wilcoxon) if r.n_paired else "", r.note,
        ]
        for r in comparison.dsc
    ]  # fmt: skip

    def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        return "\n".join(lines) + "\n"

    grid = _GRID_LABELS.get(comparison.dsc_grid, comparison.dsc_grid)
    md = [
        "# Model comparison (single-task vs multi-task ablations, baselines)\n",
        f"Reference: {ref}; compared: {', '.join(comparison.models[1:])}. Paired on the same "
        "patients. AUC of the DLR-score with the DeLong 95% CI; difference and p from the "
        "paired DeLong test. DSC (on " + grid + ") with the paired two-sided Wilcoxon "
        "signed-rank test on the cases both models segmented. Training-cohort scores are "
        "out-of-fold only where the file gives every case's fold.\n",
        "## Recurrence prediction (AUC)\n",
        md_table(auc_header, auc_table),
        "## Segmentation (Dice similarity coefficient)\n",
        md_table(dsc_header, dsc_table),
    ]
    files = {
        "comparison_auc.csv": (auc_header, auc_table),
        "comparison_dsc.csv": (dsc_header, dsc_table),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, (header, rows) in files.items():
            with (out / name).open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(header)
                w.writerows(rows)
        (out / "comparison.md").write_text("\n".join(md), encoding="utf-8")
    except OSError as exc:
        raise OutputError(
            f"cannot write the model comparison: {exc.strerror or exc}",
            path=out,
            hint="choose a folder you can write to",
        ) from exc
    log.info("model comparison written to %s", out)
    return ("comparison.md", *files)
