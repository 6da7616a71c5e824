"""The vendor's side of a claim check: its signed record, who signed it, and what it shows.

Everything here comes from the party whose claim is being checked, so nothing in it
decides whom to trust:

* the signer must be one the reviewer pinned: ``--vendor-key`` / ``--vendor-identity``
  (``vendor_trusted``), or else the reviewer's own trust policy. A key shipped in the
  claim folder is only shown (with its hint, marked unverified) and compared with the
  signer; it never makes a signature count;
* the signer the claim names must be the one that signed (a claim that names another
  signer is false);
* every signed JSON document is parsed strictly (no duplicate keys, no NaN), and the
  signed predicate must say what ``record.json`` says;
* the vendor's totals are recomputed from its signed outputs (each metric and group,
  k of n) and must be the record's; the outputs must hold exactly the official
  package's samples;
* a run of part of the package (``--limit``, ``--sample-ids``, ``--filter``) or with
  other settings cannot make a claim consistent: it measured something else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness._internal.files import NotRegularFileError, read_regular, sha256_regular
from harness._internal.hashing import sha256_bytes
from harness._internal.strictjson import check_strict
from harness.audit.claim_file import LoadedClaim, SignerSpec
from harness.audit.claim_result import ClaimResult, Step
from harness.dossier.runs import package_status_of, predicate_disagreements
from harness.errors import (
    ClaimError,
    HarnessError,
    RecordError,
    SignatureError,
    UntrustedSignerError,
)
from harness.packages.package import Package
from harness.record import (
    BUNDLE_NAME,
    OUTPUTS_NAME,
    PREDICATE_TYPE_RUN,
    RECORD_NAME,
    RunRecord,
    read_outputs,
)
from harness.scoring.metrics import MetricValue, Scored, in_group, metric_outcome
from harness.signing.identity import IdentityRule
from harness.signing.keys import TrustedKey, load_public_keys
from harness.signing.policy import TrustPolicy
from harness.signing.verify import Trusted, VerifiedStatement, verify_bundle

MAX_VENDOR_FILE_BYTES = 64 << 20
"""Largest record or bundle read from a claim folder (outputs are streamed)."""


@dataclass(frozen=True)
class VendorContext:
    """What the vendor check needs from the claim check."""

    loaded: LoadedClaim
    official: Package | None
    official_seal: str | None
    trusted: Trusted
    vendor_trusted: TrustPolicy | None
    official_ids: frozenset[str] | None = None
    """The official package's sample ids, when they could be read (for the coverage check)."""


def metric_of(metrics: Sequence[MetricValue], name: str, group: str) -> MetricValue | None:
    return next((m for m in metrics if m.metric == name and m.group == group), None)


