"""Training: stratified k-fold cross-validation, a final fit on all training cases, a bundle.

The recipe (``sinusapp train``):

1. Every case is preprocessed once (locate → resample → normalise, exactly as at inference)
   and cached as ``.npz`` in the work folder, keyed by the preprocessing settings, so epochs
   only read memory.
2. Stratified ``folds``-fold CV on the *train* cohort: a model per fold, trained for a fixed
   number of epochs (no early stopping, no checkpoint selection), evaluated on its held-out
   fold: DSC per case (at the model's resolution) and AUC of the DLR-score.
3. A final model on all training cases, same recipe. It is the bundle's model.
4. The *test* cohort is scored by the final model for REPORTING only (external DSC, AUC); it
   takes part in no choice. Cases marked ``holdout`` (a generated cohort's validation
   backgrounds, see :func:`sinusapp.model.dataset_adapter.cases_from_dataset`) are trained on
   by no model and scored by the final one: with ``folds=0`` their DLR-scores are the
   out-of-sample scores the nomogram is fitted on.

Seeded (the data order, augmentation and initialisation of fold ``f`` in epoch ``e`` derive
from ``(seed, f, e)``), resumable (a checkpoint per fold after every epoch; a finished fold
keeps its result), CPU or CUDA (bfloat16 autocast on CUDA). Augmentation, on the device:
flips on all axes, scale jitter (spacing variation between scanners), intensity scale/shift,
blur and noise — against the scanner shift between centre A and centre B.

With a sinus-labelling head (``NetworkConfig.sinus_classes``) the cases' sinus label maps
are cached with the blocks and trained as a third task; flips are then left-right only (with
the left / right labels swapped): upside-down or back-to-front anatomy is not what a CT
shows, and the air–fluid levels follow gravity. With ``PreprocessConfig.patch_shape`` every
step trains on random patches cut from the cached blocks (all three heads), and evaluation
runs as inference does: segmentation on the whole block, the DLR-score on the central patch.

Under ``torchrun`` (:mod:`sinusapp.model.distributed`) every model is trained with
DistributedDataParallel: all processes draw the same seeded batch order, patches and
augmentation for each optimizer step, and each trains on its share of that batch (the
``batch_size`` is the global batch, split across the processes), so the run follows the
single-process one up to the order of floating-point sums. Rank 0 alone preprocesses,
writes checkpoints, fold results, predictions.csv and the bundle; every rank resumes from the
same checkpoints. With one process nothing changes.

This module imports torch; it is imported when training starts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from tqdm import tqdm

from sinusapp.errors import InputError, NotSinusCTError
from sinusapp.model import preprocess as pp
from sinusapp.model.bundle import Bundle, save_bundle
from sinusapp.model.config import SINUS_HEAD_REGIONS, NetworkConfig, PreprocessConfig
from sinusapp.model.distributed import barrier, is_main, rank_world
from sinusapp.model.losses import MultiTaskLoss
from sinusapp.model.network import UNet3D
from sinusapp.model.predictor import resolve_device
from sinusapp.model.sinus_head import (
    SINUS_IGNORE,
    mirror_class_lut,
    partial_targets,
    resample_labels_to_block,
    sinus_covered,
    sinus_head_target,
)

__all__ = [
    "NO_OUTCOME",
    "PreparedCase",
    "TrainConfig",
    "TrainingCase",
    "augment_batch",
    "cpu_has_native_bf16",
    "epoch_order",
    "evaluate_model",
    "prepare_cases",
    "run_training",
    "train_model",
]

log = logging.getLogger(__name__)

#: ``TrainingCase.recurrence`` of a segmentation-only case (a real background without an
#: outcome, ``sinusapp train --seg-only``): the classification loss ignores it.
NO_OUTCOME = -1


@dataclass(frozen=True, slots=True)
class TrainingCase:
    """One case of a training dataset, loaded on demand.

    Attributes
    ----------
    case_id:
        Identifier (folder name).
    cohort:
        ``train``, ``holdout`` (a training-cohort case kept out of every model, scored by the
        final one) or ``test``.
    recurrence:
        0 / 1 outcome; :data:`NO_OUTCOME` for a segmentation-only case (it trains the
        segmentation heads only, never the DLR-score).
    load:
        Returns ``(Volume, lesion mask on the CT grid)``, ``(Volume, lesion mask, sinus
        label map | None)`` (:data:`~sinusapp.imaging.quantify.SINUS_LABELS` values on the
        CT grid) or ``(Volume, lesion mask, sinus label map | None, unlabelled | None)``,
        where ``unlabelled`` (non-zero) marks voxels whose reference is unknown: the lesion
        loss does not count them, nor does the sinus-head loss unless the label map holds
        a cavity there (a whole head's maxillary / nasal labels from a model). Must be picklable (a
        top-level function or :func:`functools.partial` of one) to preprocess in parallel.
    extra:
        Other per-case values kept for reporting (e.g. the synthetic cohort's true risk).
    center_lps:
        Where to centre the block (LPS mm) when the dataset knows where the sinuses are (a
        generated cohort's labelled box); ``None``: the locator, as at inference.
    sources:
        The files or folders ``load`` reads (a case folder; links followed). The
        preprocessing cache is keyed by case id, so a cached case whose sources changed
        since (a corrected label, a regenerated dataset under the same ids) is prepared
        again (:func:`source_fingerprint`). Empty: the cache is trusted as it is.
    """

    case_id: str
    cohort: str
    recurrence: int
    load: Callable[[], tuple[Any, ...]]
    extra: dict[str, float] = field(default_factory=dict)
    center_lps: tuple[float, float, float] | None = None
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PreparedCase:
    """A preprocessed case: network input, target mask, label."""

    case_id: str
    cohort: str
    recurrence: int
    image: np.ndarray  # float16 block, normalised
    mask: np.ndarray  # uint8 block: lesion partial-volume fraction × 255 (≥ 128: lesion)
    located: bool  # False when the locator failed and the mask's centre was used
    extra: dict[str, float] = field(default_factory=dict)
    sinus: np.ndarray | None = None  # uint8 block of SINUS_HEAD_REGIONS_ALL classes, 255 = unknown
    seg_valid: np.ndarray | None = None  # uint8 block, 1 where the lesion reference is known
    # bool (len(SINUS_HEAD_REGIONS_ALL),): the classes the case's label map holds
    # (sinus_head.sinus_covered); None: every class (caches before v4)
    sinus_covered: np.ndarray | None = None
    # source_fingerprint of the files it was prepared from ("": not recorded); part of the
    # training fingerprint, so a finished model of a changed case is not kept on --resume
    source: str = ""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Training settings (all recorded in the manifest).

    ``epochs`` per model, ``folds`` for CV (0: no CV), ``batch_size``, AdamW ``lr`` with
    a cosine schedule stepped per epoch after ``warmup_epochs`` of linear warm-up.
    ``init_weights``: a model bundle folder whose weights start every model (fine-tuning
    an earlier bundle); tensors whose name or shape differ (a new or widened head) start
    from their fresh initialisation, and the log names them.
    ``amp``: bfloat16 autocast on CUDA. ``cpu_bf16``: on the CPU, bfloat16 autocast and
    channels-last 3-D tensors (oneDNN's fast path: about 1.8× fewer seconds per training step
    of the bundled network on a CPU with native bfloat16, AVX512-BF16 or AMX; slower on one
    without; refused on CUDA, where ``amp`` does this). Off by default, so that CPU training
    stays bit-for-bit what it was; the weights are written in float32 either way.
    ``seg_only_share``: the share of each epoch's drawn patches that come from the
    segmentation-only cases (whole heads, negatives), the rest from the cohort. ``None``
    (default) draws every case equally often, so the share is their share of the cases:
    T2's 112 head items were 36 % of its draws and its NasalSeg validation Dice fell from
    0.775 to 0.753 (benchmarks/RESULTS.md, session 33).
    """

    epochs: int = 40
    folds: int = 5
    seed: int = 0
    batch_size: int = 4
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    dice: str = "soft"
    augment: bool = True
    amp: bool = True
    steps_per_epoch: int | None = None
    init_weights: str | None = None
    cpu_bf16: bool = False
    seg_only_share: float | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be ≥ 1, got {self.epochs}")
        if self.folds < 0 or self.folds == 1 or self.folds > 20:
            raise ValueError(f"folds must be 0 (no CV) or 2–20, got {self.folds}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be ≥ 1, got {self.steps_per_epoch}")
        if self.seg_only_share is not None and not 0.0 < self.seg_only_share < 1.0:
            raise ValueError(
                f"seg_only_share must lie strictly between 0 and 1 (or be None), got "
                f"{self.seg_only_share}"
            )


# --------------------------------------------------------------------------------------------
# preprocessing cache

#: Bump when the cached arrays change meaning (v2: mask = partial-volume fraction × 255;
#: v3: sinus-head label block, reference block centre; v4: the sinus block holds every
#: SINUS_HEAD_REGIONS_ALL class, with the classes the case covers; v5: a cavity labelled
#: inside a case's unlabelled region stays known to the sinus head).
_CACHE_VERSION = 5


def _prep_key(cfg: PreprocessConfig) -> str:
    blob = json.dumps([cfg.to_dict(), _CACHE_VERSION], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def source_fingerprint(paths: Sequence[str | Path]) -> str:
    """A digest of the files under ``paths`` (path relative to it, size and modification
    time of each; folders walked, links to folders followed once): what a cached case was
    prepared from.

    Cheap (no file is read), so every run checks every case. A rewritten file counts as
    changed even when its content is the same (it is prepared again, nothing worse); a
    rewrite that keeps size and modification time (``cp -p`` of other data) goes unseen.
    Where the dataset lies does not count (a moved dataset keeps its cache).
    """
    h = hashlib.sha256()
    for n, root in enumerate(map(Path, paths)):
        h.update(f"{n}\0".encode())
        files = [(root.name, root)] if root.is_file() else sorted(_walk_files(root))
        for rel, f in files:
            try:
                st = f.stat()
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:  # a dangling link or a file gone meanwhile
                h.update(f"{rel}\0missing\n".encode())
    return h.hexdigest()[:16]


def _walk_files(root: Path) -> list[tuple[str, Path]]:
    """``(path relative to root, path)`` of every file under ``root``; a linked folder is
    followed (a case's ``ct/`` often is one), each real folder once (no link loops)."""
    seen: set[tuple[int, int]] = set()
    out: list[tuple[str, Path]] = []
    for d, dirs, names in os.walk(root, followlinks=True):
        try:
            st = os.stat(d)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        out += [(os.path.relpath(os.path.join(d, n), root), Path(d) / n) for n in names]
    return out


def _cached_source(path: Path) -> str | None:
    """The source fingerprint a cache file was written with (``None``: an older cache;
    ``"unreadable"``: a broken file)."""
    try:
        with np.load(path) as z:
            return str(z["source"]) if "source" in z.files else None
    except Exception as exc:  # noqa: BLE001 - any broken cache file is prepared again
        log.warning("cached case %s is unreadable (%s); preparing it again", path.name, exc)
        return "unreadable"


def _prepare_one(case: TrainingCase, cfg: PreprocessConfig, cache_path: Path) -> PreparedCase:
    source = source_fingerprint(case.sources) if case.sources else ""
    if cache_path.is_file():
        try:
            cached = _read_cached(
                cache_path,
                case_id=case.case_id,
                cohort=case.cohort,
                recurrence=case.recurrence,
                extra=case.extra,
            )
        except Exception as exc:  # noqa: BLE001 - a broken cache file is prepared again
            log.warning("cached case %s is unreadable (%s); preparing it again", case.case_id, exc)
        else:
            if not case.sources or cached.source == source:
                return cached
            log.info(
                "case %s: its files changed since it was cached (or the cache predates the "
                "check); preparing it again",
                case.case_id,
            )
    loaded = case.load()
    volume, mask = loaded[0], loaded[1]
    labels = loaded[2] if len(loaded) > 2 else None
    unlabelled = loaded[3] if len(loaded) > 3 else None
    located = True
    try:
        if case.center_lps is not None:
            center = np.asarray(case.center_lps, float)
            region = pp.SinusRegion(
                center_lps=center,
                air_volume_ml=0.0,
                midline_x_mm=float(center[0]),
                n_components=0,
            )
        else:
            region = pp.locate_sinus_region(volume)
            center = region.center_lps
    except NotSinusCTError as exc:
        located = False
        log.warning(
            "case %s: sinus region not located (%s); using the mask's centre", case.case_id, exc
        )
        nz = np.argwhere(mask > 0)
        ctr_idx = nz.mean(0) if nz.size else (np.asarray(volume.shape) - 1) / 2
        center = volume.index_to_lps(ctr_idx)
        region = pp.SinusRegion(
            center_lps=center, air_volume_ml=0.0, midline_x_mm=float(center[0]), n_components=0
        )
    block = pp.prepare_block(volume, config=cfg, region=region)
    frac = pp.resample_mask_to_block(
        mask, volume=volume, block_affine=block.affine, config=cfg, soft=True
    )
    bmask = np.round(frac * 255).astype(np.uint8)
    image = block.image.astype(np.float16)
    sinus = None
    covered = None
    if labels is not None:
        # a segmentation-only case (it has an unlabelled region) is the whole truth outside it
        covered = sinus_covered(labels, complete=unlabelled is not None)
        sinus = resample_labels_to_block(
            sinus_head_target(labels, shape=labels.shape),
            volume=volume,
            block_affine=block.affine,
            config=cfg,
        )
    seg_valid = None
    if unlabelled is not None:
        # outside the CT the block is air the CT never showed: known to hold no lesion
        unknown = (
            resample_labels_to_block(
                (np.asarray(unlabelled) > 0).astype(np.uint8),
                volume=volume,
                block_affine=block.affine,
                config=cfg,
            )
            > 0
        )
        seg_valid = (~unknown).astype(np.uint8)
        if sinus is not None:
            # a cavity labelled inside the unlabelled region is known to the sinus head
            # (a head's maxillary / nasal labels from a model); its lesion is not
            sinus = np.where(unknown & (sinus == 0), np.uint8(SINUS_IGNORE), sinus).astype(np.uint8)
    tmp = cache_path.with_suffix(f".{os.getpid()}.tmp.npz")  # jobs may share the cache
    extra_arrays = {} if sinus is None else {"sinus": sinus, "sinus_covered": covered}
    if seg_valid is not None:
        extra_arrays["seg_valid"] = seg_valid
    np.savez_compressed(
        tmp,
        image=image,
        mask=bmask,
        located=np.array(located),
        source=np.array(source),
        **extra_arrays,
    )
    os.replace(tmp, cache_path)
    return PreparedCase(
        case_id=case.case_id,
        cohort=case.cohort,
        recurrence=case.recurrence,
        image=image,
        mask=bmask,
        located=located,
        extra=case.extra,
        sinus=sinus,
        seg_valid=seg_valid,
        sinus_covered=covered,
        source=source,
    )


def prepare_cases(
    cases: Sequence[TrainingCase], *, cache_dir: Path, config: PreprocessConfig, workers: int = 1
) -> list[PreparedCase]:
    """Preprocess (or read from the cache) every case; ``workers`` > 1 uses processes."""
    folder = Path(cache_dir) / f"prep_{_prep_key(config)}"
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{c.case_id}.npz" for c in cases]
    if workers > 1 and len(cases) > 1:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            futures = [
                ex.submit(_prepare_one, c, config, p) for c, p in zip(cases, paths, strict=True)
            ]
            out = [f.result() for f in tqdm(futures, desc="preprocess", unit="case", mininterval=2)]
    else:
        out = [
            _prepare_one(c, config, p)
            for c, p in tqdm(
                list(zip(cases, paths, strict=True)), desc="preprocess", unit="case", mininterval=2
            )
        ]
    failed = [c.case_id for c in out if not c.located]
    if failed:
        log.warning("sinus region not located in %d case(s): %s", len(failed), failed[:10])
    return out


# --------------------------------------------------------------------------------------------
# augmentation


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(2 * sigma))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    for dim in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + dim] = k.numel()
        pad = [0] * 6
        pad[2 * (2 - dim)] = r
        pad[2 * (2 - dim) + 1] = r
        x = F.conv3d(F.pad(x, pad, mode="replicate"), k.view(shape))
    return x


def augment_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    generator: torch.Generator,
    sinus: torch.Tensor | None = None,
    lr_only: bool = False,
) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random flips, scale jitter, intensity scale/shift, blur and noise.

    ``x``: (N, 1, D, H, W) float images; ``y``: (N, C, D, H, W) float masks (fractions in
    [0, 1]; they stay fractions; C = 2 carries the known-reference weight of
    segmentation-only cases as the second channel, moved with the image; the scale jitter's
    zero padding gives padded voxels weight 0); ``sinus``: optional (N, D, H, W) sinus-head
    classes (moved with the image, nearest neighbour; a left-right flip swaps the left /
    right classes, :func:`~sinusapp.model.sinus_head.mirror_class_lut`). ``lr_only``: flip
    left-right only (anatomy stays upright).
    Random parameters come from the CPU ``generator`` (reproducible on any device). Returns
    ``(x, y)``, or ``(x, y, sinus)`` when ``sinus`` is given.
    """
    swap = torch.from_numpy(mirror_class_lut().astype(np.int64))
    xs, ys, ss = [], [], []
    for n in range(x.shape[0]):
        xi, yi = x[n : n + 1], y[n : n + 1]
        si = None if sinus is None else sinus[n : n + 1, None].float()
        u = torch.rand(10, generator=generator).tolist()
        axes = (2,) if lr_only else (0, 1, 2)
        dims = [2 + d for d in axes if u[d] < 0.5]
        if dims:
            xi, yi = torch.flip(xi, dims), torch.flip(yi, dims)
            if si is not None:
                si = torch.flip(si, dims)
                if 4 in dims:  # the left-right axis of the block
                    si = swap.to(si.device)[si.long()].float()
        if u[3] < 0.5:  # scale jitter ±10 % (spacing / head size variation)
            sc = 0.9 + 0.2 * u[4]
            theta = torch.zeros(1, 3, 4, device=x.device, dtype=torch.float32)
            theta[0, 0, 0] = theta[0, 1, 1] = theta[0, 2, 2] = sc
            grid = F.affine_grid(theta, list(xi.shape), align_corners=False)
            xi = F.grid_sample(
                xi.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
            )
            yi = F.grid_sample(
                yi.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False
            ).clamp(0.0, 1.0)
            if si is not None:
                si = F.grid_sample(
                    si, grid, mode="nearest", padding_mode="border", align_corners=False
                )
        xi = xi * (0.9 + 0.2 * u[5]) + (u[6] - 0.5) * 0.1  # intensity scale / shift
        if u[7] < 0.25:
            xi = _gaussian_blur(xi.float(), 0.5 + 0.5 * u[8])
        sigma = 0.03 * u[9]
        if sigma > 0:
            noise = torch.randn(xi.shape, generator=generator).to(xi.device, xi.dtype)
            xi = xi + sigma * noise
        xs.append(xi)
        ys.append(yi)
        if si is not None:
            ss.append(si[:, 0].round().to(torch.uint8))
    if sinus is None:
        return torch.cat(xs), torch.cat(ys)
    return torch.cat(xs), torch.cat(ys), torch.cat(ss)


def _random_patches(
    x: torch.Tensor,
    y: torch.Tensor,
    s: torch.Tensor,
    *,
    patch: tuple[int, int, int],
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One random sub-block of ``patch`` voxels per sample (uniform offset per axis)."""
    xs, ys, ss = [], [], []
    for n in range(x.shape[0]):
        off = [
            int(torch.randint(0, x.shape[2 + a] - patch[a] + 1, (1,), generator=generator))
            for a in range(3)
        ]
        sl = tuple(slice(o, o + p) for o, p in zip(off, patch, strict=True))
        xs.append(x[n : n + 1, :, sl[0], sl[1], sl[2]])
        ys.append(y[n : n + 1, :, sl[0], sl[1], sl[2]])
        ss.append(s[n : n + 1, sl[0], sl[1], sl[2]])
    return torch.cat(xs), torch.cat(ys), torch.cat(ss)


