"""The signed suite record: one ``harness suite run`` as a whole, listing every run it made.

Each package x model pair of a suite is an ordinary run with its own signed record in
its package's dossier; the suite record adds what no single run can say: which runs
together make the suite's result (each by the sha256 of its ``record.json`` and its
dossier entry), the headline metric of each, and the suite's gate (the baselines it
requires and its acceptance criteria, each decided on the run's interval). It is
canonical JSON (RFC 8785), schema version 1, and is signed like a run record: an
in-toto statement whose one subject is ``suite.json``, in a Sigstore bundle beside it,
``dossiers/_suites/<suite name>/<suite id>/{suite.json, suite.sigstore.json}``.

These models are the format (docs/suite-format.md, "The suite record"); readers such as
``harness verify``, ``harness reproduce`` and the site builder import them from here.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, SerializerFunctionWrapHandler, ValidationError, model_serializer

from harness._internal.files import NotRegularFileError, read_regular
from harness._internal.frozen import Frozen, Sparse
from harness._internal.hashing import canonical_digest, canonical_json
from harness._internal.strictjson import check_strict
from harness.environment import HarnessInfo, PlatformInfo
from harness.errors import RecordError
from harness.record import Overrides, Resume
from harness.scoring.metrics import GateVerdict, MetricValue

SUITE_RECORD_SCHEMA_VERSION: Final[Literal[1]] = 1
SUITE_RECORD_NAME = "suite.json"
SUITE_BUNDLE_NAME = "suite.sigstore.json"
SUITES_FOLDER = "_suites"
"""The folder under the dossiers folder that holds suite records (not a package name:
package names start with a letter or digit)."""
PREDICATE_TYPE_SUITE = "https://github.com/llm-safety-harness/harness/suite-record/v1"
"""The in-toto predicate type of a signed suite record, so it can never pass for a run."""
_MAX_SUITE_RECORD_BYTES = 16 * 1024 * 1024


class SuiteFileRef(Frozen):
    """The suite file as run: its name and the sha256 of its bytes."""

    name: str
    sha256: str
    schema_version: int


class SuiteModel(Frozen):
    """A model of the suite as the suite file declared it (never a key, only the name of
    the variable that held it) and the identity its runs recorded."""

    name: str
    backend: Literal["transformers", "openai"]
    serve: Literal["vllm"] | None = None
    path: str | None = None
    """The local folder (repo-relative for the embedded model), for in-process and served models."""
    endpoint: str | None = None
    served_model: str | None = None
    api_key_env: str | None = None
    engine_args: tuple[str, ...] = ()
    digest: str | None = None
    """The model identity digest its runs recorded (None when no run of it finished)."""


class SuitePackage(Frozen):
    """A package of the suite: its identity and the overrides its runs used."""

    name: str
    version: str
    seal: str
    overrides: Overrides = Field(default_factory=Overrides)
    headline: str
    """The metric the summary shows per language (the suite file's, or the package's first)."""


class SuiteRun(Frozen):
    """One pair's run, by the digest of its signed record and its dossier entry."""

    package: str
    model: str
    run_id: str
    record_sha256: str
    dossier: str
    """The dossier folder's name under the dossiers folder (the package name)."""
    seq: int
    status: Literal["complete", "incomplete"]
    subset: bool
    samples: int
    gate: Literal["PASS", "FAIL"]
    """This pair's part of the suite gate: FAIL when one of its required baselines or criteria fails."""
    headline: tuple[MetricValue, ...] = ()
    """The headline metric overall and per language, as the run recorded it."""


class BaselineOutcome(Frozen):
    """A baseline of a run, as the suite's gate counts it."""

    package: str
    model: str
    metric: str
    group: str
    verdict: GateVerdict
    passed: bool
    required: bool
    """Whether the suite's gate requires this package's baselines (``[gate] baselines``)."""


