"""Signing and verifying dossier events (reproductions, re-scorings, baseline changes, reviews).

Each event document (:mod:`harness.dossier.documents`) is signed like a run record:
an in-toto statement in a Sigstore bundle whose subjects are the document and any file
it brings (e.g. re-scored outputs), with one predicate type per kind, so a review can
never pass for a reproduction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from harness._internal.hashing import sha256_bytes, sha256_file
from harness.dossier.documents import EventRecord, parse_event_bytes
from harness.errors import RecordError
from harness.signing.signers import Signed, Signer
from harness.signing.verify import AttestationWords, Trusted, verify_attestation

PREDICATE_PREFIX = "https://github.com/llm-safety-harness/harness/"


def predicate_type(kind: str) -> str:
    """One in-toto predicate type per kind, so a review can never pass for a reproduction."""
    return f"{PREDICATE_PREFIX}{kind}-record/v1"


def sign_event(doc: EventRecord, files: Mapping[str, Path], signer: Signer) -> Signed:
    """Sign the document and the files it brings (their digests must be the ones it declares)."""
    declared = {f.name: f.sha256 for f in doc.files}
    actual = {name: sha256_file(path) for name, path in files.items()}
    if declared != actual:
        raise RecordError("the event's declared files do not match the files given", hint="this is a bug in the harness")
    subjects = {doc.document_name: sha256_bytes(doc.to_bytes()), **actual}
    predicate = {"id": doc.id, "kind": doc.kind, "package": doc.package.name, "seal": doc.package.seal,
                 "refers_to": doc.refers_to.sha256, "summary": doc.summary.model_dump(mode="json")}
    return signer.sign(subjects, predicate_type(doc.kind), predicate)


@dataclass(frozen=True)
class VerifiedEvent:
    document: EventRecord
    signer: str
    policy_entry: str | None


def parse_event(path: Path) -> EventRecord:
    try:
        return parse_event_bytes(path.read_bytes())
    except FileNotFoundError:
        raise RecordError(f"{path} is missing", hint="restore it from a copy of the dossier") from None
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise RecordError(f"{path} is not a valid event document ({loc}: {first['msg']})",
                          hint="the file was damaged or edited") from None


def verify_event_files(document: Path, bundle: Path, files: Sequence[Path], trusted: Trusted) -> VerifiedEvent:
    """Signature, signer, predicate type, and the digest of the document and every file it brings."""
    doc = parse_event(document)  # its kind names the predicate type; a missing document reads as before
    statement = verify_attestation(bundle, trusted, predicate_type(doc.kind),
                                   {doc.document_name: document, **{p.name: p for p in files}},
                                   words=AttestationWords(wrong_predicate=f"does not sign a {doc.kind} record"))
    declared = {f.name: f.sha256 for f in doc.files}
    if declared != {p.name: statement.subjects[p.name] for p in files}:
        raise RecordError(f"{document}: the files it declares differ from the files stored beside it")
    return VerifiedEvent(document=doc, signer=statement.signer, policy_entry=statement.policy_entry)
