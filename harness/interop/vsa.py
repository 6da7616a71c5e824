"""Export a reproduction verdict as a SLSA Verification Summary Attestation (VSA v1).

``harness reproduce`` leaves a signed ``reproduction`` entry in the dossier. Its VSA
(``https://slsa.dev/verification_summary/v1``) says, in the supply chain's own words,
that the harness (the verifier) checked the original run (the resource, bound by the
subjects: its ``record.json`` and ``outputs.jsonl``) against the package's reproduction
rule (the policy, bound by the digest of the tolerance rule as applied) and that it
PASSED (reproduced, exactly or within tolerance) or FAILED (not reproduced). The input
attestations are the bundles of the original run, the re-run and the reproduction event,
each by digest.

Nothing is exported before the reproduction event, the original run and the re-run all
verify under the verifier's trust store or policy. Mapping: docs/interop.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import ConfigDict, Field

from harness._internal.files import sha256_regular
from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_digest
from harness.dossier.documents import ReproductionRecord, ReproductionVerdict
from harness.dossier.events import verify_event_files
from harness.dossier.log import Dossier, EventEntry
from harness.dossier.refs import dossier_named, entry_file, split_ref
from harness.errors import HarnessError, RecordError
from harness.interop.common import HARNESS_NAME, HARNESS_URI, VerifiedRun, load_verified
from harness.record import OUTPUTS_NAME, RECORD_NAME
from harness.signing.policy import resolve_trust
from harness.signing.signers import KeySigner, Signed, Signer
from harness.signing.verify import AttestationWords, Trusted, VerifiedStatement, verify_attestation

PREDICATE_TYPE_VSA: Final = "https://slsa.dev/verification_summary/v1"
REPRODUCTION_POLICY_URI: Final = f"{HARNESS_URI}/reproduction-policy/v1"
LEVEL_OF: Final = {
    ReproductionVerdict.EXACT: "LLM_SAFETY_HARNESS_REPRODUCED_EXACT",
    ReproductionVerdict.WITHIN_TOLERANCE: "LLM_SAFETY_HARNESS_REPRODUCED_WITHIN_TOLERANCE",
}
"""Custom verified levels (SLSA reserves the ``SLSA_`` prefix); a failed reproduction reads ``FAILED``."""


class _Camel(Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class VsaVerifier(_Camel):
    id: str
    version: dict[str, str]


class ResourceDescriptor(_Camel):
    uri: str
    digest: dict[str, str]


class VsaPredicate(_Camel):
    """The VSA v1 predicate as the harness writes it."""

    verifier: VsaVerifier
    time_verified: str = Field(alias="timeVerified")
    resource_uri: str = Field(alias="resourceUri")
    policy: ResourceDescriptor
    input_attestations: tuple[ResourceDescriptor, ...] = Field(alias="inputAttestations")
    verification_result: Literal["PASSED", "FAILED"] = Field(alias="verificationResult")
    verified_levels: tuple[str, ...] = Field(alias="verifiedLevels")
    slsa_version: str = Field(alias="slsaVersion")


def resource_uri(package: str, run_id: str) -> str:
    """The run a VSA is about, as a URI: ``urn:llm-safety-harness:run:<package>:<run_id>``."""
    return f"urn:{HARNESS_NAME}:run:{package}:{run_id}"


def _reproduction_entry(ref: str, dossiers_dir: Path | None) -> tuple[Dossier, EventEntry]:
    dossier = dossier_named(ref, dossiers_dir)
    which = split_ref(ref)[1]
    entry = dossier.resolve_any(which) if which not in ("latest", "last", "") else next(
        (e for e in reversed(dossier.entries()) if e.kind == "reproduction"), None)
    if not isinstance(entry, EventEntry) or entry.kind != "reproduction":
        what = "no reproduction entry" if entry is None else f"entry {entry.seq}, a {entry.kind}"
        raise HarnessError(f"{ref!r} names {what}; a VSA summarises a reproduction",
                           hint=f"run `harness reproduce {split_ref(ref)[0]}@N` first, then export the "
                                f"reproduction entry (`harness dossier log {split_ref(ref)[0]}` lists them)")
    return dossier, entry


def build_vsa(ref: str, trusted: Trusted | None = None, *,
              dossiers_dir: Path | None = None) -> tuple[VerifiedRun, VsaPredicate]:
    """The VSA of reproduction entry ``ref`` (``PACKAGE@N``; ``PACKAGE`` alone: its latest
    reproduction), after verifying the event, the original run and the re-run."""
    trust = resolve_trust() if trusted is None else trusted
    dossier, entry = _reproduction_entry(ref, dossiers_dir)
    root = dossier.root
    event = verify_event_files(entry_file(root, entry.document.path), entry_file(root, entry.bundle.path),
                               [entry_file(root, f.path) for f in entry.files], trust)
    doc = event.document
    if not isinstance(doc, ReproductionRecord) or doc.id != entry.id or doc.summary != entry.summary:
        raise RecordError(f"entry {entry.seq} of {root.name} does not match its signed reproduction document",
                          hint="run `harness dossier verify` on this dossier; do not trust it")
    name = doc.package.name
    original = load_verified(f"{name}@{doc.details.original.seq}", trust, dossiers_dir=dossiers_dir)
    rerun = load_verified(f"{name}@{doc.details.rerun.seq}", trust, dossiers_dir=dossiers_dir)
    for run, want, what in ((original, doc.details.original.record_sha256, "original run"),
                            (rerun, doc.details.rerun.record_sha256, "re-run")):
        if run.subjects[RECORD_NAME] != want:
            raise RecordError(f"the {what} at entry {run.record.run_id} is not the record the reproduction names",
                              hint="the dossier was altered; run `harness dossier verify`")
    inputs = [ResourceDescriptor(uri=str(p.relative_to(root.resolve())) if p.is_relative_to(root.resolve())
                                 else p.name, digest={"sha256": sha256_regular(p)})
              for p in (original.bundle_path.resolve(), rerun.bundle_path.resolve(),
                        entry_file(root, entry.bundle.path))]
    passed = doc.summary.verdict is not ReproductionVerdict.NOT_REPRODUCED
    predicate = VsaPredicate(
        verifier=VsaVerifier(id=HARNESS_URI, version={HARNESS_NAME: rerun.record.harness.version}),
        time_verified=doc.time,
        resource_uri=resource_uri(name, original.record.run_id),
        policy=ResourceDescriptor(uri=REPRODUCTION_POLICY_URI,
                                  digest={"sha256": canonical_digest(doc.details.tolerance.model_dump(mode="json"))}),
        input_attestations=tuple(inputs),
        verification_result="PASSED" if passed else "FAILED",
        verified_levels=(LEVEL_OF[doc.summary.verdict],) if passed else ("FAILED",),
        slsa_version="1.0",
    )
    return original, predicate


def sign_vsa(ref: str, trusted: Trusted | None = None, signer: Signer | None = None, *,
             dossiers_dir: Path | None = None) -> tuple[VerifiedRun, Signed]:
    """Sign the VSA of reproduction ``ref`` over the original run's record and outputs."""
    original, predicate = build_vsa(ref, trusted, dossiers_dir=dossiers_dir)
    signed = (signer or KeySigner()).sign(original.subjects, PREDICATE_TYPE_VSA,
                                          predicate.model_dump(mode="json", by_alias=True))
    return original, signed


def verify_vsa(bundle: Path, trusted: Trusted, record: Path, outputs: Path) -> VerifiedStatement:
    """Verify an exported VSA bundle: signer, predicate type, and the original run files' digests."""
    statement = verify_attestation(
        bundle, trusted, PREDICATE_TYPE_VSA, {RECORD_NAME: record, OUTPUTS_NAME: outputs},
        words=AttestationWords(wrong_predicate="is not a SLSA verification summary"))
    VsaPredicate.model_validate(statement.predicate)
    return statement
