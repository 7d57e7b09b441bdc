"""Render the docs screenshots (docs/images/ui_*.png) offscreen.

Run: ``QT_QPA_PLATFORM=offscreen python -m tests.ui.make_screenshots [OUT_DIR [DEMO_DIR [WxH]]]``
(WxH: window size, default 1600x1000; the files then end in ``_WxH``). Under Xvfb
(``xvfb-run -s "-screen 0 1920x1080x24" python -m tests.ui.make_screenshots``, with
``QT_QPA_PLATFORM=xcb``) the window is a real X11 one. ``SINUSAPP_SHOT_FAKE=1`` uses the fake
predictor even when a bundled model exists.
Uses the demo study (DEMO_DIR, default assets/demo_real, else assets/demo) when present,
else a procedural phantom written as DICOM; the fake predictor when the bundled model is
absent, and a temporary SINUSAPP_HOME.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(out_dir: str = "docs/images", demo_dir: str | None = None, size: str = "") -> int:
    out = Path(out_dir)
    width, height = (int(v) for v in size.lower().split("x")) if size else (1600, 1000)
    tag = f"_{width}x{height}" if size else ""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="sinusapp-shots-"))
    os.environ["SINUSAPP_HOME"] = str(tmp / "home")

    from PySide6 import QtCore, QtWidgets

    from sinusapp.ui.app import create_main_window, ensure_app
    from tests.ui.conftest import write_ct_series

    app = ensure_app()

    def wait(pred, timeout_s: float = 120.0) -> None:
        timer = QtCore.QElapsedTimer()
        timer.start()
        while not pred():
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if timer.elapsed() > timeout_s * 1000:
                raise TimeoutError("screenshot step timed out")

    kw = {}
    try:
        from sinusapp.model import bundled_model_dir

        has_model = (bundled_model_dir() / "manifest.json").is_file()
    except (ImportError, FileNotFoundError):
        has_model = False
    has_model = has_model and not os.environ.get("SINUSAPP_SHOT_FAKE")
    if not has_model:
        from sinusapp.model import FakePredictor

        kw["predictor_factory"] = lambda: FakePredictor(dlr_score=0.58)
    try:
        from sinusapp.nomogram.model import Nomogram

        Nomogram.load()
    except Exception:  # noqa: BLE001 — fall back to the test nomogram for screenshots
        from tests.ui.conftest import nomogram as nomo_fixture

        kw["nomogram"] = nomo_fixture.__wrapped__()
        kw["nomogram_error"] = ""
    w = create_main_window(**kw)
    w.resize(width, height)
    w.show()
    from sinusapp.resources import assets_dir

    default = assets_dir() / "demo_real"  # the real-anatomy demo (`sinusapp demo`'s default)
    if not default.is_dir():
        default = assets_dir() / "demo"
    demo = Path(demo_dir) if demo_dir and demo_dir != "-" else default
    clinical = {
        "asthma": True,
        "allergic_rhinitis": True,
        "eosinophils_per_ul": 620.0,
        "age": 46,
        "sex": "M",
        "smoking": False,
    }
    truth = None
    if demo.is_dir():
        import json

        clinical = json.loads((demo / "clinical.json").read_text(encoding="utf-8"))
        ct = demo / "ct" if (demo / "ct").is_dir() else demo
        w.import_path(ct, open_after=True)
    else:
        from dataclasses import replace

        from sinusapp.imaging.volume import SeriesInfo
        from sinusapp.model.testing import make_sinus_phantom

        vol, truth = make_sinus_phantom(shape=(90, 192, 192), spacing_mm=(1.0, 0.75, 0.75))
        vol = replace(
            vol,
            info=SeriesInfo(
                patient_name="DEMO^Sinus",
                patient_id="SYN-0042",
                patient_birth_date="19790312",
                patient_sex="M",
                study_date="20260114",
                series_description="Sinus 1.0 bone H70",
                series_number=3,
                convolution_kernel="H70s",
            ),
        )
        write_ct_series(tmp / "dicom" / "s3", vol)
        scout = replace(vol, array=vol.array[:2].copy())
        write_ct_series(tmp / "dicom" / "s1", scout, series_number=1, description="Topogram")
        w.import_path(tmp / "dicom", open_after=True)
    wait(lambda: w.session.volume is not None)
    wait(lambda: w.import_job is None and w.load_job is None)
    settle = lambda: [app.processEvents() for _ in range(5)]  # noqa: E731
    # the thumbnails are made in the background: wait for the rows on screen
    wait(lambda: w.browser._thumb_job is None and not w.browser._thumb_queue, timeout_s=30)
    settle()
    w.grab().save(str(out / f"ui_1_browser{tag}.png"))
    # step 2: the reference segmentation (blue)
    if demo.is_dir() and (demo / "lesion_seg.dcm").is_file():
        job = w.load_reference(demo / "lesion_seg.dcm")
        wait(lambda: job.is_done)
    elif truth is not None:
        w.viewer.model.set_mask("reference", truth)
        w.viewer.model.focus_mask("reference")
    settle()
    w.grab().save(str(out / f"ui_2_coronal_reference{tag}.png"))
    # step 3: the form, with the eosinophil count typed in the wrong unit
    f = w.form
    eos = float(clinical.get("eosinophils_per_ul", 620.0))
    f.set_raw(
        {
            **clinical,
            "eosinophils": f"{eos / 1000:g}",
            "eosinophil_unit": "per_ul",
            "eosinophils_per_ul": None,
        }
    )
    w.session.set_clinical(f.raw())
    w.form_dock.raise_()
    settle()
    w.grab().save(str(out / f"ui_3_form_unit_warning{tag}.png"))
    # step 4: accept the suggestion (×10⁹/L) and analyse: red contour, results, nomogram
    f._on_message_link("unit:1e9_per_l")
    settle()
    w.start_analysis()
    wait(lambda: w.analysis_job is None, timeout_s=1200)  # the model on a busy CPU
    settle()
    w.grab().save(str(out / f"ui_4_results_nomogram{tag}.png"))
    # step 5: what-if on the nomogram (no asthma)
    w.nomogram_dock.raise_()
    settle()
    w.nomogram_view.pick_factor("asthma", 0.0)
    settle()
    w.grab().save(str(out / f"ui_5_whatif{tag}.png"))
    # step 6: 1×3 layout with linked crosshair
    w.viewer.model.set_triple(True)
    settle()
    w.grab().save(str(out / f"ui_6_three_planes{tag}.png"))
    # step 7: two distances and an ROI on the coronal slice, listed in the Measurements tab
    import numpy as np

    from sinusapp.imaging.planes import Plane

    m = w.viewer.model
    m.set_triple(False)
    m.set_plane(Plane.CORONAL)
    g = m.geometry[Plane.CORONAL]
    idx = m.slice_index(Plane.CORONAL)
    ex, ey = g.extent_mm
    hu = g.extract(m.volume.array, idx)
    lesion = m.masks.get("model")
    rows, cols = np.nonzero(g.extract(lesion, idx)) if lesion is not None else ((), ())
    if len(rows):
        # one lesion (the patient's right, screen left): the ROI at its deepest point
        from scipy import ndimage

        half = g.extract(lesion, idx) > 0
        half[:, int(np.median(cols)) :] = False
        depth = ndimage.distance_transform_edt(half, sampling=(g.spacing_y_mm, g.spacing_x_mm))
        r, c = np.unravel_index(int(np.argmax(depth)), depth.shape)
        rad = float(min(max(depth[r, c] - 0.5, 1.0), 4.0))
        cx, cy = g.pixel_centre_mm(r, c)
        m.add_annotation(
            kind="roi",
            plane=Plane.CORONAL,
            index=idx,
            start_mm=(cx - rad, cy - rad),
            end_mm=(cx + rad, cy + rad),
        )
        # the air of that maxillary sinus, 6 mm above the lesion: its width and height
        r_air = max(r - int(6 / g.spacing_y_mm), 0)
        air = hu < -500
        c0 = c1 = c
        while c0 > 0 and air[r_air, c0 - 1]:
            c0 -= 1
        while c1 < air.shape[1] - 1 and air[r_air, c1 + 1]:
            c1 += 1
        r0 = r1 = r_air
        while r0 > 0 and air[r0 - 1, c]:
            r0 -= 1
        while r1 < air.shape[0] - 1 and air[r1 + 1, c]:
            r1 += 1
        for (ra, ca), (rb, cb) in (((r_air, c0), (r_air, c1)), ((r0, c), (r1, c))):
            m.add_annotation(
                kind="distance",
                plane=Plane.CORONAL,
                index=idx,
                start_mm=g.pixel_centre_mm(ra, ca),
                end_mm=g.pixel_centre_mm(rb, cb),
            )
    else:
        m.add_annotation(
            kind="distance",
            plane=Plane.CORONAL,
            index=idx,
            start_mm=(0.2 * ex, 0.6 * ey),
            end_mm=(0.4 * ex, 0.6 * ey),
        )
    w.measurements_dock.raise_()
    settle()
    w.grab().save(str(out / f"ui_7_measurements{tag}.png"))
    w.close()
    print(f"screenshots in {out}")  # noqa: T201
    QtWidgets.QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
