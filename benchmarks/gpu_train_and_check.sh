#!/usr/bin/env bash
# Train the bundled model on a CUDA machine and check the GPU inference path — one script,
# meant to finish in about 8 minutes on one H100/H200 with 16 CPU cores.
#
# STALE RECIPE (version 1): it trains on the procedural phantoms (`synth --preset paper`),
# not on the real-anatomy cohort the shipped bundle (2.x, models/sinus_unet/manifest.json
# "command") is trained on. Use it for the CUDA plumbing and the CPU-vs-GPU check only; do
# not commit its bundle. A real-anatomy GPU run must carry its data (../shared does not
# travel to the device; 64 MiB in all): see benchmarks/RESULTS.md, "Whole heads in training".
#
#   bash benchmarks/gpu_train_and_check.sh            # from the repository root
#
# Environment: OUT (results folder, default ./out_gpu), BUDGET_S (whole-script budget in
# seconds, default 430), EPOCHS (skip the calibration and use this many epochs), SEED (0),
# PYTHON (python3). For a plumbing check on a CPU machine: DEVICE=cpu SYNTH_CASES=6
# FOLDS=2 EPOCHS=1 EXTRA_TRAIN_ARGS="--width 4 --levels 3 --spacing 4 --block 32". Nothing is downloaded except by `pip install -e .` when sinusapp's
# dependencies are missing (and torch, if absent — on an offline machine that fails and the
# script says so).
#
# Steps (each logged with the elapsed seconds to $OUT/run.log):
#   1. check torch + CUDA, make sinusapp importable
#   2. `sinusapp synth --preset paper --low-res` (265 cases: centre A train, centre B test)
#   3. calibrate: 2 epochs of the 6 models (5 CV folds + final) in parallel on the GPU; this
#      also fills the preprocessing cache; pick EPOCHS to fit the remaining budget
#   4. `sinusapp train ... --device cuda --epochs EPOCHS --folds 5 --parallel 6`
#   5. CPU vs GPU Predictor on test-cohort cases (mask agreement, DLR-score difference) and
#      timings on a 300-slice 512×512 CT (benchmarks/predict.py on cpu and cuda)
# Results in $OUT: sinus_unet/ (the bundle to commit as models/sinus_unet), train.log,
# predictions.csv, folds/*.json, check.json, predict_cpu.json, predict_cuda.json,
# RESULTS_gpu.md (section to paste into benchmarks/RESULTS.md), run.log.
set -euo pipefail

OUT=${OUT:-$PWD/out_gpu}
BUDGET_S=${BUDGET_S:-430}
SEED=${SEED:-0}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
FOLDS=${FOLDS:-5}
read -r -a EXTRA <<< "${EXTRA_TRAIN_ARGS:-}"
WORK=${WORK:-/tmp/sinusapp_gpu_work}
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/run.log") 2>&1
START=$(date +%s)
elapsed() { echo $(($(date +%s) - START)); }
stamp() { echo "[$(elapsed)s] $*"; }
NPROC=$(nproc)

# 1. environment ------------------------------------------------------------------------------
stamp "python: $($PY --version 2>&1); cores: $NPROC"
if ! $PY -c "import torch" 2>/dev/null; then
    stamp "torch is not installed: pip install torch"
    $PY -m pip install -q torch || { stamp "FAILED to install torch (offline?)"; exit 3; }
fi
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
if [ "$DEVICE" = cuda ] && [ "$($PY -c 'import torch; print(int(torch.cuda.is_available()))')" != 1 ]; then
    stamp "FAILED: torch sees no CUDA GPU"; exit 4
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if ! $PY -c "import sinusapp.dataset, sinusapp.synth, sinusapp.dicom, safetensors, sklearn, pydicom, highdicom, nibabel, tqdm" 2>/dev/null; then
    stamp "pip install -e . (sinusapp and its dependencies)"
    $PY -m pip install -q -e . || { stamp "FAILED: pip install -e ."; exit 5; }
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SINUSAPP=("$PY" -m sinusapp.cli)
stamp "environment ready"

