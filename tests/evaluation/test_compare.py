"""The single-task vs multi-task comparison (issue 14): AUC with paired DeLong tests, DSC with
paired Wilcoxon tests, and the whole code path on a tiny cohort trained three ways
(``--task multi / seg / cls``)."""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path

import numpy as np
import pytest

from sinusapp.errors import InputError
from sinusapp.evaluation.compare import compare_models, read_model_scores, write_comparison
from sinusapp.stats.roc import auc_ci, delong_test


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_known_values(tmp_path) -> None:
    ids = [f"c{i}" for i in range(10)]
    y = [i % 2 == 1 for i in range(10)]
    rng = np.random.default_rng(1)
    multi_dlr = np.clip(0.5 + 0.2 * (np.array(y) - 0.5) + rng.normal(0, 0.2, 10), 0, 1)
    multi_dsc = np.linspace(0.60, 0.78, 10)
    ref = _write(
        tmp_path / "multi.csv",
        [
            {"case_id": c, "dlr_score": f"{s:.6f}", "dsc": f"{d:.6f}"}
            for c, s, d in zip(ids, multi_dlr, multi_dsc, strict=True)
        ],
    )
    # seg-only: no DLR-score, DSC higher on every case -> exact Wilcoxon p = 2 / 2**10
    seg = _write(
        tmp_path / "seg.csv",
        [{"case_id": c, "dlr_score": "", "dsc": f"{d + 0.01 * (k + 1):.6f}"}
         for k, (c, d) in enumerate(zip(ids, multi_dsc, strict=True))],
    )  # fmt: skip
    # cls-only: a perfect DLR-score, no DSC
    cls = _write(
        tmp_path / "cls.csv",
        [{"case_id": c, "dlr_score": "0.9" if yy else "0.1", "dsc": ""}
         for c, yy in zip(ids, y, strict=True)],
    )  # fmt: skip
    models = [
        read_model_scores(ref, label="multi-task"),
        read_model_scores(seg, label="seg-only"),
        read_model_scores(cls, label="cls-only"),
    ]
    outcomes = {c: ("test", yy) for c, yy in zip(ids, y, strict=True)}
    cmp = compare_models(models, outcomes=outcomes)
    auc = {r.model: r for r in cmp.auc}
    assert auc["seg-only"].auc is None and auc["seg-only"].note == "no DLR-score"
    assert auc["cls-only"].auc.auc == pytest.approx(1.0)
    assert auc["multi-task"].auc.auc == pytest.approx(auc_ci(np.array(y), multi_dlr).auc)
    expected = delong_test(np.array(y), np.where(np.array(y), 0.9, 0.1), np.round(multi_dlr, 6))
    assert auc["cls-only"].vs_reference.p == pytest.approx(expected.p)
    assert auc["multi-task"].vs_reference is None
    dsc = {r.model: r for r in cmp.dsc}
    assert dsc["seg-only"].n_paired == 10
    assert dsc["seg-only"].mean_difference == pytest.approx(0.055, abs=1e-6)
    assert dsc["seg-only"].p_wilcoxon == pytest.approx(2 / 2**10)
    assert dsc["cls-only"].n == 0 and dsc["cls-only"].note == "no DSC"
    assert dsc["multi-task"].mean == pytest.approx(multi_dsc.mean(), abs=1e-6)
    files = write_comparison(cmp, tmp_path / "out")
    text = (tmp_path / "out" / "comparison.md").read_text()
    assert "comparison.md" in files and "Wilcoxon" in text and "seg-only" in text
    assert "0.002" in text  # the Wilcoxon p of seg-only vs multi-task


def test_identical_dsc_gives_p_one_and_grids_are_not_mixed(tmp_path) -> None:
    rows = [{"case_id": f"c{i}", "dlr_score": "0.5", "dsc": "0.7"} for i in range(4)]
    a = read_model_scores(_write(tmp_path / "a.csv", rows), label="a")
    b = read_model_scores(_write(tmp_path / "b.csv", rows), label="b")
    ct = read_model_scores(
        _write(tmp_path / "ct.csv", [{**r, "dsc_grid": "ct"} for r in rows]), label="ct"
    )
    outcomes = {f"c{i}": ("test", bool(i % 2)) for i in range(4)}
    dsc = {r.model: r for r in compare_models([a, b, ct], outcomes=outcomes).dsc}
    assert dsc["b"].p_wilcoxon == 1.0 and dsc["b"].mean_difference == 0.0
    assert dsc["ct"].n_paired == 0 and "not compared" in dsc["ct"].note


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "does not exist"),
        ("id,score\nc1,0.5\n", "needs a case_id column"),
        ("case_id,dlr_score\nc1,high\n", "not a number"),
        ("case_id,dlr_score\nc1,1.5\n", "expected a value in"),
        ("case_id,dlr_score\nc1,0.5\nc1,0.6\n", "appears twice"),
    ],
)
def test_bad_scores_files_are_clear_errors(tmp_path, content, words) -> None:
    path = tmp_path / "s.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=words):
        read_model_scores(path, label="x")


