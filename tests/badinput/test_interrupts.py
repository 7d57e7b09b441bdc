"""Ctrl-C and SIGTERM give exit 130 / 143 with one line, never a traceback: during start-up
(building the parser imports every command) and during a command (issue 13)."""

from __future__ import annotations

import pytest

from sinusapp import cli


@pytest.mark.parametrize(
    ("exc", "rc", "word"),
    [(KeyboardInterrupt(), 130, "interrupted"), (cli.Terminated("signal 15"), 143, "terminated")],
    ids=["ctrl-c", "sigterm"],
)
@pytest.mark.parametrize("when", ["start-up", "command"])
def test_an_interrupt_is_one_line_and_its_exit_status(monkeypatch, capsys, exc, rc, word, when):
    def interrupted(*args, **kwargs):
        raise exc

    if when == "start-up":
        monkeypatch.setattr(cli, "build_parser", interrupted)
    else:
        monkeypatch.setattr("sinusapp.cli.scan.run", interrupted)
    assert cli.main(["scan", "."]) == rc
    err = capsys.readouterr().err
    assert err.strip().endswith(word) and "Traceback" not in err
