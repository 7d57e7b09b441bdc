"""Benchmark: series → volume and header scanning, against SimpleITK and a bare pydicom loop.

Inputs are what a user meets (issue 15):

- a 300-slice 512×512 head CT written as real scanners write it: 12 of 16 bits stored,
  unsigned, RescaleIntercept -1024 (file names shuffled), uncompressed, JPEG-LS lossless and
  JPEG 2000 lossless (encoded by pydicom's pyjpegls / pylibjpeg-openjpeg plugins, as the
  synthetic-cohort writer does);
- the real Visible Human female head in ``../shared/data/realct`` (234 slices, JPEG-LS) when
  present;
- 3,000 small files in 30 series for the header scan, scanned cold (no catalogue) and a second
  time with the catalogue as ``sinusapp scan`` / ``predict`` do.

Every measurement is repeated ``--repeats`` times, the candidates interleaved within each
round (SinusApp, SimpleITK, ... then again), and the medians are compared, so a noisy shared
machine affects both sides alike. References:

- SimpleITK ``ImageSeriesReader`` (GDCM) on the same files (rescale applied, as ours);
- a plain pydicom loop (``dcmread`` + ``pixel_array`` + integer rescale to int16, sorted by
  position: what a script would do);
- a bare ``dcmread(stop_before_pixels=True)`` loop over the 3,000 files (parses, converts
  nothing).

Usage: ``python benchmarks/load_series.py [--repeats 5] [--workdir DIR]``; prints Markdown
tables for benchmarks/RESULTS.md. Needs the [dev] extra (SimpleITK). ``--workdir`` keeps the
generated series between runs (JPEG 2000 encoding takes about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
REALCT = Path(os.environ.get("SINUSAPP_REALCT", ROOT.parent / "shared" / "data" / "realct"))


def write_12bit_series(folder: Path, *, n: int, compress: str) -> None:
    """A 300×512×512 head phantom written with 12 bits stored, intercept -1024."""
    import pydicom
    from _dicomgen import ct_slice_dataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from sinusapp.model.testing import make_sinus_phantom

    if (folder / "done").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    vol, _ = make_sinus_phantom(shape=(n, 512, 512), spacing_mm=(0.625, 0.4, 0.4), seed=3)
    stored = np.clip(vol.array.astype(np.int32) + 1024, 0, 4095).astype("<u2")
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    tsyntax = {
        "none": ExplicitVRLittleEndian,
        "jpegls": pydicom.uid.JPEGLSLossless,
        "j2k": pydicom.uid.JPEG2000Lossless,
    }[compress]
    plugin = {"jpegls": "pyjpegls", "j2k": "pylibjpeg"}.get(compress, "")
    for k in range(n):
        ds = ct_slice_dataset(
            study=study,
            series=series,
            frame=frame,
            instance=k + 1,
            position=(-102.4, -102.4, 10.0 + 0.625 * k),
            rows=512,
            cols=512,
            patient=("BENCH^TWELVE", "B0012"),
            description="SINUS BONE 0.625",
            pixel_spacing=(0.4, 0.4),
            thickness=0.625,
            bits_stored=12,
        )
        ds.ConvolutionKernel = "BONE"
        ds.PixelRepresentation = 0
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
        ds.PixelData = stored[k].tobytes()
        if compress != "none":
            ds.compress(tsyntax, encoding_plugin=plugin, generate_instance_uid=False)
        name = f"{(k * 7919) % 100003:06d}.dcm"
        pydicom.dcmwrite(folder / name, ds, enforce_file_format=True)
    (folder / "done").write_text("ok")


def interleaved(cands: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median wall time of each candidate, the candidates interleaved within each round."""
    times: dict[str, list[float]] = {k: [] for k in cands}
    for _ in range(repeats):
        for name, fn in cands.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def load_candidates(
    folder: Path, n: int, *, with_pydicom_loop: bool = True
) -> dict[str, Callable[[], None]]:
    import pydicom
    import SimpleITK as sitk  # noqa: N813 (the library's own idiom)

    from sinusapp.dicom import load_volume, scan

    files = sorted(str(p) for p in folder.iterdir() if p.suffix == ".dcm")
    scanned = scan(folder)

    def sinusapp_load() -> None:
        v = load_volume(folder, scan_result=scanned)
        assert v.shape[0] == n, v.shape

    def sinusapp_scan_load() -> None:
        v = load_volume(folder)
        assert v.shape[0] == n, v.shape

    def sitk_load() -> None:
        reader = sitk.ImageSeriesReader()
        names = reader.GetGDCMSeriesFileNames(str(folder))
        reader.SetFileNames(names)
        arr = sitk.GetArrayFromImage(reader.Execute())
        assert arr.shape[0] == n, arr.shape

    def pydicom_loop() -> None:
        dss = [pydicom.dcmread(f) for f in files]
        dss.sort(key=lambda d: float(d.ImagePositionPatient[2]))
        out = np.empty((len(dss), dss[0].Rows, dss[0].Columns), np.int16)
        for k, d in enumerate(dss):
            out[k] = d.pixel_array.astype(np.int32) + int(d.RescaleIntercept)
        assert out.shape[0] == n

    cands = {
        "SinusApp load (headers from the scan)": sinusapp_load,
        "SinusApp scan + load": sinusapp_scan_load,
        "SimpleITK ImageSeriesReader": sitk_load,
    }
    if with_pydicom_loop:  # slow on compressed series (GDCM / OpenJPEG one slice at a time)
        cands["plain pydicom loop"] = pydicom_loop
    return cands


