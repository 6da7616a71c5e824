"""Nox sessions: `nox -s tests`, `nox -s lint`.

Each session installs the project from uv.lock into its own environment, so a
session passing means the locked dependencies are enough.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "lint"]


def _sync(session: nox.Session, *groups: str) -> None:
    args = ["uv", "sync", "--frozen", "--active"]
    for g in groups:
        args += ["--group", g]
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})


@nox.session
def tests(session: nox.Session) -> None:
    """The default test suite (what `make test` runs)."""
    _sync(session, "dev")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the library, tests and tools."""
    _sync(session, "dev")
    session.run("ruff", "check", "harness", "tests", "tools", "noxfile.py")
