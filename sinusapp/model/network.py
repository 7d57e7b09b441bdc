"""The multi-task 3D U-Net of He et al. (2023): lesion segmentation + recurrence classification.

Encoder: per level two (conv 3×3×3 → norm → LeakyReLU), max-pool down; decoder: trilinear
up-sampling, concatenation with the skip, two convs; segmentation head: 1×1×1 conv (one lesion
logit); optional sinus head: a second 1×1×1 conv on the same decoder features giving
``sinus_classes`` logits (softmax: background, maxillary L / R, nasal cavity).
Classification head on the bottleneck: global average pool ‖ global max pool →
dropout → FC → LeakyReLU → FC → LeakyReLU → FC → ``num_classes`` logits (the softmax class-1
probability is the DLR-score). ``task="seg"`` drops the classification head, ``task="cls"``
drops the decoder: the paper's single-task ablations.

This module imports torch; :mod:`sinusapp.model` imports it only when a model is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

from sinusapp.model.config import NetworkConfig

__all__ = ["NetworkOutput", "UNet3D"]


@dataclass
class NetworkOutput:
    """What the network returns: segmentation, classification and sinus-label logits."""

    seg_logits: torch.Tensor | None
    cls_logits: torch.Tensor | None
    sinus_logits: torch.Tensor | None = None


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    return nn.InstanceNorm3d(channels, affine=True)


class _DoubleConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, norm: str) -> None:
        super().__init__(
            nn.Conv3d(c_in, c_out, 3, padding=1, bias=False),
            _norm(norm, c_out),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Conv3d(c_out, c_out, 3, padding=1, bias=False),
            _norm(norm, c_out),
            nn.LeakyReLU(0.01, inplace=True),
        )


#: Lesion summaries the classification head sees with ``cls_lesion_features``.
N_LESION_FEATURES = 2


def lesion_features(seg_logits: torch.Tensor) -> torch.Tensor:
    """``(N, 2)``: mean lesion probability over the field of view (×10) and its log / 4.

    Gradients are stopped: the classification loss reads the segmentation, never trains it.
    The scalings keep both near unit range for lesion fractions of 0.1 %–30 %.
    """
    p = torch.sigmoid(seg_logits.detach().float()[:, 0]).mean(dim=(1, 2, 3))
    return torch.stack([10.0 * p, torch.log(p + 1e-4) / 4.0], dim=1).to(seg_logits.dtype)


def region_features(seg_logits: torch.Tensor, sinus_logits: torch.Tensor) -> torch.Tensor:
    """``(N, sinus_classes - 1)``: lesion fraction of each sinus-head region (×4).

    The soft per-sinus opacification of the field of view: lesion probability weighted by
    each region's softmax probability. Gradients are stopped, as for
    :func:`lesion_features`.
    """
    p = torch.sigmoid(seg_logits.detach().float()[:, 0])
    q = torch.softmax(sinus_logits.detach().float(), dim=1)[:, 1:]
    num = (q * p[:, None]).sum(dim=(2, 3, 4))
    den = q.sum(dim=(2, 3, 4)) + 1.0
    return (4.0 * num / den).to(seg_logits.dtype)


class UNet3D(nn.Module):
    """Multi-task 3D U-Net; every hyperparameter is validated on construction.

    Parameters (keyword-only; see :class:`~sinusapp.model.config.NetworkConfig`)
    ----------
    in_channels, base_width, levels, seg_classes, num_classes, task, norm, dropout, cls_hidden

    Raises
    ------
    ValueError
        A hyperparameter is out of range (names the parameter and the value).

    Input: ``(N, in_channels, D, H, W)`` with every side a multiple of ``2**(levels-1)``.
    """

    def __init__(self, *, config: NetworkConfig | None = None, **kwargs: object) -> None:
        super().__init__()
        if config is None:
            config = NetworkConfig(**kwargs)  # type: ignore[arg-type]
        elif kwargs:
            raise ValueError("pass either config= or individual hyperparameters, not both")
        self.config = config
        widths = [config.base_width * 2**level for level in range(config.levels)]
        self.encoders = nn.ModuleList()
        c_prev = config.in_channels
        for w in widths:
            self.encoders.append(_DoubleConv(c_prev, w, config.norm))
            c_prev = w
        self.decoders = nn.ModuleList()
        self.seg_head: nn.Module | None = None
        if config.has_seg:
            for level in range(config.levels - 2, -1, -1):
                self.decoders.append(
                    _DoubleConv(widths[level + 1] + widths[level], widths[level], config.norm)
                )
            seg_head = nn.Conv3d(widths[0], config.seg_classes, 1)
            # Start at the lesion prior (~2 % of the block) instead of 50 %: the BCE term then
            # starts near its floor and the first steps learn where lesions are, not that
            # most voxels are background (Lin et al. 2017's prior initialisation).
            if seg_head.bias is not None:
                nn.init.constant_(seg_head.bias, math.log(0.02 / 0.98))
            self.seg_head = seg_head
        self.sinus_head: nn.Module | None = None
        if config.has_seg and config.sinus_classes:
            self.sinus_head = nn.Conv3d(widths[0], config.sinus_classes, 1)
        self.cls_head: nn.Module | None = None
        if config.has_cls:
            layers: list[nn.Module] = [nn.Dropout(config.dropout)]
            c = 2 * widths[-1] + (N_LESION_FEATURES if config.cls_lesion_features else 0)
            if config.cls_region_features:
                c += config.sinus_classes - 1
            for h in config.cls_hidden:
                layers += [nn.Linear(c, h), nn.LeakyReLU(0.01, inplace=True)]
                c = h
            layers.append(nn.Linear(c, config.num_classes))
            self.cls_head = nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, *, classify: bool = True, segment: bool = True
    ) -> NetworkOutput:
        """Run the network; returns :class:`NetworkOutput` (absent heads give None).

        ``classify=False`` / ``segment=False`` skip the classification head / the decoder
        (inference runs them on different fields of view, see ``PreprocessConfig.patch_shape``).
        With ``cls_lesion_features`` the decoder still runs for the classification head's
        lesion summaries when ``segment=False``; its maps are then not returned.
        """
        d = self.config.divisor
        if x.ndim != 5 or any(s % d for s in x.shape[2:]):
            raise ValueError(
                f"input must be (N, C, D, H, W) with D, H, W multiples of {d}, got {tuple(x.shape)}"
            )
        skips: list[torch.Tensor] = []
        for i, enc in enumerate(self.encoders):
            if i > 0:
                x = F.max_pool3d(x, 2)
            x = enc(x)
            skips.append(x)
        bottleneck = x
        classify = self.cls_head is not None and classify
        seg_logits = sinus_logits = None
        decode = self.seg_head is not None and (
            segment or (classify and self.config.cls_lesion_features)
        )
        if decode:
            for dec, skip in zip(self.decoders, reversed(skips[:-1]), strict=True):
                x = F.interpolate(x, size=skip.shape[2:], mode="trilinear", align_corners=False)
                x = dec(torch.cat([x, skip], dim=1))
            seg_logits = self.seg_head(x)
            if self.sinus_head is not None and (segment or self.config.cls_region_features):
                sinus_logits = self.sinus_head(x)
        cls_logits = None
        if classify:
            feats = [bottleneck.mean(dim=(2, 3, 4)), bottleneck.amax(dim=(2, 3, 4))]
            if self.config.cls_lesion_features:
                feats.append(lesion_features(seg_logits))
            if self.config.cls_region_features:
                feats.append(region_features(seg_logits, sinus_logits))
            cls_logits = self.cls_head(torch.cat(feats, dim=1))
        if not segment:
            seg_logits = sinus_logits = None
        return NetworkOutput(
            seg_logits=seg_logits, cls_logits=cls_logits, sinus_logits=sinus_logits
        )

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
