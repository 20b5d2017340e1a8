#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] — runs each cargo-fuzz target (fuzz/fuzz_targets/) for a bounded
# time (default 120 s each), seeded with the Hub's sample payloads, and reports the number
# of executions. A crash stops with its input saved under fuzz/regressions/TARGET/ (kept
# in git: tests/fuzz_regressions.rs replays every one), and a non-zero exit.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The toolchain here is stable only:
# RUSTC_BOOTSTRAP=1 lets it take the sanitizer flags cargo-fuzz passes (-Z...).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${1:-120}
FIXTURES=${FIXTURES:-$ROOT/hookserver/samples}
command -v cargo-fuzz >/dev/null || { echo "missing cargo-fuzz: cargo install cargo-fuzz" >&2; exit 2; }
export RUSTC_BOOTSTRAP=1
cd "$ROOT/fuzz"

# Seed corpora: the samples as payloads, and as requests in the pipeline's input format.
mkdir -p corpus/payload corpus/pipeline
for sample in "$FIXTURES"/*.json; do
  name=$(basename "$sample")
  cp "$sample" "corpus/payload/$name"
  { printf 'POST /webhooks/hub\nx-webhook-secret: fuzz-secret\ncontent-type: application/json\n\n'; cat "$sample"; } \
    >"corpus/pipeline/$name"
done
# And the dashboard's routes.
printf 'POST /api/webhooks/hub/test\nauthorization: Bearer fuzz-secret\ncontent-type: application/json\n\n{"sample": "discussion.create (hub-docs)"}' \
  >corpus/pipeline/dashboard-test
printf 'POST /api/deliveries/1/redeliver\nauthorization: Bearer fuzz-secret\norigin: http://localhost:8080\n\n' \
  >corpus/pipeline/dashboard-redeliver
printf 'GET /api/deliveries/1\nauthorization: Bearer fuzz-secret\n\n' >corpus/pipeline/dashboard-detail
printf 'POST /login\ncontent-type: application/x-www-form-urlencoded\n\nsecret=fuzz-secret&next=%%2Fdashboard' \
  >corpus/pipeline/dashboard-login

status=0
for target in payload pipeline; do
  echo "== fuzz $target for ${SECONDS_EACH}s" >&2
  log=$(mktemp)
  if cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_EACH" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
    echo "$target: $runs executions in ${SECONDS_EACH}s, no crash"
  else
    status=1
    grep -E 'panicked|ERROR|SUMMARY' "$log" | head -5 >&2
    mkdir -p "regressions/$target"
    for crash in artifacts/"$target"/*; do
      [ -f "$crash" ] || continue
      cp "$crash" "regressions/$target/"
      echo "$target: CRASH, input kept as fuzz/regressions/$target/$(basename "$crash")"
    done
  fi
  rm -f "$log"
done
exit $status
