"""The ``sinusapp`` command: the headless face of SinusApp.

Every sub-command is one module of this package (``sinusapp.cli.<command>``) with
``add_arguments(parser)`` and ``run(args) -> int``; its heavy imports (numpy, torch, Qt, the
pipeline) happen inside ``run``, so building the parser and ``--help`` stay light. This module
is the one error boundary of all of them: it routes, configures logging (inside the boundary)
and maps errors to exit codes that scripts can rely on:

- 0: success
- 2: bad input (a :class:`~sinusapp.errors.SinusAppError`); the message says what to do
- 1: internal error; the traceback is in the log file, whose path is printed
- 130 / 143: interrupted by Ctrl-C / terminated by SIGTERM (temporary files removed first)

Logging is set up inside the error boundary (an unusable ``SINUSAPP_HOME`` is a clear error,
not a traceback), and SIGTERM is turned into :class:`Terminated` (a ``KeyboardInterrupt``),
so a ``kill`` cleans up exactly as Ctrl-C does: half-written temporary files are removed and
header-reading worker processes are stopped.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import ModuleType

from sinusapp._version import __version__
from sinusapp.errors import SinusAppError

__all__ = ["Terminated", "main"]

log = logging.getLogger("sinusapp")

#: command name → (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "gui": ("sinusapp.cli.gui", "open the desktop application (optionally importing PATH)"),
    "demo": ("sinusapp.cli.demo", "open the bundled demo study; --headless writes report + JSON"),
    "scan": ("sinusapp.cli.scan", "list patients / studies / series under PATH, ranked"),
    "predict": ("sinusapp.cli.predict", "run the whole analysis on a CT, headless"),
    "synth": ("sinusapp.cli.synth", "write a synthetic sinus CT cohort"),
    "train": ("sinusapp.cli.train", "train a model bundle (5-fold CV + final fit)"),
    "evaluate": ("sinusapp.cli.evaluate", "paper-style evaluation of a bundle on a dataset"),
    "batch": ("sinusapp.cli.batch", "score many studies on a Dask cluster (research batches)"),
}


def _load(name: str) -> ModuleType | None:
    module_name = COMMANDS[name][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None  # command not built into this version
        raise


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="sinusapp",
        description=(
            "SinusApp: preoperative risk of chronic rhinosinusitis recurrence from sinus CT "
            "and clinical factors. Run without a command to open the desktop application."
        ),
    )
    parser.add_argument("--version", action="version", version=f"sinusapp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        module = _load(name)
        if module is None:
            continue
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM received: unwinds like Ctrl-C (every ``finally`` and cleanup runs)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated(f"terminated by signal {signum}")


def _install_sigterm() -> object | None:
    """Turn SIGTERM into :class:`Terminated`; return the previous handler (None if not set)."""
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # not the main thread / no SIGTERM
        return None


def _configure_logging(*, verbose: bool) -> str:
    from sinusapp.errors import InputError
    from sinusapp.paths import log_path

    if os.environ.get("RANK", "0") not in ("", "0") and os.environ.get("WORLD_SIZE", "1") != "1":
        # a torchrun worker other than rank 0 (distributed training) writes no log file, and
        # no other file: rank 0 logs the run; this one reports warnings on stderr
        sh0 = logging.StreamHandler(sys.stderr)
        sh0.setLevel(logging.DEBUG if verbose else logging.WARNING)
        sh0.setFormatter(logging.Formatter(f"rank {os.environ['RANK']} %(levelname)s: %(message)s"))
        logging.getLogger().setLevel(logging.DEBUG)
        logging.getLogger().addHandler(sh0)
        return f"(rank {os.environ['RANK']} writes no log file: see rank 0's)"
    path = log_path()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    try:
        fh = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot open the log file: {exc.strerror or exc}",
            path=path,
            hint="set SINUSAPP_HOME to a folder you can write to (or unset it)",
        ) from exc
    fh.setLevel(logging.DEBUG)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    sh = logging.StreamHandler(sys.stderr)
    sh.setLevel(logging.DEBUG if verbose else logging.WARNING)
    sh.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    # main() called again in one process (tests, batch scripts): replace the handlers of the
    # previous call, whose stderr may be gone, instead of logging every line twice
    for old in [h for h in root.handlers if getattr(h, "_sinusapp_cli", False)]:
        root.removeHandler(old)
        old.close()
    for h in (fh, sh):
        h._sinusapp_cli = True  # type: ignore[attr-defined]
        root.addHandler(h)
    return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sinusapp`` console script; returns the exit status."""
    previous = _install_sigterm()
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:  # Ctrl-C during start-up (imports): no traceback
        print("interrupted", file=sys.stderr)
        return 130
    command = getattr(args, "command", None) or "gui"
    log_file = "(no log file)"
    try:
        log_file = _configure_logging(verbose=args.verbose)
        module = getattr(args, "_module", None)
        if module is None:
            gui = _load("gui")
            if gui is None:
                parser.print_help()
                return 0
            args = parser.parse_args(["gui", *(argv or [])] if argv else ["gui"])
            module = args._module
        return int(module.run(args) or 0)
    except SinusAppError as exc:
        log.info("input error: %s", exc)
        print(f"sinusapp {command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        log.warning("'sinusapp %s' terminated by SIGTERM", command)
        print("terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`sinusapp scan --json PATH | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception:
        log.exception("internal error in 'sinusapp %s'", command)
        print(
            f"sinusapp {command}: internal error — details in the log file {log_file}",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
