"""Open a bundled demo study in the desktop application; with --headless, run the whole
analysis on it and write report.pdf and result.json into --out DIR (an IT smoke test that
needs no screen).

Two studies ship: ``real`` (default), synthetic CRS placed in a real sinus CT crop (NasalSeg
P034, CC BY 4.0, see its ATTRIBUTION.txt), which is what surgeons will open; and ``phantom``,
the procedural head phantom with all sinuses labelled (ethmoid, frontal, sphenoid too).
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
    parser.add_argument(
        "--study",
        choices=sorted(DEMO_STUDIES),
        default="real",
        help="real: synthetic disease in a real sinus CT (default); phantom: the procedural "
        "head phantom",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--overwrite", action="store_true", help="replace report.pdf / result.json in --out"
    )


#: ``--study`` → (assets folder, the module that regenerates it).
DEMO_STUDIES: dict[str, tuple[str, str]] = {
    "real": ("demo_real", "sinusapp.synth.demo_real"),
    "phantom": ("demo", "sinusapp.synth.demo"),
}


def demo_dir(study: str = "phantom") -> Path:
    """A bundled demo study's folder (DICOM series, clinical.json, reference SEG)."""
    folder, module = DEMO_STUDIES[study]
    d = assets_dir() / folder
    if not (d / "clinical.json").is_file():
        raise InputError(
            f"the bundled {study} demo study is missing",
            path=d,
            hint=f"reinstall SinusApp (or run `python -m {module}`)",
        )
    return d


def demo_clinical(study: str = "phantom") -> dict[str, Any]:
    """The demo patient's clinical values (the form is pre-filled with them)."""
    data = json.loads((demo_dir(study) / "clinical.json").read_text(encoding="utf-8"))
    return dict(data.get("clinical", data))


def run(args: argparse.Namespace) -> int:
    if not args.headless:
        from sinusapp.ui import run_app

        return run_app(open_demo=True, demo_dir=demo_dir(args.study))
    if not args.out:
        raise InputError(
            "--headless needs --out DIR", hint="e.g. sinusapp demo --headless --out demo_out"
        )
    from sinusapp.cli.predict import print_summary
    from sinusapp.headless import run_headless

    out_dir = Path(args.out)
    d = demo_dir(args.study)
    ct = d / "ct" if (d / "ct").is_dir() else d
    # the phantom's label map covers every sinus; the real crop's only the maxillary sinuses
    # and nasal cavity, which the model's sinus head outlines itself (as on any patient)
    labels = d / "sinus_labels.nii.gz"
    out = run_headless(
        ct,
        demo_clinical(args.study),
        json_path=out_dir / "result.json",
        report_path=out_dir / "report.pdf",
        device=args.device,
        sinus_labels_path=labels if args.study == "phantom" and labels.is_file() else None,
        overwrite=args.overwrite,
    )
    print_summary(out)
    return 0
