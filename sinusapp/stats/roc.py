"""ROC analysis as R's pROC computes it: curve, AUC with DeLong CI, paired DeLong test, cutoffs.

Conventions (shared by every function here, and the same as ``pROC::roc(...,
direction = "<")``):

- ``y_true`` holds booleans or 0/1; ``True``/1 is a *case* (event, e.g. recurrence),
  ``False``/0 a *control*.
- A **higher score means more likely a case** (pROC ``direction = "<"``: controls < cases).
  Unlike pROC's default ``direction = "auto"``, the direction is never flipped from the data:
  a model worse than chance gets an AUC below 0.5, as it should when it is validated.
- A case is called **positive when its score is ≥ the threshold**.
- Ties between a case and a control count one half (the Mann–Whitney convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as _sps

from sinusapp.stats._arrays import as_outcome, as_scores, split_by_outcome

__all__ = [
    "AucResult",
    "BinaryMetrics",
    "BootstrapAucCi",
    "DelongTestResult",
    "RocCurve",
    "YoudenCutoff",
    "auc_bootstrap_ci",
    "auc_ci",
    "delong_placements",
    "delong_test",
    "delong_unpaired_test",
    "metrics_at",
    "roc_curve",
    "youden_cutoff",
]

Alternative = Literal["two-sided", "less", "greater"]


@dataclass(frozen=True, slots=True)
class RocCurve:
    """An empirical ROC curve, ordered by increasing threshold (pROC's order).

    Attributes
    ----------
    thresholds:
        ``-inf``, the midpoints between consecutive sorted unique scores, ``+inf``.
    sensitivities:
        Fraction of cases with score ≥ threshold (1 at ``-inf``, 0 at ``+inf``).
    specificities:
        Fraction of controls with score < threshold (0 at ``-inf``, 1 at ``+inf``).
    """

    thresholds: NDArray[np.float64]
    sensitivities: NDArray[np.float64]
    specificities: NDArray[np.float64]

    @property
    def fpr(self) -> NDArray[np.float64]:
        """False-positive rate, ``1 - specificity`` (the x axis of a conventional plot)."""
        return 1.0 - self.specificities


@dataclass(frozen=True, slots=True)
class AucResult:
    """AUC with its DeLong variance and confidence interval.

    Attributes
    ----------
    auc:
        Area under the empirical ROC curve (= Mann–Whitney U / (n_cases · n_controls)).
    variance:
        DeLong variance of the AUC; NaN when there is only one case or one control.
    low, high:
        Normal-approximation CI ``auc ± z · sqrt(variance)``, clipped to [0, 1] (as pROC's
        ``ci.auc(method = "delong")``).
    level:
        Confidence level of ``low`` – ``high``.
    n_cases, n_controls:
        Group sizes.
    """

    auc: float
    variance: float
    low: float
    high: float
    level: float
    n_cases: int
    n_controls: int

    @property
    def se(self) -> float:
        """Standard error, ``sqrt(variance)``."""
        return float(np.sqrt(self.variance))


@dataclass(frozen=True, slots=True)
class DelongTestResult:
    """Paired DeLong test of two correlated ROC curves (pROC ``roc.test(method = "delong")``).

    Attributes
    ----------
    auc_a, auc_b:
        The two AUCs.
    difference:
        ``auc_a - auc_b``.
    z:
        ``difference / sqrt(var_a + var_b - 2 cov_ab)``.
    p:
        p-value for ``alternative``.
    low, high:
        Confidence interval of the difference at ``level`` (one-sided alternatives give a
        one-sided interval with an infinite end, as pROC).
    alternative:
        ``"two-sided"``, ``"less"`` (H1: auc_a < auc_b) or ``"greater"`` (H1: auc_a > auc_b).
    level:
        Confidence level.
    """

    auc_a: float
    auc_b: float
    difference: float
    z: float
    p: float
    low: float
    high: float
    alternative: str
    level: float


@dataclass(frozen=True, slots=True)
class YoudenCutoff:
    """The threshold that maximises Youden's J = sensitivity + specificity − 1.

    As ``pROC::coords(roc, "best", best.method = "youden", ties.method = "first")``, over the
    finite thresholds of :func:`roc_curve` (midpoints between observed scores); on ties the
    lowest threshold wins. Apply it to new scores as "positive when score ≥ threshold".
    """

    threshold: float
    sensitivity: float
    specificity: float

    @property
    def youden_j(self) -> float:
        """``sensitivity + specificity - 1``."""
        return self.sensitivity + self.specificity - 1.0


@dataclass(frozen=True, slots=True)
class BinaryMetrics:
    """Confusion-matrix metrics at one threshold (positive when score ≥ threshold).

    A rate whose denominator is zero (e.g. PPV with no positive call) is NaN.
    """

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float
    sensitivity: float
    specificity: float
    ppv: float
    npv: float
    fpr: float
    fnr: float


def _ratio(num: int, den: int) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def roc_curve(y_true: ArrayLike, y_score: ArrayLike) -> RocCurve:
    """Empirical ROC curve with pROC's thresholds.

    Thresholds are ``-inf``, the midpoints between consecutive sorted unique scores, and
    ``+inf`` (pROC ``roc.utils.thresholds``); at each, sensitivity is the fraction of cases
    with score ≥ threshold and specificity the fraction of controls with score < threshold.
    Returned in increasing threshold order (sensitivity falling, specificity rising).
    """
    cases, controls = split_by_outcome(y_true, y_score)
    values = np.unique(np.concatenate([cases, controls]))
    mids = (values[:-1] + values[1:]) / 2.0
    thresholds = np.concatenate([[-np.inf], mids, [np.inf]])
    cases_sorted = np.sort(cases)
    controls_sorted = np.sort(controls)
    n_case_below = np.searchsorted(cases_sorted, thresholds, side="left")
    n_control_below = np.searchsorted(controls_sorted, thresholds, side="left")
    sens = 1.0 - n_case_below / cases.size
    spec = n_control_below / controls.size
    return RocCurve(thresholds=thresholds, sensitivities=sens, specificities=spec)


def delong_placements(
    cases: NDArray[np.float64], controls: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """DeLong's placement values ``(V10, V01)``.

    ``V10[i]`` is the mean over controls of ψ(case_i, control_j) and ``V01[j]`` the mean over
    cases of ψ(case_i, control_j), with ψ = 1 if case > control, ½ if equal, 0 otherwise.
    Computed from mid-ranks in O(N log N) (Sun & Xu 2014) rather than all pairs.
    """
    m, n = cases.size, controls.size
    combined = _sps.rankdata(np.concatenate([cases, controls]))
    rank_cases = _sps.rankdata(cases)
    rank_controls = _sps.rankdata(controls)
    v10 = (combined[:m] - rank_cases) / n
    v01 = 1.0 - (combined[m:] - rank_controls) / m
    return v10, v01


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def auc_ci(y_true: ArrayLike, y_score: ArrayLike, *, level: float = 0.95) -> AucResult:
    """AUC with a DeLong confidence interval, as ``pROC::ci.auc(method = "delong")``.

    ``variance = S10 / m + S01 / n`` where ``S10``, ``S01`` are the sample variances (n − 1
    denominator) of the case and control placements (:func:`delong_placements`), m the number
    of cases and n of controls. The CI is ``auc ± qnorm(1 − (1 − level)/2) · sqrt(variance)``,
    clipped to [0, 1]. Higher score = case; see the module docstring for the conventions.
    """
    _check_level(level)
    cases, controls = split_by_outcome(y_true, y_score)
    v10, v01 = delong_placements(cases, controls)
    m, n = cases.size, controls.size
    auc = float(np.mean(v10))
    if m > 1 and n > 1:
        variance = float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
        half = float(_sps.norm.ppf(1 - (1 - level) / 2)) * np.sqrt(variance)
        low, high = max(0.0, auc - half), min(1.0, auc + half)
    else:
        variance = low = high = float("nan")
    return AucResult(
        auc=auc,
        variance=variance,
        low=float(low),
        high=float(high),
        level=level,
        n_cases=m,
        n_controls=n,
    )


def delong_test(
    y_true: ArrayLike,
    score_a: ArrayLike,
    score_b: ArrayLike,
    *,
    alternative: Alternative = "two-sided",
    level: float = 0.95,
) -> DelongTestResult:
    """Paired DeLong test of two ROC curves on the same cases (pROC ``roc.test``, DeLong).

    With placements ``V10`` (cases) and ``V01`` (controls) of both scores, the covariance of
    the two AUCs is ``S = cov(V10) / m + cov(V01) / n`` and ``z = (auc_a − auc_b) /
    sqrt(S_aa + S_bb − 2 S_ab)``. p-value: two-sided ``2 Φ(−|z|)``, "less" ``Φ(z)``,
    "greater" ``1 − Φ(z)``. When the variance of the difference is zero (identical rankings),
    z is 0 with p = 1 if the AUCs are equal, otherwise ±inf with p = 0.
    """
    _check_level(level)
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(
            f"alternative must be 'two-sided', 'less' or 'greater', got {alternative!r}"
        )
    y = as_outcome(y_true)
    a = as_scores(score_a, n=y.size, name="score_a")
    b = as_scores(score_b, n=y.size, name="score_b")
    ca, na_ = split_by_outcome(y, a, name="score_a")
    cb, nb = split_by_outcome(y, b, name="score_b")
    m, n = ca.size, na_.size
    if m < 2 or n < 2:
        raise ValueError(f"the DeLong test needs ≥ 2 cases and ≥ 2 controls, got {m} and {n}")
    v10a, v01a = delong_placements(ca, na_)
    v10b, v01b = delong_placements(cb, nb)
    s = np.cov(np.vstack([v10a, v10b])) / m + np.cov(np.vstack([v01a, v01b])) / n
    auc_a, auc_b = float(v10a.mean()), float(v10b.mean())
    diff = auc_a - auc_b
    var = float(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    sd = np.sqrt(max(var, 0.0))
    if sd > 1e-15:
        z = diff / sd
    elif abs(diff) <= 1e-15:
        z = 0.0
    else:
        z = float(np.copysign(np.inf, diff))
    if alternative == "two-sided":
        p = 2.0 * float(_sps.norm.sf(abs(z)))
        q = float(_sps.norm.ppf(1 - (1 - level) / 2))
        low, high = diff - q * sd, diff + q * sd
    elif alternative == "less":
        p = float(_sps.norm.cdf(z))
        low, high = -np.inf, diff + float(_sps.norm.ppf(level)) * sd
    else:
        p = float(_sps.norm.sf(z))
        low, high = diff - float(_sps.norm.ppf(level)) * sd, np.inf
    return DelongTestResult(
        auc_a=auc_a,
        auc_b=auc_b,
        difference=diff,
        z=float(z),
        p=min(1.0, p),
        low=float(low),
        high=float(high),
        alternative=alternative,
        level=level,
    )


def youden_cutoff(y_true: ArrayLike, y_score: ArrayLike) -> YoudenCutoff:
    """The Youden-optimal threshold of :func:`roc_curve` (see :class:`YoudenCutoff`).

    Only finite thresholds are considered (the ±inf ends call everyone negative / positive);
    if all scores are equal there is no finite threshold and ``ValueError`` is raised.
    """
    curve = roc_curve(y_true, y_score)
    finite = np.isfinite(curve.thresholds)
    if not np.any(finite):
        raise ValueError("all scores are equal: no cutoff separates any two patients")
    thr = curve.thresholds[finite]
    se = curve.sensitivities[finite]
    sp = curve.specificities[finite]
    j = se + sp
    best = int(np.flatnonzero(j >= j.max() - 1e-12)[0])
    return YoudenCutoff(
        threshold=float(thr[best]), sensitivity=float(se[best]), specificity=float(sp[best])
    )


def metrics_at(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> BinaryMetrics:
    """Confusion-matrix metrics when "positive" means ``score ≥ threshold``.

    ``accuracy = (tp + tn) / N``, ``sensitivity = tp / (tp + fn)``, ``specificity = tn / (tn +
    fp)``, ``ppv = tp / (tp + fp)``, ``npv = tn / (tn + fn)``, ``fpr = 1 − specificity``,
    ``fnr = 1 − sensitivity``. A rate with a zero denominator is NaN.
    """
    y = as_outcome(y_true)
    s = as_scores(y_score, n=y.size)
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    pos = s >= threshold
    tp = int(np.sum(pos & y))
    fp = int(np.sum(pos & ~y))
    tn = int(np.sum(~pos & ~y))
    fn = int(np.sum(~pos & y))
    return BinaryMetrics(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        accuracy=_ratio(tp + tn, y.size),
        sensitivity=_ratio(tp, tp + fn),
        specificity=_ratio(tn, tn + fp),
        ppv=_ratio(tp, tp + fp),
        npv=_ratio(tn, tn + fn),
        fpr=_ratio(fp, tn + fp),
        fnr=_ratio(fn, tp + fn),
    )


@dataclass(frozen=True, slots=True)
class BootstrapAucCi:
    """Percentile bootstrap CI of the AUC (``pROC::ci.auc(method = "bootstrap")``).

    Attributes
    ----------
    auc:
        The AUC of the data.
    low, high:
        The ``(1 − level)/2`` and ``1 − (1 − level)/2`` quantiles of the replicate AUCs.
    level, n_boot, stratified, seed:
        The settings.
    """

    auc: float
    low: float
    high: float
    level: float
    n_boot: int
    stratified: bool
    seed: int


def _auc_rows(cases: NDArray[np.float64], controls: NDArray[np.float64]) -> NDArray[np.float64]:
    """AUC (ties ½) of each row of ``cases`` (B×m) against the same row of ``controls`` (B×n)."""
    m, n = cases.shape[1], controls.shape[1]
    both = np.concatenate([cases, controls], axis=1)
    ranks = _sps.rankdata(both, axis=1)
    return (ranks[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)


def auc_bootstrap_ci(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    stratified: bool = True,
    seed: int = 0,
) -> BootstrapAucCi:
    """Bootstrap CI of the AUC, as ``pROC::ci.auc(method = "bootstrap")``.

    pROC's defaults: 2000 replicates, **stratified** (each replicate draws m cases from the
    cases and n controls from the controls, with replacement), percentile interval from
    ``quantile(aucs, c((1 − level)/2, 1 − (1 − level)/2))`` (R's type 7 = numpy's linear).
    Unstratified replicates that draw no case or no control are skipped, as pROC does.
    Random numbers are numpy's (seeded), not R's, so the bounds agree with pROC's to within
    the Monte-Carlo error (about ±0.005 at 2000 replicates), not digit for digit.
    """
    _check_level(level)
    if n_boot < 100:
        raise ValueError(f"n_boot must be ≥ 100 for a percentile interval, got {n_boot}")
    cases, controls = split_by_outcome(y_true, y_score)
    m, n = cases.size, controls.size
    rng = np.random.default_rng(seed)
    aucs: list[NDArray[np.float64]] = []
    chunk = 500
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        if stratified:
            cs = cases[rng.integers(0, m, size=(b, m))]
            ct = controls[rng.integers(0, n, size=(b, n))]
            aucs.append(_auc_rows(cs, ct))
        else:
            allv = np.concatenate([cases, controls])
            ally = np.concatenate([np.ones(m, bool), np.zeros(n, bool)])
            for _ in range(b):
                idx = rng.integers(0, m + n, size=m + n)
                yy = ally[idx]
                if 0 < yy.sum() < yy.size:
                    aucs.append(_auc_rows(allv[idx][yy][None, :], allv[idx][~yy][None, :]))
    values = np.concatenate(aucs)
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    auc = float(_auc_rows(cases[None, :], controls[None, :])[0])
    return BootstrapAucCi(
        auc=auc,
        low=float(lo),
        high=float(hi),
        level=level,
        n_boot=int(values.size),
        stratified=stratified,
        seed=seed,
    )


def delong_unpaired_test(
    y_a: ArrayLike,
    score_a: ArrayLike,
    y_b: ArrayLike,
    score_b: ArrayLike,
) -> DelongTestResult:
    """Unpaired DeLong test of two ROC curves on different patients (pROC ``roc.test``
    with ``paired = FALSE``, method ``"delong"``), e.g. a model in the training vs the
    testing cohort.

    ``z = (auc_a − auc_b) / sqrt(var_a + var_b)`` with each DeLong variance as
    :func:`auc_ci`; two-sided ``p = 2 Φ(−|z|)``; 95 % CI of the difference ``± 1.96 sd``.
    """
    a = auc_ci(y_a, score_a)
    b = auc_ci(y_b, score_b)
    if not (np.isfinite(a.variance) and np.isfinite(b.variance)):
        raise ValueError("the unpaired DeLong test needs ≥ 2 cases and ≥ 2 controls per curve")
    diff = a.auc - b.auc
    sd = float(np.sqrt(a.variance + b.variance))
    z = diff / sd if sd > 0 else (0.0 if diff == 0 else float(np.copysign(np.inf, diff)))
    q = float(_sps.norm.ppf(0.975))
    return DelongTestResult(
        auc_a=a.auc,
        auc_b=b.auc,
        difference=diff,
        z=float(z),
        p=2.0 * float(_sps.norm.sf(abs(z))),
        low=diff - q * sd,
        high=diff + q * sd,
        alternative="two-sided",
        level=0.95,
    )
