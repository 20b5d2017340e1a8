#!/usr/bin/env bash
# scripts/guess_rate.sh [BOT] [SECONDS] — how many wrong secrets one address gets compared
# per second: starts BOT (default: the release trigger_training example, built here) with a
# secret on a loopback port, sends wrong `X-Webhook-Secret`s from 16 connections for SECONDS
# (default 10) with wrk, and prints the answers by status: each 403 is a guess compared (and
# refused), each 429 one refused unseen by the throttle. Loopback only, bounded, stops itself.
# Needs wrk (apt-get install -y wrk).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_RUN=${2:-10}
PORT=${GUESS_PORT:-7869}
command -v wrk >/dev/null || { echo "missing wrk: apt-get install -y wrk" >&2; exit 2; }
BOT=${1:-}
if [ -z "$BOT" ]; then
  (cd "$ROOT" && cargo build --release --quiet --example trigger_training)
  BOT=$ROOT/target/release/examples/trigger_training
fi
WEBHOOK_SECRET=the-right-secret-0123456789 HOOKSERVER_HOST=127.0.0.1 HOOKSERVER_PORT=$PORT \
  "$BOT" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.05
done
OUT=$(LOAD_BODY=$ROOT/hookserver/samples/discussion.create.hub-docs.json LOAD_SECRET=a-wrong-guess \
  LOAD_STATUSES=1 wrk -t1 -c16 -d"${SECONDS_RUN}s" --timeout 5s -s "$ROOT/scripts/load.lua" \
  "http://127.0.0.1:$PORT/webhooks/trigger_training" | grep '^RESULT ' | cut -d' ' -f2-)
python3 - "$OUT" "$SECONDS_RUN" <<'PY'
import json, sys
result, seconds = json.loads(sys.argv[1]), float(sys.argv[2])
statuses = result["statuses"]
compared = statuses.get("403", 0)
print(f"answers: {statuses} in {seconds:.0f} s")
print(f"wrong secrets compared: {compared} ({compared / seconds:,.1f} a second); "
      f"refused unseen (429): {statuses.get('429', 0)}")
PY
