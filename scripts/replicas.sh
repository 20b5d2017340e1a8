#!/usr/bin/env bash
# scripts/replicas.sh — durable acknowledgements per second of 1, 2 and 3 replicas of the
# queued bench bot sharing one PostgreSQL inbox.
#
# Usage: scripts/replicas.sh            (about a minute)
#
# Starts a throwaway PostgreSQL server (scripts/postgres.sh), then for N = 1, 2, 3: a fresh
# inbox, N replicas of bench/src/bin/bench_bot_queued.rs on 127.0.0.1:7881.., and one wrk per
# replica (16 connections each, a fresh Webhook-Id per request) for $DURATION s at once; the
# sum of their req/s, and the deliveries still waiting when the load stops. Nothing is
# pinned: the replicas, PostgreSQL and wrk share the machine, as replicas on one host would.
# Loopback only, every run bounded. Needs: wrk, jq, PostgreSQL's server programs.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
((DURATION <= 30)) || { echo "each run is at most 30 s" >&2; exit 2; }
for tool in wrk jq curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y wrk jq curl" >&2; exit 2; }
done
source "$ROOT/scripts/postgres.sh"
BOTS=()
cleanup() { for pid in "${BOTS[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; pg_stop; }
trap cleanup EXIT
pg_start 7880 || { echo "PostgreSQL's server programs are not installed: apt-get install -y postgresql" >&2; exit 2; }
(cd "$ROOT" && cargo build --release --quiet -p hookserver-bench --bin bench_bot_queued)
QUEUED=$ROOT/target/release/bench_bot_queued
PAYLOAD=$ROOT/hookserver/samples/discussion.create.hub-docs.json

echo "| replicas | durable 202s per second (sum) | per replica | waiting when the load stopped |"
echo "|---|---|---|---|"
for n in 1 2 3; do
  pg_reset
  BOTS=()
  for i in $(seq 1 "$n"); do
    port=$((7880 + i))
    HOOKSERVER_PORT=$port WEBHOOK_SECRET=bench_secret HOOKSERVER_INBOX=$PG_URL "$QUEUED" >/dev/null 2>&1 &
    BOTS+=($!)
    until curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.05; done
  done
  outs=() loads=()
  for i in $(seq 1 "$n"); do
    out=$(mktemp)
    outs+=("$out")
    LOAD_ID_PREFIX="r$n-$i-$RANDOM$RANDOM" LOAD_BODY=$PAYLOAD LOAD_SECRET=bench_secret LOAD_STATUSES=0 \
      timeout $((DURATION + 15)) wrk -t1 -c16 -d"${DURATION}s" -s "$ROOT/scripts/load.lua" \
      "http://127.0.0.1:$((7880 + i))/webhooks/test_webhook" >"$out" 2>&1 &
    loads+=($!)
  done
  wait "${loads[@]}" || true
  total=0
  for out in "${outs[@]}"; do
    rps=$(grep '^RESULT ' "$out" | cut -d' ' -f2- | jq '.rps')
    total=$(jq -n "$total + $rps")
    rm -f "$out"
  done
  waiting=$(curl -s -H "Authorization: Bearer bench_secret" "http://127.0.0.1:7881/api/inbox" | jq '.counts.queued + .counts.running + .counts.retrying')
  printf '| %d | %.0f | %.0f | %s |\n' "$n" "$total" "$(jq -n "$total / $n")" "$waiting"
  for pid in "${BOTS[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  BOTS=()
done
