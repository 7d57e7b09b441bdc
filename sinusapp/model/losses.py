"""Losses: Dice-type + BCE for the lesion, cross-entropy for recurrence, learned task weights.

The two task losses are combined with homoscedastic-uncertainty weighting (Kendall, Gal &
Cipolla, CVPR 2018): ``L = Σ_t exp(−s_t)·L_t + s_t`` with ``s_t = log σ_t²`` learned — the
"uncertain weights" of the paper, done properly (the authors' code used a fixed-form weight).
Single-task ablations simply drop a term. A sinus-labelling head (when the network has one)
adds a third weighted term: cross-entropy + soft Dice over the cavity classes, with voxels of
unknown label (value 255: cases without a label map) ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

from sinusapp.model.network import NetworkOutput
from sinusapp.model.sinus_head import SINUS_OTHER

__all__ = [
    "MultiTaskLoss",
    "UncertaintyWeighting",
    "generalised_dice_loss",
    "segmentation_loss",
    "sinus_label_loss",
    "soft_dice_loss",
]


def soft_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    eps: float = 1.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Soft Dice loss of the foreground, per sample then averaged (1 − DSC).

    ``logits``/``target``: ``(N, 1, D, H, W)``; target in {0, 1}. ``eps`` smooths empty masks
    (a sample without lesion predicted empty scores ~0 loss). ``weight`` (same shape, 0–1):
    voxels with weight 0 (reference unknown) count for nothing.
    """
    p = torch.sigmoid(logits.float()).flatten(1)
    t = target.float().flatten(1)
    if weight is not None:
        w = weight.float().flatten(1)
        p, t = p * w, t * w
    inter = (p * t).sum(1)
    denom = p.sum(1) + t.sum(1)
    return (1.0 - (2.0 * inter + eps) / (denom + eps)).mean()


def generalised_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-5
) -> torch.Tensor:
    """Generalised Dice loss (Sudre et al. 2017) over background and lesion.

    Each class is weighted by ``1 / (its volume)²`` so the small lesion class is not swamped
    by the background (the loss of the paper's appendix).
    """
    p1 = torch.sigmoid(logits.float()).flatten(1)
    t1 = target.float().flatten(1)
    p = torch.stack([1 - p1, p1], dim=1)  # (N, 2, V)
    t = torch.stack([1 - t1, t1], dim=1)
    w = 1.0 / (t.sum(2) ** 2 + eps)
    w = torch.where(torch.isfinite(w), w, torch.zeros_like(w))
    inter = (w * (p * t).sum(2)).sum(1)
    denom = (w * (p + t).sum(2)).sum(1)
    return (1.0 - 2.0 * inter / (denom + eps)).mean()


