"""The commands live in one package, sinusapp.cli, behind one error boundary; building the
parser (every `sinusapp` call, `--help`) imports none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

from sinusapp.cli import COMMANDS


def test_every_command_is_a_module_of_sinusapp_cli() -> None:
    assert set(COMMANDS) == {
        "gui",
        "demo",
        "scan",
        "predict",
        "synth",
        "train",
        "evaluate",
        "batch",
    }
    for module, _ in COMMANDS.values():
        assert module.startswith("sinusapp.cli."), module


def test_building_the_parser_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from sinusapp.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = ('numpy', 'scipy', 'pydicom', 'torch', 'PySide6', 'matplotlib')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "", f"imported while building the parser: {r.stdout.strip()}"


def test_synth_choices_match_the_generator() -> None:
    from sinusapp.cli.synth import CENTER_NAMES, COMPRESSION_NAMES
    from sinusapp.synth.cohort import CENTERS
    from sinusapp.synth.dicomio import COMPRESSIONS

    assert tuple(sorted(CENTERS)) == CENTER_NAMES
    assert tuple(sorted(COMPRESSIONS)) == COMPRESSION_NAMES


def test_python_m_sinusapp_cli_runs_the_command() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "sinusapp.cli", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.startswith("sinusapp ")
