"""A tiny HTTP proxy in front of the desk that holds back answers: the request reaches the desk and is
executed, but the client waits past its timeout and never sees the answer (a lost response, as on a bad
network)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import httpx

HOLD_S = 3.0


class LosingProxy:
    def __init__(self, upstream: str, drop: Callable[[str, str], bool]):
        self.upstream = upstream
        self.drop = drop  # (method, path) -> drop this answer?
        self.seen = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                answer = httpx.request(self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=10)
                proxy.seen.append((self.command, self.path, answer.status_code))
                if proxy.drop(self.command, self.path):
                    time.sleep(HOLD_S)
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
