"""Speed-up of `sinusapp batch` with 1 and 2 local Dask workers, for benchmarks/RESULTS.md
"batch".

Run: ``python benchmarks/batch_scaling.py [--cases 4] [--workers 1,2] [--fake]``. Writes a
synthetic cohort (``sinusapp synth --low-res``, centre A and B) once, then scores the same
studies with a fresh local cluster of each worker count into a fresh output folder (nothing
is skipped) and reports the wall time of the whole batch (cluster start-up, one model load
per worker, every study) and the median time per study. ``--fake`` measures the
orchestration with the fake predictor; default: the bundled model on the CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=4, help="cases per centre (studies = 2×)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    parser.add_argument("--fake", action="store_true", help="the fake predictor (no network)")
    parser.add_argument("--keep", type=Path, default=None, help="cohort folder to (re)use")
    args = parser.parse_args()
    from sinusapp.batch import ModelSpec, read_studies, run_batch
    from sinusapp.cli import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("SINUSAPP_HOME", str(Path(tmp) / "home"))
        cohort = args.keep or Path(tmp) / "cohort"
        if not (cohort / "clinical.csv").is_file():
            synth = ["synth", "--out", str(cohort), "--cases", str(args.cases), "--low-res"]
            assert cli([*synth, "--preset", "paper"]) == 0
        studies = read_studies(cohort)
        print(
            f"{len(studies)} studies, {'fake predictor' if args.fake else 'bundled model, CPU'}; "
            f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
        )
        base = None
        for n in [int(w) for w in args.workers.split(",")]:
            out = Path(tmp) / f"out_{n}"
            t0 = time.perf_counter()
            summary = run_batch(
                studies,
                out_dir=out,
                spec=ModelSpec(fake=args.fake, device="cpu"),
                workers=n,
                progress=False,
            )
            wall = time.perf_counter() - t0
            per = [float(r["seconds"]) for r in summary.rows if r["seconds"] != ""]
            base = base or wall
            print(
                f"workers {n}: {wall:.1f} s for {summary.scored} studies "
                f"({summary.failed} failed), median {statistics.median(per):.1f} s per study "
                f"inside a task, speed-up ×{base / wall:.2f}"
            )


if __name__ == "__main__":
    main()
