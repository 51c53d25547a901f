"""Opens many TCP connections to one loopback port and holds them open.

Usage: hold_connections.py PORT COUNT HOLD_SECONDS

Prints "opened N" once every connection is up (or "failed N: REASON" if one could not be made),
then holds them until standard input closes or HOLD_SECONDS pass, whichever is first, and closes
them all. Only 127.0.0.1 is ever connected to.
"""

import resource
import select
import socket
import sys
import time

HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 5.0


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        sys.exit(f"hold_connections: need {needed} file descriptors, the limit is {soft}")


def main():
    port, count, hold_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    raise_fd_limit(count + 64)

    sockets = []
    try:
        for _ in range(count):
            s = socket.create_connection((HOST, port), timeout=CONNECT_TIMEOUT_S)
            sockets.append(s)
    except OSError as e:
        print(f"failed {len(sockets)}: {e}", flush=True)
        for s in sockets:
            s.close()
        sys.exit(1)
    print(f"opened {len(sockets)}", flush=True)

    # Standard input closing is the signal to let go; the deadline makes sure the process
    # ends even if nobody ever says so.
    deadline = time.monotonic() + hold_s
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sys.stdin], [], [], left)
        if readable and not sys.stdin.buffer.read1(4096):
            break
    for s in sockets:
        s.close()


if __name__ == "__main__":
    main()
