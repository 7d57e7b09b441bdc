"""Choose a bundle's lesion post-processing on the VALIDATION split only, and record it.

Usage (from the repository root)::

    python benchmarks/choose_postprocessing.py --bundle DIR --cohort COHORT
        [--nasalseg ../shared/data/nasalseg] [--max-fp-ml 0.5] [--write]

The candidates (:class:`sinusapp.model.config.Postprocessing`: threshold 0.5 to 0.9,
with or without a one-voxel opening, with or without dropping components under 30 block
voxels) are scored on the cohort's validation-background cases (``background_split = val``:
never trained on) and on the NasalSeg validation patients' crops as they are (healthy
sinuses: any lesion is false). The chosen one has the best median Dice among those whose
median false lesion on the healthy crops is at most ``--max-fp-ml`` (the best FP if none is).
The test split is not read. ``--write`` records the choice in the bundle (re-sealed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--cohort", type=Path, required=True)
    ap.add_argument("--nasalseg", type=Path, default=ROOT.parent / "shared" / "data" / "nasalseg")
    ap.add_argument("--max-fp-ml", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    import torch

    from sinusapp.dataset import Dataset, load_case
    from sinusapp.dicom import load_volume
    from sinusapp.model import preprocess as pp
    from sinusapp.model.bundle import set_postprocessing
    from sinusapp.model.config import Postprocessing
    from sinusapp.model.predictor import Predictor
    from sinusapp.synth.realanat import load_split

    torch.set_num_threads(args.threads)
    predictor = Predictor(args.bundle, device="cpu")
    cfg = predictor.bundle.preprocess
    net = predictor._model  # the network only: the post-processing is what is varied

    def block_probability(volume):  # type: ignore[no-untyped-def]
        region = pp.locate_sinus_region(volume)
        aff = pp.make_block_affine(region.center_lps, cfg)
        hu = pp.resample_to_block(volume, block_affine=aff, config=cfg)
        img = pp.normalise_hu(hu, config=cfg)
        with torch.inference_mode():
            out = net(torch.from_numpy(img)[None, None], classify=False)
        return torch.sigmoid(out.seg_logits[0, 0].float()).numpy(), aff

    candidates = [
        Postprocessing(lesion_threshold=t, opening=o, min_component_vox=m)
        for t, o, m in itertools.product(
            (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9), (False, True), (0, 30)
        )
    ]
    dice: dict[int, list[float]] = {i: [] for i in range(len(candidates))}
    fp: dict[int, list[float]] = {i: [] for i in range(len(candidates))}

    def masks(volume):  # type: ignore[no-untyped-def]
        prob, aff = block_probability(volume)
        for i, c in enumerate(candidates):
            yield (
                i,
                pp.map_back(
                    c.apply(prob), block_affine=aff, volume=volume, threshold=c.lesion_threshold
                ).astype(bool),
            )

    ds = Dataset.open(args.cohort)
    val = [c for c in ds.cases if str(c.clinical.get("background_split", "")) == "val"]
    for case in val:
        volume, lesion, _ = load_case(case)
        if not lesion.any():
            continue
        truth = lesion.astype(bool)
        for i, m in masks(volume):
            dice[i].append(2.0 * float((m & truth).sum()) / max(1, int(m.sum() + truth.sum())))
        print(f"  {case.case_id}", flush=True)
    for patient in sorted(p for p, s in load_split().items() if s == "val"):
        volume = load_volume(args.nasalseg / patient / "ct")
        for i, m in masks(volume):
            fp[i].append(float(m.sum() * volume.voxel_volume_ml))
        print(f"  {patient}", flush=True)
    rows = [
        {
            **c.to_dict(),
            "dice_median": float(np.median(dice[i])),
            "fp_ml_median": float(np.median(fp[i])),
        }
        for i, c in enumerate(candidates)
    ]
    for r in rows:
        print(json.dumps(r))
    ok = [r for r in rows if r["fp_ml_median"] <= args.max_fp_ml]
    best = (
        max(ok, key=lambda r: r["dice_median"])
        if ok
        else min(rows, key=lambda r: r["fp_ml_median"])
    )
    chosen = Postprocessing(
        lesion_threshold=best["lesion_threshold"],
        opening=best["opening"],
        min_component_vox=best["min_component_vox"],
    )
    print(f"chosen on {len(val)} validation cases and the validation crops: {best}")
    if args.write:
        set_postprocessing(args.bundle, chosen)
        print(f"recorded in {args.bundle}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
