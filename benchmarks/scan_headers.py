"""Header scan of many files in one process, in CPU time as well as wall time (issue 15).

CPU time is hardly affected by other jobs on a shared machine, so this gives a usable ratio
where the wall-time benchmark (``benchmarks/load_series.py --only scan``) cannot. Compared,
interleaved, medians of 3: a bare ``dcmread(stop_before_pixels=True)`` loop, a
``read_header`` loop, ``scan(workers=1)`` and (where the version has it) ``scan`` again with
the catalogue as header cache.

Usage: ``python benchmarks/scan_headers.py FOLDER [TREE]`` — FOLDER holds the DICOM files
(e.g. the 3,000-file folder ``load_series.py --workdir DIR`` writes to DIR/scan), TREE a
SinusApp source tree to measure (default: this one; pass an older checkout for "before").
"""

from __future__ import annotations

import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

folder = Path(sys.argv[1])
tree = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parent.parent
sys.path.insert(0, str(tree))

import pydicom  # noqa: E402

from sinusapp.dicom.headers import read_header  # noqa: E402
from sinusapp.dicom.scan import scan  # noqa: E402

files = [str(p) for p in folder.rglob("*.dcm")]


def bare() -> None:
    for f in files:
        pydicom.dcmread(f, stop_before_pixels=True)


def headers() -> None:
    for f in files:
        read_header(f)


cands = {
    "bare dcmread loop": bare,
    "read_header loop": headers,
    "scan, one process": lambda: scan(folder, workers=1),
}
if "cache" in inspect.signature(scan).parameters:
    from sinusapp.dicom.catalogue import Catalogue

    db = Path(tempfile.mkdtemp()) / "catalogue.sqlite"
    scan(folder, cache=Catalogue(db), workers=1)
    cands["scan again, unchanged, catalogue"] = lambda: scan(folder, cache=Catalogue(db), workers=1)
cpu: dict[str, list[float]] = {k: [] for k in cands}
wall: dict[str, list[float]] = {k: [] for k in cands}
for _ in range(3):
    for k, fn in cands.items():
        t, w = time.process_time(), time.perf_counter()
        fn()
        cpu[k].append(time.process_time() - t)
        wall[k].append(time.perf_counter() - w)
b, bw = statistics.median(cpu["bare dcmread loop"]), statistics.median(wall["bare dcmread loop"])
print(f"tree {tree}, {len(files)} files")
print("| | CPU s | ratio | wall s | ratio |")
print("|---|---|---|---|---|")
for k in cands:
    c, w = statistics.median(cpu[k]), statistics.median(wall[k])
    print(f"| {k} | {c:.2f} | {c / b:.2f}× | {w:.2f} | {w / bw:.2f}× |")
