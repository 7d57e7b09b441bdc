"""Benchmark: a whole headless ``sinusapp predict`` — wall time and peak memory of the process.

What a user meets (issue 15): a head CT written as scanners write it (12 of 16 bits stored,
unsigned, RescaleIntercept −1024; :func:`sinusapp.synth.dicomio.write_ct_series`), by default
300 slices × 512² and 600 slices × 1024², analysed by the real entry point
(``sinusapp predict CT --json ... --device cpu``: process start, imports, header scan, load,
model, input checks, prediction, sinus labels, per-sinus count, nomogram, result.json).

Measured in the same run, interleaved round by round (medians; the machine is shared):

- ``predict``: the whole ``sinusapp predict`` process (wall time, peak RSS from
  ``os.wait4``);
- ``reference``: a process that only loads the series and runs the Predictor (``load +
  Predictor alone``, the issue's reference), reporting its in-process times too;
- ``model``: a process that only loads the Predictor (no CT): the "+ the model" of the memory
  target ``peak RSS ≤ 4 × the CT's int16 size + the model``;
- ``baseline`` (with ``--baseline-src DIR``): the same ``sinusapp predict`` with an older
  ``sinusapp`` package first on ``PYTHONPATH`` (e.g. ``git archive REV sinusapp | tar -x -C
  DIR``), for a before / after in the same run;
- stages (``--stages``, on the first size): ``label_sinuses`` and
  ``per_sinus_opacification`` now and as the plain whole-grid reference implementations kept
  in ``tests/imaging/test_fast_paths.py`` (seconds and numpy peak by tracemalloc), and the
  network alone (the bundled model's forward pass, 2 torch threads).

Usage (from the repository root)::

    python benchmarks/predict_e2e.py [--sizes 300x512x512,600x1024x1024] [--repeats 3]
        [--workdir DIR] [--baseline-src DIR] [--stages] [--json FILE]

``--workdir`` keeps the generated series between runs (writing 600 × 1024² takes minutes).
Prints a Markdown section for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPACING = {512: (0.7, 0.45, 0.45), 1024: (0.35, 0.225, 0.225)}
CLINICAL = ["--asthma", "yes", "--allergic-rhinitis", "no", "--eosinophils", "300"]


def _run_wait4(cmd: list[str], *, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; wall time (s), peak RSS of that process (MB, ``os.wait4``), stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=str(ROOT))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed ({proc.returncode}):\n{errors[-3000:]}")
    return wall, usage.ru_maxrss / 1024.0, text


def _env(*, threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["SINUSAPP_HOME"] = env.get("SINUSAPP_BENCH_HOME", tempfile.mkdtemp(prefix="e2e_home_"))
    env.setdefault("SINUSAPP_MODELS", str(ROOT / "models"))  # the same model for a baseline
    return env


def _generate(folder: Path, shape: tuple[int, int, int]) -> None:
    """Write the generated head CT as a 12-bit series (in a child process: its memory)."""
    if (folder / "done").is_file():
        return
    code = (
        "import sys; from pathlib import Path\n"
        "from sinusapp.model.testing import make_sinus_phantom\n"
        "from sinusapp.synth.dicomio import CaseDicomInfo, CtSeriesOptions, write_ct_series\n"
        f"vol, _ = make_sinus_phantom(shape={shape!r}, spacing_mm={SPACING[shape[1]]!r},"
        " severity=(0.7, 0.4), seed=1)\n"
        "write_ct_series(hu=vol.array, affine=vol.affine, out_dir=Path(sys.argv[1]),"
        " case=CaseDicomInfo(case_id='E2E', seed=1), options=CtSeriesOptions())\n"
    )
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True, cwd=str(ROOT))
    (folder / "done").write_text("ok\n")


# The older package first: the editable install's finder (which would map ``sinusapp`` to
# this checkout whatever PYTHONPATH says) is dropped from sys.meta_path before the import.
_OLD_CLI = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in "
    "getattr(f, '__module__', '')]; sys.path.insert(0, {src!r}); import sinusapp; "
    "assert sinusapp.__file__.startswith({src!r}), sinusapp.__file__; "
    "from sinusapp.cli import main; raise SystemExit(main())"
)

_REFERENCE = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
import torch
torch.set_num_threads(int(sys.argv[2]))
from sinusapp.dicom import load_volume
from sinusapp.model import Predictor
t_imp = time.perf_counter() - t0
if sys.argv[1] == "-":
    t = time.perf_counter(); Predictor(device="cpu"); t_model = time.perf_counter() - t
    print(json.dumps({"imports_s": t_imp, "model_s": t_model})); raise SystemExit
t = time.perf_counter(); vol = load_volume(Path(sys.argv[1])); t_load = time.perf_counter() - t
t = time.perf_counter(); p = Predictor(device="cpu"); t_model = time.perf_counter() - t
t = time.perf_counter(); res = p.predict(vol); t_pred = time.perf_counter() - t
print(json.dumps({"imports_s": t_imp, "load_s": t_load, "model_s": t_model,
                  "predict_s": t_pred, "timings": res.timings_s,
                  "ct_mb": vol.array.nbytes / 2**20, "shape": list(vol.shape)}))
"""


