"""Segmentation-only cases (``sinusapp train --seg-only``): real backgrounds without outcome.

Negatives (no disease) train both segmentation heads to mark nothing where they are
labelled; cases with placed disease train the lesion head on it. The voxels marked
``unlabelled`` are left out of every loss, the cases never enter the DLR-score loss, and the
manifest records them apart from the dataset's cases.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import PHANTOM_GRID, TINY_NET, TINY_PRE, tiny_cases

from sinusapp.errors import InputError
from sinusapp.model.config import NetworkConfig
from sinusapp.model.dataset_adapter import seg_only_cases_from_folder
from sinusapp.model.losses import MultiTaskLoss, segmentation_loss
from sinusapp.model.network import NetworkOutput
from sinusapp.model.sinus_head import SINUS_IGNORE
from sinusapp.model.testing import make_sinus_phantom
from sinusapp.model.train import (
    NO_OUTCOME,
    TrainConfig,
    _cache_folder,
    _load_cached,
    prepare_cases,
    run_training,
    source_fingerprint,
    train_model,
)
from sinusapp.synth.dicomio import write_label_nifti

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _dicomgen import write_volume_series


def test_weighted_segmentation_loss_ignores_the_unknown_voxels() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 8, 8, 8, generator=gen)
    target = (torch.rand(2, 1, 8, 8, 8, generator=gen) > 0.7).float()
    ones = torch.ones_like(target)
    assert torch.allclose(
        segmentation_loss(logits, target, weight=ones), segmentation_loss(logits, target)
    )
    weight = ones.clone()
    weight[:, :, :4] = 0.0  # the upper half is unlabelled
    base = segmentation_loss(logits, target, weight=weight)
    changed = logits.clone()
    changed[:, :, :4] = 25.0  # anything at all where the reference is unknown
    assert torch.allclose(segmentation_loss(changed, target, weight=weight), base)
    changed[:, :, 4:] += 1.0  # but the labelled half counts
    assert not torch.allclose(segmentation_loss(changed, target, weight=weight), base)
    # a sample that is unlabelled everywhere contributes nothing
    empty = segmentation_loss(logits, target, weight=torch.zeros_like(target))
    assert float(empty) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="soft"):
        segmentation_loss(logits, target, dice="generalised", weight=weight)


def test_classification_loss_leaves_out_samples_without_outcome() -> None:
    loss = MultiTaskLoss(task="multi")
    gen = torch.Generator().manual_seed(1)
    out = NetworkOutput(
        seg_logits=torch.randn(3, 1, 4, 4, 4, generator=gen),
        cls_logits=torch.randn(3, 2, generator=gen),
    )
    seg = torch.zeros(3, 1, 4, 4, 4)
    _, parts = loss(out, seg_target=seg, cls_target=torch.tensor([1, NO_OUTCOME, 0]))
    expected = torch.nn.functional.cross_entropy(out.cls_logits[[0, 2]], torch.tensor([1, 0]))
    assert parts["cls"] == pytest.approx(float(expected), rel=1e-6)
    logits = torch.randn(3, 2, generator=gen, requires_grad=True)
    out = NetworkOutput(seg_logits=out.seg_logits, cls_logits=logits)
    total, parts = loss(out, seg_target=seg, cls_target=torch.full((3,), NO_OUTCOME))
    assert "cls" not in parts and "seg" in parts
    # the skipped head still gets a (zero) gradient: DDP ranks must reduce the same parameters
    total.backward()
    assert logits.grad is not None and not logits.grad.any()
    assert loss.weighting.log_vars.grad[1] == 0.0  # the skipped task's weight is untouched


def test_weight_channel_moves_with_the_image_through_patches_and_augmentation() -> None:
    from sinusapp.model.train import _random_patches, augment_batch

    x = torch.zeros(4, 1, 16, 20, 24)
    x[:, :, 3:9, 4:12, 5:19] = 1.0
    cube = (x > 0.5).float()
    y = torch.cat([cube, cube], dim=1)  # lesion and weight the same: they must stay the same
    gen = torch.Generator().manual_seed(3)
    xp, yp, _ = _random_patches(x, y, torch.zeros(4, 16, 20, 24), patch=(12, 16, 16), generator=gen)
    assert yp.shape == (4, 2, 12, 16, 16) and torch.equal(yp[:, 0], yp[:, 1])
    assert torch.equal(yp[:, :1], (xp > 0.5).float())
    xa, ya = augment_batch(x, y, generator=torch.Generator().manual_seed(4))
    assert ya.shape == y.shape and torch.allclose(ya[:, 0], ya[:, 1])
    for n in range(4):
        assert xa[n][ya[n, :1] > 0.5].mean() - xa[n][ya[n, :1] < 0.5].mean() > 0.5


def _negatives_folder(
    root: Path, *, unlabelled_slices: slice, lesion_slices: slice | None = None
) -> Path:
    """Two cases on one disease-free phantom CT; ``unlabelled_slices`` unknown; with
    ``lesion_slices`` the second one carries a lesion mask there (a placed disease)."""
    volume, _ = make_sinus_phantom(**PHANTOM_GRID, severity=(0.0, 0.0), polyp=False, seed=5)
    series = root / "series"
    write_volume_series(series, volume)
    unknown = np.zeros(volume.shape, np.uint8)
    unknown[unlabelled_slices] = 1
    for n, shift in enumerate((0.0, 12.0)):
        case = root / "neg" / f"NEG_{n}"
        case.mkdir(parents=True)
        (case / "ct").symlink_to(series, target_is_directory=True)
        write_label_nifti(labels=unknown, affine=volume.affine, out_path=case / "unlabelled.nii.gz")
        centre = volume.index_to_lps((np.asarray(volume.shape) - 1) / 2) + np.array([0, 0, shift])
        (case / "case.json").write_text(json.dumps({"sinus_centre_lps_mm": centre.tolist()}))
        if n == 1 and lesion_slices is not None:
            lesion = np.zeros(volume.shape, np.uint8)
            lesion[lesion_slices, 20:50, 20:60] = 1
            write_label_nifti(labels=lesion, affine=volume.affine, out_path=case / "lesion.nii.gz")
    return root / "neg"


def test_seg_only_folder_is_read_and_prepared(tmp_path: Path) -> None:
    folder = _negatives_folder(
        tmp_path, unlabelled_slices=slice(0, 32), lesion_slices=slice(40, 50)
    )
    negs = seg_only_cases_from_folder(folder)
    assert [c.case_id for c in negs] == ["NEG_0", "NEG_1"]
    assert all(c.cohort == "seg_only" and c.recurrence == NO_OUTCOME for c in negs)
    assert negs[1].center_lps[2] - negs[0].center_lps[2] == pytest.approx(12.0)
    cfg = TINY_PRE
    (prep,) = prepare_cases(negs[:1], cache_dir=tmp_path / "cache", config=cfg)
    assert not prep.mask.any()  # no lesion anywhere
    assert prep.seg_valid is not None and prep.sinus is not None
    # the lower half of the CT (slices 0-31 of 64, superior is +z) is unknown to both heads
    unknown = prep.seg_valid == 0
    assert 0.3 < unknown.mean() < 0.7
    assert unknown[:4].all() and not unknown[-4:].any()  # block axis 0 runs inferior → superior
    assert np.array_equal(prep.sinus == SINUS_IGNORE, unknown)
    assert not prep.sinus[~unknown].any()  # labelled: background of the sinus head
    (again,) = prepare_cases(negs[:1], cache_dir=tmp_path / "cache", config=cfg)  # from cache
    assert np.array_equal(again.seg_valid, prep.seg_valid)
    # ... and as every training job reads it
    (job_case,) = _load_cached(_cache_folder(tmp_path / "cache", cfg), [("NEG_0", NO_OUTCOME)])
    assert np.array_equal(job_case.seg_valid, prep.seg_valid)
    assert np.array_equal(job_case.sinus, prep.sinus)
    (diseased,) = prepare_cases(negs[1:], cache_dir=tmp_path / "cache", config=cfg)
    assert (diseased.mask >= 128).sum() > 50  # its placed lesion, in the labelled part
    assert np.all(diseased.seg_valid[diseased.mask > 0] == 1)


def test_a_case_whose_files_changed_is_prepared_again(tmp_path: Path) -> None:
    """The cache is keyed by case id: a corrected lesion mask under the same id must reach
    the training, an unchanged case must come from the cache."""
    folder = _negatives_folder(
        tmp_path, unlabelled_slices=slice(0, 32), lesion_slices=slice(40, 50)
    )
    cache = tmp_path / "cache"
    (first,) = prepare_cases(
        seg_only_cases_from_folder(folder)[1:], cache_dir=cache, config=TINY_PRE
    )
    assert first.sinus is not None
    # unchanged: read from the cache, the case's files are not loaded again
    (case,) = seg_only_cases_from_folder(folder)[1:]
    assert case.sources == (str(folder / "NEG_1"),)

    def refuse() -> tuple[object, ...]:
        raise AssertionError("an unchanged case was loaded again")

    (again,) = prepare_cases(
        [dataclasses.replace(case, load=refuse)], cache_dir=cache, config=TINY_PRE
    )
    assert np.array_equal(again.mask, first.mask)
    # the lesion mask is corrected (now empty): the new mask is what training sees
    volume, _ = make_sinus_phantom(**PHANTOM_GRID, severity=(0.0, 0.0), polyp=False, seed=5)
    write_label_nifti(
        labels=np.zeros(volume.shape, np.uint8),
        affine=volume.affine,
        out_path=folder / "NEG_1" / "lesion.nii.gz",
    )
    (fixed,) = prepare_cases(
        seg_only_cases_from_folder(folder)[1:], cache_dir=cache, config=TINY_PRE
    )
    assert (first.mask >= 128).sum() > 50 and not fixed.mask.any()
    # a change inside the linked CT series counts too
    before = source_fingerprint(case.sources)
    series_file = next(p for p in (folder / "NEG_1" / "ct").iterdir() if p.is_file())
    series_file.write_bytes(series_file.read_bytes())
    os.utime(series_file, ns=(1, 1))
    assert source_fingerprint(case.sources) != before


def test_seg_only_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        seg_only_cases_from_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no case folder"):
        seg_only_cases_from_folder(tmp_path / "empty")
    (tmp_path / "bad" / "NEG_0").mkdir(parents=True)
    with pytest.raises(InputError, match="has no ct/"):
        seg_only_cases_from_folder(tmp_path / "bad")


def test_an_unlabelled_negative_trains_nothing_a_labelled_one_trains_the_seg_head(
    tmp_path: Path,
) -> None:
    tcfg = TrainConfig(epochs=1, folds=0, batch_size=2, lr=1e-3, augment=False)
    seg_loss = {}
    for name, sl in (("all", slice(None)), ("half", slice(0, 32))):
        negs = seg_only_cases_from_folder(_negatives_folder(tmp_path / name, unlabelled_slices=sl))
        prepared = prepare_cases(negs, cache_dir=tmp_path / name / "cache", config=TINY_PRE)
        _, _, hist = train_model(prepared, network=TINY_NET, tcfg=tcfg, device="cpu", run_seed=0)
        assert "cls" not in hist[0]  # no outcome: the DLR-score never trains on a negative
        seg_loss[name] = hist[0]["seg"]
    assert seg_loss["all"] == pytest.approx(0.0, abs=1e-6)
    assert seg_loss["half"] > 0.05


def test_run_training_adds_seg_only_cases_to_training_only(tmp_path: Path) -> None:
    folder = _negatives_folder(tmp_path, unlabelled_slices=slice(0, 32))
    negs = seg_only_cases_from_folder(folder)
    net = NetworkConfig(base_width=4, levels=3, cls_hidden=(16,), sinus_classes=4)
    kw = dict(
        out_dir=tmp_path / "bundle",
        work_dir=tmp_path / "work",
        network=net,
        preprocess=TINY_PRE,
        tcfg=TrainConfig(epochs=1, folds=0, batch_size=2, lr=1e-3),
        device="cpu",
    )
    bundle = run_training(tiny_cases(6, n_test=2), **kw, seg_only=negs)
    # resumed unchanged: the final model is kept; after a corrected unlabelled map of
    # NEG_0 (same id) it is trained again on the new arrays
    final_json = tmp_path / "work" / "checkpoints" / "final.json"
    first = json.loads(final_json.read_text())["fingerprint"]
    kw["out_dir"] = tmp_path / "bundle_again"
    again = run_training(tiny_cases(6, n_test=2), **kw, seg_only=negs, resume=True)
    assert again.sha256 == bundle.sha256
    assert json.loads(final_json.read_text())["fingerprint"] == first
    volume, _ = make_sinus_phantom(**PHANTOM_GRID, severity=(0.0, 0.0), polyp=False, seed=5)
    write_label_nifti(
        labels=np.zeros(volume.shape, np.uint8),
        affine=volume.affine,
        out_path=folder / "NEG_0" / "unlabelled.nii.gz",
    )
    kw["out_dir"] = tmp_path / "bundle_changed"
    run_training(
        tiny_cases(6, n_test=2), **kw, seg_only=seg_only_cases_from_folder(folder), resume=True
    )
    assert json.loads(final_json.read_text())["fingerprint"] != first
    training = bundle.manifest["training"]
    assert training["seg_only_case_ids"] == ["NEG_0", "NEG_1"]
    # the final model's fit on its own segmentation-only cases is recorded and carded
    fit = bundle.manifest["metrics"]["seg_only_fit"]
    assert fit["n"] == 2 and 0.0 <= fit["sinus_false_cavity_mean"] <= 1.0
    card = (tmp_path / "bundle" / "MODEL_CARD.md").read_text()
    assert "segmentation-only cases (2, trained on: a fit check)" in card
    assert training["n_train"] == 4 and "NEG_0" not in training["case_ids"]
    assert bundle.manifest["metrics"]["external"]["n"] == 2
    final = json.loads((tmp_path / "work" / "checkpoints" / "final.json").read_text())
    assert final["n_train"] == 6  # four dataset cases + two segmentation-only cases
    # a set share of segmentation-only draws trains and is recorded
    kw["out_dir"] = tmp_path / "bundle_share"
    kw["tcfg"] = dataclasses.replace(kw["tcfg"], seg_only_share=0.5)
    shared = run_training(tiny_cases(6, n_test=2), **kw, seg_only=negs)
    assert shared.manifest["training"]["settings"]["seg_only_share"] == 0.5
    assert shared.sha256 != bundle.sha256
    with pytest.raises(InputError, match="soft Dice"):
        run_training(
            tiny_cases(6),
            out_dir=tmp_path / "b3",
            work_dir=tmp_path / "w3",
            network=TINY_NET,
            preprocess=TINY_PRE,
            tcfg=TrainConfig(epochs=1, folds=0, dice="generalised"),
            device="cpu",
            seg_only=negs,
        )
    with pytest.raises(InputError, match="classification-only"):
        run_training(
            tiny_cases(6),
            out_dir=tmp_path / "b2",
            work_dir=tmp_path / "w2",
            network=NetworkConfig(base_width=4, levels=3, task="cls"),
            preprocess=TINY_PRE,
            tcfg=TrainConfig(epochs=1, folds=0),
            device="cpu",
            seg_only=negs,
        )


def test_several_seg_only_folders_are_read_in_order_and_names_must_differ(tmp_path: Path) -> None:
    """``sinusapp train --seg-only A --seg-only B`` (the GPU script: head disease cases and
    head negatives): both folders' cases, in order; the same case name twice is refused."""
    import shutil

    from sinusapp.cli.train import seg_only_cases
    from sinusapp.errors import InputError

    first = _negatives_folder(tmp_path / "a", unlabelled_slices=slice(0, 32))
    second = tmp_path / "b" / "neg"
    second.mkdir(parents=True)
    for case in sorted(first.iterdir()):
        shutil.copytree(case, second / f"OTHER_{case.name}", symlinks=True)
    cases, note = seg_only_cases([first, second])
    assert [c.case_id for c in cases] == ["NEG_0", "NEG_1", "OTHER_NEG_0", "OTHER_NEG_1"]
    assert note.count("segmentation-only case(s)") == 2
    assert seg_only_cases([]) == ([], "")
    with pytest.raises(InputError, match="same name"):
        seg_only_cases([first, first])


