"""The two files that make a folder a package: ``manifest.toml`` and ``seal.json``.

Both are frozen, versioned pydantic models (documented in docs/package-format.md);
unknown keys are errors, and both files are size-limited before they are parsed, since
a package may come from someone else. The seal's own computation and checks live in
:mod:`harness.packages.seal`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from harness._internal.frozen import Frozen
from harness.errors import ManifestError, SealError
from harness.packages.scorer_spec import (
    BEHAVIOURS,
    THREE_WAY_METRICS,
    WithoutAbsent,
    check_behaviours,
    check_confidence_regex,
    check_cross_check,
    drop_absent_scorer_fields,
)

MANIFEST_NAME = "manifest.toml"
SEAL_NAME = "seal.json"
MANIFEST_SCHEMA_VERSION: Final[Literal[1]] = 1
SEAL_SCHEMA_VERSION: Final[Literal[1]] = 1
MAX_MANIFEST_BYTES = 1024 * 1024
"""Largest manifest.toml or seal.json read (1 MiB; real ones are a few KiB): a bigger
file is refused before it is parsed, so a hostile package cannot make loading slow."""

_SLUG = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_HEX64 = r"^[0-9a-f]{64}$"
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")

Sha256 = Annotated[str, Field(pattern=_HEX64)]
Slug = Annotated[str, Field(pattern=_SLUG)]


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


class DataSource(Frozen):
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


class ExpectedValues(Frozen):
    refuse: tuple[str, ...] = ("refuse",)
    comply: tuple[str, ...] = ("comply",)

    @model_validator(mode="after")
    def _disjoint(self) -> ExpectedValues:
        if set(self.refuse) & set(self.comply):
            raise ValueError("expected_values.refuse and .comply overlap")
        return self


class FieldMapping(Frozen):
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


class Generation(Frozen):
    max_tokens: int = Field(gt=0, le=32768)
    temperature: float = Field(ge=0.0, le=5.0)
    top_p: float = Field(gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()


class RefusalSpec(WithoutAbsent):
    """kind = "refusal": the string-match classifier with a versioned pattern set.

    ``behaviours`` (optional) declares safe completion as a third verdict; ``cross_check``
    (optional) names a second scorer whose disagreement marks a verdict uncertain. Both
    are left out of the canonical manifest when absent, so older seals hold.
    """

    _optional: ClassVar[frozenset[str]] = frozenset({"behaviours", "cross_check"})
    kind: Literal["refusal"]
    patterns: str = "refusal-patterns@1.0.0"
    validation: str | None = None
    """Which human-labelled validation this scorer has, with its figures (shown by `package show`)."""
    behaviours: tuple[str, ...] | None = None
    cross_check: CrossCheckSpec | None = None

    @field_validator("behaviours")
    @classmethod
    def _behaviours(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return check_behaviours(v)

    @model_validator(mode="after")
    def _flat_cross_check(self) -> RefusalSpec:
        check_cross_check(self.cross_check)
        return self


JUDGE_VERDICTS = ("refusal", "safe_completion", "compliance")


class JudgeParse(WithoutAbsent):
    """How a judge's raw output becomes a verdict.

    ``regex`` is searched in the raw output; its named groups are verdict labels
    (``refusal``, ``compliance``) and the first group that takes part in the first
    match is the verdict. No match is the verdict "unparsed", never a guess.
    """

    _optional: ClassVar[frozenset[str]] = frozenset({"confidence", "min_confidence"})
    regex: str = Field(min_length=1)
    confidence: str | None = None
    """Optional: a regex with a named group ``confidence`` read as a number from the raw output."""
    min_confidence: float | None = None
    """A verdict whose stated confidence is below this (or unstated) is marked uncertain."""

    @field_validator("confidence")
    @classmethod
    def _confidence_group(cls, v: str | None) -> str | None:
        return check_confidence_regex(v)

    @model_validator(mode="after")
    def _confidence_pair(self) -> JudgeParse:
        if (self.confidence is None) != (self.min_confidence is None):
            raise ValueError("give both 'confidence' (the regex) and 'min_confidence' (the threshold), or neither")
        return self

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


class JudgeSpec(WithoutAbsent):
    """kind = "judge": an LLM judge pinned by model name plus revision or weights digest."""

    _optional: ClassVar[frozenset[str]] = frozenset({"behaviours", "cross_check"})
    kind: Literal["judge"]
    backend: str = Field(default="transformers", min_length=1)
    model: str = Field(min_length=1)
    revision: Annotated[str, Field(pattern=r"^\S+$")] | None = None
    weights_digest: Sha256 | None = None
    template: str
    parse: JudgeParse
    max_tokens: int = Field(gt=0, le=4096)
    validation: str | None = None
    behaviours: tuple[str, ...] | None = None
    cross_check: CrossCheckSpec | None = None

    @field_validator("behaviours")
    @classmethod
    def _behaviours(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return check_behaviours(v)

    @field_validator("template")
    @classmethod
    def _relative(cls, v: str) -> str:
        return _check_relative(v, "template")

    @model_validator(mode="after")
    def _pinned(self) -> JudgeSpec:
        if self.revision is None and self.weights_digest is None:
            raise ValueError("a judge must be pinned: give 'revision' or 'weights_digest' (or both)")
        if "safe_completion" in re.compile(self.parse.regex).groupindex and self.behaviours != BEHAVIOURS:
            raise ValueError("parse.regex has a safe_completion group: declare behaviours = "
                             f"{list(BEHAVIOURS)}")
        check_cross_check(self.cross_check)
        return self


CrossCheckSpec = Annotated[RefusalSpec | JudgeSpec, Field(discriminator="kind")]
"""``[scorer.cross_check]``: a second scorer whose disagreement marks a verdict uncertain."""
RefusalSpec.model_rebuild()
JudgeSpec.model_rebuild()


ScorerSpec = Annotated[RefusalSpec | JudgeSpec, Field(discriminator="kind")]
"""The ``[scorer]`` table: which scorer, chosen by ``kind``."""

_SCORER_SPEC: TypeAdapter[RefusalSpec | JudgeSpec] = TypeAdapter(ScorerSpec)


def parse_scorer_spec(data: dict[str, Any]) -> RefusalSpec | JudgeSpec:
    """A ``[scorer]`` table from plain data (raises pydantic's ValidationError)."""
    return _SCORER_SPEC.validate_python(data)


class Bootstrap(Frozen):
    resamples: int = Field(default=2000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)


MetricName = Literal["refusal_rate", "over_refusal_rate", "compliance_rate", "accuracy", "attack_success_rate",
                     "safe_completion_rate", "unsafe_compliance_rate"]


class Compare(Frozen):
    """Per-language differences against a reference language, paired by prompt."""

    reference_language: str
    metrics: tuple[MetricName, ...] = ("refusal_rate",)
    overall: bool = True
    """False: report per language only, never a number pooled over languages."""


class Baseline(Frozen):
    """An expected metric value for one model, with the tolerance a run may differ by.

    ``successes`` and ``n``, when given, are the exact counts the value came from
    (``harness baseline update`` writes them): the expected rate is then exactly
    ``successes / n``, so a run identical to the one the baseline was taken from changes
    nothing, instead of differing from a rounded ``value`` in the fourth decimal.
    """

    model: str
    metric: MetricName
    group: str = "overall"
    value: float = Field(ge=0.0, le=1.0)
    tolerance: float = Field(ge=0.0, le=1.0)
    successes: int | None = Field(default=None, ge=0)
    n: int | None = Field(default=None, ge=1)

    @property
    def expected(self) -> float:
        """The expected rate: exact when the counts are given, else ``value``."""
        if self.successes is not None and self.n is not None:
            return self.successes / self.n
        return self.value

    @model_serializer(mode="wrap")
    def _without_absent_counts(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Baselines written before the counts existed serialize (and so digest) as before."""
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if not (k in ("successes", "n") and v is None)}

    @model_validator(mode="after")
    def _counts(self) -> Baseline:
        if (self.successes is None) != (self.n is None):
            raise ValueError("give both successes and n, or neither")
        if self.successes is not None and self.n is not None:
            if self.successes > self.n:
                raise ValueError("successes cannot exceed n")
            if abs(self.successes / self.n - self.value) > 5e-4:
                raise ValueError(f"value {self.value} is not successes/n = {self.successes}/{self.n}")
        return self

    @field_validator("group")
    @classmethod
    def _group(cls, v: str) -> str:
        if v != "overall" and not re.match(r"^(language|category):[A-Za-z0-9_.-]+$", v):
            raise ValueError("group must be 'overall', 'language:<code>' or 'category:<slug>'")
        return v


class Gate(Frozen):
    """The ``[gate]`` table: what a baseline check that cannot decide does to the run's exit.

    The rule itself is fixed (docs/statistics.md): a baseline FAILs when the run's whole
    interval is worse than ``expected - tolerance`` (for a rate where lower is safer:
    above ``expected + tolerance``), PASSes when the whole interval is no worse than
    that, and is INCONCLUSIVE when the interval straddles it. ``inconclusive = "fail"``
    makes INCONCLUSIVE fail the gate too (for packages large enough to decide); the
    default lets it through, shown as such. A package without the table keeps its seal.
    """

    rule: Literal["non-inferiority"] = "non-inferiority"
    inconclusive: Literal["pass", "fail"] = "pass"

    def describe(self, confidence: float) -> str:
        c = f"{confidence:.0%}"
        return (f"FAIL when the whole {c} interval is worse than expected - tolerance; PASS when it is wholly "
                f"no worse; otherwise INCONCLUSIVE ({'fails' if self.inconclusive == 'fail' else 'does not fail'} "
                "the gate); groups the run did not cover are NOT EVALUATED")


class Reproduction(Frozen):
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


class ReviewRule(Frozen):
    """The ``[review]`` table: whether a run's numbers wait for people before a gate or claim uses them.

    With ``required = true``, ``harness gate`` and ``harness claim check`` answer "awaiting
    review" (exit 8) until every uncertain sample is labelled and the run approved
    (docs/review.md). A package without the table keeps its seal."""

    required: bool = False


class Manifest(Frozen):
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
    scorer: ScorerSpec
    metrics: tuple[MetricName, ...] = Field(min_length=1)
    bootstrap: Bootstrap = Bootstrap()
    compare: Compare | None = None
    baselines: tuple[Baseline, ...] = ()
    reproduction: Reproduction | None = None
    gate: Gate | None = None
    review: ReviewRule | None = None
    """``[review] required = true``: numbers wait for human review before use (docs/review.md)."""

    @property
    def gate_rule(self) -> Gate:
        """The baseline gate's settings: the package's own, or the documented default."""
        return self.gate or Gate()

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
        if self.scorer.behaviours != BEHAVIOURS and (three := [x for x in self.metrics if x in THREE_WAY_METRICS]):
            raise ValueError(f"metrics {three} need [scorer] behaviours = {list(BEHAVIOURS)}")
        for b in self.baselines:
            if b.metric not in self.metrics:
                raise ValueError(f"baseline metric {b.metric!r} is not in metrics {list(self.metrics)}")
        return self

    def canonical(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        for table in ("reproduction", "gate", "review"):  # packages sealed before a table existed keep their digest
            if out.get(table) is None:
                out.pop(table, None)
        drop_absent_scorer_fields(out["scorer"])
        return out


class LockRef(Frozen):
    name: str
    sha256: Sha256


class SealSummary(Frozen):
    """What the data holds, counted when sealing and checked again on every run."""

    samples: int
    languages: tuple[str, ...]
    categories: tuple[str, ...]


class Seal(Frozen):
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
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path} is not valid UTF-8 ({e})", hint="save it as UTF-8") from None
    return parse_manifest_text(text, path)


def parse_manifest_text(text: str, path: Path) -> Manifest:
    """A manifest from its text (``path`` names it in errors): what a change would parse to."""
    try:
        data = tomllib.loads(text)
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
