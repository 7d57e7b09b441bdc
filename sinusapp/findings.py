"""Structured findings about input quality.

Checks never return free text: each problem is a :class:`Finding` with a stable ``code``
(which tests, the GUI and the report can act on), a ``severity``, a human ``message`` and,
where one was measured, the ``value`` (with its unit in ``unit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Finding", "Severity"]


class Severity(StrEnum):
    """How much a finding matters for the analysis."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem (or notable fact) found in the input.

    Attributes
    ----------
    code:
        Stable identifier, e.g. ``"gantry_tilt"``, ``"missing_slices"``.
    severity:
        :class:`Severity`; ``error`` means the input cannot be used as it is.
    message:
        One sentence for a clinician, with the measured value.
    value:
        The measured quantity, if any (e.g. tilt in degrees, gap in mm).
    unit:
        Unit of ``value`` (``"deg"``, ``"mm"``, ``"slices"``...), empty when unitless.
    """

    code: str
    severity: Severity
    message: str
    value: float | None = None
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        d = asdict(self)
        d["severity"] = str(self.severity)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """The inverse of :meth:`to_dict` (e.g. to restore findings from a ``result.json``)."""
        value = data.get("value")
        return cls(
            code=str(data["code"]),
            severity=Severity(str(data["severity"])),
            message=str(data["message"]),
            value=None if value is None else float(value),
            unit=str(data.get("unit", "")),
        )