def test_a_case_missing_from_a_model_is_refused(tmp_path) -> None:
    a = read_model_scores(_write(tmp_path / "a.csv", [{"case_id": "c1", "dsc": "0.5"}]), label="a")
    b = read_model_scores(_write(tmp_path / "b.csv", [{"case_id": "c2", "dsc": "0.5"}]), label="b")
    with pytest.raises(InputError, match="no row in the scores of 'a'"):
        compare_models([a, b], outcomes={"c2": ("test", True)})


def test_compare_option_errors_name_the_option(tmp_path) -> None:
    from sinusapp.cli.evaluate import _compare_options

    with pytest.raises(InputError, match=r"--compare 'seg=nowhere\.csv'"):
        _compare_options(["seg=nowhere.csv"])
    f = tmp_path / "seg.work" / "predictions.csv"
    f.parent.mkdir()
    f.write_text("case_id,dsc\n")
    assert _compare_options([str(f), f"cls={f}"]) == [("seg.work", f), ("cls", f)]


def _tiny_cases(n: int, n_test: int) -> list:
    from sinusapp.model.testing import make_sinus_phantom
    from sinusapp.model.train import TrainingCase

    return [
        TrainingCase(
            case_id=f"case{i:03d}",
            cohort="test" if i >= n - n_test else "train",
            recurrence=i % 2,
            load=functools.partial(
                make_sinus_phantom,
                shape=(64, 80, 80),
                spacing_mm=(2.5, 2.2, 2.2),
                severity=(0.3 + 0.1 * i, 0.8 - 0.1 * i),
                polyp=bool(i % 2),
                seed=i,
            ),
        )
        for i in range(n)
    ]


def test_ablation_code_path_on_a_tiny_cohort(tmp_path) -> None:
    """`train --task multi/seg/cls` on 6 phantoms, then the comparison of their external
    predictions: the seg-only model has no AUC, the cls-only model no DSC."""
    import torch

    from sinusapp.model.config import NetworkConfig, PreprocessConfig
    from sinusapp.model.train import TrainConfig, run_training

    torch.set_num_threads(1)
    cases = _tiny_cases(6, n_test=4)
    outcomes = {c.case_id: (c.cohort, bool(c.recurrence)) for c in cases if c.cohort == "test"}
    models = []
    for task in ("multi", "seg", "cls"):
        run_training(
            cases,
            out_dir=tmp_path / task,
            work_dir=tmp_path / f"{task}.work",
            network=NetworkConfig(base_width=4, levels=3, cls_hidden=(16,), task=task),
            preprocess=PreprocessConfig(spacing_mm=4.0, block_shape=(32, 32, 32)),
            tcfg=TrainConfig(epochs=1, folds=0, batch_size=2),
            device="cpu",
        )
        pred = tmp_path / f"{task}.work" / "predictions.csv"
        models.append(read_model_scores(pred, label=f"{task}-task"))
    cmp = compare_models(models, outcomes=outcomes)
    auc = {r.model: r for r in cmp.auc}
    dsc = {r.model: r for r in cmp.dsc}
    assert auc["seg-task"].auc is None and auc["seg-task"].note == "no DLR-score"
    assert 0.0 <= auc["multi-task"].auc.auc <= 1.0 and 0.0 <= auc["cls-task"].auc.auc <= 1.0
    assert auc["cls-task"].vs_reference is not None  # paired DeLong on the 4 test cases
    assert dsc["cls-task"].n == 0
    assert dsc["seg-task"].n == 4 and dsc["seg-task"].n_paired == 4
    assert math.isfinite(dsc["seg-task"].p_wilcoxon) or dsc["seg-task"].mean_difference == 0
    assert cmp.dsc_grid == ""  # training's predictions.csv: the model's grid, said so
    write_comparison(cmp, tmp_path / "cmp")
    assert "the model's grid" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_held_out_training_rows_are_labelled_so(tmp_path) -> None:
    """Rows whose fold is "holdout" (no model trained on them) are not called out-of-fold."""
    ids = [f"c{i}" for i in range(8)]
    y = [i % 2 == 1 for i in range(8)]
    rows = [
        {"case_id": c, "dlr_score": f"{0.3 + 0.4 * yy:.2f}", "dsc": "0.7", "fold": "holdout"}
        for c, yy in zip(ids, y, strict=True)
    ]
    m = read_model_scores(_write(tmp_path / "m.csv", rows), label="multi-task")
    for r in rows:
        r["fold"] = str(int(r["case_id"][1:]) % 2)
    cv = read_model_scores(_write(tmp_path / "cv.csv", rows), label="cv")
    outcomes = {c: ("train", yy) for c, yy in zip(ids, y, strict=True)}
    cmp = compare_models([m, cv], outcomes=outcomes)
    assert {r.model: r.estimate for r in cmp.auc} == {
        "multi-task": "held out (no model trained on them)",
        "cv": "out-of-fold",
    }
