"""Train a model bundle: stratified k-fold CV on the train cohort, a final fit, external scoring.

Reads a training dataset (DESIGN §3: one folder per case with the CT and a reference mask,
clinical.csv with recurrence and cohort train/test — `sinusapp synth` writes one) and writes a
model bundle (weights.safetensors, manifest.json, MODEL_CARD.md) into --out. Checkpoints, the
preprocessing cache and per-case predictions go into --work-dir (default: OUT.work), so an
interrupted run continues with --resume. The test cohort is scored for reporting only.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sinusapp.errors import InputError

__all__ = ["add_arguments", "resolve_lesion_regions", "run"]

log = logging.getLogger(__name__)


def _block(text: str) -> tuple[int, int, int]:
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--block must be integers like 48,64,64, got {text!r}"
        ) from None
    if len(vals) == 1:
        vals *= 3
    if len(vals) != 3:
        raise argparse.ArgumentTypeError(f"--block needs 1 or 3 integers, got {text!r}")
    return (vals[0], vals[1], vals[2])


def resolve_lesion_regions(
    option: str | None, *, init_manifest: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The new bundle's ``lesion_regions`` from ``--lesion-regions`` and the init bundle.

    ``option`` ``None``: the ``--init-weights`` bundle's, so that fine-tuning the bundled
    model (which does not assess the ethmoid, frontal and sphenoid sinuses) does not quietly
    grade them again; ``"all"``: every region (``None``); else comma-separated region names.

    Raises
    ------
    InputError
        A name is not a sinus region.
    """
    from sinusapp.imaging.quantify import REGIONS

    if option is None:
        spec = (init_manifest or {}).get("lesion_regions")
        if spec is None:
            return None
        log.info(
            "lesion_regions from the --init-weights bundle: opacification assessed in %s "
            "(--lesion-regions all to change it)",
            ", ".join(spec.get("assessed") or ()),
        )
        kept = "kept from the --init-weights bundle:"
        why = str(spec.get("why") or "").strip()
        while why.startswith(kept):  # a fine-tune of a fine-tune said it once per generation
            why = why[len(kept) :].strip()
        text = f"{kept} {why}" if why else kept.rstrip(":") + "."
        return {"assessed": list(spec.get("assessed") or ()), "why": text}
    if option.strip().lower() == "all":
        return None
    names = [n.strip() for n in option.split(",") if n.strip()]
    unknown = [n for n in names if n not in REGIONS]
    if unknown or not names:
        raise InputError(
            f"--lesion-regions {option!r}: unknown region(s) {unknown or '(none given)'}",
            hint=f"give 'all' or comma-separated names of {', '.join(REGIONS)}",
        )
    return {"assessed": names, "why": f"set by sinusapp train --lesion-regions {option}"}


