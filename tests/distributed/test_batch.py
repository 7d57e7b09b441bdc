"""`sinusapp batch`: a local Dask cluster of two workers scores three synthetic studies, one
of them broken; the batch resumes, never stops on the broken study, and its summary.csv
feeds `sinusapp evaluate --scores`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip(
    "distributed", reason="sinusapp batch needs dask[distributed] (extra 'cluster')"
)

COHORT_KEEP = ("A0001", "A0002")


def _clinical_rows(cohort: Path) -> dict[str, dict[str, str]]:
    with (cohort / "clinical.csv").open(newline="", encoding="utf-8") as fh:
        return {r["case_id"]: r for r in csv.DictReader(fh)}


def _batch_csv(cohort: Path, tmp: Path) -> Path:
    """A batch CSV: two real studies and a broken one (a folder holding a non-DICOM file)."""
    broken = tmp / "studies" / "broken"
    broken.mkdir(parents=True)
    (broken / "IM0001.dcm").write_bytes(b"this is not a DICOM file" * 20)
    rows = _clinical_rows(cohort)
    out = tmp / "studies" / "batch.csv"
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["case_id", "path", "series_uid", "asthma", "allergic_rhinitis", "eosinophils_per_ul"]
        )
        for cid in COHORT_KEEP:
            r = rows[cid]
            w.writerow(
                [
                    cid,
                    str(cohort / cid),
                    r["series_uid"],
                    r["asthma"],
                    r["allergic_rhinitis"],
                    r["eosinophils_per_ul"],
                ]
            )
        w.writerow(["X0003", "broken", "", "yes", "no", "300"])  # path relative to the CSV
    return out


def _read_summary(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {r["case_id"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def two_workers() -> Iterator[str]:
    """A local Dask cluster of two worker processes (loopback), as `sinusapp batch` starts;
    shared by the runs below through --scheduler (one start-up, on 2 busy cores)."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set({"distributed.worker.daemon": False}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
    ):
        yield cluster.scheduler_address