def _stages(ct: Path, *, repeats: int, threads: int) -> dict[str, Any]:
    """label_sinuses / per_sinus_opacification now vs the reference, and the network."""
    code = r"""
import json, statistics, sys, time, tracemalloc
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(int(sys.argv[3]))
sys.path.insert(0, str(Path("tests/imaging").resolve()))
import test_fast_paths as ref
from sinusapp.dicom import load_volume
from sinusapp.imaging.quantify import per_sinus_opacification
from sinusapp.imaging.sinus_labels import label_sinuses
from sinusapp.model import Predictor
vol = load_volume(Path(sys.argv[1]))
p = Predictor(device="cpu")
res = p.predict(vol)
c = np.array(res.sinus_region.center_lps, float); c[0] = res.sinus_region.midline_x_mm
def timed(f):
    tracemalloc.start(); t = time.perf_counter(); r = f(); dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20; tracemalloc.stop(); return r, dt, peak
out = {k: [] for k in ("label_new", "label_ref", "count_new", "count_ref")}
peaks = {}
def record(key, f):
    r, dt, pk = timed(f)
    out[key].append(dt)
    peaks[key] = pk
    return r
def count(f, labels):
    return f(lesion_mask=res.mask, sinus_labels=labels, volume=vol)
for _ in range(int(sys.argv[2])):
    lab = record("label_new", lambda: label_sinuses(vol, region_center_lps=c))
    lab_r = record("label_ref", lambda: ref._ref_label_sinuses(vol, region_center_lps=c))
    assert np.array_equal(lab, lab_r)
    q = record("count_new", lambda: count(per_sinus_opacification, lab))
    q_r = record("count_ref", lambda: count(ref._ref_per_sinus, lab))
    assert q == q_r
net = []
for _ in range(max(3, int(sys.argv[2]))):
    net.append(p.predict(vol).timings_s["network"])
print(json.dumps({"median_s": {k: statistics.median(v) for k, v in out.items()},
                  "numpy_peak_mb": peaks, "network_s": net,
                  "params": sum(x.numel() for x in p._model.parameters()),
                  "model": p.model_info["name"] + " " + p.model_info["version"]}))
"""
    _, _, text = _run_wait4(
        [sys.executable, "-c", code, str(ct), str(repeats), str(threads)],
        env=_env(threads=threads),
    )
    return json.loads(text.strip().splitlines()[-1])


def _shape(text: str) -> tuple[int, int, int]:
    k, j, i = (int(v) for v in text.lower().split("x"))
    if j not in SPACING:
        raise SystemExit(f"--sizes: rows must be 512 or 1024, got {text!r}")
    return k, j, i


def _measure(
    ct: Path, *, repeats: int, threads: int, baseline: Path | None, out_dir: Path
) -> dict[str, Any]:
    runs: dict[str, list[tuple[float, float]]] = {"predict": [], "reference": [], "model": []}
    if baseline is not None:
        runs["baseline"] = []
    inner: list[dict[str, Any]] = []
    json_out = out_dir / "result.json"
    predict = [
        *(sys.executable, "-c", "from sinusapp.cli import main; raise SystemExit(main())"),
        *("predict", str(ct), *CLINICAL, "--json", str(json_out), "--overwrite"),
        *("--device", "cpu"),
    ]
    for _ in range(repeats):
        wall, rss, _ = _run_wait4(predict, env=_env(threads=threads))
        runs["predict"].append((wall, rss))
        wall, rss, text = _run_wait4(
            [sys.executable, "-c", _REFERENCE, str(ct), str(threads)], env=_env(threads=threads)
        )
        runs["reference"].append((wall, rss))
        inner.append(json.loads(text.strip().splitlines()[-1]))
        wall, rss, _ = _run_wait4(
            [sys.executable, "-c", _REFERENCE, "-", str(threads)], env=_env(threads=threads)
        )
        runs["model"].append((wall, rss))
        if baseline is not None:
            old_cli = [sys.executable, "-c", _OLD_CLI.format(src=str(baseline)), *predict[3:]]
            wall, rss, _ = _run_wait4(old_cli, env=_env(threads=threads))
            runs["baseline"].append((wall, rss))
    med = {
        k: {
            "wall_s": statistics.median(w for w, _ in v),
            "peak_rss_mb": statistics.median(r for _, r in v),
            "all_wall_s": [round(w, 2) for w, _ in v],
        }
        for k, v in runs.items()
    }
    ct_mb = inner[0]["ct_mb"]
    ref_inner = statistics.median(i["load_s"] + i["predict_s"] for i in inner)
    return {
        "ct": str(ct),
        "shape": inner[0]["shape"],
        "ct_int16_mb": ct_mb,
        "runs": med,
        "reference_in_process_s": ref_inner,
        "reference_stages_s": {
            k: statistics.median(i["timings"][k] for i in inner) for k in inner[0]["timings"]
        },
        "memory_target_mb": 4 * ct_mb + med["model"]["peak_rss_mb"],
        "load_average": os.getloadavg()[0],
    }


