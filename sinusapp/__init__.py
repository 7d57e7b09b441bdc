"""SinusApp: preoperative risk of chronic rhinosinusitis recurrence from sinus CT.

The logic packages (``dicom``, ``imaging``, ``model``, ``synth``, ``stats``, ``nomogram``,
``report``, ``pipeline``) never import Qt; only :mod:`sinusapp.ui` does. torch is imported
only when a model is created, so importing :mod:`sinusapp` stays fast.
"""

from sinusapp._version import __version__

__all__ = ["__version__"]
