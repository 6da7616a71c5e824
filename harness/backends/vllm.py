"""Launching a vLLM server for a run, with pinned engine arguments, and always stopping it.

The harness starts vLLM itself (rather than trusting whatever is already running) so
the engine arguments that shape the outputs are chosen, recorded and the same every
time: the seed, the dtype, the maximum model length, and ``--generation-config vllm``
so the checkpoint's own sampling defaults cannot leak into requests.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness._internal.settings import VLLM_PYTHON_ENV, vllm_python
from harness.backends.base import display_path
from harness.errors import BackendError

HEALTH_TIMEOUT_S = 600.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VLLMServer:
    """``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1, as a context manager.

    ``python`` is the interpreter of the environment that has vLLM (it usually lives in
    its own virtual environment: see the README); default ``$HARNESS_VLLM_PYTHON``,
    else the current one.
    """

    def __init__(
        self, model: str, *, seed: int, extra_args: tuple[str, ...] | list[str] = (), deterministic: bool = False,
        python: str | None = None, dtype: str | None = None, max_model_len: int | None = None,
        health_timeout_s: float = HEALTH_TIMEOUT_S,
    ) -> None:
        self.model = model
        self.local_path = Path(model) if Path(model).is_dir() else None
        self.served_name = Path(model).name if self.local_path else model
        self.seed = seed
        self.extra_args = [a for arg in extra_args for a in shlex.split(arg)]
        self.deterministic = deterministic
        self.python = python or vllm_python() or sys.executable
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.health_timeout_s = health_timeout_s
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.batch_invariant: dict[str, Any] = {"requested": deterministic, "enabled": False, "reason": "not requested"}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = [
            self.python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", self.model, "--served-model-name", self.served_name,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--seed", str(self.seed), "--generation-config", "vllm",
        ]
        if self.max_model_len:
            cmd += ["--max-model-len", str(self.max_model_len)]
        if self.dtype:
            cmd += ["--dtype", self.dtype]
        return cmd + self.extra_args

    def engine_args(self) -> dict[str, Any]:
        """What shaped the outputs, minus the port (which changes every run)."""
        args = [a for a in self.command()[3:]]
        i = args.index("--port")
        del args[i : i + 2]
        if self.local_path is not None:  # this machine's absolute path would read as a change elsewhere
            args[args.index("--model") + 1] = display_path(self.local_path)
        return {"argv": args, "batch_invariant": self.batch_invariant, "env": self._pinned_env()}

    def _pinned_env(self) -> dict[str, str]:
        env = {"VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if self.deterministic:
            env["VLLM_BATCH_INVARIANT"] = "1"
        return env

    def start(self) -> VLLMServer:
        self.port = free_port()
        env = dict(os.environ, **self._pinned_env())
        fd, log = tempfile.mkstemp(prefix="harness-vllm-", suffix=".log")
        self.log_path = Path(log)
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
                self.command(), stdout=fd, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        except OSError as e:
            os.close(fd)
            raise BackendError(
                f"could not start vLLM with {self.python}: {e}",
                hint=f"install vLLM in its own environment and pass --vllm-python (or set {VLLM_PYTHON_ENV})",
            ) from None
        os.close(fd)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        if self.deterministic:
            self.batch_invariant = self._batch_invariance_state()
        return self

    def _wait_healthy(self) -> None:
        import urllib.request  # only a launched server needs it; other runs start without

        deadline = time.monotonic() + self.health_timeout_s
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BackendError(
                    f"vLLM exited with code {self.proc.returncode} before it was ready:\n{self.log_tail()}",
                    hint="check the model path and engine arguments (--engine-arg), or the vLLM install",
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise BackendError(
            f"vLLM did not become healthy within {self.health_timeout_s:.0f}s:\n{self.log_tail()}",
            hint="a large model may need longer; see the log above",
        )

    def _batch_invariance_state(self) -> dict[str, Any]:
        """Say whether the engine honoured batch invariance, from its own log."""
        log = self.log_tail(400).lower()
        if "batch invariant" in log or "batch_invariant" in log:
            if "not supported" in log or "disabled" in log:
                return {"requested": True, "enabled": False, "reason": "the engine reported it unsupported here"}
            return {"requested": True, "enabled": True, "reason": "VLLM_BATCH_INVARIANT=1 acknowledged by the engine"}
        return {"requested": True, "enabled": False,
                "reason": "VLLM_BATCH_INVARIANT=1 set, but this vLLM build did not acknowledge it (CPU builds and older versions do not support it)"}

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server's whole process group: no orphan workers, also after Ctrl-C."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