# --------------------------------------------------------------------------------------------
# one model


def _lr_at(epoch: int, tcfg: TrainConfig) -> float:
    if epoch < tcfg.warmup_epochs:
        return tcfg.lr * (epoch + 1) / (tcfg.warmup_epochs + 1)
    span = max(1, tcfg.epochs - tcfg.warmup_epochs)
    t = (epoch - tcfg.warmup_epochs) / span
    return 1e-5 + 0.5 * (tcfg.lr - 1e-5) * (1 + math.cos(math.pi * t))


def epoch_order(
    *,
    seg_only: torch.Tensor,
    draws: int,
    share: float | None,
    generator: torch.Generator,
) -> torch.Tensor:
    """The case indices one epoch draws, in order (at least ``draws`` of them).

    ``seg_only``: a bool per training case, true for a segmentation-only case. With ``share``
    ``None`` (or only one kind of case) every case is drawn equally often: whole
    permutations, one after the other, as training always did. Otherwise ``round(share ×
    draws)`` draws come from the segmentation-only cases and the rest from the others, each
    pool again in whole permutations (every case of a pool drawn before any twice), shuffled
    together.
    """
    n = int(seg_only.numel())
    if n == 0 or draws < 1:
        raise ValueError(f"epoch_order needs cases and draws ≥ 1, got {n} cases, {draws} draws")

    def permutations(count: int, m: int) -> torch.Tensor:
        reps = max(1, -(-m // count))
        return torch.cat([torch.randperm(count, generator=generator) for _ in range(reps)])

    seg = torch.nonzero(seg_only).flatten()
    rest = torch.nonzero(~seg_only).flatten()
    if share is None or seg.numel() == 0 or rest.numel() == 0:
        return permutations(n, draws)
    k = min(max(round(share * draws), 1), draws - 1)
    picked = torch.cat(
        [
            seg[permutations(int(seg.numel()), k)[:k]],
            rest[permutations(int(rest.numel()), draws - k)[: draws - k]],
        ]
    )
    return picked[torch.randperm(draws, generator=generator)]


def _stack(cases: Sequence[PreparedCase]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, D, H, W)``, targets and outcomes of ``cases``.

    Targets are uint8 ``(N, 1, ...)`` lesion fractions × 255, or ``(N, 2, ...)`` with the
    known-reference weight (× 255) as the second channel when any case is partly unlabelled
    (the channels move together through patch cutting and augmentation).
    """
    x = torch.from_numpy(np.stack([c.image for c in cases])[:, None])
    y = torch.from_numpy(np.stack([c.mask for c in cases])[:, None])  # uint8, fraction × 255
    if any(c.seg_valid is not None for c in cases):
        w = np.stack(
            [
                c.seg_valid * np.uint8(255)
                if c.seg_valid is not None
                else np.full(c.mask.shape, 255, np.uint8)
                for c in cases
            ]
        )
        y = torch.cat([y, torch.from_numpy(w)[:, None]], dim=1)
    lab = torch.tensor([c.recurrence for c in cases], dtype=torch.long)
    return x, y, lab


def _stack_sinus(
    cases: Sequence[PreparedCase], *, n_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sinus-head targets of a head with ``n_classes`` classes: ``(N, D, H, W)`` uint8
    (:data:`SINUS_IGNORE` for cases without labels,
    :data:`~sinusapp.model.sinus_head.SINUS_OTHER` where a case's
    labels do not say which of several classes a voxel is) and ``(N, n_classes)`` bool, the
    classes such a voxel may be (:func:`~sinusapp.model.sinus_head.partial_targets`)."""
    targets, allowed = [], []
    for c in cases:
        if c.sinus is None:
            targets.append(np.full(c.mask.shape, SINUS_IGNORE, np.uint8))
            allowed.append(np.ones(n_classes, bool))
            continue
        covered = c.sinus_covered if c.sinus_covered is not None else np.ones(n_classes, bool)
        t, a = partial_targets(c.sinus, covered=covered, n_classes=n_classes)
        targets.append(t)
        allowed.append(a)
    return torch.from_numpy(np.stack(targets)), torch.from_numpy(np.stack(allowed))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), i.e. whether
    ``TrainConfig.cpu_bf16`` speeds training up here rather than slowing it down."""
    return any(
        getattr(torch.cpu, probe, lambda: False)()  # private probes: absent in some builds
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def _case_key(case_id: str, source: str | None) -> str:
    """A case as the training fingerprint sees it: its id and, when recorded, its files'
    fingerprint (caches from before it keep their old fingerprints)."""
    return f"{case_id}@{source}" if source else case_id


def _fingerprint(net: NetworkConfig, tcfg: TrainConfig, case_ids: Sequence[str]) -> str:
    """The training's settings and cases (:func:`_case_key`): a checkpoint or a finished
    model is reused only for exactly these."""
    settings = asdict(tcfg)
    if not settings["cpu_bf16"]:  # keeps the work dirs of float32 runs from before the option
        del settings["cpu_bf16"]
    if settings["seg_only_share"] is None:  # and of runs from before this one
        del settings["seg_only_share"]
    blob = json.dumps([net.to_dict(), settings, sorted(case_ids)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _init_from_bundle(model: UNet3D, path: Path, *, quiet: bool) -> None:
    """Copy the weights of bundle ``path`` into ``model`` where name and shape agree."""
    from sinusapp.model.bundle import load_bundle

    state = load_bundle(path).load_state_dict()
    own = model.state_dict()
    taken = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    widened = []
    for k in ("sinus_head.weight", "sinus_head.bias"):
        # a head with more classes (--sinus-upper): the first classes are the same regions
        # (SINUS_HEAD_REGIONS_ALL), so they keep what they learned; the new ones start fresh
        if k in state and k in own and k not in taken:
            old, new = state[k], own[k]
            if old.shape[1:] == new.shape[1:] and old.shape[0] < new.shape[0]:
                grown = new.clone()
                grown[: old.shape[0]] = old
                taken[k] = grown
                widened.append(f"{k} ({old.shape[0]} → {new.shape[0]} classes)")
    fresh = sorted(set(own) - set(taken))
    if len(taken) < len(own) / 2:
        raise ValueError(
            f"init_weights {str(path)!r}: only {len(taken)} of this network's {len(own)} "
            "tensors fit its weights "
            "(another architecture); train from scratch or pick a matching bundle"
        )
    model.load_state_dict(taken, strict=False)
    if not quiet:
        log.info(
            "initialised %d of %d tensors from %s; fresh: %s",
            len(taken),
            len(own),
            path,
            ", ".join(fresh) or "none",
        )
        if widened:
            log.info("widened from %s: %s", path, "; ".join(widened))


def _shard(n: int, *, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a batch of ``n`` that process ``rank`` of ``world`` trains on
    (contiguous, sizes differing by one at most)."""
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def _average_grads(module: torch.nn.Module) -> None:
    """All-reduce (mean) the gradients of ``module``'s parameters across the processes."""
    import torch.distributed as dist

    world = dist.get_world_size()
    for param in module.parameters():
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad)
        param.grad /= world


