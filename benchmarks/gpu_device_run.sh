#!/usr/bin/env bash
# Wrapper for the lent GPU machine (no package registry there): installs the carried wheels
# (.whl/, see benchmarks/RESULTS.md "GPU") into /tmp/site, then either a 1-minute smoke test of
# the CUDA training path (MODE=smoke) or the full bundled-model training + checks + evaluation
# (MODE=full), and packs the results into at most 8 files under $OUT.
set -uo pipefail
MODE=${MODE:-full}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
W=/tmp/sinusapp_gpu_work
RAW=/tmp/sinusapp_gpu_raw
mkdir -p "$W" "$RAW"
if [ "$MODE" = smoke ]; then
    python3 -m sinusapp.cli synth --out "$W/smoke" --cases 10 --seed 1 --low-res --workers 8 \
        && python3 -m sinusapp.cli -v train "$W/smoke" --out "$RAW/smoke_bundle" --device cuda \
            --epochs 2 --folds 2 --parallel 3 --workers 8 --batch-size 4 \
        && python3 - "$RAW/smoke_bundle" "$W/smoke" <<'PY'
import sys, time
from sinusapp.dataset import Dataset, load_case
from sinusapp.model import Predictor
bundle, cohort = sys.argv[1:3]
vol, truth, _ = load_case(Dataset.open(cohort).cases[0])
for dev in ("cuda", "cpu"):
    t = time.perf_counter(); r = Predictor(bundle, device=dev).predict(vol)
    print(dev, "dlr", r.dlr_score, "lesion mL", round(r.lesion_volume_ml, 2), "s", round(time.perf_counter() - t, 2))
PY
    rc=$?
    tar czf "$OUT/smoke_logs.tgz" -C "$RAW" . 2>/dev/null
    exit $rc
fi
OUT_SAVE=$OUT
OUT=$RAW WORK=$W BUDGET_S=${BUDGET_S:-400} bash benchmarks/gpu_train_and_check.sh
rc=$?
OUT=$OUT_SAVE
if [ -f "$W/train/predictions.csv" ]; then
    python3 -m sinusapp.cli evaluate "$W/cohort" --scores "$W/train/predictions.csv" --out "$RAW/eval" \
        > "$RAW/evaluate.log" 2>&1 || echo "evaluate failed (see evaluate.log)"
    cp "$W/train/predictions.csv" "$OUT/"
fi
cp "$W/cohort/clinical.csv" "$W/cohort/cohort.json" "$OUT/" 2>/dev/null
cp "$RAW/eval/nomogram.json" "$OUT/" 2>/dev/null
[ -d "$RAW/sinus_unet" ] && cp -r "$RAW/sinus_unet" "$OUT/"
tar czf "$OUT/logs.tgz" -C "$RAW" --exclude=sinus_unet . 2>/dev/null
ls -la "$OUT" "$OUT/sinus_unet" 2>/dev/null
exit $rc
