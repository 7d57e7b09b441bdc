"""Paper-style evaluation: Table 1, Table 2, DeLong tests, DSC, ROC / calibration / DCA figures.

Headless and model-free: the caller (``sinusapp evaluate``) runs the model on every case and
passes one record per patient; this module fits the clinical model and the nomogram on the
training cohort, evaluates the three models (DLR, clinical, nomogram) on both cohorts as He et
al. (2023) do, and writes Markdown + CSV + figures (PNG and PDF) into one folder.

Methods (each documented where it is computed, see :mod:`sinusapp.stats`):

- Table 1: mean ± SD / n (%) by outcome per cohort; Mann–Whitney U (continuous) and Pearson
  chi-square without continuity correction (categorical), p < 0.05 marked ``*``.
- Models: *DLR model* = the DLR-score itself; *clinical model* = logistic regression on
  asthma, allergic rhinitis, eosinophils; *nomogram* = logistic regression on the DLR-score
  and those clinical factors. Both regressions are fitted on the training cohort only.
- The DLR-scores of the training cohort must not come from a model trained on those
  patients (in-sample scores make the nomogram overweight the DLR-score): the caller says
  where they come from (``train_scores``: out-of-fold, an independent model); "in-sample"
  is refused.
- Univariate analysis: logistic regression of recurrence on every Table-1 factor in the
  training cohort (OR with Wald 95 % CI, p), the paper's selection rule (p < 0.05) and how
  it compares with the factors the models use.
- Separation: a (quasi-)completely separated training cohort has no maximum-likelihood fit;
  the model is then fitted with Firth's penalised likelihood and the report says so.
- Table 2: AUC with DeLong 95 % CI and pROC's stratified bootstrap CI; accuracy,
  sensitivity, specificity, FPR, FNR (and PPV, NPV in the CSV) at each model's
  **training-cohort** Youden cutoff, applied unchanged to the test cohort (positive when
  score ≥ cutoff). Training-cohort rows of the fitted models are *apparent* (model and
  metrics from the same patients).
- Paired DeLong tests between the models within each cohort; unpaired DeLong tests of each
  model's training vs testing AUC.
- Cross-validation (when the records carry the ``fold`` of their out-of-fold score): ROC
  curve per fold with the mean AUC (paper Fig. 3A) of the DLR model, and of the clinical
  model and the nomogram refitted on the other folds' patients (with their out-of-fold
  DLR-scores) and applied to the held-out fold; each model's CV Youden cutoff (pooled
  out-of-fold) side by side with the testing cohort's own Youden cutoff.
- Calibration (nomogram): binned observed vs predicted (deciles of risk, Wilson CIs), LOWESS,
  slope, calibration-in-the-large, Brier, Hosmer–Lemeshow (g − 2 df in the training cohort,
  g df in the testing cohort, which the model was not fitted on); in the training cohort the
  bootstrap optimism-corrected curve (``rms::calibrate``), the apparent one being perfect by
  construction.
- Decision curves: net benefit of each model vs treat-all / treat-none (dcurves convention).

Entry point: :func:`write_evaluation`.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinusapp._version import __version__
from sinusapp.errors import InputError, OutputError
from sinusapp.evaluation.analyses import (
    PAPER_FACTORS,
    CrossValidation,
    UnivariateRow,
    cross_validation,
    optimism_corrected,
    selection_text,
    univariate_analysis,
)
from sinusapp.stats.calibration import (
    CalibrationResult,
    OptimismCorrectedCalibration,
    calibration,
    hosmer_lemeshow,
)
from sinusapp.stats.decision import net_benefit
from sinusapp.stats.roc import (
    AucResult,
    BinaryMetrics,
    BootstrapAucCi,
    DelongTestResult,
    auc_bootstrap_ci,
    auc_ci,
    delong_test,
    delong_unpaired_test,
    metrics_at,
    roc_curve,
    youden_cutoff,
)
from sinusapp.stats.screening import ScreeningResult, univariate_screening

__all__ = [
    "COHORTS",
    "MODELS",
    "DelongRow",
    "DscSummary",
    "EvaluationSummary",
    "ModelPerformance",
    "write_evaluation",
]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]
_Z95 = 1.959963984540054

COHORTS: tuple[str, ...] = ("train", "test")
COHORT_LABELS = {"train": "Training cohort", "test": "Testing cohort"}
#: model key → display name, in the paper's order
MODELS: dict[str, str] = {"dlr": "DLR model", "clinical": "Clinical model", "nomogram": "Nomogram"}
_COLOURS = {"dlr": "#2a9d58", "clinical": "#2b6cb0", "nomogram": "#c0392b"}
#: Record keys holding a synthetic generator's true risk (reported as the oracle AUC).
ORACLE_KEYS: tuple[str, ...] = ("true_probability", "true_risk")
_DELONG_PAIRS = (("nomogram", "clinical"), ("nomogram", "dlr"), ("clinical", "dlr"))
#: Where the training cohort's DLR-scores come from (``write_evaluation(train_scores=...)``).
TRAIN_SCORE_SOURCES: dict[str, str] = {
    "out-of-fold": "out-of-fold predictions of the cross-validation models (each patient "
    "scored by a model that did not see them)",
    "independent": "a model bundle trained on other patients than this dataset's",
    "unspecified": "not stated by the caller: if they are the training model's own "
    "predictions, the nomogram overweights the DLR-score",
}

#: Table-1 variables: record key → (row label, kind); only those present are shown.
TABLE1_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("age", "Age, mean ± SD", "continuous"),
    ("age_years", "Age, mean ± SD", "continuous"),
    ("sex", "Female, No. (%)", "female"),
    ("asthma", "Asthma, No. (%)", "binary"),
    ("allergic_rhinitis", "Allergic rhinitis, No. (%)", "binary"),
    ("hypertension", "Hypertension, No. (%)", "binary"),
    ("diabetes", "Diabetes mellitus, No. (%)", "binary"),
    ("eosinophils_per_ul", "Circulating eosinophil count, mean ± SD, cells/µL", "continuous"),
    ("smoking", "Smoking, No. (%)", "binary"),
    ("drinking", "Drinking, No. (%)", "binary"),
)


@dataclass(frozen=True, slots=True)
class ModelPerformance:
    """One model in one cohort: AUC with CI and the metrics at the training cutoff."""

    model: str
    cohort: str
    auc: AucResult
    metrics: BinaryMetrics
    cutoff: float
    bootstrap: BootstrapAucCi | None = None
    estimate: str = ""


@dataclass(frozen=True, slots=True)
class DelongRow:
    """Paired DeLong test between two models in one cohort."""

    cohort: str
    model_a: str
    model_b: str
    result: DelongTestResult


@dataclass(frozen=True, slots=True)
class DscSummary:
    """Dice similarity coefficient of the segmentation in one cohort."""

    cohort: str
    n: int
    mean: float
    sd: float
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class EvaluationSummary:
    """What :func:`write_evaluation` computed and wrote.

    Attributes
    ----------
    out_dir:
        The output folder.
    n, events:
        Patients and events per cohort.
    performance:
        Every (model, cohort) of Table 2.
    delong:
        The DeLong tests.
    table1:
        Screening results per cohort (Table 1).
    calibration:
        Nomogram calibration per cohort.
    dsc:
        DSC per cohort (empty when the records carry no ``dsc``).
    oracle_auc:
        AUC of the records' ``true_risk`` per cohort, when given (synthetic data).
    nomogram, clinical_model:
        The fitted :class:`~sinusapp.nomogram.Nomogram` objects.
    files:
        Every file written, relative to ``out_dir``.
    univariate:
        Univariate logistic regression of every Table-1 factor (training cohort).
    cross_validation:
        Per-fold ROC of the out-of-fold DLR-scores, when the records carry ``fold``.
    cross_validation_models:
        Per-fold ROC of each model (``"dlr"``, ``"clinical"``, ``"nomogram"``; the fitted
        ones refitted without the held-out fold), when the records carry ``fold``.
    optimism:
        Bootstrap optimism-corrected calibration of the nomogram in the training cohort.
    unpaired:
        Unpaired DeLong test of training vs testing AUC per model.
    notes:
        Provenance and warnings shown at the top of the report.
    """

    out_dir: Path
    n: Mapping[str, int]
    events: Mapping[str, int]
    performance: tuple[ModelPerformance, ...]
    delong: tuple[DelongRow, ...]
    table1: Mapping[str, tuple[ScreeningResult, ...]]
    calibration: Mapping[str, CalibrationResult]
    dsc: tuple[DscSummary, ...]
    oracle_auc: Mapping[str, float]
    nomogram: Any
    clinical_model: Any
    files: tuple[str, ...] = field(default=())
    univariate: tuple[UnivariateRow, ...] = ()
    cross_validation: CrossValidation | None = None
    cross_validation_models: Mapping[str, CrossValidation] = field(default_factory=dict)
    optimism: OptimismCorrectedCalibration | None = None
    unpaired: Mapping[str, DelongTestResult] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def get(self, model: str, cohort: str) -> ModelPerformance:
        """Performance of ``model`` (``"dlr"``, ``"clinical"``, ``"nomogram"``) in ``cohort``."""
        for p in self.performance:
            if p.model == model and p.cohort == cohort:
                return p
        raise KeyError((model, cohort))


# ----------------------------------------------------------------------------- helpers
def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    text = "<0.001" if p < 0.001 else f"{p:.3f}"
    return text + ("*" if p < 0.05 else "")


def _fnum(v: float, decimals: int) -> str:
    """``v`` with ``decimals`` decimals, "n/a" when not finite, never "-0.00"."""
    if not math.isfinite(v):
        return "n/a"
    text = f"{v:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _f3(v: float) -> str:
    return _fnum(v, 3)


def _to_bool(value: Any, *, key: str, index: int) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value) in (0.0, 1.0):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in (
        "yes",
        "true",
        "y",
        "1",
        "no",
        "false",
        "n",
        "0",
    ):
        return value.strip().lower() in ("yes", "true", "y", "1")
    raise InputError(f"record {index}: {key} must be yes/no (True/False or 1/0), got {value!r}")


def _female(value: Any) -> bool | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("f", "female", "woman", "w"):
        return True
    if text in ("m", "male", "man"):
        return False
    return None


def _opt_float(value: bool | None) -> float:
    return math.nan if value is None else float(value)


def _number(value: Any) -> float:
    if value is None or isinstance(value, (bool, np.bool_)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _validate(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if len(records) == 0:
        raise InputError("no records to evaluate")
    out = []
    for i, r in enumerate(records):
        for key in ("cohort", "recurrence", "dlr_score"):
            if key not in r or r[key] is None:
                raise InputError(f"record {i} has no {key!r}")
        cohort = str(r["cohort"]).strip().lower()
        if cohort not in COHORTS:
            raise InputError(f"record {i}: cohort must be 'train' or 'test', got {r['cohort']!r}")
        rec = dict(r)
        rec["cohort"] = cohort
        rec["recurrence"] = _to_bool(r["recurrence"], key="recurrence", index=i)
        score = _number(r["dlr_score"])
        if not (0.0 <= score <= 1.0):
            raise InputError(f"record {i}: dlr_score must be in [0, 1], got {r['dlr_score']!r}")
        rec["dlr_score"] = score
        out.append(rec)
    for c in COHORTS:
        ys = [r["recurrence"] for r in out if r["cohort"] == c]
        if sum(ys) < 2 or len(ys) - sum(ys) < 2:
            raise InputError(
                f"the {c} cohort needs at least 2 patients with and 2 without recurrence, "
                f"has {sum(ys)} and {len(ys) - sum(ys)}"
            )
    return out


class _Writer:
    """Writes files into the output folder, remembering them; OutputError on failure."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.files: list[str] = []
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            probe = out_dir / ".write_test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise OutputError(
                f"cannot write to the output folder: {exc.strerror or exc}",
                path=out_dir,
                hint="choose a folder you can write to",
            ) from exc

    def path(self, name: str) -> Path:
        self.files.append(name)
        return self.out_dir / name

    def csv(self, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        with self.path(name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for row in rows:
                w.writerow(["" if (isinstance(v, float) and math.isnan(v)) else v for v in row])

    def text(self, name: str, text: str) -> None:
        self.path(name).write_text(text, encoding="utf-8")

    def figure(self, stem: str, fig: Any) -> None:
        fig.savefig(self.path(f"{stem}.png"), dpi=200)
        fig.savefig(self.path(f"{stem}.pdf"))


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- Table 1
def _table1(
    recs: list[dict[str, Any]],
) -> tuple[dict[str, tuple[ScreeningResult, ...]], list[tuple[str, str, str]]]:
    present = []
    seen_labels = set()
    for key, label, kind in TABLE1_VARIABLES:
        if any(r.get(key) is not None for r in recs) and label not in seen_labels:
            present.append((key, label, kind))
            seen_labels.add(label)
    results: dict[str, tuple[ScreeningResult, ...]] = {}
    for c in COHORTS:
        rows = [r for r in recs if r["cohort"] == c]
        y = np.array([r["recurrence"] for r in rows])
        variables: dict[str, list[Any]] = {}
        kinds: dict[str, Any] = {}
        for key, _, kind in present:
            if kind == "continuous":
                variables[key] = [_number(r.get(key)) for r in rows]
                kinds[key] = "continuous"
            elif kind == "female":
                variables[key] = [_female(r.get(key)) for r in rows]
                kinds[key] = "categorical"
            else:
                variables[key] = [
                    _to_bool(r.get(key), key=key, index=i) for i, r in enumerate(rows)
                ]
                kinds[key] = "categorical"
        results[c] = univariate_screening(y, variables, kinds=kinds)
    return results, present


def _describe(res: ScreeningResult, group: str) -> str:
    if res.kind == "continuous":
        s = res.cases if group == "cases" else res.controls
        return "n/a" if s is None or s.n == 0 else f"{s.mean:.2f} ± {s.sd:.2f}"
    counts = res.case_counts if group == "cases" else res.control_counts
    total = sum(counts)
    k = counts[res.levels.index("yes")] if "yes" in res.levels else 0
    return "n/a" if total == 0 else f"{k} ({100 * k / total:.2f})"


COEF_HEADER = ("Term", "β", "SE", "Odds ratio (95% CI)", "OR per", "p value")


def _coefficient_rows(model: Any) -> list[list[str]]:
    """β, SE, Wald p and the odds ratio per a readable step (yes vs no; 0.1 DLR; 100 cells/µL).

    The odds ratio of a continuous factor is given per a round step of about a tenth of its
    axis (``exp(β · step)``), because per 1 cell/µL it would read 1.002.
    """
    from scipy.stats import norm

    from sinusapp.nomogram._ticks import nice_step

    se = np.sqrt(np.diag(model.covariance))
    p0 = float(2 * norm.sf(abs(model.intercept / se[0])))
    rows = [["Intercept", f"{model.intercept:.4g}", f"{se[0]:.4g}", "", "", _fmt_p(p0)]]
    for j, f in enumerate(model.factors, start=1):
        beta = model.coefficients[f.name]
        if f.kind == "binary":
            unit_step, per = 1.0, "yes vs no"
        else:
            lo, hi = f.axis_range
            unit_step = nice_step(hi - lo, 10)
            per = f"{unit_step:g} {f.unit}".strip()
        lo_b, hi_b = beta - _Z95 * se[j], beta + _Z95 * se[j]
        odds = f"{_odds(beta * unit_step)} ({_odds(lo_b * unit_step)}–{_odds(hi_b * unit_step)})"
        p = float(2 * norm.sf(abs(beta / se[j])))
        rows.append([f.display_label, f"{beta:.4g}", f"{se[j]:.4g}", odds, per, _fmt_p(p)])
    return rows


def _odds(log_odds: float) -> str:
    """exp(log_odds) with 3 decimals; "n/a" when not finite, ">1e6" / "<1e-6" when a
    (quasi-)separated fit makes it meaningless."""
    if not math.isfinite(log_odds):
        return "n/a"
    if log_odds > math.log(1e6):
        return ">1e6"
    if log_odds < math.log(1e-6):
        return "<1e-6"
    return f"{math.exp(log_odds):.3f}"


# ----------------------------------------------------------------------------- figures
def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _panel_title(ax: Any, letter: str, text: str) -> None:
    """Bold left title; ``letter`` "" for a figure of one panel (no lone "(A)")."""
    ax.set_title(f"({letter}) {text}" if letter else text, loc="left", fontsize=11,
                 fontweight="bold")  # fmt: skip


def _roc_figure(
    scores: Mapping[str, Mapping[str, np.ndarray]], ys: Mapping[str, np.ndarray], perf
) -> Any:
    fig = _new_figure(11, 5.2)
    axes = fig.subplots(1, 2)
    for ax, letter, c in zip(axes, "AB", COHORTS, strict=True):
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        for m, name in MODELS.items():
            curve = roc_curve(ys[c], scores[c][m])
            p = perf[(m, c)]
            # points joined by straight lines, as pROC draws them: steps where scores are
            # distinct, a diagonal where cases and controls tie
            ax.plot(
                curve.fpr,
                curve.sensitivities,
                color=_COLOURS[m],
                lw=1.8,
                label=f"{name}: AUC {p.auc.auc:.3f} ({p.auc.low:.3f}–{p.auc.high:.3f})",
            )
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("1 − Specificity")
        ax.set_ylabel("Sensitivity")
        ax.grid(alpha=0.25)
        ax.legend(loc="lower right", fontsize=8.5, frameon=True)
        n, e = len(ys[c]), int(ys[c].sum())
        _panel_title(ax, letter, f"{COHORT_LABELS[c]} (n = {n}, {e} recurrences)")
    return fig


def _calibration_figure(
    ys, probs, cals: Mapping[str, CalibrationResult], hls, *, optimism=None
) -> Any:
    fig = _new_figure(11, 5.6)
    axes = fig.subplots(1, 2)
    for ax, letter, c in zip(axes, "AB", COHORTS, strict=True):
        cal = cals[c]
        ax.plot([0, 1], [0, 1], color="0.55", lw=1, ls="--", label="Ideal")
        ax.plot(
            cal.smooth_predicted,
            cal.smooth_observed,
            color=_COLOURS["nomogram"],
            lw=1.8,
            label="Nomogram (LOWESS)",
        )
        if c == "train" and optimism is not None:
            ax.plot(
                optimism.grid,
                optimism.corrected,
                color="#6b3fa0",
                lw=1.8,
                ls="-.",
                label=f"Bias-corrected (bootstrap, B = {optimism.n_boot})",
            )
        # Wilson bounds enclose the observed rate; clip rounding residue all the same
        yerr = np.clip(
            np.vstack([cal.bin_observed - cal.bin_low, cal.bin_high - cal.bin_observed]), 0, None
        )
        ax.errorbar(
            cal.bin_predicted,
            cal.bin_observed,
            yerr=yerr,
            fmt="o",
            ms=4.5,
            color="black",
            ecolor="0.45",
            elinewidth=0.9,
            capsize=2,
            label="Observed (deciles, 95% CI)",
        )
        # rug of predictions: events above, non-events below the axis floor
        y, p = ys[c], probs[c]
        ax.vlines(p[y], -0.035, -0.005, color=_COLOURS["nomogram"], lw=0.5, alpha=0.6)
        ax.vlines(p[~y], -0.07, -0.04, color="0.4", lw=0.5, alpha=0.6)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.075, 1.02)
        ax.set_xlabel("Predicted probability of recurrence")
        ax.set_ylabel("Observed proportion of recurrence")
        ax.grid(alpha=0.25)
        ax.set_aspect("equal")
        hl = hls[c]
        # the statistics go into the legend, which matplotlib places where it covers the
        # fewest points ("best"): a fixed box would hide bins of a miscalibrated model
        from matplotlib.lines import Line2D

        handles, labels = ax.get_legend_handles_labels()
        blank = Line2D([], [], linestyle="none")
        stats = [
            f"Slope {_fnum(cal.slope, 2)}, intercept {_fnum(cal.intercept, 2)}",
            f"Brier {_fnum(cal.brier, 3)}, C {_fnum(cal.c, 3)}",
            f"Hosmer–Lemeshow p {_fmt_p(hl.p).rstrip('*')}",
        ]
        ax.legend(
            [*handles, blank, blank, blank],
            [*labels, *stats],
            loc="best",
            fontsize=8,
            framealpha=0.9,
        )
        estimate = "apparent" if c == "train" else "validation"
        _panel_title(ax, letter, f"Nomogram, {COHORT_LABELS[c].lower()} ({estimate})")
    return fig


def _cv_roc_figure(cvs: Mapping[str, CrossValidation]) -> Any:
    """Paper Fig. 3A, one panel per model: the ROC curve in each cross-validation fold, the
    pooled out-of-fold curve, and the mean AUC."""
    fig = _new_figure(6.2 * len(cvs), 5.8)
    axes = np.atleast_1d(fig.subplots(1, len(cvs)))
    colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"]
    letters = "ABCDEF" if len(cvs) > 1 else ("",)
    for ax, letter, (m, cv) in zip(axes, letters, cvs.items(), strict=False):
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        for i, (k, curve, a) in enumerate(zip(cv.folds, cv.curves, cv.aucs, strict=True)):
            ax.plot(curve.fpr, curve.sensitivities, color=colours[i % len(colours)], lw=1.1,
                    alpha=0.85, label=f"Fold {k}: AUC {a:.3f} (n = {cv.n[i]})")  # fmt: skip
        ax.plot(cv.pooled_curve.fpr, cv.pooled_curve.sensitivities, color="black", lw=2.0,
                label=f"Pooled out-of-fold: AUC {cv.pooled_auc:.3f}")  # fmt: skip
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("1 − Specificity")
        ax.set_ylabel("Sensitivity")
        ax.grid(alpha=0.25)
        ax.legend(loc="lower right", fontsize=8)
        _panel_title(
            ax, letter, f"{MODELS[m]}, {len(cv.folds)}-fold CV: mean AUC {cv.mean_auc:.3f} ± "
            f"{_fnum(cv.sd_auc, 3)}"
        )  # fmt: skip
    return fig


def _refit_out_of_fold(
    rows: Sequence[Mapping[str, Any]],
    fold: Sequence[float],
    *,
    fit: Callable[..., Any],
    factors: Sequence[Any],
    title: str,
) -> np.ndarray | None:
    """Each patient's probability from the model ``fit`` on the other folds' patients;
    ``None`` when a fold's complement cannot be fitted (too few events)."""
    f = np.asarray(fold, float)
    out = np.full(len(rows), np.nan)
    for k in np.unique(f):
        held = np.flatnonzero(f == k)
        rest = [rows[i] for i in np.flatnonzero(f != k)]
        try:
            model = fit(rest, factors, title, quiet=True)
        except InputError as exc:
            log.warning("evaluate: %s not refitted without fold %g: %s", title, k, exc)
            return None
        out[held] = np.asarray(model.predict_proba([rows[i] for i in held]), float)
    return out


def _decision_figure(ys, scores, thresholds: np.ndarray) -> tuple[Any, list[list[Any]]]:
    fig = _new_figure(11, 5.0)
    axes = fig.subplots(1, 2)
    rows: list[list[Any]] = []
    for ax, letter, c in zip(axes, "AB", COHORTS, strict=True):
        curves = {m: net_benefit(ys[c], scores[c][m], thresholds) for m in MODELS}
        any_curve = next(iter(curves.values()))
        prev = any_curve.prevalence
        ax.plot(thresholds, any_curve.treat_all, color="0.55", lw=1.2, label="Treat all")
        ax.plot(thresholds, any_curve.treat_none, color="black", lw=1.2, label="Treat none")
        for m, name in MODELS.items():
            ax.plot(thresholds, curves[m].net_benefit, color=_COLOURS[m], lw=1.8, label=name)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.05 - 0.1 * prev, prev * 1.15 + 0.02)
        ax.set_xlabel("Threshold probability")
        ax.set_ylabel("Net benefit")
        ax.grid(alpha=0.25)
        ax.legend(loc="upper right", fontsize=8.5)
        _panel_title(ax, letter, COHORT_LABELS[c])
        for k, t in enumerate(thresholds):
            rows.append(
                [
                    c,
                    f"{t:.2f}",
                    *(f"{curves[m].net_benefit[k]:.5f}" for m in MODELS),
                    f"{any_curve.treat_all[k]:.5f}",
                    "0",
                ]
            )
    return fig, rows


