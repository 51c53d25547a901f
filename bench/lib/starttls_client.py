"""Runs complete STARTTLS sessions against a loopback SMTP server and counts them per second.

Usage: starttls_client.py PORT CA_PEM SERVER_NAME COUNT CONCURRENCY TIME_LIMIT_S

Each session connects, reads the greeting, sends EHLO, checks that STARTTLS is offered, sends
STARTTLS, completes the TLS handshake trusting only CA_PEM and checking SERVER_NAME, sends QUIT
over TLS and reads the 221. COUNT sessions run, CONCURRENCY at a time, within TIME_LIMIT_S.

Prints one line: "handshakes=N failures=F seconds=S per_second=R", then the first failure, if any,
on standard error. Exits non-zero if any session failed. Only 127.0.0.1 is ever connected to.
"""

import asyncio
import ssl
import sys
import time

HOST = "127.0.0.1"
STEP_TIMEOUT_S = 10.0


async def read_reply(reader):
    """Reads one SMTP reply, all its lines, and returns (code, text)."""
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), STEP_TIMEOUT_S)
        if not line:
            raise ConnectionError("connection closed mid-reply")
        lines.append(line.decode("ascii", "replace").rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return int(lines[0][:3]), "\n".join(lines)


async def expect(reader, code):
    got, text = await read_reply(reader)
    if got != code:
        raise ConnectionError(f"expected {code}, got {text!r}")
    return text


async def one_session(port, context, server_name):
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(HOST, port), STEP_TIMEOUT_S
    )
    try:
        await expect(reader, 220)
        writer.write(b"EHLO bench.lab.test\r\n")
        ehlo = await expect(reader, 250)
        if "STARTTLS" not in ehlo.upper():
            raise ConnectionError("STARTTLS is not offered")
        writer.write(b"STARTTLS\r\n")
        await expect(reader, 220)
        await asyncio.wait_for(
            writer.start_tls(context, server_hostname=server_name), STEP_TIMEOUT_S
        )
        writer.write(b"QUIT\r\n")
        await expect(reader, 221)
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), STEP_TIMEOUT_S)
        except (OSError, ssl.SSLError, asyncio.TimeoutError):
            # The server closing first is how a session normally ends.
            pass


async def run(port, ca_pem, server_name, count, concurrency, time_limit_s):
    context = ssl.create_default_context(cafile=ca_pem)
    started = time.monotonic()
    deadline = started + time_limit_s
    remaining = count
    done = 0
    failures = []

    async def worker():
        nonlocal remaining, done
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            try:
                await one_session(port, context, server_name)
                done += 1
            except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
                failures.append(repr(e))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, failures, time.monotonic() - started


def main():
    port, ca_pem, server_name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    count, concurrency, time_limit_s = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    done, failures, seconds = asyncio.run(
        run(port, ca_pem, server_name, count, concurrency, time_limit_s)
    )
    print(
        f"handshakes={done} failures={len(failures)} seconds={seconds:.3f} "
        f"per_second={done / seconds:.1f}",
        flush=True,
    )
    if failures:
        print(f"first failure: {failures[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
