"""DICOM: examine a folder / CD / DICOMDIR, rank series, build a Volume, keep a catalogue.

Public API: :func:`scan` (headers only: patients → studies → series, candidates, findings,
skipped files) and :func:`load_volume` (the proposed or the named series as a
:class:`~sinusapp.imaging.Volume`).
"""

import pydicom

from sinusapp.dicom.scan import ScanResult, SeriesEntry, scan
from sinusapp.dicom.series import load_volume, read_frame_hu, volume_from_headers

# Real-world files break the standard in small ways (over-long UIDs, bad VRs); read them
# tolerantly rather than warn on every file. Problems that matter are reported as findings.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

__all__ = [
    "ScanResult",
    "SeriesEntry",
    "load_volume",
    "read_frame_hu",
    "scan",
    "volume_from_headers",
]
