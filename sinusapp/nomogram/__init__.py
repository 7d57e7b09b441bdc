"""The nomogram: DLR-score + clinical factors → points → probability of recurrence, with CI.

- :class:`Nomogram` — fit (:meth:`Nomogram.fit`, unpenalised logistic regression as R's
  ``glm``), predict (:meth:`Nomogram.predict` → :class:`NomogramPrediction`), save / load the
  JSON file (:meth:`Nomogram.load` with ``path=None`` loads the bundled one).
- :class:`Factor`, :data:`DEFAULT_FACTORS` (the paper's four), :data:`CLINICAL_FACTORS`.
- :func:`build_layout` / :class:`NomogramLayout` in :mod:`sinusapp.nomogram.layout` — the
  drawing as pure data, shared by the Qt widget and the PDF report.
"""

from sinusapp.nomogram.factors import CLINICAL_FACTORS, DEFAULT_FACTORS, Factor
from sinusapp.nomogram.layout import AxisRow, Mark, NomogramLayout, Tick, build_layout
from sinusapp.nomogram.model import Nomogram, NomogramPrediction, TrainingSummary

__all__ = [
    "CLINICAL_FACTORS",
    "DEFAULT_FACTORS",
    "AxisRow",
    "Factor",
    "Mark",
    "Nomogram",
    "NomogramLayout",
    "NomogramPrediction",
    "Tick",
    "TrainingSummary",
    "build_layout",
]