# 2. synthetic cohorts ------------------------------------------------------------------------
COHORT="$WORK/cohort"
if [ ! -f "$COHORT/clinical.csv" ]; then
    rm -rf "$COHORT"
    SYNTH_ARGS=(synth --out "$COHORT" --preset paper --low-res --seed "$SEED")
    [ -n "${SYNTH_CASES:-}" ] && SYNTH_ARGS+=(--cases "$SYNTH_CASES")
    if "${SINUSAPP[@]}" synth --help 2>/dev/null | grep -q -- "--workers"; then
        SYNTH_ARGS+=(--workers "$NPROC")
    fi
    stamp "sinusapp ${SYNTH_ARGS[*]}"
    "${SINUSAPP[@]}" "${SYNTH_ARGS[@]}" | tee "$OUT/synth.txt"
fi
stamp "cohort ready: $(($(wc -l < "$COHORT/clinical.csv") - 1)) cases"

TRAIN_ARGS=(-v train "$COHORT" --device "$DEVICE" --folds "$FOLDS" --seed "$SEED"
    --parallel $((FOLDS + 1)) --workers "$NPROC" --batch-size 8 --lr 3e-3
    --work-dir "$WORK/train" "${EXTRA[@]}"
    --data-note "Made by: sinusapp synth --preset paper --low-res --seed $SEED${SYNTH_CASES:+ --cases $SYNTH_CASES}.")

# 3. calibration --------------------------------------------------------------------------------
if [ -z "${EPOCHS:-}" ]; then
    stamp "calibration: 2 epochs of the $((FOLDS + 1)) models (also builds the preprocessing cache)"
    "${SINUSAPP[@]}" "${TRAIN_ARGS[@]}" --epochs 2 --out "$WORK/calib_bundle" > "$OUT/calibration.log" 2>&1 \
        || { tail -30 "$OUT/calibration.log"; stamp "FAILED: calibration"; exit 6; }
    EPOCH_S=$($PY - "$WORK/train/checkpoints" <<'EOF'
import json, sys, pathlib
d = pathlib.Path(sys.argv[1])
secs = [h["seconds"] for p in d.glob("*.json") for h in json.loads(p.read_text())["history"][1:]]
print(max(secs) if secs else 5.0)
EOF
)
    LEFT=$((BUDGET_S - $(elapsed) - 100))  # keep ~100 s: process start-up, bundle, checks
    EPOCHS=$($PY -c "print(max(8, min(100, int($LEFT / ($EPOCH_S * 1.1)))))")
    stamp "one epoch ($((FOLDS + 1)) models in parallel) takes ${EPOCH_S}s; ${LEFT}s left for training -> EPOCHS=$EPOCHS"
fi

# 4. training -----------------------------------------------------------------------------------
stamp "sinusapp train --epochs $EPOCHS"
"${SINUSAPP[@]}" "${TRAIN_ARGS[@]}" --epochs "$EPOCHS" --out "$OUT/sinus_unet" > "$OUT/train.log" 2>&1 \
    || { tail -40 "$OUT/train.log"; stamp "FAILED: training"; exit 7; }
tail -5 "$OUT/train.log"
mkdir -p "$OUT/folds"
cp "$WORK/train/checkpoints/"*.json "$OUT/folds/" 2>/dev/null || true
cp "$WORK/train/predictions.csv" "$OUT/" 2>/dev/null || true
stamp "training done"

# 5. CPU vs GPU ---------------------------------------------------------------------------------
$PY - "$OUT/sinus_unet" "$COHORT" "$OUT/check.json" "$DEVICE" <<'EOF'
import json, sys, time
import numpy as np
import torch
from sinusapp.dataset import Dataset, load_case
from sinusapp.model import Predictor

