"""pydicom, configured once for the files SinusApp meets.

Real-world files break the standard in small ways (over-long UIDs, bad VRs); they are read
tolerantly rather than warned about on every file (problems that matter are reported as
findings). Every module of :mod:`sinusapp.dicom` that reads DICOM imports pydicom through
here, at first use, so importing :mod:`sinusapp.dicom` (the catalogue, at GUI start-up) does
not import pydicom.
"""

from __future__ import annotations

import pydicom
from pydicom.errors import InvalidDicomError

pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

__all__ = ["InvalidDicomError", "pydicom"]