def test_source_fingerprint_survives_link_loops_dangling_links_and_a_move(tmp_path: Path) -> None:
    import shutil

    case = tmp_path / "data" / "C1"
    (case / "ct").mkdir(parents=True)
    (case / "ct" / "1.dcm").write_bytes(b"x" * 10)
    (case / "ct" / "loop").symlink_to("..", target_is_directory=True)  # a link loop
    (case / "gone.nrrd").symlink_to(tmp_path / "nowhere.nrrd")  # a dangling link
    fp = source_fingerprint([case])
    moved = tmp_path / "elsewhere" / "C1"
    shutil.copytree(case, moved, symlinks=True, copy_function=shutil.copy2)
    assert source_fingerprint([moved]) == fp  # where the dataset lies does not count
    (case / "ct" / "1.dcm").write_bytes(b"y" * 11)
    assert source_fingerprint([case]) != fp


def test_the_fit_check_counts_cavity_read_on_known_background_only() -> None:
    """``evaluate_model``'s ``sinus_false_cavity_mean``: the share of a case's known
    background that the sinus head calls a cavity; unknown voxels count in no measure."""
    from sinusapp.model.sinus_head import SINUS_IGNORE as IGNORE
    from sinusapp.model.train import PreparedCase, evaluate_model

    shape = (8, 8, 8)
    sinus = np.zeros(shape, np.uint8)
    sinus[:2] = 1  # a maxillary sinus
    sinus[6:] = IGNORE  # unknown
    mask = np.zeros(shape, np.uint8)
    valid = np.ones(shape, np.uint8)
    valid[6:] = 0
    case = PreparedCase(
        case_id="H",
        cohort="seg_only",
        recurrence=NO_OUTCOME,
        image=np.zeros(shape, np.float16),
        mask=mask,
        located=True,
        sinus=sinus,
        seg_valid=valid,
        sinus_covered=np.ones(10, bool),
    )

    class Says(torch.nn.Module):
        """Calls class 1 (maxillary L) in slices ``lo:hi``, background elsewhere, and
        lesion in the unknown slices only."""

        def __init__(self, lo: int, hi: int) -> None:
            super().__init__()
            self.config = NetworkConfig(base_width=4, levels=3, sinus_classes=4)
            self.cls_head = None
            self.lo, self.hi = lo, hi

        def forward(self, x: torch.Tensor, **_: object) -> NetworkOutput:
            n = x.shape[0]
            logits = torch.zeros((n, 4, *shape))
            logits[:, 0] = 1.0
            logits[:, 1, self.lo : self.hi] = 5.0
            seg = torch.full((n, 1, *shape), -5.0)
            seg[:, :, 6:] = 5.0
            return NetworkOutput(seg_logits=seg, cls_logits=None, sinus_logits=logits)

    exact = evaluate_model(Says(0, 2), [case], device="cpu")
    assert exact["sinus_false_cavity_mean"] == 0.0
    assert exact["sinus_dsc_mean"] == {"maxillary_L": 1.0}
    assert exact["dsc_median"] == 1.0  # lesion only where unknown: nothing counted, no error
    # two more slices of the known background read as the sinus: 2 of 4 background slices
    over = evaluate_model(Says(0, 4), [case], device="cpu")
    assert over["sinus_false_cavity_mean"] == 0.5
    # calling the unknown slices a cavity costs nothing
    assert evaluate_model(Says(0, 2), [case], device="cpu")["sinus_false_cavity_mean"] == 0.0
    unknown_too = evaluate_model(Says(6, 8), [case], device="cpu")
    assert unknown_too["sinus_false_cavity_mean"] == 0.0
    # ... but the measures of the unknown region see both: all the lesion lies there, and
    # a cavity read there shows as the share of the unknown voxels
    assert exact["lesion_unknown_share_mean"] == 1.0
    assert exact["sinus_unknown_cavity_mean"] == 0.0
    assert unknown_too["sinus_unknown_cavity_mean"] == 1.0


