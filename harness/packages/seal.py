"""The seal: one digest over a package's manifest, files, pinned data and lockfile.

"The same benchmark" is then a fact that can be checked rather than a name that can
drift: :func:`check_package` recomputes the seal and names every file that changed,
:func:`seal_package` is the only way a package becomes runnable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness._internal.files import atomic_write
from harness._internal.hashing import canonical_digest, canonical_json, sha256_bytes, sha256_file
from harness.errors import LockfileError, PackageError, SealError
from harness.packages.data import Sample, load_samples, resolve_sources
from harness.packages.manifest import (
    MANIFEST_NAME,
    SEAL_NAME,
    SEAL_SCHEMA_VERSION,
    Seal,
    SealSummary,
)
from harness.packages.package import Package, iter_package_files, load_package


def compute_seal(pkg: Package, summary: SealSummary | None = None, *, manifest_text: bytes | None = None) -> Seal:
    """The seal the package would have now; also verifies that in-package data matches its pin.

    ``summary`` is counted from the data when sealing; checks reuse the sealed one,
    since the data it was counted from is pinned by digest (and runs count again).
    ``manifest_text`` is a manifest.toml to seal instead of the one on disk (``pkg``
    must carry it parsed): what a change would seal to, before anything is written.
    """
    m = pkg.manifest
    files = {rel: sha256_file(full) for rel, full in iter_package_files(pkg.root)}
    if manifest_text is not None:
        files[MANIFEST_NAME] = sha256_bytes(manifest_text)
    for src in m.data:
        if src.path:
            actual = files.get(Path(src.path).as_posix())
            if actual is None:
                raise PackageError(
                    f"data source {src.id!r}: file {src.path} is missing from {pkg.root}",
                    hint="add the file or fix 'path' in the manifest",
                )
            if actual != src.sha256:
                raise SealError(
                    f"data source {src.id!r}: {src.path} has sha256 {actual}, the manifest pins {src.sha256}",
                    hint="if the data change is intended, update sha256/size in the manifest and reseal",
                )
    if m.scorer.kind == "judge" and Path(m.scorer.template).as_posix() not in files:
        raise PackageError(
            f"judge prompt template {m.scorer.template} is missing from {pkg.root}",
            hint="add the template file or fix scorer.template in the manifest",
        )
    lock = pkg.lockfile_path()
    body = {
        "schema_version": SEAL_SCHEMA_VERSION,
        "package": m.name,
        "version": m.version,
        "manifest_sha256": canonical_digest(m.canonical()),
        "files": files,
        "data": {s.id: s.sha256 for s in m.data},
        "lockfile": {"name": m.lockfile, "sha256": sha256_file(lock)},
        "summary": (summary or (pkg.seal.summary if pkg.seal else SealSummary(samples=0, languages=(), categories=()))).model_dump(mode="json"),
    }
    return Seal.model_validate({**body, "seal": canonical_digest(body)})


def summarize(samples: Sequence[Sample]) -> SealSummary:
    """What the data holds: sample count, languages and categories (sorted)."""
    return SealSummary(
        samples=len(samples),
        languages=tuple(sorted({s.language for s in samples})),
        categories=tuple(sorted({s.category for s in samples})),
    )


def seal_package(path: str | Path, mirror: Path | None = None) -> Seal:
    """Compute and write seal.json; the only way a package becomes runnable.

    The data is read (from the mirror for upstream files) so the seal can state how
    many samples, languages and categories it holds.
    """
    pkg = load_package(path, read_seal=False)  # the old seal is replaced, whatever state it is in
    compute_seal(pkg)  # refuse early: paths, in-package digests, lockfile
    samples = load_samples(pkg, resolve_sources(pkg, mirror))
    seal = compute_seal(pkg, summarize(samples))
    atomic_write(pkg.root / SEAL_NAME, canonical_json(seal.model_dump(mode="json")) + b"\n")
    return seal


@dataclass(frozen=True)
class SealProblem:
    what: str
    path: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def diff_seal(expected: Seal, actual: Seal) -> list[SealProblem]:
    """Name every file, data pin or lockfile that differs between two seals."""
    problems: list[SealProblem] = []
    for rel in sorted(set(expected.files) | set(actual.files)):
        a, b = expected.files.get(rel), actual.files.get(rel)
        if a is None:
            problems.append(SealProblem("file added after sealing", rel))
        elif b is None:
            problems.append(SealProblem("file deleted after sealing", rel))
        elif a != b:
            problems.append(SealProblem(f"content changed (sealed {a[:12]}, now {b[:12]})", rel))
    if expected.manifest_sha256 != actual.manifest_sha256 and not problems:
        problems.append(SealProblem("manifest content changed", MANIFEST_NAME))
    for sid in sorted(set(expected.data) | set(actual.data)):
        if expected.data.get(sid) != actual.data.get(sid):
            problems.append(SealProblem("pinned data digest changed", f"data:{sid}"))
    if expected.summary != actual.summary and not problems:
        problems.append(SealProblem("data summary changed", SEAL_NAME))
    if expected.lockfile != actual.lockfile:
        problems.append(
            SealProblem(
                f"lockfile changed (sealed {expected.lockfile.sha256[:12]}, now {actual.lockfile.sha256[:12]})",
                f"lockfiles/{actual.lockfile.name}",
            )
        )
    return problems


def check_package(path: str | Path | Package) -> Package:
    """Refuse an unsealed or altered package, naming each changed file."""
    pkg = path if isinstance(path, Package) else load_package(path)
    if pkg.seal is None:
        raise SealError(
            f"package {pkg.root} is not sealed (no {SEAL_NAME})",
            hint=f"seal it with `harness package seal {pkg.root}`",
        )
    seal_bytes = canonical_json(pkg.seal.model_dump(mode="json")) + b"\n"
    if (pkg.root / SEAL_NAME).read_bytes() != seal_bytes:
        raise SealError(
            f"{pkg.root / SEAL_NAME}: not byte for byte what `harness package seal` writes (seal.json was edited)",
            hint="restore seal.json, or reseal with `harness package seal` if the change was intended",
        )
    if canonical_digest(pkg.seal.body()) != pkg.seal.seal:
        raise SealError(
            f"{pkg.root / SEAL_NAME}: the seal digest does not match the seal's own contents (seal.json was edited)",
            hint="restore seal.json, or reseal with `harness package seal` if the change was intended",
        )
    try:
        actual = compute_seal(pkg)
    except LockfileError as e:
        # Say first what else is wrong: a missing lockfile must not hide an edited file.
        files = {rel: sha256_file(full) for rel, full in iter_package_files(pkg.root)}
        changed = sorted(rel for rel in set(files) | set(pkg.seal.files) if files.get(rel) != pkg.seal.files.get(rel))
        if changed:
            raise SealError(f"package {pkg.name} at {pkg.root} does not match its seal (changed, added or missing: "
                            f"{', '.join(changed)}); also, {e.message}", hint=e.hint) from None
        raise
    problems = diff_seal(pkg.seal, actual)
    if problems or actual.seal != pkg.seal.seal:
        listing = "\n".join(f"  - {p}" for p in problems) or "  - seal contents differ"
        raise SealError(
            f"package {pkg.name} at {pkg.root} does not match its seal:\n{listing}",
            hint="restore the original files, or reseal with `harness package seal` if the change was intended",
        )
    return dataclasses.replace(pkg, verified_files=dict(actual.files))
