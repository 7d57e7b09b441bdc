#!/usr/bin/env bash
# Smoke test of a built SinusApp executable, as IT would run it on a workstation:
#
#   1. --version and `predict --help`
#   2. the headless demo (bundled model + demo study) writes a PDF and a JSON with a probability
#   3. `scan` of the bundled 105-file demo series (>= 64 files: the header scan runs in worker
#      processes, which must start correctly from the frozen executable)
#   4. the GUI starts offscreen, shows its main window (logged as "main window shown") and
#      stays up until it is stopped; a crash or a traceback fails the test
#   5. (Linux, when strace is installed) the headless demo opens no network socket
#   +  when run from the build venv: `predict` on JPEG Lossless (GDCM) and 12-bit JPEG
#      Extended (imagecodecs) copies of the demo series (packaging/make_jpeg_series.py)
#
# Usage: smoke_test.sh PATH/TO/sinusapp      (SMOKE_GUI=0 skips step 4, SMOKE_STRACE=0 step 5)
set -euo pipefail
APP=$(readlink -f "${1:?usage: smoke_test.sh PATH/TO/sinusapp}")
INTERNAL=$(dirname "$APP")/_internal
OUT=$(mktemp -d)
GUI_PID=
cleanup() {
  if [ -n "$GUI_PID" ] && kill -0 "$GUI_PID" 2>/dev/null; then kill "$GUI_PID" 2>/dev/null || true; fi
  rm -rf "$OUT"
}
trap cleanup EXIT
export SINUSAPP_HOME="$OUT/home" QT_QPA_PLATFORM=offscreen
step() { printf '\n== %s\n' "$*"; }
t0=$SECONDS

step "version and help"
"$APP" --version
# licence texts ship with the build (Qt's LGPL-3 included)
LIC="$(dirname "$APP")/_internal/licenses"
test -f "$LIC/Qt/LGPL-3" || { echo "smoke test: Qt's LGPL-3 text is missing from $LIC" >&2; exit 1; }
test -n "$(ls "$LIC"/torch* 2>/dev/null)" || { echo "smoke test: torch's licences are missing from $LIC" >&2; exit 1; }
"$APP" predict --help > /dev/null

step "headless demo"
"$APP" demo --headless --out "$OUT/demo"
test -s "$OUT/demo/report.pdf"
head -c 5 "$OUT/demo/report.pdf" | grep -q '%PDF-'
python3 - "$OUT/demo/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert 0.0 <= r["probability"] <= 1.0, r["probability"]
assert r["model"]["sha256"], r["model"]
print("demo ok: probability", round(r["probability"], 3), "model", r["model"]["name"])
PY

step "scan of the 105-file demo series (worker processes)"
n_files=$(find "$INTERNAL/assets/demo/ct" -type f | wc -l)
test "$n_files" -ge 64
"$APP" scan --json "$INTERNAL/assets/demo/ct" > "$OUT/scan.json"
python3 - "$OUT/scan.json" "$n_files" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
found = sum(s["instances"] for p in r["patients"] for st in p["studies"] for s in st["series"])
assert found == n, f"scan found {found} instances in {n} files"
assert r["proposed_series_instance_uid"], r
print(f"scan ok: {found} instances in {n} files")
PY

# Optional (needs the build venv's python with pydicom + imagecodecs, as in build.sh): the
# JPEG decoders that the demo's JPEG-LS series does not exercise, through `predict`.
PY=${SMOKE_PYTHON:-python}
if "$PY" -c "import pydicom, imagecodecs, jpeg_ls" 2> /dev/null; then
  for mode in lossless ext12; do
    step "predict on a JPEG $mode copy of the demo series"
    "$PY" "$(dirname "$0")/make_jpeg_series.py" "$INTERNAL/assets/demo/ct" "$OUT/jpeg_$mode" "$mode"
    "$APP" predict "$OUT/jpeg_$mode" --asthma yes --allergic-rhinitis no --eosinophils 300 \
      --json "$OUT/jpeg_$mode.json" > "$OUT/jpeg_$mode.out" 2>&1 \
      || { cat "$OUT/jpeg_$mode.out" >&2; exit 1; }
    grep "Probability" "$OUT/jpeg_$mode.out"
  done
else
  echo "(skipping the JPEG lossless / 12-bit JPEG checks: no python with pydicom + imagecodecs)"
fi

if [ "${SMOKE_GUI:-1}" != 0 ]; then
  step "GUI starts offscreen and stays up"
  export SINUSAPP_HOME="$OUT/gui_home"  # a fresh log: only what the GUI writes
  LOG="$SINUSAPP_HOME/logs/sinusapp.log"
  "$APP" gui > "$OUT/gui.out" 2>&1 &
  GUI_PID=$!
  shown=0
  for _ in $(seq 1 120); do  # up to 60 s for a cold start
    if ! kill -0 "$GUI_PID" 2>/dev/null; then break; fi
    if grep -q "main window shown" "$LOG" 2>/dev/null; then shown=1; break; fi
    sleep 0.5
  done
  if [ "$shown" = 1 ]; then sleep 5; fi  # it must survive its first event-loop turns
  if ! kill -0 "$GUI_PID" 2>/dev/null; then
    wait "$GUI_PID" && rc=0 || rc=$?
    echo "GUI exited early (status $rc):" >&2
    cat "$OUT/gui.out" >&2
    exit 1
  fi
  kill "$GUI_PID"
  wait "$GUI_PID" 2>/dev/null || true
  GUI_PID=
  if [ "$shown" != 1 ]; then
    echo "GUI did not show its main window within 60 s:" >&2
    cat "$OUT/gui.out" >&2
    exit 1
  fi
  if grep -q "Traceback" "$OUT/gui.out" "$LOG"; then
    echo "GUI logged a traceback:" >&2
    cat "$OUT/gui.out" "$LOG" >&2
    exit 1
  fi
  echo "gui ok: main window shown and still running after 5 s"
fi

if [ "${SMOKE_STRACE:-1}" != 0 ] && command -v strace > /dev/null; then
  step "no network: the headless demo under strace"
  strace -f -qq -e trace=socket,connect -o "$OUT/strace.txt" \
    "$APP" demo --headless --out "$OUT/demo2" > /dev/null
  # AF_UNIX sockets (local IPC of the worker processes) are allowed; AF_INET(6) are not.
  if grep -E 'AF_INET|AF_INET6' "$OUT/strace.txt"; then
    echo "the headless demo opened a network socket" >&2
    exit 1
  fi
  echo "no-network ok: $(grep -cE 'socket\(|connect\(' "$OUT/strace.txt" || true) socket/connect calls, none AF_INET/AF_INET6"
fi

printf '\nsmoke test ok (%ss)\n' "$((SECONDS - t0))"
