"""A small local stand-in for Mailgun's messages API that checks every request exactly.

It accepts ``POST /v3/<domain>/messages`` with basic auth ``api:<key>`` and the form fields
``from``, ``to``, ``subject``, ``text`` and ``html``; anything else is answered the way Mailgun
would (401, 404, 400) and noted in ``problems``. ``fail(n)`` makes the next ``n`` good requests
get a 500, to test retries.
"""
from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

REQUIRED_FIELDS = ("from", "to", "subject", "text", "html")


class MailgunServer:
    """Run in a thread; ``url`` is what ``MAILGUN_BASE_URL`` should be."""

    def __init__(self, domain: str = "mg.example.test", api_key: str = "key-test-123"):
        self.domain = domain
        self.api_key = api_key
        self.messages: list[dict[str, str]] = []
        self.requests = 0
        self.problems: list[str] = []
        self._failures = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> MailgunServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def fail(self, times: int) -> None:
        """Answer the next ``times`` well-formed requests with a 500."""
        with self._lock:
            self._failures = times

    def wait_for_messages(self, count: int, timeout: float = 60.0) -> list[dict[str, str]]:
        """Block until ``count`` messages were accepted; returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.1)
        raise AssertionError(f"Mailgun check server got {len(self.messages)} message(s), wanted {count}; "
                             f"problems: {self.problems}")

    def _check(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict | None, str]:
        """Returns (status, accepted fields or None, problem text)."""
        if method != "POST":
            return 405, None, f"{method} {path}: Mailgun's send API is POST only"
        if path != f"/v3/{self.domain}/messages":
            return 404, None, f"wrong path {path!r}, want /v3/{self.domain}/messages"
        expected = "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
        if headers.get("Authorization") != expected:
            return 401, None, f"wrong or missing basic auth {headers.get('Authorization')!r}"
        if headers.get_content_type() != "application/x-www-form-urlencoded":
            return 400, None, f"unexpected content type {headers.get_content_type()!r}"
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        repeated = [name for name, values in form.items() if len(values) != 1]
        missing = [name for name in REQUIRED_FIELDS if not (form.get(name) or [""])[0].strip()]
        if repeated or missing:
            return 400, None, f"missing fields {missing}, repeated fields {repeated}"
        return 200, {name: values[0] for name, values in form.items()}, ""

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, fields, problem = server._check(self.command, self.path, self.headers, body)
                with server._lock:
                    server.requests += 1
                    if problem:
                        server.problems.append(problem)
                    elif server._failures > 0:
                        server._failures -= 1
                        status, fields = 500, None
                    if fields is not None:
                        server.messages.append(fields)
                payload = ({"id": f"<{len(server.messages)}@{server.domain}>", "message": "Queued. Thank you."}
                           if status == 200 else {"message": problem or "Internal server error"})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, format: str, *args) -> None:  # quiet: tests read .problems instead
                pass

        return Handler
