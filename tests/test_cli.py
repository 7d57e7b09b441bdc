"""The `sinusapp` command: version, help for every command, scan output, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sinusapp import __version__
from sinusapp.cli import COMMANDS, build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_every_available_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"scan"} <= set(sub.choices)
    for name in sub.choices:
        assert name in COMMANDS
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: sinusapp " + name in capsys.readouterr().out


def test_scan_json_and_table(
    tmp_path: Path, series_writer, capsys: pytest.CaptureFixture[str]
) -> None:
    uid, _ = series_writer(tmp_path / "s", n=25)
    assert main(["scan", str(tmp_path / "s"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["proposed_series_instance_uid"] == uid
    series = data["patients"][0]["studies"][0]["series"][0]
    assert series["candidate"]["eligible"] and series["frames"] == 25
    assert main(["scan", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "Proposed for analysis" in out and "TEST BONE" in out


def test_bad_input_exits_2_with_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "missing" in err


def test_console_script_runs_without_qt_or_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from sinusapp.cli import main; rc = main(['scan', sys.argv[1], '--json']);"
        "bad = [m for m in ('torch', 'PySide6', 'pyqtgraph') if m in sys.modules];"
        "sys.exit(rc if not bad else 10)"
    )
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_predict_summary_says_not_assessed_and_the_score_over_graded_sinuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from types import SimpleNamespace

    from sinusapp.cli.predict import print_summary

    result = SimpleNamespace(
        volume=SimpleNamespace(info=SimpleNamespace(series_description="AX"), shape=(50, 8, 8)),
        dlr_score=0.3,
        lesion_volume_ml=5.0,
        per_sinus={
            "maxillary_L": {"volume_ml": 15.0, "opacification_pct": 40.4, "lund_mackay": 1.0},
            "maxillary_R": {"volume_ml": 14.0, "opacification_pct": float("nan")},
            "frontal": {"volume_ml": 4.0},
            "sphenoid": {"volume_ml": 0.0},
        },
        sinus_labels_source="model + anchored",
        probability=0.4,
        probability_ci95=(0.2, 0.6),
        risk_group="low",
        cutoff=0.7,
        warnings=(),
        quality=(),
        model=None,
    )
    print_summary(SimpleNamespace(result=result, json_path=None, report_path=None, seg_path=None))
    out = capsys.readouterr().out
    assert "maxillary_L 40 %, maxillary_R not assessed, frontal not assessed" in out
    assert "Lund–Mackay 1 / 2" in out and "not found: sphenoid" in out
    # the badge's and the report's words, not "risk group: low (cutoff 0.700)"
    assert "40 % (95 % CI 20 % to 60 %); Low risk: below the 70 % cutoff" in out
