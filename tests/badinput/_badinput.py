"""Helpers of the bad-input corpus: find, edit and inspect the slices of a test series."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pydicom


def slices(folder: Path) -> list[Path]:
    return sorted(folder.glob("im*.dcm"))


def edit_slices(
    folder: Path, edit: Callable[[int, pydicom.Dataset], None], *, only: range | None = None
) -> None:
    """Rewrite slices with ``edit(k, ds)`` (invalid values written as they are)."""
    files = slices(folder)
    for k, f in enumerate(files):
        if only is not None and k not in only:
            continue
        ds = pydicom.dcmread(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edit(k, ds)
            ds.save_as(f)


def series_findings(scan: dict) -> list[dict]:
    """Every finding of every series in a ``scan --json`` output."""
    return [
        f
        for p in scan["patients"]
        for st in p["studies"]
        for s in st["series"]
        for f in s["findings"]
    ]
