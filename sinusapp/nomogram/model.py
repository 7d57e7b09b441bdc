"""The nomogram: a logistic model shown as points, with confidence intervals and a risk group.

Model
    Unpenalised multivariable logistic regression (statsmodels GLM, binomial family, logit
    link: the same fit, coefficients and covariance as R's ``glm(..., family = binomial)``)
    of the outcome on the factors (:mod:`sinusapp.nomogram.factors`), binary factors coded
    1 = yes, 0 = no.

Points (as ``rms::nomogram``)
    For each factor, the contribution ``β · x`` is taken over the factor's axis range. The
    factor whose contribution spans the widest range gets 0–100 points; every other factor
    gets points in proportion: ``points(x) = (β·x − min over the axis of β·x) · s`` with
    ``s = 100 / (widest span)``. The lowest-risk end of each axis is therefore 0 points.
    Total points ``T = Σ points`` map affinely to the linear predictor,
    ``LP = a + T / s`` with ``a = β₀ + Σ min(β·x)``, and the probability is
    ``1 / (1 + exp(−LP))``: exactly the logistic model's prediction.

Confidence interval
    Delta method on the logit scale: ``se(LP) = sqrt(xᵀ Σ x)`` with ``x = (1, x₁ … x_k)``
    and Σ the coefficient covariance; the 95 % CI is ``expit(LP ± 1.96 · se)`` (R's
    ``predict(..., se.fit = TRUE)`` then transformed, so it always lies in (0, 1)).

Risk group
    ``"high"`` when the probability is ≥ the cutoff, else ``"low"``; the cutoff is the
    Youden-optimal threshold of the model's predicted probabilities in the training cohort
    (:func:`sinusapp.stats.youden_cutoff`), stored with the model.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sinusapp._version import __version__
from sinusapp.atomic import write_text_atomic
from sinusapp.errors import ClinicalInputError, InputError, NomogramFileError, OutputError
from sinusapp.findings import Finding, Severity
from sinusapp.nomogram._ticks import nice_range
from sinusapp.nomogram.factors import DEFAULT_FACTORS, Factor

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PENALTIES",
    "Nomogram",
    "NomogramPrediction",
    "SeparationError",
    "TrainingSummary",
]

log = logging.getLogger(__name__)

FORMAT_NAME = "sinusapp.nomogram"
FORMAT_VERSION = 1
BUNDLED_FILENAME = "nomogram.json"
_Z95 = 1.959963984540054

Table = Mapping[str, Sequence[Any] | NDArray[Any]] | Sequence[Mapping[str, Any]]

#: How the logistic model is fitted: ``"none"`` = maximum likelihood (R's ``glm``),
#: ``"firth"`` = Firth's penalised likelihood (R's ``logistf``), finite under separation.
PENALTIES: dict[str, str] = {
    "none": "logistic regression (unpenalised, logit link), statsmodels GLM",
    "firth": "logistic regression, Firth's penalised likelihood (as R's logistf), logit link",
}


class SeparationError(InputError):
    """The training data are (quasi-)completely separated: the unpenalised fit does not exist.

    ``factors`` names the factors involved.
    """

    def __init__(self, message: str, *, factors: Sequence[str], hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.factors = tuple(factors)


def _expit(x: float | NDArray[np.float64]) -> Any:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


@dataclass(frozen=True, slots=True)
class TrainingSummary:
    """What the nomogram was fitted on: size, events, discrimination, provenance."""

    n: int
    events: int
    auc: float
    auc_ci95: tuple[float, float]
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "n": self.n,
            "events": self.events,
            "auc": self.auc,
            "auc_ci95": list(self.auc_ci95),
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class NomogramPrediction:
    """One patient's result.

    Attributes
    ----------
    inputs:
        The factor values used (binary factors as 0.0 / 1.0).
    points:
        Points per factor (rms scale: the widest factor spans 0–100).
    total_points:
        Sum of ``points``.
    linear_predictor, linear_predictor_se:
        Logit of the probability and its delta-method standard error.
    probability:
        Predicted probability of the outcome.
    ci95:
        95 % CI of ``probability`` (delta method on the logit).
    risk_group:
        ``"high"`` when ``probability ≥ cutoff``, else ``"low"``.
    cutoff:
        The training cohort's Youden-optimal probability threshold.
    warnings:
        Findings about the inputs, e.g. ``outside_training_range`` (the estimate is then an
        extrapolation; it is still computed).
    """

    inputs: Mapping[str, float]
    points: Mapping[str, float]
    total_points: float
    linear_predictor: float
    linear_predictor_se: float
    probability: float
    ci95: tuple[float, float]
    risk_group: str
    cutoff: float
    warnings: tuple[Finding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for ``result.json``)."""
        return {
            "inputs": dict(self.inputs),
            "points": {**dict(self.points), "total": self.total_points},
            "total_points": self.total_points,
            "linear_predictor": self.linear_predictor,
            "linear_predictor_se": self.linear_predictor_se,
            "probability": self.probability,
            "probability_ci95": list(self.ci95),
            "risk_group": self.risk_group,
            "cutoff": self.cutoff,
            "warnings": [w.to_dict() for w in self.warnings],
        }


