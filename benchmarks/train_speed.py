"""Seconds per training step on the CPU: float32 against ``--cpu-bf16``, in the same run.

Run: ``python benchmarks/train_speed.py --cohort DIR [--cases 16] [--steps 20] [--rounds 2]``
(``DIR``: a real-anatomy cohort, ``sinusapp synth --real-anatomy ../shared/data/nasalseg``).
It trains the shipped bundle's architecture (``models/sinus_unet``: width, levels, sinus head,
classification head) with its preprocessing, patches and batch 2 of ``sinusapp train``, from
its weights, with augmentation: the real training step, data movement and augmentation
included, not the network alone. Each round times one epoch of ``--steps`` steps per setting
after a warm-up epoch, alternating the settings so that the machine's drift falls on both;
it prints the median seconds per step, the ratio, and the last epoch's segmentation loss of
each (a sanity check that bfloat16 trains, not an equality). For benchmarks/RESULTS.md
"train on the CPU".
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sinusapp.model.bundle import load_bundle  # noqa: E402
from sinusapp.model.dataset_adapter import cases_from_dataset  # noqa: E402
from sinusapp.model.train import (  # noqa: E402
    TrainConfig,
    cpu_has_native_bf16,
    prepare_cases,
    train_model,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cohort", type=Path, required=True, help="a real-anatomy cohort folder")
    ap.add_argument("--bundle", type=Path, default=REPO / "models" / "sinus_unet")
    ap.add_argument(
        "--cases", type=int, default=16, help="cases per cohort of the dataset (default 16)"
    )
    ap.add_argument("--steps", type=int, default=20, help="timed steps per epoch (default 20)")
    ap.add_argument("--rounds", type=int, default=2, help="timed epochs per setting (default 2)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.bundle)
    network, preprocess = bundle.network, bundle.preprocess
    cases, _ = cases_from_dataset(args.cohort, max_cases=args.cases)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare_cases(cases, cache_dir=Path(tmp), config=preprocess)
    per_step: dict[bool, list[float]] = {False: [], True: []}
    seg_loss: dict[bool, float] = {}
    for _ in range(args.rounds):
        for bf16 in (False, True):
            tcfg = TrainConfig(
                epochs=2,
                folds=0,
                batch_size=2,
                lr=1e-4,
                steps_per_epoch=args.steps,
                init_weights=str(args.bundle),
                cpu_bf16=bf16,
            )
            _, _, hist = train_model(
                prepared,
                network=network,
                tcfg=tcfg,
                device="cpu",
                run_seed=0,
                quiet=True,
                patch_shape=preprocess.patch_shape,
            )
            per_step[bf16].append(hist[-1]["seconds"] / args.steps)
            seg_loss[bf16] = hist[-1]["seg"]
    fp32, bf16 = statistics.median(per_step[False]), statistics.median(per_step[True])
    native = cpu_has_native_bf16()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"{args.threads} torch threads, native bfloat16: {native}, torch {torch.__version__}"
    )
    print(
        f"bundle {bundle.version} architecture, {len(prepared)} cases of "
        f"{args.cohort}, patches {preprocess.patch_shape}, batch 2, {args.steps} steps × "
        f"{args.rounds} rounds"
    )
    print(f"float32:    {fp32:.3f} s/step  (epochs: {[round(v, 3) for v in per_step[False]]})")
    print(f"--cpu-bf16: {bf16:.3f} s/step  (epochs: {[round(v, 3) for v in per_step[True]]})")
    print(f"ratio float32 / bf16: {fp32 / bf16:.2f}")
    print(f"last epoch's seg loss: float32 {seg_loss[False]:.4f}, bf16 {seg_loss[True]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
