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
``unlabelled.nii.gz`` (the hand-marked sinonasal box + 5 mm outside the upper cells: nobody
labelled the maxillary sinuses and nasal cavity of these heads, and the Visible Human's nasal
airway is filled with tissue) and ``case.json``. The upper cells themselves are labelled (the
placed lesion, the rest clear), as is everything outside the box (no lesion).

``--eval`` writes the same for held-out heads with another seed, and scores a bundle:
lesion Dice where the reference is known (outside ``unlabelled``) per case, and the median.

Usage::

    python benchmarks/make_head_disease.py --out /tmp/headdis \
        --heads vhf_visible_human_female_head --cases 40 --seed 5
    python benchmarks/make_head_disease.py --out /tmp/headeval --cases 12 --seed 99 \
        --heads harvard02_cadaver_head_sinus_coverage ge_hispeed_dual_head_tilt_varspacing \
        --score models/sinus_unet
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from make_head_negatives import BOXES, SHARED, _box_mask, _write_nifti  # noqa: E402

from sinusapp.model.dataset_adapter import _seg_only_volume  # noqa: E402
from sinusapp.synth.cohort import sample_cohort  # noqa: E402
from sinusapp.synth.dicomio import CaseDicomInfo, CtSeriesOptions, write_ct_series  # noqa: E402
from sinusapp.synth.realanat import (  # noqa: E402
    Background,
    _kernel_and_noise,
    augment_background,
    place_disease,
)
from sinusapp.synth.realanat_write import _write_lesion_nrrd  # noqa: E402

log = logging.getLogger("make_head_disease")

#: SINUS_LABELS value → CaseSpec region of the upper sinuses
UPPER = {
    3: "ethmoid_ant_L",
    4: "ethmoid_ant_R",
    5: "ethmoid_post_L",
    6: "ethmoid_post_R",
    7: "frontal",
    8: "sphenoid",
}
#: label value of the unlabelled region while rendering (carried through the augmentation)
_UNLABELLED = 200
#: crop around the hand-marked box (mm each side): holds the 80 x 100 x 120 mm block
CROP_MARGIN_MM = 28.0
HEALTHY_FRACTION = 0.1


def head_labels(volume: Any, *, bundle: Path) -> np.ndarray:
    """The head's SINUS_LABELS as the app finds them: model cavities + upper sinuses."""
    from sinusapp.imaging.upper_sinuses import label_upper_sinuses
    from sinusapp.model.predictor import Predictor

    pred = Predictor(bundle, device="cpu").predict(volume)
    labels = np.asarray(pred.sinus_labels, np.uint8).copy()
    found = label_upper_sinuses(hu=volume.array, affine=volume.affine, model_labels=labels)
    if found is None:
        raise SystemExit("no upper sinuses found: the model found no maxillary / nasal anchor")
    upper, box = found
    sub = labels[box]
    sub[upper > 0] = upper[upper > 0]
    return labels


def head_background(name: str, *, bundle: Path) -> tuple[Background, dict[str, Any]]:
    """Crop of head ``name`` around its hand-marked box, with upper cells and unlabelled."""
    heads = {h["name"]: h for h in json.loads(BOXES.read_text(encoding="utf-8"))["heads"]}
    head = heads[name]
    series = SHARED / head["series"]
    volume = _seg_only_volume(series, None)
    b = head["box_lps_mm"]
    box = np.array([b["x"], b["y"], b["z"]], float)
    labels = head_labels(volume, bundle=bundle)
    upper = np.isin(labels, list(UPPER)) & _box_mask(
        volume, box + np.array([[-25.0, 25.0]] * 3)
    )  # the model's stray labels far from the box (temporal region) are not cells
    wide = box.copy()
    wide[:, 0] -= 5.0
    wide[:, 1] += 5.0
    wide[1, 0] -= 10.0
    unknown = _box_mask(volume, wide) & ~ndimage.binary_dilation(upper, iterations=1)
    lab = np.where(upper, labels, np.where(unknown, _UNLABELLED, 0)).astype(np.uint8)
    crop = box.copy()
    crop[:, 0] -= CROP_MARGIN_MM
    crop[:, 1] += CROP_MARGIN_MM
    inside = np.argwhere(_box_mask(volume, crop))
    lo, hi = inside.min(0), inside.max(0) + 1
    sl = tuple(slice(int(a), int(c)) for a, c in zip(lo, hi, strict=True))
    aff = volume.affine.copy()
    aff[:3, 3] = volume.affine[:3, :3] @ lo + volume.affine[:3, 3]
    vox_ml = float(np.prod(volume.spacing_mm)) / 1000.0
    info = {
        "head": name,
        "series": head["series"],
        "crop_index_lo": lo.tolist(),
        "crop_shape": [int(v) for v in hi - lo],
        "upper_cells_ml": {
            UPPER[v]: round(float((lab == v).sum()) * vox_ml, 2) for v in sorted(UPPER)
        },
    }
    bg = Background(
        patient=name,
        hu=volume.array[sl].astype(np.float32),
        labels=np.ascontiguousarray(lab[sl]),
        affine=aff,
    )
    return bg, info


def _plan(spec: Any, *, healthy: bool) -> dict[int, dict[str, Any]]:
    plan = {}
    for value, region in UPPER.items():
        d = spec.disease.get(region)
        on = d.opacification > 0 and not healthy
        plan[value] = {
            "region": region,
            "pattern": d.pattern if on else "none",
            "opacification": float(d.opacification),
            "polyps": int(d.polyps),
            "hyperdense_foci": bool(d.hyperdense_foci),
        }
    return plan


