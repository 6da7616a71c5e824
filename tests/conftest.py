"""Shared fixtures: every test works in its own folders, never in the repo's dossiers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SIGSTORE_FIXTURES = SHARED / "fixtures" / "sigstore"
"""Real Sigstore bundles (see its SOURCE.md), read in place, never copied into the repo."""
needs_sigstore_fixtures = pytest.mark.skipif(
    not SIGSTORE_FIXTURES.is_dir(),
    reason=f"Sigstore fixture bundles not found at {SIGSTORE_FIXTURES} (they live beside the repo, "
    "in ../shared/fixtures/sigstore, and are never copied into it)",
)
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
BEACON_REPO = "sigstore-conformance/extremely-dangerous-public-oidc-beacon"
"""The workflow that signed the conformance bundles (../shared/fixtures/sigstore/SOURCE.md)."""


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for a block and restore them after (module-scoped fixtures
    cannot use monkeypatch, which is per test)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keys, caches and dossiers go to temporary folders, never the user's."""
    base = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("HARNESS_DOSSIERS", str(base / "dossiers"))
    monkeypatch.setenv("HARNESS_CHECKPOINTS_DIR", str(base / "checkpoints"))  # per test, even where a test shares a config
    monkeypatch.delenv("HARNESS_DATA_MIRROR", raising=False)
    monkeypatch.delenv("HARNESS_PACKAGES", raising=False)
    monkeypatch.delenv("HARNESS_LOCKFILES", raising=False)
    return base


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of packages/mini-safety and lockfiles/ laid out like the repo."""
    shutil.copytree(REPO / "packages" / "mini-safety", tmp_path / "packages" / "mini-safety")
    shutil.copytree(REPO / "lockfiles", tmp_path / "lockfiles")
    return tmp_path


@pytest.fixture
def pkg_dir(workspace: Path) -> Path:
    return workspace / "packages" / "mini-safety"


@pytest.fixture
def home(base: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment of a module's ``base`` folder (its config, dossiers and packages), in a
    fresh working folder; modules that use it define ``base``."""
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("HARNESS_DOSSIERS", str(base / "dossiers"))
    monkeypatch.setenv("HARNESS_PACKAGES", str(base / "packages"))
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return base
