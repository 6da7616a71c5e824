"""Any OpenAI-compatible chat endpoint (vLLM, or another server), over HTTP."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness._internal.hashing import canonical_digest
from harness.backends.base import (
    Backend,
    GenerationRequest,
    GenerationResult,
    ModelIdentity,
    digest_model_files,
    display_path,
)
from harness.errors import BackendError


class OpenAIBackend(Backend):
    """Any OpenAI-compatible chat endpoint (vLLM, or another server), over HTTP.

    Requests carry the per-sample seed; failures are retried with backoff (honouring
    Retry-After), and a sample that still fails becomes an error for that sample, never
    a fake answer. The API key is read from an environment variable and kept only in
    memory: it is never part of the identity, the record or any log line.

    HTTP goes through :mod:`harness.backends._http` (asyncio, keep-alive): :meth:`generate_many`
    keeps ``concurrency`` requests in flight from one thread; :meth:`generate` is the
    same code for one request, on an event loop private to the calling thread.
    """

    concurrency: int
    backoff_s: float = 0.25
    """First retry delay; it doubles per attempt up to 8 s (a Retry-After header overrides it)."""

    def __init__(
        self, base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 120.0,
        max_retries: int = 4, concurrency: int = 16, engine_args: dict[str, Any] | None = None,
        local_path: Path | None = None,
    ) -> None:
        import threading
        from urllib.parse import urlsplit

        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"endpoint {base_url!r} is not an http(s) URL", hint="e.g. --endpoint http://127.0.0.1:8000/v1")
        self._root_path = parts.path[: -len("/v1")]  # the server's root, where vLLM has /version and /tokenize
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.concurrency = concurrency
        api_key = os.environ.get(api_key_env) or None
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._local = threading.local()
        self._loops: list[tuple[Any, Any]] = []  # (loop, origin) per thread that used this backend
        self._loops_lock = threading.Lock()
        server_root = self.base_url[: -len("/v1")]
        models = self._get_json(f"{self.base_url}/models")
        served = {m.get("id"): m for m in (models or {}).get("data", [])}
        if served and model not in served:
            raise BackendError(
                f"the endpoint {redact_url(self.base_url)} does not serve {model!r} (it serves {sorted(served)})",
                hint="pass --model with one of the served names",
            )
        version = self._get_json(f"{server_root}/version") or {}
        # Only stable facts: vLLM's listing also carries a creation time and random ids,
        # and for a local model the absolute path of this machine.
        meta = {k: v for k, v in served.get(model, {}).items() if k in ("id", "owned_by", "max_model_len", "root")}
        if local_path:
            meta.pop("root", None)
        files = digest_model_files(local_path) if local_path else {}
        template = _local_chat_template(local_path) if local_path else None
        probe = self._template_probe()
        self.identity = ModelIdentity(
            backend="openai",
            name=model,
            path=display_path(local_path) if local_path else None,
            revision=meta.get("root") if isinstance(meta.get("root"), str) and not local_path else None,
            files=files,
            digest=canonical_digest(files) if files else canonical_digest({"served_model": meta}),
            engine={"name": "vllm" if version.get("version") else "openai-compatible",
                    "version": version.get("version"), "served_model": meta, "chat_template_probe": probe},
            engine_args=dict(engine_args or {}, concurrency=concurrency, max_retries=max_retries, timeout_s=timeout_s),
            chat_template_sha256=canonical_digest(template) if template else None,
        )

    # -- plumbing: one event loop and one connection pool per calling thread

    def _loop_origin(self) -> tuple[Any, Any]:
        import asyncio

        from harness.backends._http import Origin

        pair = getattr(self._local, "pair", None)
        if pair is None:
            pair = self._local.pair = (asyncio.new_event_loop(), Origin(self.base_url, self._headers, self.timeout_s))
            with self._loops_lock:
                self._loops.append(pair)
        return pair

    def _run(self, coro: Any) -> Any:
        loop, _ = self._loop_origin()
        return loop.run_until_complete(coro)

    def _path(self, url: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _template_probe(self) -> dict[str, Any] | None:
        """The chat template as the server applies it: a fixed conversation rendered by
        the server's own tokenizer (vLLM's /tokenize and /detokenize), not a local copy."""
        from harness.backends._http import HTTPFailure

        messages = [{"role": "user", "content": _PROBE}]
        _, origin = self._loop_origin()
        try:
            r = self._run(origin.request("POST", f"{self._root_path}/tokenize", _json_body(
                {"model": self.model, "messages": messages, "add_generation_prompt": True})))
            if r.status != 200:
                return None
            tokens = r.json().get("tokens")
            d = self._run(origin.request("POST", f"{self._root_path}/detokenize", _json_body(
                {"model": self.model, "tokens": tokens})))
            rendered = d.json().get("prompt") if d.status == 200 else None
        except (HTTPFailure, ValueError, AttributeError):
            return None
        return {"messages": messages, "token_ids_sha256": canonical_digest(tokens), "rendered": rendered,
                "rendered_sha256": canonical_digest(rendered) if rendered is not None else None}

    def _get_json(self, url: str) -> Any:
        from harness.backends._http import HTTPFailure

        _, origin = self._loop_origin()
        try:
            r = self._run(origin.request("GET", self._path(url)))
        except HTTPFailure as e:
            if e.kind == "TLSCertificateError":
                raise BackendError(
                    f"cannot reach {redact_url(url)}: its TLS certificate does not verify ({e})",
                    hint="for a private CA, point SSL_CERT_FILE at its certificate (PEM)",
                ) from None
            raise BackendError(f"cannot reach {redact_url(url)}: {e.kind}", hint="is the server running? check --endpoint") from None
        if r.status == 404:
            return None
        if r.status >= 400:
            raise BackendError(f"{redact_url(url)} answered HTTP {r.status}", hint="check the endpoint and the API key variable")
        try:
            return r.json()
        except ValueError:
            return None

    # -- generation

    def _body(self, request: GenerationRequest) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": request.prompt}],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        return _json_body(body)

    async def _agenerate(self, origin: Any, request: GenerationRequest) -> GenerationResult:
        result, _ = await self.attempt(origin, request)
        return result

    def new_origin(self) -> Any:
        """A fresh connection pool to this server, for the event loop that will use it (a
        :class:`~harness.backends.replicas.ReplicaBackend` drives several servers from one loop)."""
        from harness.backends._http import Origin

        return Origin(self.base_url, self._headers, self.timeout_s)

    async def attempt(self, origin: Any, request: GenerationRequest) -> tuple[GenerationResult, bool]:
        """One request with its retries, and whether the server looks gone: it failed and
        no attempt got any HTTP answer (refused, reset, timed out every time)."""
        import asyncio

        from harness.backends._http import HTTPFailure

        body = self._body(request)
        path = f"{self._path(self.base_url)}/chat/completions"
        start = time.perf_counter()
        last = "no attempt"
        answered = False
        for attempt in range(1, self.max_retries + 2):
            delay = min(8.0, self.backoff_s * 2 ** (attempt - 1))
            try:
                r = await origin.request("POST", path, body)
            except HTTPFailure as e:
                last = e.kind
            else:
                answered = True
                if r.status == 200:
                    parsed = _parse_chat(r.body)
                    if isinstance(parsed, str):
                        last = parsed
                    else:
                        text, finish, tokens = parsed
                        return GenerationResult(text, finish, tokens, time.perf_counter() - start, attempts=attempt), False
                else:
                    last = f"HTTP {r.status}"
                    if r.status in (400, 401, 403, 404, 422):
                        break  # the request itself is wrong; retrying will not help
                    retry_after = r.headers.get("retry-after")
                    if retry_after and retry_after.replace(".", "", 1).isdigit():
                        delay = min(30.0, float(retry_after))
            if attempt <= self.max_retries:
                await asyncio.sleep(delay)
        return GenerationResult("", "error", 0, time.perf_counter() - start, attempts=attempt,
                                error=f"{last} after {attempt} attempts"), not answered

    def generate(self, request: GenerationRequest) -> GenerationResult:
        import asyncio

        if asyncio._get_running_loop() is not None:
            # Called from inside another event loop on this thread (a callback of another
            # client's loop): a thread cannot run two loops, so a helper thread, with its
            # own loop and connections, does the request.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=1) as pool:
                return pool.submit(self.generate, request).result()
        return self.generate_checked(request)[0]

    def generate_checked(self, request: GenerationRequest) -> tuple[GenerationResult, bool]:
        """:meth:`generate` on this thread's loop, and whether the server looks gone (see :meth:`attempt`)."""
        _, origin = self._loop_origin()
        result: tuple[GenerationResult, bool] = self._run(self.attempt(origin, request))
        return result

    def generate_many(
        self, requests: Sequence[GenerationRequest], on_result: Callable[[int, GenerationResult], None],
    ) -> None:
        """Every request, ``concurrency`` in flight, ``on_result(index, result)`` as each completes.

        ``on_result`` runs on the calling thread, one at a time, so it may write files
        without locks. If it raises (or on Ctrl-C), requests still queued are dropped,
        those in flight are cancelled, and the exception propagates.
        """
        import asyncio

        loop, origin = self._loop_origin()
        pending = iter(enumerate(requests))

        async def worker() -> None:
            for i, req in pending:
                on_result(i, await self._agenerate(origin, req))

        tasks = [loop.create_task(worker()) for _ in range(max(1, min(self.concurrency, len(requests))))]
        try:
            loop.run_until_complete(asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            raise

    def close(self) -> None:
        with self._loops_lock:
            pairs, self._loops = self._loops, []
        for loop, origin in pairs:
            if not loop.is_running() and not loop.is_closed():
                loop.run_until_complete(origin.aclose())
                loop.close()
        self._local = type(self._local)()


_PROBE = "harness chat template probe"


def redact_url(url: str) -> str:
    """The URL without a password in its user-info: messages end up in logs and CI output."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _json_body(obj: Any) -> bytes:
    import json

    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _parse_chat(raw: bytes) -> tuple[str, str, int] | str:
    """(text, finish_reason, tokens), or a reason why the body is not a usable answer."""
    import json

    try:
        data = json.loads(raw)
    except ValueError:
        return "malformed JSON"
    if not isinstance(data, dict):
        return "malformed JSON"
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        return "empty choices"
    msg = choices[0].get("message") if isinstance(choices[0], dict) else None
    text = msg.get("content") if isinstance(msg, dict) else None
    if not isinstance(text, str):
        return "no message content"
    usage = data.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    # Usage is bookkeeping, not the answer: a server that reports it badly still answered.
    tokens = usage.get("completion_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        tokens = 0
    return text, str(choices[0].get("finish_reason") or "stop"), tokens


def _local_chat_template(path: Path) -> str | None:
    import json

    for name in ("chat_template.jinja",):
        if (path / name).is_file():
            return (path / name).read_text(encoding="utf-8")
    cfg = path / "tokenizer_config.json"
    if cfg.is_file():
        value = json.loads(cfg.read_text(encoding="utf-8")).get("chat_template")
        return value if isinstance(value, str) else None
    return None