def fmt(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x == x else "n/a"


def matches_claimed(recorded: float, claimed: float) -> bool:
    """Whether a recorded value, rounded to the claim's precision, is the claimed value.

    Vendors round ("82%", "0.82"); the claim's own number of decimals (at most 6, the
    record's precision) says how much rounding is fair.
    """
    text = repr(float(claimed))
    decimals = 0 if "e" in text else len(text.split(".")[1].rstrip("0")) if "." in text else 0
    decimals = min(decimals, 6)
    return bool(abs(recorded - claimed) <= 0.5 * 10 ** (-decimals) + 1e-9)


def shipped_key(spec: SignerSpec | None, loaded: LoadedClaim) -> tuple[TrustedKey | None, str | None]:
    """The public key file the claim folder ships, read only to be shown (never trusted), or why not."""
    if spec is None or spec.key is None:
        return None, None
    try:
        path = loaded.resolve(spec.key)
        (key,) = load_public_keys([path])
    except HarnessError as e:
        return None, f"the key file {spec.key} the claim ships cannot be read: {e.message}"
    except ValueError as e:  # more than one key in the file
        return None, f"the key file {spec.key} the claim ships cannot be read: {e}"
    return key, None


def signer_mismatch(spec: SignerSpec, statement: VerifiedStatement, bundle: bytes,
                    shipped: TrustedKey | None) -> str | None:
    """Why the verified signer is not the one the claim names, or None."""
    if spec.sigstore is not None:
        try:
            verify_bundle(bundle, TrustPolicy(identities=(spec.sigstore,)))
        except SignatureError as e:
            return f"the claim names {spec.describe()}, but the record was signed by {statement.signer} ({e.message})"
        return None
    hints = {h for h in (spec.key_hint, shipped.hint if shipped else None) if h}
    signed = statement.signer.removeprefix("key:")
    if not statement.signer.startswith("key:") or any(h != signed for h in hints):
        return f"the claim names {spec.describe()}, but the record was signed by {statement.signer}"
    return None


def recount(record: RunRecord, lines: Sequence[dict[str, Any]]) -> list[str]:
    """Each of the record's metrics (k of n per group) recomputed from the outputs lines; the differences."""
    try:
        scored = [Scored(x["id"], x["language"], x["category"], x["expected"], x["verdict"]) for x in lines]
    except (KeyError, TypeError) as e:
        return [f"an outputs line lacks a field metrics need ({e})"]
    out = []
    for m in record.metrics:
        try:
            outcomes = [o for s in scored if in_group(s, m.group) and (o := metric_outcome(m.metric, s)) is not None]
        except HarnessError as e:
            out.append(f"{m.metric}: {e.message}")
            continue
        k, n = sum(outcomes), len(outcomes)
        if (k, n) != (m.successes, m.n):
            out.append(f"{m.metric} ({m.group}): the outputs give {k}/{n}, the record says {m.successes}/{m.n}")
    return out


def check_vendor(ctx: VendorContext, res: ClaimResult) -> RunRecord | None:
    """Steps for the vendor's record; returns the verified record, or None."""
    loaded = ctx.loaded
    claim = loaded.claim
    vr = claim.vendor_record
    if vr is None:
        res.steps.append(Step("vendor-record", "Vendor's signed record", "not applicable",
                              "the claim comes with no signed record: the claimed value is the vendor's word only"))
        res.limitations.append("The vendor supplied no signed run record, so how the vendor obtained the claimed "
                               "value (package, model, settings) could not be checked.")
        return None
    record_path = loaded.resolve(vr.record)  # ClaimError (bad input) if it leads outside the claim folder
    bundle_path = loaded.resolve(vr.bundle) if vr.bundle else loaded.resolve(str(Path(vr.record).with_name(BUNDLE_NAME)))
    outputs_path = loaded.resolve(vr.outputs) if vr.outputs else loaded.resolve(str(Path(vr.record).with_name(OUTPUTS_NAME)))
    skip = "the vendor's record is not authenticated, so its contents were not used"

    def both(outcome: Any, why: str, signer_outcome: Any | None = None, signer_why: str | None = None) -> None:
        res.steps.append(Step("vendor-signature", "Vendor record signature", outcome, why))
        res.steps.append(Step("vendor-signer", "Vendor record signer identity", signer_outcome or outcome,
                              signer_why or why))

    def later(why: str) -> None:
        for sid, title in (("vendor-protocol", "Vendor ran the whole benchmark with its settings"),
                           ("vendor-outputs", "Vendor's totals recomputed from its signed outputs"),
                           ("vendor-seal", "Vendor ran the official package"),
                           ("vendor-model", "Vendor ran the claimed model"),
                           ("vendor-metric", "Vendor's record states the claimed value")):
            res.steps.append(Step(sid, title, "not checked", why))

    try:
        record_bytes = read_regular(record_path, limit=MAX_VENDOR_FILE_BYTES)
        bundle_bytes = read_regular(bundle_path, limit=MAX_VENDOR_FILE_BYTES)
    except (NotRegularFileError, OSError) as e:
        why = f"a file named by the claim cannot be read: {e}"
        both("not checked", why)
        later("the vendor's record could not be read")
        return None

    shipped, shipped_problem = shipped_key(vr.signer, loaded)
    if shipped is not None:
        res.vendor_shipped_key = {"path": vr.signer.key if vr.signer else None, "hint": shipped.hint, "verified": False}
        res.limitations.append(f"The claim folder ships a public key ({shipped.hint}); it was shown, not trusted: "
                               "only a key or identity you pin (--vendor-key, --vendor-identity, your trust policy) "
                               "authenticates the vendor's record.")
    if shipped_problem:
        res.limitations.append(shipped_problem)
    pinned = ctx.vendor_trusted is not None
    policy: Trusted = ctx.vendor_trusted if ctx.vendor_trusted is not None else ctx.trusted
    if not pinned:
        res.limitations.append("You pinned no vendor signer (--vendor-key / --vendor-identity); the vendor's record "
                               "was checked against your own trust policy.")
    try:
        statement = verify_bundle(bundle_bytes, policy)
    except UntrustedSignerError as e:
        if pinned:
            both("not checked", "no key or identity you pinned for the vendor matches the bundle",
                 "failed", f"the record was not signed by the vendor signer you pinned: {e.message}")
        else:
            hint = f" The claim folder's key {shipped.hint} is unverified." if shipped is not None else ""
            wanted = (f"; the claim pins key {vr.signer.key_hint} but no public key with that hint is pinned by you"
                      if vr.signer is not None and vr.signer.key_hint else "")
            both("not checked", f"the record's signer is not one you trust{wanted}: {e.message}.{hint} Pass the "
                 "vendor's key with --vendor-key (or its identity with --vendor-identity) once you have it from a "
                 "channel you trust")
        later(skip)
        return None
    except SignatureError as e:
        both("failed", e.message, "not checked", "the signature is invalid")
        later(skip)
        return None
    except HarnessError as e:  # e.g. a trust root that cannot be loaded
        both("not checked", e.message)
        later(skip)
        return None

    problems = []
    if statement.predicate_type != PREDICATE_TYPE_RUN:
        problems.append(f"the bundle signs a {statement.predicate_type!r} statement, not a harness run record")
    record_sha = sha256_bytes(record_bytes)  # the bytes read once are the bytes hashed and parsed
    if statement.subjects.get(RECORD_NAME) != record_sha:
        problems.append(f"{vr.record} (sha256 {record_sha}) is not the record the bundle signs "
                        f"({statement.subjects.get(RECORD_NAME)}): it was altered after signing")
    record = None
    if not problems:
        try:
            check_strict(record_bytes)  # duplicate keys or NaN: two parsers would read two records
            record = RunRecord.model_validate_json(record_bytes)
        except ValidationError as e:
            problems.append(f"{vr.record} is not a valid run record ({e.error_count()} problems; first: "
                            f"{'.'.join(str(x) for x in e.errors()[0]['loc'])}: {e.errors()[0]['msg']})")
        except ValueError as e:
            problems.append(f"{vr.record} is not strict JSON: {e}")
    if record is not None:
        problems += predicate_disagreements(statement.predicate, record)
    if problems:
        both("failed", "; ".join(problems), "not checked", "the signature does not cover this record as written")
        later(skip)
        return None
    assert record is not None
    res.steps.append(Step("vendor-signature", "Vendor record signature", "passed",
                          f"the bundle's signature is valid and covers {vr.record} (sha256 {record_sha}); "
                          "the signed predicate agrees with the record"))
    mismatch = signer_mismatch(vr.signer, statement, bundle_bytes, shipped) if vr.signer is not None else None
    entry = f" [{statement.policy_entry}]" if statement.policy_entry else ""
    if mismatch is not None:
        res.steps.append(Step("vendor-signer", "Vendor record signer identity", "failed", mismatch))
    else:
        pinned_by = "a vendor signer you pinned" if pinned else "a signer your trust policy accepts"
        named = f", and the signer the claim names ({vr.signer.describe()})" if vr.signer is not None else ""
        res.steps.append(Step("vendor-signer", "Vendor record signer identity", "passed",
                              f"signed by {statement.signer}{entry}, which is {pinned_by}{named}"))
    _check_contents(ctx, record, statement, outputs_path, res)
    return record


def _check_contents(ctx: VendorContext, record: RunRecord, statement: VerifiedStatement, outputs_path: Path,
                    res: ClaimResult) -> None:
    """Protocol, outputs, package, model and value steps of an authenticated vendor record."""
    claim = ctx.loaded.claim
    overrides = record.overrides.model_dump(mode="json")
    if record.is_subset or not record.overrides.is_empty():
        what = "part of the package's samples" if record.is_subset else "other settings than the package's"
        res.steps.append(Step("vendor-protocol", "Vendor ran the whole benchmark with its settings", "failed",
                              f"the vendor's run used {what} (overrides {overrides}): it measured a variant of the "
                              "benchmark, which cannot support a claim about the benchmark", kind="evidence"))
    elif record.status != "complete":
        res.steps.append(Step("vendor-protocol", "Vendor ran the whole benchmark with its settings", "failed",
                              f"the vendor's run is {record.status}: {record.outputs.errors} samples errored",
                              kind="evidence"))
    else:
        res.steps.append(Step("vendor-protocol", "Vendor ran the whole benchmark with its settings", "passed",
                              f"no overrides; {record.outputs.samples} samples, status complete"))
    _check_outputs(ctx, record, statement, outputs_path, res)

    pkg = record.package
    if ctx.official_seal is None:
        res.steps.append(Step("vendor-seal", "Vendor ran the official package", "not checked",
                              "no official sealed copy of the package is available here to compare with"))
    elif pkg.seal == ctx.official_seal and pkg.name == claim.package.name:
        res.steps.append(Step("vendor-seal", "Vendor ran the official package", "passed",
                              f"the record's package {pkg.name} {pkg.version} has the official seal {ctx.official_seal}"))
    else:
        res.steps.append(Step("vendor-seal", "Vendor ran the official package", "failed",
                              f"the record's package {pkg.name} {pkg.version} has seal {pkg.seal}, but the official "
                              f"{claim.package.name} seal is {ctx.official_seal}: the vendor ran a different or altered package"))

    model_name, model_digest = record.model.name, record.model.digest
    if claim.model.digest is not None:
        ok = model_digest == claim.model.digest
        detail = (f"the record's model digest {model_digest} "
                  + ("is the claimed one" if ok else f"is not the claimed {claim.model.digest}"))
    else:
        ok = model_name == claim.model.name
        detail = (f"the record's model is named {model_name!r}"
                  + ("" if ok else f", not {claim.model.name!r}") + " (the claim gives no weights digest)")
    res.steps.append(Step("vendor-model", "Vendor ran the claimed model", "passed" if ok else "failed", detail))

    m = claim.metric
    got = metric_of(record.metrics, m.name, m.group)
    if got is None:
        res.steps.append(Step("vendor-metric", "Vendor's record states the claimed value", "failed",
                              f"the record has no {m.name} for {m.group}"))
    elif matches_claimed(got.value, m.value):
        res.steps.append(Step("vendor-metric", "Vendor's record states the claimed value", "passed",
                              f"the record's {m.name} ({m.group}) is {fmt(got.value)} "
                              f"({got.successes}/{got.n}), which rounds to the claimed {fmt(m.value)}"))
    else:
        res.steps.append(Step("vendor-metric", "Vendor's record states the claimed value", "failed",
                              f"the record's {m.name} ({m.group}) is {fmt(got.value)}, "
                              f"not the claimed {fmt(m.value)}"))
    status = package_status_of(record, ctx.trusted)
    res.vendor_run = {"run_id": record.run_id, "signer": statement.signer, "package": pkg.model_dump(mode="json"),
                      "package_status": str(status),
                      "model": {"name": model_name, "digest": model_digest}, "status": record.status,
                      "overrides": overrides, "subset": record.is_subset, "finished_at": record.finished_at}


def _check_outputs(ctx: VendorContext, record: RunRecord, statement: VerifiedStatement, outputs_path: Path,
                   res: ClaimResult) -> None:
    """The vendor's outputs: the signed file, its samples, and the record's totals recomputed from it."""
    title = "Vendor's totals recomputed from its signed outputs"
    try:
        out_sha = sha256_regular(outputs_path)
    except (NotRegularFileError, OSError) as e:
        res.steps.append(Step("vendor-outputs", title, "not checked",
                              f"the vendor's per-sample outputs cannot be read ({e}), so its totals are unbacked"))
        return
    if not (statement.subjects.get(OUTPUTS_NAME) == out_sha == record.outputs.sha256):
        res.steps.append(Step("vendor-outputs", title, "failed",
                              f"{outputs_path.name} (sha256 {out_sha}) is not the outputs file the record signs"))
        return
    try:
        lines = list(read_outputs(outputs_path))
    except RecordError as e:
        res.steps.append(Step("vendor-outputs", title, "failed", e.message))
        return
    problems = recount(record, lines)
    ids = [x.get("id") for x in lines]
    if len(ids) != len(set(ids)):
        problems.append("a sample id appears more than once in the outputs")
    if ctx.official_ids is not None and record.package.seal == ctx.official_seal and set(ids) != ctx.official_ids:
        problems.append(f"the outputs hold {len(set(ids) & ctx.official_ids)} of the official package's "
                        f"{len(ctx.official_ids)} samples (and {len(set(ids) - ctx.official_ids)} others)")
    if problems:
        res.steps.append(Step("vendor-outputs", title, "failed", "; ".join(problems[:5])))
        return
    res.steps.append(Step("vendor-outputs", title, "passed",
                          f"{outputs_path.name} matches the signed digest; every metric of the record "
                          f"({len(record.metrics)} metric-group values) recomputed from its {len(lines)} samples"))


def vendor_policy(keys: Sequence[Path], identities: Sequence[str]) -> TrustPolicy | None:
    """The vendor signer the reviewer pins on the command line: ``--vendor-key PEM`` files and
    ``--vendor-identity issuer=URL,repository=OWNER/NAME[,ref=..][,workflow=..]`` (or ``san=..``)
    rules, in the trust policy's words; None when neither is given."""
    if not keys and not identities:
        return None
    rules = []
    for spec in identities:
        fields: dict[str, str] = {}
        for part in spec.split(","):
            name, sep, value = part.partition("=")
            if not sep or not name.strip() or name.strip() in fields:
                raise ClaimError(f"--vendor-identity {spec!r}: write KEY=VALUE pairs separated by commas",
                                 hint="e.g. --vendor-identity issuer=https://token.actions.githubusercontent.com,"
                                 "repository=example-corp/evals")
            fields[name.strip()] = value.strip()
        try:
            rules.append(IdentityRule.model_validate(fields))
        except ValidationError as e:
            first = e.errors()[0]
            raise ClaimError(f"--vendor-identity {spec!r}: {'.'.join(str(x) for x in first['loc']) or 'rule'}: "
                             f"{str(first['msg']).removeprefix('Value error, ')}",
                             hint="keys: issuer plus san, or repository (+ ref, workflow); docs/trust-policy.md") from None
    return TrustPolicy.from_keys(load_public_keys(list(keys)), rules)
