"""Benchmark: series → volume and header scanning, against SimpleITK and plain pydicom.

Generates (in a temporary folder) a 300-slice 512×512 CT series and a folder of 3,000 small
DICOM files, then times in one process, one run:

- SinusApp ``load_volume`` (scan headers + geometry + decode + rescale, int16 HU)
- SimpleITK ``ImageSeriesReader`` (GDCM) on the same files
- a plain pydicom loop (dcmread + pixel_array + rescale, sorted by position)
- SinusApp ``scan`` of 3,000 files vs. a plain ``dcmread(stop_before_pixels=True)`` loop

Usage: ``python benchmarks/load_series.py [--repeats 3]``; prints a Markdown table for
benchmarks/RESULTS.md. Needs the [dev] extra (SimpleITK).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _dicomgen import write_series


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--scan-files", type=int, default=3000)
    args = ap.parse_args()

    import pydicom
    import SimpleITK as sitk  # noqa: N813 (the library's own idiom)

    from sinusapp.dicom import load_volume, scan

    with tempfile.TemporaryDirectory() as tmp:
        series_dir = Path(tmp) / "series"
        write_series(
            series_dir,
            n=args.slices,
            rows=512,
            cols=512,
            spacing=0.625,
            names=lambda k: f"{(k * 7919) % 100003:06d}.dcm",
        )
        files = sorted(str(p) for p in series_dir.iterdir())

        def sinusapp_load() -> None:
            v = load_volume(series_dir)
            assert v.shape == (args.slices, 512, 512)

        def sitk_load() -> None:
            reader = sitk.ImageSeriesReader()
            names = reader.GetGDCMSeriesFileNames(str(series_dir))
            reader.SetFileNames(names)
            img = reader.Execute()
            arr = sitk.GetArrayFromImage(img)
            assert arr.shape == (args.slices, 512, 512)

        def pydicom_loop() -> None:
            dss = [pydicom.dcmread(f) for f in files]
            dss.sort(key=lambda d: float(d.ImagePositionPatient[2]))
            arr = np.stack(
                [d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in dss]
            )
            assert arr.shape[0] == args.slices

        t_sinus = best_of(sinusapp_load, args.repeats)
        t_sitk = best_of(sitk_load, args.repeats)
        t_plain = best_of(pydicom_loop, args.repeats)

        scan_dir = Path(tmp) / "scan"
        per = 100
        for s in range(args.scan_files // per):
            write_series(scan_dir / f"s{s:03d}", n=per, rows=16, cols=16, seed=s)
        scan_files = [str(p) for p in scan_dir.rglob("*.dcm")]

        def sinusapp_scan() -> None:
            r = scan(scan_dir)
            assert sum(x.n_instances for x in r.series) == len(scan_files)

        def plain_scan() -> None:
            for f in scan_files:
                pydicom.dcmread(f, stop_before_pixels=True)

        t_scan = best_of(sinusapp_scan, 1)
        t_scan_plain = best_of(plain_scan, 1)

    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, pydicom {pydicom.__version__}, "
        f"SimpleITK {sitk.Version_VersionString()}"
    )
    print()
    print(
        f"| task ({args.slices}×512×512 int16, uncompressed) "
        f"| best of {args.repeats} (s) | ratio to SimpleITK |"
    )
    print("|---|---|---|")
    print(f"| SinusApp load_volume | {t_sinus:.2f} | {t_sinus / t_sitk:.2f}× |")
    print(f"| SimpleITK ImageSeriesReader | {t_sitk:.2f} | 1.00× |")
    print(f"| plain pydicom loop | {t_plain:.2f} | {t_plain / t_sitk:.2f}× |")
    print()
    print(f"| header scan of {len(scan_files)} files | s | ratio to plain loop |")
    print("|---|---|---|")
    print(
        f"| SinusApp scan (parallel, grouped, ranked) | {t_scan:.2f} "
        f"| {t_scan / t_scan_plain:.2f}× |"
    )
    print(f"| plain dcmread(stop_before_pixels) loop | {t_scan_plain:.2f} | 1.00× |")


if __name__ == "__main__":
    main()
