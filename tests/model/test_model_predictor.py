"""The Predictor: mask on the CT grid in the right place, DLR-score, progress, cancel, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sinusapp.errors import BundleError, InputError, NotSinusCTError
from sinusapp.model import Cancelled, FakePredictor, PredictionResult, Predictor
from sinusapp.model.testing import make_chest_phantom, make_sinus_phantom, rotation_matrix


def _dsc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


@pytest.fixture(scope="module")
def predictor(tiny_bundle: Path) -> Predictor:
    return Predictor(tiny_bundle, device="cpu")


def test_mask_on_the_ct_grid_in_the_right_place(predictor: Predictor) -> None:
    # an unseen case, on another grid, tilted
    vol, truth = make_sinus_phantom(
        shape=(70, 90, 90),
        spacing_mm=(2.2, 2.0, 2.0),
        severity=(0.8, 0.5),
        rotation=rotation_matrix(degrees_about_x=10.0),
        seed=42,
    )
    res = predictor.predict(vol)
    assert isinstance(res, PredictionResult)
    assert res.mask.shape == vol.shape and res.mask.dtype == np.uint8
    assert _dsc(res.mask, truth) > 0.5
    assert res.lesion_volume_ml == pytest.approx(res.mask.sum() * vol.voxel_volume_ml)
    assert res.lesion_volume_ml == pytest.approx(truth.sum() * vol.voxel_volume_ml, rel=0.5)
    assert 0.0 <= res.dlr_score <= 1.0
    assert set(res.timings_s) == {"locate", "resample", "network", "map back"}
    assert res.device == "cpu" and res.per_sinus is None
    assert res.model["name"] == "tiny-test-model" and len(res.model["sha256"]) == 64
    # what the pipeline and the report read
    assert predictor.manifest["weights_sha256"] == res.model["sha256"]
    assert predictor.manifest["trained_on_synthetic"] is True


def test_progress_is_reported_in_order(predictor: Predictor) -> None:
    vol, _ = make_sinus_phantom(seed=2)
    calls: list[tuple[float, str]] = []
    predictor.predict(vol, progress=lambda f, s: calls.append((f, s)))
    assert [s for _, s in calls] == ["locate", "resample", "network", "map back", "done"]
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.parametrize("cancel_after", [0, 2])
def test_cancel_stops_the_prediction(predictor: Predictor, cancel_after: int) -> None:
    vol, _ = make_sinus_phantom(seed=2)
    stages: list[str] = []
    polls = {"n": 0}

    def should_cancel() -> bool:
        polls["n"] += 1
        return polls["n"] > cancel_after

    with pytest.raises(Cancelled):
        predictor.predict(vol, progress=lambda f, s: stages.append(s), should_cancel=should_cancel)
    assert len(stages) == cancel_after  # no stage ran after the cancel


def test_chest_ct_is_refused(predictor: Predictor) -> None:
    with pytest.raises(NotSinusCTError, match="nasal cavity"):
        predictor.predict(make_chest_phantom())


def test_device_choices(tiny_bundle: Path) -> None:
    import torch

    assert Predictor(tiny_bundle, device="auto").device == (
        "cuda" if torch.cuda.is_available() else "cpu"
    )
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            Predictor(tiny_bundle, device="cuda")
    with pytest.raises(InputError, match="Unknown device"):
        Predictor(tiny_bundle, device="tpu")


def test_missing_bundle_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        Predictor(tmp_path / "none", device="cpu")


def test_a_region_located_already_is_used_not_located_again(
    predictor: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GUI locates the sinus region when it opens a series (to open at the sinuses) and
    hands it to the analysis: the predictor then runs no locator and gives the same result."""
    from sinusapp.model import preprocess as pp

    vol, _ = make_sinus_phantom(seed=5)
    plain = predictor.predict(vol)
    region = pp.locate_sinus_region(vol)

    def no_second_locate(volume):
        raise AssertionError("the sinus region was located again")

    monkeypatch.setattr(pp, "locate_sinus_region", no_second_locate)
    given = predictor.predict(vol, region=region)
    assert given.sinus_region is region
    assert np.array_equal(given.mask, plain.mask)
    assert given.dlr_score == pytest.approx(plain.dlr_score)
    np.testing.assert_allclose(given.region_center_lps, plain.region_center_lps)
    # the fake keeps the same contract: a given region places its blobs, no locator run
    fake_given = FakePredictor().predict(vol, region=region)
    monkeypatch.undo()
    assert np.array_equal(fake_given.mask, FakePredictor().predict(vol).mask)


