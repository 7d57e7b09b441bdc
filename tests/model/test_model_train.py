"""Training: the loss falls, CV + final fit + external scoring write a bundle, resume works."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import TINY_NET, TINY_PRE, tiny_cases

from sinusapp.errors import InputError
from sinusapp.model.train import (
    TrainConfig,
    augment_batch,
    prepare_cases,
    run_training,
    train_model,
)


def test_tiny_network_loss_falls(tmp_path: Path) -> None:
    prepared = prepare_cases(tiny_cases(4), cache_dir=tmp_path, config=TINY_PRE)
    assert all(c.located for c in prepared)
    assert all(c.image.shape == (32, 32, 32) and c.mask.any() for c in prepared)
    tcfg = TrainConfig(epochs=16, folds=0, batch_size=2, lr=1e-2, augment=False)
    _, loss_fn, hist = train_model(prepared, network=TINY_NET, tcfg=tcfg, device="cpu", run_seed=0)
    first, last = hist[0], hist[-1]
    segs = [h["seg"] for h in hist]
    assert last["seg"] < 0.85 * first["seg"], segs
    assert sum(b < a for a, b in itertools.pairwise(segs)) >= len(segs) - 2, segs
    assert last["total"] < first["total"]
    assert set(loss_fn.task_weights()) == {"seg", "cls"}
    assert "w_seg" in last and "w_cls" in last


def test_cpu_bf16_trains_in_bfloat16_and_returns_float32_contiguous_weights(
    tmp_path: Path,
) -> None:
    from safetensors.torch import save_file

    prepared = prepare_cases(tiny_cases(4), cache_dir=tmp_path, config=TINY_PRE)
    tcfg = TrainConfig(epochs=16, folds=0, batch_size=2, lr=1e-2, augment=False, cpu_bf16=True)
    seen: list[tuple[torch.dtype, bool]] = []
    real_conv = torch.nn.Conv3d.forward

    def spy(self: torch.nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
        out = real_conv(self, x)
        if self.training:
            seen.append(
                (
                    out.dtype,
                    x.is_contiguous(memory_format=torch.channels_last_3d),
                    self.weight.is_contiguous(memory_format=torch.channels_last_3d),
                )
            )
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.Conv3d, "forward", spy)
        model, _, hist = train_model(
            prepared, network=TINY_NET, tcfg=tcfg, device="cpu", run_seed=0
        )
    assert seen and {d for d, _, _ in seen} == {torch.bfloat16}
    assert seen[0][1], "the first convolution should see a channels-last input"
    assert all(w for _, _, w in seen), "every convolution's weights should be channels-last"
    segs = [h["seg"] for h in hist]
    assert segs[-1] < 0.85 * segs[0], segs
    state = model.state_dict()
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    assert all(v.is_contiguous() for v in state.values())
    save_file(state, str(tmp_path / "w.safetensors"))  # refuses non-contiguous tensors
    with pytest.raises(ValueError, match="for training on the CPU"):
        train_model(prepared, network=TINY_NET, tcfg=tcfg, device="cuda", run_seed=0)


def test_cpu_bf16_is_refused_on_a_gpu_device() -> None:
    from sinusapp.cli.train import _check_cpu_bf16

    with pytest.raises(InputError, match="--cpu-bf16 is for training on the CPU"):
        _check_cpu_bf16("cuda:0")


def test_cpu_bf16_is_refused_on_a_cpu_without_native_bfloat16(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sinusapp.cli.train import _check_cpu_bf16

    monkeypatch.setattr("sinusapp.model.train.cpu_has_native_bf16", lambda: False)
    with pytest.raises(InputError, match="no native bfloat16") as info:
        _check_cpu_bf16("cpu")
    assert "drop --cpu-bf16" in (info.value.hint or "")
    monkeypatch.setattr("sinusapp.model.train.cpu_has_native_bf16", lambda: True)
    _check_cpu_bf16("cpu")  # accepted where the CPU has it


def test_preprocessing_is_cached(tmp_path: Path) -> None:
    cases = tiny_cases(2)
    a = prepare_cases(cases, cache_dir=tmp_path, config=TINY_PRE)
    files = sorted(tmp_path.rglob("*.npz"))
    assert len(files) == 2
    mtimes = [f.stat().st_mtime_ns for f in files]
    b = prepare_cases(cases, cache_dir=tmp_path, config=TINY_PRE)
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert np.array_equal(a[0].image, b[0].image) and np.array_equal(a[1].mask, b[1].mask)


def test_augmentation_keeps_image_and_mask_aligned() -> None:
    x = torch.zeros(3, 1, 16, 16, 16)
    x[:, :, 2:6, 3:9, 10:14] = 1.0
    y = (x > 0.5).float()
    gen = torch.Generator().manual_seed(0)
    xa, ya = augment_batch(x, y, generator=gen)
    assert xa.shape == x.shape and ya.shape == y.shape
    assert float(ya.min()) >= 0.0 and float(ya.max()) <= 1.0
    for n in range(3):
        inside = xa[n][ya[n] > 0].mean()
        outside = xa[n][ya[n] == 0].mean()
        assert inside - outside > 0.5
    # reproducible from the generator's seed
    xb, _ = augment_batch(x, y, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(xa, xb)


def test_cross_validation_final_fit_external_and_resume(tmp_path: Path) -> None:
    cases = tiny_cases(10, n_test=2)
    tcfg = TrainConfig(epochs=2, folds=2, batch_size=2, lr=1e-2)
    kw = dict(
        out_dir=tmp_path / "bundle",
        work_dir=tmp_path / "work",
        network=TINY_NET,
        preprocess=TINY_PRE,
        tcfg=tcfg,
        device="cpu",
        data_description="10 phantoms",
        command="sinusapp train X --out Y",
    )
    bundle = run_training(cases, **kw)
    m = bundle.manifest["metrics"]
    assert m["cv"]["folds"] == 2 and len(m["cv"]["dsc_per_fold"]) == 2
    assert 0.0 <= m["cv"]["dsc_mean"] <= 1.0
    assert m["external"]["n"] == 2 and m["external"]["n_recurrence"] == 1
    assert "true_probability" in m["oracle_auc"]["train"]
    assert bundle.manifest["training"]["n_train"] == 8
    card = (tmp_path / "bundle" / "MODEL_CARD.md").read_text()
    assert "not for clinical use" in card.lower() and "sinusapp train X --out Y" in card
    assert bundle.sha256 in card
    preds = (tmp_path / "work" / "predictions.csv").read_text().splitlines()
    assert len(preds) == 1 + 10  # 8 out-of-fold + 2 test
    # the test cohort is never in a training fold
    for f in range(2):
        fold = json.loads((tmp_path / "work" / "checkpoints" / f"fold{f}.json").read_text())
        assert not {"case008", "case009"} & set(fold["val_case_ids"])
        assert fold["n_train"] + fold["n_val"] == 8

    # resume: finished folds and the final model are not retrained
    ckpts = sorted((tmp_path / "work" / "checkpoints").glob("*"))
    mtimes = {p.name: p.stat().st_mtime_ns for p in ckpts}
    again = run_training(cases, **kw, resume=True)
    assert {p.name: p.stat().st_mtime_ns for p in ckpts} == mtimes
    assert again.sha256 == bundle.sha256  # same weights: resumed, not retrained


def test_too_few_cases_per_outcome_for_the_folds(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="at least 5 cases of each outcome"):
        run_training(
            tiny_cases(6),
            out_dir=tmp_path / "b",
            work_dir=tmp_path / "w",
            network=TINY_NET,
            preprocess=TINY_PRE,
            tcfg=TrainConfig(epochs=1, folds=5),
            device="cpu",
        )


@pytest.mark.parametrize("task", ["seg", "cls"])
def test_single_task_ablations_train_and_predict(tmp_path: Path, task: str) -> None:
    from dataclasses import replace

    from sinusapp.model import Predictor
    from sinusapp.model.testing import make_sinus_phantom

    net = replace(TINY_NET, task=task)
    bundle = run_training(
        tiny_cases(5, n_test=1),
        out_dir=tmp_path / "b",
        work_dir=tmp_path / "w",
        network=net,
        preprocess=TINY_PRE,
        tcfg=TrainConfig(epochs=1, folds=0, batch_size=2),
        device="cpu",
    )
    assert bundle.network.task == task
    ext = bundle.manifest["metrics"]["external"]
    assert (ext["dsc_mean"] is None) == (task == "cls")
    res = Predictor(bundle.path, device="cpu").predict(make_sinus_phantom(seed=1)[0])
    assert (res.dlr_score is None) == (task == "seg")
    if task == "cls":
        assert not res.mask.any()  # no decoder, no segmentation
