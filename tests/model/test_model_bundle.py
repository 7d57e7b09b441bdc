"""Bundles round-trip; a tampered or invalid bundle is refused with a clear BundleError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sinusapp.errors import BundleError
from sinusapp.model.bundle import load_bundle, save_bundle, seal_bundle, sha256_file
from sinusapp.model.config import NetworkConfig, PreprocessConfig
from sinusapp.model.network import UNet3D

NET = NetworkConfig(base_width=2, levels=2, cls_hidden=(4,))
PRE = PreprocessConfig(spacing_mm=4.0, block_shape=(16, 16, 16))


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = UNet3D(config=NET)
    save_bundle(
        tmp_path / "b",
        state_dict=model.state_dict(),
        network=NET,
        preprocess=PRE,
        name="unit",
        version="1.2.3",
        training={"data_description": "none"},
        metrics={"cv": {"dsc_mean": 0.5}},
        model_card="card {sha256}\n",
    )
    return tmp_path / "b"


def test_round_trip(bundle_dir: Path) -> None:
    b = load_bundle(bundle_dir)
    assert b.network == NET and b.preprocess == PRE
    assert b.name == "unit" and b.version == "1.2.3"
    assert b.sha256 == sha256_file(bundle_dir / "weights.safetensors")
    m = b.manifest
    for key in ("format_version", "created", "software_version", "labels", "training", "metrics"):
        assert key in m
    assert m["preprocessing"]["hu_window"] == [-1000.0, 1000.0]
    assert b.sha256 in (bundle_dir / "MODEL_CARD.md").read_text()
    torch.manual_seed(0)
    ref = UNet3D(config=NET).state_dict()
    state = b.load_state_dict()
    assert set(state) == set(ref)
    assert all(torch.equal(state[k], ref[k]) for k in ref)
    # weights are safetensors, not a pickle
    assert (bundle_dir / "weights.safetensors").read_bytes()[8:9] == b"{"


def test_tampered_weights_are_refused(bundle_dir: Path) -> None:
    w = bundle_dir / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="do not match its manifest") as info:
        load_bundle(bundle_dir)
    assert "sha256" in str(info.value) and "weights.safetensors" in str(info.value)


def test_describing_a_bundle_skips_the_hash_but_loading_it_does_not(bundle_dir: Path) -> None:
    """The GUI's start-up statement reads the manifest only; the Predictor still refuses."""
    from sinusapp.model import Predictor

    w = bundle_dir / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    assert load_bundle(bundle_dir, verify_weights=False).path == bundle_dir
    with pytest.raises(BundleError, match="do not match its manifest"):
        Predictor(bundle_dir, device="cpu")


def _edit_manifest(folder: Path, fn) -> None:
    p = folder / "manifest.json"
    m = json.loads(p.read_text())
    fn(m)
    p.write_text(json.dumps(m))


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda m: m.pop("architecture"), "missing field"),
        (lambda m: m["architecture"].update(levels=0), "levels"),
        (lambda m: m["architecture"].update(colour="red"), "unknown architecture keys"),
        (lambda m: m["preprocessing"].update(block_shape=[15, 16, 16]), "multiple of 2"),
        (lambda m: m.update(format="something-else"), "format"),
        (lambda m: m.update(format_version=99), "format version 99"),
        (lambda m: m.update(lesion_regions={"assessed": ["ethmoid"]}), "unknown regions"),
        (lambda m: m.update(lesion_regions=["maxillary_L"]), "must be an object"),
    ],
)
def test_invalid_manifest_is_refused(bundle_dir: Path, edit, words: str) -> None:
    _edit_manifest(bundle_dir, edit)
    with pytest.raises(BundleError, match=words):
        load_bundle(bundle_dir)


def test_unreadable_manifest_and_missing_files(bundle_dir: Path, tmp_path: Path) -> None:
    (bundle_dir / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle_dir)
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")
    other = tmp_path / "other"
    shutil.copytree(bundle_dir, other)
    (other / "weights.safetensors").unlink()
    with pytest.raises(BundleError, match=r"lacks weights\.safetensors"):
        load_bundle(other)


def test_weights_that_do_not_fit_the_architecture_are_refused(bundle_dir: Path) -> None:
    from sinusapp.model import Predictor

    # a consistent manifest (checksums ok, re-sealed) describing another architecture
    _edit_manifest(bundle_dir, lambda m: m["architecture"].update(base_width=3))
    seal_bundle(bundle_dir)
    with pytest.raises(BundleError, match="do not fit its architecture"):
        Predictor(bundle_dir, device="cpu")


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.update(trained_on_synthetic=False),
        lambda m: m["preprocessing"].update(block_shape=[32, 32, 32]),
        lambda m: m.update(intended_use="clinical use"),
    ],
)
def test_an_edited_manifest_is_refused_even_without_hashing_the_weights(
    bundle_dir: Path, edit
) -> None:
    """The whole bundle is sealed: a consistent-looking manifest edit is still refused."""
    _edit_manifest(bundle_dir, edit)
    for verify in (True, False):
        with pytest.raises(BundleError, match="was modified after the bundle was written"):
            load_bundle(bundle_dir, verify_weights=verify)


def test_an_edited_model_card_or_a_missing_seal_is_refused(bundle_dir: Path) -> None:
    card = bundle_dir / "MODEL_CARD.md"
    card.write_text(card.read_text() + "validated for clinical use\n")
    with pytest.raises(BundleError, match="model card does not match"):
        load_bundle(bundle_dir, verify_weights=False)
    _edit_manifest(bundle_dir, lambda m: m.pop("bundle_sha256"))
    with pytest.raises(BundleError, match="has no bundle_sha256"):
        load_bundle(bundle_dir)


def test_seal_bundle_reseals_a_deliberate_change_but_never_changed_weights(
    bundle_dir: Path,
) -> None:
    _edit_manifest(bundle_dir, lambda m: m.update(version="1.2.4"))
    assert seal_bundle(bundle_dir).version == "1.2.4"
    assert load_bundle(bundle_dir).version == "1.2.4"
    w = bundle_dir / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-1] + b"\x00")
    with pytest.raises(BundleError, match="refusing to seal"):
        seal_bundle(bundle_dir)


def test_a_file_given_as_bundle_is_named_a_file(bundle_dir: Path) -> None:
    with pytest.raises(BundleError, match="is a file, not a model bundle folder"):
        load_bundle(bundle_dir / "manifest.json")


def test_lesion_regions_are_written_and_read_back(tmp_path: Path) -> None:
    from sinusapp.errors import BundleError

    model = UNet3D(config=NET)
    common = dict(
        state_dict=model.state_dict(),
        network=NET,
        preprocess=PRE,
        name="unit",
        version="1.0.0",
        training={},
        metrics={},
        model_card="card\n",
    )
    spec = {"assessed": ["maxillary_L", "maxillary_R"], "why": "test"}
    b = save_bundle(tmp_path / "a", lesion_regions=spec, **common)
    assert b.lesion_assessed_regions == {"maxillary_L", "maxillary_R"}
    assert load_bundle(tmp_path / "a").manifest["lesion_regions"] == spec
    assert save_bundle(tmp_path / "b", **common).lesion_assessed_regions is None
    with pytest.raises(BundleError, match="unknown regions"):
        save_bundle(tmp_path / "c", lesion_regions={"assessed": ["ethmoid"]}, **common)
    assert not (tmp_path / "c").exists()
