"""Benchmark: the Predictor on a generated 300-slice 512×512 head CT, split by stage.

Usage (from the repository root)::

    python benchmarks/predict.py [--bundle DIR] [--device cpu|cuda|auto] [--threads 2]
                                 [--repeat 3] [--results benchmarks/RESULTS.md]

Without ``--bundle`` it uses the bundled model (``models/sinus_unet``) when present, else a
bundle with random weights and the default architecture (same cost). Reports wall time per
stage (locate, resample, network, map back), model load time, and peak resident memory
relative to the CT's int16 size (DESIGN §7: ≤ 4× + the model). ``--results`` appends (or
replaces) the "predict" section of the results file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _random_bundle(folder: Path) -> Path:
    import torch

    from sinusapp.model.bundle import save_bundle
    from sinusapp.model.config import NetworkConfig, PreprocessConfig
    from sinusapp.model.network import UNet3D

    torch.manual_seed(0)
    net = NetworkConfig()
    model = UNet3D(config=net)
    save_bundle(
        folder,
        state_dict=model.state_dict(),
        network=net,
        preprocess=PreprocessConfig(),
        name="random-weights-benchmark",
        version="0",
        training={"data_description": "random weights, for timing only"},
        metrics={},
        model_card="random weights, for timing only\n",
    )
    return folder


def _write_section(path: Path, text: str) -> None:
    """Replace the '## predict' section of ``path`` (or append it)."""
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    lines = old.splitlines(keepends=True)
    out: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith("## "):
            skipping = line.strip() == "## predict"
            if skipping:
                continue
        if not skipping:
            out.append(line)
    body = "".join(out).rstrip() + "\n\n" + text.rstrip() + "\n"
    path.write_text(body, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = ap.parse_args()

    from sinusapp.model.testing import make_sinus_phantom

    t = time.perf_counter()
    volume, truth = make_sinus_phantom(
        shape=(300, 512, 512), spacing_mm=(0.7, 0.45, 0.45), severity=(0.7, 0.4), seed=1
    )
    t_gen = time.perf_counter() - t
    ct_mb = volume.array.nbytes / 2**20
    rss_ct = _rss_mb()

    import torch

    torch.set_num_threads(args.threads)
    from sinusapp.model import Predictor, bundled_model_dir

    bundle = args.bundle
    if bundle is None:
        bundle = bundled_model_dir()
        if not (bundle / "manifest.json").is_file():
            bundle = _random_bundle(Path(tempfile.mkdtemp()) / "bundle")
    t = time.perf_counter()
    predictor = Predictor(bundle, device=args.device)
    t_load = time.perf_counter() - t
    runs = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        res = predictor.predict(volume)
        wall = time.perf_counter() - t
        runs.append((wall, res.timings_s))
    # numpy allocations made by one prediction (tracemalloc sees numpy, not torch's own)
    tracemalloc.start()
    predictor.predict(volume)
    _, np_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np_peak_mb = np_peak / 2**20
    rss_peak = _rss_mb()
    walls = [r[0] for r in runs]
    stages = {k: statistics.median(r[1][k] for r in runs) for k in runs[0][1]}
    inter = np.logical_and(res.mask > 0, truth > 0).sum()
    dsc = 2 * inter / max(1, (res.mask > 0).sum() + (truth > 0).sum())
    info = {
        "machine": f"{_cpu_name()}, {os.cpu_count()} cores, {args.threads} torch threads, "
        f"load average {os.getloadavg()[0]:.1f}, {platform.system()} {platform.release()}",
        "device": predictor.device,
        "torch": torch.__version__,
        "bundle": f"{predictor.model_info['name']} {predictor.model_info['version']}",
        "ct_shape": list(volume.shape),
        "ct_int16_mb": round(ct_mb, 1),
        "generate_s": round(t_gen, 2),
        "model_load_s": round(t_load, 2),
        "predict_wall_s_median": round(statistics.median(walls), 3),
        "predict_wall_s_all": [round(w, 3) for w in walls],
        "stages_s_median": {k: round(v, 3) for k, v in stages.items()},
        "peak_rss_mb": round(rss_peak, 1),
        "rss_after_ct_mb": round(rss_ct, 1),
        "peak_over_ct": round(rss_peak / ct_mb, 2),
        "predict_numpy_peak_mb": round(np_peak_mb, 1),
        "predict_numpy_peak_over_ct": round(np_peak_mb / ct_mb, 2),
        "lesion_ml": round(res.lesion_volume_ml, 1),
        "dsc_vs_phantom_truth": round(float(dsc), 3),
    }
    print(json.dumps(info, indent=2))
    if args.json:
        args.json.write_text(json.dumps(info, indent=2))
    if args.results:
        st = info["stages_s_median"]
        text = f"""## predict

`python benchmarks/predict.py --device {args.device} --threads {args.threads} --results ...`
({datetime.now(UTC).date()}, {info["machine"]}, device {info["device"]}, torch {info["torch"]},
bundle `{info["bundle"]}`)

CT: generated head phantom {volume.shape[0]}×{volume.shape[1]}×{volume.shape[2]} int16
({ct_mb:.0f} MB).

| stage | median s |
|---|---|
| locate | {st["locate"]:.3f} |
| resample | {st["resample"]:.3f} |
| network | {st["network"]:.3f} |
| map back | {st["map back"]:.3f} |
| **predict total (wall)** | **{info["predict_wall_s_median"]:.3f}** (target ≤ 10 s) |
| model load (verify sha256, build network) | {t_load:.2f} |

Memory: one prediction allocates at most {np_peak_mb:.0f} MB of numpy arrays
({np_peak_mb / ct_mb:.2f}× the CT's int16 size, by tracemalloc; torch's activations for the
input block come on top, a few tens of MB). Peak resident memory of the
whole process: {rss_peak:.0f} MB (Python + torch + the CT + the phantom generator's peak;
{rss_ct:.0f} MB right after generating the CT, before torch was imported).
"""
        _write_section(args.results, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
