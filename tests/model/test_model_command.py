"""`sinusapp train`: options, and an end-to-end run on a tiny synthetic cohort."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from sinusapp.cli.train import _block, add_arguments
from sinusapp.model import Predictor


def test_block_option() -> None:
    assert _block("64") == (64, 64, 64)
    assert _block("48,64,64") == (48, 64, 64)
    assert _block("48x64x64") == (48, 64, 64)
    for bad in ("a", "1,2"):
        with pytest.raises(argparse.ArgumentTypeError):
            _block(bad)


def test_defaults() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args(["data", "--out", "b"])
    assert a.cpu_bf16 is False  # a CPU training repeats bit for bit unless asked
    assert (a.folds, a.task, a.device, a.block, a.spacing) == (
        5,
        "multi",
        "auto",
        (48, 64, 64),
        2.0,
    )


def test_invalid_option_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sinusapp.cli import main

    monkeypatch.setenv("SINUSAPP_HOME", str(tmp_path / "home"))
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "b"), "--width", "0"]) == 2
    # a share of segmentation-only draws without any segmentation-only case, or out of (0, 1)
    out = ["train", str(tmp_path), "--out", str(tmp_path / "b")]
    assert main([*out, "--seg-only-share", "0.2"]) == 2
    assert main([*out, "--seg-only-share", "1.5", "--seg-only", str(tmp_path)]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--cpu-bf16"]], ids=["float32", "cpu-bf16"])
def test_train_command_end_to_end(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
) -> None:
    pytest.importorskip("sinusapp.cli.synth")
    from sinusapp.cli import main

    monkeypatch.setenv("SINUSAPP_HOME", str(tmp_path / "home"))
    if extra:  # the bfloat16 path itself, on any CPU (refused where it would be emulated)
        monkeypatch.setattr("sinusapp.model.train.cpu_has_native_bf16", lambda: True)
    data = tmp_path / "cohort"
    assert (
        main(["synth", "--out", str(data), "--cases", "3", "--preset", "paper", "--low-res"]) == 0
    )
    out = tmp_path / "bundle"
    args = ["train", str(data), "--out", str(out), "--folds", "0", "--epochs", "2"]
    args += ["--width", "4", "--levels", "3", "--spacing", "4", "--block", "32", "--workers", "1"]
    args += ["--device", "cpu", "--threads", "1", *extra]
    assert main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["settings"]["cpu_bf16"] is bool(extra)
    assert manifest["training"]["n_train"] == 3 and manifest["training"]["n_test"] == 3
    assert manifest["metrics"]["external"]["n"] == 3
    assert "true_probability" in manifest["metrics"]["oracle_auc"]["test"]
    assert "Synthetic cohort" in manifest["training"]["data_description"]
    assert "sinusapp" in manifest["training"]["command"] or manifest["training"]["command"] == ""
    assert "bundle written" in capsys.readouterr().out
    Predictor(out, device="cpu")  # the written bundle loads


def test_lesion_regions_are_kept_from_the_init_bundle_unless_given() -> None:
    """Fine-tuning the bundled model must not quietly grade the sinuses it does not assess."""
    from sinusapp.cli.train import resolve_lesion_regions
    from sinusapp.errors import InputError
    from sinusapp.model.bundle import load_bundle
    from sinusapp.resources import models_dir

    shipped = load_bundle(models_dir() / "sinus_unet", verify_weights=False).manifest
    kept = resolve_lesion_regions(None, init_manifest=shipped)
    assert kept is not None
    assert kept["assessed"] == shipped["lesion_regions"]["assessed"]
    assert kept["why"].startswith("kept from the --init-weights bundle")
    # a fine-tune of that fine-tune says where it came from once, not once per generation
    again = resolve_lesion_regions(None, init_manifest={"lesion_regions": kept})
    assert again is not None and again["why"] == kept["why"]
    assert again["why"].count("kept from the --init-weights bundle") == 1
    assert resolve_lesion_regions(None, init_manifest=None) is None
    assert resolve_lesion_regions("all", init_manifest=shipped) is None
    given = resolve_lesion_regions("maxillary_L, frontal", init_manifest=shipped)
    assert given is not None and given["assessed"] == ["maxillary_L", "frontal"]
    with pytest.raises(InputError, match="unknown region"):
        resolve_lesion_regions("maxillary", init_manifest=None)