def train_model(
    cases: Sequence[PreparedCase],
    *,
    network: NetworkConfig,
    tcfg: TrainConfig,
    device: str,
    run_seed: int,
    checkpoint: Path | None = None,
    desc: str = "train",
    should_stop: Callable[[], bool] | None = None,
    quiet: bool = False,
    patch_shape: tuple[int, int, int] | None = None,
) -> tuple[UNet3D, MultiTaskLoss, list[dict[str, float]]]:
    """Train one model for ``tcfg.epochs`` epochs on ``cases``.

    ``patch_shape``: train on random patches of this size cut from the blocks (see
    :class:`~sinusapp.model.config.PreprocessConfig`); ``None``: whole blocks.

    Resumes from ``checkpoint`` when it exists and was written for the same settings and
    cases (else starts afresh); writes it after every epoch. Returns the model (eval mode),
    the loss module (holding the learned task weights) and the per-epoch history.
    """
    torch.manual_seed(run_seed)
    on_cuda = device.startswith("cuda")
    if tcfg.cpu_bf16 and on_cuda:
        raise ValueError(
            f"TrainConfig.cpu_bf16 is for training on the CPU, but the device is {device!r}; "
            "on CUDA, amp=True gives bfloat16 autocast"
        )
    model = UNet3D(config=network).to(device)
    if tcfg.init_weights:
        _init_from_bundle(model, Path(tcfg.init_weights), quiet=quiet)
    cpu_bf16 = tcfg.cpu_bf16
    if cpu_bf16:  # before the optimizer and DDP, which keep the parameters' layout
        model.to(memory_format=torch.channels_last_3d)
    with_sinus = bool(network.sinus_classes)
    loss_fn = MultiTaskLoss(task=network.task, dice=tcfg.dice, sinus=with_sinus).to(device)
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for pname, param in model.named_parameters():
        (no_decay if param.ndim <= 1 or "norm" in pname else decay).append(param)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": tcfg.weight_decay},
            {"params": no_decay + list(loss_fn.parameters()), "weight_decay": 0.0},
        ],
        lr=tcfg.lr,
    )
    fp = _fingerprint(network, tcfg, [_case_key(c.case_id, c.source) for c in cases])
    if patch_shape is not None:
        fp = hashlib.sha256(f"{fp}{list(patch_shape)}".encode()).hexdigest()[:16]
    history: list[dict[str, float]] = []
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            loss_fn.load_state_dict(state["loss"])
            opt.load_state_dict(state["optimizer"])
            history = list(state["history"])
            start = int(state["epoch"]) + 1
            log.info("%s: resumed after epoch %d", desc, start)
        else:
            log.warning(
                "%s: checkpoint %s is for other settings; starting afresh", desc, checkpoint
            )
    rank, world = rank_world()
    net: torch.nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        dev_index = torch.device(device).index
        net = DistributedDataParallel(model, device_ids=None if dev_index is None else [dev_index])
        quiet = quiet or rank != 0
    x_all, y_all, lab_all = _stack(cases)
    s_all, a_all = (
        _stack_sinus(cases, n_classes=network.sinus_classes) if with_sinus else (None, None)
    )
    if on_cuda:
        x_all, y_all, lab_all = x_all.to(device), y_all.to(device), lab_all.to(device)
        s_all = None if s_all is None else s_all.to(device)
        a_all = None if a_all is None else a_all.to(device)
    n = len(cases)
    seg_only_items = (lab_all == NO_OUTCOME).cpu()  # the outcomes _stack read
    bs = min(tcfg.batch_size, n)
    steps = tcfg.steps_per_epoch or max(1, n // bs)
    if world > 1 and bs < world:
        raise InputError(
            f"a batch of {bs} case(s) cannot be split across {world} training processes",
            hint=f"use --batch-size of at least {world} (a multiple of {world} is best) with "
            f"{n} or more training cases, or fewer processes",
        )
    bar = tqdm(
        range(start, tcfg.epochs),
        desc=desc,
        unit="epoch",
        mininterval=5,
        initial=start,
        total=tcfg.epochs,
        disable=quiet,
    )
    for epoch in bar:
        if should_stop is not None and should_stop():
            break
        for g in opt.param_groups:
            g["lr"] = _lr_at(epoch, tcfg)
        torch.manual_seed(run_seed * 1000 + epoch)
        gen = torch.Generator().manual_seed(run_seed * 1000 + epoch)
        order = epoch_order(
            seg_only=seg_only_items, draws=steps * bs, share=tcfg.seg_only_share, generator=gen
        )
        model.train()
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for s in range(steps):
            idx = order[s * bs : (s + 1) * bs]
            xb = x_all[idx.to(x_all.device)].to(device, torch.float32, non_blocking=True)
            yb = y_all[idx.to(y_all.device)].to(device, torch.float32, non_blocking=True) / 255.0
            lb = lab_all[idx.to(lab_all.device)].to(device)
            sb = None if s_all is None else s_all[idx.to(s_all.device)]
            ab = None if a_all is None else a_all[idx.to(a_all.device)].to(device)
            if patch_shape is not None:
                dummy = sb if sb is not None else torch.zeros_like(yb[:, 0], dtype=torch.uint8)
                xb, yb, dummy = _random_patches(xb, yb, dummy, patch=patch_shape, generator=gen)
                sb = dummy if sb is not None else None
            if tcfg.augment:
                if sb is None:
                    xb, yb = augment_batch(xb, yb, generator=gen)  # type: ignore[misc]
                else:
                    xb, yb, sb = augment_batch(  # type: ignore[misc]
                        xb, yb, generator=gen, sinus=sb, lr_only=True
                    )
            seg_weight = None
            if yb.shape[1] == 2:  # partly unlabelled cases: the second channel is the weight
                yb, seg_weight = yb[:, :1], yb[:, 1:]
            if world > 1:
                # every rank drew the whole batch (same random numbers as one process);
                # each trains on its share, DDP averages the gradients
                lo, hi = _shard(xb.shape[0], rank=rank, world=world)
                xb, yb, lb = xb[lo:hi], yb[lo:hi], lb[lo:hi]
                sb = None if sb is None else sb[lo:hi]
                ab = None if ab is None else ab[lo:hi]
                seg_weight = None if seg_weight is None else seg_weight[lo:hi]
            if cpu_bf16:
                xb = xb.contiguous(memory_format=torch.channels_last_3d)
            with torch.autocast(
                device_type="cuda" if on_cuda else "cpu",
                dtype=torch.bfloat16,
                enabled=(on_cuda and tcfg.amp) or cpu_bf16,
            ):
                out = net(xb)
            loss, parts = loss_fn(
                out,
                seg_target=yb,
                cls_target=lb,
                sinus_target=None if sb is None else sb.long(),
                seg_weight=seg_weight,
                sinus_allowed=ab,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                _average_grads(loss_fn)  # the learned task weights are outside DDP
            torch.nn.utils.clip_grad_norm_(model.parameters(), 12.0)
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
        rec = {k: v / counts[k] for k, v in sums.items()}
        rec.update({f"w_{k}": v for k, v in loss_fn.task_weights().items()})
        rec["epoch"] = epoch
        rec["lr"] = _lr_at(epoch, tcfg)
        rec["seconds"] = time.perf_counter() - t0
        history.append(rec)
        bar.set_postfix(
            {
                k: f"{v:.3f}"
                for k, v in rec.items()
                if k in ("total", "seg", "cls", "sinus", "w_seg", "w_cls", "w_sinus")
            }
        )
        log.info(
            "%s epoch %d/%d: %s",
            desc,
            epoch + 1,
            tcfg.epochs,
            {k: round(v, 4) for k, v in rec.items()},
        )
        if checkpoint is not None and rank == 0:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save(
                {
                    "fingerprint": fp,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "loss": loss_fn.state_dict(),
                    "optimizer": opt.state_dict(),
                    "history": history,
                },
                tmp,
            )
            os.replace(tmp, checkpoint)
    if cpu_bf16:
        # callers (fold evaluation, the API) get the usual layout
        model.to(memory_format=torch.contiguous_format)
    model.eval()
    return model, loss_fn, history


def _dsc(pred: np.ndarray, truth: np.ndarray) -> float:
    a, b = pred.astype(bool), truth.astype(bool)
    denom = a.sum() + b.sum()
    return 1.0 if denom == 0 else float(2.0 * (a & b).sum() / denom)


def _auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def evaluate_model(
    model: UNet3D,
    cases: Sequence[PreparedCase],
    *,
    device: str,
    batch_size: int = 4,
    cls_window: tuple[slice, slice, slice] | None = None,
) -> dict[str, Any]:
    """DSC per case (at the model's resolution), DLR-scores, sinus-label DSC; means and AUC.

    Segmentation runs on the whole block; the DLR-score on ``cls_window`` of it (the central
    patch of a patch-trained model, :meth:`PreprocessConfig.central_patch`), as at inference.
    Voxels whose reference is unknown (a segmentation-only case's ``unlabelled``) count in
    neither DSC. ``sinus_false_cavity_mean``: the share of the known background that the
    sinus head gives a cavity class (a fit check: on session 29's whole heads 2.9 % of a
    training block's background, the orbits, read "nasal cavity"). What the measures cannot
    see: ``lesion_unknown_share_mean``, the share of a case's predicted lesion that lies where
    its reference is unknown, and ``sinus_unknown_cavity_mean``, the share of its unknown
    sinus voxels read as a cavity (session 31's head model grew into those regions, unseen
    by every other number: on a training head case 80 % of its false lesion lay there).
    """
    from sinusapp.model.config import sinus_head_regions

    model.eval()
    dscs: list[float] = []
    scores: list[float] = []
    n_sinus = model.config.sinus_classes
    regions = sinus_head_regions(n_sinus)[1:] if n_sinus else ()
    sinus_dsc: dict[str, list[float]] = {r: [] for r in regions}
    false_cavity: list[float] = []
    unknown_lesion: list[float] = []
    unknown_cavity: list[float] = []
    window = cls_window or (slice(None), slice(None), slice(None))
    with torch.inference_mode():
        for i in range(0, len(cases), batch_size):
            chunk = cases[i : i + batch_size]
            x, y, _ = _stack(chunk)
            xd = x.to(device, torch.float32)
            out = model(xd, classify=cls_window is None)
            if out.seg_logits is not None:
                prob = torch.sigmoid(out.seg_logits.float()).cpu().numpy()[:, 0]
                truth = y.numpy()[:, 0] >= 128
                known = y.numpy()[:, 1] >= 128 if y.shape[1] > 1 else np.ones_like(truth)
                dscs += [
                    _dsc((p >= 0.5) & k, m & k) for p, m, k in zip(prob, truth, known, strict=True)
                ]
                for p, k in zip(prob, known, strict=True):
                    called = p >= 0.5
                    if not k.all() and called.any():
                        unknown_lesion.append(float((called & ~k).sum() / called.sum()))
            if out.sinus_logits is not None:
                lab = out.sinus_logits.argmax(1).cpu().numpy()
                for c, pred_lab in zip(chunk, lab, strict=True):
                    if c.sinus is None:
                        continue
                    seen = c.sinus != SINUS_IGNORE
                    if not seen.all():
                        unknown_cavity.append(float((pred_lab[~seen] > 0).mean()))
                    for k, region in enumerate(regions, start=1):
                        if (c.sinus == k).any():
                            sinus_dsc[region].append(_dsc((pred_lab == k) & seen, c.sinus == k))
                    # the known background: 0 where the case covers every class
                    covered = c.sinus_covered
                    if covered is None or bool(np.asarray(covered)[: len(regions) + 1].all()):
                        bg = c.sinus == 0
                        if bg.any():
                            false_cavity.append(float((pred_lab[bg] > 0).mean()))
            if cls_window is not None and model.cls_head is not None:
                out = model(xd[:, :, window[0], window[1], window[2]], segment=False)
            if out.cls_logits is not None:
                scores += torch.softmax(out.cls_logits.float(), 1)[:, 1].cpu().tolist()
    labels = [c.recurrence for c in cases]
    return {
        "n": len(cases),
        "n_recurrence": int(sum(labels)),
        "dsc_mean": float(np.mean(dscs)) if dscs else None,
        "dsc_median": float(np.median(dscs)) if dscs else None,
        "dsc_per_case": dscs,
        "dlr_scores": scores,
        "auc": _auc(labels, scores) if scores else None,
        "sinus_dsc_mean": {k: float(np.mean(v)) for k, v in sinus_dsc.items() if v} or None,
        "sinus_false_cavity_mean": float(np.mean(false_cavity)) if false_cavity else None,
        "lesion_unknown_share_mean": float(np.mean(unknown_lesion)) if unknown_lesion else None,
        "sinus_unknown_cavity_mean": float(np.mean(unknown_cavity)) if unknown_cavity else None,
    }


# --------------------------------------------------------------------------------------------
# the whole run


def _folds(labels: np.ndarray, *, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    if min(np.bincount(labels, minlength=2)) < k:
        raise InputError(
            f"{k}-fold stratified cross-validation needs at least {k} cases of each outcome in "
            f"the train cohort; it has {np.bincount(labels, minlength=2).tolist()} (no/yes).",
            hint="Use fewer folds (--folds) or more training cases.",
        )
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros(len(labels)), labels))


def _oracle(cases: Sequence[PreparedCase]) -> dict[str, float]:
    """AUC of any per-case 'true risk' the dataset provides (the synthetic oracle)."""
    out: dict[str, float] = {}
    keys = {k for c in cases for k in c.extra}
    labels = [c.recurrence for c in cases]
    for k in sorted(keys):
        vals = [c.extra.get(k, float("nan")) for c in cases]
        if any(not np.isfinite(v) for v in vals):
            continue
        auc = _auc(labels, vals)
        if auc is not None:
            out[k] = auc
    return out


def _model_card(
    *,
    name: str,
    version: str,
    metrics: dict[str, Any],
    training: dict[str, Any],
    network: NetworkConfig,
    preprocess: PreprocessConfig,
    lesion_regions: Mapping[str, Any] | None = None,
) -> str:
    cv = metrics.get("cv") or {}
    ext = metrics.get("external") or {}
    hold = metrics.get("holdout") or {}
    description = str(training.get("data_description", ""))
    if "real CT anatomy" in description:
        headline = (
            "**Trained on synthetic disease placed on real CT anatomy. Not for clinical use "
            "until retrained and validated on local data.** The backgrounds are real "
            "paranasal-sinus CT crops (NasalSeg: Zhang Y, Wang J, Pan T, et al., Scientific "
            "Data 2024, doi:10.5281/zenodo.13893419, CC BY 4.0); the lesions, the clinical "
            "factors and the outcomes are synthetic (`sinusapp synth --real-anatomy`), so its "
            "numbers say how it segments known disease on real anatomy, not how it predicts "
            "recurrence in patients. A hospital trains its own bundle with `sinusapp train` on "
            "its own data."
        )
    elif description.startswith("Synthetic"):
        headline = (
            "**Trained on synthetic phantoms. Not for clinical use until retrained and validated "
            "on local data.** No labelled sinus CT cohort is public; this model learned from "
            "procedural head CT phantoms (`sinusapp synth`), so its numbers say that the "
            "pipeline works, not how it performs on patients. A hospital trains its own bundle "
            "with `sinusapp train` on its own data."
        )
    else:
        headline = (
            "**Not for clinical use until validated on local data.** Trained with "
            "`sinusapp train` on the dataset below."
        )
    patch_text = (
        f" Trained on random {list(preprocess.patch_shape)}-voxel patches of the block; at "
        "inference the segmentation heads see the whole block and the classification head "
        "the central patch."
        if preprocess.patch_shape is not None
        else ""
    )
    if network.sinus_classes > len(SINUS_HEAD_REGIONS):
        sinus_text = (
            "\n- Sinus head: labels every sinus (maxillary L / R, nasal cavity, anterior / "
            "posterior ethmoid L / R, frontal, sphenoid: whole cells, air and disease; "
            "softmax; per-sinus opacification and Lund–Mackay come from it). Cases whose "
            "labels lack a region (NasalSeg: only the maxillary sinuses and the nasal "
            "cavity) train it as 'background or a region they lack' (`--sinus-upper`)."
        )
    elif network.sinus_classes:
        sinus_text = (
            "\n- Sinus head: labels the maxillary sinuses (left / right) and the nasal cavity "
            "(softmax; per-sinus opacification and Lund–Mackay come from it)."
        )
    else:
        sinus_text = ""
    if network.cls_lesion_features:
        sinus_text += (
            "\n- Classification head: besides the pooled bottleneck it reads the mean lesion "
            "probability over its field of view (gradients stopped: segmentation-guided)."
        )
    n_seg = len(training.get("seg_only_case_ids") or ())
    if n_seg:
        heads = "the lesion head and the sinus head" if network.sinus_classes else "the lesion head"
        sinus_text += (
            f"\n- Segmentation-only cases: {n_seg} real backgrounds without an outcome "
            f"(`sinusapp train --seg-only`; listed in the manifest) trained {heads} outside "
            "their unlabelled region; they never trained the classification head."
        )
    init = (training.get("settings") or {}).get("init_weights")
    if init:
        sinus_text += f"\n- Fine-tuned: every model started from the weights of `{init}`."
    if lesion_regions is not None:
        sinus_text += (
            "\n- Opacification assessed only in: "
            + ", ".join(lesion_regions.get("assessed") or ())
            + " (manifest `lesion_regions`; the other sinuses are shown as not assessed). "
            + str(lesion_regions.get("why") or "")
        ).rstrip()

    minutes = training.get("wall_time_s", 0) / 60
    folds = int(training.get("folds") or 0)
    cv_text = f"{folds}-fold stratified CV" if folds >= 2 else "no cross-validation"

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    fit = metrics.get("seg_only_fit") or {}
    fit_line = ""
    if fit:
        dsc = fit.get("sinus_dsc_mean") or {}
        fit_line = (
            f"| segmentation-only cases ({fit.get('n')}, trained on: a fit check) lesion DSC "
            f"median / known background read as a cavity | {f(fit.get('dsc_median'))} / "
            f"{f(fit.get('sinus_false_cavity_mean'))} |\n"
            f"| same, share of the predicted lesion where the reference is unknown / unknown "
            f"sinus voxels read as a cavity | {f(fit.get('lesion_unknown_share_mean'))} / "
            f"{f(fit.get('sinus_unknown_cavity_mean'))} |\n"
            + (
                "| same, sinus-label DSC per class | "
                + ", ".join(f"{k} {v:.2f}" for k, v in dsc.items())
                + " |\n"
                if dsc
                else ""
            )
        )

    oracle_lines = "".join(
        f"| oracle AUC ({k}), {cohort} | {f(v)} |\n"
        for cohort in ("train", "test")
        for k, v in (metrics.get("oracle_auc", {}).get(cohort) or {}).items()
    )
    return f"""# Model card — {name} {version}

{headline}

## What it does
Multi-task 3D U-Net after He et al., iScience 26, 106527 (2023): segments soft-tissue disease
of the nasal cavity and paranasal sinuses and, from the bottleneck features, predicts
recurrence after endoscopic sinus surgery (DLR-score = softmax probability of recurrence).

- Architecture: {json.dumps(network.to_dict())}
- Input: the located sinus region resampled to {preprocess.spacing_mm} mm isotropic, block
  {list(preprocess.block_shape)} voxels (z, y, x), HU clipped to {list(preprocess.hu_window)}
  and mapped onto [-1, 1].{patch_text}{sinus_text}
- Weights sha256: `{{sha256}}`

## Data
{training.get("data_description", "")}

## Results
| metric | value |
|---|---|
| CV DSC (mean of folds) | {f(cv.get("dsc_mean"))} |
| CV AUC (mean of folds) | {f(cv.get("auc_mean"))} |
| CV AUC (pooled out-of-fold) | {f(cv.get("auc_pooled"))} |
| held-out cases (trained on by no model) DSC | {f(hold.get("dsc_mean"))} |
| held-out cases AUC | {f(hold.get("auc"))} |
| external (test cohort) DSC | {f(ext.get("dsc_mean"))} |
| external (test cohort) AUC | {f(ext.get("auc"))} |
{fit_line}{oracle_lines}
DSC is computed at the model's resolution ({preprocess.spacing_mm} mm). The test cohort was
scored once by the final model, for reporting only; no choice was made on it.

## Training
`{training.get("command", "")}`

{training.get("epochs")} epochs per model, {cv_text}, seed
{training.get("seed")}, device {training.get("device")}, {minutes:.1f} min.
Learned task weights (exp(-s)) of the final model: {training.get("task_weights")}.

## Limitations
Synthetic disease (and, for phantom cases, synthetic anatomy); scanner variation only as
simulated; a single outcome (recurrence within the follow-up of the synthetic generator). The
DLR-score is one input of the nomogram, not a diagnosis.
"""


@dataclass(frozen=True, slots=True)
class _Job:
    """One model to train (a CV fold or the final model); picklable for worker processes."""

    name: str
    desc: str
    train: tuple[tuple[str, int], ...]
    val: tuple[tuple[str, int], ...]
    run_seed: int
    cache_folder: str
    ckpt_dir: str
    network: NetworkConfig
    tcfg: TrainConfig
    device: str
    threads: int | None = None
    quiet: bool = False
    preprocess: PreprocessConfig | None = None


def _cache_folder(cache_dir: Path, config: PreprocessConfig) -> Path:
    return Path(cache_dir) / f"prep_{_prep_key(config)}"


def _read_cached(
    path: Path,
    *,
    case_id: str,
    cohort: str,
    recurrence: int,
    extra: dict[str, float] | None = None,
) -> PreparedCase:
    """One case's cached block (``_prepare_one`` wrote it); the optional arrays when present."""
    with np.load(path) as z:
        return PreparedCase(
            case_id=case_id,
            cohort=cohort,
            recurrence=recurrence,
            image=z["image"],
            mask=z["mask"],
            located=bool(z["located"]),
            extra=dict(extra or {}),
            sinus=z["sinus"] if "sinus" in z.files else None,
            seg_valid=z["seg_valid"] if "seg_valid" in z.files else None,
            sinus_covered=z["sinus_covered"] if "sinus_covered" in z.files else None,
            source=str(z["source"]) if "source" in z.files else "",
        )


def _load_cached(folder: Path, items: Sequence[tuple[str, int]]) -> list[PreparedCase]:
    return [
        _read_cached(folder / f"{cid}.npz", case_id=cid, cohort="", recurrence=rec)
        for cid, rec in items
    ]


def _job_fingerprint(job: _Job) -> str:
    folder = Path(job.cache_folder)
    keys = [_case_key(cid, _cached_source(folder / f"{cid}.npz")) for cid, _ in job.train + job.val]
    return _fingerprint(job.network, job.tcfg, keys)


def _job_done(job: _Job, ckpt_dir: Path) -> bool:
    """Whether a finished result for exactly this job (settings and cases) exists."""
    path = ckpt_dir / f"{job.name}.json"
    if not path.is_file():
        return False
    try:
        done = json.loads(path.read_text()).get("fingerprint") == _job_fingerprint(job)
    except (OSError, json.JSONDecodeError):
        return False
    if not done:
        log.warning("%s: the saved result is for other settings or cases; retraining", job.desc)
    return done


def _cls_window(job: _Job) -> tuple[slice, slice, slice] | None:
    if job.preprocess is None or job.preprocess.patch_shape is None:
        return None
    return job.preprocess.central_patch()


def _run_job(job: _Job) -> dict[str, Any]:
    """Train one model, score its validation fold, write ``NAME.pt`` and ``NAME.json``."""
    if job.threads:
        torch.set_num_threads(job.threads)
    if job.quiet and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    folder = Path(job.cache_folder)
    ckpt_dir = Path(job.ckpt_dir)
    if job.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    model, loss_fn, hist = train_model(
        _load_cached(folder, job.train),
        network=job.network,
        tcfg=job.tcfg,
        device=job.device,
        run_seed=job.run_seed,
        checkpoint=ckpt_dir / f"{job.name}.pt",
        desc=job.desc,
        quiet=job.quiet,
        patch_shape=None if job.preprocess is None else job.preprocess.patch_shape,
    )
    if not is_main():  # rank 0 scores the fold and writes its result
        barrier()
        return dict(json.loads((ckpt_dir / f"{job.name}.json").read_text()))
    res: dict[str, Any] = {
        "name": job.name,
        "fingerprint": _job_fingerprint(job),
        "n_train": len(job.train),
        "n_val": len(job.val),
        "task_weights": loss_fn.task_weights(),
        "history": hist,
    }
    if job.val:
        ev = evaluate_model(
            model, _load_cached(folder, job.val), device=job.device, cls_window=_cls_window(job)
        )
        res.update(
            fold=int(job.name.removeprefix("fold")),
            dsc_mean=ev["dsc_mean"],
            auc=ev["auc"],
            val_case_ids=[cid for cid, _ in job.val],
            val_dlr_scores=ev["dlr_scores"],
            val_dsc=ev["dsc_per_case"],
        )
    tmp = ckpt_dir / f"{job.name}.json.tmp"
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, ckpt_dir / f"{job.name}.json")
    log.info("%s done: %s", job.desc, {k: res.get(k) for k in ("dsc_mean", "auc", "task_weights")})
    barrier()
    return res


