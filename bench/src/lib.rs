//! Benchmarks of hookserver; see `scripts/bench.sh` and `BENCHMARKS.md`.
