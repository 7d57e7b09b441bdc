"""Benchmark: the model on real anatomy (issue 11's targets, DESIGN §7 "Real anatomy").

Usage (from the repository root)::

    python benchmarks/real_anatomy.py --cohort DIR [--bundle models/sinus_unet]
        [--nasalseg ../shared/data/nasalseg] [--realct ../shared/data/realct]
        [--threads 2] [--json OUT.json] [--results benchmarks/RESULTS.md]

``--cohort`` is a real-anatomy cohort written by ``sinusapp synth --real-anatomy`` (its
``cohort=test`` cases have NasalSeg *test* patients as backgrounds: never trained on, never
used for a choice). Measured with the bundle's :class:`~sinusapp.model.predictor.Predictor`,
on the CT grid, as a surgeon sees it:

- lesion Dice per held-out case with placed disease (median, quartiles), overall and inside
  the maxillary sinuses and the nasal cavity (each voxel given to its nearest reference label);
- false-positive lesion (mL) on healthy real sinuses: the NasalSeg test patients' crops as
  they are (no placed disease; their own small amount of real mucosal thickening counts
  against the model, so this is a strict measure), and the real heads in ``--realct``;
- maxillary sinus volume of the model's sinus head against the NasalSeg label (test
  patients), relative error;
- opacification per maxillary sinus on the held-out cases: the model's lesion ∧ its sinus
  labels against the placed lesion ∧ the cohort's labels (percentage points);
- the Predictor's wall time per case.

``--results`` replaces the "## real anatomy" section of the results file.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Real heads of ../shared/data/realct (folder, how to load it).
REAL_HEADS = (
    "vhf_visible_human_female_head",
    "harvard02_cadaver_head_sinus_coverage",
    "ge_hispeed_dual_head_tilt_varspacing",
)
MAXILLARY = ("maxillary_L", "maxillary_R")


def _head_volume(folder: Path) -> Any:
    """The head series under ``folder``: the proposed one, else the CT image series with the
    most slices (a thick brain series is never proposed since issue 12, but it is the
    head's only series)."""
    from sinusapp.dicom import load_volume, scan

    result = scan(folder)
    cts = [s for s in result.series if s.kind == "image" and s.modality == "CT"]
    entry = result.proposed or max(cts, key=lambda s: s.n_frames)
    return load_volume(folder, series_uid=entry.series_uid, scan_result=result)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    denom = int(a.sum()) + int(b.sum())
    return 1.0 if denom == 0 else 2.0 * float((a & b).sum()) / denom


def _q(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values, float)
    return {
        "n": len(values),
        "median": float(np.median(arr)),
        "q1": float(np.percentile(arr, 25)),
        "q3": float(np.percentile(arr, 75)),
        "mean": float(arr.mean()),
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


#: Regions of the per-region Dice: the reference sinus labels they are nearest to.
DICE_REGIONS = {"maxillary": ("maxillary_L", "maxillary_R"), "nasal_cavity": ("nasal_cavity",)}
_REGION_NAMES = {"maxillary": "maxillary sinuses", "nasal_cavity": "nasal cavity"}


def _region_dice(
    pred: np.ndarray, truth: np.ndarray, labels: np.ndarray, *, min_vox: int = 200
) -> dict[str, float]:
    """Dice inside the maxillary sinuses and inside the nasal cavity, each voxel given to the
    reference label nearest to it (placed disease may take the one-voxel rim next to a
    label). A region whose reference lesion has fewer than ``min_vox`` voxels is left out."""
    from scipy import ndimage

    from sinusapp.imaging.quantify import LABEL_IDS

    if not labels.any():
        return {}
    idx = ndimage.distance_transform_edt(labels == 0, return_distances=False, return_indices=True)
    nearest = labels[tuple(idx)]
    del idx
    out: dict[str, float] = {}
    for region, names in DICE_REGIONS.items():
        inside = np.isin(nearest, [LABEL_IDS[n] for n in names])
        if int(np.count_nonzero(truth & inside)) >= min_vox:
            out[region] = _dice(pred & inside, truth & inside)
    return out


def _opacification(volume: Any, lesion: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sinusapp.imaging.quantify import per_sinus_opacification

    quant = per_sinus_opacification(lesion_mask=lesion, sinus_labels=labels, volume=volume)
    return {k: float(v["opacification_pct"]) for k, v in quant.items() if k in MAXILLARY}


def _volumes(volume: Any, labels: np.ndarray) -> dict[str, float]:
    from sinusapp.imaging.quantify import LABEL_IDS

    return {
        k: float(np.count_nonzero(labels == LABEL_IDS[k]) * volume.voxel_volume_ml)
        for k in MAXILLARY
    }


def held_out_cases(cohort: Path, predictor: Any) -> dict[str, Any]:
    """Dice and opacification error on the cohort's test cases (placed disease).

    Cases on a background left out of the split (``excluded_patients``) are skipped: with
    incomplete labels their reference would score a correct labelling as wrong, and a
    background that is the same image as a training patient's is not held out.
    """
    from sinusapp.dataset import Dataset, load_case
    from sinusapp.synth.realanat import excluded_patients

    ds = Dataset.open(cohort)
    excluded = excluded_patients()
    rows = []
    for case in ds.by_cohort("test"):
        if case.clinical.get("background", "") in excluded:
            continue
        volume, lesion, labels = load_case(case)
        t = time.perf_counter()
        pred = predictor.predict(volume)
        seconds = time.perf_counter() - t
        row: dict[str, Any] = {
            "case_id": case.case_id,
            "background": case.clinical.get("background", ""),
            "lesion_ml_truth": float(np.count_nonzero(lesion) * volume.voxel_volume_ml),
            "lesion_ml_model": pred.lesion_volume_ml,
            "dice": _dice(pred.mask, lesion) if lesion.any() else None,
            "seconds": seconds,
        }
        if labels is not None and lesion.any():
            for region, d in _region_dice(
                pred.mask.astype(bool), lesion.astype(bool), labels
            ).items():
                row[f"dice_{region}"] = d
        if labels is not None and pred.sinus_labels is not None:
            truth = _opacification(volume, lesion, labels)
            model = _opacification(volume, pred.mask, pred.sinus_labels)
            for k in MAXILLARY:
                if k in truth:
                    row[f"opac_truth_{k}"] = truth[k]
                    row[f"opac_model_{k}"] = model.get(k, float("nan"))
        rows.append(row)
        print(
            f"  {case.case_id} ({row['background']}): Dice {row['dice']}, "
            f"{row['lesion_ml_model']:.1f} / {row['lesion_ml_truth']:.1f} mL, {seconds:.1f} s",
            flush=True,
        )
    dice = [r["dice"] for r in rows if r["dice"] is not None]
    healthy_fp = [r["lesion_ml_model"] for r in rows if r["lesion_ml_truth"] == 0]
    opac_err = [
        abs(r[f"opac_model_{k}"] - r[f"opac_truth_{k}"])
        for r in rows
        for k in MAXILLARY
        if f"opac_truth_{k}" in r and np.isfinite(r[f"opac_model_{k}"])
    ]
    opac_missing = sum(
        1
        for r in rows
        for k in MAXILLARY
        if f"opac_truth_{k}" in r and not np.isfinite(r[f"opac_model_{k}"])
    )
    return {
        "cases": rows,
        "dice": _q(dice),
        **{
            f"dice_{region}": _q([r[f"dice_{region}"] for r in rows if f"dice_{region}" in r])
            for region in DICE_REGIONS
        },
        "healthy_cases_fp_ml": _q(healthy_fp),
        "opacification_abs_error_points": _q(opac_err),
        "opacification_sinus_not_found": opac_missing,
        "seconds": _q([r["seconds"] for r in rows]),
    }


def nasalseg_healthy(root: Path, predictor: Any) -> dict[str, Any]:
    """False-positive lesion and maxillary volume on the NasalSeg test patients as they are."""
    from sinusapp.imaging.volume import Volume
    from sinusapp.synth.realanat import load_background, load_split

    split = load_split()
    rows = []
    for patient in sorted(p for p, s in split.items() if s == "test"):
        bg = load_background(root=root, patient=patient)
        # the crop's own HU (int16 as stored) and geometry: no second read of the series
        volume = Volume(array=bg.hu.astype(np.int16), affine=bg.affine)
        pred = predictor.predict(volume)
        truth_labels = np.where(bg.labels == 15, 0, bg.labels).astype(np.uint8)
        row: dict[str, Any] = {"patient": patient, "fp_ml": pred.lesion_volume_ml}
        if pred.sinus_labels is not None:
            tv = _volumes(volume, truth_labels)
            mv = _volumes(volume, pred.sinus_labels)
            for k in MAXILLARY:
                row[f"vol_truth_{k}"] = tv[k]
                row[f"vol_model_{k}"] = mv[k]
        rows.append(row)
        print(f"  {patient}: FP {row['fp_ml']:.2f} mL", flush=True)
    vol_err = [
        abs(r[f"vol_model_{k}"] - r[f"vol_truth_{k}"]) / r[f"vol_truth_{k}"] * 100
        for r in rows
        for k in MAXILLARY
        if r.get(f"vol_truth_{k}")
    ]
    return {
        "cases": rows,
        "fp_ml": _q([r["fp_ml"] for r in rows]),
        "maxillary_volume_abs_error_pct": _q(vol_err),
    }


def real_heads(root: Path, predictor: Any) -> dict[str, Any]:
    """False-positive lesion on the real heads (healthy or cadaver sinuses, no labels)."""
    out = {}
    for name in REAL_HEADS:
        folder = root / name
        if not folder.is_dir():
            continue
        volume = _head_volume(folder)
        t = time.perf_counter()
        try:
            pred = predictor.predict(volume)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports every failure
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        seconds = time.perf_counter() - t
        vols = _volumes(volume, pred.sinus_labels) if pred.sinus_labels is not None else {}
        out[name] = {
            "shape": list(volume.shape),
            "lesion_ml": pred.lesion_volume_ml,
            "maxillary_ml": vols,
            "region_center_lps": [round(float(v), 1) for v in pred.region_center_lps],
            "seconds": seconds,
        }
        print(f"  {name}: {out[name]}", flush=True)
    return out


def _section(res: dict[str, Any]) -> str:
    def f(d: dict[str, float], key: str = "median", nd: int = 3) -> str:
        return "n/a" if not d else f"{d[key]:.{nd}f}"

    h = res["held_out"]
    n = res["nasalseg_test_as_is"]
    lines = [
        "## real anatomy",
        "",
        f"Measured {res['date']} by `python benchmarks/real_anatomy.py --cohort {res['cohort']}`"
        f" with bundle `{res['bundle']}` (sha256 {res['bundle_sha256'][:12]}…), "
        f"{res['threads']} torch thread(s), CPU: {res['cpu']}. Test split = NasalSeg test "
        "patients (`sinusapp/synth/nasalseg_split.json`), never trained on.",
        "",
        "| measure | target | median | quartiles | n |",
        "|---|---|---|---|---|",
        f"| lesion Dice, held-out cases with placed disease (CT grid) | ≥ 0.85 | "
        f"{f(h['dice'])} | {f(h['dice'], 'q1')}–{f(h['dice'], 'q3')} | "
        f"{h['dice'].get('n', 0)} |",
        *(
            f"| – inside the {_REGION_NAMES[region]} (nearest reference label) | | "
            f"{f(h[f'dice_{region}'])} | {f(h[f'dice_{region}'], 'q1')}–"
            f"{f(h[f'dice_{region}'], 'q3')} | {h[f'dice_{region}'].get('n', 0)} |"
            for region in DICE_REGIONS
            if h.get(f"dice_{region}")
        ),
        f"| false lesion, NasalSeg test crops as they are (mL) | ≤ 0.5 | {f(n['fp_ml'], nd=2)} |"
        f" {f(n['fp_ml'], 'q1', 2)}–{f(n['fp_ml'], 'q3', 2)} | {n['fp_ml'].get('n', 0)} |",
        f"| false lesion, held-out cases without placed disease (mL) | ≤ 0.5 | "
        f"{f(h['healthy_cases_fp_ml'], nd=2)} | – | {h['healthy_cases_fp_ml'].get('n', 0)} |",
        f"| maxillary volume, abs. error vs NasalSeg label (%) | ≤ 15 | "
        f"{f(n['maxillary_volume_abs_error_pct'], nd=1)} | "
        f"{f(n['maxillary_volume_abs_error_pct'], 'q1', 1)}–"
        f"{f(n['maxillary_volume_abs_error_pct'], 'q3', 1)} | "
        f"{n['maxillary_volume_abs_error_pct'].get('n', 0)} |",
        f"| maxillary opacification, abs. error (points) | ≤ 10 | "
        f"{f(h['opacification_abs_error_points'], nd=1)} | "
        f"{f(h['opacification_abs_error_points'], 'q1', 1)}–"
        f"{f(h['opacification_abs_error_points'], 'q3', 1)} | "
        f"{h['opacification_abs_error_points'].get('n', 0)} |",
        f"| Predictor wall time per held-out crop (s) | | {f(h['seconds'], nd=2)} | | "
        f"{h['seconds'].get('n', 0)} |",
        "",
        "Real heads (no labels; healthy or cadaver sinuses, so any lesion is false):",
        "",
        "| head | CT shape | lesion (mL) | maxillary L / R (mL) | region centre (LPS mm) | s |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res["real_heads"].items():
        if "error" in r:
            lines.append(f"| {name} | | {r['error']} | | | |")
            continue
        mx = r["maxillary_ml"]
        lines.append(
            f"| {name} | {r['shape']} | {r['lesion_ml']:.2f} | "
            f"{mx.get('maxillary_L', float('nan')):.1f} / {mx.get('maxillary_R', float('nan')):.1f}"
            f" | {r['region_center_lps']} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n\n" + SECTION_END + "\n"


#: Ends the generated part of the "## real anatomy" section: the notes written by hand under
#: it (its "###" subsections, the paragraphs after the tables) are kept when it is rewritten.
SECTION_END = "<!-- end of the section written by benchmarks/real_anatomy.py -->"


def _write_section(path: Path, text: str) -> None:
    """Replace the generated part of the "## real anatomy" section of ``path`` (from its
    heading to :data:`SECTION_END`) with ``text``; everything after the marker, the notes
    written by hand, stays. Without the section, ``text`` is appended. A section without the
    marker before the next "## " heading is refused (ValueError, nothing written): where its
    generated part ends is not known, and a guess could delete what was written by hand."""
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    lines = old.splitlines(keepends=True)
    start = next((n for n, line in enumerate(lines) if line.strip() == "## real anatomy"), None)
    if start is None:
        path.write_text(old.rstrip() + "\n\n" + text, encoding="utf-8")
        return
    end = None
    for n in range(start + 1, len(lines)):
        if lines[n].startswith("## "):
            break
        if lines[n].strip() == SECTION_END:
            end = n
            break
    if end is None:
        raise ValueError(
            f"{path}: its '## real anatomy' section has no line {SECTION_END!r} before the "
            "next '## ' heading; put it after the generated tables (where the hand-written "
            "notes begin) and run again"
        )
    path.write_text("".join(lines[:start]) + text + "".join(lines[end + 1 :]), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cohort", type=Path, required=True)
    ap.add_argument("--bundle", type=Path, default=ROOT / "models" / "sinus_unet")
    ap.add_argument("--nasalseg", type=Path, default=ROOT.parent / "shared" / "data" / "nasalseg")
    ap.add_argument("--realct", type=Path, default=ROOT.parent / "shared" / "data" / "realct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--csv", type=Path, default=None, help="per-case rows of the held-out cases")
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args()

    import platform

    import torch

    from sinusapp.model.predictor import Predictor

    torch.set_num_threads(args.threads)
    predictor = Predictor(args.bundle, device="cpu")
    print("held-out cases with placed disease:", flush=True)
    held = held_out_cases(args.cohort, predictor)
    print("NasalSeg test patients as they are:", flush=True)
    nas = nasalseg_healthy(args.nasalseg, predictor)
    print("real heads:", flush=True)
    heads = real_heads(args.realct, predictor)
    res = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cohort": str(args.cohort),
        "bundle": str(
            args.bundle.relative_to(ROOT) if args.bundle.is_relative_to(ROOT) else args.bundle
        ),
        "bundle_sha256": predictor.bundle.sha256,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "held_out": held,
        "nasalseg_test_as_is": nas,
        "real_heads": heads,
    }
    text = _section(res)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1), encoding="utf-8")
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as fh:
            keys = sorted({k for r in held["cases"] for k in r})
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(held["cases"])
    if args.results:
        _write_section(args.results, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
