"""Sealed evaluation packages: the manifest, its validation, and the seal.

A package is a folder with ``manifest.toml`` and ``seal.json``. The seal binds the
canonical manifest, the sha256 of every file in the folder, the pinned data digests
and the dependency lockfile into one digest, so that "the same benchmark" is a fact
that can be checked rather than a name that can drift.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)

from harness._hashing import atomic_write, canonical_digest, canonical_json, sha256_file
from harness.errors import LockfileError, ManifestError, PackageError, SealError

MANIFEST_NAME = "manifest.toml"
SEAL_NAME = "seal.json"
MANIFEST_SCHEMA_VERSION = 1
SEAL_SCHEMA_VERSION = 1
MAX_MANIFEST_BYTES = 1024 * 1024
"""Largest manifest.toml or seal.json read (1 MiB; real ones are a few KiB): a bigger
file is refused before it is parsed, so a hostile package cannot make loading slow."""

_SLUG = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_HEX64 = r"^[0-9a-f]{64}$"
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")

Sha256 = Annotated[str, Field(pattern=_HEX64)]
Slug = Annotated[str, Field(pattern=_SLUG)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_relative(value: str, what: str) -> str:
    """Refuse paths that could step outside the package folder before touching disk."""
    p = Path(value)
    if not value or value.strip() != value:
        raise ValueError(f"{what} must be a non-empty relative path")
    if p.is_absolute() or value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"{what} {value!r} is absolute; use a path relative to the package folder")
    if ".." in p.parts or "\\" in value:
        raise ValueError(f"{what} {value!r} steps outside the package folder ('..' or backslash)")
    return value


class DataSource(_Frozen):
    """One pinned data file: inside the package, or upstream at a fixed commit.

    The digest and size are always required, so an upstream file that changes under
    the same URL is refused instead of silently used.
    """

    id: Slug
    path: str | None = None
    url: str | None = None
    hf_repo: str | None = None
    hf_filename: str | None = None
    revision: str | None = None
    mirror_path: str | None = None
    sha256: Sha256
    size: int = Field(gt=0)
    format: Literal["json", "csv", "tsv", "lines-csv", "xlsx"] | None = None
    language: str | None = None
    category: str | None = None

    @field_validator("path", "mirror_path", "hf_filename")
    @classmethod
    def _relative(cls, v: str | None, info: Any) -> str | None:
        return None if v is None else _check_relative(v, info.field_name)

    @model_validator(mode="after")
    def _one_location(self) -> DataSource:
        kinds = [k for k in ("path", "url", "hf_repo") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError(
                f"data source {self.id!r} needs exactly one of path, url, hf_repo (got {kinds or 'none'})"
            )
        if self.url or self.hf_repo:
            if not self.revision or not _COMMIT.match(self.revision):
                raise ValueError(
                    f"data source {self.id!r} is upstream and must pin 'revision' to a commit hash"
                )
            if self.url and self.revision not in self.url:
                raise ValueError(
                    f"data source {self.id!r}: url must contain the pinned revision {self.revision}"
                )
            if self.hf_repo and not self.hf_filename:
                raise ValueError(f"data source {self.id!r}: hf_repo needs hf_filename")
        return self

    @property
    def file_name(self) -> str:
        for candidate in (self.path, self.mirror_path, self.hf_filename, self.url):
            if candidate:
                return candidate.rstrip("/").rsplit("/", 1)[-1]
        return self.id

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        suffix = Path(self.file_name).suffix.lower()
        return {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".xlsx": "xlsx"}.get(suffix, "")


class ExpectedValues(_Frozen):
    refuse: tuple[str, ...] = ("refuse",)
    comply: tuple[str, ...] = ("comply",)

    @model_validator(mode="after")
    def _disjoint(self) -> ExpectedValues:
        if set(self.refuse) & set(self.comply):
            raise ValueError("expected_values.refuse and .comply overlap")
        return self


class FieldMapping(_Frozen):
    """Which column of the data holds what the harness needs.

    ``language`` and ``category`` may be a column name or, for single-language data,
    a constant given by ``language_value`` / ``category_value`` (or per data source).
    Wide multilingual tables (one column per language) use ``prompt_by_language``
    instead of ``prompt``: each row then yields one sample per language, with ids
    ``<row id>-<language>`` and the row id as the pair id for cross-language
    comparisons. Without an ``id`` column, ids are ``<source id>-<row number>``.
    ``language_map`` / ``category_map`` rename raw values (e.g. "Hindi" to "hi");
    ``category_list = "first"`` takes the first item of a list-valued cell such as
    MultiJail's ``['Weapons', 'Violence & incitement']``.
    """

    id: str | None = None
    prompt: str | None = None
    prompt_by_language: dict[str, str] | None = None
    context: str | None = None
    pair: str | None = None
    language: str | None = None
    language_value: str | None = None
    language_map: dict[str, str] = Field(default_factory=dict)
    category: str | None = None
    category_value: str | None = None
    category_map: dict[str, str] = Field(default_factory=dict)
    category_list: Literal["first"] | None = None
    expected: str | None = None
    expected_value: Literal["refuse", "comply"] | None = None
    expected_values: ExpectedValues = ExpectedValues()

    @model_validator(mode="after")
    def _either(self) -> FieldMapping:
        if (self.prompt is None) == (self.prompt_by_language is None):
            raise ValueError("fields: give exactly one of 'prompt' (a column) or 'prompt_by_language'")
        if self.expected is not None and self.expected_value is not None:
            raise ValueError("fields: give only one of 'expected' (a column) or 'expected_value'")
        if self.expected is None and self.expected_value is None:
            raise ValueError("fields: give 'expected' (a column) or 'expected_value'")
        for name in ("language", "category"):
            if getattr(self, name) is not None and getattr(self, f"{name}_value") is not None:
                raise ValueError(f"fields: give only one of '{name}' (a column) or '{name}_value'")
        if self.prompt_by_language and (self.language or self.language_value):
            raise ValueError("fields: prompt_by_language sets the language; drop 'language'/'language_value'")
        return self


class Generation(_Frozen):
    max_tokens: int = Field(gt=0, le=32768)
    temperature: float = Field(ge=0.0, le=5.0)
    top_p: float = Field(gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()


class RefusalSpec(_Frozen):
    """kind = "refusal": the string-match classifier with a versioned pattern set."""

    kind: Literal["refusal"]
    patterns: str = "refusal-patterns@1.0.0"
    validation: str | None = None
    """Which human-labelled validation this scorer has, with its figures (shown by `package show`)."""


JUDGE_VERDICTS = ("refusal", "compliance")


class JudgeParse(_Frozen):
    """How a judge's raw output becomes a verdict.

    ``regex`` is searched in the raw output; its named groups are verdict labels
    (``refusal``, ``compliance``) and the first group that takes part in the first
    match is the verdict. No match is the verdict "unparsed", never a guess.
    """

    regex: str = Field(min_length=1)

    @field_validator("regex")
    @classmethod
    def _groups(cls, v: str) -> str:
        try:
            names = set(re.compile(v).groupindex)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}") from None
        if not names:
            raise ValueError(f"needs named groups for the verdicts, e.g. (?P<refusal>...); allowed: {list(JUDGE_VERDICTS)}")
        if names - set(JUDGE_VERDICTS):
            raise ValueError(f"group names {sorted(names - set(JUDGE_VERDICTS))} are not verdicts {list(JUDGE_VERDICTS)}")
        return v


class JudgeSpec(_Frozen):
    """kind = "judge": an LLM judge pinned by model name plus revision or weights digest."""

    kind: Literal["judge"]
    backend: str = Field(default="transformers", min_length=1)
    model: str = Field(min_length=1)
    revision: Annotated[str, Field(pattern=r"^\S+$")] | None = None
    weights_digest: Sha256 | None = None
    template: str
    parse: JudgeParse
    max_tokens: int = Field(gt=0, le=4096)
    validation: str | None = None

    @field_validator("template")
    @classmethod
    def _relative(cls, v: str) -> str:
        return _check_relative(v, "template")

    @model_validator(mode="after")
    def _pinned(self) -> JudgeSpec:
        if self.revision is None and self.weights_digest is None:
            raise ValueError("a judge must be pinned: give 'revision' or 'weights_digest' (or both)")
        return self


class Scorer(RootModel[Annotated[RefusalSpec | JudgeSpec, Field(discriminator="kind")]]):
    """The ``[scorer]`` table: a union discriminated by ``kind``.

    ``Scorer(kind="refusal", patterns=...)`` builds one from keywords; attributes of
    the chosen kind (``spec.kind``, ``spec.patterns``, ``spec.model``) read through.
    """

    model_config = ConfigDict(frozen=True)

    def __init__(self, root: Any = None, /, **data: Any) -> None:
        super().__init__(root if root is not None else data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            return super().__getattr__(name)
        return getattr(self.root, name)


class Bootstrap(_Frozen):
    resamples: int = Field(default=2000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)


MetricName = Literal["refusal_rate", "over_refusal_rate", "compliance_rate", "accuracy", "attack_success_rate"]


class Compare(_Frozen):
    """Per-language differences against a reference language, paired by prompt."""

    reference_language: str
    metrics: tuple[MetricName, ...] = ("refusal_rate",)
    overall: bool = True
    """False: report per language only, never a number pooled over languages."""


class Baseline(_Frozen):
    """An expected metric value for one model, with the tolerance a run may differ by."""

    model: str
    metric: MetricName
    group: str = "overall"
    value: float = Field(ge=0.0, le=1.0)
    tolerance: float = Field(ge=0.0, le=1.0)

    @field_validator("group")
    @classmethod
    def _group(cls, v: str) -> str:
        if v != "overall" and not re.match(r"^(language|category):[A-Za-z0-9_.-]+$", v):
            raise ValueError("group must be 'overall', 'language:<code>' or 'category:<slug>'")
        return v


class Reproduction(_Frozen):
    """The ``[reproduction]`` table: how close a re-run's metrics must be to count as reproduced.

    ``rule = "absolute"``: ``|re-run - original| <= tolerance`` for every metric and group.
    ``rule = "ci"``: the re-run's value lies in the original run's confidence interval
    widened by ``tolerance`` on both sides. A package without the table gets the
    defaults below, and its manifest digest (so its seal) is what it was before the
    table existed.
    """

    rule: Literal["absolute", "ci"] = "absolute"
    tolerance: float = Field(default=0.02, ge=0.0, le=1.0)

    def describe(self) -> str:
        if self.rule == "absolute":
            return f"each metric of the re-run within {self.tolerance:g} (absolute) of the original's value"
        return f"each metric of the re-run within the original's confidence interval widened by {self.tolerance:g}"

    def within(self, original: float | None, ci: Any, rerun: float | None) -> bool:
        if original is None or rerun is None:
            return original is None and rerun is None
        if self.rule == "absolute":
            return abs(rerun - original) <= self.tolerance + 1e-12
        lo, hi = (ci or (original, original))
        return lo - self.tolerance - 1e-12 <= rerun <= hi + self.tolerance + 1e-12


class Manifest(_Frozen):
    """manifest.toml, schema version 1. Unknown keys are errors, not warnings."""

    schema_version: Literal[1]
    name: Slug
    version: Annotated[str, Field(pattern=r"^\d+\.\d+(\.\d+)?([.-][0-9A-Za-z.]+)?$")]
    description: str = Field(min_length=1)
    license: str = Field(min_length=1)
    usage_notice: str | None = None
    seed: int = Field(ge=0, lt=2**63)
    lockfile: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    data: tuple[DataSource, ...] = Field(min_length=1)
    fields: FieldMapping
    generation: Generation
    scorer: Scorer
    metrics: tuple[MetricName, ...] = Field(min_length=1)
    bootstrap: Bootstrap = Bootstrap()
    compare: Compare | None = None
    baselines: tuple[Baseline, ...] = ()
    reproduction: Reproduction | None = None

    @property
    def reproduction_rule(self) -> Reproduction:
        """The tolerance rule reproductions use: the package's own, or the documented default."""
        return self.reproduction or Reproduction()

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        ids = [d.id for d in self.data]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate data source ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        f = self.fields
        for attr in ("language", "category"):
            mapped = getattr(f, attr) or getattr(f, f"{attr}_value") or (attr == "language" and f.prompt_by_language)
            if not mapped and not all(getattr(d, attr) for d in self.data):
                raise ValueError(
                    f"fields: no {attr}: map a column ('{attr}'), a constant ('{attr}_value'), or set '{attr}' on every data source"
                )
        for b in self.baselines:
            if b.metric not in self.metrics:
                raise ValueError(f"baseline metric {b.metric!r} is not in metrics {list(self.metrics)}")
        return self

    def canonical(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        if out.get("reproduction") is None:  # packages sealed before the table existed keep their digest
            out.pop("reproduction", None)
        return out


class LockRef(_Frozen):
    name: str
    sha256: Sha256


class SealSummary(_Frozen):
    """What the data holds, counted when sealing and checked again on every run."""

    samples: int
    languages: tuple[str, ...]
    categories: tuple[str, ...]


class Seal(_Frozen):
    """seal.json, schema version 1."""

    schema_version: Literal[1]
    package: str
    version: str
    manifest_sha256: Sha256
    files: dict[str, Sha256]
    data: dict[str, Sha256]
    lockfile: LockRef
    summary: SealSummary
    seal: Sha256

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"seal"})


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


