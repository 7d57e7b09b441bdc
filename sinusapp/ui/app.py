"""Application start-up: QApplication, style, catalogue, records, nomogram, main window."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from sinusapp._version import __version__

__all__ = ["create_main_window", "open_demo_study", "run_app"]

log = logging.getLogger(__name__)


def _apply_style(app: QtWidgets.QApplication) -> None:
    """Fusion with a dark, low-glare palette (reading rooms are dim)."""
    app.setStyle("Fusion")
    pal = QtGui.QPalette()
    c = QtGui.QColor
    role = QtGui.QPalette.ColorRole
    for r, col in (
        (role.Window, c(37, 40, 45)),
        (role.WindowText, c(225, 228, 232)),
        (role.Base, c(26, 28, 32)),
        (role.AlternateBase, c(33, 36, 41)),
        (role.ToolTipBase, c(50, 54, 60)),
        (role.ToolTipText, c(230, 230, 230)),
        (role.Text, c(225, 228, 232)),
        (role.Button, c(50, 54, 60)),
        (role.ButtonText, c(225, 228, 232)),
        (role.Highlight, c(47, 110, 186)),
        (role.HighlightedText, c(255, 255, 255)),
        (role.Link, c(88, 166, 255)),
        (role.PlaceholderText, c(130, 135, 142)),
    ):
        pal.setColor(r, col)
    pal.setColor(QtGui.QPalette.ColorGroup.Disabled, role.ButtonText, c(120, 120, 120))
    pal.setColor(QtGui.QPalette.ColorGroup.Disabled, role.Text, c(120, 120, 120))
    app.setPalette(pal)


def ensure_app() -> QtWidgets.QApplication:
    """The QApplication (created once, styled)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(sys.argv[:1])
        app.setApplicationName("SinusApp")
        app.setOrganizationName("SinusApp")
        app.setApplicationVersion(__version__)
        _apply_style(app)
    return app  # type: ignore[return-value]


def settings() -> QtCore.QSettings:
    """Settings file in the app home (``SINUSAPP_HOME`` honoured, so tests stay isolated)."""
    from sinusapp.paths import app_home

    return QtCore.QSettings(str(app_home() / "settings.ini"), QtCore.QSettings.Format.IniFormat)


def _load_nomogram() -> tuple[Any | None, str]:
    from sinusapp.errors import SinusAppError

    try:
        from sinusapp.nomogram.factors import check_app_factors
        from sinusapp.nomogram.model import Nomogram

        nomogram = Nomogram.load()
        check_app_factors(nomogram)  # a factor the form cannot supply fails now, not later
        return nomogram, ""
    except SinusAppError as exc:
        log.error("nomogram not loaded: %s", exc)
        return None, str(exc)


def create_main_window(**overrides: Any) -> Any:
    """Build the main window with the default catalogue, records and nomogram.

    Keyword arguments override :class:`~sinusapp.ui.main_window.MainWindow` parameters.
    """
    from sinusapp.ui.main_window import MainWindow

    kwargs: dict[str, Any] = dict(overrides)
    if "catalogue" not in kwargs:
        from sinusapp.dicom.catalogue import Catalogue

        kwargs["catalogue"] = Catalogue()
    if "records" not in kwargs:
        from sinusapp.records import CaseRecords

        kwargs["records"] = CaseRecords()
    if "nomogram" not in kwargs:
        kwargs["nomogram"], kwargs["nomogram_error"] = _load_nomogram()
    kwargs.setdefault("settings", settings())
    return MainWindow(**kwargs)


