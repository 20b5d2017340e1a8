#!/usr/bin/env bash
# scripts/soak.sh [SECONDS] — the soak test (not a unit test): the example bot
# (examples/trigger_training.rs, release build, every default on) takes Hub deliveries
# from 64 connections for SECONDS (default 600: ten minutes), loopback only. Reports the
# errors (socket errors and answers other than 2xx: both must be 0) and the bot's RSS
# sampled every 10 s, which must stay flat within 5 % after a minute of warm-up; then
# stops the bot with SIGTERM (it must exit 0). Exits non-zero if any check fails.
#
# Needs wrk (apt-get install -y wrk). The bot's log goes to /dev/null: ten minutes of
# delivery lines would be gigabytes; they are still formatted and written.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${1:-600}
PORT=${SOAK_PORT:-7868}
WARMUP=${SOAK_WARMUP:-60}
FIXTURES=${FIXTURES:-$ROOT/hookserver/samples}
command -v wrk >/dev/null || { echo "missing wrk: apt-get install -y wrk" >&2; exit 2; }

(cd "$ROOT" && cargo build --release --quiet --example trigger_training)
BOT=$ROOT/target/release/examples/trigger_training
WEBHOOK_SECRET=soak_secret HOOKSERVER_HOST=127.0.0.1 HOOKSERVER_PORT=$PORT "$BOT" >/dev/null 2>&1 &
PID=$!
trap 'kill -9 $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.05
done

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
SAMPLES=$(mktemp)
(
  elapsed=0
  while [ "$elapsed" -le "$DURATION" ] && kill -0 $PID 2>/dev/null; do
    echo "$elapsed $(rss_kib)" >>"$SAMPLES"
    sleep 10
    elapsed=$((elapsed + 10))
  done
) &
SAMPLER=$!

echo "== soak: ${DURATION}s at 64 connections against trigger_training (pid $PID)" >&2
SUMMARY=$(SOAK_FIXTURES=$FIXTURES SOAK_SECRET=soak_secret SOAK_PATH=/webhooks/trigger_training \
  wrk -t2 -c64 -d"${DURATION}s" --timeout 10s -s "$ROOT/scripts/soak.lua" "http://127.0.0.1:$PORT" | tail -1)
wait $SAMPLER 2>/dev/null || true
kill -TERM $PID
set +e
wait $PID
CODE=$?
set -e
trap - EXIT

python3 - "$SUMMARY" "$SAMPLES" "$WARMUP" "$CODE" <<'PY'
import json, sys
summary = json.loads(sys.argv[1])
samples = [tuple(map(int, line.split())) for line in open(sys.argv[2]) if line.strip()]
warmup, code = int(sys.argv[3]), int(sys.argv[4])
errors = summary["connect"] + summary["read"] + summary["write"] + summary["timeout"] + summary["not_2xx"]
print(f"requests: {summary['requests']:,} in {summary['duration_s']:.0f} s ({summary['rps']:,.0f} req/s), "
      f"p50 {summary['p50_ms']:.2f} ms, p99 {summary['p99_ms']:.2f} ms, max {summary['max_ms']:.1f} ms")
print(f"errors: {errors} (connect {summary['connect']}, read {summary['read']}, write {summary['write']}, "
      f"timeout {summary['timeout']}, not 2xx {summary['not_2xx']})")
print("RSS (MiB) every 10 s: " + ", ".join(f"{t}s {kib / 1024:.1f}" for t, kib in samples))
after = [kib for t, kib in samples if t >= warmup]
spread = (max(after) - min(after)) / min(after) * 100 if after else float("nan")
print(f"RSS after {warmup} s: min {min(after) / 1024:.1f} MiB, max {max(after) / 1024:.1f} MiB, spread {spread:.1f} % (limit 5 %)")
print(f"exit code after SIGTERM: {code}")
ok = errors == 0 and spread <= 5 and code == 0
print("soak: PASS" if ok else "soak: FAIL")
sys.exit(0 if ok else 1)
PY
