"""`sinusapp train` under torchrun: two CPU processes (gloo) train one bundle; rank 0 alone
writes; the bundle loads and predicts like a single-process one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
TRAIN = ["--folds", "0", "--epochs", "2", "--width", "4", "--levels", "3", "--spacing", "4"]
TRAIN += ["--block", "32", "--workers", "1", "--device", "cpu", "--threads", "1"]
TRAIN += ["--batch-size", "2"]


def _torchrun(args: list[str], *, env: dict[str, str], timeout: float = 240) -> str:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [str(HERE / "_rank_audit.py"), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc.stdout


def _audit(stdout: str) -> dict[str, list[str]]:
    out = {}
    for line in stdout.splitlines():
        if line.startswith("AUDIT "):
            _, rank, paths = line.split(" ", 2)
            out[rank] = json.loads(paths)
    return out


@pytest.fixture(scope="module")
def ddp_run(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One `torchrun --nproc_per_node=2 ... sinusapp train` on the tiny cohort."""
    tmp = tmp_path_factory.mktemp("ddp")
    out, work = tmp / "bundle", tmp / "work"
    env = dict(os.environ, SINUSAPP_HOME=str(tmp / "home"), OMP_NUM_THREADS="1")
    env["SINUSAPP_AUDIT_WATCH"] = os.pathsep.join(str(p) for p in (tmp, tiny_cohort))
    args = ["train", str(tiny_cohort), "--out", str(out), "--work-dir", str(work), *TRAIN]
    stdout = _torchrun(args, env=env)
    return {"out": out, "args": args, "env": env, "stdout": stdout}


def test_two_gloo_processes_train_a_bundle_rank0_alone_writes(
    ddp_run: dict[str, Any], tiny_cohort: Path
) -> None:
    from sinusapp.dicom import load_volume
    from sinusapp.model import Predictor
    from sinusapp.model.bundle import load_bundle

    stdout = ddp_run["stdout"]
    audit = _audit(stdout)
    assert set(audit) == {"0", "1"}, stdout
    assert audit["1"] == [], f"rank 1 wrote {audit['1']}"
    written = "\n".join(audit["0"])
    # rank 0 is seen writing the checkpoint, the result, the bundle and the log
    for name in ("final.pt", "final.json", "manifest.json", "predictions.csv", "sinusapp.log"):
        assert name in written, f"rank 0 was not seen writing {name}: {audit['0']}"
    assert stdout.count("bundle written to") == 1  # rank 0 reports, rank 1 is silent

    out = ddp_run["out"]
    bundle = load_bundle(out)
    training = bundle.manifest["training"]
    assert training["n_train"] == 3 and training["n_test"] == 3
    assert bundle.manifest["metrics"]["external"]["n"] == 3
    volume = load_volume(tiny_cohort / "B0001" / "ct")
    pred = Predictor(out, device="cpu").predict(volume)
    assert 0.0 <= pred.dlr_score <= 1.0
    assert pred.mask.shape == volume.shape


@pytest.mark.slow
def test_resume_after_a_lost_run_retrains_nothing_finished(ddp_run: dict[str, Any]) -> None:
    from sinusapp.model.bundle import load_bundle

    out = ddp_run["out"]
    (out / "manifest.json").unlink()  # the run died before writing the bundle
    stdout = _torchrun([*ddp_run["args"], "--resume"], env=ddp_run["env"])
    audit = _audit(stdout)
    assert audit["1"] == []
    assert any(p.endswith("manifest.json") for p in audit["0"])
    assert not any(p.endswith("final.pt") for p in audit["0"]), "the finished model was retrained"
    assert load_bundle(out).manifest["training"]["n_train"] == 3


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_batch_shards_cover_the_batch_once(n: int) -> None:
    from sinusapp.model.train import _shard

    for world in (1, 2, 3):
        if n < world:
            continue
        parts = [_shard(n, rank=r, world=world) for r in range(world)]
        rows = [i for lo, hi in parts for i in range(lo, hi)]
        assert rows == list(range(n))
        sizes = [hi - lo for lo, hi in parts]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_models_train_as_independent_jobs_then_one_run_writes_the_bundle(
    tiny_cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sinusapp.cli import main
    from sinusapp.model.bundle import load_bundle

    out, work = tmp_path / "bundle", tmp_path / "work"
    base = ["train", str(tiny_cohort), "--out", str(out), "--work-dir", str(work), *TRAIN]
    assert main([*base, "--job", "fold7"]) == 2  # no such model: a clear input error
    assert main([*base, "--job", "final"]) == 0
    assert "once every model is trained" in capsys.readouterr().out
    assert not (out / "manifest.json").exists()  # a job never writes the bundle
    ckpt = work / "checkpoints" / "final.pt"
    stamp = ckpt.stat().st_mtime_ns
    assert main([*base, "--resume"]) == 0
    assert ckpt.stat().st_mtime_ns == stamp, "the finished job was trained again"
    assert load_bundle(out).manifest["training"]["n_train"] == 3


def test_segmentation_only_cases_train_under_torchrun(tiny_cohort: Path, tmp_path: Path) -> None:
    """Ranks whose shard holds only cases without an outcome skip the classification term:
    the head must still join the gradient reduction, or DDP fails / hangs on the next step."""
    import numpy as np

    from sinusapp.dicom import load_volume
    from sinusapp.model.bundle import load_bundle
    from sinusapp.synth.dicomio import write_label_nifti

    ct = next(p for p in sorted(tiny_cohort.iterdir()) if (p / "ct").is_dir()) / "ct"
    volume = load_volume(ct)
    unknown = np.zeros(volume.shape, np.uint8)
    unknown[: volume.shape[0] // 2] = 1
    seg = tmp_path / "seg_only"
    for n in range(4):
        case = seg / f"BG_{n}"
        case.mkdir(parents=True)
        (case / "ct").symlink_to(ct.resolve(), target_is_directory=True)
        write_label_nifti(labels=unknown, affine=volume.affine, out_path=case / "unlabelled.nii.gz")
    out, work = tmp_path / "bundle", tmp_path / "work"
    env = dict(os.environ, SINUSAPP_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    args = ["train", str(tiny_cohort), "--out", str(out), "--work-dir", str(work), *TRAIN]
    _torchrun([*args, "--seg-only", str(seg)], env=env)
    training = load_bundle(out).manifest["training"]
    assert training["seg_only_case_ids"] == [f"BG_{n}" for n in range(4)]
    assert training["n_train"] == 3
