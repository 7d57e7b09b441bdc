"""Univariate screening of clinical factors between events and non-events, as in the paper.

The paper (He et al. 2023, Table 1) compares each clinical factor between the recurrence and
non-recurrence groups with the **Mann–Whitney U test** (continuous factors) or **Pearson's
chi-square test** (categorical factors) and keeps those with **p < 0.05** for the model.

Conventions:

- Mann–Whitney U: two-sided, normal approximation with tie correction and continuity
  correction (R's ``wilcox.test(..., exact = FALSE, correct = TRUE)``; R switches to the exact
  test only for < 50 values without ties). ``statistic`` is U of the cases.
- Chi-square: Pearson's test on the group × level table **without** Yates' continuity
  correction (R ``chisq.test(correct = FALSE)``); this reproduces every p-value of the
  paper's Table 1 from its counts (e.g. AR in the testing cohort, 11/14 vs 17/51: p = 0.002,
  whereas Yates would give 0.006). A table with an empty level or group has p = NaN.
- Missing values (NaN / None) are dropped per factor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _sps

from sinusapp.stats._arrays import as_outcome

__all__ = [
    "ContinuousSummary",
    "ScreeningResult",
    "chi_square_test",
    "mann_whitney_test",
    "univariate_screening",
]

Kind = Literal["continuous", "categorical"]


@dataclass(frozen=True, slots=True)
class ContinuousSummary:
    """Mean, SD (n − 1), median and quartiles of one group."""

    n: int
    mean: float
    sd: float
    median: float
    q1: float
    q3: float


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    """One factor compared between events (cases) and non-events (controls).

    Attributes
    ----------
    name, kind:
        The factor and whether it was tested as continuous or categorical.
    test:
        ``"Mann–Whitney U"`` or ``"chi-square"``.
    statistic, p:
        Test statistic (U of the cases, or χ²) and two-sided p-value.
    significant:
        ``p < alpha``.
    cases, controls:
        For continuous factors a :class:`ContinuousSummary` per group, else ``None``.
    levels, case_counts, control_counts:
        For categorical factors the levels (as strings, sorted) and the counts per level.
    """

    name: str
    kind: Kind
    test: str
    statistic: float
    p: float
    significant: bool
    cases: ContinuousSummary | None = None
    controls: ContinuousSummary | None = None
    levels: tuple[str, ...] = ()
    case_counts: tuple[int, ...] = ()
    control_counts: tuple[int, ...] = ()


def _summary(x: np.ndarray) -> ContinuousSummary:
    if x.size == 0:
        nan = float("nan")
        return ContinuousSummary(0, nan, nan, nan, nan, nan)
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    sd = float(np.std(x, ddof=1)) if x.size > 1 else float("nan")
    return ContinuousSummary(int(x.size), float(x.mean()), sd, float(med), float(q1), float(q3))


def mann_whitney_test(cases: ArrayLike, controls: ArrayLike) -> tuple[float, float]:
    """Two-sided Mann–Whitney U (normal approximation, continuity correction): ``(U, p)``."""
    a = np.asarray(cases, dtype=float)
    b = np.asarray(controls, dtype=float)
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    res = _sps.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=True)
    return float(res.statistic), float(res.pvalue)


def chi_square_test(table: ArrayLike) -> tuple[float, float]:
    """Pearson's chi-square test of a contingency table without Yates' correction: ``(χ², p)``."""
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or np.any(t.sum(axis=0) == 0) or np.any(t.sum(axis=1) == 0):
        return float("nan"), float("nan")
    if min(t.shape) < 2:
        return float("nan"), float("nan")
    chi2, p, _, _ = _sps.chi2_contingency(t, correction=False)
    return float(chi2), float(p)


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _infer_kind(values: Sequence[Any]) -> Kind:
    present = [v for v in values if not _is_missing(v)]
    if any(isinstance(v, (bool, np.bool_, str)) for v in present):
        return "categorical"
    if len({float(v) for v in present}) <= 2:
        return "categorical"
    return "continuous"


def _is_yes_no(values: Sequence[Any]) -> bool:
    """True when every value is a boolean or the number 0 or 1."""
    return all(
        isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating))
        and float(v) in (0.0, 1.0)
        for v in values
    )


def _level_name(v: Any, yes_no: bool) -> str:
    if yes_no:
        return "yes" if float(v) == 1.0 else "no"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def univariate_screening(
    y_true: ArrayLike,
    variables: Mapping[str, Sequence[Any] | np.ndarray],
    *,
    kinds: Mapping[str, Kind] | None = None,
    alpha: float = 0.05,
) -> tuple[ScreeningResult, ...]:
    """Compare each variable between events and non-events (see the module docstring).

    Parameters
    ----------
    y_true:
        Outcome per patient (True/1 = event).
    variables:
        Factor name → values per patient (same order as ``y_true``). Booleans, 0/1 numbers
        and strings are categorical; other numbers continuous, unless ``kinds`` says otherwise.
        Categorical 0/1 and booleans get the levels ``"no"``/``"yes"``.
    kinds:
        Optional explicit kind per factor.
    alpha:
        Significance level (the paper: 0.05).

    Returns
    -------
    One :class:`ScreeningResult` per variable, in the order given.
    """
    y = as_outcome(y_true)
    out: list[ScreeningResult] = []
    for name, raw in variables.items():
        values = list(np.asarray(raw, dtype=object)) if not isinstance(raw, list) else raw
        if len(values) != y.size:
            raise ValueError(f"variable {name!r} has {len(values)} values, outcome has {y.size}")
        kind = (kinds or {}).get(name) or _infer_kind(values)
        keep = np.array([not _is_missing(v) for v in values], dtype=bool)
        if kind == "continuous":
            x = np.array([float(v) if k else np.nan for v, k in zip(values, keep, strict=True)])
            a, b = x[keep & y], x[keep & ~y]
            u, p = mann_whitney_test(a, b)
            out.append(
                ScreeningResult(
                    name=name,
                    kind="continuous",
                    test="Mann–Whitney U",
                    statistic=u,
                    p=p,
                    significant=bool(p < alpha),
                    cases=_summary(a),
                    controls=_summary(b),
                )
            )
        elif kind == "categorical":
            present = [v for v, k in zip(values, keep, strict=True) if k]
            yes_no = _is_yes_no(present)
            labels = [_level_name(v, yes_no) for v in present]
            yk = y[keep]
            levels = tuple(sorted(set(labels)))
            lab = np.array(labels, dtype=object)
            case_counts = tuple(int(np.sum((lab == lv) & yk)) for lv in levels)
            control_counts = tuple(int(np.sum((lab == lv) & ~yk)) for lv in levels)
            chi2, p = chi_square_test([case_counts, control_counts])
            out.append(
                ScreeningResult(
                    name=name,
                    kind="categorical",
                    test="chi-square",
                    statistic=chi2,
                    p=p,
                    significant=bool(p < alpha),
                    levels=levels,
                    case_counts=case_counts,
                    control_counts=control_counts,
                )
            )
        else:
            raise ValueError(
                f"kind of {name!r} must be 'continuous' or 'categorical', got {kind!r}"
            )
    return tuple(out)
