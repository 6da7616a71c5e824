"""A package folder as the harness loads it, and where packages and their lockfiles are found.

Loading reads the manifest and (if present) the seal; it checks that every path the
manifest names stays inside the folder, but not the seal: :func:`harness.packages.seal.check_package`
does that, and a run refuses a package it has not checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness._internal.settings import lockfiles_dir
from harness._internal.settings import packages_dir as default_packages_dir
from harness.errors import LockfileError, PackageError
from harness.packages.manifest import (
    MANIFEST_NAME,
    SEAL_NAME,
    DataSource,
    Manifest,
    Seal,
    _check_relative,
    parse_manifest,
    parse_seal,
)


@dataclass(frozen=True)
class Package:
    """A loaded package folder. ``seal`` is None until it is sealed."""

    root: Path
    manifest: Manifest
    seal: Seal | None
    verified_files: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    """{relative path: sha256} hashed by :func:`check_package` in this process, so a run
    hashes each in-package file once (data resolution reuses these digests)."""

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def lockfile_path(self) -> Path:
        return find_lockfile(self.root, self.manifest.lockfile)

    def data_path(self, source: DataSource) -> Path:
        assert source.path is not None
        return safe_join(self.root, source.path)


def safe_join(root: Path, rel: str) -> Path:
    """Join and refuse anything that lands outside ``root``, symlinks included."""
    _check_relative_or_raise(rel)
    root_resolved = root.resolve()
    target = (root / rel).resolve()
    if target != root_resolved and root_resolved not in target.parents:
        raise PackageError(
            f"{rel!r} resolves to {target}, outside the package folder {root_resolved}",
            hint="keep package files inside the package folder; replace symlinks with real files",
        )
    return target


def _check_relative_or_raise(rel: str) -> None:
    try:
        _check_relative(rel, "path")
    except ValueError as e:
        raise PackageError(str(e), hint="use a relative path inside the package folder") from None


def load_package(path: str | Path, *, read_seal: bool = True) -> Package:
    """Load a package folder (or a manifest path) without checking the seal."""
    p = Path(path)
    root = p.parent if p.name == MANIFEST_NAME else p
    if not root.is_dir():
        raise PackageError(
            f"package folder {root} does not exist",
            hint="give a package folder, or a name listed by `harness package list`",
        )
    manifest = parse_manifest(root / MANIFEST_NAME)
    for src in manifest.data:
        if src.path:
            safe_join(root, src.path)
    if manifest.scorer.kind == "judge":
        safe_join(root, manifest.scorer.template)
    seal_path = root / SEAL_NAME
    seal = parse_seal(seal_path) if read_seal and seal_path.exists() else None
    return Package(root=root, manifest=manifest, seal=seal)


def resolve_package(ref: str | Path, packages_dir: Path | None = None, *, read_seal: bool = True) -> Package:
    """A package by folder path, or by name under the packages folder."""
    p = Path(ref)
    if p.exists():
        return load_package(p, read_seal=read_seal)
    base = packages_dir or default_packages_dir()
    if base is not None and (base / str(ref)).is_dir():
        return load_package(base / str(ref), read_seal=read_seal)
    raise PackageError(
        f"no package {str(ref)!r} (looked for a folder of that name and under {base})",
        hint="run `harness package list` to see the packages available",
    )


def find_lockfile(package_root: Path, name: str) -> Path:
    """Lockfiles live in the repository's ``lockfiles/``; an exported package carries its own."""
    candidates = [package_root / "lockfiles" / name, package_root.parent.parent / "lockfiles" / name]
    env = lockfiles_dir()
    if env is not None:
        candidates.insert(0, env / name)
    for c in candidates:
        if c.is_file():
            return c
    raise LockfileError(
        f"lockfile {name!r} of package {package_root.name} not found (looked in {', '.join(str(c.parent) for c in candidates)})",
        hint="a package outside the repository's packages/ folder finds its lockfile through HARNESS_LOCKFILES=DIR "
        "(e.g. the repository's lockfiles/) or a lockfiles/ folder inside the package; `harness package export` "
        "makes an archive that carries it; to make a new one: `make lock`",
    )


def iter_package_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Every file that the seal covers, in a stable order, refusing links that leave."""
    root_resolved = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in {"__pycache__", ".git"})
        for fn in sorted(filenames):
            full = Path(dirpath) / fn
            rel = full.relative_to(root).as_posix()
            if rel == SEAL_NAME or fn.endswith((".pyc",)):
                continue
            if full.is_symlink():
                target = full.resolve()
                if root_resolved not in target.parents:
                    raise PackageError(
                        f"{rel} is a symlink pointing outside the package ({target})",
                        hint="replace the symlink with a real file inside the package",
                    )
            if not full.is_file():
                continue
            yield rel, full
        for d in list(dirnames):
            full = Path(dirpath) / d
            if full.is_symlink() and root_resolved not in full.resolve().parents:
                raise PackageError(
                    f"{full.relative_to(root).as_posix()} is a symlink pointing outside the package",
                    hint="replace the symlink with a real folder inside the package",
                )


def list_packages(packages_dir: Path | None = None) -> list[Package]:
    base = packages_dir or default_packages_dir()
    if not base.is_dir():
        return []
    out = []
    for child in sorted(base.iterdir()):
        if (child / MANIFEST_NAME).is_file():
            out.append(load_package(child))
    return out
