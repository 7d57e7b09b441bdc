"""Importing sinusapp.model must stay cheap: no torch until a Predictor or training starts."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, sinusapp.model, sinusapp.cli.train, sinusapp.model.preprocess; "
        "bad = [m for m in ('torch', 'safetensors', 'PySide6', 'pyqtgraph') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"imported eagerly: {proc.stdout} {proc.stderr}"


def test_public_names() -> None:
    import sinusapp.model as m

    for name in ("Predictor", "FakePredictor", "Cancelled", "PredictionResult", "load_bundle"):
        assert hasattr(m, name)
    assert issubclass(m.Cancelled, Exception)
    from sinusapp.errors import SinusAppError

    assert not issubclass(m.Cancelled, SinusAppError)
