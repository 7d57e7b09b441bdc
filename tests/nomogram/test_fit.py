"""The documented fitting path: clinical.csv + DLR-scores CSV → nomogram JSON."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sinusapp.errors import InputError
from sinusapp.nomogram import Nomogram
from sinusapp.nomogram.fit import fit_nomogram_file, main, parse_value


def _write(cohort, folder: Path) -> tuple[Path, Path]:
    clinical = folder / "clinical.csv"
    scores = folder / "scores.csv"
    n = len(cohort["recurrence"])
    with clinical.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["case_id", "recurrence", "asthma", "allergic_rhinitis", "eosinophils_per_ul", "cohort"]
        )
        for i in range(n):
            w.writerow(
                [
                    f"c{i:03d}",
                    int(cohort["recurrence"][i]),
                    "yes" if cohort["asthma"][i] else "no",
                    "yes" if cohort["allergic_rhinitis"][i] else "no",
                    cohort["eosinophils_per_ul"][i],
                    "train" if i < 250 else "test",
                ]
            )
    with scores.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case_id", "dlr_score"])
        for i in range(n):
            w.writerow([f"c{i:03d}", repr(float(cohort["dlr_score"][i]))])
    return clinical, scores


def test_fit_from_csv_files_uses_the_training_rows(cohort, tmp_path):
    clinical, scores = _write(cohort, tmp_path)
    out = tmp_path / "models" / "nomogram.json"
    nomo = fit_nomogram_file(clinical, scores, out=out)
    assert nomo.training.n == 250
    direct = Nomogram.fit({k: v[:250] for k, v in cohort.items()})
    assert dict(nomo.coefficients) == pytest.approx(dict(direct.coefficients), rel=1e-9)
    assert Nomogram.load(out).to_dict() == nomo.to_dict()
    assert "250 'train' cases" in nomo.training.description


def test_command_line_and_missing_scores(cohort, tmp_path):
    clinical, scores = _write(cohort, tmp_path)
    assert main([str(clinical), str(scores), "--out", str(tmp_path / "n.json")]) == 0
    assert (tmp_path / "n.json").is_file()
    lines = scores.read_text().splitlines()
    scores.write_text("\n".join(lines[:100]) + "\n")
    with pytest.raises(InputError, match="has no DLR-score"):
        fit_nomogram_file(clinical, scores, out=tmp_path / "x.json")
    assert main([str(clinical), str(scores), "--out", str(tmp_path / "y.json")]) == 2


def test_parse_value():
    assert parse_value(" Yes ") is True and parse_value("false") is False
    assert parse_value("1") == 1.0 and parse_value("450") == 450.0
    assert parse_value("") is None and parse_value("NA") is None
    assert parse_value("female") == "female"
