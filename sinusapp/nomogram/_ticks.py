"""Round numbers for axes: steps of 1, 2, 2.5 or 5 × 10^k, and their labels."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["format_tick", "nice_range", "nice_step", "nice_ticks"]


def nice_step(span: float, target: int = 5) -> float:
    """A round step (1, 2, 2.5, 5 × 10^k) giving about ``target`` intervals over ``span``."""
    if not span > 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * mag * (1 + 1e-9):
            return m * mag
    return 10 * mag


def nice_range(low: float, high: float, target: int = 5) -> tuple[float, float]:
    """``(low, high)`` widened outwards to multiples of :func:`nice_step`."""
    if high <= low:
        high = low + 1.0
    step = nice_step(high - low, target)
    return math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values within ``[low, high]`` (inclusive, with a tolerance)."""
    step = nice_step(high - low, target)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [float(np.round(k * step, 10)) for k in range(first, last + 1)]


def format_tick(value: float, step: float) -> str:
    """Label for ``value`` with as many decimals as ``step`` needs (no ``-0``)."""
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text