def print_table(title: str, res: dict[str, float], ref: str, repeats: int) -> None:
    print(f"| {title} | median of {repeats} (s) | ratio to {ref.split(' ')[0]} |")
    print("|---|---|---|")
    for k, v in res.items():
        print(f"| {k} | {v:.3f} | {v / res[ref]:.2f}× |")
    print()


def bench_scan(tmp: Path, n_files: int, repeats: int) -> None:
    import pydicom
    from _dicomgen import write_series

    from sinusapp.dicom import scan
    from sinusapp.dicom.catalogue import Catalogue

    scan_dir = tmp / "scan"
    per = 100
    if not (scan_dir / "done").exists():
        for s in range(n_files // per):
            write_series(scan_dir / f"s{s:03d}", n=per, rows=16, cols=16, seed=s)
        (scan_dir / "done").write_text("ok")
    scan_files = [str(p) for p in scan_dir.rglob("*.dcm")]

    def sinusapp_scan() -> None:
        r = scan(scan_dir)
        assert sum(x.n_instances for x in r.series) == len(scan_files)

    def sinusapp_scan_1proc() -> None:
        r = scan(scan_dir, workers=1)
        assert sum(x.n_instances for x in r.series) == len(scan_files)

    def plain_scan() -> None:
        for f in scan_files:
            pydicom.dcmread(f, stop_before_pixels=True)

    cands = {
        "bare dcmread(stop_before_pixels) loop": plain_scan,
        "SinusApp scan (grouped, ranked; default workers)": sinusapp_scan,
        "SinusApp scan, one process": sinusapp_scan_1proc,
    }
    if "cache" in inspect.signature(scan).parameters:  # not in versions before issue 15
        cat_dir = Path(tempfile.mkdtemp(dir=tmp))
        scan(scan_dir, cache=Catalogue(cat_dir / "catalogue.sqlite"))  # fill it once

        def sinusapp_rescan() -> None:
            r = scan(scan_dir, cache=Catalogue(cat_dir / "catalogue.sqlite"))
            assert sum(x.n_instances for x in r.series) == len(scan_files)

        cands["SinusApp scan again, unchanged folder, catalogue"] = sinusapp_rescan
    res = interleaved(cands, repeats)
    print_table(
        f"header scan of {len(scan_files)} files",
        res,
        "bare dcmread(stop_before_pixels) loop",
        repeats,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--scan-files", type=int, default=3000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--only",
        choices=["none", "jpegls", "j2k", "vhf", "scan"],
        action="append",
        help="run only these parts (repeatable); default all",
    )
    args = ap.parse_args()
    parts = args.only or ["none", "jpegls", "j2k", "vhf", "scan"]

    import pydicom
    import SimpleITK as sitk  # noqa: N813

    tmp_ctx = None
    if args.workdir is None:
        tmp_ctx = tempfile.TemporaryDirectory()
        work = Path(tmp_ctx.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at start, Python {platform.python_version()}, "
        f"pydicom {pydicom.__version__}, SimpleITK {sitk.Version_VersionString()}"
    )
    print()
    for comp in ("none", "jpegls", "j2k"):
        if comp not in parts:
            continue
        folder = work / f"ct12_{comp}_{args.slices}"
        write_12bit_series(folder, n=args.slices, compress=comp)
        cands = load_candidates(folder, args.slices, with_pydicom_loop=comp == "none")
        res = interleaved(cands, args.repeats)
        label = {"none": "uncompressed", "jpegls": "JPEG-LS lossless", "j2k": "JPEG 2000 lossless"}
        print_table(
            f"{args.slices}×512×512, 12 bits stored, {label[comp]}",
            res,
            "SimpleITK ImageSeriesReader",
            args.repeats,
        )
    vhf = REALCT / "vhf_visible_human_female_head" / "dicom"
    if "vhf" in parts and vhf.is_dir():
        n = sum(1 for p in vhf.iterdir() if p.suffix == ".dcm")
        res = interleaved(load_candidates(vhf, n, with_pydicom_loop=False), args.repeats)
        print_table(
            f"real head: VHF, {n}×512×512, JPEG-LS",
            res,
            "SimpleITK ImageSeriesReader",
            args.repeats,
        )
    if "scan" in parts:
        bench_scan(work, args.scan_files, args.repeats)
    if tmp_ctx is not None:
        tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
