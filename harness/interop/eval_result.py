"""Export a verified run as an in-toto eval-result attestation, signed into a Sigstore bundle.

The predicate is the one proposed in in-toto/attestation PR #575
(``https://in-toto.io/attestation/eval-result/v0.1``): threshold claims
``{metric, comparator, threshold, passed}`` with the suite, sample size, and
commitments to the model and dataset. The statement's subjects are the run's own
``record.json`` and ``outputs.jsonl`` (the same digests our run bundle signs), so a
consumer can match the attestation to the files by digest alone. It is signed with the
harness's signers exactly like a run record (DSSE in a Sigstore bundle v0.3), beside,
never instead of, our own run predicate.

Claims come from the package's baselines as the run decided them (docs/statistics.md):
``higher_is_safer`` becomes ``>= expected - tolerance``, ``lower_is_safer`` becomes
``<= expected + tolerance``, and ``passed`` is true only when the whole Clopper-Pearson
interval satisfies it (the gate's PASS); an INCONCLUSIVE verdict is ``passed: false``
with the gate's word and the interval in the ``harnessRun`` extension block, which
generic consumers ignore (the spec's forward-compatibility rule). Field-by-field mapping:
docs/interop.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import ConfigDict, Field

from harness._internal.frozen import Frozen
from harness.errors import HarnessError
from harness.interop.common import HARNESS_NAME, HARNESS_URI, VerifiedRun, metric_label
from harness.record import OUTPUTS_NAME, RECORD_NAME
from harness.signing.signers import KeySigner, Signed, Signer
from harness.signing.verify import AttestationWords, Trusted, VerifiedStatement, verify_attestation

PREDICATE_TYPE_EVAL_RESULT: Final = "https://in-toto.io/attestation/eval-result/v0.1"
MODEL_COMMITMENT_ALG: Final = "llm-safety-harness/model-digest-v1"
"""The model commitment is the record's ``model.digest`` (sha256 over the loaded files' digests), unsalted."""
DATASET_COMMITMENT_ALG: Final = "llm-safety-harness/package-seal-v1"
"""The dataset commitment is the package seal (it binds the manifest and every data file's sha256), unsalted."""


class _Camel(Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class VerifierId(_Camel):
    id: str


class Suite(_Camel):
    name: str
    version: str


class Claim(_Camel):
    metric: str
    comparator: Literal[">=", ">", "<=", "<"]
    threshold: str
    """A decimal string, never a float (the spec's rule)."""
    passed: bool


class Commitment(_Camel):
    alg: str
    value: str
    salted: bool


class Commitments(_Camel):
    model: Commitment
    dataset: Commitment


class HarnessIdentity(_Camel):
    name: str
    version: str


class ObservedClaim(_Camel):
    """Extension: what decided a claim (the observed value and its interval)."""

    metric: str
    group: str
    observed: float | None
    ci_low: float | None = Field(alias="ciLow")
    ci_high: float | None = Field(alias="ciHigh")
    ci_method: str = Field(alias="ciMethod")
    n: int | None
    gate_verdict: str = Field(alias="gateVerdict")


class HarnessRun(_Camel):
    """Extension block (``harnessRun``): the run behind the claims, for consumers that know it."""

    run_id: str = Field(alias="runId")
    record_sha256: str = Field(alias="recordSha256")
    package_seal: str = Field(alias="packageSeal")
    model_digest: str = Field(alias="modelDigest")
    signer: str
    subset: bool
    observed: tuple[ObservedClaim, ...]


class EvalResultPredicate(_Camel):
    """The eval-result v0.1 predicate as the harness writes it (schema: the PR's spec text)."""

    verifier: VerifierId
    evaluated_at: str = Field(alias="evaluatedAt")
    suite: Suite
    claims: tuple[Claim, ...] = Field(min_length=1)
    sample_size: int = Field(alias="sampleSize")
    commitments: Commitments
    assurance_level: Literal["self_attested", "third_party", "reproduced", "enclave_attested"] = Field(
        alias="assuranceLevel")
    subject_profile: Literal["receipt", "public-model", "release-gate"] = Field(alias="subjectProfile")
    harness: HarnessIdentity
    harness_run: HarnessRun = Field(alias="harnessRun")


def _decimal(x: float) -> str:
    """A threshold as a short decimal string (``0.833``, never ``0.8330000000000001``)."""
    text = f"{round(x, 6):.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def build_predicate(run: VerifiedRun) -> EvalResultPredicate:
    """The eval-result predicate of a verified run; refused when the package states no baseline to claim."""
    rec = run.record
    claims: list[Claim] = []
    observed: list[ObservedClaim] = []
    for b in rec.baselines:
        if b.verdict == "NOT EVALUATED" or b.observed is None:
            continue  # the run has no samples in this group: no claim is made
        higher = (b.direction or "higher_is_safer") == "higher_is_safer"
        edge = b.expected - b.tolerance if higher else b.expected + b.tolerance
        claims.append(Claim(metric=metric_label(b.metric, b.group), comparator=">=" if higher else "<=",
                            threshold=_decimal(edge), passed=b.word == "PASS"))
        metric = rec.metric(b.metric, b.group)
        observed.append(ObservedClaim(
            metric=b.metric, group=b.group, observed=b.observed, ci_low=b.ci_low, ci_high=b.ci_high,
            ci_method=(metric.ci_method if metric and metric.ci_method else "clopper-pearson"), n=b.n,
            gate_verdict=b.word))
    if not claims:
        raise HarnessError(
            f"run {rec.run_id} has no evaluated baseline, so there is no claim to attest",
            hint=f"the eval-result predicate needs at least one threshold claim: state baselines for "
                 f"model {rec.model.name!r} in the package (docs/package-format.md), or export "
                 f"--format every-eval-ever / csv for the numbers alone")
    return EvalResultPredicate(
        verifier=VerifierId(id=HARNESS_URI),
        evaluated_at=rec.finished_at,
        suite=Suite(name=rec.package.name, version=rec.package.version),
        claims=tuple(claims),
        sample_size=rec.outputs.samples,
        commitments=Commitments(
            model=Commitment(alg=MODEL_COMMITMENT_ALG, value=rec.model.digest, salted=False),
            dataset=Commitment(alg=DATASET_COMMITMENT_ALG, value=rec.package.seal, salted=False)),
        assurance_level="self_attested",
        subject_profile="receipt",
        harness=HarnessIdentity(name=HARNESS_NAME, version=rec.harness.version),
        harness_run=HarnessRun(
            run_id=rec.run_id, record_sha256=run.subjects[RECORD_NAME], package_seal=rec.package.seal,
            model_digest=rec.model.digest, signer=run.verified.signer, subset=rec.is_subset,
            observed=tuple(observed)),
    )


def sign_eval_result(run: VerifiedRun, signer: Signer | None = None) -> Signed:
    """Sign the eval-result statement over the run's record and outputs (default: the local key)."""
    predicate = build_predicate(run).model_dump(mode="json", by_alias=True)
    return (signer or KeySigner()).sign(run.subjects, PREDICATE_TYPE_EVAL_RESULT, predicate)


def verify_eval_result(bundle: Path, trusted: Trusted, record: Path, outputs: Path) -> VerifiedStatement:
    """Verify an exported eval-result bundle: signer, predicate type, and the run files' digests."""
    statement = verify_attestation(
        bundle, trusted, PREDICATE_TYPE_EVAL_RESULT, {RECORD_NAME: record, OUTPUTS_NAME: outputs},
        words=AttestationWords(wrong_predicate="is not an eval-result attestation"))
    EvalResultPredicate.model_validate(statement.predicate)
    return statement