def render(bg: Background, *, spec: Any, healthy: bool) -> dict[str, Any]:
    """Augment the crop and place the upper-sinus disease (deterministic in ``spec.seed``)."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x4EAD]))
    hu, lab, aff, aug = augment_background(bg, rng=rng, pixel_range_mm=(0.6, 1.0))
    lesion_hu = float(np.clip(spec.disease.lesion_hu + rng.normal(0, 5), 10.0, 60.0))
    cavities = np.where(lab == _UNLABELLED, 0, lab)
    out, lesion, info = place_disease(
        hu=hu,
        labels=cavities,
        affine=aff,
        plan=_plan(spec, healthy=healthy),
        lesion_hu=lesion_hu,
        rng=rng,
    )
    out, kern = _kernel_and_noise(out, rng=rng)
    vox_ml = float(abs(np.linalg.det(aff[:3, :3]))) / 1000.0
    return {
        "hu": np.clip(np.rint(out), -1024, 3071).astype(np.int16),
        "lesion": lesion,
        "unlabelled": (lab == _UNLABELLED).astype(np.uint8),
        "affine": aff,
        "meta": {
            "augmentation": {**aug, **kern},
            "healthy_case": healthy,
            "lesion_hu": round(lesion_hu, 2),
            "disease": info,
            "lesion_volume_ml": round(float(lesion.sum()) * vox_ml, 3),
        },
    }


def write_cases(*, heads: list[str], out: Path, n_cases: int, seed: int, bundle: Path) -> list[str]:
    """``n_cases`` per head; returns the case ids."""
    out.mkdir(parents=True, exist_ok=True)
    specs = sample_cohort(n_cases=n_cases * len(heads), seed=seed, center="A")
    rng = np.random.default_rng(seed)
    healthy = rng.uniform(size=len(specs)) < HEALTHY_FRACTION
    ids = []
    for h, name in enumerate(heads):
        bg, info = head_background(name, bundle=bundle)
        log.info("%s: crop %s, upper cells %s", name, info["crop_shape"], info["upper_cells_ml"])
        for n in range(n_cases):
            k = h * n_cases + n
            spec = specs[k]
            case_id = f"HEAD_{name.split('_')[0]}_{seed}_{n:03d}"
            r = render(bg, spec=spec, healthy=bool(healthy[k]))
            folder = out / case_id
            write_ct_series(
                hu=r["hu"],
                affine=r["affine"],
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
            _write_lesion_nrrd(mask=r["lesion"], affine=r["affine"], path=folder / "lesion.nrrd")
            _write_nifti(r["unlabelled"], r["affine"], folder / "unlabelled.nii.gz")
            meta = {**r["meta"], **info, "case_id": case_id, "seed": spec.seed}
            (folder / "case.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            log.info(
                "%s: lesion %.2f mL (%s)",
                case_id,
                r["meta"]["lesion_volume_ml"],
                {
                    k2: v.get("pattern")
                    for k2, v in r["meta"]["disease"].items()
                    if isinstance(v, dict) and v.get("pattern") != "none"
                },
            )
            ids.append(case_id)
    return ids


def score(*, folder: Path, bundle: Path) -> dict[str, Any]:
    """Lesion Dice of ``bundle`` where the reference is known, per case of ``folder``."""
    import torch

    from sinusapp.model.dataset_adapter import seg_only_cases_from_folder
    from sinusapp.model.predictor import Predictor

    torch.set_num_threads(2)
    predictor = Predictor(bundle, device="cpu")
    rows = {}
    for case in seg_only_cases_from_folder(folder):
        volume, truth, _, unknown = case.load()
        pred = predictor.predict(volume).mask > 0
        known = unknown == 0
        p, t = pred & known, truth > 0
        denom = int(p.sum()) + int(t.sum())
        vox_ml = float(np.prod(volume.spacing_mm)) / 1000.0
        rows[case.case_id] = {
            "dice": None if denom == 0 else round(2.0 * float((p & t).sum()) / denom, 4),
            "truth_ml": round(float(t.sum()) * vox_ml, 3),
            "predicted_known_ml": round(float(p.sum()) * vox_ml, 3),
            "false_ml": round(float((p & ~t).sum()) * vox_ml, 3),
        }
        log.info("%s: %s", case.case_id, rows[case.case_id])
    dice = [r["dice"] for r in rows.values() if r["dice"] is not None and r["truth_ml"] > 0.5]
    return {
        "bundle": str(bundle),
        "cases": rows,
        "median_dice_diseased": float(np.median(dice)) if dice else None,
        "n_diseased": len(dice),
        "median_false_ml": float(np.median([r["false_ml"] for r in rows.values()])),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
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
    ap.add_argument("--json", type=Path, default=None, help="write the scores here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if not (args.out.is_dir() and any(args.out.iterdir())):
        write_cases(
            heads=args.heads, out=args.out, n_cases=args.cases, seed=args.seed, bundle=args.bundle
        )
    results = [score(folder=args.out, bundle=b) for b in args.score or []]
    for r in results:
        log.info(
            "%s: median Dice %s over %d diseased cases, median false lesion %.2f mL",
            r["bundle"],
            r["median_dice_diseased"],
            r["n_diseased"],
            r["median_false_ml"],
        )
    if args.json and results:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