def run_training(
    cases: Sequence[TrainingCase],
    *,
    out_dir: Path,
    work_dir: Path,
    network: NetworkConfig,
    preprocess: PreprocessConfig,
    tcfg: TrainConfig,
    device: str = "auto",
    workers: int = 1,
    parallel: int = 1,
    resume: bool = False,
    name: str = "sinus_unet",
    version: str = "1.0.0",
    data_description: str = "",
    command: str = "",
    trained_on_synthetic: bool = True,
    only_jobs: Sequence[str] | None = None,
    seg_only: Sequence[TrainingCase] = (),
    lesion_regions: Mapping[str, Any] | None = None,
) -> Bundle | None:
    """CV on the train cohort, final fit, external scoring, bundle. Returns the bundle.

    ``lesion_regions``: the bundle's ``{"assessed": [...], "why": ...}`` (regions whose
    opacification the lesion head measures; :func:`~sinusapp.model.bundle.save_bundle`),
    written to the manifest and the model card; ``None``: all regions.

    ``seg_only``: segmentation-only cases (real backgrounds without an outcome, recurrence
    :data:`NO_OUTCOME`, usually with an ``unlabelled`` region;
    :func:`~sinusapp.model.dataset_adapter.seg_only_cases_from_folder`), e.g. whole heads
    without disease (negatives) or with disease in the upper sinuses, added to the training
    set of every model (folds and final). They train both segmentation heads where they are
    labelled and never enter the DLR-score loss, a fold's validation, the evaluation or the
    outcome counts. Their cached blocks are keyed by case id: a changed ``unlabelled`` file
    under the same id needs a fresh ``work_dir``.

    ``workers`` processes preprocess the cases; ``parallel`` > 1 trains that many models
    (folds and the final model, which are independent) at once in separate processes.

    ``only_jobs`` (``fold0`` ... ``fold{k-1}``, ``final``): train only these models, as one of
    several independent jobs sharing ``work_dir`` (other jobs' checkpoints are kept, as with
    ``resume``) and returns ``None``: a last run without ``only_jobs`` and with ``resume``
    finds every model done and writes the bundle. Under torchrun
    (:mod:`sinusapp.model.distributed`) every rank calls this; rank 0 writes, the others
    return the bundle rank 0 wrote.

    Raises
    ------
    InputError
        No training cases, too few per outcome for the folds, an unavailable device, an
        unknown job name, ``parallel`` > 1 under torchrun; segmentation-only cases with a
        classification-only network or a Dice other than ``soft``, or whose ids are also
        dataset cases.
    """
    t_start = time.perf_counter()
    preprocess.check_divisible(network.divisor)
    dev = resolve_device(device)
    rank, world = rank_world()
    if world > 1 and dev == "cuda":
        dev = f"cuda:{torch.cuda.current_device()}"  # this process's GPU (LOCAL_RANK)
    if world > 1 and parallel > 1:
        raise InputError(
            f"--parallel {parallel} cannot be combined with torchrun ({world} processes)",
            hint="under torchrun leave --parallel at 1: the processes share every model",
        )
    if dev.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    work_dir = Path(work_dir)
    ckpt_dir = work_dir / "checkpoints"
    if only_jobs:
        resume = True  # independent jobs share the checkpoint folder: never wipe it
    if rank == 0:
        if not resume and ckpt_dir.exists():
            for p in ckpt_dir.glob("*"):
                p.unlink()
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    train_cases = [c for c in cases if c.cohort == "train"]
    holdout_cases = [c for c in cases if c.cohort == "holdout"]
    test_cases = [c for c in cases if c.cohort == "test"]
    if not train_cases:
        raise InputError(
            "The dataset has no case in the 'train' cohort.",
            hint="Check clinical.csv's cohort column.",
        )
    seg_only = list(seg_only)
    if seg_only and network.task == "cls":
        raise InputError(
            f"{len(seg_only)} segmentation-only case(s) were given to a classification-only "
            "network",
            hint="they train the segmentation heads; use --task multi or seg, or drop --seg-only",
        )
    if seg_only and tcfg.dice != "soft":
        raise InputError(
            f"segmentation-only cases need the soft Dice loss, got --dice {tcfg.dice}",
            hint="their unlabelled voxels are weighted out of the loss, which only the soft "
            "Dice supports: use --dice soft (the default), or drop --seg-only",
        )
    clash = sorted({c.case_id for c in seg_only} & {c.case_id for c in cases})
    if clash:
        raise InputError(
            f"segmentation-only case id(s) {clash[:5]} are also dataset cases",
            hint="rename the segmentation-only case folders",
        )
    log.info(
        "training on %s: %d train, %d held-out, %d test, %d segmentation-only cases",
        dev,
        len(train_cases),
        len(holdout_cases),
        len(test_cases),
        len(seg_only),
    )
    everything = list(train_cases) + list(holdout_cases) + list(test_cases) + seg_only
    prepared: Sequence[PreparedCase | TrainingCase]
    if rank == 0:
        prepared = prepare_cases(everything, cache_dir=work_dir, config=preprocess, workers=workers)
    else:  # the ids and labels; the arrays are read from the cache rank 0 writes
        prepared = everything
    barrier()
    train_p = prepared[: len(train_cases)]
    holdout_p = prepared[len(train_cases) : len(train_cases) + len(holdout_cases)]
    test_p = prepared[len(train_cases) + len(holdout_cases) : len(prepared) - len(seg_only)]
    seg_items = tuple((c.case_id, NO_OUTCOME) for c in seg_only)
    labels = np.array([c.recurrence for c in train_p])

    cache_folder = _cache_folder(work_dir, preprocess)
    jobs: list[_Job] = []
    folds = _folds(labels, k=tcfg.folds, seed=tcfg.seed) if tcfg.folds >= 2 else []
    for f, (tr, va) in enumerate(folds):
        jobs.append(
            _Job(
                name=f"fold{f}",
                desc=f"fold {f + 1}/{tcfg.folds}",
                train=tuple((train_p[i].case_id, train_p[i].recurrence) for i in tr) + seg_items,
                val=tuple((train_p[i].case_id, train_p[i].recurrence) for i in va),
                run_seed=tcfg.seed * 100 + f + 1,
                cache_folder=str(cache_folder),
                ckpt_dir=str(ckpt_dir),
                network=network,
                tcfg=tcfg,
                device=dev,
                preprocess=preprocess,
            )
        )
    jobs.append(
        _Job(
            name="final",
            desc="final model",
            train=tuple((c.case_id, c.recurrence) for c in train_p) + seg_items,
            val=(),
            run_seed=tcfg.seed * 100,
            cache_folder=str(cache_folder),
            ckpt_dir=str(ckpt_dir),
            network=network,
            tcfg=tcfg,
            device=dev,
            preprocess=preprocess,
        )
    )
    pending = [j for j in jobs if not (resume and _job_done(j, ckpt_dir))]
    for j in jobs:
        if j not in pending:
            log.info("%s: already done", j.desc)
    if only_jobs:
        names = [j.name for j in jobs]
        unknown = sorted(set(only_jobs) - set(names))
        if unknown:
            raise InputError(
                f"unknown training job(s) {unknown}; this run has {names}",
                hint="name folds fold0 ... fold{k-1} and the final model final",
            )
        pending = [j for j in pending if j.name in only_jobs]
    if parallel > 1 and len(pending) > 1:
        # Several small models at once: one GPU is far from busy with one of them, and on a
        # many-core CPU each process gets its share of the cores.
        n_proc = min(parallel, len(pending))
        threads = max(1, (os.cpu_count() or 1) // n_proc) if dev == "cpu" else 1
        pending = [replace(j, threads=threads, quiet=True) for j in pending]
        log.info("training %d models in %d parallel processes", len(pending), n_proc)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=n_proc, mp_context=ctx) as ex:
            futures = [ex.submit(_run_job, j) for j in pending]
            for fut in tqdm(as_completed(futures), total=len(futures), desc="models", unit="model"):
                fut.result()
    else:
        for j in pending:
            _run_job(j)
    if only_jobs:  # a later run with resume (every model done) writes the bundle, once
        missing = [j.name for j in jobs if not _job_done(j, ckpt_dir)]
        log.info("jobs %s done; still to train: %s", list(only_jobs), missing or "none")
        return None
    if rank != 0:  # rank 0 scores the test cohort and writes the bundle
        barrier()
        from sinusapp.model.bundle import load_bundle

        return load_bundle(out_dir)
    results = {j.name: json.loads((ckpt_dir / f"{j.name}.json").read_text()) for j in jobs}

    cv: dict[str, Any] | None = None
    oof_rows: list[dict[str, Any]] = []
    if folds:
        fold_results = [results[f"fold{f}"] for f in range(len(folds))]
        rec = {c.case_id: c.recurrence for c in train_p}
        for res in fold_results:
            log.info(
                "fold %d: DSC %s, AUC %s, task weights %s",
                res["fold"],
                res["dsc_mean"],
                res["auc"],
                res["task_weights"],
            )
            for i, cid in enumerate(res["val_case_ids"]):
                oof_rows.append(
                    {
                        "cohort": "train",
                        "case_id": cid,
                        "fold": res["fold"],
                        "recurrence": rec[cid],
                        "dlr_score": res["val_dlr_scores"][i] if res["val_dlr_scores"] else "",
                        "dsc": res["val_dsc"][i] if res["val_dsc"] else "",
                    }
                )
        dsc_f = [r["dsc_mean"] for r in fold_results if r["dsc_mean"] is not None]
        auc_f = [r["auc"] for r in fold_results if r["auc"] is not None]
        pooled = [(r["recurrence"], r["dlr_score"]) for r in oof_rows if r["dlr_score"] != ""]
        cv = {
            "folds": tcfg.folds,
            "dsc_per_fold": dsc_f,
            "auc_per_fold": auc_f,
            "dsc_mean": float(np.mean(dsc_f)) if dsc_f else None,
            "auc_mean": float(np.mean(auc_f)) if auc_f else None,
            "auc_pooled": _auc([p[0] for p in pooled], [p[1] for p in pooled]) if pooled else None,
            "task_weights_per_fold": [r["task_weights"] for r in fold_results],
        }
        log.info("cross-validation: %s", {k: v for k, v in cv.items() if "per_fold" not in k})

    final = results["final"]
    model = UNet3D(config=network)
    state = torch.load(ckpt_dir / "final.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    model = model.to(dev).eval()
    hist = final["history"]
    window = preprocess.central_patch() if preprocess.patch_shape is not None else None
    scored: dict[str, dict[str, Any] | None] = {"holdout": None, "external": None}
    for key, group, cohort, fold in (
        ("holdout", holdout_p, "train", "holdout"),
        ("external", test_p, "test", ""),
    ):
        if not group:
            continue
        ev = evaluate_model(model, group, device=dev, cls_window=window)
        scored[key] = {
            k: ev[k]
            for k in ("n", "n_recurrence", "dsc_mean", "dsc_median", "auc", "sinus_dsc_mean")
        }
        log.info("%s cases (not trained on): %s", key, scored[key])
        for c, s, d in zip(
            group,
            ev["dlr_scores"] or [""] * len(group),
            ev["dsc_per_case"] or [""] * len(group),
            strict=True,
        ):
            oof_rows.append(
                {
                    "cohort": cohort,
                    "case_id": c.case_id,
                    "fold": fold,
                    "recurrence": c.recurrence,
                    "dlr_score": s,
                    "dsc": d,
                }
            )
    external = scored["external"]
    seg_fit = None
    if seg_only:
        # in-sample: does the final model fit its own segmentation-only cases (whole heads)?
        # A class it never learned there shows here before any held-out scoring
        seg_p = prepared[len(prepared) - len(seg_only) :]
        ev = evaluate_model(model, seg_p, device=dev, cls_window=None)
        seg_fit = {
            k: ev[k]
            for k in (
                "n",
                "dsc_median",
                "sinus_dsc_mean",
                "sinus_false_cavity_mean",
                "lesion_unknown_share_mean",
                "sinus_unknown_cavity_mean",
            )
        }
        log.info("segmentation-only cases (trained on; a fit check): %s", seg_fit)
    if oof_rows:
        with open(work_dir / "predictions.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(oof_rows[0]))
            w.writeheader()
            w.writerows(oof_rows)
    metrics: dict[str, Any] = {
        "cv": cv,
        "holdout": scored["holdout"],
        "external": external,
        "seg_only_fit": seg_fit,
        "oracle_auc": {"train": _oracle(train_p), "test": _oracle(test_p)},
        "dsc_resolution_mm": preprocess.spacing_mm,
        "locate_failures": [c.case_id for c in prepared if not c.located],
    }
    training = {
        "data_description": data_description,
        "command": command,
        "n_train": len(train_p),
        "n_train_recurrence": int(labels.sum()),
        "n_test": len(test_p),
        # `sinusapp evaluate` refuses to score these cases with this bundle (in-sample)
        "case_ids": sorted(c.case_id for c in train_p),
        "test_case_ids": sorted(c.case_id for c in test_p),
        "seg_only_case_ids": sorted(c.case_id for c in seg_only),
        "epochs": tcfg.epochs,
        "folds": tcfg.folds,
        "seed": tcfg.seed,
        "device": dev,
        "torch_version": torch.__version__,
        "settings": asdict(tcfg),
        "task_weights": final["task_weights"],
        "final_epoch": hist[-1] if hist else None,
        "parallel_models": parallel,
        "wall_time_s": round(time.perf_counter() - t_start, 1),
    }
    card = _model_card(
        name=name,
        version=version,
        metrics=metrics,
        training=training,
        network=network,
        preprocess=preprocess,
        lesion_regions=lesion_regions,
    )
    state = {k: v for k, v in model.state_dict().items()}
    bundle = save_bundle(
        out_dir,
        state_dict=state,
        network=network,
        preprocess=preprocess,
        name=name,
        version=version,
        training=training,
        metrics=metrics,
        model_card=card,
        trained_on_synthetic=trained_on_synthetic,
        lesion_regions=lesion_regions,
    )
    log.info("training done in %.1f min: %s", (time.perf_counter() - t_start) / 60, out_dir)
    barrier()
    return bundle