def open_demo_study(window: Any, *, demo_dir: str | Path | None = None) -> None:
    """Import and open the demo study; fill the form from ``clinical.json``, load the
    reference segmentation ``lesion_seg.dcm`` when present."""
    if demo_dir is None:
        from sinusapp.resources import assets_dir

        demo_dir = assets_dir() / "demo"
    demo = Path(demo_dir)
    if not demo.is_dir():
        from sinusapp.errors import InputError

        window.show_error(
            "Demo study missing",
            InputError("the demo study is not installed", path=demo, hint="reinstall SinusApp"),
        )
        return

    def after_open() -> None:
        clinical = demo / "clinical.json"
        if clinical.is_file():
            try:
                raw = json.loads(clinical.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                log.warning("demo clinical.json unreadable: %s", exc)
            else:
                if not window.form.raw().get("eosinophils"):
                    window.form.set_raw(raw)
                    window.session.set_clinical(window.form.raw())
                    window._save_timer.start()
        seg = demo / "lesion_seg.dcm"
        if seg.is_file():
            window.load_reference(seg)  # background job; the blue contour appears when done

    dicom = next((demo / d for d in ("ct", "dicom") if (demo / d).is_dir()), demo)
    window.import_path(dicom, open_after=True, on_done=after_open)


def acquire_instance_lock() -> QtCore.QLockFile | None:
    """Lock the app home (catalogue, DICOM store, case records) for this process.

    Two instances editing the same catalogue and case records would overwrite each other's
    entries. Returns the held lock (keep it referenced while the app runs), or ``None`` when
    another running SinusApp holds it. A lock left by a crashed instance (its process is gone)
    is taken over.
    """
    from sinusapp.paths import app_home

    lock = QtCore.QLockFile(str(app_home() / "sinusapp.lock"))
    lock.setStaleLockTime(0)  # held for the app's lifetime; stale only when its process died
    if lock.tryLock(200):
        return lock
    log.warning("another SinusApp holds %s (%s)", app_home() / "sinusapp.lock", lock.error())
    return None


def other_instance_text() -> str:
    """What to tell a user who starts SinusApp while it already runs on the same data."""
    from sinusapp.paths import app_home

    lock = QtCore.QLockFile(str(app_home() / "sinusapp.lock"))
    info = lock.getLockInfo()  # (pid, hostname, appname) in PySide6; empty values if unknown
    pid, host = (info[0], info[1]) if isinstance(info, tuple) and len(info) >= 2 else (0, "")
    who = f" (process {pid} on {host})" if pid else ""
    return (
        f"SinusApp is already running with the data folder {app_home()}{who}. "
        "Use that window: two instances would overwrite each other's catalogue and case "
        "records. If no SinusApp is running, restart the computer or remove "
        f"{app_home() / 'sinusapp.lock'}."
    )


#: How often the Qt event loop hands control back to Python so that a pending SIGTERM /
#: SIGINT handler runs (Python runs signal handlers only between bytecodes, and a GUI idle in
#: ``app.exec()`` executes none).
SIGNAL_POLL_MS = 250


class _QuitOnSignals:
    """Close the main window (its normal close: analysis cancelled, case saved, lock released)
    on SIGTERM or SIGINT while the event loop runs, and remember which signal it was.

    Without it the GUI ignored both: the CLI's SIGTERM handler raises in Python, which an idle
    event loop never reaches, so ``kill PID``, Ctrl-C in the terminal and a session logout's
    SIGTERM left the window running until SIGKILL.
    """

    def __init__(self, window: QtWidgets.QWidget) -> None:
        import signal

        self._window = window
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._on_signal)
            except (ValueError, OSError):  # not the main thread / not supported here
                continue
        self._timer = QtCore.QTimer()
        self._timer.setInterval(SIGNAL_POLL_MS)
        self._timer.timeout.connect(lambda: None)  # lets the handler run
        self._timer.start()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        log.warning("signal %d received: closing the window", signum)
        self.received = signum
        QtCore.QTimer.singleShot(0, self._window.close)

    def restore(self) -> None:
        import signal

        self._timer.stop()
        for sig, handler in self._previous.items():
            if handler is not None:
                signal.signal(sig, handler)


def run_app(
    *,
    import_path: str | Path | None = None,
    open_demo: bool = False,
    demo_dir: str | Path | None = None,
) -> int:
    """Start the GUI (see :func:`sinusapp.ui.run_app`)."""
    app = ensure_app()
    lock = acquire_instance_lock()
    if lock is None:
        QtWidgets.QMessageBox.critical(None, "SinusApp is already running", other_instance_text())
        return 1
    window = create_main_window()
    window.show()
    log.info("main window shown")
    if import_path is not None:
        window.import_path(import_path, open_after=True)
    elif open_demo:
        open_demo_study(window, demo_dir=demo_dir)
    signals = _QuitOnSignals(window)
    try:
        code = int(app.exec())
    finally:
        signals.restore()
        lock.unlock()
    # 128 + the signal, as the CLI's other commands (130 Ctrl-C, 143 SIGTERM)
    return 128 + signals.received if signals.received is not None else code
