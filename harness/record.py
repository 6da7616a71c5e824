"""The run record and the per-sample outputs file, the two things a run leaves behind.

The record is canonical JSON (RFC 8785) so its digest is a property of its content;
it holds everything needed to say what ran (package seal, data as verified, lock,
harness, platform, model identity, parameters, seeds) and what came out (outputs
digest, metrics, baseline verdicts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from pydantic import Field, SerializerFunctionWrapHandler, ValidationError, model_serializer

from harness._internal.files import NotRegularFileError, read_regular
from harness._internal.frozen import Frozen, Sparse
from harness._internal.hashing import canonical_digest, canonical_json
from harness._internal.strictjson import check_strict, loads_strict
from harness.backends.base import ModelIdentity, ReplicaSet
from harness.environment import HarnessInfo, LockRef, PlatformInfo
from harness.errors import RecordError
from harness.packages.scorer_spec import WithoutAbsent
from harness.scoring.base import ScorerInfo
from harness.scoring.metrics import BaselineVerdict, Comparison, MetricValue

RECORD_SCHEMA_VERSION: Final[Literal[1]] = 1
RECORD_NAME = "record.json"
BUNDLE_NAME = "record.sigstore.json"
OUTPUTS_NAME = "outputs.jsonl"
PREDICATE_TYPE_RUN = "https://github.com/llm-safety-harness/harness/run-record/v1"
"""The in-toto predicate type of a signed run record (the statement's subjects are the
record and its outputs; its predicate is a short summary of the run)."""

# Fields of an outputs line that vary between identical runs; excluded from the
# content digest so "same outputs" means same answers, not same wall-clock.
VOLATILE_OUTPUT_FIELDS = frozenset({"timing", "attempts"})


class PackageRef(Frozen):
    """The package as run: the seal binds everything in it."""

    name: str
    version: str
    seal: str
    manifest_sha256: str
    license: str


class DataRef(Frozen):
    """A data source as verified before use."""

    id: str
    sha256: str
    size: int


class GenerationParams(Frozen):
    """The sampling parameters every request carried (the package's, or overrides)."""

    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]


class SeedPlan(Sparse):
    """Every seed of the run, each derived from ``run`` by one rule (``sample_rule`` states
    it for the per-sample seeds; the others use the same rule with their own purpose).

    ``purposes`` lists every consumer of randomness the run had, each seeded by the same
    rule with that purpose (records before it existed do not have it; theirs were
    python, numpy, torch, order, sample:<id> and the bootstrap's ``bootstrap:<metric>:<group>``).
    """

    run: int
    python: int
    numpy: int
    torch: int
    order: int
    sample_rule: str
    purposes: tuple[str, ...] | None = None


class Overrides(Sparse):
    """The package settings a run changed, and only those (``--seed``, ``--limit``, ...)."""

    seed: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    limit: int | None = None
    sample_ids: str | None = None
    """sha256 of the ``--sample-ids`` file's id list (sorted, one per line), when one was given."""
    filters: tuple[str, ...] | None = None
    """``--filter FIELD=VALUE`` terms, e.g. ``("language=hi",)``."""

    def is_empty(self) -> bool:
        return not self.model_fields_set

    def selects_subset(self) -> bool:
        """Whether these overrides ran only part of the package's samples."""
        return self.limit is not None or self.sample_ids is not None or bool(self.filters)


class Resume(Frozen):
    """A resumption after an interruption: when, and how many samples were already done."""

    at: str
    samples_done: int


class OutputsRef(WithoutAbsent):
    """The per-sample outputs file: its bytes' digest, and the digest of its answers alone.

    ``uncertain`` / ``uncertain_by_language`` count the verdicts the scorer marked
    uncertain (docs/uncertainty.md); absent when the scorer applies no such rule, so
    older records read and write back byte for byte."""

    _optional: ClassVar[frozenset[str]] = frozenset({"uncertain", "uncertain_by_language"})
    path: str
    sha256: str
    content_sha256: str
    samples: int
    errors: int
    unparsed: int = 0
    uncertain: int | None = None
    uncertain_by_language: dict[str, int] | None = None


_SPARSE_SECTIONS = ("replicas",)
"""Record sections added later that are written only when a run has them."""


