"""An OpenAI-compatible server that answers instantly: the yardstick's zero-latency model.

A raw asyncio HTTP/1.1 server (keep-alive, Content-Length bodies, no chunking) rather
than an ASGI stack, so that it costs almost nothing per request and needs no extra
dependency; ``capacity.py`` measures what it sustains so the benchmark can show it is
not the bottleneck. Every chat completion is answered with the same refusal text.

Run it on its own: ``python benchmarks/instant_server.py --port 8765`` (127.0.0.1 only),
or start it from Python with :func:`start_in_subprocess`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

MODEL = "instant"
REFUSAL = "I'm sorry, but I can't help with that."

_COMPLETION = json.dumps({
    "id": "chatcmpl-instant",
    "object": "chat.completion",
    "created": 0,
    "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": REFUSAL}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 11, "total_tokens": 23},
}).encode()
_MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "benchmarks"}]}).encode()
_NOT_FOUND = b'{"error": "not found"}'


def _response(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: keep-alive\r\n\r\n").encode() + body


_OK_CHAT = _response("200 OK", _COMPLETION)
_OK_MODELS = _response("200 OK", _MODELS)
_404 = _response("404 Not Found", _NOT_FOUND)


class _Protocol(asyncio.Protocol):
    """Parses pipelined requests from a byte buffer; answers each as soon as its body is in."""

    __slots__ = ("buf", "transport", "server")

    def __init__(self, server: InstantServer) -> None:
        self.buf = b""
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            length = 0
            i = head.lower().find(b"content-length:")
            if i >= 0:
                j = head.find(b"\r\n", i)
                length = int(head[i + 15: j if j >= 0 else len(head)])
            total = end + 4 + length
            if len(buf) < total:
                break
            line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
            path = line.split(b" ", 2)[1] if line.count(b" ") >= 1 else b""
            if path.endswith(b"/chat/completions"):
                out.append(_OK_CHAT)
                srv = self.server
                srv.requests += 1
                srv.last = time.time()
                if srv.first is None:
                    srv.first = srv.last
            elif path == b"/stats":  # the benchmark's own probe: counts since the last /stats, then resets
                out.append(_response("200 OK", self.server.stats()))
            elif path.endswith(b"/models"):
                out.append(_OK_MODELS)
            else:
                out.append(_404)
            buf = buf[total:]
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))  # type: ignore[attr-defined]


class InstantServer:
    def __init__(self) -> None:
        self.requests = 0
        self.first: float | None = None  # wall-clock time of the first and last chat request
        self.last: float | None = None

    def stats(self) -> bytes:
        out = json.dumps({"requests": self.requests, "first": self.first, "last": self.last}).encode()
        self.requests, self.first, self.last = 0, None, None
        return out

    async def serve(self, host: str, port: int, ready: socket.socket | None = None) -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(lambda: _Protocol(self), host, port, backlog=1024, reuse_address=True)
        if ready is not None:
            ready.sendall(str(srv.sockets[0].getsockname()[1]).encode() + b"\n")
        async with srv:
            await srv.serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_in_subprocess(port: int | None = None, timeout_s: float = 10.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server in its own process; returns (process, base_url). Caller terminates it."""
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"instant server did not start on port {port}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="stop after this long (a bound, for safety)")
    args = ap.parse_args()
    server = InstantServer()

    async def bounded() -> None:
        try:
            await asyncio.wait_for(server.serve("127.0.0.1", args.port), args.max_seconds)
        except TimeoutError:
            pass

    try:
        asyncio.run(bounded())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