def _columns(table: Table, names: Sequence[str]) -> tuple[dict[str, list[Any]], int]:
    """Turn a dict of columns or a list of row dicts into ``{name: list}`` for ``names``."""
    if isinstance(table, Mapping):
        missing = [n for n in names if n not in table]
        if missing:
            raise InputError(
                f"the table has no column {', '.join(repr(m) for m in missing)}",
                hint=f"columns present: {', '.join(map(str, table))}",
            )
        cols = {n: list(np.asarray(table[n], dtype=object)) for n in names}
        lengths = {len(c) for c in cols.values()}
        if len(lengths) > 1:
            raise InputError(f"the table's columns have different lengths: {sorted(lengths)}")
        return cols, lengths.pop() if lengths else 0
    rows = list(table)
    cols = {n: [] for n in names}
    for i, row in enumerate(rows):
        for n in names:
            if n not in row:
                raise InputError(f"row {i} of the table has no value for {n!r}")
            cols[n].append(row[n])
    return cols, len(rows)


def _coerce(factor: Factor, value: Any, *, where: str = "") -> float:
    """Validate one clinical value; return it as float (binary: 0.0 / 1.0)."""
    ctx = f" ({where})" if where else ""
    if value is None:
        raise ClinicalInputError(
            f"{factor.display_label} is missing{ctx}", hint=f"enter a value for {factor.name}"
        )
    if factor.kind == "binary":
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("yes", "true", "1"):
                return 1.0
            if low in ("no", "false", "0"):
                return 0.0
        elif isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating)) and float(
            value
        ) in (0.0, 1.0):
            return float(value)
        raise ClinicalInputError(
            f"{factor.display_label} must be yes or no, got {value!r}{ctx}",
            hint=f"pass {factor.name}=True or False",
        )
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, np.integer, float, np.floating)
    ):
        raise ClinicalInputError(
            f"{factor.display_label} must be a number, got {value!r}{ctx}",
            hint=f"enter {factor.name} in {factor.unit or 'its unit'}",
        )
    x = float(value)
    lo, hi = factor.valid_range
    if not math.isfinite(x):
        raise ClinicalInputError(f"{factor.display_label} is not a finite number{ctx}")
    if not lo <= x <= hi:
        unit = f" {factor.unit}" if factor.unit else ""
        raise ClinicalInputError(
            f"{factor.display_label} = {x:g}{unit} is outside the plausible range "
            f"{lo:g}–{hi:g}{unit}{ctx}",
            hint="check the value and its unit",
        )
    return x