class CriterionOutcome(Frozen):
    """One acceptance criterion decided for one run and group on the run's interval:
    FAIL when the whole interval is on the wrong side of the threshold, PASS when none of
    it is, INCONCLUSIVE when it straddles the threshold (docs/suite-format.md)."""

    criterion: int
    """The criterion's index in the suite file's ``[[gate.criteria]]`` (from 0)."""
    text: str
    package: str
    model: str
    metric: str
    group: str
    threshold: float
    at_least: bool
    """True for ``min`` (higher is acceptable), False for ``max``."""
    value: float
    ci_low: float
    ci_high: float
    n: int
    verdict: GateVerdict
    passed: bool


class GateWord(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"


class SuiteGate(Frozen):
    """The suite's verdict, and every decision it rests on."""

    verdict: GateWord
    rule: str
    inconclusive: Literal["pass", "fail"]
    baselines: tuple[BaselineOutcome, ...] = ()
    criteria: tuple[CriterionOutcome, ...] = ()
    notes: tuple[str, ...] = ()


class SuiteExecutor(Sparse):
    """Where the pairs generated (absent from records written before executors existed,
    which all ran locally). Names no host or address of the machine that ran it."""

    kind: Literal["local", "ray"]
    ray_version: str | None = None
    """The Ray version of the driver (``kind`` ray)."""


class SuiteRecord(Frozen):
    """suite.json, schema version 1."""

    schema_version: Literal[1] = SUITE_RECORD_SCHEMA_VERSION
    kind: Literal["suite"] = "suite"
    suite_id: str
    name: str
    description: str | None = None
    started_at: str
    finished_at: str
    duration_s: float
    suite_file: SuiteFileRef
    harness: HarnessInfo
    platform: PlatformInfo
    models: tuple[SuiteModel, ...]
    packages: tuple[SuitePackage, ...]
    runs: tuple[SuiteRun, ...]
    gate: SuiteGate
    jobs: int
    resumes: tuple[Resume, ...] = ()
    """One item per resumption of an interrupted suite run (``samples_done`` counts finished pairs)."""
    executor: SuiteExecutor | None = None
    """Which executor ran the pairs; written only when known, so older records read and
    write back byte for byte."""

    @model_serializer(mode="wrap")
    def _without_unknown_executor(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if self.executor is None:
            data.pop("executor", None)
        return data

    def run_of(self, package: str, model: str) -> SuiteRun | None:
        return next((r for r in self.runs if r.package == package and r.model == model), None)

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    def digest(self) -> str:
        return canonical_digest(self.model_dump(mode="json"))

    def predicate(self) -> dict[str, object]:
        """What the signature states beside the subject: the suite's identity and verdict,
        and the record digest of every run (so the statement alone names the runs)."""
        return {"suite_id": self.suite_id, "name": self.name, "gate": str(self.gate.verdict),
                "runs": {f"{r.package}/{r.model}": r.record_sha256 for r in self.runs}}


def suites_root(dossiers: Path) -> Path:
    """Where suite records live under a dossiers folder."""
    return dossiers / SUITES_FOLDER


def parse_suite_record(path: Path) -> SuiteRecord:
    """A suite record from its file; RecordError (exit 1) for anything that is not one."""
    try:
        raw = read_regular(path, limit=_MAX_SUITE_RECORD_BYTES)
    except FileNotFoundError:
        raise RecordError(f"suite record {path} does not exist",
                          hint="give the path of a suite.json (under dossiers/_suites/<suite>/<id>/)") from None
    except NotRegularFileError as e:
        raise RecordError(f"suite record {path} is a {e.kind}, not a regular file") from None
    except OSError as e:
        raise RecordError(f"cannot read suite record {path}: {e.strerror or e}") from None
    try:
        check_strict(raw)
        return SuiteRecord.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise RecordError(f"{path} is not a valid suite record ({e.error_count()} problems; first: {loc}: {first['msg']})",
                          hint="the file was damaged or edited, or comes from an incompatible harness version") from None
    except ValueError as e:
        raise RecordError(f"{path} is not valid JSON: {e}") from None
