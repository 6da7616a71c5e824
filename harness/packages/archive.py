"""Package archives: one file that carries a sealed package, its lockfile and its verified data.

An auditor on another machine needs the exact benchmark a run used, not a package of
the same name. `harness package export` writes the package folder, the lockfile it
pins and every upstream data file (checked against its pin) into a deterministic
tar.gz (sorted entries, zero times and owners, so the same package gives the same
bytes); `harness package import` checks it all again and files it under its seal
digest, which is how `harness reproduce` finds it.

An archive is received from someone else, so import trusts nothing in it: the tar is
read as a stream, and each member must be a regular file named ``harness-package/...``
without ``..``, an absolute path or a backslash (links, devices, FIFOs and folders are
refused); the decompressed stream, the members' total size and their number are capped
(:data:`MAX_UNPACKED_BYTES`, :data:`MAX_FILES`), so a decompression bomb stops as soon
as it crosses a limit; every name the index gives is checked before a path is built
from it. A refused import leaves the store as it was.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from pydantic import ValidationError, field_validator

from harness._internal.files import UnsafeNameError, check_name, read_regular
from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_json, sha256_file
from harness._internal.settings import cache_dir
from harness._internal.strictjson import check_strict
from harness.errors import HarnessError, PackageError, SealError
from harness.packages.data import resolve_sources
from harness.packages.manifest import MANIFEST_NAME
from harness.packages.package import Package, list_packages, load_package, resolve_package
from harness.packages.seal import check_package

ARCHIVE_SCHEMA_VERSION: Final[Literal[1]] = 1
TOP = "harness-package"
INDEX_NAME = "ARCHIVE.json"
SUFFIX = ".harness.tar.gz"
MAX_UNPACKED_BYTES = 8 << 30
"""Largest total size of an archive's files (8 GiB): the biggest pinned upstream data is far smaller."""
MAX_FILES = 10_000
"""Most members an archive may hold (a package is a few dozen files)."""
MAX_INDEX_BYTES = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEADER_ALLOWANCE = 64 << 10
"""Tar headers (and PAX records) counted per member on top of the data, for the stream cap."""


class ArchiveIndex(Frozen):
    """``harness-package/ARCHIVE.json``, schema version 1: what the archive claims to hold."""

    schema_version: Literal[1] = ARCHIVE_SCHEMA_VERSION
    package: str
    version: str
    seal: str
    lockfile: str
    blobs: dict[str, str]
    """data source id -> sha256 of an upstream file carried as blobs/<sha256>."""

    @field_validator("package", "lockfile")
    @classmethod
    def _plain(cls, v: str) -> str:
        """Both name a path inside the archive: one plain name each, never ``..`` or a separator."""
        try:
            return check_name(v, "name")
        except UnsafeNameError as e:
            raise ValueError(str(e)) from None

    @field_validator("seal")
    @classmethod
    def _seal(cls, v: str) -> str:
        """The seal names the store folder the import replaces: a digest, nothing else."""
        if not _HEX64.match(v):
            raise ValueError(f"{v!r} is not a seal digest (64 lowercase hex digits)")
        return v

    @field_validator("blobs")
    @classmethod
    def _blobs(cls, v: dict[str, str]) -> dict[str, str]:
        for digest in v.values():
            if not _HEX64.match(digest):
                raise ValueError(f"blob digest {digest!r} is not a sha256 hex digest")
        return v


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


class _Capped(io.RawIOBase):
    """The decompressed archive stream, refused past ``cap`` bytes: tarfile reads PAX
    headers and member data from it, so nothing in the archive can make it read more."""

    def __init__(self, inner: gzip.GzipFile, cap: int, archive: Path) -> None:
        self.inner, self.cap, self.seen, self.archive = inner, cap, 0, archive

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buf))
        self.seen += len(data)
        if self.seen > self.cap:
            raise _refused(self.archive, f"it unpacks to more than {self.cap} bytes (the limit is "
                                         f"{MAX_UNPACKED_BYTES} bytes of files)")
        buf[: len(data)] = data
        return len(data)


def _refused(archive: Path, why: str) -> PackageError:
    return PackageError(f"{archive}: refused: {why}",
                        hint="this is not an archive written by `harness package export`; nothing was imported")


def _member_path(m: tarfile.TarInfo, archive: Path) -> PurePosixPath:
    """The member's path inside ``harness-package/``, or a refusal naming what is wrong with it."""
    p = PurePosixPath(m.name)
    if not m.isreg():
        kind = ("symbolic link" if m.issym() else "hard link" if m.islnk() else "device" if m.isdev()
                else "FIFO" if m.isfifo() else "folder" if m.isdir() else "special member")
        raise _refused(archive, f"member {m.name!r} is a {kind}; only regular files are accepted")
    if (p.is_absolute() or "\\" in m.name or "\x00" in m.name or ".." in p.parts or "." in p.parts
            or p.parts[:1] != (TOP,) or len(p.parts) < 2):
        raise _refused(archive, f"member {m.name!r} is not a plain path inside {TOP}/")
    return p


def _unpack(archive: Path, into: Path, max_bytes: int, max_files: int) -> None:
    """Stream the archive into ``into``, refusing at the first member or byte over a limit."""
    total = files = 0
    seen: set[str] = set()
    with open(archive, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
        capped = _Capped(gz, max_bytes + _HEADER_ALLOWANCE * (max_files + 2), archive)
        with tarfile.open(fileobj=io.BufferedReader(capped), mode="r|") as tar:
            for m in tar:
                p = _member_path(m, archive)
                files += 1
                total += m.size
                if files > max_files:
                    raise _refused(archive, f"it holds more than {max_files} files (the limit)")
                if total > max_bytes:
                    raise _refused(archive, f"its files add up to more than {max_bytes} bytes (the limit)")
                if m.name in seen:
                    raise _refused(archive, f"member {m.name!r} appears twice")
                seen.add(m.name)
                dest = into.joinpath(*p.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                assert src is not None  # a regular member
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)


def import_archive(archive: Path, store: Path | None = None, *, max_bytes: int | None = None,
                   max_files: int | None = None) -> Package:
    """Check an archive (members, limits, seal, lockfile, every data digest) and keep it under its seal digest.

    Nothing in the store changes unless every check passed; a copy already stored under
    the same seal is swapped for the new one only then.
    """
    store = store or store_dir()
    max_bytes = MAX_UNPACKED_BYTES if max_bytes is None else max_bytes
    max_files = MAX_FILES if max_files is None else max_files
    if not archive.is_file():
        raise PackageError(f"package archive {archive} does not exist", hint="give the file `harness package export` wrote")
    store.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=store))
    try:
        try:
            _unpack(archive, tmp, max_bytes, max_files)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise PackageError(f"{archive} is not a readable package archive: {e}",
                               hint="export it again with `harness package export`") from None
        top = tmp / TOP
        try:
            raw = read_regular(top / INDEX_NAME, follow=False, limit=MAX_INDEX_BYTES)
            check_strict(raw)
            index = ArchiveIndex.model_validate_json(raw)
        except (OSError, ValidationError, ValueError) as e:
            raise PackageError(f"{archive}: no valid {INDEX_NAME} ({str(e).splitlines()[0]})",
                               hint="this is not an archive written by `harness package export`") from None
        pkg_root = top / "packages" / index.package
        if not pkg_root.is_dir():
            raise _refused(archive, f"the index names package {index.package!r}, which the archive does not hold")
        pkg = check_package(load_package(pkg_root))
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
        if os.path.lexists(final):  # swap only now that everything checked; the old copy goes last
            os.replace(final, tmp / "replaced")
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
