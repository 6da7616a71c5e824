"""The suite file (TOML, schema version 1): the packages, the models and the gate of a suite.

A release gate usually means several benchmarks on several models; a suite file says
which, once, so the same command gates the same thing in CI and on a laptop. It is a
frozen, versioned pydantic model like the manifest: unknown keys are errors, paths are
relative to the suite file, and an endpoint's API key is only ever named by the
environment variable that holds it (docs/suite-format.md).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_digest, sha256_bytes
from harness.errors import HarnessError
from harness.scoring.metrics import DIRECTIONS

SUITE_SCHEMA_VERSION: Final[Literal[1]] = 1
MAX_SUITE_BYTES = 1024 * 1024
_SLUG = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_ENV_VAR = r"^[A-Za-z_][A-Za-z0-9_]*$"
_FILTER = re.compile(r"^(language|category|expected|id)=.+$")

Slug = Annotated[str, Field(pattern=_SLUG)]


class SuiteFileError(HarnessError):
    """A suite file that cannot be read or is not valid (bad input: exit 2)."""


class PackageSpec(Frozen):
    """``[[packages]]``: a sealed package and the overrides its runs use (all recorded in each run)."""

    name: str = Field(min_length=1)
    """A package name (under ./packages or HARNESS_PACKAGES) or a folder relative to the suite file."""
    mirror: str | None = None
    """A folder mirroring upstream data, relative to the suite file (``--mirror`` is the default)."""
    limit: int | None = Field(default=None, gt=0)
    filter: tuple[str, ...] = ()
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    headline: str | None = None
    """The metric shown per language in the summary (default: the package's first metric)."""
    judge_model: str | None = None
    judge_endpoint: str | None = None

    @field_validator("filter")
    @classmethod
    def _filters(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for term in v:
            if not _FILTER.match(term):
                raise ValueError(f"filter {term!r} is not FIELD=VALUE with FIELD one of language, category, expected, id")
        return v

    @field_validator("headline")
    @classmethod
    def _metric(cls, v: str | None) -> str | None:
        if v is not None and v not in DIRECTIONS:
            raise ValueError(f"unknown metric {v!r} (one of {', '.join(DIRECTIONS)})")
        return v

    @property
    def key(self) -> str:
        """How the summary and the record name this package (the folder's name for a path)."""
        return Path(self.name).name if _is_path(self.name) else self.name


class ModelSpec(Frozen):
    """``[[models]]``: a model and how to reach it. Exactly one way: a local folder run
    in-process (``path``, or nothing for the embedded model), a vLLM server the suite
    launches (``serve = "vllm"``), or an existing OpenAI-compatible ``endpoint``."""

    name: Slug
    path: str | None = None
    serve: Literal["vllm"] | None = None
    engine_args: tuple[str, ...] = ()
    deterministic: bool = False
    endpoint: str | None = None
    endpoints: tuple[str, ...] = ()
    """Several replicas of one served model (one run spread over them, docs/suite-format.md);
    instead of ``endpoint``, which then reads as the first of them."""
    model: str | None = None
    """The served model's name at ``endpoint``."""
    api_key_env: Annotated[str, Field(pattern=_ENV_VAR)] = "OPENAI_API_KEY"
    """The environment variable holding the endpoint's API key (the key itself is never in a file)."""
    concurrency: int = Field(default=16, gt=0, le=1024)
    threads: int = Field(default=1, gt=0, le=1024)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    """In-process models: where they run (``harness run --device``); ``cpu`` keeps the arithmetic
    of every suite written before, ``auto`` is CUDA where a GPU is visible (a Ray GPU worker)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """In-process models: ``auto`` is float32 on CPU, bfloat16 on a GPU that supports it."""
    batch_size: int = Field(default=1, gt=0, le=1024)
    """In-process models: prompts per forward pass (left padded; recorded, since it changes arithmetic)."""

    @model_validator(mode="before")
    @classmethod
    def _replicas(cls, data: Any) -> Any:
        """``endpoints = [...]``: every check of ``endpoint`` applies to each, and ``endpoint``
        is the first (so code that asks "is this a served model?" needs no change)."""
        if not isinstance(data, dict) or "endpoints" not in data:
            return data
        urls = data["endpoints"]
        if "endpoint" in data:
            raise ValueError("give either endpoint (one server) or endpoints (replicas of one), not both")
        if not isinstance(urls, (list, tuple)) or len(urls) < 2 or not all(isinstance(u, str) for u in urls):
            raise ValueError("endpoints must list two or more URLs (for one server, use endpoint)")
        if len(set(urls)) != len(urls):
            raise ValueError("endpoints lists the same URL twice")
        for url in urls:
            if not re.match(r"^https?://", url) or re.match(r"^https?://[^/@]*@", url):
                raise ValueError("each of endpoints must be an http(s) URL without credentials "
                                 "(name the API key's variable in api_key_env)")
        return {**data, "endpoint": urls[0]}

    @model_serializer(mode="wrap")
    def _without_empty_endpoints(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Suites without replicas keep their configuration digest (and their resumable state)."""
        data: dict[str, Any] = handler(self)
        if not self.endpoints:
            data.pop("endpoints", None)
        for name, default in (("device", "cpu"), ("dtype", "auto"), ("batch_size", 1)):
            if data.get(name) == default:  # as for endpoints: older suites keep their digest
                data.pop(name, None)
        return data

    @property
    def all_endpoints(self) -> str | tuple[str, ...] | None:
        """What the backend opens: the replicas, or the one endpoint."""
        return self.endpoints or self.endpoint

    @model_validator(mode="after")
    def _one_way(self) -> ModelSpec:
        if self.endpoint and (self.serve or self.path):
            raise ValueError(f"model {self.name!r}: endpoint cannot be combined with serve or path")
        if (self.endpoint or self.serve) and (self.device, self.dtype, self.batch_size) != ("cpu", "auto", 1):
            raise ValueError(f"model {self.name!r}: device, dtype and batch_size apply to in-process models "
                             "(a served model's GPUs are the server's: engine_args)")
        if self.endpoint and not self.model:
            raise ValueError(f"model {self.name!r}: an endpoint needs 'model', the served model's name")
        if not self.endpoint and self.model:
            raise ValueError(f"model {self.name!r}: 'model' names a served model and needs 'endpoint'")
        if self.endpoint and not re.match(r"^https?://", self.endpoint):
            raise ValueError(f"model {self.name!r}: endpoint must be an http(s) URL")
        if self.endpoint and re.match(r"^https?://[^/@]*@", self.endpoint):
            raise ValueError(f"model {self.name!r}: the endpoint URL holds credentials; name the API key's "
                             "variable in api_key_env instead")
        if (self.engine_args or self.deterministic) and not self.serve:
            raise ValueError(f"model {self.name!r}: engine_args and deterministic apply to serve = \"vllm\" only")
        return self

    @property
    def backend(self) -> Literal["transformers", "openai"]:
        return "openai" if self.endpoint or self.serve else "transformers"

    @property
    def in_process(self) -> bool:
        return self.backend == "transformers"


class Criterion(Frozen):
    """``[[gate.criteria]]``: an acceptance criterion, e.g. refusal_rate >= 0.9 in every language.

    Decided like a baseline, on each run's Clopper-Pearson interval: FAIL when the whole
    interval is on the wrong side of the threshold, PASS when none of it is, else
    INCONCLUSIVE (which fails only with ``inconclusive = "fail"``).
    """

    metric: str
    min: float | None = Field(default=None, ge=0, le=1)
    max: float | None = Field(default=None, ge=0, le=1)
    scope: Literal["overall", "every-language", "every-category"] = "every-language"
    packages: tuple[str, ...] = ()
    """The packages it applies to (default: every package that computes ``metric``)."""
    models: tuple[str, ...] = ()
    """The models it applies to (default: all)."""

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in DIRECTIONS:
            raise ValueError(f"unknown metric {v!r} (one of {', '.join(DIRECTIONS)})")
        return v

    @model_validator(mode="after")
    def _one_bound(self) -> Criterion:
        if (self.min is None) == (self.max is None):
            raise ValueError(f"criterion on {self.metric}: give exactly one of min, max")
        return self

    @property
    def threshold(self) -> float:
        return self.min if self.min is not None else self.max  # type: ignore[return-value]

    @property
    def at_least(self) -> bool:
        return self.min is not None

    def describe(self) -> str:
        where = {"overall": "overall", "every-language": "in every language",
                 "every-category": "in every category"}[self.scope]
        return f"{self.metric} {'>=' if self.at_least else '<='} {self.threshold:g} {where}"


class GateSpec(Frozen):
    """``[gate]``: which packages' baselines must not fail, the acceptance criteria, and
    whether an INCONCLUSIVE verdict fails the suite."""

    baselines: Literal["all", "none"] | tuple[str, ...] = "all"
    inconclusive: Literal["pass", "fail"] = "pass"
    criteria: tuple[Criterion, ...] = ()
    require_review: bool = Field(default=False, exclude=True)
    """Every run waits for human review before the suite's gate decides (docs/review.md); not part
    of the configuration digest: it changes what the gate waits for, not what runs."""

    def requires_baselines_of(self, package: str) -> bool:
        if self.baselines == "all":
            return True
        if self.baselines == "none":
            return False
        return package in self.baselines


class SuiteFile(Frozen):
    """A suite file, schema version 1."""

    schema_version: Literal[1]
    name: Slug
    description: str | None = None
    packages: tuple[PackageSpec, ...] = Field(min_length=1)
    models: tuple[ModelSpec, ...] = Field(min_length=1)
    gate: GateSpec = GateSpec()

    @model_validator(mode="after")
    def _consistent(self) -> SuiteFile:
        for what, names in (("package", [p.key for p in self.packages]), ("model", [m.name for m in self.models])):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{what} {', '.join(twice)} listed twice (run it once; a package with other "
                                 "overrides belongs in another suite)")
        packages = {p.key for p in self.packages}
        models = {m.name for m in self.models}
        if isinstance(self.gate.baselines, tuple) and set(self.gate.baselines) - packages:
            raise ValueError(f"gate.baselines names packages not in the suite: {sorted(set(self.gate.baselines) - packages)}")
        for i, c in enumerate(self.gate.criteria):
            if set(c.packages) - packages:
                raise ValueError(f"gate.criteria[{i}] names packages not in the suite: {sorted(set(c.packages) - packages)}")
            if set(c.models) - models:
                raise ValueError(f"gate.criteria[{i}] names models not in the suite: {sorted(set(c.models) - models)}")
        return self

    def pairs(self) -> list[tuple[PackageSpec, ModelSpec]]:
        """Every package x model pair, packages first (the order runs start in)."""
        return [(p, m) for p in self.packages for m in self.models]

    def config_digest(self) -> str:
        """What makes two suite runs the same suite run: the parsed file (not its comments)."""
        return canonical_digest(self.model_dump(mode="json"))


def _is_path(value: str) -> bool:
    return "/" in value or value.startswith(".")


def _format(err: ValidationError, where: Path) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p.startswith(("tuple[", "literal["))))
        msg = {"extra_forbidden": "unknown field", "missing": "missing required field"}.get(e["type"], e["msg"])
        lines.append(f"  {loc or '(top level)'}: {msg}")
    return f"{where} is not a valid suite file:\n" + "\n".join(dict.fromkeys(lines))