def test_epoch_order_draws_the_asked_share_of_segmentation_only_cases() -> None:
    """T2's 112 head items were a third of the uniformly drawn cases and its NasalSeg Dice
    fell (session 33); ``seg_only_share`` sets their share of the draws instead."""
    from sinusapp.model.train import epoch_order

    seg = torch.tensor([False] * 9 + [True] * 3)
    # default: whole permutations of all cases, exactly as training drew them before
    gen, ref = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    plain = epoch_order(seg_only=seg, draws=30, share=None, generator=gen)
    expected = torch.cat([torch.randperm(12, generator=ref) for _ in range(3)])
    assert torch.equal(plain, expected)
    # a share: that many draws from the segmentation-only cases, each pool in permutations
    order = epoch_order(seg_only=seg, draws=200, share=0.1, generator=gen)
    assert order.numel() == 200
    drawn_seg = seg[order]
    assert int(drawn_seg.sum()) == 20
    counts = torch.bincount(order, minlength=12)
    assert sorted(counts[9:].tolist()) == [6, 7, 7]
    assert counts[:9].tolist() == [20] * 9
    # shuffled together, not the segmentation-only cases in one block
    first = drawn_seg[:100].sum().item()
    assert 0 < first < 20
    # only one kind of case: the share cannot apply
    assert torch.equal(
        epoch_order(
            seg_only=torch.zeros(5, dtype=torch.bool),
            draws=5,
            share=0.5,
            generator=torch.Generator().manual_seed(1),
        )
        .sort()
        .values,
        torch.arange(5),
    )
    with pytest.raises(ValueError, match="between 0 and 1"):
        TrainConfig(seg_only_share=1.0)


def test_seg_only_share_is_part_of_the_training_fingerprint() -> None:
    from sinusapp.model.train import _fingerprint

    net = NetworkConfig(base_width=4, levels=3)
    base = _fingerprint(net, TrainConfig(), ["a"])
    assert _fingerprint(net, TrainConfig(seg_only_share=None), ["a"]) == base
    assert _fingerprint(net, TrainConfig(seg_only_share=0.2), ["a"]) != base
