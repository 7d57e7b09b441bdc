"""Whole-head cases with CRS disease in the ethmoid, frontal and sphenoid sinuses (issue 11).

NasalSeg labels only the maxillary sinuses and the nasal cavity, so the real-anatomy cohort
never showed the network a diseased ethmoid, frontal or sphenoid sinus on real anatomy, and
ethmoid disease is the pattern the paper ties to recurrence. This script takes the real heads
of ``../shared/data/realct``, derives their upper-sinus cavities the way the app does (the
bundled model's maxillary / nasal labels anchor
:func:`sinusapp.imaging.upper_sinuses.label_upper_sinuses`; looked at by eye on all three
heads), and places the upper-sinus disease of a sampled cohort case in them with the
real-anatomy renderer (:func:`sinusapp.synth.realanat.place_disease`: mucosal thickening,
polyps, cysts, air-fluid levels, complete opacification; lesion HU and noise of the scan),
after mirroring, elastic deformation and resampling of a crop around the sinuses.

Each case is a segmentation-only case (``sinusapp train --seg-only``; no outcome):
``ct/`` (the rendered crop), ``lesion.nrrd`` (the placed upper-sinus disease),
``unlabelled.nii.gz`` (the tissue inside the bundled model's maxillary and nasal-cavity
labels in the hand-marked sinonasal box + 5 mm: nobody labelled the maxillary sinuses and
nasal cavity of these heads, and the Visible Human's nasal airway is filled with tissue) and
``case.json``. The upper cells themselves are labelled (the placed lesion, the rest clear), as
is the cavities' air, the rest of the box and everything outside it (no lesion).

``cells.nii.gz`` holds the reference upper-sinus cells (the healthy head's, through the case's
augmentation: what each ethmoid / frontal / sphenoid cavity is, whatever the disease did to its
air) and the model's maxillary / nasal labels: a sinus head learns them (``--sinus-upper``:
every class); the lesion loss still skips the unlabelled tissue.

``--score BUNDLE ...`` scores bundles on a folder of such cases (written first when ``--out`` is
empty; an existing folder is scored as it is, whatever ``--seed`` / ``--heads`` say): lesion
Dice where the reference is known (outside ``unlabelled``) per case, and the median; and the
app's ethmoid / frontal / sphenoid rows as the pipeline computes them (found or not,
% opacification, Lund-Mackay grade; before a bundle's ``lesion_regions`` hides the
opacification it does not assess) against the reference cells and the placed lesion.

Usage::

    python benchmarks/make_head_disease.py --out /tmp/headdis \
        --heads vhf_visible_human_female_head --cases 40 --seed 5
    python benchmarks/make_head_disease.py --out /tmp/headeval --cases 12 --seed 99 \
        --heads harvard02_cadaver_head_sinus_coverage ge_hispeed_dual_head_tilt_varspacing \
        --score models/sinus_unet

For the GPU machine (``../shared`` does not travel): ``--pack-heads DIR`` writes each head's
rendering background (crop, cells, unlabelled region, at ``--pack-spacing`` mm) as a pack
entry (:mod:`sinusapp.synth.realanat_pack`) and ``--from-pack DIR`` renders cases from them
there, without the shared data or a model run::

    python benchmarks/make_head_disease.py --pack-heads .pack/heads_075 \
        --heads vhf_visible_human_female_head harvard02_cadaver_head_sinus_coverage
    python benchmarks/make_head_disease.py --from-pack .pack/heads_075 --out DIR --cases 60 \
        --heads vhf_visible_human_female_head harvard02_cadaver_head_sinus_coverage
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from make_head_negatives import (  # noqa: E402
    BOXES,
    SHARED,
    UNLABELLED_DESCRIPTION,
    add_pack_arguments,
)

from sinusapp.model.dataset_adapter import load_ct_series  # noqa: E402
from sinusapp.synth.cohort import sample_cohort  # noqa: E402
from sinusapp.synth.dicomio import (  # noqa: E402
    CaseDicomInfo,
    CtSeriesOptions,
    write_ct_series,
    write_label_nifti,
)
from sinusapp.synth.realanat_write import write_lesion_nrrd  # noqa: E402
from sinusapp.synth.realhead import (  # noqa: E402
    head_background,
    head_sinus_labels,
    render_head_case,
)

log = logging.getLogger("make_head_disease")

HEALTHY_FRACTION = 0.1
#: the reference upper-sinus cells of a case (SINUS_LABELS 3-8: the healthy head's cells
#: through the case's augmentation) and, in the unlabelled region, the bundled model's
#: maxillary / nasal labels (1, 2, 9); a sinus head with every class learns them all
CELLS_NAME = "cells.nii.gz"
CELLS_DESCRIPTION = (
    "reference upper-sinus cells (SINUS_LABELS 3-8) of the healthy head; "
    "the model's maxillary / nasal labels (1, 2, 9) in the unlabelled region"
)


def load_head(name: str, *, bundle: Path) -> tuple[Any, dict[str, Any]]:
    """Head ``name`` of ``tests/model/real_head_boxes.json`` as a rendering background."""
    from sinusapp.model.predictor import Predictor

    heads = {h["name"]: h for h in json.loads(BOXES.read_text(encoding="utf-8"))["heads"]}
    head = heads[name]
    volume = load_ct_series(SHARED / head["series"])
    b = head["box_lps_mm"]
    labels = head_sinus_labels(volume, predictor=Predictor(bundle, device="cpu"))
    bg, info = head_background(
        volume, labels=labels, box_lps_mm=np.array([b["x"], b["y"], b["z"]], float), name=name
    )
    return bg, {**info, "series": head["series"]}


#: the head packs' spacing (mm) and HU interpolation: the cases are rendered from the pack
#: onto 0.6-1.0 mm pixels, so a coarse trilinear pack blurs them twice. Measured by
#: benchmarks/edge_sharpness.py (session 30, benchmarks/RESULTS.md "Head cases from packs"):
#: bone-edge width on the network's 1.25 mm grid, median of 10 cases, trilinear 1.25 mm pack /
#: cubic 0.75 mm pack / rendered from the DICOM / the original series: VHF 2.50 / 2.07 / 2.16 /
#: 2.26 mm, harvard02 2.32 / 2.16 / 1.96 / 2.08 mm. 3.4-3.6 MB per head at 0.75 mm.
HEAD_PACK_SPACING_MM = 0.75
HEAD_PACK_HU_ORDER = 3


def pack_heads(
    *,
    heads: list[str],
    out: Path,
    bundle: Path,
    spacing_mm: float = HEAD_PACK_SPACING_MM,
    hu_order: int = HEAD_PACK_HU_ORDER,
) -> None:
    """Write each head's rendering background (crop, cells, unlabelled region: what
    :func:`load_head` makes with the bundle) as a pack entry + ``<head>.json``, for the GPU
    machine (``../shared`` does not travel); ``--from-pack`` renders cases from them."""
    from sinusapp.synth.realanat_pack import PACK_SUFFIX, write_pack_entry

    out.mkdir(parents=True, exist_ok=True)
    for name in heads:
        bg, info = load_head(name, bundle=bundle)
        size = write_pack_entry(
            bg, path=out / f"{name}{PACK_SUFFIX}", spacing_mm=spacing_mm, hu_order=hu_order
        )
        info = {
            **info,
            "pack_spacing_mm": spacing_mm,
            "pack_hu_order": hu_order,
            "bundle": str(bundle),
        }
        (out / f"{name}.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
        log.info("%s: packed at %.2f mm, %.2f MB", name, spacing_mm, size / 1e6)


def _head_background(name: str, *, bundle: Path, from_pack: Path | None) -> tuple[Any, dict]:
    if from_pack is None:
        return load_head(name, bundle=bundle)
    from sinusapp.synth.realanat_pack import PACK_SUFFIX, read_pack_entry

    meta = from_pack / f"{name}.json"
    if not meta.is_file():
        packed = sorted(p.name[: -len(".json")] for p in from_pack.glob("*.json"))
        raise SystemExit(
            f"--from-pack {from_pack}: head {name!r} is not in the pack (heads there: "
            f"{packed or 'none'}); pack it with --pack-heads or pass --heads from that list"
        )
    info = json.loads(meta.read_text(encoding="utf-8"))
    if "model_cavities_ml" not in info:
        log.warning(
            "--from-pack %s: head %s was packed before the model's maxillary / nasal labels "
            "were kept: its cases leave the whole sinonasal box unlabelled; pack it again "
            "with --pack-heads",
            from_pack,
            name,
        )
    return read_pack_entry(from_pack / f"{name}{PACK_SUFFIX}", patient=name), info


def write_cases(
    *,
    heads: list[str],
    out: Path,
    n_cases: int,
    seed: int,
    bundle: Path,
    from_pack: Path | None = None,
    healthy_fraction: float = HEALTHY_FRACTION,
) -> list[str]:
    """``n_cases`` per head (backgrounds from ``from_pack`` when given); returns the ids.

    About ``healthy_fraction`` of them get no disease (the healthy head's cells as they are).
    """
    out.mkdir(parents=True, exist_ok=True)
    specs = sample_cohort(n_cases=n_cases * len(heads), seed=seed, center="A")
    rng = np.random.default_rng(seed)
    healthy = rng.uniform(size=len(specs)) < healthy_fraction
    ids = []
    for h, name in enumerate(heads):
        bg, info = _head_background(name, bundle=bundle, from_pack=from_pack)
        log.info("%s: crop %s, upper cells %s", name, info["crop_shape"], info["upper_cells_ml"])
        for n in range(n_cases):
            k = h * n_cases + n
            spec = specs[k]
            case_id = f"HEAD_{name.split('_')[0]}_{seed}_{n:03d}"
            r = render_head_case(bg, spec=spec, healthy=bool(healthy[k]))
            folder = out / case_id
            write_ct_series(
                hu=r.hu,
                affine=r.affine,
                out_dir=folder / "ct",
                case=CaseDicomInfo(
                    case_id=case_id,
                    seed=spec.seed,
                    sex=spec.clinical["sex"],
                    age_years=spec.clinical["age"],
                ),
                options=CtSeriesOptions(
                    series_number=2,
                    series_description="SINUS BONE AXIAL (real head + synthetic upper disease)",
                    model="real head background + synthetic disease",
                ),
            )
            write_lesion_nrrd(mask=r.lesion, affine=r.affine, path=folder / "lesion.nrrd")
            write_label_nifti(
                labels=r.unlabelled,
                affine=r.affine,
                out_path=folder / "unlabelled.nii.gz",
                description=UNLABELLED_DESCRIPTION,
            )
            write_label_nifti(
                labels=np.where(r.cavities > 0, r.cavities, r.cells).astype(np.uint8),
                affine=r.affine,
                out_path=folder / CELLS_NAME,
                description=CELLS_DESCRIPTION,
            )
            meta = {**r.meta, **info, "case_id": case_id, "seed": spec.seed}
            (folder / "case.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            log.info(
                "%s: lesion %.2f mL (%s)",
                case_id,
                r.meta["lesion_volume_ml"],
                {
                    k2: v.get("pattern")
                    for k2, v in r.meta["disease"].items()
                    if isinstance(v, dict) and v.get("pattern") != "none"
                },
            )
            ids.append(case_id)
    return ids


def _upper_rows(
    per_sinus: dict[str, dict[str, float]] | None, *, regions: tuple[str, ...]
) -> dict[str, dict[str, float] | None]:
    """``region -> {volume_ml, opacification_pct, lund_mackay}`` (None: not found)."""
    from sinusapp.imaging.quantify import MIN_FOUND_ML

    out: dict[str, dict[str, float] | None] = {}
    for region in regions:
        row = (per_sinus or {}).get(region)
        found = row is not None and row["volume_ml"] >= MIN_FOUND_ML
        out[region] = (
            {k: row[k] for k in ("volume_ml", "opacification_pct", "lund_mackay")}
            if found and row is not None
            else None
        )
    return out


def score(*, folder: Path, bundle: Path) -> dict[str, Any]:
    """Per case of ``folder``: lesion Dice of ``bundle`` where the reference is known, and
    the app's ethmoid / frontal / sphenoid rows (labelling + opacification as the pipeline
    computes them, before ``lesion_regions`` hides what the bundle does not assess) against
    the reference cells (``cells.nii.gz``) and the placed lesion."""
    import torch

    from sinusapp import pipeline
    from sinusapp.imaging.masks import load_reference_mask
    from sinusapp.imaging.quantify import per_sinus_opacification
    from sinusapp.model.dataset_adapter import seg_only_cases_from_folder
    from sinusapp.model.predictor import Predictor
    from sinusapp.synth.realhead import UPPER_REGIONS

    torch.set_num_threads(2)
    predictor = Predictor(bundle, device="cpu")
    regions = tuple(UPPER_REGIONS.values())
    rows = {}
    pairs = []  # (reference row, app row) per case and upper sinus with a reference cell
    for case in seg_only_cases_from_folder(folder):
        volume, truth, _, unknown = case.load()
        result = predictor.predict(volume)
        pred = result.mask > 0
        known = np.ones(truth.shape, bool) if unknown is None else unknown == 0
        p, t = pred & known, truth > 0
        denom = int(p.sum()) + int(t.sum())
        vox_ml = float(np.prod(volume.spacing_mm)) / 1000.0
        row: dict[str, Any] = {
            "dice": None if denom == 0 else round(2.0 * float((p & t).sum()) / denom, 4),
            "truth_ml": round(float(t.sum()) * vox_ml, 3),
            "predicted_known_ml": round(float(p.sum()) * vox_ml, 3),
            "false_ml": round(float((p & ~t).sum()) * vox_ml, 3),
        }
        cells_path = folder / case.case_id / CELLS_NAME
        if cells_path.is_file():
            cells = load_reference_mask(cells_path, volume=volume).astype(np.uint8)
            ref = _upper_rows(
                per_sinus_opacification(lesion_mask=truth, sinus_labels=cells, volume=volume),
                regions=regions,
            )
            app_table, _ = pipeline._per_sinus(volume, result.mask, pred=result, sinus_labels=None)
            app = _upper_rows(app_table, regions=regions)
            row["upper"] = {r: {"reference": ref[r], "app": app[r]} for r in regions}
            pairs += [(ref[r], app[r]) for r in regions if ref[r] is not None]
        rows[case.case_id] = row
        log.info("%s: %s", case.case_id, {k: v for k, v in row.items() if k != "upper"})
    dice = [r["dice"] for r in rows.values() if r["dice"] is not None and r["truth_ml"] > 0.5]
    out: dict[str, Any] = {
        "bundle": str(bundle),
        "cases": rows,
        "median_dice_diseased": float(np.median(dice)) if dice else None,
        "n_diseased": len(dice),
        "median_false_ml": float(np.median([r["false_ml"] for r in rows.values()])),
    }
    if pairs:
        found = [(r, a) for r, a in pairs if a is not None]
        err = [abs(a["opacification_pct"] - r["opacification_pct"]) for r, a in found]
        out["upper_sinuses"] = {
            "n_reference": len(pairs),
            "found_fraction": round(len(found) / len(pairs), 3),
            "median_abs_opacification_error_pts": round(float(np.median(err)), 1) if err else None,
            "lund_mackay_agreement": round(
                float(np.mean([a["lund_mackay"] == r["lund_mackay"] for r, a in found])), 3
            )
            if found
            else None,
            "median_volume_ratio_app_over_reference": round(
                float(np.median([a["volume_ml"] / r["volume_ml"] for r, a in found])), 3
            )
            if found
            else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="the cases' folder")
    ap.add_argument("--heads", nargs="+", default=["vhf_visible_human_female_head"])
    ap.add_argument("--cases", type=int, default=40, help="cases per head (default 40)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument(
        "--bundle",
        type=Path,
        default=REPO / "models" / "sinus_unet",
        help="the bundle whose sinus head anchors the upper-sinus cells (default: shipped)",
    )
    ap.add_argument("--score", type=Path, nargs="*", default=None, help="bundles to score")
    add_pack_arguments(
        ap,
        pack_help="only write the heads' backgrounds as pack entries into DIR (for the GPU "
        "machine)",
        from_pack_help="render from the head backgrounds packed in DIR (no ../shared, no model "
        "run)",
        default_spacing_mm=HEAD_PACK_SPACING_MM,
    )
    ap.add_argument(
        "--healthy-fraction",
        type=float,
        default=HEALTHY_FRACTION,
        help=f"share of cases without disease (default {HEALTHY_FRACTION}; for training a head "
        "that must also leave healthy cells clear, more). The case ids do not depend on it: "
        "write into a fresh --out (training's cache notices the changed files of a reused id)",
    )
    ap.add_argument("--json", type=Path, default=None, help="write the scores here")
    args = ap.parse_args(argv)
    if not 0.0 <= args.healthy_fraction <= 1.0:
        ap.error(f"--healthy-fraction must lie in [0, 1], got {args.healthy_fraction}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if args.pack_heads is not None:
        pack_heads(
            heads=args.heads, out=args.pack_heads, bundle=args.bundle, spacing_mm=args.pack_spacing
        )
        return 0
    if args.out is None:
        ap.error("--out is required (unless --pack-heads)")
    if args.out.is_dir() and any(args.out.iterdir()):
        log.info("%s is not empty: scoring its cases as they are (nothing written)", args.out)
    else:
        write_cases(
            heads=args.heads,
            out=args.out,
            n_cases=args.cases,
            seed=args.seed,
            bundle=args.bundle,
            from_pack=args.from_pack,
            healthy_fraction=args.healthy_fraction,
        )
    results = [score(folder=args.out, bundle=b) for b in args.score or []]
    for r in results:
        log.info(
            "%s: median Dice %s over %d diseased cases, median false lesion %.2f mL; upper "
            "sinuses %s",
            r["bundle"],
            r["median_dice_diseased"],
            r["n_diseased"],
            r["median_false_ml"],
            r.get("upper_sinuses"),
        )
    if args.json and results:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
