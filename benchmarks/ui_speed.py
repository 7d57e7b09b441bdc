"""GUI speed: window start-up, slice change with both contours at 512×512, series import.

Run (headless)::

    QT_QPA_PLATFORM=offscreen python benchmarks/ui_speed.py [--slices 300] [--no-import]

1. **Start-up**: a fresh interpreter builds the real main window (catalogue, records,
   nomogram) and shows it; the time from process start to the first shown event, and whether
   torch was imported (it must not be).
2. **Slice change**: a 512×512 CT with a model (red) and a reference (blue) mask; for each
   plane, consecutive slices are shown one by one (contours computed on first visit, the
   worst case) and painted synchronously; median / p95 / max per slice change.
3. **Import**: a 512×512 axial series written as DICOM, imported into a fresh catalogue
   with progress, then loaded as a Volume.
4. **Event loop during an analysis**: the main window runs an analysis with the fake
   predictor (sleeping per stage) while a 10 ms QTimer ticks; the largest gap between ticks
   is how long the window could not react (target: < 250 ms on this machine).
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
sys.path.insert(0, str(ROOT))

_STARTUP_CHILD = r"""
import time, sys
t0 = time.perf_counter()
from PySide6 import QtCore
from sinusapp.ui.app import create_main_window, ensure_app
app = ensure_app()
w = create_main_window()
class F(QtCore.QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QtCore.QEvent.Type.Show and obj is w:
            dt = time.perf_counter() - t0
            print(f"SHOWN {dt:.3f} torch={'torch' in sys.modules}", flush=True)
            QtCore.QTimer.singleShot(0, w.close)
        return False
f = F()
w.installEventFilter(f)
w.show()
app.exec()
"""


def bench_startup(home: Path) -> tuple[float, float, bool]:
    env = dict(os.environ, SINUSAPP_HOME=str(home), PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _STARTUP_CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    wall = time.perf_counter() - t
    line = next(x for x in out.splitlines() if x.startswith("SHOWN"))
    inside = float(line.split()[1])
    torch = line.split("torch=")[1].strip() == "True"
    return wall, inside, torch


def bench_slices(n_slices: int) -> dict[str, list[float]]:
    import numpy as np
    from scipy import ndimage

    from sinusapp.imaging.planes import Plane
    from sinusapp.model.testing import make_sinus_phantom
    from sinusapp.ui.app import ensure_app
    from sinusapp.ui.viewer import SliceViewer

    app = ensure_app()
    vol, truth = make_sinus_phantom(shape=(n_slices, 512, 512), spacing_mm=(0.6, 0.4, 0.4))
    reference = ndimage.binary_dilation(truth, iterations=2).astype(np.uint8)
    viewer = SliceViewer()
    viewer.resize(1000, 900)
    viewer.show()
    viewer.set_volume(vol)
    viewer.model.set_mask("model", truth)
    viewer.model.set_mask("reference", reference)
    app.processEvents()
    times: dict[str, list[float]] = {}
    for plane in (Plane.CORONAL, Plane.AXIAL, Plane.SAGITTAL):
        viewer.model.set_plane(plane)
        app.processEvents()
        view = viewer.views[plane]
        g = viewer.model.geometry[plane]
        # slices through the lesion (the interesting, most expensive ones)
        axis = g.through_axis
        has = np.flatnonzero(truth.any(axis=tuple(a for a in range(3) if a != axis)))
        start = int(has[0]) if has.size else 0
        idxs = list(range(start, min(start + 60, g.n_slices)))
        viewer.model.set_slice(plane, idxs[0] - 1 if idxs[0] > 0 else idxs[0])
        view.graphics.viewport().repaint()
        samples = []
        for i in idxs:
            t = time.perf_counter()
            viewer.model.set_slice(plane, i)
            view.graphics.viewport().repaint()  # synchronous paint of image + contours
            samples.append((time.perf_counter() - t) * 1000)
        times[plane.value] = samples
    viewer.close()
    return times


def bench_import(n_slices: int, tmp: Path) -> tuple[float, float, float]:
    from dataclasses import replace

    from sinusapp.dicom import volume_from_headers
    from sinusapp.dicom.catalogue import Catalogue
    from sinusapp.imaging.volume import SeriesInfo
    from sinusapp.model.testing import make_sinus_phantom
    from tests.ui.conftest import write_ct_series

    vol, _ = make_sinus_phantom(shape=(n_slices, 512, 512), spacing_mm=(0.6, 0.4, 0.4))
    vol = replace(
        vol,
        info=SeriesInfo(
            patient_name="BENCH^UI",
            patient_id="B1",
            series_description="bench",
            convolution_kernel="H70s",
        ),
    )
    t = time.perf_counter()
    write_ct_series(tmp / "series", vol)
    write_s = time.perf_counter() - t
    cat = Catalogue(tmp / "cat.sqlite", store=tmp / "store")
    calls = []
    t = time.perf_counter()
    report = cat.import_path(tmp / "series", copy=False, progress=lambda f, s: calls.append(f))
    import_s = time.perf_counter() - t
    t = time.perf_counter()
    loaded = volume_from_headers(cat.headers(report.series_uids[0]))
    load_s = time.perf_counter() - t
    assert loaded.shape == vol.shape and calls, "import reported no progress"
    return write_s, import_s, load_s


def bench_event_loop_during_analysis(delay_s: float = 0.15) -> tuple[float, float, int]:
    """Median and max gap (ms) between 10 ms timer ticks while an analysis runs, and ticks."""
    import itertools

    from PySide6 import QtCore

    from sinusapp.model import FakePredictor
    from sinusapp.model.testing import make_sinus_phantom
    from sinusapp.ui.app import create_main_window, ensure_app

    app = ensure_app()
    w = create_main_window(
        records=None, predictor_factory=lambda: FakePredictor(locate=False, delay_s=delay_s)
    )
    w.show()
    vol, _ = make_sinus_phantom(shape=(120, 256, 256), spacing_mm=(0.6, 0.8, 0.8))
    w.set_volume(vol)
    w.form.set_raw({"asthma": True, "allergic_rhinitis": False, "eosinophils": "450"})
    w.session.set_clinical(w.form.raw())
    app.processEvents()
    ticks: list[float] = []
    timer = QtCore.QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    loop = QtCore.QEventLoop()
    job = w.start_analysis()
    if job is None:
        raise RuntimeError(f"the analysis did not start: {w.analyse_hint.text()}")
    job.done.connect(loop.quit)
    timer.start()
    loop.exec()
    timer.stop()
    w.close()
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(ticks)]
    return statistics.median(gaps), max(gaps), len(ticks)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--no-import", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sinusapp-uibench-"))
    os.environ["SINUSAPP_HOME"] = str(tmp / "home")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {load:.1f} at start"
    )
    wall, inside, torch = bench_startup(tmp / "home")
    print(
        f"start-up: window shown {inside:.2f} s after interpreter start of the app code "
        f"({wall:.2f} s wall incl. Python start); torch imported: {torch}"
    )
    times = bench_slices(min(args.slices, 160))
    for plane, samples in times.items():
        s = sorted(samples)
        p95 = s[int(0.95 * (len(s) - 1))]
        print(
            f"slice change {plane:8s}: median {statistics.median(s):5.1f} ms, "
            f"p95 {p95:5.1f} ms, max {s[-1]:5.1f} ms  ({len(s)} slices, contours uncached)"
        )
    med, worst, n = bench_event_loop_during_analysis()
    print(
        f"event loop during an analysis (fake predictor): timer gap median {med:.0f} ms, "
        f"max {worst:.0f} ms over {n} ticks of 10 ms"
    )
    if not args.no_import:
        w, i, lo = bench_import(args.slices, tmp)
        print(
            f"import {args.slices}×512×512: catalogue import {i:.2f} s, load volume {lo:.2f} s "
            f"(writing the test series took {w:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