def seg_only_cases(folders: list[Path]) -> tuple[list[Any], str]:
    """The segmentation-only cases of every ``--seg-only`` folder, in order, and the sentence
    per folder that the data description gets.

    Raises
    ------
    InputError
        A folder cannot be read, or two cases share a name (their cache entries and the
        manifest's ``seg_only_case_ids`` would collide).
    """
    from sinusapp.model.dataset_adapter import seg_only_cases_from_folder

    cases: list[Any] = []
    note = ""
    for folder in folders:
        found = seg_only_cases_from_folder(folder)
        cases += found
        note += (
            f" Plus {len(found)} segmentation-only case(s) from '{Path(folder).name}' "
            "(real backgrounds without an outcome; segmentation heads only)."
        )
    ids = [c.case_id for c in cases]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise InputError(
            f"the --seg-only folders hold cases with the same name: {twice[:5]}",
            hint="give each folder's cases distinct names (or pass each folder once)",
        )
    return cases, note


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options (no torch import here: the CLI builds every parser)."""
    parser.add_argument("dataset", type=Path, help="training dataset folder (with clinical.csv)")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing bundle in --out"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="checkpoints + cache (default OUT.work)"
    )
    parser.add_argument("--epochs", type=int, default=40, help="epochs per model (default 40)")
    parser.add_argument("--folds", type=int, default=5, help="CV folds; 0 = no CV (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    parser.add_argument(
        "--task",
        choices=("multi", "seg", "cls"),
        default="multi",
        help="multi-task or a single-task ablation",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoints in the work dir"
    )
    parser.add_argument("--width", type=int, default=8, help="base width (paper: 16; default 8)")
    parser.add_argument(
        "--levels", type=int, default=4, help="resolution levels (paper: 5; default 4)"
    )
    parser.add_argument(
        "--spacing", type=float, default=2.0, help="isotropic input spacing, mm (default 2)"
    )
    parser.add_argument(
        "--block",
        type=_block,
        default=(48, 64, 64),
        help="input block in voxels: Z,Y,X (superior, posterior, left) or one side "
        "(default 48,64,64)",
    )
    parser.add_argument(
        "--patch",
        type=_block,
        default=None,
        help="train on random patches of this size (Z,Y,X voxels) cut from the block; the "
        "DLR-score then comes from the central patch (default: whole blocks)",
    )
    parser.add_argument(
        "--sinus-head",
        action="store_true",
        help="add the sinus-labelling head (maxillary L/R, nasal cavity) trained on the "
        "cases' sinus_labels maps",
    )
    parser.add_argument(
        "--sinus-upper",
        action="store_true",
        help="with --sinus-head: the head also labels the ethmoid (anterior / posterior, "
        "L/R), frontal and sphenoid sinuses (whole cells), learned from the cases whose "
        "labels hold them (the phantoms, --seg-only head cases with cells.nii.gz); cases "
        "whose labels lack them (NasalSeg) do not say where they are, only where the "
        "maxillary sinuses and the nasal cavity are. The app then takes these regions from "
        "the model instead of its rule-based labelling",
    )
    parser.add_argument(
        "--cls-lesion-features",
        action="store_true",
        help="feed the classification head the lesion probability's mean over its field of "
        "view (segmentation-guided DLR-score; see NetworkConfig.cls_lesion_features)",
    )
    parser.add_argument(
        "--init-weights",
        type=Path,
        default=None,
        metavar="BUNDLE",
        help="start every model from this bundle's weights (fine-tuning); tensors that do "
        "not fit the new network start fresh",
    )
    parser.add_argument(
        "--lesion-regions",
        default=None,
        metavar="REGIONS",
        help="regions whose opacification the new model's lesion head measures, comma-"
        "separated (e.g. maxillary_L,maxillary_R,nasal_cavity), or 'all'; the others are shown "
        "as not assessed. Default: the --init-weights bundle's (the bundled model: maxillary "
        "sinuses and nasal cavity), else all. Say 'all' only when the training data hold "
        "real-anatomy disease in every sinus",
    )
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="optimizer steps per epoch (default: one pass over the cases)",
    )
    parser.add_argument(
        "--seg-only-share",
        type=float,
        default=None,
        metavar="F",
        help="share (0-1) of each epoch's drawn patches taken from the --seg-only cases, the "
        "rest from the cohort (default: every case drawn equally often, so the share is their "
        "share of the cases)",
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--dice", choices=("soft", "generalised"), default="soft")
    parser.add_argument("--no-augment", action="store_true", help="disable augmentation")
    parser.add_argument("--no-amp", action="store_true", help="fp32 on CUDA")
    parser.add_argument(
        "--cpu-bf16",
        action="store_true",
        help="on the CPU, bfloat16 autocast and channels-last tensors: about 1.8x faster steps "
        "on a CPU with native bfloat16 (AVX512-BF16 or AMX; the log says whether this one has "
        "it), slower on one without. Weights are written in float32. Default: float32",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="models trained at once in separate processes (the CV folds and the final model "
        "are independent; on a GPU, folds+1 keeps it busy). Default 1",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, min(8, (os.cpu_count() or 2) - 1)),
        help="processes for preprocessing",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    parser.add_argument(
        "--max-cases",
        type=int,
        default=None,
        help="use only the first N cases of each cohort (smoke tests)",
    )
    parser.add_argument(
        "--seg-only",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help="folder of segmentation-only cases (real backgrounds without an outcome, e.g. "
        "whole heads with or without placed disease; one sub-folder each with ct/, an optional "
        "lesion mask and unlabelled.nii.gz, see docs/dataset_format.md): added to every "
        "model's training set; they train the segmentation heads only and are never scored "
        "(repeat it for several folders, e.g. head disease cases and head negatives)",
    )
    parser.add_argument(
        "--data-note",
        default="",
        help="appended to the data description in the manifest and model card (e.g. the "
        "`sinusapp synth` command that made the cohort)",
    )
    parser.add_argument(
        "--job",
        action="append",
        default=None,
        metavar="NAME",
        help="train only this model (fold0 ... fold{k-1}, final; repeatable): the models run "
        "as independent jobs sharing --work-dir (other jobs' checkpoints are kept); a last "
        "run with --resume and no --job writes the bundle",
    )
    parser.add_argument("--name", default="sinus_unet")
    parser.add_argument("--model-version", default="1.0.0")


def run(args: argparse.Namespace) -> int:
    """Train and write the bundle; returns 0."""
    from sinusapp.errors import InputError

    # checked before anything heavy is imported or read (a bundle is never replaced silently)
    if args.out.exists() and not args.out.is_dir():
        raise InputError(
            f"--out {str(args.out)!r} is a file, not a bundle folder",
            path=args.out,
            hint="choose a new folder for the bundle",
        )
    if (args.out / "manifest.json").exists() and not args.overwrite:
        raise InputError(
            f"--out {str(args.out)!r} already holds a model bundle",
            path=args.out,
            hint="choose a new folder, or pass --overwrite to replace that bundle",
        )
    import torch

    from sinusapp.model.config import NetworkConfig, PreprocessConfig
    from sinusapp.model.dataset_adapter import cases_from_dataset
    from sinusapp.model.train import TrainConfig, run_training

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        from sinusapp.model.config import SINUS_HEAD_REGIONS, SINUS_HEAD_REGIONS_ALL

        if args.sinus_upper and not args.sinus_head:
            raise InputError(
                "--sinus-upper widens the sinus head; it needs --sinus-head",
                hint="add --sinus-head, or leave out --sinus-upper",
            )
        head = SINUS_HEAD_REGIONS_ALL if args.sinus_upper else SINUS_HEAD_REGIONS
        network = NetworkConfig(
            base_width=args.width,
            levels=args.levels,
            task=args.task,
            sinus_classes=len(head) if args.sinus_head else 0,
            cls_lesion_features=args.cls_lesion_features,
        )
        preprocess = PreprocessConfig(
            spacing_mm=args.spacing, block_shape=args.block, patch_shape=args.patch
        )
        preprocess.check_divisible(network.divisor)
        from sinusapp.model.bundle import check_field_of_view

        check_field_of_view(preprocess)  # before hours of training, not when writing
        tcfg = TrainConfig(
            epochs=args.epochs,
            folds=args.folds,
            seed=args.seed,
            batch_size=args.batch_size,
            lr=args.lr,
            dice=args.dice,
            augment=not args.no_augment,
            amp=not args.no_amp,
            cpu_bf16=args.cpu_bf16,
            steps_per_epoch=args.steps_per_epoch,
            seg_only_share=args.seg_only_share,
            init_weights=None if args.init_weights is None else str(args.init_weights),
        )
    except ValueError as exc:
        raise InputError(f"Invalid training option: {exc}") from exc
    if args.seg_only_share is not None and not args.seg_only:
        raise InputError(
            f"--seg-only-share {args.seg_only_share:g} needs segmentation-only cases to draw",
            hint="add --seg-only DIR (whole-head cases, negatives), or drop --seg-only-share",
        )
    if args.cpu_bf16:  # before reading the data
        from sinusapp.model.predictor import resolve_device

        _check_cpu_bf16(resolve_device(args.device))
    init_bundle = None
    if args.init_weights is not None:
        from sinusapp.model.bundle import load_bundle

        init_bundle = load_bundle(args.init_weights)  # a bad bundle fails now
    lesion_regions = resolve_lesion_regions(
        args.lesion_regions, init_manifest=None if init_bundle is None else init_bundle.manifest
    )
    cases, description = cases_from_dataset(args.dataset, max_cases=args.max_cases)
    seg_only, note = seg_only_cases(args.seg_only or [])
    description += note
    if args.data_note:
        description += " " + args.data_note
    work = args.work_dir or args.out.with_name(args.out.name + ".work")
    command = "sinusapp " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    # under torchrun: one process group over every process (DDP); rank 0 alone writes
    from sinusapp.model import distributed
    from sinusapp.model.predictor import resolve_device

    ctx = distributed.init_from_env(resolve_device(args.device))
    resume = args.resume
    if distributed.restarted_by_torchrun():
        log.warning("restarted by torchrun after a failure: continuing from the checkpoints")
        resume = True
    try:
        bundle = run_training(
            cases,
            out_dir=args.out,
            work_dir=work,
            network=network,
            preprocess=preprocess,
            tcfg=tcfg,
            device=args.device if ctx is None else ctx.device,
            workers=args.workers,
            parallel=args.parallel,
            resume=resume,
            name=args.name,
            version=args.model_version,
            data_description=description,
            command=command,
            trained_on_synthetic=description.startswith("Synthetic"),
            only_jobs=args.job,
            seg_only=seg_only,
            lesion_regions=lesion_regions,
        )
    finally:
        distributed.shutdown()
    if bundle is None:
        sys.stdout.write(
            f"job(s) {', '.join(args.job)} done; once every model is trained, run the same "
            "command with --resume and without --job to write the bundle\n"
        )
        return 0
    if ctx is not None and ctx.rank != 0:
        return 0  # rank 0 reports
    m = bundle.manifest["metrics"]
    cv = m.get("cv") or {}
    ext = m.get("external") or {}
    log.info("bundle %s written (sha256 %s)", bundle.path, bundle.sha256)
    sys.stdout.write(
        f"bundle written to {bundle.path}\n"
        f"CV: DSC {cv.get('dsc_mean')}, AUC {cv.get('auc_mean')} (pooled {cv.get('auc_pooled')})\n"
        f"external: DSC {ext.get('dsc_mean')}, AUC {ext.get('auc')}\n"
        f"oracle AUC {m.get('oracle_auc')}\n"
    )
    return 0


def _check_cpu_bf16(device: str) -> None:
    """Refuse ``--cpu-bf16`` on a GPU, and on a CPU that does not compute bfloat16 natively:
    there it is emulated, and training crawls (measured on an AMD EPYC without AVX512-BF16 /
    AMX, session 30: about 50 s per step of the bundled architecture against 1.3 s in
    float32)."""
    if not device.startswith("cpu"):
        raise InputError(
            f"--cpu-bf16 is for training on the CPU, but the device is {device!r}",
            hint="drop --cpu-bf16 (on CUDA bfloat16 autocast is on by default; --no-amp turns "
            "it off) or add --device cpu",
        )
    from sinusapp.model.train import cpu_has_native_bf16

    if not cpu_has_native_bf16():
        raise InputError(
            "--cpu-bf16: this CPU has no native bfloat16 (torch finds neither AVX512-BF16 nor "
            "AMX), so bfloat16 would be emulated and training tens of times slower than "
            "float32",
            hint="drop --cpu-bf16 (float32 is the default); it speeds training up only on "
            "CPUs with AVX512-BF16 or AMX (e.g. Intel Xeon Sapphire Rapids or later)",
        )
    log.info("--cpu-bf16: this CPU computes bfloat16 natively (AVX512-BF16 / AMX)")