def _markdown(results: list[dict[str, Any]], stages: dict[str, Any] | None, args: Any) -> str:
    lines = [
        "## predict end to end (issue 15)",
        "",
        f"`python benchmarks/predict_e2e.py --repeats {args.repeats}"
        + (" --baseline-src ..." if args.baseline_src else "")
        + (" --stages" if args.stages else "")
        + f"` — {time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} cores, "
        f"{args.threads} torch threads, load average ≈ {results[0]['load_average']:.1f}.",
        "",
        "| CT (12-bit) | measure | wall s (median) | peak RSS MB | ratio to reference | target |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        k, j, i = r["shape"]
        name = f"{k}×{j}×{i} ({r['ct_int16_mb']:.0f} MB int16)"
        ref = r["runs"]["reference"]
        tgt = r["memory_target_mb"]
        for key, label in (
            ("predict", "`sinusapp predict`, whole process"),
            ("baseline", "same, before (`--baseline-src`)"),
            ("reference", "load + Predictor alone (process)"),
            ("model", "Predictor loaded, no CT (the model)"),
        ):
            if key not in r["runs"]:
                continue
            m = r["runs"][key]
            target = ""
            if key == "predict":
                target = f"≤ 6 s (300 slices); peak ≤ {tgt:.0f} MB"
            lines.append(
                f"| {name} | {label} | {m['wall_s']:.2f} | {m['peak_rss_mb']:.0f} "
                f"({m['peak_rss_mb'] / r['ct_int16_mb']:.1f}× CT) | "
                f"{m['wall_s'] / ref['wall_s']:.2f}× / "
                f"{m['peak_rss_mb'] / ref['peak_rss_mb']:.2f}× | {target} |"
            )
        st = r["reference_stages_s"]
        lines.append(
            f"| {name} | reference in-process: load + predict | "
            f"{r['reference_in_process_s']:.2f} | | | "
            + ", ".join(f"{s} {v:.2f}" for s, v in st.items())
            + " |"
        )
    if stages is not None:
        med, pk = stages["median_s"], stages["numpy_peak_mb"]
        net = stages["network_s"]
        lines += [
            "",
            f"Stages on {results[0]['shape'][0]}×{results[0]['shape'][1]}² (medians, numpy "
            "peak by tracemalloc; reference = the plain whole-grid implementations kept in "
            "`tests/imaging/test_fast_paths.py`, outputs asserted equal in the same run):",
            "",
            "| stage | now s | reference s | ratio | now peak MB | reference peak MB |",
            "|---|---|---|---|---|---|",
            f"| `label_sinuses` (region given) | {med['label_new']:.2f} | {med['label_ref']:.2f}"
            f" | {med['label_new'] / med['label_ref']:.2f}× | {pk['label_new']:.0f} | "
            f"{pk['label_ref']:.0f} |",
            f"| `per_sinus_opacification` | {med['count_new']:.3f} | {med['count_ref']:.3f} | "
            f"{med['count_new'] / med['count_ref']:.3f}× | {pk['count_new']:.0f} | "
            f"{pk['count_ref']:.0f} |",
            "",
            f"Network alone ({stages['model']}, {stages['params']:,} parameters, CPU, "
            f"{args.threads} threads): median {statistics.median(net):.2f} s "
            f"(runs {', '.join(f'{v:.2f}' for v in net)}); target ≤ 2 s.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="300x512x512,600x1024x1024")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--baseline-src", type=Path, default=None)
    ap.add_argument("--stages", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="predict_e2e_"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    stages = None
    for n, text in enumerate(args.sizes.split(",")):
        shape = _shape(text)
        ct = work / f"ct_{shape[0]}x{shape[1]}x{shape[2]}"
        _generate(ct, shape)
        if n == 0 and args.stages:
            stages = _stages(ct, repeats=args.repeats, threads=args.threads)
        results.append(
            _measure(
                ct,
                repeats=args.repeats if n == 0 else max(1, args.repeats // 2),
                threads=args.threads,
                baseline=args.baseline_src if n == 0 else None,
                out_dir=work,
            )
        )
        print(json.dumps(results[-1], indent=1), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"sizes": results, "stages": stages}, indent=1))
    print(_markdown(results, stages, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
