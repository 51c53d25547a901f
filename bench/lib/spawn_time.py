"""Times how long the smtp-fault binary takes from spawn to its "listening smtp" line.

Usage: spawn_time.py BINARY RUNS

Each run spawns `BINARY serve --scenario accept --listen 127.0.0.1:0`, waits for the first line
on standard output, then connects to the address it names at once, to see whether the port is
really accepting by the time the line is printed. The server is then stopped with SIGTERM.

Prints one line: "runs=N median_ms=M p90_ms=P refused_after_line=R", where R counts the runs
whose first connection, made right after the line, was refused.
"""

import math
import os
import select
import signal
import socket
import subprocess
import sys
import time

LINE_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
PREFIX = b"listening smtp 127.0.0.1:"


def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, math.ceil(p * len(ordered)))
    return ordered[rank - 1]


def read_first_line(proc):
    """Reads the first stdout line byte by byte, so nothing after it is waited for."""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + LINE_TIMEOUT_S
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError("no listening line within the time limit")
        chunk = os.read(fd, 1)
        if not chunk:
            raise RuntimeError("the server exited before printing its listening line")
        line += chunk
    return line


def one_run(binary):
    args = [binary, "serve", "--scenario", "accept", "--listen", "127.0.0.1:0"]
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = read_first_line(proc)
        elapsed = time.perf_counter() - started
        if not line.startswith(PREFIX):
            raise RuntimeError(f"unexpected first line {line!r}")
        port = int(line[len(PREFIX):].strip())
        refused = False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=LINE_TIMEOUT_S).close()
        except ConnectionRefusedError:
            refused = True
        return elapsed, refused
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_on_sigterm(signum, frame):
    # Raising here runs the `finally` that stops the server being timed, so that a SIGTERM to
    # this script leaves no server behind.
    raise SystemExit(f"stopped by signal {signum}")


def main():
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    binary, runs = sys.argv[1], int(sys.argv[2])
    samples, refused = [], 0
    for _ in range(runs):
        elapsed, was_refused = one_run(binary)
        samples.append(elapsed * 1000.0)
        refused += was_refused
    print(
        f"runs={len(samples)} median_ms={percentile(samples, 0.5):.3f} "
        f"p90_ms={percentile(samples, 0.9):.3f} refused_after_line={refused}",
        flush=True,
    )


if __name__ == "__main__":
    main()