def segmentation_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    dice: str = "soft",
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Dice-type loss (``soft`` or ``generalised``) + binary cross-entropy.

    ``weight`` (``(N, 1, D, H, W)``, 0–1): per-voxel weight of a partly labelled batch
    (``sinusapp train --seg-only``: 0 where the reference is unknown); soft Dice only.
    """
    if weight is not None and dice != "soft":
        raise ValueError(f"a voxel weight needs dice='soft', got {dice!r}")
    if dice == "soft":
        d = soft_dice_loss(logits, target, weight=weight)
    elif dice == "generalised":
        d = generalised_dice_loss(logits, target)
    else:
        raise ValueError(f"dice must be 'soft' or 'generalised', got {dice!r}")
    if weight is None:
        bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    else:
        w = weight.float()
        per_voxel = F.binary_cross_entropy_with_logits(
            logits.float(), target.float(), reduction="none"
        )
        bce = (per_voxel * w).sum() / w.sum().clamp_min(1.0)
    return d + bce


def sinus_label_loss(
    logits: torch.Tensor, target: torch.Tensor, *, allowed: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Cross-entropy + soft Dice (foreground classes) of the sinus head.

    ``logits``: ``(N, C, D, H, W)``; ``target``: ``(N, D, H, W)`` integer classes,
    :data:`~sinusapp.model.sinus_head.SINUS_IGNORE`, or :data:`SINUS_OTHER` (background or
    a class the case does not label; :func:`sinusapp.model.sinus_head.partial_targets`).
    ``allowed``: ``(N, C)`` bool, the classes a :data:`SINUS_OTHER` voxel of each sample
    may be (needed when any voxel is one). Such a voxel's cross-entropy is that of the
    merged class (−log of the summed probability of its allowed classes); in the Dice of
    class ``k`` it counts as "not ``k``" where ``k`` is not allowed and not at all where it
    is. Returns None when every voxel is ignored (no labelled case in the batch), so the
    term drops out of the step instead of contributing a meaningless zero.
    """
    exact = target < SINUS_OTHER
    other = target == SINUS_OTHER
    if not bool((exact | other).any()):
        return None
    logits = logits.float()
    n_cls = logits.shape[1]
    safe = torch.where(exact, target, 0).long()
    logp = torch.log_softmax(logits, dim=1)
    ce_vox = -logp.gather(1, safe[:, None])[:, 0] * exact
    if bool(other.any()):
        if allowed is None:
            raise ValueError(
                "sinus_label_loss: the target holds SINUS_OTHER voxels but no `allowed` "
                "classes were given; pass partial_targets' allowed per sample"
            )
        mask = allowed.to(logits.device)[:, :, None, None, None]
        merged = torch.logsumexp(logp.masked_fill(~mask, float("-inf")), dim=1)
        ce_vox = ce_vox - merged * other
    n_valid = (exact | other).sum()
    ce = ce_vox.sum() / n_valid
    prob = logp.exp()
    onehot = F.one_hot(safe, n_cls).permute(0, 4, 1, 2, 3).float() * exact[:, None]
    # per class: exact voxels count; SINUS_OTHER voxels count as "not k" where k is not allowed
    w = exact[:, None].float().expand(-1, n_cls, -1, -1, -1)
    if allowed is not None and bool(other.any()):
        w = w + other[:, None].float() * (~allowed.to(logits.device))[:, :, None, None, None]
    p = (prob * w).flatten(2)[:, 1:]
    t = (onehot * w).flatten(2)[:, 1:]
    dice = 1.0 - (2.0 * (p * t).sum(2) + 1.0) / (p.sum(2) + t.sum(2) + 1.0)
    return ce + dice.mean()


class UncertaintyWeighting(nn.Module):
    """Learnable homoscedastic-uncertainty task weighting (Kendall et al. 2018).

    ``forward(losses)`` returns ``Σ exp(−s_t)·L_t + s_t``; ``weights()`` the current
    ``exp(−s_t)`` (logged during training).
    """

    def __init__(self, *, n_tasks: int) -> None:
        super().__init__()
        if n_tasks < 1:
            raise ValueError(f"n_tasks must be ≥ 1, got {n_tasks}")
        self.log_vars = nn.Parameter(torch.zeros(n_tasks))

    def forward(self, losses: list[torch.Tensor]) -> torch.Tensor:
        """Combine the per-task losses."""
        if len(losses) != self.log_vars.numel():
            raise ValueError(f"expected {self.log_vars.numel()} losses, got {len(losses)}")
        total = torch.zeros((), device=self.log_vars.device)
        for s, loss in zip(self.log_vars, losses, strict=True):
            total = total + torch.exp(-s) * loss + s
        return total

    def weights(self) -> list[float]:
        """Current effective weights ``exp(−s_t)``."""
        return [float(w) for w in torch.exp(-self.log_vars.detach()).cpu()]


