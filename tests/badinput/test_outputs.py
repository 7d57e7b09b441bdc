"""Outputs never destroy anything: no device, input, other output or existing file replaced;
every output path checked before the analysis; SIGTERM cleans up like Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _badinput import slices

from sinusapp.atomic import check_output_paths, write_bytes_atomic
from sinusapp.errors import OutputError

pytestmark = pytest.mark.usefixtures("fake_model")


def test_a_device_or_fifo_target_is_refused_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        write_bytes_atomic(b"{}", fifo, what="the result JSON")
    assert fifo.is_fifo()
    assert not list(tmp_path.glob(".*.tmp"))


def test_predict_refuses_a_fifo_as_json(ct, tmp_path, cli, predict_args) -> None:
    fifo = tmp_path / "result.json"
    os.mkfifo(fifo)
    rc, _, err = cli(*predict_args(ct, "--json", str(fifo), "--overwrite"))
    assert rc == 2 and "not a regular file" in err
    assert fifo.is_fifo()


@pytest.mark.parametrize("option", ["--json", "--seg", "--report"])
def test_an_output_on_an_input_slice_is_refused_even_with_overwrite(
    ct, cli, predict_args, option
) -> None:
    victim = slices(ct)[5]
    before = victim.read_bytes()
    rc, _, err = cli(*predict_args(ct, option, str(victim), "--overwrite"))
    assert rc == 2 and "input" in err and option in err
    assert victim.read_bytes() == before


def test_an_output_on_the_nomogram_file_is_refused(ct, cli, predict_args, nomogram_file) -> None:
    before = nomogram_file.read_bytes()
    rc, _, err = cli(*predict_args(ct, "--json", str(nomogram_file), "--overwrite"))
    assert rc == 2 and "input" in err
    assert nomogram_file.read_bytes() == before


def test_an_existing_file_is_kept_unless_overwrite(ct, tmp_path, cli, predict_args) -> None:
    keep = tmp_path / "notes.json"
    keep.write_text("precious")
    keep.chmod(0o444)
    rc, _, err = cli(*predict_args(ct, "--json", str(keep)))
    assert rc == 2 and "already exists" in err and "--overwrite" in err
    assert keep.read_text() == "precious"
    keep.chmod(0o644)
    rc, _out, err = cli(*predict_args(ct, "--json", str(keep), "--overwrite"))
    assert rc == 0, err
    assert json.loads(keep.read_text())["dlr_score"] == pytest.approx(0.5)


def test_two_outputs_on_one_path_are_refused(ct, tmp_path, cli, predict_args) -> None:
    same = tmp_path / "out.pdf"
    rc, _, err = cli(*predict_args(ct, "--json", str(same), "--report", str(same)))
    assert rc == 2 and "same file" in err
    assert not same.exists()


@pytest.mark.parametrize(
    "bad_report",
    [
        lambda tmp: str(tmp),  # a folder
        lambda tmp: "",  # empty
        lambda tmp: str(tmp / ("r" * 250 + ".pdf")),  # its temporary name exceeds 255 bytes
        lambda tmp: "/proc/sinusapp-report.pdf",
    ],
    ids=["folder", "empty", "name-too-long", "proc"],
)
def test_a_bad_report_path_fails_before_the_analysis(
    ct, tmp_path, cli, predict_args, bad_report
) -> None:
    json_out = tmp_path / "result.json"
    rc, out, err = cli(*predict_args(ct, "--json", str(json_out), "--report", bad_report(tmp_path)))
    assert rc == 2, err
    assert "--report" in err or "report" in err
    assert not json_out.exists(), "an output was written although another one was bad"
    assert "DLR-score" not in out


def test_a_result_inside_the_ct_folder_is_allowed_but_never_over_a_slice(ct) -> None:
    # a new result next to the slices is fine, an old one needs overwrite; slices never
    got = check_output_paths({"--json": ct / "result.json"}, inputs=[ct])
    assert got["--json"] == ct / "result.json"
    (ct / "result.json").write_text("{}")
    with pytest.raises(OutputError, match="already exists"):
        check_output_paths({"--json": ct / "result.json"}, inputs=[ct])
    assert check_output_paths({"--json": ct / "result.json"}, inputs=[ct], overwrite=True)
    with pytest.raises(OutputError, match="input"):
        check_output_paths({"--json": slices(ct)[0]}, inputs=[ct], overwrite=True)


def test_train_refuses_to_replace_an_existing_bundle(tmp_path, cli) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    rc, _, err = cli("train", str(tmp_path), "--out", str(bundle))
    assert rc == 2 and "already holds a model bundle" in err and "--overwrite" in err
    assert (bundle / "manifest.json").read_text() == "{}"


_SLOW_WRITE = textwrap.dedent(
    """
    import os, sys, time
    from sinusapp import atomic, cli
    cli._install_sigterm()
    def slow_fsync(fd):
        print("writing", flush=True)
        time.sleep(30)
    atomic.os.fsync = slow_fsync
    try:
        atomic.write_bytes_atomic(b"x" * 1000, sys.argv[1])
    except cli.Terminated:
        sys.exit(143)
    """
)


@pytest.mark.timeout(60)
def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITE, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    assert list(tmp_path.glob(".result.json.*.tmp")), "the temporary file should exist now"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 143
    assert not list(tmp_path.glob(".*.tmp")) and not target.exists()


_SLOW_SCAN = textwrap.dedent(
    """
    import importlib, sys, time
    from sinusapp import cli
    scan_mod = importlib.import_module("sinusapp.dicom.scan")
    cli._install_sigterm()
    def slow_chunk(paths):
        time.sleep(60)
        return []
    scan_mod._read_chunk = slow_chunk
    files = [f"/nonexistent/{k}.dcm" for k in range(200)]
    try:
        for _ in scan_mod.read_headers(files, workers=2):
            pass
    except cli.Terminated:
        sys.exit(143)
    """
)


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.update(int(t) for t in text)
    return out


@pytest.mark.timeout(60)
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_sigterm_during_a_parallel_scan_stops_the_workers() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SCAN])
    workers: set[int] = set()
    deadline = time.monotonic() + 30
    while len(workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = _children(proc.pid)
    assert len(workers) >= 2, "the scan did not start its worker processes"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 143
    time.sleep(0.5)
    alive = {w for w in workers if Path(f"/proc/{w}").exists()}
    assert not alive, f"worker processes still running after SIGTERM: {alive}"
