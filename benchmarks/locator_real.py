"""Sinus locator on real anatomy: all NasalSeg crops and the hand-marked real heads.

For each NasalSeg case the truth is the bounding box (LPS mm) of the maxillary-sinus and
nasal-cavity labels (1-4) of ``labels.nrrd``; for the real heads it is the box marked by hand
in ``tests/model/real_head_boxes.json``. Reported: distance of the located centre from the
box centre (and per axis), whether it lies inside the box, and the locator's run time (the
whole VHF head: 234 × 512 × 512 voxels).

    nice -n 19 .venv/bin/python benchmarks/locator_real.py [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from sinusapp.dicom import load_volume
from sinusapp.errors import NotSinusCTError
from sinusapp.imaging.masks import load_reference_mask
from sinusapp.model.preprocess import locate_sinus_region

log = logging.getLogger("benchmarks.locator_real")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
BOXES = REPO / "tests" / "model" / "real_head_boxes.json"


def _head_volume(folder: Path) -> object:
    """The head series under ``folder``: the proposed one, else the CT image series with the
    most slices (a thick brain series is never proposed since issue 12, but it is the
    head's only series)."""
    from sinusapp.dicom import scan

    result = scan(folder)
    cts = [s for s in result.series if s.kind == "image" and s.modality == "CT"]
    entry = result.proposed or max(cts, key=lambda s: s.n_frames)
    return load_volume(folder, series_uid=entry.series_uid, scan_result=result)


def _label_box(volume, labels: np.ndarray) -> np.ndarray:
    idx = np.argwhere((labels >= 1) & (labels <= 4))
    lo, hi = idx.min(0), idx.max(0)
    corners = np.array(
        [[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])],
        float,
    )
    pts = volume.index_to_lps(corners)
    return np.stack([pts.min(0), pts.max(0)], axis=1)


def _score(centre: np.ndarray, box: np.ndarray) -> dict:
    offset = centre - box.mean(axis=1)
    return {
        "centre_lps": np.round(centre, 1).tolist(),
        "box_lps": np.round(box, 1).tolist(),
        "offset_xyz_mm": np.round(offset, 1).tolist(),
        "distance_mm": round(float(np.linalg.norm(offset)), 1),
        "inside": bool(np.all((centre >= box[:, 0]) & (centre <= box[:, 1]))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write all rows as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    rows: list[dict] = []
    root = SHARED / "nasalseg"
    cases = sorted(p.name for p in root.iterdir() if (p / "labels.nrrd").is_file())
    for case in cases:
        volume = load_volume(root / case / "ct")
        labels = load_reference_mask(root / case / "labels.nrrd", volume=volume)
        box = _label_box(volume, np.asarray(labels))
        t = time.perf_counter()
        try:
            centre = locate_sinus_region(volume).center_lps
        except NotSinusCTError as exc:
            rows.append({"case": case, "refused": str(exc), "inside": False})
            log.info("%s refused: %s", case, exc)
            continue
        row = {"case": case, **_score(centre, box), "seconds": time.perf_counter() - t}
        rows.append(row)
        log.info("%s %s", case, row)

    ok = [r for r in rows if "distance_mm" in r]
    dist = np.array([r["distance_mm"] for r in ok])
    off = np.array([r["offset_xyz_mm"] for r in ok])
    summary = {
        "n": len(rows),
        "inside": sum(r["inside"] for r in rows),
        "refused": sum("refused" in r for r in rows),
        "distance_median_mm": round(float(np.median(dist)), 1),
        "distance_p90_mm": round(float(np.percentile(dist, 90)), 1),
        "distance_max_mm": round(float(dist.max()), 1),
        "offset_mean_xyz_mm": np.round(off.mean(0), 1).tolist(),
        "offset_median_abs_xyz_mm": np.round(np.median(np.abs(off), 0), 1).tolist(),
        "seconds_median": round(float(np.median([r["seconds"] for r in ok])), 3),
    }
    log.info("NasalSeg summary: %s", summary)

    heads = []
    for head in json.loads(BOXES.read_text(encoding="utf-8"))["heads"]:
        volume = _head_volume(SHARED / head["series"])
        times = []
        for _ in range(3):
            t = time.perf_counter()
            try:
                centre = locate_sinus_region(volume).center_lps
                result: dict = {}
            except NotSinusCTError as exc:
                centre, result = None, {"refused": str(exc)}
            times.append(time.perf_counter() - t)
        if centre is not None and head["box_lps_mm"] is not None:
            b = head["box_lps_mm"]
            result = _score(centre, np.array([b["x"], b["y"], b["z"]], float))
        heads.append(
            {
                "name": head["name"],
                "expect": head["expect"],
                "shape": list(volume.shape),
                **result,
                "seconds_min_of_3": round(min(times), 3),
            }
        )
        log.info("%s", heads[-1])
    if args.out:
        args.out.write_text(
            json.dumps({"nasalseg": summary, "nasalseg_rows": rows, "heads": heads}, indent=1),
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
