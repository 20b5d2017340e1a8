#!/usr/bin/env bash
# scripts/thread_split.sh NAME PORT -- SERVER_COMMAND...
#
# Where a server's CPU goes under load, by thread: starts SERVER_COMMAND pinned to CPU 0 in
# a process group of its own, sends it Hub deliveries with wrk (pinned to CPU 1, 64
# connections, $DURATION s, a fresh `Webhook-Id` on each, loopback only), and prints each
# thread's CPU time (user + system, from /proc) per delivery in µs. Used to split a queued
# delivery's cost between the HTTP workers, the inbox's writer and the queue's runner.
#
# Example (the queued bot, a fresh inbox file):
#   cargo build --release -p hookserver-bench --bins
#   rm -f target/split.redb target/split.redb-wal
#   scripts/thread_split.sh queued 7869 -- env HOOKSERVER_PORT=7869 WEBHOOK_SECRET=bench_secret \
#     HOOKSERVER_INBOX=target/split.redb target/release/bench_bot_queued
# Needs: wrk, taskset, setsid (apt-get install -y wrk util-linux). Env: DURATION (default 10, at most 30).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -ge 4 && $3 == "--" ]] || { echo "usage: $0 NAME PORT -- SERVER_COMMAND..." >&2; exit 2; }
NAME=$1 PORT=$2
shift 3
DURATION=${DURATION:-10}
((DURATION <= 30)) || { echo "a run is at most 30 s" >&2; exit 2; }
for tool in wrk taskset setsid; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y wrk util-linux" >&2; exit 2; }
done
LOG=$(mktemp)
setsid taskset -c 0 "$@" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill -TERM -- "-$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
# CPU ticks (1/100 s) of each thread, summed by thread name.
ticks() {
  for task in /proc/"$SERVER"/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' <"$task/comm")" "$(awk '{ print $14 + $15 }' "$task/stat")"
  done | awk '{ t[$1] += $2 } END { for (k in t) print k, t[k] }' | sort
}
export LOAD_BODY=$ROOT/hookserver/samples/discussion.create.hub-docs.json LOAD_SECRET=bench_secret
LOAD_ID_PREFIX=warm-$RANDOM taskset -c 1 wrk -t1 -c64 -d2 -s "$ROOT/scripts/load.lua" \
  "http://127.0.0.1:$PORT/webhooks/test_webhook" >/dev/null
before=$(ticks)
result=$(LOAD_ID_PREFIX=run-$RANDOM$RANDOM taskset -c 1 wrk -t1 -c64 -d"$DURATION" -s "$ROOT/scripts/load.lua" \
  "http://127.0.0.1:$PORT/webhooks/test_webhook" | grep '^RESULT' | cut -c8-)
after=$(ticks)
requests=$(grep -o '"requests":[0-9]*' <<<"$result" | cut -d: -f2)
rps=$(grep -o '"rps":[0-9.]*' <<<"$result" | cut -d: -f2)
echo "$NAME: $requests deliveries, $rps req/s at c=64"
echo "| thread | CPU µs per delivery |"
echo "|---|---|"
join <(echo "$before") <(echo "$after") |
  awk -v n="$requests" '{ us = ($3 - $2) * 10000 / n; total += us; if (us >= 0.05) printf "| %s | %.1f |\n", $1, us }
    END { printf "| all | %.1f |\n", total }'
