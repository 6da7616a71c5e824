"""Nox sessions: `nox -s tests`, `nox -s lint`, and the slow `nox -s packages_full`.

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


@nox.session
def packages_full(session: nox.Session) -> None:
    """Every upstream package, every sample, on the embedded model (slow: about an hour on 2 cores).

    Needs the data mirror: `nox -s packages_full -- ../shared/data` (default ../shared/data).
    """
    _sync(session)
    mirror = session.posargs[0] if session.posargs else "../shared/data"
    dossiers = f"{session.virtualenv.location}/dossiers"
    for name in ("xstest", "advbench", "harmbench", "simplesafetytests", "strongreject", "do-not-answer",
                 "multijail", "indicsafe", "xsafety"):
        session.run("harness", "run", name, "--mirror", mirror, "--dossiers", dossiers, "--no-progress", "--json",
                    silent=True)