def test_fake_predictor_has_the_same_interface() -> None:
    vol, truth = make_sinus_phantom(seed=4)
    calls: list[str] = []
    fake = FakePredictor(dlr_score=0.7)
    res = fake.predict(vol, progress=lambda f, s: calls.append(s))
    assert calls == ["locate", "resample", "network", "map back", "done"]
    assert res.mask.shape == vol.shape and res.mask.dtype == np.uint8
    assert res.dlr_score == 0.7 and res.device == "fake"
    assert 2.0 < res.lesion_volume_ml < 30.0
    # the blobs sit in the sinus region (overlap the true lesion area)
    assert (res.mask & truth).sum() > 0
    again = fake.predict(vol)
    assert np.array_equal(again.mask, res.mask)  # deterministic
    with pytest.raises(Cancelled):
        fake.predict(vol, should_cancel=lambda: True)
    with pytest.raises(NotSinusCTError):
        fake.predict(make_chest_phantom())
    tiny = FakePredictor(locate=False).predict(make_chest_phantom())
    assert tiny.mask.any()


def test_bundled_model_finds_the_lesions() -> None:
    """The bundle shipped in models/ loads (checksum, manifest) and segments a phantom."""
    from sinusapp.model import bundled_model_dir

    if not (bundled_model_dir() / "manifest.json").is_file():
        pytest.skip(f"no bundled model in {bundled_model_dir()} (train one: docs/model.md)")
    predictor = Predictor(device="cpu")
    assert predictor.manifest["trained_on_synthetic"] is True
    assert "not for clinical use" in (bundled_model_dir() / "MODEL_CARD.md").read_text().lower()
    vol, truth = make_sinus_phantom(seed=11)
    res = predictor.predict(vol)
    assert _dsc(res.mask, truth) > 0.4
    centre = vol.index_to_lps(np.argwhere(res.mask).mean(0))
    true_centre = vol.index_to_lps(np.argwhere(truth).mean(0))
    assert np.linalg.norm(centre - true_centre) < 15.0


def test_mirror_average_is_the_mean_of_both_passes(tiny_bundle: Path, tmp_path: Path) -> None:
    """``postprocessing.mirror_average``: the lesion comes from the mean of the plain and the
    left-right mirrored pass (mirrored back); the DLR-score is the plain pass's."""
    import shutil

    import torch

    from sinusapp.model import preprocess as pp
    from sinusapp.model.bundle import set_postprocessing
    from sinusapp.model.config import Postprocessing
    from sinusapp.model.refine import lesion_mask

    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    post = Postprocessing(lesion_threshold=0.5, mirror_average=True)
    set_postprocessing(folder, post)
    plain, mirrored = Predictor(tiny_bundle, device="cpu"), Predictor(folder, device="cpu")
    vol, _ = make_sinus_phantom(shape=(60, 80, 80), severity=(0.9, 0.1), seed=5)
    a, b = plain.predict(vol), mirrored.predict(vol)
    assert b.dlr_score == pytest.approx(a.dlr_score)

    block = pp.prepare_block(vol, config=mirrored.bundle.preprocess)
    x = torch.from_numpy(block.image)[None, None]
    net = mirrored._model
    with torch.inference_mode():  # both in one batch, as the Predictor runs them
        both = net(torch.cat([x, torch.flip(x, [4])]), classify=False).seg_logits
        p = torch.sigmoid(both[0, 0])
        q = torch.flip(torch.sigmoid(both[1, 0]), [2])
        alone = torch.sigmoid(net(x, classify=False).seg_logits[0, 0])
    assert float((alone - p).abs().max()) < 1e-3  # the batch does not mix its two blocks
    expect = lesion_mask(
        (0.5 * (p + q)).numpy(),
        block_affine=block.affine,
        volume=vol,
        postprocessing=post,
        cavities=None,
    )
    assert np.array_equal(b.mask, expect)
    assert not np.array_equal(a.mask, b.mask)  # the second pass changed something


