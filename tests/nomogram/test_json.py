"""JSON save / load round trip and refusal of malformed nomogram files."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from sinusapp.errors import NomogramFileError
from sinusapp.nomogram import Nomogram
from sinusapp.resources import models_dir

PATIENT = {"dlr_score": 0.6, "asthma": True, "allergic_rhinitis": False, "eosinophils_per_ul": 450}


def test_round_trip_preserves_the_model(nomogram, tmp_path: Path):
    path = nomogram.save(tmp_path / "sub" / "nomogram.json")
    loaded = Nomogram.load(path)
    assert loaded.to_dict() == nomogram.to_dict()
    a, b = nomogram.predict(**PATIENT), loaded.predict(**PATIENT)
    assert (a.probability, a.ci95, a.total_points, a.risk_group) == (
        b.probability,
        b.ci95,
        b.total_points,
        b.risk_group,
    )
    doc = json.loads(path.read_text())
    assert doc["format"] == "sinusapp.nomogram" and doc["format_version"] == 1
    assert doc["software_version"]
    assert doc["covariance"]["terms"] == [
        "intercept",
        "dlr_score",
        "asthma",
        "allergic_rhinitis",
        "eosinophils_per_ul",
    ]
    assert doc["training"]["n"] == 300
    assert {f["unit"] for f in doc["factors"]} == {"", "cells/µL"}
    assert 0 < doc["cutoff"]["probability"] < 1


def _broken(doc: dict, how: str) -> dict:
    d = copy.deepcopy(doc)
    if how == "no_factors":
        del d["factors"]
    elif how == "cov_shape":
        d["covariance"]["matrix"] = d["covariance"]["matrix"][:-1]
    elif how == "cov_asym":
        d["covariance"]["matrix"][0][1] += 1.0
    elif how == "coef_missing":
        del d["coefficients"]["asthma"]
    elif how == "coef_string":
        d["coefficients"]["asthma"] = "1.2"
    elif how == "version":
        d["format_version"] = 99
    elif how == "format":
        d["format"] = "something else"
    elif how == "kind":
        d["factors"][1]["kind"] = "ordinal"
    elif how == "cutoff":
        d["cutoff"]["probability"] = 1.5
    elif how == "axis":
        d["factors"][0]["axis_range"] = [1.0, 0.0]
    return d


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("no_factors", "'factors' is missing"),
        ("cov_shape", "covariance matrix must be 5×5"),
        ("cov_asym", "symmetric"),
        ("coef_missing", "'coefficients' must have exactly"),
        ("coef_string", "coefficient of 'asthma' must be a number"),
        ("version", "format_version 99 is not supported"),
        ("format", "'format' must be 'sinusapp.nomogram'"),
        ("kind", "kind of factor 'asthma'"),
        ("cutoff", "cutoff must be a probability"),
        ("axis", "axis_range"),
    ],
)
def test_malformed_file_is_refused_naming_file_and_problem(nomogram, tmp_path, how, message):
    path = tmp_path / f"{how}.json"
    path.write_text(json.dumps(_broken(nomogram.to_dict(), how)))
    with pytest.raises(NomogramFileError, match=message) as info:
        Nomogram.load(path)
    assert info.value.path == path
    assert str(path) in str(info.value)


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "sinusapp.nomogram", ')
    with pytest.raises(NomogramFileError, match="not valid JSON") as info:
        Nomogram.load(bad)
    assert info.value.path == bad
    with pytest.raises(NomogramFileError, match="does not exist"):
        Nomogram.load(tmp_path / "absent.json")
    top = tmp_path / "list.json"
    top.write_text("[1, 2]")
    with pytest.raises(NomogramFileError, match="top level"):
        Nomogram.load(top)


def test_load_none_reads_the_bundled_file():
    bundled = models_dir() / "nomogram.json"
    if bundled.is_file():
        nomo = Nomogram.load()
        assert nomo.factor_names == (
            "dlr_score",
            "asthma",
            "allergic_rhinitis",
            "eosinophils_per_ul",
        )
    else:
        with pytest.raises(NomogramFileError, match="does not exist") as info:
            Nomogram.load()
        assert info.value.path == bundled


def test_file_is_strict_json_even_with_unknown_cutoff_metrics(nomogram, tmp_path):
    import dataclasses

    doc = nomogram.to_dict()
    doc["cutoff"]["sensitivity"] = None  # e.g. a hand-made nomogram without them
    path = tmp_path / "n.json"
    path.write_text(json.dumps(doc))
    loaded = Nomogram.load(path)
    assert math.isnan(loaded.cutoff_sensitivity)
    again = loaded.save(tmp_path / "again.json")
    text = again.read_text()
    assert "NaN" not in text and json.loads(text)["cutoff"]["sensitivity"] is None
    assert dataclasses.replace(loaded, title="Other").title == "Other"
