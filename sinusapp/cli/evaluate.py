"""Paper-style evaluation of a model bundle on a dataset (DESIGN §3 format): runs the model on
every case (DLR-score, DSC against the reference mask), fits the clinical model and the
nomogram on the training cohort, and writes Table-1 / Table-2 style tables, DeLong tests, the
DSC summary and the figures (ROC, calibration, decision curves, nomogram) as Markdown, CSV,
PNG and PDF. The fitted nomogram.json can be shipped next to the bundle.

The nomogram must be fitted on DLR-scores of patients the model did not train on: the final
model scores its own training patients almost perfectly (AUC above the generator's oracle),
and a nomogram fitted on those scores overweights the DLR-score and is miscalibrated on new
patients. Therefore:

- ``--bundle B`` alone scores every case with B only when B's manifest lists its training
  cases (``training.case_ids``, written by ``sinusapp train``) and none of them is in this
  dataset, or when ``--independent-bundle`` says B never saw these patients; otherwise it
  refuses and names the fix.
- ``--scores PREDICTIONS.csv`` takes the DLR-scores from a file: the out-of-fold predictions
  that ``sinusapp train`` writes (``WORK_DIR/predictions.csv``: ``case_id``, ``fold``,
  ``dlr_score``, ``dsc``) or the ``scores.csv`` of an earlier ``evaluate``. With ``--bundle``
  as well, B is run on every case only to compute the DSC on the CT grid and to record B's
  sha256 in nomogram.json; a training case that B was trained on must have an out-of-fold
  score (a ``fold``).

``--compare LABEL=CSV`` (repeatable) compares other models' per-case scores with this one's
on the same patients, as the paper's single-task vs multi-task ablation: train them with
``sinusapp train DATASET --task seg`` / ``--task cls`` and pass their predictions.csv; writes
comparison.md (AUC with DeLong tests, DSC with paired Wilcoxon tests; see
:mod:`sinusapp.evaluation.compare`).

DSC has one definition in the report: on the CT grid (the model's mask resampled to the CT,
against the reference mask), as a surgeon sees it. Training's predictions.csv holds DSC on the
model's input grid (the bundle's spacing_mm, e.g. 1.25 mm); it is not reported (pass
``--bundle`` to compute the CT-grid one).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run", "score_dataset", "training_case_ids"]

#: ``dsc_grid`` value of a scores file whose DSC is on the CT grid (what this report shows).
CT_GRID = "ct"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset folder (clinical.csv + one folder per case)")
    parser.add_argument("--bundle", metavar="DIR", help="model bundle (default: the bundled one)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--scores",
        metavar="CSV",
        help="per-case DLR-scores: the out-of-fold predictions.csv that `sinusapp train` "
        "writes in its work folder, or the scores.csv of an earlier evaluate "
        "(case_id, dlr_score; optional fold, dsc, dsc_grid)",
    )
    parser.add_argument(
        "--independent-bundle",
        action="store_true",
        help="the bundle was trained on other patients than this dataset's (needed when its "
        "manifest does not list its training cases)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=2000,
        metavar="N",
        help="bootstrap replicates for the AUC CIs (default 2000, as pROC)",
    )
    parser.add_argument(
        "--calibration-bootstrap",
        type=int,
        default=200,
        metavar="B",
        help="bootstrap refits for the optimism-corrected calibration (default 200)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default 0)")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="LABEL=CSV",
        help="also compare another model's per-case scores (e.g. seg-only=seg.work/"
        "predictions.csv from `sinusapp train --task seg`) with this one's: AUC with paired "
        "DeLong tests, DSC with paired Wilcoxon tests, in comparison.md (repeatable)",
    )
    parser.add_argument(
        "--radiomics-baseline",
        action="store_true",
        help="add the paper's traditional-radiomics row: first-order + shape features of the "
        "reference lesion mask (numpy / scikit-image, NOT pyradiomics: see "
        "sinusapp.evaluation.radiomics) with a logistic regression, in comparison.md",
    )
    parser.add_argument(
        "--label",
        default="multi-task",
        help="name of the evaluated model in the comparison (default multi-task)",
    )


def training_case_ids(manifest: dict[str, Any]) -> set[str] | None:
    """The case ids a bundle was trained on (manifest ``training.case_ids``), or ``None`` when
    the manifest does not list them (bundles written before the list was recorded)."""
    training = manifest.get("training")
    ids = training.get("case_ids") if isinstance(training, dict) else None
    if not isinstance(ids, list):
        return None
    return {str(i) for i in ids}


def score_dataset(dataset: Any, predictor: Any, *, progress: Any = None) -> list[dict[str, Any]]:
    """Run ``predictor`` on every case; return one record per case (clinical row + scores)."""
    from sinusapp.dataset import load_case
    from sinusapp.imaging.metrics import dice

    records = []
    n = len(dataset.cases)
    for i, case in enumerate(dataset.cases):
        volume, lesion, _ = load_case(case)
        pred = predictor.predict(volume)
        rec = dict(case.clinical)
        rec["case_id"] = case.case_id
        rec["dlr_score"] = float(pred.dlr_score)
        rec["dsc"] = dice(pred.mask, lesion) if lesion.any() else float("nan")
        rec["lesion_volume_ml"] = float(pred.lesion_volume_ml)
        records.append(rec)
        if progress is not None:
            progress((i + 1) / n, f"case {case.case_id}")
    return records


def _write_scores(records: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["case_id", "cohort", "fold", "dlr_score", "dsc", "dsc_grid", "lesion_volume_ml"]
        )
        for r in records:
            fold = r.get("fold")
            w.writerow(
                [
                    r["case_id"],
                    r["cohort"],
                    "" if fold is None else fold,
                    f"{r['dlr_score']:.6f}",
                    f"{r['dsc']:.6f}",
                    r.get("dsc_grid", CT_GRID),
                    f"{r['lesion_volume_ml']:.3f}",
                ]
            )


def _read_scores(path: Path, dataset: Any) -> list[dict[str, Any]]:
    from sinusapp.errors import InputError

    hint = "give --scores the scores.csv an earlier `sinusapp evaluate` wrote, or leave it out"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"case_id", "dlr_score"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(
                    f"--scores: the file lacks the column(s) {sorted(missing)} (found "
                    f"{list(reader.fieldnames or [])})",
                    path=path,
                    hint=hint,
                )
            rows = {r["case_id"]: r for r in reader}
    except FileNotFoundError as exc:
        raise InputError("--scores: the file does not exist", path=path, hint=hint) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"--scores: the file cannot be read ({exc})", path=path, hint=hint
        ) from exc
    records = []
    for case in dataset.cases:
        if case.case_id not in rows:
            raise InputError(
                f"case {case.case_id} has no score in {path.name}",
                path=path,
                hint="run evaluate without --scores to score every case",
            )
        r = rows[case.case_id]
        rec = dict(case.clinical)
        try:
            scores = {
                "dlr_score": float(r["dlr_score"]),
                "dsc": float(r.get("dsc") or "nan"),
                "lesion_volume_ml": float(r.get("lesion_volume_ml") or "nan"),
            }
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"--scores: case {case.case_id} has a score that is not a number ({exc})",
                path=path,
                hint=hint,
            ) from exc
        if not 0.0 <= scores["dlr_score"] <= 1.0:
            raise InputError(
                f"--scores: case {case.case_id} has dlr_score {scores['dlr_score']!r}, "
                "expected a probability in [0, 1]",
                path=path,
                hint=hint,
            )
        fold_text = (r.get("fold") or "").strip()
        if fold_text.lower() == "holdout":
            # `sinusapp train` on a cohort with held-out cases (a generated cohort's
            # validation backgrounds): scored by the final model, which never trained on
            # them, so an independent score of no CV fold
            fold_text = ""
        try:
            fold = int(float(fold_text)) if fold_text else None
        except ValueError as exc:
            raise InputError(
                f"--scores: case {case.case_id} has fold {fold_text!r}, expected a number",
                path=path,
                hint=hint,
            ) from exc
        # one DSC definition: the CT grid; training's predictions.csv has the model grid's
        ct_grid = (r.get("dsc_grid") or "").strip().lower() == CT_GRID
        if not ct_grid:
            scores["dsc"] = float("nan")
        rec.update(case_id=case.case_id, fold=fold, dsc_grid=CT_GRID if ct_grid else "", **scores)
        records.append(rec)
    return records


def _plan(
    dataset: Any, manifest: dict[str, Any] | None, *, scores: list[dict[str, Any]] | None,
    independent: bool,
) -> tuple[str, list[str]]:  # fmt: skip
    """Where the training DLR-scores come from (``train_scores``) and notes for the report;
    refuse (InputError) whatever would put in-sample scores under the nomogram."""
    from sinusapp.errors import InputError

    notes: list[str] = []
    train_ids = {c.case_id for c in dataset.by_cohort("train")}
    test_ids = {c.case_id for c in dataset.by_cohort("test")}
    trained = training_case_ids(manifest) if manifest is not None else None
    fix = (
        "pass the out-of-fold scores that `sinusapp train` wrote for this bundle "
        "(--scores WORK_DIR/predictions.csv; keep --bundle to compute the CT-grid DSC)"
    )
    if trained is not None and trained & test_ids:
        some = ", ".join(sorted(trained & test_ids)[:5])
        raise InputError(
            f"the bundle was trained on {len(trained & test_ids)} case(s) of this dataset's "
            f"testing cohort (e.g. {some}): the testing cohort would not be independent",
            hint="evaluate on a testing cohort the bundle has not seen",
        )
    folds_given = scores is not None and all(
        r.get("fold") is not None for r in scores if r["cohort"] == "train"
    )
    if scores is None:
        if trained is None and not independent:
            raise InputError(
                "the bundle's manifest does not list its training cases, so it cannot be "
                "checked that it did not train on this dataset; scoring its own training "
                "cases would give in-sample DLR-scores and an overfitted nomogram",
                hint=f"{fix}, or add --independent-bundle if the bundle never saw these patients",
            )
        if trained is not None and trained & train_ids:
            some = ", ".join(sorted(trained & train_ids)[:5])
            raise InputError(
                f"the bundle was trained on {len(trained & train_ids)} of this dataset's "
                f"{len(train_ids)} training cases (e.g. {some}): their DLR-scores from it "
                "would be in-sample and the nomogram fitted on them overfitted",
                hint=fix,
            )
        return "independent", notes
    if trained is not None and trained & train_ids:
        no_fold = [
            r["case_id"]
            for r in scores
            if r["cohort"] == "train" and r["case_id"] in trained and r.get("fold") is None
        ]
        if no_fold:
            raise InputError(
                f"--scores: {len(no_fold)} training case(s) the bundle was trained on have no "
                f"out-of-fold score (no 'fold', e.g. {', '.join(no_fold[:5])})",
                hint=fix,
            )
        notes.append(
            "The bundle was trained on this training cohort: the training-cohort DSC below "
            "is apparent (in-sample)."
        )
        return "out-of-fold", notes
    if folds_given:
        return "out-of-fold", notes
    if manifest is not None and (trained is not None or independent):
        return "independent", notes
    return "unspecified", notes


def _compare_options(values: list[str]) -> list[tuple[str, Path]]:
    """``LABEL=CSV`` (or ``CSV``: labelled by its folder) → (label, path); checked now."""
    from sinusapp.errors import InputError

    out = []
    for v in values:
        label, sep, path = v.partition("=")
        if not sep:
            label, path = Path(v).parent.name or Path(v).stem, v
        if not label.strip() or not path.strip():
            raise InputError(
                f"--compare {v!r}: expected LABEL=CSV (e.g. seg-only=seg.work/predictions.csv)"
            )
        if not Path(path).is_file():
            raise InputError(
                f"--compare {v!r}: the scores file does not exist",
                path=path,
                hint="give the predictions.csv that `sinusapp train` wrote for that model",
            )
        out.append((label.strip(), Path(path)))
    return out


def _write_comparison(
    args: argparse.Namespace,
    records: list[dict[str, Any]],
    compare: list[tuple[str, Path]],
    out: Path,
    dataset: Any,
) -> None:
    from sinusapp.evaluation.compare import (
        ModelScores,
        compare_models,
        read_model_scores,
        write_comparison,
    )

    if args.scores:  # the file as written (DSC on its own grid, not dropped)
        reference = read_model_scores(args.scores, label=args.label)
    else:
        reference = ModelScores(
            label=args.label,
            dlr_score={r["case_id"]: float(r["dlr_score"]) for r in records},
            dsc={r["case_id"]: float(r["dsc"]) for r in records},
            dsc_grid=CT_GRID,
            source="scored with --bundle",
        )
    others = [read_model_scores(path, label=label) for label, path in compare]
    if args.radiomics_baseline:
        others.append(_radiomics_scores(records, dataset=dataset, out=out))
    outcomes = {r["case_id"]: (str(r["cohort"]), bool(int(r["recurrence"]))) for r in records}
    comparison = compare_models([reference, *others], outcomes=outcomes)
    write_comparison(comparison, out)
    print(f"Wrote the model comparison to {out / 'comparison.md'}")
    for row in comparison.auc:
        if row.cohort == "test":
            auc = "n/a" if row.auc is None else f"{row.auc.auc:.3f}"
            p = "" if row.vs_reference is None else f" (DeLong p {row.vs_reference.p:.3f})"
            print(f"  test  {row.model:<14} AUC {auc}{p}")
    for d in comparison.dsc:
        if d.cohort == "test" and d.n:
            p = f" (Wilcoxon p {d.p_wilcoxon:.3f})" if d.n_paired else ""
            print(f"  test  {d.model:<14} DSC {d.mean:.3f}{p}")


def _radiomics_scores(records: list[dict[str, Any]], *, dataset: Any, out: Path) -> Any:
    """The radiomics-style baseline's probabilities as a compared model (features of every
    case's reference lesion mask; written to radiomics_features.csv)."""
    from sinusapp.dataset import load_case
    from sinusapp.evaluation.compare import ModelScores
    from sinusapp.evaluation.radiomics import (
        BASELINE_LABEL,
        FEATURE_NAMES,
        fit_radiomics_baseline,
        radiomics_features,
    )

    features: dict[str, dict[str, float]] = {}
    for case in dataset.cases:
        volume, lesion, _ = load_case(case)
        features[case.case_id] = radiomics_features(
            volume.array, lesion, spacing_mm=volume.spacing_mm
        )
    out.mkdir(parents=True, exist_ok=True)
    with (out / "radiomics_features.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["case_id", *FEATURE_NAMES])
        for cid, f in features.items():
            w.writerow([cid, *(f"{f[k]:.6g}" for k in FEATURE_NAMES)])
    outcomes = {r["case_id"]: (str(r["cohort"]), bool(int(r["recurrence"]))) for r in records}
    b = fit_radiomics_baseline(features, outcomes=outcomes)
    prob = {**b.train_probability, **b.test_probability}
    return ModelScores(
        label=BASELINE_LABEL,
        dlr_score=prob,
        dsc=dict.fromkeys(prob, float("nan")),
        folds={k: str(v) for k, v in b.train_fold.items()},
        source="radiomics_features.csv",
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sinusapp.dataset import Dataset
    from sinusapp.evaluation import write_evaluation

    compare = _compare_options(args.compare)
    dataset = Dataset.open(args.dataset)
    out = Path(args.out)
    bundle = None
    if args.bundle or not args.scores:
        from sinusapp.model.bundle import load_bundle
        from sinusapp.model.predictor import bundled_model_dir

        # the manifest only; the Predictor verifies the weights before it uses them
        bundle = load_bundle(args.bundle or bundled_model_dir(), verify_weights=False)
    records = _read_scores(Path(args.scores), dataset) if args.scores else None
    train_scores, notes = _plan(
        dataset,
        bundle.manifest if bundle is not None else None,
        scores=records,
        independent=args.independent_bundle,
    )
    dlr_model = None
    if bundle is not None:
        from sinusapp.model import Predictor

        predictor = Predictor(bundle.path, device=args.device)
        dlr_model = dict(predictor.model_info)
        bar = tqdm(total=len(dataset.cases), desc="scoring cases", unit="case", file=sys.stderr)

        def step(_f: float, _stage: str) -> None:
            bar.update(1)

        scored = score_dataset(dataset, predictor, progress=step)
        bar.close()
        if records is None:
            records = scored
        else:  # DLR-scores from the file, DSC on the CT grid from the bundle
            by_id = {r["case_id"]: r for r in scored}
            for r in records:
                r["dsc"] = by_id[r["case_id"]]["dsc"]
                r["dsc_grid"] = CT_GRID
                r["lesion_volume_ml"] = by_id[r["case_id"]]["lesion_volume_ml"]
        _write_scores(records, out / "scores.csv")
    elif not any(r.get("dsc_grid") == CT_GRID for r in records or ()):
        notes.append(
            "DSC not reported: the scores file gives no DSC on the CT grid (training's "
            "predictions.csv has it on the model's input grid); pass --bundle to compute it."
        )
    assert records is not None
    bar2 = tqdm(total=100, desc="evaluation", file=sys.stderr)

    def prog(f: float, _msg: str) -> None:
        bar2.n = int(100 * f)
        bar2.refresh()

    summary = write_evaluation(
        records,
        out_dir=out,
        progress=prog,
        train_scores=train_scores,
        dlr_model=dlr_model,
        notes=notes,
        dsc_label="on the CT grid: the model's mask on the CT against the reference mask",
        n_boot=args.bootstrap,
        n_boot_calibration=args.calibration_bootstrap,
        seed=args.seed,
    )
    bar2.close()
    for note in summary.notes:
        log.info("evaluate: %s", note)
    print(f"Wrote the evaluation to {out} (report.md, tables, figures, nomogram.json)")
    for p in summary.performance:
        print(
            f"  {p.cohort:<5} {p.model:<9} AUC {p.auc.auc:.3f} "
            f"(95% CI {p.auc.low:.3f}–{p.auc.high:.3f})"
        )
    for cohort, auc in summary.oracle_auc.items():
        print(f"  {cohort:<5} oracle AUC (true risk) {auc:.3f}")
    for d in summary.dsc:
        print(f"  {d.cohort:<5} DSC {d.mean:.3f} ± {d.sd:.3f} (median {d.median:.3f}, n={d.n})")
    if compare or args.radiomics_baseline:
        _write_comparison(args, records, compare, out, dataset)
    return 0
