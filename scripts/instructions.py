#!/usr/bin/env python3
"""Instructions per delivery, counted by callgrind: a measure that machine noise cannot move.

Runs each server under `valgrind --tool=callgrind` twice, sends it N1 and then N2 Hub
deliveries over one keep-alive connection on loopback, stops it with SIGTERM, and reports
(Ir(N2) - Ir(N1)) / (N2 - N1): the user-space instructions one delivery costs, start-up and
shutdown excluded. The same for a wrong-secret delivery. Prints a Markdown table with the
ratio of each server to the first one.

Usage: instructions.py [--n1 200] [--n2 1200] 'NAME=PORT=[VAR=VALUE...] PROGRAM [ARGS]'...
(the first is the reference; the program runs under valgrind itself, so no `env`)
Each server must listen on 127.0.0.1:PORT and need `X-Webhook-Secret: bench_secret`.
Run by scripts/bench.sh --instructions.
"""
import argparse
import contextlib
import glob
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from rawhttp import read_response, request  # noqa: E402
PAYLOAD = os.path.join(HERE, "..", "hookserver", "samples", "discussion.create.hub-docs.json")


def wait_port(port, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


@contextlib.contextmanager
def under_valgrind(tool_args, command, port):
    """Runs `command` (`VAR=VALUE` words first, then the program) under valgrind with
    `tool_args`, waits for its port, and stops it with SIGTERM (SIGKILL after 120 s) at
    the end of the block."""
    env = dict(os.environ)
    command = list(command)
    while command and "=" in command[0]:
        key, _, value = command.pop(0).partition("=")
        env[key] = value
    proc = subprocess.Popen(
        ["valgrind", *tool_args] + command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def count(command, port, n, secret, body):
    out = tempfile.mktemp(prefix="callgrind.", suffix=".out")
    with under_valgrind(["--tool=callgrind", f"--callgrind-out-file={out}"], command, port):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        message = request(port, body, secret)
        for _ in range(n):
            sock.sendall(message)
            read_response(sock)
        sock.close()
    total = 0
    for path in glob.glob(out + "*"):
        with open(path) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    total += int(line.split()[1])
                    break
        os.remove(path)
    if total == 0:
        raise RuntimeError(f"no callgrind totals for {command}")
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n1", type=int, default=200)
    parser.add_argument("--n2", type=int, default=1200)
    parser.add_argument("servers", nargs="+")
    args = parser.parse_args()
    with open(PAYLOAD, "rb") as f:
        body = f.read()
    rows = []
    for spec in args.servers:
        name, port, command = spec.split("=", 2)
        port = int(port)
        per = {}
        for kind, secret in (("delivery", "bench_secret"), ("wrong secret", "wrong_secret")):
            low = count(shlex.split(command), port, args.n1, secret, body)
            high = count(shlex.split(command), port, args.n2, secret, body)
            per[kind] = (high - low) / (args.n2 - args.n1)
            print(f"[instructions] {name} {kind}: {per[kind]:.0f} Ir per request", file=sys.stderr)
        rows.append((name, per))
    ref = rows[0][1]
    print("| server | Ir per delivery | ratio | Ir per wrong-secret delivery | ratio |")
    print("|---|---|---|---|---|")
    for name, per in rows:
        print(
            f"| {name} | {per['delivery']:.0f} | {per['delivery'] / ref['delivery']:.2f}× "
            f"| {per['wrong secret']:.0f} | {per['wrong secret'] / ref['wrong secret']:.2f}× |"
        )


if __name__ == "__main__":
    main()
