"""The network validates its hyperparameters and produces the right outputs per task; losses."""

from __future__ import annotations

import pytest
import torch

from sinusapp.model.config import NetworkConfig, PreprocessConfig
from sinusapp.model.losses import (
    MultiTaskLoss,
    UncertaintyWeighting,
    generalised_dice_loss,
    segmentation_loss,
    soft_dice_loss,
)
from sinusapp.model.network import UNet3D


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"base_width": 0}, "base_width"),
        ({"levels": 1}, "levels"),
        ({"levels": 9}, "levels"),
        ({"task": "both"}, "task"),
        ({"norm": "group"}, "norm"),
        ({"dropout": 1.0}, "dropout"),
        ({"num_classes": 1}, "num_classes"),
        ({"cls_hidden": (16, 0)}, "cls_hidden"),
    ],
)
def test_invalid_hyperparameters_raise(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        UNet3D(**kwargs)


def test_block_shape_must_fit_the_poolings() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        PreprocessConfig(block_shape=(30, 32, 32)).check_divisible(NetworkConfig(levels=4).divisor)
    net = UNet3D(base_width=2, levels=3)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 1, 30, 32, 32))


@pytest.mark.parametrize(
    ("task", "seg", "cls"), [("multi", True, True), ("seg", True, False), ("cls", False, True)]
)
def test_outputs_per_task(task: str, seg: bool, cls: bool) -> None:
    torch.manual_seed(0)
    net = UNet3D(base_width=4, levels=3, task=task, cls_hidden=(8,)).eval()
    out = net(torch.randn(2, 1, 16, 24, 32))
    assert (out.seg_logits is not None) == seg
    assert (out.cls_logits is not None) == cls
    if seg:
        assert out.seg_logits.shape == (2, 1, 16, 24, 32)
    if cls:
        assert out.cls_logits.shape == (2, 2)
    # the single-task ablations drop the unused part of the network entirely
    names = {n.split(".")[0] for n, _ in net.named_parameters()}
    assert ("decoders" in names) == seg
    assert ("cls_head" in names) == cls


def test_paper_sized_network_has_the_papers_widths() -> None:
    net = UNet3D(base_width=16, levels=5, cls_hidden=(256, 64), norm="batch")
    widths = [enc[0].out_channels for enc in net.encoders]
    assert widths == [16, 32, 64, 128, 256]
    # GAP ‖ GMP of the 256-channel bottleneck → 512 → 256 → 64 → 2
    linears = [m for m in net.cls_head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 256), (256, 64), (64, 2)]


def test_dice_losses() -> None:
    target = torch.zeros(1, 1, 8, 8, 8)
    target[..., 2:6, 2:6, 2:6] = 1
    perfect = (target * 2 - 1) * 20
    wrong = -perfect
    assert soft_dice_loss(perfect, target) < 0.01
    assert soft_dice_loss(wrong, target) > 0.95
    assert generalised_dice_loss(perfect, target) < 0.01
    assert generalised_dice_loss(wrong, target) > 0.95
    assert segmentation_loss(perfect, target, dice="generalised") < 0.01
    with pytest.raises(ValueError, match="dice"):
        segmentation_loss(perfect, target, dice="jaccard")


def test_uncertainty_weighting_formula_and_learning() -> None:
    w = UncertaintyWeighting(n_tasks=2)
    with torch.no_grad():
        w.log_vars.copy_(torch.tensor([0.5, -1.0]))
    l1, l2 = torch.tensor(2.0), torch.tensor(3.0)
    expected = torch.exp(torch.tensor(-0.5)) * 2 + 0.5 + torch.exp(torch.tensor(1.0)) * 3 - 1.0
    assert torch.isclose(w([l1, l2]), expected)
    # the optimum of exp(-s)·L + s is s = log L: the weights learn 1 / L
    opt = torch.optim.SGD(w.parameters(), lr=0.1)
    for _ in range(400):
        opt.zero_grad()
        w([l1, l2]).backward()
        opt.step()
    assert w.weights() == pytest.approx([0.5, 1 / 3], rel=0.02)


def test_multitask_loss_modes() -> None:
    net = UNet3D(base_width=2, levels=2, cls_hidden=(4,))
    out = net(torch.randn(2, 1, 8, 8, 8))
    seg_t = torch.zeros(2, 1, 8, 8, 8)
    cls_t = torch.tensor([0, 1])
    _total, parts = MultiTaskLoss(task="multi")(out, seg_target=seg_t, cls_target=cls_t)
    assert set(parts) == {"seg", "cls", "total"}
    # with s = 0 the weighted sum is the plain sum
    assert parts["total"] == pytest.approx(parts["seg"] + parts["cls"], rel=1e-5)
    _, parts = MultiTaskLoss(task="seg")(out, seg_target=seg_t, cls_target=None)
    assert set(parts) == {"seg", "total"}
    assert MultiTaskLoss(task="cls").task_weights() == {}
