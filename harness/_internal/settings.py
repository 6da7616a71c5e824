"""Every ``HARNESS_*`` environment variable and every default folder, in one place.

Each setting has one reader here, so "where does the harness keep X, and how do I move
it?" has one answer (the README's "Where files go" table lists them for users). The
folders are read when asked for, not at import, so tests and CI can point them
elsewhere with the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_DIR_ENV = "HARNESS_CONFIG_DIR"
"""The signing key and trust store folder (default: the platform's user config folder)."""
CACHE_DIR_ENV = "HARNESS_CACHE_DIR"
"""Downloaded data, imported packages and rebuilt environments (default: user cache folder)."""
DOSSIERS_ENV = "HARNESS_DOSSIERS"
"""The dossiers folder (default: ``./dossiers``)."""
PACKAGES_ENV = "HARNESS_PACKAGES"
"""The packages folder (default: ``./packages``)."""
LOCKFILES_ENV = "HARNESS_LOCKFILES"
"""A folder searched first for packages' lockfiles."""
DATA_MIRROR_ENV = "HARNESS_DATA_MIRROR"
"""A folder mirroring upstream data files (like ``--mirror``)."""
TRUST_POLICY_ENV = "HARNESS_TRUST_POLICY"
"""A trust policy file (like ``--trust-policy``)."""
VLLM_PYTHON_ENV = "HARNESS_VLLM_PYTHON"
"""The python of the environment that has vLLM (like ``--vllm-python``)."""
REVIEWER_ENV = "HARNESS_REVIEWER"
"""The reviewer's name in signed reviews (default: the login name)."""
REPRODUCE_ENV = "HARNESS_REPRODUCE_ENV"
"""Set by ``harness reproduce`` in the process it re-executes inside a rebuilt environment:
the lockfile digest of that environment (so it is not rebuilt a second time)."""
CRASH_AT_ENV = "HARNESS_CRASH_AT"
"""Reliability tests only: the crash point at which to kill the process (see crashpoint)."""
CHECKPOINTS_DIR_ENV = "HARNESS_CHECKPOINTS_DIR"
"""Where the verifier remembers the newest dossier checkpoint it verified, per dossier
(default: ``<config>/checkpoints``)."""

APP_NAME = "harness"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """Where the signing key and trust store live: ``$HARNESS_CONFIG_DIR``, else the
    platform's per-user config folder, so the key survives across checkouts."""
    env = _env_path(CONFIG_DIR_ENV)
    if env is not None:
        return env
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


LOCAL_STATE_KEY_NAME = "local-state.key"
"""The secret that marks work state (journals, commit markers) as written on this machine."""


def local_state_key_path() -> Path:
    """``<config>/local-state.key``: a per-user secret (mode 0600, made on first use) with
    which the harness MACs the journals and state files it writes, so a ``.work/`` folder
    that arrived with a received dossier is never resumed as if this machine wrote it."""
    return config_dir() / LOCAL_STATE_KEY_NAME


def checkpoints_dir() -> Path:
    """The checkpoints this user's verifications have seen: ``$HARNESS_CHECKPOINTS_DIR``, else
    ``<config>/checkpoints``. Kept with the trust settings rather than the cache: clearing it
    silently forgets what a dossier looked like before, which is what detects truncation."""
    env = _env_path(CHECKPOINTS_DIR_ENV)
    return env if env is not None else config_dir() / "checkpoints"


def cache_dir() -> Path:
    """The cache: ``$HARNESS_CACHE_DIR``, else the platform's per-user cache folder."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def dossiers_dir() -> Path:
    """The dossiers folder: ``$HARNESS_DOSSIERS``, else ``./dossiers``."""
    env = os.environ.get(DOSSIERS_ENV)
    return Path(env) if env else Path.cwd() / "dossiers"


def packages_dir() -> Path:
    """The packages folder: ``$HARNESS_PACKAGES``, else ``./packages``."""
    env = os.environ.get(PACKAGES_ENV)
    return Path(env) if env else Path.cwd() / "packages"


def lockfiles_dir() -> Path | None:
    """``$HARNESS_LOCKFILES``, a folder searched for lockfiles before the package's own."""
    env = os.environ.get(LOCKFILES_ENV)
    return Path(env) if env else None


def data_mirror() -> Path | None:
    """``$HARNESS_DATA_MIRROR``, a folder mirroring upstream data, or None."""
    env = os.environ.get(DATA_MIRROR_ENV)
    return Path(env) if env else None


def trust_policy_file() -> Path | None:
    """``$HARNESS_TRUST_POLICY``, a trust policy file, or None."""
    env = os.environ.get(TRUST_POLICY_ENV, "").strip()
    return Path(env) if env else None


def vllm_python() -> str | None:
    """``$HARNESS_VLLM_PYTHON``, the python that has vLLM, or None."""
    return os.environ.get(VLLM_PYTHON_ENV) or None


def reviewer() -> str | None:
    """``$HARNESS_REVIEWER``, the reviewer's name, or None."""
    return os.environ.get(REVIEWER_ENV) or None


def rebuilt_environment() -> str | None:
    """The lockfile digest this process's environment was rebuilt from by ``reproduce``, or None."""
    return os.environ.get(REPRODUCE_ENV) or None


def crash_target() -> str | None:
    """``$HARNESS_CRASH_AT`` (reliability tests), or None."""
    return os.environ.get(CRASH_AT_ENV) or None
