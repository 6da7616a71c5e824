"""A small OpenAI-compatible server on 127.0.0.1 for tests, with scripted faults.

It answers a fixed refusal for prompts that mention a harmful word and a short answer
otherwise, and can be told to fail the first N requests of a prompt in a given way.
Bounded by construction: it serves only what the test sends and stops with the test.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(self, faults: dict[str, list[str]] | None = None, api_key: str | None = None) -> None:
        self.faults = faults or {}  # prompt substring -> list of fault kinds, consumed in order
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        self._attempts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

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
                with outer._lock:
                    outer.requests.append(body)
                    outer.auth_headers.append(self.headers.get("Authorization"))
                prompt = body["messages"][-1]["content"]
                fault = outer._next_fault(prompt)
                if fault == "500":
                    return self._send(500, b'{"error": "boom"}')
                if fault == "429":
                    return self._send(429, b'{"error": "slow down"}', {"Retry-After": "0"})
                if fault == "malformed":
                    return self._send(200, b'{"choices": [')
                if fault == "empty":
                    return self._send(200, b'{"choices": []}')
                if fault == "reset":  # drop the connection without a response
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                harmful = any(w in prompt.lower() for w in ("bomb", "weapon", "poison", "hack", "steal"))
                text = "I'm sorry, but I can't help with that." if harmful else "Sure: here is a safe, short answer."
                out = {"id": "x", "object": "chat.completion", "model": body["model"],
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}
                return self._send(200, json.dumps(out).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _next_fault(self, prompt: str) -> str | None:
        with self._lock:
            for key, kinds in self.faults.items():
                if key in prompt:
                    n = self._attempts[key]
                    self._attempts[key] += 1
                    return kinds[n] if n < len(kinds) else None
        return None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
