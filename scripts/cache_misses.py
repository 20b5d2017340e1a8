#!/usr/bin/env python3
"""Cache misses per delivery with many connections open, counted by cachegrind's simulated
caches: what req/s at 64 connections feels and instruction counts do not see, measured
without the machine's noise.

Runs each server under `valgrind --tool=cachegrind --cache-sim=yes` twice. Each run opens
CONNS keep-alive connections on loopback and sends rounds of deliveries: one request on
every connection, then every answer read (as wrk does at CONNS connections, the server
finds many requests ready at once). Reports, per delivery, (count(R2 rounds) - count(R1
rounds)) / ((R2 - R1) * CONNS) for instructions and for each cache's misses, start-up and
shutdown excluded, and each server's ratio to the first one.

The simulated caches are one core's: 32 KiB L1 instruction and data caches, and a 512 KiB
last level standing for the core's own L2 (this machine's L3 is shared and much larger;
a line that leaves L2 is what a busy server waits for). Cachegrind does not see the
kernel's writes: a received request's bytes count as a miss where the server first reads
them, in every server alike.

Usage: cache_misses.py [--conns 64] [--r1 10] [--r2 30] 'NAME=PORT=[VAR=VALUE...] PROGRAM [ARGS]'...
(the first is the reference; the program runs under valgrind itself, so no `env`)
Each server must listen on 127.0.0.1:PORT and take `X-Webhook-Secret: bench_secret`.
"""
import argparse
import os
import shlex
import socket
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from instructions import PAYLOAD, under_valgrind  # noqa: E402
from rawhttp import read_response, request  # noqa: E402

CACHES = ["--I1=32768,8,64", "--D1=32768,8,64", "--LL=524288,8,64"]
# Cachegrind's events, and the columns shown (a sum of events for the last level).
SHOWN = {
    "instructions": ["Ir"],
    "L1i misses": ["I1mr"],
    "L1d read misses": ["D1mr"],
    "L1d write misses": ["D1mw"],
    "L2 misses": ["ILmr", "DLmr", "DLmw"],
}


def count(command, port, conns, rounds, body):
    """Cachegrind's totals, by event, for `rounds` rounds over `conns` connections."""
    fd, out = tempfile.mkstemp(prefix="cachegrind.", suffix=".out")
    os.close(fd)
    tool = ["--tool=cachegrind", "--cache-sim=yes", *CACHES, f"--cachegrind-out-file={out}"]
    with under_valgrind(tool, command, port):
        socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(conns)]
        try:
            message = request(port, body)
            for _ in range(rounds):
                for sock in socks:
                    sock.sendall(message)
                for sock in socks:
                    status = read_response(sock)
                    if status != 200:
                        raise RuntimeError(f"{shlex.join(command)} answered {status}, not 200")
        finally:
            for sock in socks:
                sock.close()
    events, totals = None, None
    with open(out) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):
                totals = [int(x) for x in line.split()[1:]]
    os.remove(out)
    if not events or not totals:
        raise RuntimeError(f"no cachegrind summary for {command}")
    return dict(zip(events, totals))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--r1", type=int, default=10)
    parser.add_argument("--r2", type=int, default=30)
    parser.add_argument("servers", nargs="+")
    args = parser.parse_args()
    with open(PAYLOAD, "rb") as f:
        body = f.read()
    deliveries = (args.r2 - args.r1) * args.conns
    rows = []
    for spec in args.servers:
        name, port, command = spec.split("=", 2)
        port = int(port)
        low = count(shlex.split(command), port, args.conns, args.r1, body)
        high = count(shlex.split(command), port, args.conns, args.r2, body)
        per = {
            shown: sum(high[e] - low[e] for e in events) / deliveries
            for shown, events in SHOWN.items()
        }
        print(f"[cache misses] {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()),
              file=sys.stderr)
        rows.append((name, per))
    ref = rows[0][1]
    print(f"Per delivery, {args.conns} connections:")
    print("| server | " + " | ".join(SHOWN) + " |")
    print("|---|" + "---|" * len(SHOWN))
    for name, per in rows:
        cells = [f"{per[k]:.0f} ({per[k] / ref[k]:.2f}×)" if ref[k] else f"{per[k]:.0f}"
                 for k in SHOWN]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
