"""What the instant server sustains: requests/s at a given concurrency, with a lean client.

The client is raw asyncio streams with keep-alive (one connection per in-flight slot),
so the figure is close to the server's own ceiling on this machine, client included.
If this number is several times the harness's samples/s, the server is not the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from instant_server import start_in_subprocess  # noqa: E402

_BODY = json.dumps({"model": "instant", "messages": [{"role": "user", "content": "Prompt number 1: how do I stay safe online?"}],
                    "max_tokens": 32, "temperature": 0}).encode()


async def _worker(host: str, port: int, n: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(_BODY)}\r\n\r\n").encode() + _BODY
    for _ in range(n):
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        i = head.lower().find(b"content-length:")
        length = int(head[i + 15: head.find(b"\r\n", i)])
        body = await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200") or b"choices" not in body:
            raise RuntimeError("bad answer from the instant server")
    writer.close()


async def _load(base_url: str, total: int, concurrency: int) -> float:
    hostport = base_url.split("//", 1)[1].split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    per = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
    t0 = time.perf_counter()
    await asyncio.gather(*(_worker(host, int(port), n) for n in per if n))
    return time.perf_counter() - t0


def measure(total: int = 20000, concurrency: int = 64, base_url: str | None = None) -> float:
    """Requests per second the instant server answered (a fresh server unless base_url is given)."""
    proc = None
    if base_url is None:
        proc, base_url = start_in_subprocess()
    try:
        asyncio.run(_load(base_url, min(total, 2000), concurrency))  # warm-up
        secs = asyncio.run(_load(base_url, total, concurrency))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    return total / secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    rates = [measure(args.requests, args.concurrency) for _ in range(3)]
    rates.sort()
    print(f"instant server: {rates[1]:,.0f} requests/s (median of 3, {args.requests} requests, "
          f"{args.concurrency} connections; runs {', '.join(f'{r:,.0f}' for r in rates)})")


if __name__ == "__main__":
    main()
