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
from typing import Any, Literal

from pydantic import Field, ValidationError

from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_digest, canonical_json
from harness.errors import RecordError

RECORD_SCHEMA_VERSION = 1
RECORD_NAME = "record.json"
BUNDLE_NAME = "record.sigstore.json"
OUTPUTS_NAME = "outputs.jsonl"

# Fields of an outputs line that vary between identical runs; excluded from the
# content digest so "same outputs" means same answers, not same wall-clock.
VOLATILE_OUTPUT_FIELDS = frozenset({"timing", "attempts"})


class PackageRef(Frozen):
    name: str
    version: str
    seal: str
    manifest_sha256: str
    license: str


class DataRef(Frozen):
    id: str
    sha256: str
    size: int


class LockRef(Frozen):
    lockfile: str
    sha256: str
    matches: bool
    checked: int
    mismatch_count: int
    mismatches: list[dict[str, Any]]


class OutputsRef(Frozen):
    path: str
    sha256: str
    content_sha256: str
    samples: int
    errors: int
    unparsed: int = 0


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
    harness: dict[str, Any]
    platform: dict[str, Any]
    model: dict[str, Any]
    generation: dict[str, Any]
    seeds: dict[str, Any]
    overrides: dict[str, Any] = Field(default_factory=dict)
    scorer: dict[str, Any]
    outputs: OutputsRef
    metrics: list[dict[str, Any]]
    comparisons: list[dict[str, Any]] = Field(default_factory=list)
    baselines: list[dict[str, Any]]
    previous_entry: str | None = None
    resumes: list[dict[str, Any]] = Field(default_factory=list)
    """One item per resumption after an interruption: when, and how many samples were already done."""

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    def digest(self) -> str:
        return canonical_digest(self.model_dump(mode="json"))


def parse_record(path: Path) -> RunRecord:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(f"record {path} does not exist", hint="give the path of a record.json or a dossier entry") from None
    try:
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
        obj = json.loads(line)
    except json.JSONDecodeError as e:
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