class LoadedSuite(Frozen):
    """A parsed suite file, where it is, and the sha256 of its bytes."""

    file: SuiteFile
    path: Path
    sha256: str

    def resolve(self, value: str) -> Path:
        """A path the suite file gives, relative to the file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.path.parent / p

    def package_ref(self, spec: PackageSpec) -> str | Path:
        """What to hand to the package resolver: a folder relative to the suite file, or a name."""
        return self.resolve(spec.name) if _is_path(spec.name) else spec.name


def parse_suite_text(text: str, path: Path) -> SuiteFile:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SuiteFileError(f"{path} is not valid TOML: {e}", hint="fix the TOML syntax") from None
    try:
        return SuiteFile.model_validate(data)
    except ValidationError as e:
        raise SuiteFileError(_format(e, path), hint="see docs/suite-format.md for every field") from None


def load_suite(path: Path) -> LoadedSuite:
    """Read and validate a suite file (size-limited: a suite file is a few KiB)."""
    try:
        size = path.stat().st_size
        if size > MAX_SUITE_BYTES:
            raise SuiteFileError(f"{path} is {size} bytes, over the {MAX_SUITE_BYTES} byte limit for a suite file",
                                 hint="check that this is the right file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SuiteFileError(f"suite file {path} does not exist",
                             hint="give the path of a suite TOML file, e.g. docs/examples/suite.toml") from None
    except IsADirectoryError:
        raise SuiteFileError(f"{path} is a folder, not a suite file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SuiteFileError(f"{path} is not valid UTF-8 ({e})", hint="save it as UTF-8") from None
    return LoadedSuite(file=parse_suite_text(text, path), path=path, sha256=sha256_bytes(raw))