def test_two_workers_three_studies_one_broken_resumable(
    tiny_cohort: Path, tmp_path: Path, two_workers: str
) -> None:
    from sinusapp.batch import ModelSpec, read_studies, run_batch

    studies = read_studies(_batch_csv(tiny_cohort, tmp_path))
    assert [s.case_id for s in studies] == [*COHORT_KEEP, "X0003"]
    out = tmp_path / "out"
    spec = ModelSpec(fake=True)
    first = run_batch(studies, out_dir=out, spec=spec, scheduler=two_workers, progress=False)
    workers = {r["worker"] for r in first.rows}
    assert "" not in workers and len(workers) <= 2  # scored in the cluster's two processes
    assert (first.scored, first.skipped, first.failed) == (2, 0, 1)
    summary = _read_summary(out / "summary.csv")
    assert list(summary) == [*COHORT_KEEP, "X0003"]
    for cid in COHORT_KEEP:
        row = summary[cid]
        assert row["status"] == "scored" and row["error"] == ""
        result = json.loads((out / cid / "result.json").read_text())
        assert float(row["dlr_score"]) == pytest.approx(result["dlr_score"])
        assert float(row["probability"]) == pytest.approx(result["probability"])
        assert row["risk_group"] == result["risk_group"]
        assert float(row["lesion_volume_ml"]) > 0
        assert row["series_uid"] == result["series"]["series_instance_uid"]
        assert row["model_sha256"] == "0" * 64  # the fake predictor's
        assert any(row[f"opacification_pct_{s}"] != "" for s in ("maxillary_L", "maxillary_R"))
    bad = summary["X0003"]
    assert bad["status"] == "failed" and bad["dlr_score"] == ""
    assert "Error" in bad["error"], bad["error"]  # the exception type and its message
    assert not (out / "X0003" / "result.json").exists()
    assert not list(out.rglob("*.tmp*")), "a temporary file was left behind"

    # run again: the finished studies are skipped (their result.json untouched), the broken
    # one is tried again and fails again
    stamps = {cid: (out / cid / "result.json").stat().st_mtime_ns for cid in COHORT_KEEP}
    second = run_batch(studies, out_dir=out, spec=spec, scheduler=two_workers, progress=False)
    assert (second.scored, second.skipped, second.failed) == (0, 2, 1)
    assert stamps == {cid: (out / cid / "result.json").stat().st_mtime_ns for cid in COHORT_KEEP}
    again = _read_summary(out / "summary.csv")
    assert again["A0001"]["dlr_score"] == summary["A0001"]["dlr_score"]
    assert again["A0001"]["status"] == "skipped (done)"

    # an incomplete result.json is scored again
    (out / "A0002" / "result.json").write_text('{"dlr_score": 0.5}')
    third = run_batch(studies, out_dir=out, spec=spec, scheduler=two_workers, progress=False)
    assert (third.scored, third.skipped, third.failed) == (1, 1, 1)

    # summary.csv feeds `sinusapp evaluate --scores` (what --scores reads, on a dataset of the
    # two scored studies)
    from sinusapp.cli.evaluate import _read_scores
    from sinusapp.dataset import Dataset

    ds_dir = tmp_path / "dataset"
    ds_dir.mkdir()
    rows = _clinical_rows(tiny_cohort)
    with (ds_dir / "clinical.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows["A0001"]))
        w.writeheader()
        for cid in COHORT_KEEP:
            w.writerow(rows[cid])
            (ds_dir / cid).symlink_to(tiny_cohort / cid, target_is_directory=True)
    records = _read_scores(out / "summary.csv", Dataset.open(ds_dir))
    by_id = {r["case_id"]: r for r in records}
    final = _read_summary(out / "summary.csv")
    for cid in COHORT_KEEP:
        assert by_id[cid]["dlr_score"] == pytest.approx(float(final[cid]["dlr_score"]))
        assert by_id[cid]["lesion_volume_ml"] == pytest.approx(
            float(final[cid]["lesion_volume_ml"])
        )


def test_folder_input_takes_clinical_factors_from_clinical_csv(tiny_cohort: Path) -> None:
    from sinusapp.batch import read_studies

    studies = read_studies(tiny_cohort)
    assert [s.case_id for s in studies] == ["A0001", "A0002", "A0003", "B0001", "B0002", "B0003"]
    rows = _clinical_rows(tiny_cohort)
    assert studies[0].clinical["eosinophils_per_ul"] == rows["A0001"]["eosinophils_per_ul"]
    assert studies[0].series_uid == rows["A0001"]["series_uid"]


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    from sinusapp.batch import read_studies
    from sinusapp.cli import main
    from sinusapp.errors import InputError

    with pytest.raises(InputError, match="does not exist"):
        read_studies(tmp_path / "nope")
    bad = tmp_path / "bad.csv"
    bad.write_text("folder,asthma\nx,yes\n")
    with pytest.raises(InputError, match="no 'path' column"):
        read_studies(bad)
    dup = tmp_path / "dup.csv"
    dup.write_text("path,case_id\na,1\nb,1\n")
    with pytest.raises(InputError, match="more than once"):
        read_studies(dup)
    assert main(["batch", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2


def test_gui_and_predict_never_import_dask() -> None:
    code = (
        "import sys\n"
        "import sinusapp.headless, sinusapp.pipeline, sinusapp.cli.predict, sinusapp.batch\n"
        "import sinusapp.ui.main_window\n"
        "from sinusapp.cli import build_parser\n"
        "build_parser()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"dask imported by the app: {r.stdout} {r.stderr[-2000:]}"


def test_the_model_is_loaded_once_per_worker_process(tiny_cohort: Path, tmp_path: Path) -> None:
    from sinusapp import batch

    studies = batch.read_studies(tiny_cohort)[:2]
    spec = batch.ModelSpec(fake=True)
    batch._PREDICTORS.clear()
    rows = [batch.score_study(s, out_dir=str(tmp_path), spec=spec) for s in studies]
    assert [r["status"] for r in rows] == ["scored", "scored"], rows
    assert list(batch._PREDICTORS) == [spec]  # one load for both studies


def test_summary_row_names_the_sinuses_not_assessed() -> None:
    from sinusapp.batch import SUMMARY_COLUMNS, Study, summary_row

    result = {
        "dlr_score": 0.3,
        "probability": 0.4,
        "probability_ci95": [0.2, 0.6],
        "risk_group": "low",
        "lesion_volume_ml": 5.0,
        "lund_mackay_total": 1,
        "lund_mackay_max": 4,
        "per_sinus": {
            "maxillary_L": {"volume_ml": 15.0, "opacification_pct": 40.0, "lund_mackay": 1.0},
            "frontal": {"volume_ml": 4.0},
        },
        "opacification_not_assessed": ["frontal"],
        "series": {},
        "model": {"sha256": "abc"},
    }
    row = summary_row(Study(case_id="c1", path="/x"), result, status="scored")
    assert set(row) == set(SUMMARY_COLUMNS)
    assert row["opacification_pct_maxillary_L"] == 40.0
    assert row["opacification_pct_frontal"] == ""
    assert row["opacification_not_assessed"] == "frontal"
    assert (row["lund_mackay_total"], row["lund_mackay_max"]) == (1, 4)