def test_growth_without_a_sinus_head_is_said_not_silently_skipped(
    tiny_bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import shutil

    from sinusapp.model.bundle import set_postprocessing
    from sinusapp.model.config import Postprocessing

    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    set_postprocessing(folder, Postprocessing(grow_mm=2.0))
    with caplog.at_level(logging.WARNING, logger="sinusapp.model.predictor"):
        Predictor(folder, device="cpu")
    assert "needs a sinus head" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sinusapp.model.predictor"):
        Predictor(tiny_bundle, device="cpu")
    assert "needs a sinus head" not in caplog.text


def test_growth_into_the_sinus_heads_cavity_probability_is_what_the_predictor_runs(
    tmp_path: Path,
) -> None:
    """``grow_cavity_probability``: the Predictor hands its sinus head's probability of any
    cavity (its softmax) to :func:`lesion_mask`, so its mask is the one the benchmark chose."""
    import torch
    from model_helpers import save_tiny_bundle

    from sinusapp.model import preprocess as pp
    from sinusapp.model.bundle import set_postprocessing
    from sinusapp.model.config import NetworkConfig, Postprocessing
    from sinusapp.model.network import UNet3D
    from sinusapp.model.refine import lesion_mask
    from sinusapp.model.sinus_head import head_probabilities_to_labels

    net = NetworkConfig(base_width=4, levels=3, cls_hidden=(16,), sinus_classes=4)
    torch.manual_seed(0)
    model = UNet3D(**net.to_dict())
    with torch.no_grad():  # background favoured: the cavities are seldom sure (>= 0.5)
        model.seg_head.bias.fill_(0.0)
        model.sinus_head.bias.copy_(torch.tensor([0.4, 0.0, 0.0, 0.0]))
    save_tiny_bundle(tmp_path / "b", state_dict=model.state_dict(), network=net)
    post = Postprocessing(lesion_threshold=0.5, grow_mm=3.0, grow_cavity_probability=0.05)
    set_postprocessing(tmp_path / "b", post)
    predictor = Predictor(tmp_path / "b", device="cpu")
    vol, _ = make_sinus_phantom(shape=(60, 80, 80), severity=(0.9, 0.1), seed=5)
    got = predictor.predict(vol).mask

    block = pp.prepare_block(vol, config=predictor.bundle.preprocess)
    out = predictor.block_outputs(block.image, mirror=False, classify=False)
    labels = head_probabilities_to_labels(out.sinus, block_affine=block.affine, volume=vol)
    args = {"block_affine": block.affine, "volume": vol, "cavities": labels}
    soft = lesion_mask(out.lesion, postprocessing=post, sinus_probabilities=out.sinus, **args)
    hard = lesion_mask(out.lesion, postprocessing=post, **args)
    assert np.array_equal(got, soft)
    assert soft.sum() > hard.sum()  # the cavity probability let the lesion grow further


def test_the_predictor_cuts_its_labels_and_drops_the_lesion_on_a_lateral_stray_piece(
    tmp_path: Path,
) -> None:
    """``sinus_component_mm`` / ``drop_stray_lesion``: with the network's outputs fixed (a
    class-1 cavity with a stray piece 40 mm to its left, lesion in both), the labels the
    Predictor returns (which the per-sinus table reads) lose the piece, and its lesion goes
    only with ``drop_stray_lesion``; the lesion in the cavity stays."""
    import torch
    from model_helpers import save_tiny_bundle

    from sinusapp.model.bundle import set_postprocessing
    from sinusapp.model.config import NetworkConfig, Postprocessing
    from sinusapp.model.network import UNet3D
    from sinusapp.model.predictor import BlockOutputs

    net = NetworkConfig(base_width=4, levels=3, cls_hidden=(16,), sinus_classes=4)
    torch.manual_seed(0)
    save_tiny_bundle(tmp_path / "b", state_dict=UNet3D(**net.to_dict()).state_dict(), network=net)
    shape = (32, 32, 32)  # the tiny bundle's block (4 mm voxels; axes S, P, L)
    main = (slice(12, 20), slice(12, 20), slice(13, 19))
    stray = (slice(12, 16), slice(12, 16), slice(25, 28))  # 10 block voxels = 40 mm to the left
    sinus = np.zeros((4, *shape), np.float32)
    sinus[1][main] = sinus[1][stray] = 1.0
    sinus[0] = 1.0 - sinus[1]
    lesion = np.zeros(shape, np.float32)
    lesion[stray] = 0.9
    lesion[14:18, 14:18, 14:18] = 0.9
    fixed = BlockOutputs(lesion=lesion, lesion_mirrored=None, sinus=sinus, dlr_score=0.5)
    vol, _ = make_sinus_phantom(shape=(60, 80, 80), severity=(0.9, 0.1), seed=5)

    def run(post: Postprocessing):  # type: ignore[no-untyped-def]
        set_postprocessing(tmp_path / "b", post)
        predictor = Predictor(tmp_path / "b", device="cpu")
        predictor.block_outputs = lambda *a, **k: fixed  # type: ignore[method-assign]
        return predictor.predict(vol)

    plain = run(Postprocessing(lesion_threshold=0.5))
    cut = run(Postprocessing(lesion_threshold=0.5, sinus_component_mm=3.0))
    both = run(Postprocessing(lesion_threshold=0.5, sinus_component_mm=3.0, drop_stray_lesion=True))
    assert plain.sinus_labels is not None and cut.sinus_labels is not None
    n = {k: int((r.sinus_labels == 1).sum()) for k, r in (("plain", plain), ("cut", cut))}
    assert 0 < n["cut"] < n["plain"]  # the stray piece left the labels
    assert np.array_equal(cut.sinus_labels, both.sinus_labels)
    on_piece = (plain.sinus_labels == 1) & (cut.sinus_labels == 0)
    assert plain.mask[on_piece].any() and cut.mask[on_piece].any()  # the cut alone keeps it
    assert not both.mask[on_piece].any()  # drop_stray_lesion drops it
    in_cavity = cut.sinus_labels == 1
    assert both.mask[in_cavity].sum() == cut.mask[in_cavity].sum() > 0
