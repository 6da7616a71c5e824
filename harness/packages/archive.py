"""Package archives: one file that carries a sealed package, its lockfile and its verified data.

An auditor on another machine needs the exact benchmark a run used, not a package of
the same name. `harness package export` writes the package folder, the lockfile it
pins and every upstream data file (checked against its pin) into a deterministic
tar.gz (sorted entries, zero times and owners, so the same package gives the same
bytes); `harness package import` checks it all again and files it under its seal
digest, which is how `harness reproduce` finds it.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from pydantic import ValidationError

from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_json, sha256_file
from harness._internal.settings import cache_dir
from harness.errors import HarnessError, PackageError, SealError
from harness.packages.data import resolve_sources
from harness.packages.manifest import MANIFEST_NAME
from harness.packages.package import Package, list_packages, load_package, resolve_package
from harness.packages.seal import check_package

ARCHIVE_SCHEMA_VERSION: Final[Literal[1]] = 1
TOP = "harness-package"
INDEX_NAME = "ARCHIVE.json"
SUFFIX = ".harness.tar.gz"


class ArchiveIndex(Frozen):
    """``harness-package/ARCHIVE.json``, schema version 1: what the archive claims to hold."""

    schema_version: Literal[1] = ARCHIVE_SCHEMA_VERSION
    package: str
    version: str
    seal: str
    lockfile: str
    blobs: dict[str, str]
    """data source id -> sha256 of an upstream file carried as blobs/<sha256>."""


def store_dir() -> Path:
    """Where `harness package import` keeps packages, one folder per seal digest."""
    return cache_dir() / "packages"


def imported_package(seal: str) -> Path | None:
    """The folder of the imported package with this seal digest, if one was imported."""
    root = store_dir() / seal / "packages"
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if (child / MANIFEST_NAME).is_file():
                return child
    return None


def default_name(pkg: Package) -> str:
    assert pkg.seal is not None
    return f"{pkg.name}-{pkg.version}-{pkg.seal.seal[:12]}{SUFFIX}"


def export_package(ref: str | Path, out: Path | None = None, *, mirror: Path | None = None) -> tuple[Path, Package]:
    """Write the archive of a package that matches its seal; its upstream data is verified first."""
    pkg = check_package(resolve_package(ref))
    assert pkg.seal is not None
    sources = resolve_sources(pkg, mirror)  # verifies every pinned digest
    members: list[tuple[str, Path]] = []
    for full in sorted(p for p in pkg.root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        members.append((f"{TOP}/packages/{pkg.name}/{full.relative_to(pkg.root).as_posix()}", full))
    lock = pkg.lockfile_path()
    members.append((f"{TOP}/lockfiles/{pkg.manifest.lockfile}", lock))
    blobs = {}
    for src, verified in zip(pkg.manifest.data, sources, strict=True):
        if src.path is None:
            blobs[src.id] = verified.sha256
            members.append((f"{TOP}/blobs/{verified.sha256}", verified.path))
    index = ArchiveIndex(package=pkg.name, version=pkg.version, seal=pkg.seal.seal, lockfile=pkg.manifest.lockfile,
                         blobs=blobs)
    out = out or Path.cwd() / default_name(pkg)
    if out.is_dir():
        out = out / default_name(pkg)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, f"{TOP}/{INDEX_NAME}", canonical_json(index.model_dump(mode="json")) + b"\n")
            seen = set()
            for name, path in sorted(members):
                if name not in seen:
                    seen.add(name)
                    _add(tar, name, path.read_bytes())
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out, pkg


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _safe_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    out = []
    for m in tar.getmembers():
        p = PurePosixPath(m.name)
        if not m.isfile() or p.is_absolute() or ".." in p.parts or p.parts[:1] != (TOP,):
            raise PackageError(f"{archive}: member {m.name!r} is not a plain file inside {TOP}/",
                               hint="this is not an archive written by `harness package export`")
        out.append(m)
    return out


def import_archive(archive: Path, store: Path | None = None) -> Package:
    """Check an archive (seal, lockfile, every data digest) and keep it under its seal digest."""
    store = store or store_dir()
    if not archive.is_file():
        raise PackageError(f"package archive {archive} does not exist", hint="give the file `harness package export` wrote")
    store.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=store))
    try:
        try:
            with tarfile.open(archive, mode="r:gz") as tar:
                members = _safe_members(tar, archive)
                tar.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise PackageError(f"{archive} is not a readable package archive: {e}",
                               hint="export it again with `harness package export`") from None
        top = tmp / TOP
        try:
            index = ArchiveIndex.model_validate_json((top / INDEX_NAME).read_bytes())
        except (OSError, ValidationError) as e:
            raise PackageError(f"{archive}: no valid {INDEX_NAME} ({str(e).splitlines()[0]})",
                               hint="this is not an archive written by `harness package export`") from None
        pkg = check_package(load_package(top / "packages" / index.package))
        assert pkg.seal is not None
        if pkg.seal.seal != index.seal:
            raise SealError(f"{archive}: the package's seal is {pkg.seal.seal}, the archive says {index.seal}",
                            hint="the archive was altered; export it again from the original package")
        for src in pkg.manifest.data:
            if src.path is None:
                blob = top / "blobs" / src.sha256
                if index.blobs.get(src.id) != src.sha256 or not blob.is_file() or sha256_file(blob) != src.sha256:
                    raise SealError(f"{archive}: data source {src.id!r} is missing or does not match its pin {src.sha256}",
                                    hint="the archive was altered or is incomplete; export it again")
                cached = cache_dir() / "data" / "sha256" / src.sha256
                if not cached.is_file():
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(blob, cached.with_name(cached.name + ".part"))
                    os.replace(cached.with_name(cached.name + ".part"), cached)
        shutil.rmtree(top / "blobs", ignore_errors=True)
        final = store / index.seal
        if final.exists():
            shutil.rmtree(final)
        os.replace(top, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_package(final / "packages" / index.package)


def find_package(seal: str, name: str, *, package: str | Path | None = None, archive: Path | None = None,
                 packages_dir: Path | None = None) -> Package:
    """The package whose seal digest is ``seal``, checked against that seal; refuse if there is none.

    Looks at ``package`` (a folder), ``archive`` (imported first), the packages folder,
    and the import store, in that order.
    """
    seen: list[str] = []
    candidates: list[Path] = []
    if archive is not None:
        candidates.append(import_archive(archive).root)
    if package is not None:
        candidates.append(Path(package))
    else:
        try:
            candidates += [p.root for p in list_packages(packages_dir) if p.name == name]
        except HarnessError:
            pass
        stored = imported_package(seal)
        if stored is not None:
            candidates.append(stored)
    for root in candidates:
        try:
            pkg = load_package(root)
        except HarnessError as e:
            seen.append(f"{root}: {e.message}")
            continue
        if pkg.seal is None or pkg.seal.seal != seal:
            seen.append(f"{root}: seal {pkg.seal.seal if pkg.seal else '(none)'}")
            continue
        try:
            return check_package(pkg)
        except HarnessError as e:
            seen.append(f"{root}: {e.message.splitlines()[0]}")
    listing = "".join(f"\n  - {s}" for s in seen) or "\n  - no package of that name was found"
    raise PackageError(
        f"no package {name} with seal {seal} is available:{listing}",
        hint="give the original package folder with --package, or its archive (from `harness package export`) "
        "with --archive; an altered package cannot reproduce a run",
    )
