"""Signed dossier events other than runs: reproductions, re-scorings, baseline changes, reviews.

A run is not the only fact an auditor needs: that someone re-ran it and got the same
answers, re-scored it with another judge, moved the package's baselines, or reviewed
it before its numbers were used are facts too, and they must be as hard to forge or
drop as the run itself. Each event is one canonical-JSON document, signed like a run
record (an in-toto statement in a Sigstore bundle whose subjects are the document and
any file it brings, e.g. re-scored outputs) and appended to the package's dossier as
an entry of its own kind. The entry's fields are all re-derived from the signed
document when the dossier is verified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from harness._internal.clock import new_id, now
from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_json, sha256_bytes, sha256_file
from harness.errors import RecordError, SignatureError
from harness.signing.keys import load_or_create_key
from harness.signing.sign import sign_statement
from harness.signing.verify import Trusted, verify_bundle

__all__ = ["EventRecord", "new_id", "now", "sign_event", "verify_event_files"]

EVENT_SCHEMA_VERSION = 1
EventKind = Literal["reproduction", "rescore", "baseline", "review"]
EVENT_KINDS: tuple[str, ...] = ("reproduction", "rescore", "baseline", "review")
DOCUMENT_NAMES = {k: f"{k}.json" for k in EVENT_KINDS}
BUNDLE_SUFFIX = ".sigstore.json"
PREDICATE_PREFIX = "https://github.com/llm-safety-harness/harness/"


def predicate_type(kind: str) -> str:
    """One in-toto predicate type per kind, so a review can never pass for a reproduction."""
    return f"{PREDICATE_PREFIX}{kind}-record/v1"


class EventPackage(Frozen):
    name: str
    version: str
    seal: str


class Reference(Frozen):
    """What the event is about: a run record (by its sha256) or a dossier entry (by its line's sha256)."""

    kind: Literal["run", "entry"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    run_id: str | None = None
    seq: int | None = None


class EventFile(Frozen):
    """A file the event brings (re-scored outputs); signed as a subject of the statement."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class EventRecord(Frozen):
    """``<kind>.json``, schema version 1: one signed dossier event.

    ``summary`` is short and is copied into the dossier entry (what `dossier log`
    shows); ``details`` holds everything else, per kind (docs/dossier.md lists them).
    """

    schema_version: Literal[1] = EVENT_SCHEMA_VERSION
    kind: EventKind
    id: str
    time: str
    package: EventPackage
    refers_to: Reference
    summary: dict[str, Any]
    details: dict[str, Any]
    files: tuple[EventFile, ...] = ()

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    @property
    def document_name(self) -> str:
        return DOCUMENT_NAMES[self.kind]


def sign_event(doc: EventRecord, files: Mapping[str, Path], config_dir: Path | None = None) -> tuple[bytes, Path | None]:
    """Sign the document and its files with the local key; (bundle bytes, key path if created now)."""
    declared = {f.name: f.sha256 for f in doc.files}
    actual = {name: sha256_file(path) for name, path in files.items()}
    if declared != actual:
        raise RecordError("the event's declared files do not match the files given", hint="this is a bug in the harness")
    subjects = {doc.document_name: sha256_bytes(doc.to_bytes()), **actual}
    key = load_or_create_key(config_dir)
    predicate = {"id": doc.id, "kind": doc.kind, "package": doc.package.name, "seal": doc.package.seal,
                 "refers_to": doc.refers_to.sha256, "summary": doc.summary}
    bundle = sign_statement(subjects, predicate_type(doc.kind), predicate, key)
    return bundle, (key.path if key.created else None)


@dataclass(frozen=True)
class VerifiedEvent:
    document: EventRecord
    signer: str
    policy_entry: str | None


def parse_event(path: Path) -> EventRecord:
    try:
        return EventRecord.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise RecordError(f"{path} is missing", hint="restore it from a copy of the dossier") from None
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise RecordError(f"{path} is not a valid event document ({loc}: {first['msg']})",
                          hint="the file was damaged or edited") from None


def verify_event_files(document: Path, bundle: Path, files: Sequence[Path], trusted: Trusted) -> VerifiedEvent:
    """Signature, signer, predicate type, and the digest of the document and every file it brings."""
    for p in (document, bundle, *files):
        if not p.is_file():
            raise RecordError(f"{p} is missing", hint="restore it from a copy of the dossier")
    try:
        statement = verify_bundle(bundle.read_bytes(), trusted)
    except SignatureError as e:
        raise type(e)(f"{bundle}: {e.message}", hint=e.hint) from None
    doc = parse_event(document)
    if statement.predicate_type != predicate_type(doc.kind):
        raise SignatureError(f"{bundle}: predicate type {statement.predicate_type!r} does not sign a {doc.kind} record",
                             hint="the bundle signs something else")
    want = {doc.document_name: sha256_file(document), **{p.name: sha256_file(p) for p in files}}
    for name, digest in want.items():
        if statement.subjects.get(name) != digest:
            raise RecordError(f"{document.parent / name}: sha256 {digest} does not match the signed digest "
                              f"{statement.subjects.get(name)}", hint=f"{name} was altered after signing")
    declared = {f.name: f.sha256 for f in doc.files}
    if declared != {p.name: want[p.name] for p in files}:
        raise RecordError(f"{document}: the files it declares differ from the files stored beside it")
    return VerifiedEvent(document=doc, signer=statement.signer, policy_entry=getattr(statement, "policy_entry", None))