@dataclass(frozen=True, eq=False)
class Nomogram:
    """A fitted logistic model with its rms-style points scale (see the module docstring).

    Construct with :meth:`fit` or :meth:`load`; the constructor validates consistency
    (coefficient per factor, covariance shape and symmetry, cutoff in (0, 1)). Immutable;
    equality is identity (compare ``to_dict()`` to compare contents).

    Attributes
    ----------
    factors:
        The factors, each with its resolved ``axis_range``.
    intercept:
        β₀.
    coefficients:
        β per factor name.
    covariance:
        Coefficient covariance, order ``(intercept, *factors)``.
    cutoff:
        Youden-optimal probability threshold in the training cohort.
    training_ranges:
        Observed ``(min, max)`` of each factor in the training cohort; predictions outside
        are flagged.
    training:
        :class:`TrainingSummary`.
    outcome, outcome_label:
        The modelled event, e.g. ``"recurrence"`` / ``"Recurrence"``.
    title:
        Name shown on figures, e.g. ``"Nomogram"`` or ``"Clinical model"``.
    cutoff_sensitivity, cutoff_specificity:
        Training sensitivity / specificity at the cutoff.
    created_utc, software_version:
        Provenance.
    penalty:
        How it was fitted, a key of :data:`PENALTIES` (``"none"`` or ``"firth"``).
    dlr_model:
        The model bundle whose DLR-scores it was fitted on: ``name``, ``version``,
        ``sha256`` (of the weights), or ``None`` when not recorded. The nomogram's
        coefficients only hold for that model's scores (see :meth:`model_pairing`).
    """

    factors: tuple[Factor, ...]
    intercept: float
    coefficients: Mapping[str, float]
    covariance: NDArray[np.float64]
    cutoff: float
    training_ranges: Mapping[str, tuple[float, float]]
    training: TrainingSummary
    outcome: str = "recurrence"
    outcome_label: str = "Recurrence"
    title: str = "Nomogram"
    cutoff_sensitivity: float = float("nan")
    cutoff_specificity: float = float("nan")
    created_utc: str = ""
    software_version: str = __version__
    penalty: str = "none"
    dlr_model: Mapping[str, str] | None = None
    _scale: float = field(init=False, repr=False, compare=False)
    _min_contrib: Mapping[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [f.name for f in self.factors]
        if not names:
            raise ValueError("a nomogram needs at least one factor")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate factor names: {names}")
        if set(self.coefficients) != set(names):
            raise ValueError(
                f"coefficients {sorted(self.coefficients)} do not match factors {sorted(names)}"
            )
        if any(f.axis_range is None for f in self.factors):
            raise ValueError("every factor needs an axis_range in a fitted nomogram")
        cov = np.asarray(self.covariance, dtype=float)
        k = len(names) + 1
        if cov.shape != (k, k):
            raise ValueError(f"covariance must be {k}×{k}, got {cov.shape}")
        if not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-12):
            raise ValueError("covariance must be finite and symmetric")
        if np.any(np.diag(cov) < 0):
            raise ValueError("covariance has a negative variance")
        values = [self.intercept, *self.coefficients.values()]
        if not all(math.isfinite(v) for v in values):
            raise ValueError("coefficients must be finite")
        if not 0.0 < self.cutoff < 1.0:
            raise ValueError(f"cutoff must be a probability in (0, 1), got {self.cutoff}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {sorted(PENALTIES)}, got {self.penalty!r}")
        if self.dlr_model is not None:
            info = {k: str(self.dlr_model.get(k, "")) for k in ("name", "version", "sha256")}
            if len(info["sha256"]) != 64:
                raise ValueError(f"dlr_model sha256 must be 64 hex digits, got {info['sha256']!r}")
            object.__setattr__(self, "dlr_model", MappingProxyType(info))
        cov.setflags(write=False)
        object.__setattr__(self, "covariance", cov)
        object.__setattr__(self, "coefficients", MappingProxyType(dict(self.coefficients)))
        object.__setattr__(self, "training_ranges", MappingProxyType(dict(self.training_ranges)))
        mins: dict[str, float] = {}
        spans: list[float] = []
        for f in self.factors:
            b = self.coefficients[f.name]
            lo, hi = f.axis_range  # type: ignore[misc]
            mins[f.name] = min(b * lo, b * hi)
            spans.append(abs(b * (hi - lo)))
        widest = max(spans)
        object.__setattr__(self, "_scale", 100.0 / widest if widest > 0 else 1.0)
        object.__setattr__(self, "_min_contrib", MappingProxyType(mins))

    # ------------------------------------------------------------------ points scale
    @property
    def factor_names(self) -> tuple[str, ...]:
        """Factor names in model order."""
        return tuple(f.name for f in self.factors)

    def factor(self, name: str) -> Factor:
        """The :class:`Factor` called ``name``."""
        for f in self.factors:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def points_per_logit(self) -> float:
        """``s``: points per unit of linear predictor (100 / widest factor span)."""
        return self._scale

    @property
    def lp_at_zero_points(self) -> float:
        """``a``: the linear predictor when the total points are 0."""
        return self.intercept + sum(self._min_contrib.values())

    def points_for(self, name: str, value: float) -> float:
        """Points of factor ``name`` at ``value`` (may leave 0–100 outside the axis range)."""
        return (self.coefficients[name] * float(value) - self._min_contrib[name]) * self._scale

    def value_for_points(self, name: str, points: float) -> float:
        """Inverse of :meth:`points_for` (continuous factors; β ≠ 0)."""
        b = self.coefficients[name]
        if b == 0:
            raise ValueError(f"factor {name!r} has a zero coefficient: points do not vary")
        return (points / self._scale + self._min_contrib[name]) / b

    @property
    def max_total_points(self) -> float:
        """Total points when every factor is at its highest-points end of the axis."""
        total = 0.0
        for f in self.factors:
            lo, hi = f.axis_range  # type: ignore[misc]
            total += max(self.points_for(f.name, lo), self.points_for(f.name, hi))
        return total

    def linear_predictor_for_points(self, total_points: float | NDArray[np.float64]) -> Any:
        """``LP = a + T / s``."""
        return self.lp_at_zero_points + np.asarray(total_points, dtype=float) / self._scale

    def points_for_linear_predictor(self, lp: float | NDArray[np.float64]) -> Any:
        """``T = (LP − a) · s``."""
        return (np.asarray(lp, dtype=float) - self.lp_at_zero_points) * self._scale

    def probability_for_points(self, total_points: float | NDArray[np.float64]) -> Any:
        """Probability at ``total_points``."""
        return _expit(self.linear_predictor_for_points(total_points))

    def points_for_probability(self, probability: float | NDArray[np.float64]) -> Any:
        """Total points giving ``probability`` (0 < p < 1)."""
        p = np.asarray(probability, dtype=float)
        return self.points_for_linear_predictor(np.log(p / (1 - p)))

    # ------------------------------------------------------------------ prediction
    def predict(self, **factors: Any) -> NomogramPrediction:
        """Predict one patient: ``predict(dlr_score=0.6, asthma=True, ...)``.

        Every factor of the model must be given; binary factors as ``True``/``False`` (or 1/0,
        "yes"/"no"). A missing, unknown, malformed or implausible value raises
        :class:`~sinusapp.errors.ClinicalInputError`; a plausible value outside the training
        cohort's range is accepted and flagged in ``warnings``.
        """
        unknown = sorted(set(factors) - set(self.factor_names))
        if unknown:
            raise ClinicalInputError(
                f"unknown clinical factor(s) {', '.join(unknown)} for this nomogram",
                hint=f"it uses: {', '.join(self.factor_names)}",
            )
        missing = [f for f in self.factors if f.name not in factors]
        if missing:
            raise ClinicalInputError(
                "missing clinical factor(s): "
                + ", ".join(f"{f.display_label} ({f.name})" for f in missing),
                hint=f"this nomogram needs: {', '.join(self.factor_names)}",
            )
        x = {f.name: _coerce(f, factors[f.name]) for f in self.factors}
        found: list[Finding] = []
        for f in self.factors:
            if f.kind != "continuous":
                continue
            lo, hi = self.training_ranges.get(f.name, (-math.inf, math.inf))
            if not lo <= x[f.name] <= hi:
                unit = f" {f.unit}" if f.unit else ""
                found.append(
                    Finding(
                        code="outside_training_range",
                        severity=Severity.WARNING,
                        message=(
                            f"{f.label} {x[f.name]:g}{unit} is outside the range of the training "
                            f"cohort ({lo:g}–{hi:g}{unit}); the estimate is an extrapolation."
                        ),
                        value=x[f.name],
                        unit=f.unit,
                    )
                )
        pts = {f.name: self.points_for(f.name, x[f.name]) for f in self.factors}
        total = float(sum(pts.values()))
        vec = np.array([1.0, *(x[n] for n in self.factor_names)])
        lp = float(self.intercept + sum(self.coefficients[n] * x[n] for n in self.factor_names))
        se = float(np.sqrt(max(vec @ self.covariance @ vec, 0.0)))
        prob = float(_expit(lp))
        ci = (float(_expit(lp - _Z95 * se)), float(_expit(lp + _Z95 * se)))
        return NomogramPrediction(
            inputs=MappingProxyType(x),
            points=MappingProxyType(pts),
            total_points=total,
            linear_predictor=lp,
            linear_predictor_se=se,
            probability=prob,
            ci95=ci,
            risk_group="high" if prob >= self.cutoff else "low",
            cutoff=self.cutoff,
            warnings=tuple(found),
        )

    def design_matrix(self, table: Table) -> NDArray[np.float64]:
        """The factor values of every row of ``table`` (validated), shape ``(n, k)``."""
        cols, n = _columns(table, self.factor_names)
        out = np.empty((n, len(self.factors)))
        for j, f in enumerate(self.factors):
            for i, v in enumerate(cols[f.name]):
                out[i, j] = _coerce(f, v, where=f"row {i}")
        return out

    def predict_proba(self, table: Table) -> NDArray[np.float64]:
        """Predicted probabilities for every row of ``table`` (dict of columns or row dicts)."""
        x = self.design_matrix(table)
        beta = np.array([self.coefficients[n] for n in self.factor_names])
        return _expit(self.intercept + x @ beta)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        table: Table,
        *,
        outcome: str = "recurrence",
        factors: Sequence[Factor] = DEFAULT_FACTORS,
        title: str = "Nomogram",
        outcome_label: str = "Recurrence",
        description: str = "",
        penalty: str = "none",
        dlr_model: Mapping[str, str] | None = None,
    ) -> Nomogram:
        """Fit the nomogram by logistic regression (as R's ``glm``, or ``logistf`` with Firth).

        Parameters
        ----------
        table:
            The training cohort, either a dict of equally long columns (``{"recurrence":
            array, "dlr_score": array, ...}``) or a list of per-patient dicts.
        outcome:
            Column holding the event (True/1 = event).
        factors:
            The predictors (default: DLR-score, asthma, allergic rhinitis, eosinophils).
        title, outcome_label, description:
            Shown on figures / stored in the training summary.
        penalty:
            ``"none"`` (maximum likelihood, the paper's fit) or ``"firth"`` (Firth's
            penalised likelihood, finite under separation; see :mod:`sinusapp.stats.logistic`).
        dlr_model:
            ``name`` / ``version`` / ``sha256`` of the bundle that produced the DLR-scores.

        Raises
        ------
        SeparationError
            ``penalty="none"`` and the data are (quasi-)completely separated (e.g. every
            patient with asthma recurred): the message names the factor(s). Refit with
            ``penalty="firth"`` or collect more data.
        InputError
            A column is missing, the outcome is not 0/1, there are fewer than 2 events or
            non-events, or the fit does not converge.
        ClinicalInputError
            A factor value is malformed or implausible (the message names the row).
        """
        import statsmodels.api as sm

        from sinusapp.stats import auc_ci, youden_cutoff

        factors = tuple(factors)
        names = [f.name for f in factors]
        cols, n = _columns(table, [outcome, *names])
        try:
            y = np.array([float(v) for v in cols[outcome]])
        except (TypeError, ValueError) as exc:
            raise InputError(f"outcome column {outcome!r} must be 0/1 or True/False") from exc
        if not np.all(np.isin(y, (0.0, 1.0))):
            raise InputError(f"outcome column {outcome!r} must contain only 0/1 or True/False")
        events = int(y.sum())
        if events < 2 or n - events < 2:
            raise InputError(
                f"cannot fit: {events} events and {n - events} non-events in {n} patients",
                hint="the training cohort needs at least 2 of each",
            )
        x = np.empty((n, len(factors)))
        for j, f in enumerate(factors):
            for i, v in enumerate(cols[f.name]):
                x[i, j] = _coerce(f, v, where=f"row {i}")
        if events / len(factors) < 10 or (n - events) / len(factors) < 10:
            log.warning(
                "fewer than 10 events per factor (%d events, %d non-events, %d factors): "
                "the nomogram may be overfitted",
                events,
                n - events,
                len(factors),
            )
        if penalty not in PENALTIES:
            raise InputError(f"penalty must be one of {sorted(PENALTIES)}, got {penalty!r}")
        exog = sm.add_constant(x, has_constant="add")
        if penalty == "firth":
            from sinusapp.stats.logistic import firth_logistic

            try:
                firth = firth_logistic(y, x)
            except (ValueError, RuntimeError) as exc:
                raise InputError(f"the Firth-penalised fit failed: {exc}") from exc
            params, cov, converged = firth.params, firth.covariance, True
        else:
            from sinusapp.stats.logistic import describe_separation, detect_separation

            sep = detect_separation(y, x)
            if sep.separated:
                names = [factors[j].display_label for j in sep.columns]
                raise SeparationError(
                    "the training data are separated, so the unpenalised logistic regression "
                    "has no finite estimate (the fit would report a huge coefficient and "
                    "100 % risks): "
                    + describe_separation(y, x, sep, labels=[f.display_label for f in factors]),
                    factors=[factors[j].name for j in sep.columns] or names,
                    hint="fit with Firth's penalised likelihood (penalty='firth'), drop the "
                    "factor, or collect more patients",
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sm.GLM(y, exog, family=sm.families.Binomial()).fit()
            params = np.asarray(res.params, dtype=float)
            cov = np.asarray(res.cov_params(), dtype=float)
            converged = bool(getattr(res, "converged", True))
        if not converged or not np.all(np.isfinite(params)) or not np.all(np.isfinite(cov)):
            raise InputError(
                "the logistic regression did not converge (complete separation or a constant "
                "factor?)",
                hint="check the training data; a factor that perfectly predicts the outcome "
                "cannot be fitted without penalisation",
            )
        prob = _expit(exog @ params)
        auc = auc_ci(y, prob)
        cut = youden_cutoff(y, prob)
        resolved: list[Factor] = []
        ranges: dict[str, tuple[float, float]] = {}
        for j, f in enumerate(factors):
            lo, hi = float(x[:, j].min()), float(x[:, j].max())
            ranges[f.name] = (lo, hi)
            if f.axis_range is None:
                a, b = nice_range(lo, hi)
                a, b = max(a, f.valid_range[0]), min(b, f.valid_range[1])
                if not a < b:
                    a, b = f.valid_range
                resolved.append(f.with_axis_range((a, b)))
            else:
                resolved.append(f)
        cutoff = float(min(max(cut.threshold, 1e-6), 1 - 1e-6))
        return cls(
            factors=tuple(resolved),
            intercept=float(params[0]),
            coefficients={nm: float(params[j + 1]) for j, nm in enumerate(names)},
            covariance=cov,
            cutoff=cutoff,
            training_ranges=ranges,
            training=TrainingSummary(
                n=n,
                events=events,
                auc=auc.auc,
                auc_ci95=(auc.low, auc.high),
                description=description,
            ),
            outcome=outcome,
            outcome_label=outcome_label,
            title=title,
            cutoff_sensitivity=cut.sensitivity,
            cutoff_specificity=cut.specificity,
            created_utc=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            penalty=penalty,
            dlr_model=dlr_model,
        )

    # ------------------------------------------------------------------ model pairing
    def model_pairing(self, model_info: Mapping[str, Any] | None) -> Finding | None:
        """Whether this nomogram belongs to the model bundle described by ``model_info``.

        The DLR-score coefficient holds only for the scores of the model the nomogram was
        fitted on; another model's scores sit on another scale. Returns ``None`` when the
        recorded ``dlr_model`` sha256 equals ``model_info["sha256"]``; an ``error`` finding
        (code ``nomogram_model_mismatch``) when they differ; a ``warning`` finding
        (``nomogram_model_unknown``) when the nomogram records no model.
        """
        sha = str((model_info or {}).get("sha256", ""))
        name = str((model_info or {}).get("name", "")) or "the model"
        if self.dlr_model is None:
            return Finding(
                code="nomogram_model_unknown",
                severity=Severity.WARNING,
                message="the nomogram does not record which model's DLR-scores it was fitted "
                f"on, so it cannot be checked against {name} (sha256 {sha[:12]}…)",
            )
        if sha != self.dlr_model["sha256"]:
            return Finding(
                code="nomogram_model_mismatch",
                severity=Severity.ERROR,
                message=f"the nomogram was fitted on the DLR-scores of model "
                f"'{self.dlr_model['name']}' {self.dlr_model['version']} (sha256 "
                f"{self.dlr_model['sha256'][:12]}…), not of {name} (sha256 {sha[:12]}…): "
                "its risks do not hold for this model",
            )
        return None

    # ------------------------------------------------------------------ layout
    def layout(self, prediction: NomogramPrediction | None = None, **options: Any) -> Any:
        """Shortcut for :func:`sinusapp.nomogram.layout.build_layout`."""
        from sinusapp.nomogram.layout import build_layout

        return build_layout(self, prediction=prediction, **options)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """The JSON document (see :meth:`save`)."""
        factors = []
        for f in self.factors:
            d = f.to_dict()
            d["training_range"] = list(self.training_ranges[f.name])
            factors.append(d)
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "software_version": self.software_version,
            "created_utc": self.created_utc,
            "title": self.title,
            "outcome": {"name": self.outcome, "label": self.outcome_label},
            "model": PENALTIES[self.penalty],
            "penalty": self.penalty,
            "dlr_model": dict(self.dlr_model) if self.dlr_model is not None else None,
            "factors": factors,
            "coefficients": {"intercept": self.intercept, **dict(self.coefficients)},
            "covariance": {
                "terms": ["intercept", *self.factor_names],
                "matrix": self.covariance.tolist(),
            },
            "cutoff": {
                "method": "youden",
                "probability": self.cutoff,
                "sensitivity": self.cutoff_sensitivity,
                "specificity": self.cutoff_specificity,
            },
            "training": self.training.to_dict(),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON file atomically; raise :class:`OutputError` if it cannot be written.

        The file holds: ``format`` / ``format_version``, ``software_version``,
        ``created_utc``, ``title``, ``outcome``, ``factors`` (name, label, unit, kind,
        valid_range, axis_range, training_range), ``coefficients`` (intercept + per factor),
        ``covariance`` (terms + matrix), ``cutoff`` (Youden probability, sensitivity,
        specificity) and ``training`` (n, events, auc, auc_ci95, description).
        """
        target = Path(path)
        text = json.dumps(_finite_or_none(self.to_dict()), indent=2, allow_nan=False)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot write the nomogram file: {exc.strerror or exc}",
                path=target,
                hint="choose a folder you can write to",
            ) from exc
        return write_text_atomic(text + "\n", target, what="the nomogram file")

    @classmethod
    def from_dict(cls, data: Any, *, source: str | Path | None = None) -> Nomogram:
        """Build from the JSON document, validating it; raise :class:`NomogramFileError`."""
        return _from_dict(cls, data, source)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Nomogram:
        """Load and validate a nomogram JSON file.

        ``path=None`` loads the bundled one, ``sinusapp.resources.models_dir() /
        "nomogram.json"``. A missing, unreadable, malformed or inconsistent file raises
        :class:`~sinusapp.errors.NomogramFileError` naming the file and the problem.
        """
        if path is None:
            from sinusapp.resources import models_dir

            try:
                target = models_dir() / BUNDLED_FILENAME
            except FileNotFoundError as exc:
                raise NomogramFileError(str(exc)) from exc
        else:
            target = Path(path)
        hint_missing = (
            "fit one (see sinusapp.nomogram.fit: `sinusapp evaluate` or "
            "`python -m sinusapp.nomogram.fit`) or reinstall SinusApp"
        )
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise NomogramFileError(
                "the nomogram file does not exist", path=target, hint=hint_missing
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise NomogramFileError(
                f"the nomogram file cannot be read: {exc}", path=target
            ) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NomogramFileError(
                f"the nomogram file is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg})",
                path=target,
            ) from exc
        return _from_dict(cls, data, target)


def _finite_or_none(obj: Any) -> Any:
    """Replace NaN / inf floats by ``None`` so the file is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def _from_dict(cls: type[Nomogram], data: Any, source: str | Path | None) -> Nomogram:
    def fail(problem: str) -> NomogramFileError:
        return NomogramFileError(
            f"invalid nomogram file: {problem}",
            path=source,
            hint="refit the nomogram or restore the original file",
        )

    def num(v: Any, what: str, *, allow_none: bool = False) -> float:
        if v is None and allow_none:
            return math.nan
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise fail(f"{what} must be a number, got {v!r}")
        return float(v)

    def pair(v: Any, what: str, *, allow_none: bool = False) -> tuple[float, float]:
        if not isinstance(v, list) or len(v) != 2:
            raise fail(f"{what} must be a list of two numbers, got {v!r}")
        return num(v[0], what, allow_none=allow_none), num(v[1], what, allow_none=allow_none)

    def need(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if key not in d:
            raise fail(f"'{key}' is missing{where}")
        if not isinstance(d[key], kind):
            raise fail(f"'{key}'{where} has the wrong type ({type(d[key]).__name__})")
        return d[key]

    if not isinstance(data, dict):
        raise fail("the top level must be a JSON object")
    if data.get("format") != FORMAT_NAME:
        raise fail(f"'format' must be {FORMAT_NAME!r}, got {data.get('format')!r}")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise fail(
            f"format_version {version!r} is not supported (this SinusApp reads {FORMAT_VERSION})"
        )
    raw_factors = need(data, "factors", list, "")
    if not raw_factors:
        raise fail("'factors' is empty")
    factors: list[Factor] = []
    ranges: dict[str, tuple[float, float]] = {}
    for i, rf in enumerate(raw_factors):
        where = f" in factor {i}"
        if not isinstance(rf, dict):
            raise fail(f"factor {i} must be an object")
        name = need(rf, "name", str, where)
        where = f" in factor {name!r}"
        kind = need(rf, "kind", str, where)
        if kind not in ("continuous", "binary"):
            raise fail(f"kind of factor {name!r} must be 'continuous' or 'binary', got {kind!r}")
        lo, hi = pair(
            need(rf, "valid_range", list, where), f"valid_range of {name!r}", allow_none=True
        )
        lo = -math.inf if math.isnan(lo) else lo
        hi = math.inf if math.isnan(hi) else hi
        axis = pair(need(rf, "axis_range", list, where), f"axis_range of {name!r}")
        ranges[name] = pair(need(rf, "training_range", list, where), f"training_range of {name!r}")
        try:
            factors.append(
                Factor(
                    name=name,
                    label=need(rf, "label", str, where),
                    unit=need(rf, "unit", str, where),
                    kind=kind,  # type: ignore[arg-type]
                    valid_range=(lo, hi),
                    axis_range=axis,
                )
            )
        except ValueError as exc:
            raise fail(str(exc)) from exc
    names = [f.name for f in factors]
    coef = need(data, "coefficients", dict, "")
    expected = {"intercept", *names}
    if set(coef) != expected:
        raise fail(f"'coefficients' must have exactly {sorted(expected)}, got {sorted(coef)}")
    coefficients = {n: num(coef[n], f"coefficient of {n!r}") for n in names}
    cov_d = need(data, "covariance", dict, "")
    terms = need(cov_d, "terms", list, " in 'covariance'")
    if terms != ["intercept", *names]:
        raise fail(f"covariance terms {terms} do not match ['intercept', *factors] = {names}")
    matrix = need(cov_d, "matrix", list, " in 'covariance'")
    k = len(names) + 1
    if len(matrix) != k or any(not isinstance(r, list) or len(r) != k for r in matrix):
        raise fail(f"the covariance matrix must be {k}×{k}")
    cov = np.array([[num(v, "covariance entry") for v in r] for r in matrix])
    cut_d = need(data, "cutoff", dict, "")
    cutoff = num(need(cut_d, "probability", (int, float), " in 'cutoff'"), "cutoff probability")
    tr = need(data, "training", dict, "")
    auc_ci95 = pair(
        need(tr, "auc_ci95", list, " in 'training'"), "training auc_ci95", allow_none=True
    )
    training = TrainingSummary(
        n=int(num(need(tr, "n", int, " in 'training'"), "training n")),
        events=int(num(need(tr, "events", int, " in 'training'"), "training events")),
        auc=num(need(tr, "auc", (int, float), " in 'training'"), "training auc"),
        auc_ci95=auc_ci95,
        description=str(tr.get("description", "")),
    )
    if not 0 < training.events < training.n:
        raise fail(f"training events ({training.events}) must be between 0 and n ({training.n})")
    outcome = data.get("outcome", {})
    if not isinstance(outcome, dict):
        raise fail("'outcome' must be an object")
    dlr_model = data.get("dlr_model")
    if dlr_model is not None and (
        not isinstance(dlr_model, dict) or not isinstance(dlr_model.get("sha256"), str)
    ):
        raise fail("'dlr_model' must be null or an object with name, version and sha256")
    try:
        return cls(
            factors=tuple(factors),
            intercept=num(coef["intercept"], "intercept"),
            coefficients=coefficients,
            covariance=cov,
            cutoff=cutoff,
            training_ranges=ranges,
            training=training,
            outcome=str(outcome.get("name", "recurrence")),
            outcome_label=str(outcome.get("label", "Recurrence")),
            title=str(data.get("title", "Nomogram")),
            cutoff_sensitivity=num(cut_d.get("sensitivity"), "cutoff sensitivity", allow_none=True),
            cutoff_specificity=num(cut_d.get("specificity"), "cutoff specificity", allow_none=True),
            created_utc=str(data.get("created_utc", "")),
            software_version=str(data.get("software_version", "")),
            penalty=str(data.get("penalty", "none")),
            dlr_model=dlr_model,
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc
