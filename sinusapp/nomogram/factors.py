"""The factors a nomogram is built from: data, not code.

A hospital that refits the nomogram on its own cohort with other significant factors passes
its own list of :class:`Factor`; nothing else in SinusApp names the factors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "APP_FACTOR_NAMES",
    "CLINICAL_FACTORS",
    "DEFAULT_FACTORS",
    "Factor",
    "FactorKind",
    "check_app_factors",
]

FactorKind = Literal["continuous", "binary"]


@dataclass(frozen=True, slots=True)
class Factor:
    """One predictor of the nomogram.

    Attributes
    ----------
    name:
        Identifier, also the keyword of :meth:`Nomogram.predict` (``"eosinophils_per_ul"``).
    label:
        What a clinician reads on the axis (``"Eosinophils"``).
    unit:
        Unit of a continuous factor, shown after the label (``"cells/µL"``); ``""`` if none.
    kind:
        ``"continuous"`` or ``"binary"`` (yes/no, coded 1/0).
    valid_range:
        Plausible values ``(low, high)``, inclusive; a value outside is refused as a clinical
        input error (most often a unit mix-up). Binary factors: ``(0, 1)``.
    axis_range:
        The values the nomogram axis spans ``(low, high)``; points are scaled over this range
        (as ``rms::nomogram`` over the datadist limits). ``None``: chosen at fit time from the
        training data (rounded outwards to a round number).
    """

    name: str
    label: str
    unit: str = ""
    kind: FactorKind = "continuous"
    valid_range: tuple[float, float] = (-math.inf, math.inf)
    axis_range: tuple[float, float] | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"factor name must be a Python identifier, got {self.name!r}")
        if self.kind not in ("continuous", "binary"):
            raise ValueError(f"factor {self.name!r}: kind must be 'continuous' or 'binary'")
        lo, hi = self.valid_range
        if not lo < hi:
            raise ValueError(f"factor {self.name!r}: valid_range low must be < high")
        if self.kind == "binary":
            object.__setattr__(self, "valid_range", (0.0, 1.0))
            object.__setattr__(self, "axis_range", (0.0, 1.0))
        elif self.axis_range is not None:
            a, b = self.axis_range
            if not (math.isfinite(a) and math.isfinite(b) and a < b):
                raise ValueError(f"factor {self.name!r}: axis_range must be finite, low < high")

    @property
    def display_label(self) -> str:
        """Label with unit, e.g. ``"Eosinophils (cells/µL)"``."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def with_axis_range(self, axis_range: tuple[float, float]) -> Factor:
        """A copy with ``axis_range`` set."""
        return replace(self, axis_range=(float(axis_range[0]), float(axis_range[1])))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (infinite bounds as ``null``)."""

        def _num(v: float) -> float | None:
            return None if math.isinf(v) else float(v)

        return {
            "name": self.name,
            "label": self.label,
            "unit": self.unit,
            "kind": self.kind,
            "valid_range": [_num(self.valid_range[0]), _num(self.valid_range[1])],
            "axis_range": list(self.axis_range) if self.axis_range is not None else None,
        }


#: The paper's nomogram: DLR-score + the clinical factors significant in univariate analysis.
DEFAULT_FACTORS: tuple[Factor, ...] = (
    # The DLR-score axis spans the fitted cohort's scores (rms convention), not 0–1: a model
    # whose scores cluster would otherwise squeeze every clinical factor to a few points.
    Factor("dlr_score", "DLR-score", "", "continuous", (0.0, 1.0)),
    Factor("asthma", "Asthma", "", "binary"),
    Factor("allergic_rhinitis", "Allergic rhinitis", "", "binary"),
    # 0–10 000 cells/µL: above that is almost surely a unit mix-up (cells/mL, or ×10⁹/L
    # typed as cells/µL the other way round); hypereosinophilic syndromes stay below.
    Factor("eosinophils_per_ul", "Eosinophils", "cells/µL", "continuous", (0.0, 10000.0)),
)

#: The paper's clinical model: the clinical factors alone.
CLINICAL_FACTORS: tuple[Factor, ...] = DEFAULT_FACTORS[1:]

#: The factors the app can supply to a nomogram: the model's DLR-score and the clinical form.
APP_FACTOR_NAMES: frozenset[str] = frozenset(f.name for f in DEFAULT_FACTORS)


def check_app_factors(nomogram: Any, *, source: Any = None) -> None:
    """Refuse a nomogram (at load, before any analysis) that needs a factor the app lacks.

    A refitted nomogram may use any factors for research, but the app fills only
    :data:`APP_FACTOR_NAMES`; an unknown one would fail only after the whole analysis.

    Raises
    ------
    sinusapp.errors.NomogramFileError
        Naming the unknown factors and the ones the app supplies.
    """
    from sinusapp.errors import NomogramFileError

    names = [getattr(f, "name", f) for f in getattr(nomogram, "factors", ())]
    unknown = [n for n in names if n not in APP_FACTOR_NAMES]
    if unknown:
        raise NomogramFileError(
            f"the nomogram uses factor(s) {unknown} that SinusApp cannot supply (it supplies "
            f"{sorted(APP_FACTOR_NAMES)})",
            path=source,
            hint="use a nomogram fitted on these factors (or the bundled one)",
        )
