"""DICOM: examine a folder / CD / DICOMDIR, rank series, build a Volume, keep a catalogue.

Public API: :func:`scan` (headers only: patients → studies → series, candidates, findings,
skipped files) and :func:`load_volume` (the proposed or the named series as a
:class:`~sinusapp.imaging.Volume`).

The volume loader's names are imported at first use (PEP 562), so ``import
sinusapp.dicom.catalogue`` (the GUI's start-up) imports neither pydicom nor the loader;
:func:`scan` is bound here eagerly (it must shadow the ``sinusapp.dicom.scan`` submodule) and
imports pydicom only when it reads a file. pydicom's reading settings are made in
:mod:`sinusapp.dicom._pydicom`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sinusapp.dicom.scan import ScanResult, SeriesEntry, scan

if TYPE_CHECKING:
    from sinusapp.dicom.series import load_volume, read_frame_hu, volume_from_headers

__all__ = [
    "ScanResult",
    "SeriesEntry",
    "load_volume",
    "read_frame_hu",
    "scan",
    "volume_from_headers",
]

_WHERE = {
    "load_volume": "sinusapp.dicom.series",
    "read_frame_hu": "sinusapp.dicom.series",
    "volume_from_headers": "sinusapp.dicom.series",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sinusapp.dicom' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
