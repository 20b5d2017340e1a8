#!/usr/bin/env python3
"""Idle keep-alive connections against a webhook server (loopback only, bounded).

Starts the server command, opens N connections that each deliver one Hub payload and then
stay open and idle, and reports the server's RSS growth and how long a new delivery takes
while they are open (median and max of 20). Prints one JSON line.

Usage: idle_connections.py [--connections N] [--port P] [--name NAME] -- SERVER_COMMAND...
The server must listen on 127.0.0.1:P (default 7867) and need `X-Webhook-Secret: bench_secret`.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from rawhttp import read_response, request  # noqa: E402
PAYLOAD = os.path.join(HERE, "..", "hookserver", "samples", "discussion.create.hub-docs.json")


def rss_mib(pid):
    total = 0
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return round(total / 1024, 1)


def deliver(port, body, sock=None):
    own = sock is None
    if own:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(request(port, body))
    status = read_response(sock)
    if own:
        sock.close()
    return status


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--port", type=int, default=7867)
    parser.add_argument("--name", default="idle")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    body = open(PAYLOAD, "rb").read()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                if deliver(args.port, body) == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.01)
        time.sleep(0.5)
        before = rss_mib(server.pid)
        socks = []
        opened_at = time.time()
        for _ in range(args.connections):
            sock = socket.create_connection(("127.0.0.1", args.port), timeout=5)
            if deliver(args.port, body, sock) != 200:
                raise SystemExit("a delivery failed")
            socks.append(sock)
        open_s = time.time() - opened_at
        with_conns = rss_mib(server.pid)
        timings = []
        for _ in range(20):
            start = time.perf_counter()
            status = deliver(args.port, body)
            timings.append((time.perf_counter() - start) * 1000)
            assert status == 200
        timings.sort()
        still_open = 0
        for sock in socks:
            try:
                sock.sendall(request(args.port, body))
                read_response(sock)
                still_open += 1
            except OSError:
                pass
            sock.close()
        print(json.dumps({
            "name": args.name,
            "connections": args.connections,
            "open_s": round(open_s, 2),
            "idle_rss_mib": before,
            "rss_with_connections_mib": with_conns,
            "rss_growth_mib": round(with_conns - before, 1),
            "new_delivery_ms_median": round(timings[len(timings) // 2], 2),
            "new_delivery_ms_max": round(timings[-1], 2),
            "connections_still_served": still_open,
        }))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
