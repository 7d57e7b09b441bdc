"""A sinus head with every class (``sinusapp train --sinus-upper``): partial labels, the
loss of a class a case does not label, widening a 4-class bundle, and the app taking the
model's ethmoid / frontal / sphenoid labels."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import PHANTOM_GRID, TINY_PRE, save_tiny_bundle

from sinusapp.imaging.quantify import LABEL_IDS
from sinusapp.model.config import (
    SINUS_HEAD_REGIONS,
    SINUS_HEAD_REGIONS_ALL,
    NetworkConfig,
    sinus_head_regions,
)
from sinusapp.model.losses import sinus_label_loss
from sinusapp.model.sinus_head import (
    SINUS_IGNORE,
    SINUS_OTHER,
    mirror_class_lut,
    partial_targets,
    sinus_covered,
    sinus_head_target,
)
from sinusapp.model.testing import make_sinus_phantom

N_ALL = len(SINUS_HEAD_REGIONS_ALL)
UPPER_NET = NetworkConfig(base_width=4, levels=3, cls_hidden=(16,), sinus_classes=N_ALL)


def test_head_sizes_and_their_regions() -> None:
    assert sinus_head_regions(4) == SINUS_HEAD_REGIONS
    assert sinus_head_regions(N_ALL)[4:] == (
        "ethmoid_ant_L",
        "ethmoid_ant_R",
        "ethmoid_post_L",
        "ethmoid_post_R",
        "frontal",
        "sphenoid",
    )
    with pytest.raises(ValueError, match="4 or 10"):
        sinus_head_regions(7)
    with pytest.raises(ValueError, match="sinus_classes"):
        NetworkConfig(sinus_classes=7)


def test_a_nasalseg_like_case_does_not_say_where_the_upper_sinuses_are() -> None:
    # NasalSeg: maxillary L / R and the nasal cavity only
    labels = np.array([0, 0, 1, 2, 9], np.uint8)
    covered = sinus_covered(labels)
    assert covered.tolist() == [True] * 4 + [False] * 6
    target = sinus_head_target(labels, shape=labels.shape)
    t10, allowed = partial_targets(target, covered=covered, n_classes=N_ALL)
    assert t10.tolist() == [SINUS_OTHER, SINUS_OTHER, 1, 2, 3]
    assert allowed.tolist() == [True, False, False, False] + [True] * 6
    # the default head sees the same case exactly as before
    t4, allowed4 = partial_targets(target, covered=covered, n_classes=4)
    assert t4.tolist() == [0, 0, 1, 2, 3] and allowed4.tolist() == [True, False, False, False]
    # one side of a pair labelled: the case covers both (a mirror covers what it did)
    assert sinus_covered(np.array([LABEL_IDS["ethmoid_ant_L"]], np.uint8))[4:6].all()
    # a segmentation-only case is the whole truth where it is labelled
    complete = sinus_covered(np.zeros(3, np.uint8), complete=True)
    t, allowed = partial_targets(
        sinus_head_target(np.zeros(3, np.uint8), shape=(3,)), covered=complete, n_classes=N_ALL
    )
    assert t.tolist() == [0, 0, 0] and allowed[1:].sum() == 0
    # ignored voxels stay ignored
    t, _ = partial_targets(np.array([SINUS_IGNORE, 0], np.uint8), covered=covered, n_classes=10)
    assert t.tolist() == [SINUS_IGNORE, SINUS_OTHER]


def test_the_mirror_swaps_every_left_right_pair() -> None:
    lut = mirror_class_lut()
    name = SINUS_HEAD_REGIONS_ALL.index
    for left in ("maxillary_L", "ethmoid_ant_L", "ethmoid_post_L"):
        right = left[:-2] + "_R"
        assert lut[name(left)] == name(right) and lut[name(right)] == name(left)
    for same in ("background", "nasal_cavity", "frontal", "sphenoid"):
        assert lut[name(same)] == name(same)
    assert lut[SINUS_OTHER] == SINUS_OTHER and lut[SINUS_IGNORE] == SINUS_IGNORE


def test_loss_of_an_unlabelled_class_merges_it_with_background() -> None:
    shape = (1, N_ALL, 2, 2, 2)
    target = torch.full((1, 2, 2, 2), SINUS_OTHER, dtype=torch.long)
    allowed = torch.tensor([[True, False, False, False] + [True] * 6])
    ethmoid = torch.zeros(shape)
    ethmoid[:, SINUS_HEAD_REGIONS_ALL.index("ethmoid_ant_L")] = 8.0
    maxillary = torch.zeros(shape)
    maxillary[:, SINUS_HEAD_REGIONS_ALL.index("maxillary_L")] = 8.0
    background = torch.zeros(shape)
    background[:, 0] = 8.0
    l_eth = float(sinus_label_loss(ethmoid, target, allowed=allowed))
    l_bg = float(sinus_label_loss(background, target, allowed=allowed))
    l_max = float(sinus_label_loss(maxillary, target, allowed=allowed))
    # "background or an upper sinus": either is right, a labelled class is wrong
    assert l_eth == pytest.approx(l_bg, abs=1e-4)
    assert l_max > l_eth + 1.0
    # with background alone allowed the merged class is plain cross-entropy on background
    only_bg = torch.tensor([[True] + [False] * (N_ALL - 1)])
    plain = float(sinus_label_loss(background, torch.zeros_like(target), allowed=None))
    assert float(sinus_label_loss(background, target, allowed=only_bg)) == pytest.approx(plain)
    with pytest.raises(ValueError, match="allowed"):
        sinus_label_loss(background, target)
    # nothing known: no term
    assert sinus_label_loss(background, torch.full_like(target, SINUS_IGNORE)) is None


def _upper_phantom(**kwargs: object) -> tuple:
    """A phantom whose left lesion is labelled as the left anterior ethmoid (a stand-in for
    a cell a NasalSeg case lacks) and whose right one as the right maxillary sinus."""
    volume, lesion = make_sinus_phantom(**kwargs)  # type: ignore[arg-type]
    labels = np.zeros(volume.shape, np.uint8)
    idx = np.argwhere(lesion > 0)
    x_lps = volume.index_to_lps(idx)[:, 0]
    side = np.where(x_lps > 0, LABEL_IDS["ethmoid_ant_L"], LABEL_IDS["maxillary_R"])
    labels[idx[:, 0], idx[:, 1], idx[:, 2]] = side
    return volume, lesion, labels


def test_a_widened_head_learns_an_upper_class_and_the_app_takes_it(tmp_path: Path) -> None:
    from sinusapp.model.network import UNet3D
    from sinusapp.model.predictor import Predictor
    from sinusapp.model.train import (
        TrainConfig,
        TrainingCase,
        _init_from_bundle,
        prepare_cases,
        train_model,
    )
    from sinusapp.pipeline import _model_and_rule_labels

    # a 4-class bundle, widened to 10 classes: its four classes keep their weights
    four = NetworkConfig(base_width=4, levels=3, cls_hidden=(16,), sinus_classes=4)
    small = UNet3D(**four.to_dict())
    save_tiny_bundle(tmp_path / "four", state_dict=small.state_dict(), network=four)
    wide = UNet3D(**UPPER_NET.to_dict())
    _init_from_bundle(wide, tmp_path / "four", quiet=True)
    assert torch.equal(wide.sinus_head.weight[:4], small.sinus_head.weight)
    assert torch.equal(wide.sinus_head.bias[:4], small.sinus_head.bias)
    assert wide.sinus_head.weight.shape[0] == N_ALL

    cases = [
        TrainingCase(
            case_id=f"up{i:02d}",
            cohort="train",
            recurrence=i % 2,
            load=functools.partial(
                _upper_phantom, **PHANTOM_GRID, severity=(0.7, 0.5), polyp=False, seed=i
            ),
        )
        for i in range(3)
    ]
    prepared = prepare_cases(cases, cache_dir=tmp_path / "work", config=TINY_PRE)
    ethmoid = SINUS_HEAD_REGIONS_ALL.index("ethmoid_ant_L")
    assert all((c.sinus == ethmoid).any() for c in prepared)
    # these label maps hold two regions: their background may be any class they lack (a
    # NasalSeg case); say they are complete, as a head case with its cells is
    assert not prepared[0].sinus_covered[SINUS_HEAD_REGIONS_ALL.index("frontal")]
    prepared = [dataclasses.replace(c, sinus_covered=np.ones(N_ALL, bool)) for c in prepared]
    tcfg = TrainConfig(epochs=80, folds=0, batch_size=2, lr=1e-2, augment=False, steps_per_epoch=4)
    model, _, hist = train_model(prepared, network=UPPER_NET, tcfg=tcfg, device="cpu", run_seed=0)
    assert hist[-1]["sinus"] < 0.7 * hist[0]["sinus"]
    save_tiny_bundle(tmp_path / "upper", state_dict=model.state_dict(), network=UPPER_NET)
    predictor = Predictor(tmp_path / "upper", device="cpu")
    assert predictor.manifest["labels"]["sinus"]["4"] == "ethmoid_ant_L"
    volume, _, truth = _upper_phantom(**PHANTOM_GRID, severity=(0.7, 0.5), polyp=False, seed=1)
    pred = predictor.predict(volume)
    t = truth == LABEL_IDS["ethmoid_ant_L"]
    p = pred.sinus_labels == LABEL_IDS["ethmoid_ant_L"]
    assert 2 * (t & p).sum() / (t.sum() + p.sum()) > 0.5
    # the app takes the model's upper-sinus labels as they are (no rule-based cells)
    labels, box, source = _model_and_rule_labels(volume, np.asarray(pred.sinus_labels))
    assert source == "model, every sinus"
    full = np.zeros(volume.shape, np.uint8)
    full[box] = labels
    assert np.array_equal(full, pred.sinus_labels)


def test_a_head_case_with_cells_is_a_complete_label_map(tmp_path: Path) -> None:
    import json
    import sys

    from sinusapp.model.dataset_adapter import seg_only_cases_from_folder
    from sinusapp.model.train import prepare_cases
    from sinusapp.synth.dicomio import write_label_nifti

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _dicomgen import write_volume_series

    volume, _ = make_sinus_phantom(**PHANTOM_GRID, severity=(0.0, 0.0), polyp=False, seed=5)
    case = tmp_path / "seg" / "HEAD_0"
    case.mkdir(parents=True)
    write_volume_series(case / "ct", volume)
    cells = np.zeros(volume.shape, np.uint8)
    cells[28:36, 30:40, 44:54] = LABEL_IDS["ethmoid_ant_L"]
    # a maxillary sinus labelled inside the unlabelled slices (a model's label of a head):
    # known to the sinus head, not to the lesion head
    cells[2:10, 30:40, 20:34] = LABEL_IDS["maxillary_L"]
    write_label_nifti(labels=cells, affine=volume.affine, out_path=case / "cells.nii.gz")
    unknown = np.zeros(volume.shape, np.uint8)
    unknown[:12] = 1
    write_label_nifti(labels=unknown, affine=volume.affine, out_path=case / "unlabelled.nii.gz")
    centre = volume.index_to_lps((np.asarray(volume.shape) - 1) / 2)
    (case / "case.json").write_text(json.dumps({"sinus_centre_lps_mm": centre.tolist()}))
    (prep,) = prepare_cases(
        seg_only_cases_from_folder(tmp_path / "seg"), cache_dir=tmp_path / "c", config=TINY_PRE
    )
    assert prep.sinus_covered is not None and prep.sinus_covered.all()
    assert (prep.sinus == SINUS_HEAD_REGIONS_ALL.index("ethmoid_ant_L")).sum() > 5
    assert (prep.sinus == SINUS_IGNORE).any()  # its unlabelled slices
    assert prep.seg_valid is not None
    unknown_block = prep.seg_valid == 0
    maxillary = prep.sinus == SINUS_HEAD_REGIONS_ALL.index("maxillary_L")
    assert maxillary.sum() > 5 and unknown_block[maxillary].all()
    # the rest of the unlabelled region is unknown to both heads
    assert np.array_equal(prep.sinus == SINUS_IGNORE, unknown_block & ~maxillary)
    t, allowed = partial_targets(prep.sinus, covered=prep.sinus_covered, n_classes=N_ALL)
    assert not (t == SINUS_OTHER).any() and allowed.tolist() == [True] + [False] * (N_ALL - 1)
