"""Edge sharpness of CT series as the network sees them: real heads vs rendered training cases.

A training case should look like the scans the model meets. Rendered cases are resampled more
than once (a pack's grid, then the case's own pixels, then the network's 1.25 mm block), and
each linear resampling widens edges. This measures the width of bone edges on the network's
grid: every series is resampled onto 1.25 mm voxels as the Predictor does
(:func:`sinusapp.model.preprocess._resample`: whole-voxel block means, then trilinear), and on
up to 8 axial slices (middle 60 %) the edges that rise 450-1000 HU over 8 pixels are found;
their width is the step divided by the steepest one-pixel gradient across it, times 1.25 mm
(as :func:`sinusapp.imaging.plausibility.measure_edge_width_mm`, whose > 800 HU steps an
uncalibrated head with air at -500 HU never shows). Prints the median per real head and per
folder of cases (per head for ``HEAD_<head>_*`` cases, the first ``--cases`` of each).

Usage::

    python benchmarks/edge_sharpness.py --heads vhf_visible_human_female_head \\
        harvard02_cadaver_head_sinus_coverage --folders /tmp/headcases /tmp/headcases_dicom
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED = REPO.parent / "shared" / "data"

from real_anatomy import _head_volume  # noqa: E402  (a folder's head / case series)

from sinusapp.imaging.volume import Volume  # noqa: E402
from sinusapp.model.preprocess import _resample  # noqa: E402

log = logging.getLogger("edge_sharpness")

GRID_MM = 1.25
EDGE_PX = 8
STEP_HU = (450.0, 1000.0)


def on_network_grid(volume: Volume, *, grid_mm: float = GRID_MM) -> np.ndarray:
    """``volume`` resampled onto ``grid_mm`` voxels along its own axes (float32 HU)."""
    spacing = np.asarray(volume.spacing_mm, float)
    shape = tuple(int(v) for v in np.floor(np.asarray(volume.shape) * spacing / grid_mm))
    affine = volume.affine.copy()
    affine[:3, :3] = volume.affine[:3, :3] / spacing * grid_mm
    return _resample(volume.array, volume.affine, affine, shape, target_mm=grid_mm, cval=-1024.0)


def edge_width_mm(volume: Volume) -> float | None:
    """Median width (mm) of 450-1000 HU edges along the rows of the 1.25 mm axial slices;
    ``None`` when fewer than 200 such edges lie on every sampled slice."""
    a = on_network_grid(volume)
    n = a.shape[0]
    widths = []
    for k in np.unique(np.linspace(0.2 * (n - 1), 0.8 * (n - 1), min(8, n)).round().astype(int)):
        s = a[k]
        grad = np.abs(np.diff(s, axis=1))
        step = np.abs(s[:, EDGE_PX:] - s[:, :-EDGE_PX])
        steepest = ndimage.maximum_filter1d(grad, EDGE_PX, origin=-(EDGE_PX // 2), axis=1)
        steepest = steepest[:, : step.shape[1]]
        strong = (step > STEP_HU[0]) & (step < STEP_HU[1])
        if np.count_nonzero(strong) < 200:
            continue
        widths.append(float(np.median(step[strong] / np.maximum(steepest[strong], 1.0))))
    return float(np.median(widths)) * GRID_MM if widths else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heads", nargs="*", default=[], help="real heads in ../shared/data/realct")
    ap.add_argument("--folders", nargs="*", type=Path, default=[], help="folders of cases")
    ap.add_argument("--cases", type=int, default=10, help="cases per head and folder (10)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for name in args.heads:
        width = edge_width_mm(_head_volume(SHARED / "realct" / name))
        print(f"{name}: {width if width is None else round(width, 2)} mm (original series)")
    for folder in args.folders:
        groups: dict[str, list[float | None]] = {}
        for case in sorted(p for p in folder.iterdir() if (p / "ct").is_dir()):
            key = case.name.split("_")[1] if case.name.startswith(("HEAD_", "NEG_")) else "case"
            if len(groups.setdefault(key, [])) < args.cases:
                groups[key].append(edge_width_mm(_head_volume(case / "ct")))
        for key, values in groups.items():
            got = [v for v in values if v is not None]
            median = round(float(np.median(got)), 2) if got else None
            print(f"{folder} {key}: median {median} mm over {len(got)} of {len(values)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
