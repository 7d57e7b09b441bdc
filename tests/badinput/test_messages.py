"""Every clinical warning reaches stdout, result.json and the report; every bad option,
file or environment gives a clear error (exit 2), never a traceback; a bug gives exit 1 with
the log path."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from sinusapp.errors import InputError

pytestmark = pytest.mark.usefixtures("fake_model")


@pytest.mark.parametrize(
    ("eosinophils", "code", "words"),
    [
        ("0.45", "clinical_eosinophils_unit_mixup", "implausibly low"),
        ("6000", "clinical_eosinophils_high", "hypereosinophilia"),
    ],
    ids=["0.45-per-ul", "6000-per-ul"],
)
def test_clinical_warnings_reach_stdout_json_and_report(
    ct, tmp_path, cli, predict_args, eosinophils, code, words
) -> None:
    out_json = tmp_path / "result.json"
    rc, out, err = cli(*predict_args(ct, "--json", str(out_json), eosinophils=eosinophils))
    assert rc == 0, err
    assert words in out
    warnings = json.loads(out_json.read_text())["warnings"]
    assert any(w["code"] == code and words in w["message"] for w in warnings), warnings


def test_clinical_warnings_reach_the_report(ct, nomogram_file) -> None:
    from sinusapp.headless import run_headless
    from sinusapp.model import FakePredictor
    from sinusapp.report import ReportContext

    clinical = {"asthma": "yes", "allergic_rhinitis": "no", "eosinophils": "0.45"}
    out = run_headless(ct, clinical, predictor=FakePredictor(), nomogram_path=nomogram_file)
    ctx = ReportContext.from_result(out.result)
    assert any("implausibly low" in f.message for f in ctx.findings)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--sex", "other"), "--sex"),
        (("--eosinophils", "abc"), "--eosinophils"),
        (("--age", "forty"), "--age"),
        (("--eosinophils", "-3"), "--eosinophils"),
    ],
    ids=["sex-other", "eosinophils-text", "age-text", "eosinophils-negative"],
)
def test_bad_clinical_options_name_the_option(ct, cli, predict_args, extra, words) -> None:
    rc, out, err = cli(*predict_args(ct), *extra)
    assert rc == 2 and words in err and "Traceback" not in err
    assert "DLR-score" not in out


def test_sex_other_is_not_offered_by_help(cli) -> None:
    rc, out, _ = cli("predict", "--help")
    assert rc == 0 and "other" not in out.split("--sex")[1].split("\n")[0]


def test_a_nomogram_with_an_unknown_factor_is_refused_before_the_analysis(
    ct, tmp_path, cli, predict_args, fitted_nomogram
) -> None:
    good = tmp_path / "n.json"
    fitted_nomogram.save(good)
    text = good.read_text().replace('"asthma"', '"smoker"')
    bad = tmp_path / "bad_nomogram.json"
    bad.write_text(text)
    args = predict_args(ct)
    args[args.index("--nomogram") + 1] = str(bad)
    rc, out, err = cli(*args)
    assert rc == 2 and "smoker" in err and "cannot supply" in err
    assert "DLR-score" not in out


def test_a_file_given_as_bundle_is_named_a_file(ct, tmp_path, cli, predict_args, monkeypatch):
    from sinusapp.model.predictor import Predictor

    monkeypatch.setattr("sinusapp.model.Predictor", Predictor)  # the real one, not the fake
    f = tmp_path / "weights.safetensors"
    f.write_bytes(b"not a bundle")
    rc, _, err = cli(*predict_args(ct, "--bundle", str(f)))
    assert rc == 2 and "is a file, not a model bundle folder" in err


@pytest.mark.parametrize("kind", ["file", "proc"])
def test_an_unusable_sinusapp_home_is_a_clear_error(ct, tmp_path, cli, monkeypatch, kind):
    home = tmp_path / "home_is_a_file" if kind == "file" else Path("/proc/sinusapp-home")
    if kind == "file":
        home.write_text("")
    monkeypatch.setenv("SINUSAPP_HOME", str(home))
    rc, _, err = cli("scan", str(ct))
    assert rc == 2 and "SINUSAPP_HOME" in err and "Traceback" not in err


@pytest.mark.parametrize("tilt", ["90", "nan", "inf", "-45", "x"])
def test_synth_refuses_an_impossible_tilt(tmp_path, cli, tilt) -> None:
    rc, _, err = cli("synth", "--out", str(tmp_path / "cohort"), "--cases", "1", "--tilt", tilt)
    assert rc == 2 and "--tilt" in err
    assert not (tmp_path / "cohort").exists()


def _dataset(ids: list[str]):
    cases = [SimpleNamespace(case_id=i, clinical={"asthma": True}) for i in ids]
    return SimpleNamespace(cases=cases)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "does not exist"),
        ("garbage\x00\x01 not csv at all\n", "lacks the column"),
        ("case_id,dlr_score,dsc\nc1,high,0.5\n", "not a number"),
        ("case_id,dlr_score,dsc\nc1,7.5,0.5\n", "expected a probability"),
        ("case_id,dlr_score,dsc\nc2,0.5,0.5\n", "has no score"),
    ],
    ids=["missing", "garbage", "text-score", "score-out-of-range", "case-missing"],
)
def test_evaluate_scores_errors_are_clear(tmp_path, content, words) -> None:
    from sinusapp.cli.evaluate import _read_scores

    path = tmp_path / "scores.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=words):
        _read_scores(path, _dataset(["c1"]))


def test_evaluate_scores_good_file_is_read(tmp_path) -> None:
    from sinusapp.cli.evaluate import _read_scores

    path = tmp_path / "scores.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([["case_id", "dlr_score", "dsc"], ["c1", "0.25", "0.8"]])
    (rec,) = _read_scores(path, _dataset(["c1"]))
    assert rec["dlr_score"] == 0.25 and rec["case_id"] == "c1"


def test_a_bug_gives_exit_1_with_the_log_path(ct, cli, predict_args, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("sinusapp.headless.run_headless", broken)
    rc, _, err = cli(*predict_args(ct))
    assert rc == 1 and "internal error" in err and "sinusapp.log" in err


def test_a_good_run_gives_exit_0(ct, tmp_path, cli, predict_args) -> None:
    out_json, report = tmp_path / "r.json", tmp_path / "r.pdf"
    rc, out, err = cli(*predict_args(ct, "--json", str(out_json), "--report", str(report)))
    assert rc == 0, err
    assert json.loads(out_json.read_text())["dlr_score"] == pytest.approx(0.5)
    assert report.read_bytes().startswith(b"%PDF")
    assert "Wrote report" in out


@pytest.mark.parametrize(
    ("probability", "expected"),
    [(0.41, True), (0.38, True), (0.45, False), (0.30, False)],
)
def test_a_risk_near_the_cutoff_is_borderline(probability, expected) -> None:
    from sinusapp.headless import borderline_finding

    f = borderline_finding(probability, 0.40, "high" if probability >= 0.40 else "low")
    assert (f is not None) is expected
    if f is not None:
        assert f.code == "borderline_risk" and "Borderline" in f.message


def test_a_borderline_result_says_so_on_stdout_and_in_json(
    ct, tmp_path, cli, predict_args, monkeypatch
) -> None:
    import dataclasses

    from sinusapp.nomogram import Nomogram

    real_predict = Nomogram.predict

    def near_cutoff(self, **factors):  # the same prediction, 1 point above the cutoff
        return dataclasses.replace(real_predict(self, **factors), probability=self.cutoff + 0.01)

    monkeypatch.setattr(Nomogram, "predict", near_cutoff)
    out_json = tmp_path / "r.json"
    rc, out, err = cli(*predict_args(ct, "--json", str(out_json)))
    assert rc == 0, err
    assert "Borderline" in out
    codes = [w["code"] for w in json.loads(out_json.read_text())["warnings"]]
    assert "borderline_risk" in codes
