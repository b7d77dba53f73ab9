"""A webhook receiver for the tests: records every delivery (headers and raw body); answers 500 to the first
``fail_first`` deliveries (or to all while ``failing`` is set)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.failing = False
        self.received = []  # (headers dict, body bytes, answered status)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    fail = receiver.failing or receiver.fail_first > 0
                    if receiver.fail_first > 0:
                        receiver.fail_first -= 1
                    status = 500 if fail else 204
                    receiver.received.append((dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self):
        with self.lock:
            return [(h, b) for h, b, status in self.received if status < 300]

    def wait_for(self, predicate, timeout_s: float = 60.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out; received: {[(s, b[:200]) for _, b, s in self.received]}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()
