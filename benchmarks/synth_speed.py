"""Speed of the synthetic cohort generator (sinusapp.synth), for benchmarks/RESULTS.md "synth".

Run: ``python benchmarks/synth_speed.py [--cases 10]``. Measures, per case of centre A:
- low-res render in memory (1 mm isotropic sinus region, 144 × 144 × 105), what a training
  loop would call to generate cases on the fly (target ≤ 1 s on 2 cores);
- low-res render + writing DICOM CT + SEG + NIfTI;
- one full-resolution case (512², the centre's spacing) render + write.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from sinusapp.synth.cohort import sample_cohort
from sinusapp.synth.write import WriteOptions, render_case, write_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=10)
    args = parser.parse_args()
    cases = sample_cohort(n_cases=args.cases, seed=2024, center="A")
    render_case(cases[0], low_res=True)  # warm-up (imports, caches)
    t_render = []
    for c in cases:
        t = time.perf_counter()
        ph, _ = render_case(c, low_res=True)
        t_render.append(time.perf_counter() - t)
    t_write = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in cases:
            t = time.perf_counter()
            write_case(c, out_dir=Path(tmp), options=WriteOptions(low_res=True))
            t_write.append(time.perf_counter() - t)
        t = time.perf_counter()
        write_case(cases[0], out_dir=Path(tmp) / "full", options=WriteOptions())
        t_full = time.perf_counter() - t
        size_mb = (
            sum(p.stat().st_size for p in (Path(tmp) / "full").rglob("*") if p.is_file()) / 1e6
        )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"Python {platform.python_version()}"
    )
    print(f"low-res shape {ph.hu.shape} (1 mm)")
    print(
        f"low-res render, in memory: median {statistics.median(t_render):.3f} s, "
        f"max {max(t_render):.3f} s over {len(cases)} cases"
    )
    print(
        f"low-res render + write DICOM/SEG/NIfTI: median {statistics.median(t_write):.3f} s, "
        f"max {max(t_write):.3f} s"
    )
    print(
        f"full-resolution case (512², {cases[0].scanner_params}): {t_full:.1f} s, "
        f"{size_mb:.0f} MB uncompressed"
    )


if __name__ == "__main__":
    main()