bundle, cohort, out, device = sys.argv[1:5]
torch.set_num_threads(2)
cpu, gpu = Predictor(bundle, device="cpu"), Predictor(bundle, device=device)
rows = []
for case in Dataset.open(cohort).by_cohort("test")[:8]:
    vol, truth, _ = load_case(case)
    r = {}
    for name, p in (("cpu", cpu), ("cuda", gpu)):
        t = time.perf_counter()
        res = p.predict(vol)
        r[name] = (res, time.perf_counter() - t)
    a, b = r["cpu"][0].mask > 0, r["cuda"][0].mask > 0
    agree = 1.0 if not (a.any() or b.any()) else 2 * (a & b).sum() / (a.sum() + b.sum())
    def dsc(m):
        return float(2 * (m & (truth > 0)).sum() / max(1, m.sum() + (truth > 0).sum()))
    rows.append({
        "case": case.case_id, "mask_dsc_cpu_vs_gpu": float(agree),
        "dlr_cpu": r["cpu"][0].dlr_score, "dlr_gpu": r["cuda"][0].dlr_score,
        "dsc_truth_cpu": dsc(a), "dsc_truth_gpu": dsc(b),
        "seconds_cpu": round(r["cpu"][1], 3), "seconds_gpu": round(r["cuda"][1], 3),
    })
    print(rows[-1])
summary = {
    "min_mask_agreement": min(x["mask_dsc_cpu_vs_gpu"] for x in rows),
    "max_dlr_abs_diff": max(abs(x["dlr_cpu"] - x["dlr_gpu"]) for x in rows),
    "mean_dsc_truth_native_grid": float(np.mean([x["dsc_truth_cpu"] for x in rows])),
    "cases": rows,
}
json.dump(summary, open(out, "w"), indent=1)
print({k: v for k, v in summary.items() if k != "cases"})
EOF
stamp "CPU vs GPU agreement checked"
if [ "$DEVICE" = cuda ]; then
    $PY benchmarks/predict.py --bundle "$OUT/sinus_unet" --device cuda --repeat 3 --json "$OUT/predict_cuda.json" > "$OUT/predict_cuda.txt" 2>&1 || true
fi
$PY benchmarks/predict.py --bundle "$OUT/sinus_unet" --device cpu --threads 2 --repeat 2 --json "$OUT/predict_cpu.json" > "$OUT/predict_cpu.txt" 2>&1 || true
$PY - "$OUT" "$EPOCHS" <<'EOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1]); epochs = sys.argv[2]
m = json.loads((out / "sinus_unet" / "manifest.json").read_text())
chk = json.loads((out / "check.json").read_text())
lines = ["## predict on GPU (benchmarks/gpu_train_and_check.sh)", ""]
for dev in ("cuda", "cpu"):
    p = out / f"predict_{dev}.json"
    if p.is_file():
        d = json.loads(p.read_text())
        st = d["stages_s_median"]
        lines.append(f"- {dev} ({d['machine']}): total {d['predict_wall_s_median']} s "
                     f"(locate {st['locate']}, resample {st['resample']}, network {st['network']}, "
                     f"map back {st['map back']}), peak RSS {d['peak_rss_mb']} MB")
lines += [
    f"- CPU vs GPU on 8 test-cohort cases: mask agreement (DSC) >= {chk['min_mask_agreement']:.4f}, "
    f"max |DLR-score difference| {chk['max_dlr_abs_diff']:.2e}",
    f"- training: {epochs} epochs, {m['training']['wall_time_s']} s, device {m['training']['device']}",
    f"- metrics: {json.dumps(m['metrics']['cv'] and {k: m['metrics']['cv'][k] for k in ('dsc_mean', 'auc_mean', 'auc_pooled')})}, "
    f"external {json.dumps(m['metrics']['external'])}, oracle {json.dumps(m['metrics']['oracle_auc'])}",
]
(out / "RESULTS_gpu.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
stamp "all done; results in $OUT"
