"""SinusApp never opens a network socket (DESIGN §7): the headless demo — DICOM scan, model,
nomogram, report — runs in a process where creating an internet socket or resolving a host
name raises, and no such attempt is recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GUARD = r"""
import socket, sys
attempts = []
_real_init = socket.socket.__init__
def _init(self, family=-1, type=-1, proto=-1, fileno=None):
    if family in (socket.AF_INET, socket.AF_INET6) and fileno is None:
        attempts.append(family)
        raise OSError("network access attempted")
    _real_init(self, family, type, proto, fileno)
socket.socket.__init__ = _init
def _no_dns(*a, **k):
    attempts.append("dns")
    raise OSError("host name lookup attempted")
socket.getaddrinfo = _no_dns
socket.gethostbyname = _no_dns
from sinusapp.cli import main
rc = main(["demo", "--headless", "--out", sys.argv[1], "--device", "cpu"])
import sinusapp.ui.main_window  # the GUI modules import cleanly under the guard too
print("ATTEMPTS", attempts)
sys.exit(rc if not attempts else 99)
"""


def test_headless_demo_opens_no_socket(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-c", GUARD, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ATTEMPTS []" in r.stdout
    assert (tmp_path / "out" / "report.pdf").is_file()
