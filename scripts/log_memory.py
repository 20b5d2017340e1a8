#!/usr/bin/env python3
"""The delivery log's real memory: starts BOT (default: the release trigger_training
example) without a secret on loopback, sends it 500 deliveries with 120 KiB of headers and
100 KB bodies (one connection each), and prints its RSS before and after, beside what
`GET /api/deliveries` reports (`memory.bytes`, `memory.bound`).

Usage: scripts/log_memory.py [BOT]    (build the example first: cargo build --release --example trigger_training)
"""
import http.client
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "target", "release", "examples", "trigger_training")
PORT = 7871


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    env = dict(os.environ, HOOKSERVER_HOST="127.0.0.1", HOOKSERVER_PORT=str(PORT))
    env.pop("WEBHOOK_SECRET", None)
    bot = subprocess.Popen([BOT], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        idle = rss_mib(bot.pid)
        body = json.dumps({"event": {"action": "create", "scope": "discussion"}, "pad": "p" * 100_000}).encode()
        headers = {f"X-Big-{n}": "h" * 4000 for n in range(30)}
        headers["Content-Type"] = "application/json"
        for _ in range(500):
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
            conn.request("POST", "/webhooks/trigger_training", body=body, headers=headers)
            conn.getresponse().read()
            conn.close()
        full = rss_mib(bot.pid)
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
        conn.request("GET", "/api/deliveries")
        data = json.loads(conn.getresponse().read())
        print(f"RSS idle {idle:.1f} MiB, after 500 deliveries {full:.1f} MiB (+{full - idle:.1f} MiB); "
              f"kept {len(data.get('deliveries', []))}; log memory {data.get('memory')}")
    finally:
        bot.terminate()
        bot.wait(timeout=30)


if __name__ == "__main__":
    main()
