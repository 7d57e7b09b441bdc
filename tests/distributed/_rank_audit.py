"""Run the ``sinusapp`` command (under torchrun) and report every file-system write it makes
under the folders in ``SINUSAPP_AUDIT_WATCH`` (os.pathsep-separated).

Python audit hooks see every ``open`` for writing, ``mkdir``, ``rename`` / ``replace``,
``remove`` ...; at exit one line ``AUDIT <rank> <json list of paths>`` goes to stdout. The
distributed-training test checks that rank 1 writes nothing and that rank 0 (which writes the
checkpoints and the bundle) is seen writing, so the check itself can fail.
"""

from __future__ import annotations

import atexit
import json
import os
import sys

_WATCH = [
    os.path.realpath(p) for p in os.environ.get("SINUSAPP_AUDIT_WATCH", "").split(os.pathsep) if p
]
_WRITES: list[str] = []
_PATH_EVENTS = {
    "os.mkdir",
    "os.remove",
    "os.rmdir",
    "os.rename",
    "os.truncate",
    "os.symlink",
    "os.link",
    "os.chmod",
    "os.utime",
    "shutil.rmtree",
    "shutil.copyfile",
    "shutil.move",
}


def _note(path: object) -> None:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        return  # a file descriptor
    real = os.path.realpath(os.fspath(path))
    if any(real == w or real.startswith(w + os.sep) for w in _WATCH):
        _WRITES.append(real)


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event == "open":
        path, mode, flags = (*args, None, None, None)[:3]
        writes = isinstance(mode, str) and any(c in mode for c in "wax+")
        if isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC):
            writes = True
        if writes:
            _note(path)
    elif event in _PATH_EVENTS:
        for a in (
            args[:2]
            if event in ("os.rename", "os.link", "shutil.copyfile", "shutil.move")
            else args[:1]
        ):
            _note(a)


def _report() -> None:
    sys.stdout.write(f"AUDIT {os.environ.get('RANK', '?')} {json.dumps(sorted(set(_WRITES)))}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.addaudithook(_hook)
    atexit.register(_report)
    from sinusapp.cli import main

    sys.exit(main(sys.argv[1:]))
