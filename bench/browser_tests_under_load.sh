#!/usr/bin/env bash
# The browser tests, N runs in a row (default 5), while another process keeps one core busy,
# as on a busy 2-core CI machine. Stops at the first failing run.
#   bench/browser_tests_under_load.sh [RUNS] [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
shift || true
bin/setup --dev >/dev/null
# The load: one process spinning on the CPU for the whole time (a core's worth of work).
python3 -c "while True: pass" &
LOAD=$!
trap 'kill $LOAD 2>/dev/null || true' EXIT
for i in $(seq 1 "$RUNS"); do
  start=$(date +%s)
  rc=0
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python -m pytest -m browser -q -p no:cacheprovider "$@" \
    > "/tmp/browser-run-$i.log" 2>&1 || rc=$?
  echo "run $i: $(tail -n 1 "/tmp/browser-run-$i.log")"
  [ "$rc" = 0 ] || { echo "run $i failed (rc $rc): /tmp/browser-run-$i.log"; exit 1; }
  echo "run $i: $(( $(date +%s) - start )) s; load process still spinning: $(ps -o pcpu= -p $LOAD)% CPU"
done
