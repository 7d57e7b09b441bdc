"""Too small to judge: a tiny CT (8 x 8 x 8 voxels), a model bundle with a tiny input block
(which the writer itself used to produce), and a ``--bundle`` that is no bundle folder are
refused with an error that names the size and the minimum, before torch is even imported
where the model is not needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from _dicomgen import write_volume_series

from sinusapp.errors import BundleError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_ct(tmp_path: Path) -> tuple[Path, str]:
    """An 8 x 8 x 8-voxel CT cut from the phantom's nasal region, and its SeriesInstanceUID."""
    from sinusapp.imaging.volume import Volume
    from sinusapp.model.testing import make_sinus_phantom

    vol, _ = make_sinus_phantom(shape=(40, 64, 64), spacing_mm=(2.5, 3.2, 3.2), seed=3)
    cut = np.ascontiguousarray(vol.array[16:24, 24:32, 28:36])
    folder = tmp_path / "tiny"
    write_volume_series(folder, Volume(array=cut, affine=vol.affine, info=vol.info))
    uid = str(pydicom.dcmread(sorted(folder.glob("*.dcm"))[0]).SeriesInstanceUID)
    return folder, uid


@pytest.mark.usefixtures("fake_model")
@pytest.mark.parametrize("forced", [False, True], ids=["proposed", "forced-series"])
def test_a_tiny_ct_is_refused_naming_its_size_and_the_minimum(
    tiny_ct, cli, predict_args, tmp_path, forced
) -> None:
    folder, uid = tiny_ct
    out_json = tmp_path / "r.json"
    extra = ["--json", str(out_json)] + (["--series", uid] if forced else [])
    rc, out, err = cli(*predict_args(folder, *extra))
    assert rc == 2, err
    assert "Traceback" not in err and "DLR-score" not in out and not out_json.exists()
    if forced:  # the plausibility gate: the extent in mm and the 30 mm minimum
        assert "covers only 18 × 22 × 22 mm (8 slices)" in err and "at least 30 mm" in err
    else:  # never proposed: the slice count and the 16-slice minimum
        assert "only 8 slices" in err and "at least 16 needed" in err


def _save(folder: Path, *, block: tuple[int, int, int], spacing_mm: float) -> None:
    import torch

    from sinusapp.model.bundle import save_bundle
    from sinusapp.model.config import NetworkConfig, PreprocessConfig
    from sinusapp.model.network import UNet3D

    net = NetworkConfig(base_width=2, levels=2, cls_hidden=(4,))
    torch.manual_seed(0)
    save_bundle(
        folder,
        state_dict=UNet3D(config=net).state_dict(),
        network=net,
        preprocess=PreprocessConfig(spacing_mm=spacing_mm, block_shape=block),
        name="unit",
        version="0",
        training={"data_description": "none"},
        metrics={},
        model_card="card {sha256}\n",
    )


@pytest.mark.parametrize(
    ("block", "spacing_mm", "words"),
    [
        ((8, 8, 8), 1.0, "covers 8 x 8 x 8 mm"),
        ((8, 8, 8), 8.0, "at least 16 voxels"),
        ((16, 32, 32), 2.0, "covers 32 x 64 x 64 mm"),
    ],
    ids=["8-cube-1mm", "8-cube-8mm", "thin-slab"],
)
def test_the_writer_refuses_a_tiny_block(tmp_path, block, spacing_mm, words) -> None:
    with pytest.raises(BundleError, match=words) as info:
        _save(tmp_path / "b", block=block, spacing_mm=spacing_mm)
    assert "48 mm on every axis" in str(info.value)
    assert not (tmp_path / "b").exists()  # nothing written


def test_a_sealed_bundle_with_a_tiny_block_is_refused_on_load(tmp_path) -> None:
    from sinusapp.model.bundle import load_bundle, seal_bundle

    b = tmp_path / "b"
    _save(b, block=(16, 16, 16), spacing_mm=4.0)  # 64 mm: accepted
    assert load_bundle(b).preprocess.block_shape == (16, 16, 16)
    m = json.loads((b / "manifest.json").read_text())
    m["preprocessing"]["block_shape"] = [8, 8, 8]
    (b / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="covers 32 x 32 x 32 mm"):
        seal_bundle(b)  # re-sealing validates too
    with pytest.raises(BundleError, match="at least 16 voxels and 48 mm"):
        load_bundle(b)


def test_train_refuses_a_tiny_block_before_reading_the_dataset(tmp_path, cli) -> None:
    rc, _, err = cli(
        "train", str(tmp_path / "no_such_dataset"), "--out", str(tmp_path / "b"), "--block", "8"
    )
    assert rc == 2 and "Invalid training option" in err and "48 mm" in err
    assert "no_such_dataset" not in err  # refused before the dataset is looked at


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_a_bad_bundle_path_is_refused_before_torch_is_imported(tmp_path, kind) -> None:
    ct = tmp_path / "ct"
    ct.mkdir()
    bundle = tmp_path / ("weights.safetensors" if kind == "file" else "no_bundle")
    if kind == "file":
        bundle.write_bytes(b"not a bundle")
    code = (
        "import sys; from sinusapp.cli import main; "
        "rc = main(sys.argv[1:]); print('RC', rc, 'TORCH', 'torch' in sys.modules)"
    )
    argv = [str(ct), "--asthma", "no", "--allergic-rhinitis", "no", "--eosinophils", "200"]
    proc = subprocess.run(
        [sys.executable, "-c", code, "predict", *argv, "--bundle", str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"SINUSAPP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
    )
    assert "RC 2 TORCH False" in proc.stdout, proc.stdout + proc.stderr
    words = "is a file, not a model bundle folder" if kind == "file" else "does not exist"
    assert words in proc.stderr and str(bundle) in proc.stderr
