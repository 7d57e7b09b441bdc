"""Start-up: ``sinusapp --help`` and the desktop window, each against its reference.

Run::

    QT_QPA_PLATFORM=offscreen python benchmarks/startup.py [--repeats 7]

Every time is the wall time of a fresh process, from spawning it to the moment it is done
(``--help`` printed and exited) or to the main window's first Show event (the child prints a
line then; the parent timestamps the line), so Python's own start-up is included on both
sides. The candidates are interleaved within each round and the medians compared:

- ``sinusapp --help`` (``python -m sinusapp.cli --help``) vs a bare ``python -c "import
  sinusapp"``;
- the window shown via the real entry point (``sinusapp.cli.main([])``: logging, the
  instance lock, argument parsing, the ``gui`` command) vs the window built directly
  (``create_main_window()`` + ``show()``, as ``benchmarks/ui_speed.py`` does).

Each run gets a fresh empty ``SINUSAPP_HOME``. The heavy modules present when ``--help``
returns and when the window is shown are listed (torch, highdicom, reportlab, scipy.stats,
the synthetic-CT generator must not be).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "highdicom", "reportlab", "scipy.stats", "sinusapp.synth", "pydicom", "scipy")

_SHOW_HOOK = r"""
import sys, time
from PySide6 import QtCore
HEAVY = HEAVY_MODULES

class _Shown(QtCore.QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QtCore.QEvent.Type.Show and obj is self.window:
            print("SHOWN", ",".join(m for m in HEAVY if m in sys.modules), flush=True)
            QtCore.QTimer.singleShot(0, QtCore.QCoreApplication.quit)
        return False

def _watch(w):
    f = _Shown(w)
    f.window = w
    w.installEventFilter(f)
    w._bench_filter = f
    return w
"""

ENTRY_CHILD = (
    _SHOW_HOOK
    + r"""
import sinusapp.ui.app as _ua
_orig = _ua.create_main_window
_ua.create_main_window = lambda *a, **k: _watch(_orig(*a, **k))
from sinusapp.cli import main
sys.exit(main([]))
"""
)

DIRECT_CHILD = (
    _SHOW_HOOK
    + r"""
from sinusapp.ui.app import create_main_window, ensure_app
app = ensure_app()
w = _watch(create_main_window())
w.show()
app.exec()
"""
)


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, SINUSAPP_HOME=str(home), PYTHONPATH=str(ROOT))


def time_process(args: list[str], *, until: str | None = None) -> tuple[float, str]:
    """Wall time from spawn to exit (or to the first stdout line starting with ``until``)."""
    with tempfile.TemporaryDirectory() as home:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            args, env=_env(Path(home)), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert proc.stdout is not None
        line = ""
        if until is None:
            proc.stdout.read()
            proc.wait(timeout=120)
            dt = time.perf_counter() - t0
        else:
            for line in proc.stdout:
                if line.startswith(until):
                    break
            dt = time.perf_counter() - t0
            proc.stdout.read()
            proc.wait(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{args} exited with {proc.returncode}")
        return dt, line.strip()


def heavy_after_help() -> str:
    code = (
        "import sys, contextlib, io\n"
        "from sinusapp.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    with tempfile.TemporaryDirectory() as home:
        r = subprocess.run(
            [sys.executable, "-c", code],
            env=_env(Path(home)),
            capture_output=True,
            text=True,
            check=True,
        )
    return r.stdout.strip() or "none"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-gui", action="store_true")
    args = ap.parse_args()
    py = sys.executable
    cands: dict[str, tuple[list[str], str | None]] = {
        "bare `python -c 'import sinusapp'`": ([py, "-c", "import sinusapp"], None),
        "`sinusapp --help`": ([py, "-m", "sinusapp.cli", "--help"], None),
    }
    if not args.no_gui:
        cands["window via the real entry point (sinusapp.cli.main)"] = (
            [py, "-c", f"HEAVY_MODULES = {HEAVY!r}\n" + ENTRY_CHILD],
            "SHOWN",
        )
        cands["window built directly (create_main_window)"] = (
            [py, "-c", f"HEAVY_MODULES = {HEAVY!r}\n" + DIRECT_CHILD],
            "SHOWN",
        )
    times: dict[str, list[float]] = {k: [] for k in cands}
    shown: dict[str, str] = {}
    for _ in range(args.repeats):
        for name, (cmd, until) in cands.items():
            dt, line = time_process(cmd, until=until)
            times[name].append(dt)
            if line:
                shown[name] = line.partition(" ")[2] or "none"
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, "
        f"QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM')}"
    )
    print()
    print(f"| process (spawn → done / window shown) | median of {args.repeats} (s) | ratio |")
    print("|---|---|---|")
    bare = med["bare `python -c 'import sinusapp'`"]
    print(f"| bare `python -c 'import sinusapp'` | {bare:.3f} | 1.00× |")
    h = med["`sinusapp --help`"]
    print(f"| `sinusapp --help` | {h:.3f} | {h / bare:.2f}× bare |")
    if not args.no_gui:
        d = med["window built directly (create_main_window)"]
        e = med["window via the real entry point (sinusapp.cli.main)"]
        print(f"| window built directly | {d:.3f} | 1.00× |")
        print(f"| window via the real entry point | {e:.3f} | {e / d:.2f}× direct |")
    print()
    print(f"- heavy modules imported by `--help`: {heavy_after_help()}")
    for k, v in shown.items():
        print(f"- heavy modules imported when the {k.split(' (')[0]} is shown: {v or 'none'}")


if __name__ == "__main__":
    main()
