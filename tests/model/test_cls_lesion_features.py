"""Segmentation-guided classification (``cls_lesion_features``) and fine-tuning from a bundle."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from sinusapp.model.bundle import load_bundle, save_bundle
from sinusapp.model.config import NetworkConfig, PreprocessConfig
from sinusapp.model.network import UNet3D, lesion_features
from sinusapp.model.train import TrainConfig, _init_from_bundle

CFG = NetworkConfig(base_width=4, levels=3, sinus_classes=4, cls_lesion_features=True)


def _x() -> torch.Tensor:
    return torch.randn(2, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))


def test_config_validates_and_round_trips() -> None:
    assert NetworkConfig.from_dict(CFG.to_dict()) == CFG
    assert NetworkConfig.from_dict(NetworkConfig().to_dict()).cls_lesion_features is False
    with pytest.raises(ValueError, match="task='multi'"):
        NetworkConfig(task="cls", cls_lesion_features=True)
    with pytest.raises(ValueError, match="True or False"):
        NetworkConfig(cls_lesion_features=1)  # type: ignore[arg-type]


def test_lesion_features_follow_the_lesion_probability() -> None:
    low = lesion_features(torch.full((1, 1, 4, 4, 4), -8.0))
    high = lesion_features(torch.full((1, 1, 4, 4, 4), 8.0))
    assert low.shape == (1, 2)
    assert (high > low).all()
    assert float(high[0, 0]) == pytest.approx(10.0 * torch.sigmoid(torch.tensor(8.0)).item())


def test_classification_reads_the_segmentation_without_training_it() -> None:
    torch.manual_seed(0)
    model = UNet3D(config=CFG).eval()
    x = _x()
    out = model(x, segment=False)
    assert out.seg_logits is None and out.sinus_logits is None
    full = model(x)
    torch.testing.assert_close(out.cls_logits, full.cls_logits)
    # the classification head sees the lesion map: move it and the logits move
    with torch.no_grad():
        model.seg_head.bias += 6.0
    moved = model(x, segment=False).cls_logits
    assert not torch.allclose(moved, out.cls_logits)
    # ... but its loss sends no gradient into the segmentation head
    model.zero_grad()
    model(x, segment=False).cls_logits.sum().backward()
    assert model.seg_head.weight.grad is None or float(model.seg_head.weight.grad.abs().sum()) == 0
    assert float(model.cls_head[-1].weight.grad.abs().sum()) > 0


def _bundle(tmp_path: Path, cfg: NetworkConfig) -> Path:
    torch.manual_seed(1)
    model = UNet3D(config=cfg)
    folder = tmp_path / "b"
    save_bundle(
        folder,
        state_dict=model.state_dict(),
        network=cfg,
        preprocess=PreprocessConfig(spacing_mm=4.0, block_shape=(16, 16, 16)),
        name="t",
        version="0.0.1",
        training={},
        metrics={},
        model_card="test",
    )
    return folder


def test_init_weights_copies_what_fits_and_names_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = NetworkConfig(base_width=4, levels=3, sinus_classes=4)  # 2.0-style cls head
    path = _bundle(tmp_path, old)
    state = load_bundle(path).load_state_dict()
    torch.manual_seed(2)
    model = UNet3D(config=CFG)
    with caplog.at_level(logging.INFO, logger="sinusapp.model.train"):
        _init_from_bundle(model, path, quiet=False)
    new = model.state_dict()
    torch.testing.assert_close(new["seg_head.weight"], state["seg_head.weight"])
    torch.testing.assert_close(new["encoders.0.0.weight"], state["encoders.0.0.weight"])
    first = "cls_head.1.weight"  # after the dropout: input widened by the lesion features
    assert new[first].shape != state[first].shape
    assert first in caplog.text
    assert TrainConfig(init_weights=str(path)).init_weights == str(path)


def test_init_weights_refuses_another_architecture(tmp_path: Path) -> None:
    path = _bundle(tmp_path, NetworkConfig(base_width=4, levels=3))
    model = UNet3D(config=NetworkConfig(base_width=6, levels=2, task="cls"))
    with pytest.raises(ValueError, match="tensors fit its weights"):
        _init_from_bundle(model, path, quiet=True)


def test_region_features_are_the_soft_per_region_opacification() -> None:
    from sinusapp.model.network import region_features

    seg = torch.full((1, 1, 4, 4, 4), -9.0)
    seg[..., :2] = 9.0  # lesion in the half x < 2
    sinus = torch.full((1, 4, 4, 4, 4), -9.0)
    sinus[:, 1, :, :, :2] = 9.0  # region 1 exactly the lesion half
    sinus[:, 3, :, :, 2:] = 9.0  # region 3 the other half
    f = region_features(seg, sinus)
    assert f.shape == (1, 3)
    assert float(f[0, 0]) > 3.5 and float(f[0, 2]) < 0.1 and float(f[0, 1]) < 0.1
    with pytest.raises(ValueError, match="cls_region_features needs"):
        NetworkConfig(cls_region_features=True, cls_lesion_features=True)  # no sinus head
    cfg = NetworkConfig(
        base_width=4, levels=3, sinus_classes=4, cls_lesion_features=True, cls_region_features=True
    )
    torch.manual_seed(0)
    model = UNet3D(config=cfg).eval()
    x = _x()
    out = model(x, segment=False)
    assert out.sinus_logits is None and out.cls_logits.shape == (2, 2)
    with torch.no_grad():
        model.sinus_head.bias[1] += 8.0  # every voxel becomes region 1
    assert not torch.allclose(model(x, segment=False).cls_logits, out.cls_logits)
