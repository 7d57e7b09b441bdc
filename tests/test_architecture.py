"""Architecture contracts: only sinusapp/ui imports Qt; importing the logic does not load Qt
or torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "sinusapp"
QT_MODULES = ("PySide6", "pyqtgraph", "shiboken6", "PyQt5", "PyQt6")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_qt_import_outside_ui() -> None:
    offenders = []
    for py in PKG.rglob("*.py"):
        if (PKG / "ui") in py.parents:
            continue
        bad = _imports(py) & set(QT_MODULES)
        if bad:
            offenders.append(f"{py.relative_to(PKG.parent)} imports {sorted(bad)}")
    assert not offenders, "Qt imported outside sinusapp/ui:\n" + "\n".join(offenders)


def test_import_linter_contract() -> None:
    """The same rule through import-linter (the contract lives in pyproject.toml)."""
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    r = subprocess.run([str(lint)], capture_output=True, text=True, cwd=PKG.parent)
    assert r.returncode == 0, r.stdout + r.stderr


def test_logic_import_loads_neither_qt_nor_torch() -> None:
    code = (
        "import sys, importlib\n"
        "for m in ('sinusapp', 'sinusapp.dicom', 'sinusapp.imaging', 'sinusapp.pipeline',\n"
        "          'sinusapp.cli'):\n"
        "    importlib.import_module(m)\n"
        "bad = [m for m in ('torch', 'PySide6', 'pyqtgraph') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "", f"imported at start-up: {r.stdout.strip()}"


def test_import_linter_contract_lists_every_logic_module() -> None:
    """A new top-level module must join the contract (else it could import Qt unchecked)."""
    import pkgutil
    import tomllib

    import sinusapp

    config = tomllib.loads((PKG.parent / "pyproject.toml").read_text(encoding="utf-8"))
    contract = config["tool"]["importlinter"]["contracts"][0]
    listed = set(contract["source_modules"])
    modules = {f"sinusapp.{m.name}" for m in pkgutil.iter_modules(sinusapp.__path__)}
    assert modules - listed == {"sinusapp.ui"}, sorted(modules - listed - {"sinusapp.ui"})
    assert contract["allow_indirect_imports"] is False


def _layers_contracts() -> list[dict]:
    import tomllib

    config = tomllib.loads((PKG.parent / "pyproject.toml").read_text(encoding="utf-8"))
    return [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]


def test_layers_contract_puts_the_evaluation_above_stats_and_nomogram() -> None:
    """ui > report | evaluation > pipeline > nomogram | model > stats; dicom > imaging."""
    layers = [c["layers"] for c in _layers_contracts()]
    assert [
        "sinusapp.ui",
        "sinusapp.report | sinusapp.evaluation",
        "sinusapp.pipeline",
        "sinusapp.nomogram | sinusapp.model",
        "sinusapp.stats",
    ] in layers
    assert ["sinusapp.dicom", "sinusapp.imaging"] in layers
    assert not (PKG / "stats" / "evaluation.py").exists(), "the evaluation report left stats"


def test_layers_contract_catches_an_upward_import(tmp_path: Path) -> None:
    """The contract can fail: a copy of the package where stats imports the nomogram breaks it."""
    import shutil

    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    shutil.copytree(PKG, tmp_path / "sinusapp", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PKG.parent / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "sinusapp" / "stats" / "_upward.py").write_text(
        "from sinusapp.nomogram import Nomogram  # noqa: F401\n", encoding="utf-8"
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [str(lint), "--no-cache"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert r.returncode != 0, r.stdout
    assert "sinusapp.stats._upward -> sinusapp.nomogram" in r.stdout, r.stdout