class RunRecord(Frozen):
    """record.json, schema version 1."""

    schema_version: Literal[1] = RECORD_SCHEMA_VERSION
    kind: Literal["run"] = "run"
    run_id: str
    status: Literal["complete", "incomplete"]
    started_at: str
    finished_at: str
    duration_s: float
    package: PackageRef
    data: list[DataRef]
    lockfile: LockRef
    harness: HarnessInfo
    platform: PlatformInfo
    model: ModelIdentity
    generation: GenerationParams
    seeds: SeedPlan
    overrides: Overrides = Field(default_factory=Overrides)
    scorer: ScorerInfo
    outputs: OutputsRef
    metrics: list[MetricValue]
    comparisons: list[Comparison] = Field(default_factory=list)
    baselines: list[BaselineVerdict]
    previous_entry: str | None = None
    resumes: list[Resume] = Field(default_factory=list)
    """One item per resumption after an interruption."""
    replicas: ReplicaSet | None = None
    """A run over several endpoints: which, the assignment rule, failovers. Written only
    when set, so other records keep their exact bytes."""

    @model_serializer(mode="wrap")
    def _omit_unset_sections(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in _SPARSE_SECTIONS:
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @property
    def is_subset(self) -> bool:
        """Whether the run covered only part of the package (``--limit``, ``--sample-ids``,
        ``--filter``): its numbers describe that subset, never the whole benchmark."""
        return self.overrides.selects_subset()

    def metric(self, metric: str, group: str = "overall") -> MetricValue | None:
        """The value of ``metric`` for ``group``, if the run computed it."""
        return next((m for m in self.metrics if m.metric == metric and m.group == group), None)

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    def digest(self) -> str:
        return canonical_digest(self.model_dump(mode="json"))


def parse_record(path: Path) -> RunRecord:
    try:
        raw = read_regular(path)  # a FIFO or device in a received folder is refused, not waited on
    except FileNotFoundError:
        raise RecordError(f"record {path} does not exist", hint="give the path of a record.json or a dossier entry") from None
    except NotRegularFileError as e:
        raise RecordError(f"record {path} is a {e.kind}, not a regular file", hint="give the path of a record.json") from None
    except OSError as e:
        raise RecordError(f"cannot read record {path}: {e.strerror or e}") from None
    try:
        check_strict(raw)  # duplicate keys or NaN: two parsers could read two different records
        return RunRecord.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise RecordError(
            f"{path} is not a valid run record ({e.error_count()} problems; first: {loc}: {first['msg']})",
            hint="the file may be damaged or from an incompatible harness version",
        ) from None
    except ValueError as e:
        raise RecordError(f"{path} is not valid JSON: {e}") from None


def output_line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def content_digest(lines: Iterable[dict[str, Any]]) -> str:
    """Digest of the answers alone, in id order, so it is independent of timing and order.

    It is the sha256 of the RFC 8785 form of the list of lines without their volatile
    fields; that form is ``[`` + the lines' own canonical forms joined by ``,`` + ``]``,
    so it is hashed line by line instead of building a copy of every line and one
    string of them all (hundreds of MB at 100,000 samples).
    """
    ordered = sorted(lines, key=lambda d: d["id"])
    h = hashlib.sha256(b"[")
    for start in range(0, len(ordered), _DIGEST_CHUNK):  # chunks: C-speed encoding, bounded copies
        chunk = canonical_json([{k: v for k, v in line.items() if k not in VOLATILE_OUTPUT_FIELDS}
                                for line in ordered[start: start + _DIGEST_CHUNK]])
        if start:
            h.update(b",")
        h.update(chunk[1:-1])
    h.update(b"]")
    return h.hexdigest()


_DIGEST_CHUNK = 1024


def parse_output_line(path: Path, n: int, raw: bytes) -> dict[str, Any] | None:
    """Line ``n`` of an outputs file as an object, None if blank; a damaged line is a RecordError."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{path} line {n} is not valid UTF-8", hint="the outputs file is damaged") from None
    if not line.strip():
        return None
    try:
        obj = loads_strict(line)
    except ValueError as e:
        raise RecordError(f"{path} line {n} is not valid JSON: {e}", hint="the outputs file is damaged") from None
    if not isinstance(obj, dict):
        raise RecordError(f"{path} line {n} is not a JSON object", hint="the outputs file is damaged")
    return obj


def read_outputs(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            obj = parse_output_line(path, n, raw)
            if obj is not None:
                yield obj
