"""Start-up: the command's arguments, no torch at start-up, the bundled model (when present)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_gui_command_arguments_and_light_import():
    code = (
        "import sys, argparse; import sinusapp.cli.gui as c; "
        "p = argparse.ArgumentParser(); c.add_arguments(p); "
        "a = p.parse_args(['/data/cd']); assert a.path == '/data/cd'; "
        "assert p.parse_args([]).path is None; "
        "assert 'PySide6' not in sys.modules, 'Qt imported by sinusapp.cli.gui'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_window_starts_without_importing_torch(tmp_path):
    code = (
        "import sys\n"
        "from sinusapp.ui.app import create_main_window, ensure_app\n"
        "app = ensure_app(); w = create_main_window(); w.show(); app.processEvents()\n"
        "assert w.isVisible()\n"
        "print('torch' in sys.modules)\n"
        "w.close()\n"
    )
    env = dict(os.environ, SINUSAPP_HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen")
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_analysis_with_bundled_model(qtbot, make_window, tmp_path):
    from sinusapp.model import bundled_model_dir

    if not (bundled_model_dir() / "manifest.json").is_file():
        pytest.skip(f"no bundled model at {bundled_model_dir()} (trained by the model issue)")
    from sinusapp.model import Predictor
    from sinusapp.model.testing import make_sinus_phantom
    from tests.ui.conftest import write_ct_series

    vol, _ = make_sinus_phantom(shape=(64, 96, 96), spacing_mm=(2.0, 2.2, 2.2))
    write_ct_series(tmp_path / "case", vol)
    w = make_window(predictor_factory=lambda: Predictor(device="cpu"))
    with qtbot.waitSignal(w.session.volume_changed, timeout=60_000):
        w.import_path(tmp_path / "case", open_after=True)
    w.form.set_raw({"asthma": True, "allergic_rhinitis": False, "eosinophils": "300"})
    w.session.set_clinical(w.form.raw())
    with qtbot.waitSignal(w.session.result_changed, timeout=300_000):
        w.start_analysis()
    r = w.session.result
    assert r is not None and 0.0 <= r.dlr_score <= 1.0
    assert r.mask.shape == vol.shape and np.issubdtype(r.mask.dtype, np.integer)
    assert r.model is not None and r.model.version


def test_argparse_namespace_without_path_runs(monkeypatch):
    import sinusapp.ui as ui
    from sinusapp.cli import gui as command

    seen = {}
    monkeypatch.setattr(ui, "run_app", lambda **kw: seen.update(kw) or 0)
    assert command.run(argparse.Namespace(path=None)) == 0
    assert seen == {"import_path": None}


def test_second_instance_on_the_same_data_is_refused(qtbot, monkeypatch):
    """Issue 12 item 5: two instances could edit the same catalogue and case records."""
    from PySide6 import QtWidgets

    from sinusapp.ui import app as app_mod

    first = app_mod.acquire_instance_lock()
    assert first is not None and first.isLocked()
    try:
        assert app_mod.acquire_instance_lock() is None
        shown = []
        monkeypatch.setattr(QtWidgets.QMessageBox, "critical", lambda *a, **k: shown.append(a[2]))
        monkeypatch.setattr(
            app_mod, "create_main_window", lambda **k: pytest.fail("a second window opened")
        )
        assert app_mod.run_app() == 1
        assert shown and "already running" in shown[0] and str(os.getpid()) in shown[0]
    finally:
        first.unlock()
    again = app_mod.acquire_instance_lock()
    assert again is not None
    again.unlock()


@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_the_window_closes_on_sigterm_and_sigint(tmp_path, signame, code):
    """`kill PID`, Ctrl-C and a logout's SIGTERM close the window the normal way (settings
    saved, lock released) and exit 128 + signal; before, an idle event loop never ran the
    Python handler and the window stayed until SIGKILL."""
    import signal
    import time

    env = dict(os.environ, SINUSAPP_HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sinusapp", "-v", "gui"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        for line in proc.stderr:  # the window is up when it says so
            if "main window shown" in line or time.monotonic() > deadline:
                break
        assert proc.poll() is None, "the GUI exited before it was signalled"
        proc.send_signal(getattr(signal, signame))
        assert proc.wait(timeout=20) == code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lock = tmp_path / "sinusapp.lock"
    assert not lock.exists()  # released: QLockFile removes its file on unlock
