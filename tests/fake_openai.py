"""A small OpenAI-compatible server on 127.0.0.1 for tests, with scripted faults.

It answers a fixed refusal for prompts that mention a harmful word and a short answer
otherwise, and can be told to fail the first N requests of a prompt in a given way.
Bounded by construction: it serves at most ``max_requests`` chat requests (later ones
get HTTP 503 and are counted in ``overflow``), holds no response longer than
``hold_s``, shuts itself down after ``time_limit_s``, and stops with the test.

Fault kinds (a list per prompt substring, consumed in order; ``None`` = answer normally):

- ``"500"``: HTTP 500 with a JSON error body
- ``"429"`` / ``"429:<seconds>"``: HTTP 429 with ``Retry-After`` (default 0)
- ``"401"``: HTTP 401 (a wrong key: retrying cannot help)
- ``"slow"``: hold the response for ``hold_s`` seconds, then answer (a client with a
  shorter timeout gives up first)
- ``"reset"``: close the connection without any response
- ``"partial"``: send the status line, headers and half the body, then close
  (connection reset mid-response; Content-Length promises more)
- ``"truncated"``: HTTP 200 whose complete body is JSON cut in the middle
- ``"malformed"``: HTTP 200 with a body that is not JSON at all
- ``"html"``: HTTP 200 with an HTML error page (a proxy in front of the server)
- ``"empty"``: HTTP 200 with ``{"choices": []}``
- ``"nocontent"``: HTTP 200, a choice whose message content is null
- ``"badusage"``: HTTP 200, a good answer but ``usage.completion_tokens`` is not a number
- ``"notobject"``: HTTP 200 with a JSON list instead of an object
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REFUSAL = "I'm sorry, but I can't help with that."
ANSWER = "Sure: here is a safe, short answer."
_HARMFUL = ("bomb", "weapon", "poison", "hack", "steal")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: with 8+ clients connecting at once on a
    # busy machine, SYNs beyond it are dropped and retried by the kernel a second later,
    # which a test's short client timeout turns into a failed attempt the server never saw.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that hang up (the faults provoke that); loud about anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeOpenAI:
    def __init__(
        self, faults: dict[str, list[str | None]] | None = None, api_key: str | None = None, *,
        max_requests: int = 10_000, hold_s: float = 3.0, time_limit_s: float = 600.0, port: int = 0,
        tls: Any = None,
    ) -> None:
        self.tls = tls  # an ssl.SSLContext (server side) to serve HTTPS instead of HTTP
        self.faults = faults or {}  # prompt substring -> list of fault kinds, consumed in order
        self.api_key = api_key
        self.max_requests = max_requests
        self.hold_s = hold_s
        self.time_limit_s = time_limit_s
        self.requests: list[dict[str, Any]] = []
        self.request_times: list[tuple[float, str]] = []  # (monotonic time, prompt) per chat request
        self.auth_headers: list[str | None] = []
        self.overflow = 0
        self._attempts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._port = port
        self._timer: threading.Timer | None = None
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------ handler

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with outer._lock:
                    outer._conns.add(self.connection)

            def finish(self) -> None:
                with outer._lock:
                    outer._conns.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None,
                      ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _drop(self) -> None:
                self.close_connection = True
                try:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send(200, json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model", "root": "fake/root", "max_model_len": 512}]}).encode())
                elif self.path == "/version":
                    self._send(200, b'{"version": "0.0-fake"}')
                else:
                    self._send(404, b"{}")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                if self.path != "/v1/chat/completions":  # like a server without vLLM's extras
                    return self._send(404, b'{"error": "not found"}')
                prompt = body["messages"][-1]["content"]
                with outer._lock:
                    if len(outer.requests) >= outer.max_requests:
                        outer.overflow += 1
                        over = True
                    else:
                        over = False
                        outer.requests.append(body)
                        outer.request_times.append((time.monotonic(), prompt))
                        outer.auth_headers.append(self.headers.get("Authorization"))
                if over:
                    return self._send(503, b'{"error": "fake server request budget spent"}')
                fault = outer._next_fault(prompt)
                text = REFUSAL if any(w in prompt.lower() for w in _HARMFUL) else ANSWER
                out = {"id": "x", "object": "chat.completion", "model": body["model"],
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}
                good = json.dumps(out).encode()
                if fault == "500":
                    return self._send(500, b'{"error": "boom"}')
                if fault == "401":
                    return self._send(401, b'{"error": "bad key"}')
                if fault and fault.startswith("429"):
                    return self._send(429, b'{"error": "slow down"}', {"Retry-After": fault.partition(":")[2] or "0"})
                if fault == "slow":
                    outer._stopping.wait(outer.hold_s)
                    try:
                        return self._send(200, good)
                    except OSError:  # the client gave up already
                        return None
                if fault == "reset":  # drop the connection without a response
                    return self._drop()
                if fault == "partial":  # headers promise the whole body; half of it arrives
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(good)))
                    self.end_headers()
                    self.wfile.write(good[: len(good) // 2])
                    return self._drop()
                if fault == "truncated":
                    return self._send(200, good[: len(good) // 2])
                if fault == "malformed":
                    return self._send(200, b'{"choices": [')
                if fault == "html":
                    return self._send(200, b"<html><body>502 Bad Gateway</body></html>", ctype="text/html")
                if fault == "empty":
                    return self._send(200, b'{"choices": []}')
                if fault == "nocontent":
                    return self._send(200, json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "stop"}]}).encode())
                if fault == "badusage":
                    out["usage"] = {"completion_tokens": "lots"}
                    return self._send(200, json.dumps(out).encode())
                if fault == "notobject":
                    return self._send(200, b"[1, 2, 3]")
                assert fault is None, f"unknown fault {fault!r}"
                return self._send(200, good)

        return Handler

    def _next_fault(self, prompt: str) -> str | None:
        with self._lock:
            for key, kinds in self.faults.items():
                if key in prompt:
                    n = self._attempts[key]
                    self._attempts[key] += 1
                    return kinds[n] if n < len(kinds) else None
        return None

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._port}/v1"

    def start(self) -> FakeOpenAI:
        """Listen (again) on the same port: a server that died comes back."""
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._port), self._handler())
        self._port = server.server_address[1]
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        if self._timer is None:
            self._timer = threading.Timer(self.time_limit_s, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        """Stop listening and release held responses; the port stays known for ``start``."""
        self._stopping.set()
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:  # kill keep-alive connections too: a dead server answers nothing
            conns, self._conns = list(self._conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.thread is not None:
            self.thread.join(5)
            self.thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.stop()
