"""sinusapp.ui: the Qt desktop application (the only package that imports PySide6 / pyqtgraph).

Importing this package is cheap: Qt is imported by :func:`run_app` (and by the submodules).
The lead's ``sinusapp demo`` command calls ``run_app(open_demo=True)``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_app"]


def run_app(
    *,
    import_path: str | Path | None = None,
    open_demo: bool = False,
    demo_dir: str | Path | None = None,
) -> int:
    """Open the desktop application; returns the exit status.

    Parameters
    ----------
    import_path:
        A folder, CD or DICOMDIR to import at start; its proposed series is opened.
    open_demo:
        Import and open the bundled demo study (``assets/demo``), fill its clinical form
        from ``clinical.json`` and show its reference segmentation.
    demo_dir:
        The demo study's folder (default ``assets/demo``; ``sinusapp demo`` passes the
        ``--study`` chosen, the real-anatomy one by default).
    """
    from sinusapp.ui.app import run_app as _run

    return _run(import_path=import_path, open_demo=open_demo, demo_dir=demo_dir)