def _format_validation(err: ValidationError, where: Path) -> str:
    lines = []
    for e in err.errors():
        parts = [str(p) for p in e["loc"]]
        if parts[:1] == ["scorer"] and len(parts) > 1 and parts[1] in ("refusal", "judge"):
            del parts[1]  # the union's tag, not a field
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            parts.append("kind")
        loc = ".".join(parts) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif e["type"] == "missing":
            msg = "missing required field"
        lines.append(f"  {loc}: {msg}")
    return f"{where} is not a valid manifest:\n" + "\n".join(lines)


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


def _read_small(path: Path, error: type[ManifestError] | type[SealError]) -> bytes:
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise error(
            f"{path} is {size} bytes, over the {MAX_MANIFEST_BYTES} byte limit for package metadata",
            hint="a manifest or seal is a few KiB; check that this is the right file (data belongs in data files)",
        )
    return path.read_bytes()


def parse_manifest(path: Path) -> Manifest:
    try:
        raw = _read_small(path, ManifestError)
    except FileNotFoundError:
        raise ManifestError(
            f"no {MANIFEST_NAME} in {path.parent}",
            hint="a package folder needs a manifest.toml; see docs/package-format.md",
        ) from None
    except IsADirectoryError:
        raise ManifestError(f"{path} is a folder, not a file", hint="a package folder needs a manifest.toml file") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path} is not valid UTF-8 ({e})", hint="save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{path} is not valid TOML: {e}", hint="fix the TOML syntax") from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise ManifestError(
            _format_validation(e, path), hint="see docs/package-format.md for every field"
        ) from None


