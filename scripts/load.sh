#!/usr/bin/env bash
# scripts/load.sh NAME URL_BASE -- SERVER_COMMAND...
#
# Measures one webhook receiver the same way every time, on loopback only, every run bounded:
# starts SERVER_COMMAND pinned to CPU $SERVER_CPU in a process group of its own, times its
# start-up (spawn to the first 200 on GET /), reads its idle RSS, checks one delivery by
# hand, then runs wrk (1 thread, pinned to CPU $LOAD_CPU) for $DURATION s at each of $CONNS
# connections after a $WARMUP s warm-up, then $NEG_DURATION s of wrong secrets and of
# malformed JSON; samples the RSS every 100 ms; stops the server with SIGTERM (SIGKILL after
# 10 s). Appends one JSON record to $RESULTS (read by scripts/bench_table.py) and prints it.
#
# The server listens on URL_BASE, answers 200 on GET /, and takes POST $POST_PATH with
# `X-Webhook-Secret: $SECRET`, answering 2xx to the Hub's sample.
# Needs: wrk, curl, jq (apt-get install -y wrk curl jq), taskset (util-linux).
# Env (defaults): POST_PATH=/webhooks/test_webhook SECRET=bench_secret CONNS="1 16 64"
#   DURATION=10 WARMUP=2 NEG_DURATION=5 NEG_CONNS=16 SERVER_CPU=0 LOAD_CPU=1
#   PAYLOAD=hookserver/samples/discussion.create.hub-docs.json RESULTS=target/bench/results.jsonl
#   SERVER_LOG=target/bench/NAME.log NOTE="" UNIQUE_IDS=0 (1: a fresh Webhook-Id on each request of
#   the warm-up and measured runs, as the Hub sends; a queued endpoint then stores each one)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -ge 4 && $3 == "--" ]] || { echo "usage: $0 NAME URL_BASE -- SERVER_COMMAND..." >&2; exit 2; }
NAME=$1 BASE=${2%/}
shift 3
POST_PATH=${POST_PATH:-/webhooks/test_webhook}
SECRET=${SECRET:-bench_secret}
CONNS=${CONNS:-"1 16 64"}
DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} NEG_DURATION=${NEG_DURATION:-5} NEG_CONNS=${NEG_CONNS:-16}
SERVER_CPU=${SERVER_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
PAYLOAD=${PAYLOAD:-$ROOT/hookserver/samples/discussion.create.hub-docs.json}
RESULTS=${RESULTS:-$ROOT/target/bench/results.jsonl}
SERVER_LOG=${SERVER_LOG:-$ROOT/target/bench/$NAME.log}
NOTE=${NOTE:-}
UNIQUE_IDS=${UNIQUE_IDS:-0}

for tool in wrk curl jq taskset setsid; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y wrk curl jq util-linux" >&2; exit 2; }
done
((DURATION <= 30 && WARMUP <= 30 && NEG_DURATION <= 30)) || { echo "each run is at most 30 s" >&2; exit 2; }
hostport=${BASE#http://}
HOST=${hostport%:*} PORT=${hostport##*:}
case $HOST in 127.*|localhost) ;; *) echo "refusing: load goes to 127.0.0.1 only, not $HOST" >&2; exit 2 ;; esac
mkdir -p "$(dirname "$RESULTS")" "$(dirname "$SERVER_LOG")"
WORK=$(mktemp -d)
head -c $(( $(wc -c <"$PAYLOAD") / 2 )) "$PAYLOAD" >"$WORK/malformed.json"
taskset -cp "$LOAD_CPU" $$ >/dev/null   # the harness and what it forks stay off the server's CPU
say() { printf '[load %s] %s\n' "$NAME" "$*" >&2; }
flags=()

# The status of GET / through bash's /dev/tcp: no fork per poll, so start-up is not padded.
status_of_root() {
  local line=""
  { { printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$hostport" >&3; read -r -t 2 line <&3; } 3<>"/dev/tcp/$HOST/$PORT"; } 2>/dev/null
  line=${line#HTTP/* }
  printf '%s' "${line:0:3}"
}
# The RSS (KiB) of every process of the server's session.
rss_kib() { ps -s "$SERVER" -o rss= 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
exec {NAP}<> <(:)
nap() { read -r -t "$1" -u "$NAP" _ || true; }   # sleep without a fork

SERVER="" SAMPLER=""
stop_server() {
  [[ -n $SAMPLER ]] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
  SAMPLER=""
  [[ -n $SERVER ]] || return 0
  kill -TERM -- "-$SERVER" 2>/dev/null
  for _ in $(seq 200); do kill -0 "$SERVER" 2>/dev/null || break; nap 0.05; done
  if kill -0 "$SERVER" 2>/dev/null; then flags+=("ignored SIGTERM for 10 s"); kill -KILL -- "-$SERVER" 2>/dev/null; fi
  wait "$SERVER" 2>/dev/null
  SERVER=""
}
trap 'stop_server; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# wrk for $3 s at $2 connections: label $1, secret $4, body $5, count statuses $6 (0/1).
run_wrk() {
  local out result
  local prefix=""
  [[ $UNIQUE_IDS == 1 && ( $1 == good || $1 == warmup ) ]] && prefix="$1-$2-$RANDOM$RANDOM$RANDOM"
  out=$(LOAD_ID_PREFIX=$prefix LOAD_BODY=$5 LOAD_SECRET=$4 LOAD_STATUSES=$6 timeout $(($3 + 15)) \
    taskset -c "$LOAD_CPU" wrk -t1 -c"$2" -d"$3s" --timeout 5s -s "$ROOT/scripts/load.lua" "$BASE$POST_PATH" 2>&1)
  result=$(grep '^RESULT ' <<<"$out" | cut -d' ' -f2-)
  [[ -n $result ]] || { say "wrk gave no result ($1 c=$2): $out"; echo '{}'; return; }
  jq -c --arg what "$1" --argjson conns "$2" '. + {"label": $what, conns: $conns}' <<<"$result"
}

[[ $(status_of_root) =~ ^[1-5] ]] && { say "something already answers on $BASE: not measuring it"; exit 3; }

started=$EPOCHREALTIME
setsid taskset -c "$SERVER_CPU" "$@" >"$SERVER_LOG" 2>&1 &
SERVER=$!
until [[ $(status_of_root) == 200 ]]; do
  kill -0 "$SERVER" 2>/dev/null || { say "the server exited while starting; its log:"; tail -20 "$SERVER_LOG" >&2; exit 4; }
  (( ${EPOCHREALTIME%.*} - ${started%.*} < 120 )) || { say "no 200 on GET / in 120 s"; exit 4; }
  nap 0.005
done
startup_ms=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
nap 1
idle_kib=$(rss_kib)
say "start-up $startup_ms ms, idle RSS $((idle_kib / 1024)) MiB"

check=$(curl -s --max-time 10 -o "$WORK/check" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H "X-Webhook-Secret: $SECRET" --data-binary @"$PAYLOAD" "$BASE$POST_PATH")
[[ $check == 2* ]] || flags+=("the delivery by hand answered $check: $(head -c 200 "$WORK/check")")

( peak=0
  while kill -0 "$SERVER" 2>/dev/null; do
    r=$(rss_kib); ((r > peak)) && peak=$r && echo "$peak" >"$WORK/peak"
    nap 0.1
  done ) &
SAMPLER=$!

runs=()
for c in $CONNS; do
  run_wrk warmup "$c" "$WARMUP" "$SECRET" "$PAYLOAD" 0 >/dev/null
  r=$(run_wrk good "$c" "$DURATION" "$SECRET" "$PAYLOAD" 0)
  runs+=("$r")
  say "c=$c: $(jq -r '"\(.rps) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, >=400: \(.status_ge_400), socket errors: \(.socket_errors)"' <<<"$r")"
  [[ $(jq '.status_ge_400' <<<"$r") == 0 && $(jq '.socket_errors' <<<"$r") == 0 ]] || flags+=("errors at c=$c")
done
# Malformed first: a server that throttles wrong secrets per address (hookserver does)
# would answer the malformed run 429 for a while after the wrong-secret run.
malformed=$(run_wrk malformed_json "$NEG_CONNS" "$NEG_DURATION" "$SECRET" "$WORK/malformed.json" 1)
wrong=$(run_wrk wrong_secret "$NEG_CONNS" "$NEG_DURATION" wrong_secret "$PAYLOAD" 1)
say "wrong secret: $(jq -c '{rps, statuses}' <<<"$wrong"); malformed: $(jq -c '{rps, statuses}' <<<"$malformed")"
kill -0 "$SERVER" 2>/dev/null || flags+=("the server died during the run")
stopping=$EPOCHREALTIME
stop_server
stop_ms=$(awk -v a="$stopping" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
peak_kib=$(cat "$WORK/peak" 2>/dev/null || echo 0)
[[ $(pgrep -c -x rustc) == 0 ]] || flags+=("rustc was running: the machine was not quiet")

record=$(jq -nc --arg name "$NAME" --arg note "$NOTE" --arg command "$*" --arg ts "$(date -u +%FT%TZ)" \
  --argjson startup "$startup_ms" --argjson idle "$idle_kib" --argjson peak "$peak_kib" --argjson stop "$stop_ms" \
  --argjson runs "$(printf '%s\n' "${runs[@]}" | jq -sc .)" --argjson wrong "$wrong" --argjson malformed "$malformed" \
  --argjson flags "$(printf '%s\n' "${flags[@]+"${flags[@]}"}" | jq -R . | jq -sc 'map(select(length > 0))')" \
  '{name: $name, ts: $ts, command: $command, note: $note, startup_ms: $startup,
    idle_rss_mib: ($idle / 1024 * 10 | round / 10), rss_peak_all_mib: ($peak / 1024 * 10 | round / 10),
    stop_ms: $stop, runs: $runs, wrong_secret: $wrong, malformed_json: $malformed, flags: $flags}')
echo "$record" >>"$RESULTS"
echo "$record"