# ----------------------------------------------------------------------------- main
def write_evaluation(
    records: Sequence[Mapping[str, Any]],
    *,
    out_dir: str | os.PathLike[str],
    progress: ProgressCallback | None = None,
    clinical_factors: Sequence[Any] | None = None,
    train_scores: str = "unspecified",
    dlr_model: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
    dsc_label: str = "on the CT grid",
    n_boot: int = 2000,
    n_boot_calibration: int = 200,
    seed: int = 0,
) -> EvaluationSummary:
    """Evaluate the DLR model, the clinical model and the nomogram; write tables and figures.

    Parameters
    ----------
    records:
        One mapping per patient with ``cohort`` (``"train"`` / ``"test"``), ``recurrence``
        (bool or 0/1), ``dlr_score`` (the model's probability, 0–1), ``asthma``,
        ``allergic_rhinitis`` (bool), ``eosinophils_per_ul``; optionally ``case_id``,
        ``dsc`` (Dice of the segmentation against the reference), ``true_probability`` (or
        ``true_risk``; synthetic data: the generator's risk, reported as the oracle AUC), and
        the other Table-1 factors
        (``age``/``age_years``, ``sex``, ``hypertension``, ``diabetes``, ``smoking``,
        ``drinking``).
    out_dir:
        Output folder (created). Receives ``report.md``, ``table1.csv``, ``table2.csv``,
        ``delong.csv``, ``dsc.csv`` (if DSC given), ``nomogram_coefficients.csv``,
        ``clinical_model_coefficients.csv``, ``predictions.csv``, ``calibration.csv``,
        ``decision_curves.csv``, ``nomogram.json``, ``clinical_model.json`` and the figures
        ``roc_curves``, ``calibration_curves``, ``decision_curves``, ``nomogram`` as PNG and
        PDF.
    progress:
        Called with (fraction 0–1, message) as the work advances.
    clinical_factors:
        The clinical factors (:class:`~sinusapp.nomogram.Factor`) of the clinical model; the
        nomogram uses the DLR-score plus these. Default: the paper's asthma, allergic
        rhinitis and eosinophil count (:data:`~sinusapp.nomogram.CLINICAL_FACTORS`).
    train_scores:
        Where the training cohort's DLR-scores come from, a key of
        :data:`TRAIN_SCORE_SOURCES`: ``"out-of-fold"`` (cross-validation predictions; give
        each record's ``fold`` for the per-fold ROC), ``"independent"`` (a model trained on
        other patients) or ``"unspecified"`` (reported as a warning). ``"in-sample"`` (the
        final model's scores of its own training patients) is refused.
    dlr_model:
        ``name`` / ``version`` / ``sha256`` of the bundle that produced the scores; recorded in
        ``nomogram.json`` so the app can refuse the nomogram with another model.
    notes:
        Lines shown under "Provenance and warnings" at the top of the report.
    dsc_label:
        How the ``dsc`` values were computed, shown in the DSC heading (one definition).
    n_boot, n_boot_calibration, seed:
        Bootstrap replicates for the AUC CIs (pROC's default 2000) and for the
        optimism-corrected calibration (rms's customary 200), and their random seed.

    Raises
    ------
    InputError
        A record lacks a required field, a cohort has fewer than 2 events / non-events, or
        ``train_scores`` is ``"in-sample"`` or unknown.
    ClinicalInputError
        A clinical value is malformed or implausible.
    OutputError
        ``out_dir`` cannot be written.
    """
    # Figures are drawn on matplotlib.figure.Figure objects (no pyplot, no global backend), so
    # this runs headless and in a worker thread of the Qt app alike.
    from sinusapp.nomogram import CLINICAL_FACTORS, DEFAULT_FACTORS, Nomogram, build_layout

    clin_factors = tuple(clinical_factors) if clinical_factors is not None else CLINICAL_FACTORS
    nomo_factors = (DEFAULT_FACTORS[0], *clin_factors)
    from sinusapp.nomogram.plot import draw_nomogram

    def step(fraction: float, message: str) -> None:
        log.info("evaluate: %s", message)
        if progress is not None:
            progress(fraction, message)

    from sinusapp.nomogram.model import SeparationError

    step(0.0, "checking records")
    if train_scores not in TRAIN_SCORE_SOURCES:
        raise InputError(
            f"train_scores must be one of {sorted(TRAIN_SCORE_SOURCES)}, got {train_scores!r}",
            hint="the nomogram must be fitted on DLR-scores of patients the model did not "
            "train on: pass the out-of-fold scores that `sinusapp train` writes "
            "(predictions.csv)",
        )
    recs = _validate(records)
    writer = _Writer(Path(out_dir))
    by = {c: [r for r in recs if r["cohort"] == c] for c in COHORTS}
    ys = {c: np.array([r["recurrence"] for r in by[c]], dtype=bool) for c in COHORTS}
    report_notes = [f"Training-cohort DLR-scores: {TRAIN_SCORE_SOURCES[train_scores]}."]
    if train_scores == "unspecified":
        log.warning("evaluate: the source of the training DLR-scores is not stated")
    if dlr_model:
        report_notes.append(
            f"DLR model: {dlr_model.get('name', '')} {dlr_model.get('version', '')} (weights "
            f"sha256 {dlr_model.get('sha256', '')}); recorded in nomogram.json."
        )
    else:
        report_notes.append(
            "Warning: no model bundle given, so nomogram.json does not record which model's "
            "DLR-scores it was fitted on and the app cannot check the pairing."
        )
    report_notes += list(notes)
    n_train = len(by["train"])

    def fit(rows: Sequence[Mapping[str, Any]], factors: Sequence[Any], title: str, *,
            penalty: str | None = None, quiet: bool = False) -> Any:  # fmt: skip
        """ML fit; Firth's when the rows are separated (said in the report unless quiet)."""
        kwargs: dict[str, Any] = dict(
            factors=factors,
            title=title,
            description=f"training cohort, {n_train} patients",
            dlr_model=dlr_model if factors[0].name == "dlr_score" else None,
        )
        if penalty is not None:
            return Nomogram.fit(rows, penalty=penalty, **kwargs)
        try:
            return Nomogram.fit(rows, **kwargs)
        except SeparationError as exc:
            if not quiet:
                report_notes.append(
                    f"{title}: {exc.message}. Fitted with Firth's penalised likelihood "
                    "instead (as R's logistf): finite, shrunk coefficients."
                )
                log.warning("evaluate: %s separated, Firth fit: %s", title, exc.message)
            return Nomogram.fit(rows, penalty="firth", **kwargs)

    step(0.1, "fitting the clinical model and the nomogram on the training cohort")
    clinical = fit(by["train"], clin_factors, "Clinical model")
    nomogram = fit(by["train"], nomo_factors, "Nomogram")
    scores = {
        c: {
            "dlr": np.array([r["dlr_score"] for r in by[c]]),
            "clinical": clinical.predict_proba(by[c]),
            "nomogram": nomogram.predict_proba(by[c]),
        }
        for c in COHORTS
    }

    step(0.25, "ROC analysis, cutoffs and DeLong tests")
    cutoffs = {
        "dlr": youden_cutoff(ys["train"], scores["train"]["dlr"]).threshold,
        "clinical": clinical.cutoff,
        "nomogram": nomogram.cutoff,
    }
    dlr_train_estimate = {
        "out-of-fold": "out-of-fold",
        "independent": "independent model",
        "unspecified": "source not stated",
    }[train_scores]
    perf: dict[tuple[str, str], ModelPerformance] = {}
    for c in COHORTS:
        for m in MODELS:
            if c == "test":
                estimate = "validation"
            else:
                estimate = dlr_train_estimate if m == "dlr" else "apparent"
            perf[(m, c)] = ModelPerformance(
                model=m,
                cohort=c,
                auc=auc_ci(ys[c], scores[c][m]),
                metrics=metrics_at(ys[c], scores[c][m], cutoffs[m]),
                cutoff=cutoffs[m],
                bootstrap=auc_bootstrap_ci(ys[c], scores[c][m], n_boot=n_boot, seed=seed),
                estimate=estimate,
            )
    unpaired = {
        m: delong_unpaired_test(ys["train"], scores["train"][m], ys["test"], scores["test"][m])
        for m in MODELS
    }
    folds = [r.get("fold") for r in by["train"]]
    cv = None
    cvs: dict[str, CrossValidation] = {}
    if all(f is not None and str(f).strip() != "" for f in folds):
        fold_ids = [_number(f) for f in folds]
        cv = cross_validation(ys["train"], scores["train"]["dlr"], fold_ids)
        if cv is not None:
            step(0.3, "cross-validation of the clinical model and the nomogram")
            cvs["dlr"] = cv
            for m, factors, title in (
                ("clinical", clin_factors, "Clinical model"),
                ("nomogram", nomo_factors, "Nomogram"),
            ):
                oof = _refit_out_of_fold(by["train"], fold_ids, fit=fit, factors=factors,
                                         title=title)  # fmt: skip
                cv_m = cross_validation(ys["train"], oof, fold_ids) if oof is not None else None
                if cv_m is not None:
                    cvs[m] = cv_m
    delong = tuple(
        DelongRow(c, a, b, delong_test(ys[c], scores[c][a], scores[c][b]))
        for c in COHORTS
        for a, b in _DELONG_PAIRS
    )
    oracle: dict[str, float] = {}
    for c in COHORTS:
        key = next((k for k in ORACLE_KEYS if all(k in r for r in by[c])), None)
        risks = [_number(r.get(key)) for r in by[c]] if key else []
        if risks and all(math.isfinite(v) for v in risks):
            oracle[c] = auc_ci(ys[c], np.array(risks)).auc

    step(0.35, "Table 1")
    table1, present = _table1(recs)
    header1 = ["Characteristic"]
    for c in COHORTS:
        n_e, n = int(ys[c].sum()), len(ys[c])
        header1 += [
            f"{COHORT_LABELS[c]}: recurrence (n = {n_e})",
            f"{COHORT_LABELS[c]}: non-recurrence (n = {n - n_e})",
            f"{COHORT_LABELS[c]}: p value",
        ]
    t1_rows = []
    for k, (_, label, _) in enumerate(present):
        row = [label]
        for c in COHORTS:
            res = table1[c][k]
            row += [_describe(res, "cases"), _describe(res, "controls"), _fmt_p(res.p)]
        t1_rows.append(row)
    writer.csv("table1.csv", header1, t1_rows)

    step(0.4, "Table 2")
    header2 = [
        "Cohort", "Model", "Estimate", "AUC (95% CI)", "AUC bootstrap 95% CI", "Accuracy",
        "Sensitivity", "Specificity", "FPR", "FNR", "PPV", "NPV", "Cutoff (training)",
        "TP", "FP", "TN", "FN",
    ]  # fmt: skip
    t2_rows = []
    for c in COHORTS:
        for m, name in MODELS.items():
            p = perf[(m, c)]
            mt = p.metrics
            bs = p.bootstrap
            t2_rows.append(
                [
                    COHORT_LABELS[c], name, p.estimate,
                    f"{p.auc.auc:.3f} ({p.auc.low:.3f}–{p.auc.high:.3f})",
                    f"{bs.low:.3f}–{bs.high:.3f}" if bs else "",
                    _f3(mt.accuracy), _f3(mt.sensitivity), _f3(mt.specificity),
                    _f3(mt.fpr), _f3(mt.fnr), _f3(mt.ppv), _f3(mt.npv), f"{p.cutoff:.3f}",
                    mt.tp, mt.fp, mt.tn, mt.fn,
                ]
            )  # fmt: skip
    writer.csv("table2.csv", header2, t2_rows)
    md2_cols = [i for i, h in enumerate(header2) if h not in ("PPV", "NPV", "TP", "FP", "TN", "FN")]
    header_u = ["Model", "Training AUC", "Testing AUC", "Difference (95% CI)", "Z", "p value"]
    u_rows = [
        [
            MODELS[m],
            _f3(t.auc_a),
            _f3(t.auc_b),
            f"{_f3(t.difference)} ({_f3(t.low)} to {_f3(t.high)})",
            f"{t.z:.3f}",
            _fmt_p(t.p),
        ]
        for m, t in unpaired.items()
    ]
    writer.csv("delong_unpaired.csv", header_u, u_rows)

    step(0.42, "univariate analysis of the Table-1 factors")
    uni_columns: dict[str, tuple[str, np.ndarray]] = {}
    for key, label, kind in present:
        if kind == "continuous":
            column_values = [_number(r.get(key)) for r in by["train"]]
        elif kind == "female":
            column_values = [_opt_float(_female(r.get(key))) for r in by["train"]]
        else:
            column_values = [
                _opt_float(_to_bool(r.get(key), key=key, index=i))
                for i, r in enumerate(by["train"])
            ]
        uni_columns[key] = (label, np.array(column_values, dtype=float))
    univariate = univariate_analysis(ys["train"].astype(float), uni_columns)
    header_uni = ["Characteristic", "Odds ratio (95% CI)", "OR per", "p value", "Selected",
                  "Note"]  # fmt: skip
    uni_rows = []
    for u in univariate:
        o, lo_, hi_ = u.odds_ratio
        uni_rows.append(
            [
                u.label.split(",")[0],
                f"{_odds(math.log(o))} ({_odds(math.log(lo_))}–{_odds(math.log(hi_))})"
                if u.fit is not None
                else "n/a",
                u.per,
                _fmt_p(u.fit.p) if u.fit is not None else "n/a",
                "yes" if u.selected else "no",
                u.note,
            ]
        )
    writer.csv("univariate.csv", header_uni, uni_rows)
    used = [f.name for f in clin_factors]
    selection = selection_text(univariate, used)
    if tuple(used) != PAPER_FACTORS:
        report_notes.append(f"Clinical factors given to the evaluation: {', '.join(used)}.")
    header_d = ["Cohort", "Comparison", "AUC difference (95% CI)", "Z", "p value"]
    d_rows = [
        [
            COHORT_LABELS[d.cohort],
            f"{MODELS[d.model_a]} vs {MODELS[d.model_b]}",
            f"{_f3(d.result.difference)} ({_f3(d.result.low)} to {_f3(d.result.high)})",
            f"{d.result.z:.3f}",
            _fmt_p(d.result.p),
        ]
        for d in delong
    ]
    writer.csv("delong.csv", header_d, d_rows)

    dsc_rows: list[DscSummary] = []
    for c in COHORTS:
        vals = np.array([_number(r.get("dsc")) for r in by[c]])
        vals = vals[np.isfinite(vals)]
        if vals.size:
            q1, med, q3 = np.percentile(vals, [25, 50, 75])
            dsc_rows.append(
                DscSummary(
                    cohort=c,
                    n=int(vals.size),
                    mean=float(vals.mean()),
                    sd=float(vals.std(ddof=1)) if vals.size > 1 else math.nan,
                    median=float(med),
                    q1=float(q1),
                    q3=float(q3),
                    minimum=float(vals.min()),
                    maximum=float(vals.max()),
                )
            )
    header_dsc = ["Cohort", "n", "Mean ± SD", "Median (IQR)", "Range"]
    dsc_table = [
        [
            COHORT_LABELS[d.cohort],
            d.n,
            f"{d.mean:.3f} ± {d.sd:.3f}",
            f"{d.median:.3f} ({d.q1:.3f}–{d.q3:.3f})",
            f"{d.minimum:.3f}–{d.maximum:.3f}",
        ]
        for d in dsc_rows
    ]
    if dsc_rows:
        writer.csv("dsc.csv", header_dsc, dsc_table)

    coef_tables = {}
    for stem, model in (("nomogram", nomogram), ("clinical_model", clinical)):
        coef_tables[stem] = _coefficient_rows(model)
        writer.csv(f"{stem}_coefficients.csv", COEF_HEADER, coef_tables[stem])
    nomogram.save(writer.path("nomogram.json"))
    clinical.save(writer.path("clinical_model.json"))

    pred_rows = []
    for c in COHORTS:
        for i, r in enumerate(by[c]):
            pred_rows.append(
                [
                    r.get("case_id", ""),
                    c,
                    int(r["recurrence"]),
                    f"{scores[c]['dlr'][i]:.6f}",
                    f"{scores[c]['clinical'][i]:.6f}",
                    f"{scores[c]['nomogram'][i]:.6f}",
                ]
            )
    writer.csv(
        "predictions.csv",
        ["case_id", "cohort", "recurrence", "dlr_score", "clinical_probability",
         "nomogram_probability"],
        pred_rows,
    )  # fmt: skip

    step(0.5, "calibration")
    cals = {c: calibration(ys[c], scores[c]["nomogram"]) for c in COHORTS}
    hls = {c: hosmer_lemeshow(ys[c], scores[c]["nomogram"], external=c == "test") for c in COHORTS}
    step(0.55, f"bootstrap optimism-corrected calibration ({n_boot_calibration} refits)")
    penalty = nomogram.penalty

    def refit(rows: Sequence[Mapping[str, Any]]) -> Any:
        try:
            return fit(rows, nomo_factors, "Nomogram", quiet=True,
                       penalty="firth" if penalty == "firth" else None)  # fmt: skip
        except InputError as exc:  # e.g. a replicate with too few events: skipped
            raise ValueError(str(exc)) from exc

    model_log = logging.getLogger("sinusapp.nomogram.model")
    old_level = model_log.level
    model_log.setLevel(logging.ERROR)  # the events-per-factor warning, once per replicate
    try:
        optimism = optimism_corrected(
            by["train"],
            scores["train"]["nomogram"],
            fit=refit,
            n_boot=n_boot_calibration,
            seed=seed,
        )
    finally:
        model_log.setLevel(old_level)
    writer.csv(
        "calibration_optimism_corrected.csv",
        ["predicted", "apparent_observed", "optimism", "corrected_observed"],
        [
            [f"{g:.4f}", f"{a:.4f}", f"{o:.4f}", f"{k:.4f}"]
            for g, a, o, k in zip(
                optimism.grid, optimism.apparent, optimism.optimism, optimism.corrected,
                strict=True,
            )
        ],
    )  # fmt: skip
    cal_rows = []
    for c in COHORTS:
        cal = cals[c]
        for k in range(cal.bin_count.size):
            cal_rows.append(
                [c, k + 1, int(cal.bin_count[k]), f"{cal.bin_predicted[k]:.4f}",
                 f"{cal.bin_observed[k]:.4f}", f"{cal.bin_low[k]:.4f}", f"{cal.bin_high[k]:.4f}"]
            )  # fmt: skip
    writer.csv(
        "calibration.csv",
        ["cohort", "group", "n", "mean_predicted", "observed", "observed_low95", "observed_high95"],
        cal_rows,
    )

    step(0.6, "figures: ROC curves")
    writer.figure("roc_curves", _roc_figure(scores, ys, perf))
    cv_rows: list[list[Any]] = []
    cv_md: list[list[Any]] = []
    if cvs:
        writer.figure("cv_roc_curves", _cv_roc_figure(cvs))
        cut_cells: dict[str, list[str]] = {}
        for m, cv_m in cvs.items():
            test_cut = youden_cutoff(ys["test"], scores["test"][m])
            at_cv = metrics_at(ys["test"], scores["test"][m], cv_m.cutoff.threshold)
            rows_m = [
                ("Cross-validation (pooled out-of-fold, training)", cv_m.cutoff.threshold,
                 cv_m.cutoff.sensitivity, cv_m.cutoff.specificity),
                ("Testing cohort's own Youden cutoff", test_cut.threshold,
                 test_cut.sensitivity, test_cut.specificity),
                ("CV cutoff applied to the testing cohort", cv_m.cutoff.threshold,
                 at_cv.sensitivity, at_cv.specificity),
            ]  # fmt: skip
            for what, thr, se, sp in rows_m:
                cv_rows.append([what, MODELS[m], f"{thr:.3f}", _f3(se), _f3(sp)])
                cut_cells.setdefault(what, []).append(
                    f"{thr:.3f} (sens. {_f3(se)}, spec. {_f3(sp)})"
                )
        cv_md = [[what, *cells] for what, cells in cut_cells.items()]
        writer.csv(
            "cv_folds.csv",
            ["model", "fold", "n", "recurrences", "auc"],
            [[MODELS[m], k, n, e, f"{a:.4f}"] for m, cv_m in cvs.items()
             for k, n, e, a in zip(cv_m.folds, cv_m.n, cv_m.events, cv_m.aucs, strict=True)],
        )  # fmt: skip
        writer.csv("cv_cutoffs.csv", ["Cutoff", "Model", "Threshold", "Sensitivity",
                                      "Specificity"], cv_rows)  # fmt: skip
    step(0.7, "figures: calibration curves")
    writer.figure(
        "calibration_curves",
        _calibration_figure(
            ys, {c: scores[c]["nomogram"] for c in COHORTS}, cals, hls, optimism=optimism
        ),
    )
    step(0.8, "figures: decision curves")
    thresholds = np.round(np.arange(0.0, 0.991, 0.01), 2)
    fig, dca_rows = _decision_figure(ys, scores, thresholds)
    writer.figure("decision_curves", fig)
    writer.csv(
        "decision_curves.csv",
        ["cohort", "threshold", *(f"net_benefit_{m}" for m in MODELS), "treat_all", "treat_none"],
        dca_rows,
    )
    step(0.9, "figures: nomogram")
    writer.figure("nomogram", draw_nomogram(build_layout(nomogram), show_marks=False))

    step(0.95, "report")
    fit_name = {
        "none": "logistic regression",
        "firth": "Firth-penalised logistic regression",
    }
    events_train = int(min(ys["train"].sum(), (~ys["train"]).sum()))
    md = [
        "# SinusApp evaluation\n",
        "## Provenance and warnings\n",
        "\n".join(f"- {n}" for n in report_notes) + "\n",
        f"SinusApp {__version__}. Training cohort: {len(by['train'])} patients "
        f"({int(ys['train'].sum())} recurrences); testing cohort: {len(by['test'])} patients "
        f"({int(ys['test'].sum())} recurrences). The clinical model and the nomogram were "
        "fitted on the training cohort only; every cutoff is the training cohort's Youden "
        "cutoff, applied unchanged to the testing cohort.\n",
        "## Table 1. Patient characteristics by outcome\n",
        "Mean ± SD or n (%); p: Mann–Whitney U (continuous) or Pearson chi-square "
        "(categorical); * p < 0.05.\n",
        _md_table(header1, t1_rows),
        "## Univariate analysis (training cohort)\n",
        "Logistic regression of recurrence on each factor alone; odds ratio with Wald 95% CI "
        "(Firth's penalised fit where a factor separates the outcome).\n",
        _md_table(header_uni, uni_rows),
        selection + "\n",
        "## Table 2. Performance of the models\n",
        "AUC with DeLong 95% CI and the stratified bootstrap 95% CI "
        f"({n_boot} replicates, as pROC); metrics at the training-cohort cutoff (positive "
        "when score ≥ cutoff). FPR = false-positive rate, FNR = false-negative rate. "
        "*Apparent*: model fitted and measured on the same patients (optimistic); "
        "*validation*: the testing cohort, not used for fitting.\n",
        _md_table([header2[i] for i in md2_cols], [[r[i] for i in md2_cols] for r in t2_rows]),
        "Training vs testing AUC (unpaired DeLong test):\n",
        _md_table(header_u, u_rows),
    ]
    if oracle:
        md.append(
            "Oracle AUC (the synthetic generator's true risk, the best achievable): "
            + ", ".join(f"{COHORT_LABELS[c].lower()} {v:.3f}" for c, v in oracle.items())
            + ".\n"
        )
    if cvs:
        md += [
            "## Cross-validation (training cohort)\n",
            "The DLR model's out-of-fold scores; the clinical model and the nomogram refitted "
            "on the other folds' patients (the nomogram on their out-of-fold DLR-scores) and "
            "applied to the held-out fold. ![CV ROC](cv_roc_curves.png)\n",
            *(
                f"- {MODELS[m]}: {len(c.folds)} folds; AUC per fold "
                + ", ".join(f"{a:.3f}" for a in c.aucs)
                + f"; mean {c.mean_auc:.3f} ± {_fnum(c.sd_auc, 3)} (SD); pooled out-of-fold "
                f"AUC {c.pooled_auc:.3f}."
                for m, c in cvs.items()
            ),
            "\nYouden cutoffs, cross-validation and testing cohort side by side (threshold, "
            "with sensitivity and specificity where it is applied):\n",
            _md_table(["Cutoff", *(MODELS[m] for m in cvs)], cv_md),
        ]
    md += [
        "## DeLong tests (paired, two-sided)\n",
        _md_table(header_d, d_rows),
        f"## Nomogram coefficients ({fit_name[nomogram.penalty]}, training cohort)\n",
        _md_table(COEF_HEADER, coef_tables["nomogram"]),
        f"Risk-group cutoff (Youden, training): {nomogram.cutoff:.3f} "
        f"(sensitivity {nomogram.cutoff_sensitivity:.3f}, specificity "
        f"{nomogram.cutoff_specificity:.3f}).\n",
        f"## Clinical model coefficients ({fit_name[clinical.penalty]})\n",
        _md_table(COEF_HEADER, coef_tables["clinical_model"]),
        "## Calibration of the nomogram\n",
        "Hosmer–Lemeshow: g − 2 degrees of freedom in the training cohort (the model was "
        "fitted there), g in the testing cohort (Hosmer & Lemeshow's rule for a validation "
        "sample).\n",
        _md_table(
            ["Cohort", "Slope", "Intercept (CITL)", "Brier", "C", "Hosmer–Lemeshow χ² (df)", "p"],
            [
                [
                    COHORT_LABELS[c],
                    _f3(cals[c].slope),
                    _f3(cals[c].intercept),
                    f"{cals[c].brier:.3f}",
                    _f3(cals[c].c),
                    f"{hls[c].statistic:.2f} ({hls[c].df})",
                    _fmt_p(hls[c].p),
                ]
                for c in COHORTS
            ],
        ),
        (
            "The training cohort's apparent calibration is perfect by construction (the "
            "maximum-likelihood fit was made there)."
            if nomogram.penalty == "none"
            else "The training cohort's apparent slope exceeds 1 because Firth's penalty "
            "shrinks the coefficients."
        )
        + f" Bootstrap optimism-corrected ({optimism.n_boot} refits of the whole "
        f"fit, as rms::calibrate; {optimism.n_failed} failed): slope "
        f"{_f3(optimism.slope_corrected)} (apparent {_f3(optimism.slope_apparent)}), "
        f"intercept {_f3(optimism.intercept_corrected)}, C {_f3(optimism.c_corrected)} "
        f"(apparent {_f3(optimism.c_apparent)}), mean absolute calibration error "
        f"{optimism.mean_absolute_error:.3f}."
        + (
            f" With {events_train} events for {len(nomo_factors)} factors (fewer than 10 per "
            "factor) these estimates are unstable."
            if events_train < 10 * len(nomo_factors)
            else ""
        )
        + "\n",
    ]
    if dsc_rows:
        md += [
            f"## Segmentation (Dice similarity coefficient, {dsc_label})\n",
            _md_table(header_dsc, dsc_table),
        ]
    md += [
        "## Figures\n",
        "- ROC curves: ![ROC](roc_curves.png) ([PDF](roc_curves.pdf))",
        "- Calibration curves: ![Calibration](calibration_curves.png) "
        "([PDF](calibration_curves.pdf))",
        "- Decision curves: ![DCA](decision_curves.png) ([PDF](decision_curves.pdf))",
        *(
            ["- Cross-validation ROC: ![CV ROC](cv_roc_curves.png) ([PDF](cv_roc_curves.pdf))"]
            if cvs
            else []
        ),
        "- Nomogram: ![Nomogram](nomogram.png) ([PDF](nomogram.pdf))\n",
    ]
    writer.text("report.md", "\n".join(md))
    step(1.0, "done")
    return EvaluationSummary(
        out_dir=Path(out_dir),
        n={c: len(by[c]) for c in COHORTS},
        events={c: int(ys[c].sum()) for c in COHORTS},
        performance=tuple(perf.values()),
        delong=delong,
        table1=table1,
        calibration=cals,
        dsc=tuple(dsc_rows),
        oracle_auc=oracle,
        nomogram=nomogram,
        clinical_model=clinical,
        files=tuple(writer.files),
        univariate=univariate,
        cross_validation=cv,
        cross_validation_models=cvs,
        optimism=optimism,
        unpaired=unpaired,
        notes=tuple(report_notes),
    )
