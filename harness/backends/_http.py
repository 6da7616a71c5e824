"""A lean HTTP/1.1 client on asyncio streams, for talking to one model server fast.

Why not ``requests`` and a thread per in-flight request: against a fast server, the
harness's own per-request cost is the limit. ``requests`` spends a few hundred
microseconds of Python per call and 64 threads fight over the GIL; one event loop
with keep-alive connections spends a fraction of that, so the harness adds almost
nothing to the model's own time. The client does only what a JSON API needs:
``Content-Length`` or chunked bodies, keep-alive with a check for connections the
server closed while idle (as urllib3 does), TLS for ``https`` URLs, and one deadline
per request. It does not follow redirects or use proxies.

Failures are raised as :class:`HTTPFailure` whose ``kind`` uses the names ``requests``
gave the same failures ("ConnectionError", "ConnectTimeout", "ReadTimeout"), so
per-sample error texts in run records keep their meaning.
"""

from __future__ import annotations

import asyncio
import json
import select
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_MAX_HEAD = 1 << 20


class HTTPFailure(Exception):
    """No complete HTTP response: the connection failed, timed out or was cut short."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _tls_context() -> ssl.SSLContext:
    """The system's trust store (which honours SSL_CERT_FILE / SSL_CERT_DIR) plus certifi's
    bundle when it is installed, so HTTPS endpoints verify wherever ``requests`` did."""
    ctx = ssl.create_default_context()
    try:
        import certifi

        ctx.load_verify_locations(certifi.where())
    except (ImportError, OSError):
        pass
    return ctx


class Origin:
    """Keep-alive connections to one scheme://host:port, reused across requests.

    Bound to the event loop that first uses it (asyncio streams are); the backend keeps
    one per loop. Not a limit on concurrency: callers bound how many requests they run.
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout_s: float = 120.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        host_header = self.host if default_port else f"{self.host}:{self.port}"
        if ":" in self.host and not default_port:
            host_header = f"[{self.host}]:{self.port}"
        headers = dict(headers or {})
        if parts.username is not None:  # user:password@host wins over other credentials, as in requests
            import base64
            from urllib.parse import unquote

            cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head_tail = (f"Host: {host_header}\r\nUser-Agent: llm-safety-harness\r\nAccept: application/json\r\n"
                           f"{extra}").encode("latin-1")
        self.timeout_s = timeout_s
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._ssl: ssl.SSLContext | None = _tls_context() if self.tls else None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing() and not _readable(writer):
                return reader, writer
            writer.close()  # the server closed it while idle, or sent something unasked
        try:
            async with asyncio.timeout(self.timeout_s):
                return await asyncio.open_connection(self.host, self.port, ssl=self._ssl, limit=_MAX_HEAD,
                                                     server_hostname=self.host if self.tls else None)
        except TimeoutError:
            raise HTTPFailure("ConnectTimeout", f"{self.host}:{self.port}") from None
        except ssl.SSLCertVerificationError as e:
            raise HTTPFailure("TLSCertificateError", e.verify_message or str(e)) from None
        except OSError as e:
            raise HTTPFailure("ConnectionError", f"{type(e).__name__}: {e}") from None

    async def request(self, method: str, path: str, body: bytes | None = None) -> Response:
        """One request on a pooled connection; raises HTTPFailure when no full response came."""
        reader, writer = await self._connect()
        head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + self._head_tail
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        keep = False
        try:
            async with asyncio.timeout(self.timeout_s):
                writer.write(head + b"\r\n" + body if body is not None else head + b"\r\n")
                resp, keep = await _read_response(reader, method)
        except TimeoutError:
            raise HTTPFailure("ReadTimeout", f"no answer within {self.timeout_s}s") from None
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            raise HTTPFailure("ConnectionError", f"{type(e).__name__}") from None
        finally:
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()
        return resp

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass


def _readable(writer: asyncio.StreamWriter) -> bool:
    """Whether an idle connection has something to read: the server closed it (EOF not yet
    seen by the event loop) or sent data unasked. Asked of the kernel, as urllib3 does."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    try:
        return bool(select.select([sock.fileno()], [], [], 0)[0])
    except (OSError, ValueError):
        return True


async def _read_response(reader: asyncio.StreamReader, method: str) -> tuple[Response, bool]:
    while True:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError("not an HTTP/1.x response")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status >= 200 or status == 101:
            break  # 1xx interim answers (100 Continue) are skipped
    keep = version != "HTTP/1.0" and "close" not in headers.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        return Response(status, headers, b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return Response(status, headers, b"".join(chunks)), keep
    length = headers.get("content-length")
    if length is not None:
        return Response(status, headers, await reader.readexactly(int(length))), keep
    return Response(status, headers, await reader.read()), False  # delimited by the server closing
