#!/usr/bin/env bash
# Smoke test of a built SinusApp executable: version, help, and the headless demo (which
# must write a PDF and a JSON with a probability). Usage: smoke_test.sh PATH/TO/sinusapp
set -euo pipefail
APP=${1:?usage: smoke_test.sh PATH/TO/sinusapp}
OUT=$(mktemp -d)
export SINUSAPP_HOME="$OUT/home" QT_QPA_PLATFORM=offscreen
"$APP" --version
"$APP" predict --help > /dev/null
"$APP" demo --headless --out "$OUT/demo"
test -s "$OUT/demo/report.pdf"
head -c 5 "$OUT/demo/report.pdf" | grep -q '%PDF-'
python3 - "$OUT/demo/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert 0.0 <= r["probability"] <= 1.0, r["probability"]
assert r["model"]["sha256"], r["model"]
print("smoke test ok: probability", round(r["probability"], 3), "model", r["model"]["name"])
PY
rm -rf "$OUT"
