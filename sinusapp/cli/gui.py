"""Open the SinusApp desktop application, optionally importing a DICOM folder / CD / DICOMDIR."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``sinusapp gui``."""
    parser.add_argument(
        "path",
        nargs="?",
        default=None,
        metavar="PATH",
        help="folder, CD or DICOMDIR to import and open at start",
    )


def run(args: argparse.Namespace) -> int:
    """Run the GUI until its window closes (Qt is imported only here)."""
    from sinusapp.ui import run_app

    return run_app(import_path=getattr(args, "path", None))