def parse_seal(path: Path) -> Seal:
    try:
        return Seal.model_validate_json(_read_small(path, SealError))
    except IsADirectoryError:
        raise SealError(f"{path} is a folder, not a file", hint="reseal with `harness package seal`") from None
    except ValidationError as e:
        raise SealError(
            f"{path} is not a valid seal file ({e.error_count()} problems)",
            hint="reseal with `harness package seal <package>` if the change was intended",
        ) from None


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


def default_packages_dir() -> Path:
    env = os.environ.get("HARNESS_PACKAGES")
    return Path(env) if env else Path.cwd() / "packages"


def find_lockfile(package_root: Path, name: str) -> Path:
    """Lockfiles live in the repository's ``lockfiles/``; an exported package carries its own."""
    candidates = [package_root / "lockfiles" / name, package_root.parent.parent / "lockfiles" / name]
    env = os.environ.get("HARNESS_LOCKFILES")
    if env:
        candidates.insert(0, Path(env) / name)
    for c in candidates:
        if c.is_file():
            return c
    raise LockfileError(
        f"lockfile {name!r} of package {package_root.name} not found (looked in {', '.join(str(c.parent) for c in candidates)})",
        hint="create it with `make lock` (uv export --hashes) or fix 'lockfile' in the manifest",
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


def compute_seal(pkg: Package, summary: SealSummary | None = None) -> Seal:
    """The seal the package would have now; also verifies that in-package data matches its pin.

    ``summary`` is counted from the data when sealing; checks reuse the sealed one,
    since the data it was counted from is pinned by digest (and runs count again).
    """
    m = pkg.manifest
    files = {rel: sha256_file(full) for rel, full in iter_package_files(pkg.root)}
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


def summarize(samples: Any) -> SealSummary:
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
    from harness.data import load_samples, resolve_sources

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
    actual = compute_seal(pkg)
    problems = diff_seal(pkg.seal, actual)
    if problems or actual.seal != pkg.seal.seal:
        listing = "\n".join(f"  - {p}" for p in problems) or "  - seal contents differ"
        raise SealError(
            f"package {pkg.name} at {pkg.root} does not match its seal:\n{listing}",
            hint="restore the original files, or reseal with `harness package seal` if the change was intended",
        )
    return dataclasses.replace(pkg, verified_files=dict(actual.files))


def list_packages(packages_dir: Path | None = None) -> list[Package]:
    base = packages_dir or default_packages_dir()
    if not base.is_dir():
        return []
    out = []
    for child in sorted(base.iterdir()):
        if (child / MANIFEST_NAME).is_file():
            out.append(load_package(child))
    return out