class MultiTaskLoss(nn.Module):
    """The training loss for a task mode (``multi``, ``seg`` or ``cls``).

    ``multi`` combines the segmentation and classification losses with
    :class:`UncertaintyWeighting`; the single-task modes use their one loss unweighted.
    """

    def __init__(self, *, task: str, dice: str = "soft", sinus: bool = False) -> None:
        super().__init__()
        if task not in ("multi", "seg", "cls"):
            raise ValueError(f"task must be 'multi', 'seg' or 'cls', got {task!r}")
        self.task = task
        self.dice = dice
        self.sinus = bool(sinus) and task != "cls"
        self.tasks: tuple[str, ...] = tuple(
            t
            for t, on in (
                ("seg", task in ("multi", "seg")),
                ("cls", task in ("multi", "cls")),
                ("sinus", self.sinus),
            )
            if on
        )
        self.weighting = (
            UncertaintyWeighting(n_tasks=len(self.tasks)) if len(self.tasks) > 1 else None
        )

    def forward(
        self,
        out: NetworkOutput,
        *,
        seg_target: torch.Tensor | None,
        cls_target: torch.Tensor | None,
        sinus_target: torch.Tensor | None = None,
        seg_weight: torch.Tensor | None = None,
        sinus_allowed: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the total loss and a dict of the parts (floats, for logging).

        ``cls_target=None`` in ``multi`` mode skips the classification term for this step
        (patch steps that train the segmentation only); a term that is skipped keeps its
        learned weight untouched. Samples whose ``cls_target`` is negative (samples without an
        outcome, :data:`~sinusapp.model.train.NO_OUTCOME`) are left out of the classification
        term; a batch of only such samples skips it. A skipped term still joins the graph at
        weight zero, so every parameter gets a gradient (DistributedDataParallel needs that
        when ranks skip different terms). ``seg_weight``: per-voxel weight of the
        segmentation loss. ``sinus_allowed``: ``(N, C)`` classes a partially labelled case's
        :data:`~sinusapp.model.sinus_head.SINUS_OTHER` voxels may be (:func:`sinus_label_loss`).
        """
        parts: dict[str, float] = {}
        losses: dict[str, torch.Tensor] = {}
        if self.task in ("multi", "seg"):
            if out.seg_logits is None or seg_target is None:
                raise ValueError("segmentation logits and target are required for this task")
            ls = segmentation_loss(out.seg_logits, seg_target, dice=self.dice, weight=seg_weight)
            parts["seg"] = float(ls.detach())
            losses["seg"] = ls
        if self.task in ("multi", "cls") and (self.task == "cls" or cls_target is not None):
            if out.cls_logits is None or cls_target is None:
                raise ValueError("classification logits and target are required for this task")
            known = cls_target >= 0
            if bool(known.any()):
                lc = F.cross_entropy(out.cls_logits.float()[known], cls_target[known].long())
                parts["cls"] = float(lc.detach())
                losses["cls"] = lc
        if self.sinus and sinus_target is not None and out.sinus_logits is not None:
            lsin = sinus_label_loss(out.sinus_logits, sinus_target, allowed=sinus_allowed)
            if lsin is not None:
                parts["sinus"] = float(lsin.detach())
                losses["sinus"] = lsin
        if self.weighting is None:
            # a cls-only batch without outcomes has nothing to learn: zero, joined below
            dev = next(t.device for t in (out.seg_logits, out.cls_logits) if t is not None)
            total = losses.get(self.tasks[0], torch.zeros((), device=dev))
        else:
            s = self.weighting.log_vars
            total = torch.zeros((), device=s.device)
            for i, t in enumerate(self.tasks):
                if t in losses:
                    total = total + torch.exp(-s[i]) * losses[t] + s[i]
        # a skipped head still takes part at weight zero: under DDP every rank must reduce the
        # same parameters, and a rank whose batch has no outcome or no labelled sinus voxel
        # would otherwise leave that head without a gradient
        if "cls" in self.tasks and "cls" not in losses and out.cls_logits is not None:
            total = total + 0.0 * out.cls_logits.float().sum()
        if "sinus" in self.tasks and "sinus" not in losses and out.sinus_logits is not None:
            total = total + 0.0 * out.sinus_logits.float().sum()
        parts["total"] = float(total.detach())
        return total, parts

    def task_weights(self) -> dict[str, float]:
        """The learned weights ``exp(−s_t)`` by task (empty for single-task modes)."""
        if self.weighting is None:
            return {}
        return dict(zip(self.tasks, self.weighting.weights(), strict=True))
