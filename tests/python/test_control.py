"""The control API from Python, with nothing but the standard library.

This is how a test suite written in another language uses smtp-fault: start the binary on
port 0, read its addresses from the `listening` lines it prints first, point the mail code
under test at the SMTP address (smtplib here), then read and steer the server over HTTP.

Run from the repository root, after `cargo build` (or `cargo test`):

    python3 -m unittest discover --start-directory tests/python --verbose

The binary is target/debug/smtp-fault, or the path in SMTP_FAULT_BIN.
"""

import json
import os
import pathlib
import queue
import smtplib
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("SMTP_FAULT_BIN", REPO / "target" / "debug" / "smtp-fault"))

# How long the binary may take to print its listening lines, and any one request may take.
START_TIMEOUT = 10
TIMEOUT = 5

# No proxy from the environment may see these requests: they are for 127.0.0.1 only.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

MESSAGE = (
    b"From: Alice <alice@client.test>\r\n"
    b"To: Bob <bob@dest.test>\r\n"
    b"Subject: Hello from smtplib\r\n"
    b"Message-ID: <1@client.test>\r\n"
    b"\r\n"
    b"A first line.\r\n"
    b".A line that starts with a dot.\r\n"
)

MAILBOX_FULL = """
name = "mailbox-full-from-python"
summary = "Mailboxes at full.test are full."

[reproduces]
error = "other"
reply = "452 4.2.2"
sender_log = "452 4.2.2 Mailbox full"

[[faults]]
stage = "rcpt"
kind = "reply"
code = 452
enhanced = "4.2.2"
text = "Mailbox full"

[faults.when]
rcpt = "*@full.test"
"""


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


class ControlApiTest(unittest.TestCase):
    def setUp(self):
        if not BINARY.is_file():
            self.fail(
                f"{BINARY} does not exist: run `cargo build` first, "
                "or set SMTP_FAULT_BIN to the smtp-fault binary"
            )
        self.server = subprocess.Popen(
            [str(BINARY), "serve", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.addCleanup(self.stop_server)

        # The lines are read on a thread, so that a binary that never prints them fails the
        # test after START_TIMEOUT instead of hanging it. The thread then drains stdout.
        lines = queue.Queue()
        threading.Thread(target=self.read_lines, args=(lines,), daemon=True).start()
        listening = {}
        deadline = time.monotonic() + START_TIMEOUT
        # Other listeners (smtps, dns) have lines of their own; the control line comes last.
        while "smtp" not in listening or "control" not in listening:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.fail("smtp-fault did not print its listening lines in time")
            if line is None:
                self.fail(f"smtp-fault exited early with status {self.server.wait()}")
            word, kind, addr = line.split()
            self.assertEqual(word, "listening", line)
            listening[kind] = parse_addr(addr)
        self.smtp = listening["smtp"]
        self.control = "http://%s:%d" % listening["control"]

    def read_lines(self, lines):
        for line in self.server.stdout:
            lines.put(line.strip())
        lines.put(None)

    def stop_server(self):
        self.server.terminate()
        try:
            self.server.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.server.stdout.close()

    def request(self, method, path, body=None, content_type=None):
        """Returns the status, the content type and the body of a control API request."""
        request = urllib.request.Request(self.control + path, data=body, method=method)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with HTTP.open(request, timeout=TIMEOUT) as response:
                return response.status, response.headers.get("Content-Type"), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.headers.get("Content-Type"), error.read()

    def get_json(self, path):
        status, _, body = self.request("GET", path)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def smtp_client(self):
        host, port = self.smtp
        client = smtplib.SMTP(host, port, local_hostname="client.test", timeout=TIMEOUT)
        self.addCleanup(client.close)
        return client

    def wait_until_idle(self):
        for _ in range(200):
            counters = self.get_json("/api/counters")
            if counters["active_sessions"] == 0:
                return counters
            time.sleep(0.01)
        self.fail(f"sessions still running: {counters}")

    def test_a_message_sent_with_smtplib_is_seen_whole_through_the_control_api(self):
        self.assertEqual(self.get_json("/api/health"), {"status": "ok", "scenario": "accept"})

        with self.smtp_client() as client:
            refused = client.sendmail("alice@client.test", ["bob@dest.test"], MESSAGE)
        self.assertEqual(refused, {})

        messages = self.get_json("/api/messages")
        self.assertEqual(len(messages), 1)
        message = messages[0]
        self.assertEqual(message["mail_from"], "alice@client.test")
        self.assertEqual(message["rcpt_to"], ["bob@dest.test"])
        self.assertEqual(message["helo"], "client.test")
        self.assertIsNone(message["tls"])
        self.assertEqual(message["size"], len(MESSAGE))

        status, content_type, raw = self.request("GET", f"/api/messages/{message['id']}/raw")
        self.assertEqual(status, 200)
        self.assertEqual(content_type, "message/rfc822")
        self.assertEqual(raw, MESSAGE)

        parsed = self.get_json(f"/api/messages/{message['id']}")
        self.assertEqual(parsed["subject"], "Hello from smtplib")
        self.assertEqual(parsed["from"], ["alice@client.test"])
        self.assertEqual(parsed["to"], ["bob@dest.test"])
        self.assertIn("A line that starts with a dot.", parsed["text"][0])

        counters = self.wait_until_idle()
        self.assertEqual(counters["connections"], 1)
        self.assertEqual(counters["messages"], 1)

        sessions = self.get_json("/api/sessions")
        said = [(e["direction"], e["text"]) for e in sessions[0]["entries"]]
        self.assertIn(("client", "ehlo client.test"), said)
        self.assertIn(("client", f"mail FROM:<alice@client.test> size={len(MESSAGE)}"), said)
        self.assertIn(("client", "rcpt TO:<bob@dest.test>"), said)
        self.assertEqual(sessions[0]["faults"], [])
        self.assertFalse(sessions[0]["open"])

        status, _, _ = self.request("DELETE", "/api/messages")
        self.assertIn(status, (200, 204))
        self.assertEqual(self.get_json("/api/messages"), [])

    def test_a_scenario_put_over_http_makes_smtplib_see_452_mailbox_full(self):
        status, _, body = self.request(
            "PUT", "/api/scenario", MAILBOX_FULL.encode(), "application/toml"
        )
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["name"], "mailbox-full-from-python")
        self.assertEqual(self.get_json("/api/scenario")["faults"], ["rcpt: reply 452 4.2.2"])

        with self.smtp_client() as client:
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as refused:
                client.sendmail("alice@client.test", ["carol@full.test"], MESSAGE)
        self.assertEqual(
            refused.exception.recipients, {"carol@full.test": (452, b"4.2.2 Mailbox full")}
        )
        self.assertEqual(self.get_json("/api/messages"), [])
        self.wait_until_idle()
        self.assertEqual(self.get_json("/api/sessions")[0]["faults"], ["rcpt: reply 452 4.2.2"])

    def test_a_bad_scenario_is_refused_with_its_position_and_the_old_one_stays(self):
        bad = MAILBOX_FULL.replace('text = "Mailbox full"', 'txt = "Mailbox full"')

        status, _, body = self.request("PUT", "/api/scenario", bad.encode(), "application/toml")

        self.assertEqual(status, 400)
        error = json.loads(body)["error"]
        self.assertTrue(error.startswith("request body:15:1: "), error)
        self.assertIn("`txt`", error)
        self.assertEqual(self.get_json("/api/health")["scenario"], "accept")


if __name__ == "__main__":
    unittest.main()
