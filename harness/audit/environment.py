"""Rebuilding the pinned environment for a reproduction, and re-running the harness inside it.

A dependency that moved is one of the commonest reasons a score does not reproduce; so
when this environment differs from the package's lockfile, ``harness reproduce``
builds one that matches it exactly (uv, cached by the lockfile's digest) and runs
itself again there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness._internal.hashing import sha256_file
from harness._internal.settings import REPRODUCE_ENV as REBUILT_ENV
from harness._internal.settings import cache_dir, rebuilt_environment
from harness.environment import environment_match
from harness.errors import HarnessError
from harness.packages.package import Package

_SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent
"""The folder holding the ``harness`` package (put on PYTHONPATH in the rebuilt environment)."""

def env_dir(lock_sha256: str) -> Path:
    """Where the environment rebuilt from a lockfile with this digest is kept."""
    return cache_dir() / "envs" / lock_sha256[:16]


def build_environment(lockfile: Path, *, log: Callable[[str], None] | None = None) -> Path:
    """A virtual environment with exactly the lockfile's pins, made with uv and cached by its digest.

    Built beside its final place and renamed when complete, so an interrupted build is
    never used. Returns the environment's python.
    """
    digest = sha256_file(lockfile)
    target = env_dir(digest)
    python = target / "bin" / "python"
    if (target / ".complete").is_file() and python.exists():
        return python
    cmd_uv = [uv_binary()]
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [*cmd_uv, "venv", "--quiet", "--python", sys.executable, str(tmp)],
        [*cmd_uv, "pip", "install", "--quiet", "--python", str(tmp / "bin" / "python"), "--require-hashes",
         "--no-deps", "-r", str(lockfile)],
    ]
    for cmd in steps:
        if log:
            log(f"$ {' '.join(cmd)}")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)  # noqa: S603 - argv list
        except (OSError, subprocess.SubprocessError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise HarnessError(f"could not rebuild the environment: {e}",
                               hint="reinstall the harness (`make run` or `uv sync`), which installs uv with it") from None
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise HarnessError(
                f"could not rebuild the environment from {lockfile.name}:\n{proc.stderr.strip()[-2000:]}",
                hint="uv needs PyPI (or its cache) for the locked wheels; see docs/reproduce.md",
            )
    (tmp / ".complete").write_text(digest + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return python


def uv_binary() -> str:
    """The uv executable installed with the harness (``uv`` is one of its dependencies).

    ``uv.find_uv_bin`` finds it wherever the install put it (the project's virtual
    environment, a ``pip --user`` folder, ...), so a user whose PATH has no ``uv`` can
    still rebuild; a ``uv`` on PATH is the fallback for installs without the package.
    """
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found is None:
        raise HarnessError(
            "uv is not installed, and rebuilding the environment from the lockfile needs it",
            hint="reinstall the harness with its dependencies (`make run`, or `uv sync`), which installs uv",
        )
    return found


def reexec(python: Path, argv: Sequence[str], lock_sha256: str) -> int:
    """Run ``harness <argv>`` with the rebuilt environment's python and this harness's source."""
    src = _SOURCE_ROOT
    env = dict(os.environ, **{REBUILT_ENV: lock_sha256})
    env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("VIRTUAL_ENV", None)
    return subprocess.call([str(python), "-m", "harness", *argv], env=env)  # noqa: S603 - argv list


@dataclass(frozen=True)
class EnvironmentPlan:
    """Where a reproduction runs: here, or in an environment rebuilt from the lockfile."""

    lockfile: Path
    sha256: str
    matches: bool
    mismatch_count: int
    rebuild: bool
    """Whether to rebuild and re-run inside the rebuilt environment."""
    mode: Literal["current", "rebuilt"]
    """Whether this process already runs in the environment rebuilt from this lockfile."""


def environment_plan(pkg: Package, mode: Literal["auto", "current", "rebuild"]) -> EnvironmentPlan:
    """Whether to run here or in a rebuilt environment: ``mode`` is auto, current or rebuild."""
    lock = pkg.lockfile_path()
    match = environment_match(lock)
    inside = rebuilt_environment()
    rebuild = not inside and (mode == "rebuild" or (mode == "auto" and not match.matches))
    return EnvironmentPlan(lockfile=lock, sha256=match.sha256, matches=match.matches,
                           mismatch_count=match.mismatch_count, rebuild=rebuild,
                           mode="rebuilt" if inside == match.sha256 else "current")
