"""Open the bundled demo study (a synthetic patient with bilateral ethmoid-predominant
disease) in the desktop application; with --headless, run the whole analysis on it and write
report.pdf and result.json into --out DIR (an IT smoke test that needs no screen).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sinusapp.errors import InputError
from sinusapp.resources import assets_dir

__all__ = ["add_arguments", "demo_clinical", "demo_dir", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no window: analyse the demo study and write report.pdf + result.json",
    )
    parser.add_argument("--out", metavar="DIR", help="output folder for --headless")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--overwrite", action="store_true", help="replace report.pdf / result.json in --out"
    )


def demo_dir() -> Path:
    """The bundled demo study's folder (DICOM series, clinical.json, reference SEG)."""
    d = assets_dir() / "demo"
    if not (d / "clinical.json").is_file():
        raise InputError(
            "the bundled demo study is missing",
            path=d,
            hint="reinstall SinusApp (or run `python -m sinusapp.synth.demo`)",
        )
    return d


def demo_clinical() -> dict[str, Any]:
    """The demo patient's clinical values (the form is pre-filled with them)."""
    data = json.loads((demo_dir() / "clinical.json").read_text(encoding="utf-8"))
    return dict(data.get("clinical", data))


def run(args: argparse.Namespace) -> int:
    if not args.headless:
        from sinusapp.ui import run_app

        return run_app(open_demo=True)
    if not args.out:
        raise InputError(
            "--headless needs --out DIR", hint="e.g. sinusapp demo --headless --out demo_out"
        )
    from sinusapp.cli.predict import print_summary
    from sinusapp.headless import run_headless

    out_dir = Path(args.out)
    d = demo_dir()
    ct = d / "ct" if (d / "ct").is_dir() else d
    labels = d / "sinus_labels.nii.gz"
    out = run_headless(
        ct,
        demo_clinical(),
        json_path=out_dir / "result.json",
        report_path=out_dir / "report.pdf",
        device=args.device,
        sinus_labels_path=labels if labels.is_file() else None,
        overwrite=args.overwrite,
    )
    print_summary(out)
    return 0
