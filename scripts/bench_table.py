#!/usr/bin/env python3
"""Medians over the rounds of scripts/bench.sh, and the ratios against the ceiling."""
import json
import statistics
import sys


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def good(record, conns, field):
    for run in record.get("runs", []):
        if run.get("label") == "good" and run.get("conns") == conns:
            return run.get(field)
    return None


def figures(records):
    return {
        "rps16": median([good(r, 16, "rps") for r in records]),
        "rps64": median([good(r, 64, "rps") for r in records]),
        "p99_64": median([good(r, 64, "p99_ms") for r in records]),
        "wrong": median([r.get("wrong_secret", {}).get("rps") for r in records]),
        "malformed": median([r.get("malformed_json", {}).get("rps") for r in records]),
        "startup": median([r.get("startup_ms") for r in records]),
        "idle": median([r.get("idle_rss_mib") for r in records]),
        "peak": median([r.get("rss_peak_all_mib") for r in records]),
    }


def fmt(value, unit=""):
    if value is None:
        return "-"
    if isinstance(value, float) and value >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:,.2f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def main(path):
    by_name, idle = {}, []
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        record = json.loads(line)
        if "connections" in record:
            idle.append(record)
        else:
            by_name.setdefault(record["name"], []).append(record)
    rounds = max((len(v) for v in by_name.values()), default=0)
    print(f"Medians of {rounds} round(s) from {path}\n")
    print("| server | req/s c=16 | req/s c=64 | p99 c=64 | wrong secret req/s | malformed req/s | start-up | idle RSS | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    all_figures = {name: figures(records) for name, records in by_name.items()}
    for name, f in all_figures.items():
        print(f"| {name} | {fmt(f['rps16'])} | {fmt(f['rps64'])} | {fmt(f['p99_64'], ' ms')} | {fmt(f['wrong'])} "
              f"| {fmt(f['malformed'])} | {fmt(f['startup'], ' ms')} | {fmt(f['idle'], ' MiB')} | {fmt(f['peak'], ' MiB')} |")
    ceiling = all_figures.get("ceiling")
    bot = all_figures.get("hookserver")
    bot1000 = all_figures.get("hookserver-1000")

    def ratio(a, b):
        return None if a is None or b in (None, 0) else a / b

    if ceiling and bot:
        print("\n| target | measured | goal | met |\n|---|---|---|---|")
        rows = [
            ("req/s c=16 vs ceiling", ratio(bot["rps16"], ceiling["rps16"]), ">= 0.95", lambda r: r >= 0.95),
            ("req/s c=64 vs ceiling", ratio(bot["rps64"], ceiling["rps64"]), ">= 0.95", lambda r: r >= 0.95),
            ("p99 c=64 vs ceiling", ratio(bot["p99_64"], ceiling["p99_64"]), "<= 1.1", lambda r: r <= 1.1),
            ("wrong-secret req/s vs ceiling", ratio(bot["wrong"], ceiling["wrong"]), ">= 0.9", lambda r: r >= 0.9),
            ("idle RSS (MiB)", bot["idle"], "<= 8", lambda r: r <= 8),
            ("start-up (ms)", bot["startup"], "<= 25", lambda r: r <= 25),
        ]
        if bot1000:
            rows += [
                ("1,000 endpoints: req/s c=64 vs 1 endpoint", ratio(bot1000["rps64"], bot["rps64"]), ">= 0.95", lambda r: r >= 0.95),
                ("1,000 endpoints: start-up (ms)", bot1000["startup"], "<= 50", lambda r: r <= 50),
            ]
        queued, inline_ids = all_figures.get("hookserver-queued"), all_figures.get("hookserver-ids")
        if queued and inline_ids:
            rows += [
                ("queued: durable 202s/s c=16 vs inline (same ids)", ratio(queued["rps16"], inline_ids["rps16"]), "-", lambda r: True),
                ("queued: durable 202s/s c=64 vs inline (same ids)", ratio(queued["rps64"], inline_ids["rps64"]), ">= 0.5", lambda r: r >= 0.5),
                ("queued: p99 of the 202 at c=64 (ms)", queued["p99_64"], "< 10", lambda r: r < 10),
            ]
            queued_pg = all_figures.get("hookserver-queued-pg")
            if queued_pg:
                rows += [
                    ("queued on PostgreSQL: 202s/s c=64 vs inline", ratio(queued_pg["rps64"], inline_ids["rps64"]), "-", lambda r: True),
                    ("queued on PostgreSQL: p99 of the 202 at c=64 (ms)", queued_pg["p99_64"], "-", lambda r: True),
                ]
        if idle:
            growth = median([r["rss_growth_mib"] for r in idle])
            latency = median([r["new_delivery_ms_max"] for r in idle])
            rows += [
                (f"{idle[0]['connections']} idle connections: RSS growth (MiB)", growth, "<= 40", lambda r: r <= 40),
                ("... a new delivery meanwhile, worst of 20 (ms)", latency, "< 10", lambda r: r < 10),
            ]
        for label, value, goal, check in rows:
            met = "-" if value is None else ("yes" if check(value) else "**no**")
            print(f"| {label} | {fmt(value)} | {goal} | {met} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/bench/results.jsonl")
