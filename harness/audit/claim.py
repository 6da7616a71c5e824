"""Procurement claim checks: is a vendor's published safety number backed by evidence?

A vendor claim file (TOML, ``schema_version = 1``, see ``docs/claims.md``) says "model M
scores V on metric X of benchmark package P". Checking it means answering, separately,
every question a procurement reviewer would ask, and recording each answer as a step:

* is the package the vendor names the official one (our sealed copy, intact)?
* if the vendor sent its signed run record: is the signature valid, is the signer the
  identity the claim names, did it run the official package (same seal), the claimed
  model, and does the record's metric say what the claim says?
* does our own run of that package on that model (a verified dossier entry, or a new
  run) agree with the claimed value, given sampling noise?

The last question is statistical: every metric of a package is a proportion of n
samples, so our count k is tested against the claimed rate with an exact two-sided
binomial test. ``p`` is the probability, if the claim were true, of a result at least
as unlikely as ours. Below :data:`ALPHA` the claim is inconsistent with our run.

The verdict is one of three, so a reviewer never mistakes "we could not tell" for "fine":

* ``inconsistent``: some step shows a statement of the claim to be false;
* ``unverifiable``: nothing is shown false, but some step could not be completed
  (no run of ours, a broken dossier, a missing file, a metric the package lacks);
* ``consistent``: every step that applies passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._internal.clock import now_seconds
from harness._internal.hashing import sha256_file
from harness._internal.version import __version__
from harness.audit.claim_file import (
    Claim,
    LoadedClaim,
    PackageRef,
    SignerSpec,
)
from harness.audit.claim_result import ALPHA, CONFIDENCE, ClaimResult, Comparison, GroupRow, Step
from harness.dossier.log import Dossier, Entry, EventEntry
from harness.dossier.verify import verify_dossier
from harness.errors import (
    HarnessError,
    RecordError,
    SignatureError,
    UntrustedSignerError,
)
from harness.packages.package import Package, resolve_package
from harness.packages.seal import check_package
from harness.record import (
    BUNDLE_NAME,
    OUTPUTS_NAME,
    PREDICATE_TYPE_RUN,
    RECORD_NAME,
    RunRecord,
    parse_record,
)
from harness.run import RunOptions, run_package
from harness.scoring.metrics import MetricValue
from harness.scoring.stats import binomial_test, clopper_pearson
from harness.signing.keys import default_trust_store, load_public_keys
from harness.signing.policy import TrustPolicy
from harness.signing.verify import Trusted, verify_bundle

# --------------------------------------------------------------------------- statistics


def matches_claimed(recorded: float, claimed: float) -> bool:
    """Whether a recorded value, rounded to the claim's precision, is the claimed value.

    Vendors round ("82%", "0.82"); the claim's own number of decimals (at most 6, the
    record's precision) says how much rounding is fair.
    """
    text = repr(float(claimed))
    decimals = 0 if "e" in text else len(text.split(".")[1].rstrip("0")) if "." in text else 0
    decimals = min(decimals, 6)
    return bool(abs(recorded - claimed) <= 0.5 * 10 ** (-decimals) + 1e-9)


# --------------------------------------------------------------------------- checking


@dataclass
class CheckOptions:
    """How to check: whose signatures to accept for our runs, where to look, whether to run."""

    trusted: Trusted
    dossiers_dir: Path | None = None
    packages_dir: Path | None = None
    run: bool = False
    run_options: dict[str, Any] = field(default_factory=dict)
    """Extra :class:`harness.run.RunOptions` fields for ``--run`` (model, endpoint, limit, ...)."""


def _metric_of(metrics: Sequence[MetricValue], name: str, group: str) -> MetricValue | None:
    return next((m for m in metrics if m.metric == name and m.group == group), None)


def _fmt(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x == x else "n/a"


def _policy_for(signer: SignerSpec, loaded: LoadedClaim, trusted: Trusted) -> tuple[TrustPolicy | None, str | None]:
    """A trust policy accepting exactly the claim's signer, or (None, why not)."""
    if signer.sigstore is not None:
        return TrustPolicy(identities=(signer.sigstore,)), None
    if signer.key is not None:
        path = loaded.resolve(signer.key)
        try:
            (key,) = load_public_keys([path])
        except SignatureError as e:
            return None, f"cannot read the signer key {signer.key}: {e.message}"
        except ValueError as e:  # more than one key in the file
            return None, f"cannot read the signer key {signer.key}: {e}"
        if signer.key_hint is not None and key.hint != signer.key_hint:
            return None, (f"{signer.key} holds key {key.hint}, but the claim pins {signer.key_hint}: "
                          "the key file is not the one the claim names")
        return TrustPolicy.from_keys([key]), None
    pool = list(trusted.trusted_keys if isinstance(trusted, TrustPolicy) else trusted)
    try:
        pool += default_trust_store()
    except SignatureError:
        pass
    found = [k for k in pool if k.hint == signer.key_hint]
    if not found:
        return None, (f"the claim pins key {signer.key_hint} but no public key with that hint is available "
                      "(give 'key = \"<file>.pem\"' in the claim, or pass --trust-key)")
    return TrustPolicy.from_keys(found[:1]), None


def _check_vendor(loaded: LoadedClaim, official_seal: str | None, trusted: Trusted, res: ClaimResult) -> RunRecord | None:
    """Steps for the vendor's record; returns the verified record, or None."""


    claim = loaded.claim
    vr = claim.vendor_record
    if vr is None:
        res.steps.append(Step("vendor-record", "Vendor's signed record", "not applicable",
                              "the claim comes with no signed record: the claimed value is the vendor's word only"))
        res.limitations.append("The vendor supplied no signed run record, so how the vendor obtained the claimed "
                               "value (package, model, settings) could not be checked.")
        return None
    record_path = loaded.resolve(vr.record)
    bundle_path = loaded.resolve(vr.bundle) if vr.bundle else record_path.with_name(BUNDLE_NAME)
    outputs_path = loaded.resolve(vr.outputs) if vr.outputs else record_path.with_name(OUTPUTS_NAME)
    skip = "the vendor's record is not authenticated, so its contents were not used"

    def later(why: str) -> None:
        res.steps.append(Step("vendor-seal", "Vendor ran the official package", "not checked", why))
        res.steps.append(Step("vendor-model", "Vendor ran the claimed model", "not checked", why))
        res.steps.append(Step("vendor-metric", "Vendor's record states the claimed value", "not checked", why))

    missing = [str(p) for p in (record_path, bundle_path) if not p.is_file()]
    if missing:
        why = f"file(s) named by the claim are missing: {', '.join(missing)}"
        res.steps.append(Step("vendor-signature", "Vendor record signature", "not checked", why))
        res.steps.append(Step("vendor-signer", "Vendor record signer identity", "not checked", why))
        later("the vendor's record could not be read")
        return None

    policy: Trusted | None
    if vr.signer is not None:
        policy, why_not = _policy_for(vr.signer, loaded, trusted)
        expected = vr.signer.describe()
    else:
        policy, why_not = trusted, None
        expected = "a signer your trust policy accepts (the claim names none)"
        res.limitations.append("The claim does not name who should have signed the vendor's record; it was checked "
                               "against your own trust policy instead.")
    if policy is None:
        res.steps.append(Step("vendor-signature", "Vendor record signature", "not checked", str(why_not)))
        res.steps.append(Step("vendor-signer", "Vendor record signer identity", "not checked", str(why_not)))
        later(skip)
        return None
    try:
        statement = verify_bundle(bundle_path.read_bytes(), policy)
    except UntrustedSignerError as e:
        res.steps.append(Step("vendor-signature", "Vendor record signature", "not checked",
                              "no key of the expected signer matches the bundle, so the signature could not be checked"))
        res.steps.append(Step("vendor-signer", "Vendor record signer identity", "failed",
                              f"the record was not signed by {expected}: {e.message}"))
        later(skip)
        return None
    except SignatureError as e:
        res.steps.append(Step("vendor-signature", "Vendor record signature", "failed", e.message))
        res.steps.append(Step("vendor-signer", "Vendor record signer identity", "not checked", "the signature is invalid"))
        later(skip)
        return None
    except HarnessError as e:  # e.g. a trust root that cannot be loaded
        res.steps.append(Step("vendor-signature", "Vendor record signature", "not checked", e.message))
        res.steps.append(Step("vendor-signer", "Vendor record signer identity", "not checked", e.message))
        later(skip)
        return None
    problems = []
    if statement.predicate_type != PREDICATE_TYPE_RUN:
        problems.append(f"the bundle signs a {statement.predicate_type!r} statement, not a harness run record")
    record_sha = sha256_file(record_path)
    if statement.subjects.get(RECORD_NAME) != record_sha:
        problems.append(f"{vr.record} (sha256 {record_sha}) is not the record the bundle signs "
                        f"({statement.subjects.get(RECORD_NAME)}): it was altered after signing")
    record = None
    if not problems:
        try:
            record = parse_record(record_path)
        except RecordError as e:
            problems.append(e.message)
    if problems:
        res.steps.append(Step("vendor-signature", "Vendor record signature", "failed", "; ".join(problems)))
        res.steps.append(Step("vendor-signer", "Vendor record signer identity", "not checked", "the signature does not cover this record"))
        later(skip)
        return None
    assert record is not None
    res.steps.append(Step("vendor-signature", "Vendor record signature", "passed",
                          f"the bundle's signature is valid and covers {vr.record} (sha256 {record_sha})"))
    policy_entry = f" [{statement.policy_entry}]" if statement.policy_entry else ""
    res.steps.append(Step("vendor-signer", "Vendor record signer identity", "passed",
                          f"signed by {statement.signer}{policy_entry}, which is {expected}"))
    if outputs_path.is_file():
        out_sha = sha256_file(outputs_path)
        if statement.subjects.get(OUTPUTS_NAME) == out_sha == record.outputs.sha256:
            res.steps.append(Step("vendor-outputs", "Vendor's per-sample outputs", "passed",
                                  f"{outputs_path.name} matches the signed digest ({record.outputs.samples} samples)"))
        else:
            res.steps.append(Step("vendor-outputs", "Vendor's per-sample outputs", "failed",
                                  f"{outputs_path.name} (sha256 {out_sha}) is not the outputs file the record signs"))
    else:
        res.limitations.append("The vendor did not supply its per-sample outputs; only the signed record's totals "
                               "were checked.")

    pkg = record.package
    if official_seal is None:
        res.steps.append(Step("vendor-seal", "Vendor ran the official package", "not checked",
                              "no official sealed copy of the package is available here to compare with"))
    elif pkg.seal == official_seal and pkg.name == claim.package.name:
        res.steps.append(Step("vendor-seal", "Vendor ran the official package", "passed",
                              f"the record's package {pkg.name} {pkg.version} has the official seal {official_seal}"))
    else:
        res.steps.append(Step("vendor-seal", "Vendor ran the official package", "failed",
                              f"the record's package {pkg.name} {pkg.version} has seal {pkg.seal}, but the official "
                              f"{claim.package.name} seal is {official_seal}: the vendor ran a different or altered package"))

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
    got = _metric_of(record.metrics, m.name, m.group)
    if got is None:
        res.steps.append(Step("vendor-metric", "Vendor's record states the claimed value", "failed",
                              f"the record has no {m.name} for {m.group}"))
    elif matches_claimed(got.value, m.value):
        res.steps.append(Step("vendor-metric", "Vendor's record states the claimed value", "passed",
                              f"the record's {m.name} ({m.group}) is {_fmt(got.value)} "
                              f"({got.successes}/{got.n}), which rounds to the claimed {_fmt(m.value)}"))
    else:
        res.steps.append(Step("vendor-metric", "Vendor's record states the claimed value", "failed",
                              f"the record's {m.name} ({m.group}) is {_fmt(got.value)}, "
                              f"not the claimed {_fmt(m.value)}"))
    overrides = record.overrides.model_dump(mode="json")
    if overrides:
        res.limitations.append(f"The vendor's run used overrides of the package's settings: {overrides}, "
                               "so it measured a variant of the benchmark protocol.")
    if record.status != "complete":
        res.limitations.append(f"The vendor's run is {record.status}: {record.outputs.errors} samples errored.")
    res.vendor_run = {"run_id": record.run_id, "signer": statement.signer, "package": pkg.model_dump(mode="json"),
                      "model": {"name": model_name, "digest": model_digest}, "status": record.status,
                      "overrides": overrides, "finished_at": record.finished_at}
    return record


def _pick_entry(entries: Sequence[Entry | EventEntry], seal: str, claim: Claim, dossier: Dossier) -> tuple[Entry | None, str]:
    """The latest entry of the official package on the claimed model, preferring runs without overrides."""
    matching: list[Entry] = []
    for e in entries:
        if not isinstance(e, Entry) or e.seal != seal:
            continue
        if claim.model.digest is not None:
            if e.model_digest != claim.model.digest:
                continue
        else:
            try:
                name = dossier.record_of(e).model.name
            except HarnessError:
                continue
            if name != claim.model.name:
                continue
        matching.append(e)
    if not matching:
        return None, ""
    clean = [e for e in matching if dossier.record_of(e).overrides.is_empty()]
    if clean:
        return clean[-1], ""
    return matching[-1], "no run without overrides exists; the latest run with overrides was used"


def _check_package(pref: PackageRef, opts: CheckOptions, res: ClaimResult) -> Package | None:
    """Step 1: the official sealed package the claim names, or None (with the step saying why)."""
    official = None
    try:
        pkg = resolve_package(pref.name, opts.packages_dir)
        check_package(pkg)
        official = pkg
    except HarnessError as e:
        res.steps.append(Step("package", "Official package available and intact", "not checked",
                              f"{e.message}", kind="evidence"))
    if official is not None:
        seal = official.seal.seal  # type: ignore[union-attr]
        if pref.version is not None and official.version != pref.version:
            res.steps.append(Step("package", "Official package available and intact", "not checked",
                                  f"the claim is about {pref.name} {pref.version}, but the sealed copy here is "
                                  f"{official.version}", kind="evidence"))
            official = None
        elif pref.seal is not None and pref.seal != seal:
            res.steps.append(Step("package", "Official package available and intact", "failed",
                                  f"the claim names seal {pref.seal}, but the official {pref.name} "
                                  f"{official.version} has seal {seal}: the claim is about another package"))
            official = None
        else:
            res.steps.append(Step("package", "Official package available and intact", "passed",
                                  f"{pref.name} {official.version} at {official.root.name}/ matches its seal {seal}"))
    return official


def _find_our_run(claim: Claim, official: Package | None, opts: CheckOptions, res: ClaimResult) -> RunRecord | None:
    """Step 3: our verified run of the official package on the claimed model (made first with ``run``)."""
    pref = claim.package
    if official is None:
        res.steps.append(Step("our-run", "Our run of the package on the model", "not checked",
                              "there is no official package to run", kind="evidence"))
        return None
    dossier = Dossier.for_package(pref.name, opts.dossiers_dir)
    new_run_id = None
    if opts.run:
        run_kwargs = {"progress": False, **opts.run_options}
        result = run_package(RunOptions(package=official.root, dossiers_dir=opts.dossiers_dir, **run_kwargs))
        res.steps.append(Step("our-new-run", "New run made for this check", "passed",
                              f"run {result.record.run_id} ({result.record.status}, "
                              f"{result.record.outputs.samples} samples) appended to the dossier", kind="evidence"))
        new_run_id = result.record.run_id
    entries = dossier.entries() if dossier.log.exists() else []
    if not entries:
        res.steps.append(Step("our-dossier", "Our dossier: chain and signatures", "not checked",
                              f"no dossier entries for {pref.name} (run `harness claim check --run` or "
                              f"`harness run {pref.name}` first)", kind="evidence"))
        return None
    report = verify_dossier(dossier, opts.trusted)
    if not report.ok:
        more = f" (and {len(report.problems) - 3} more)" if len(report.problems) > 3 else ""
        res.steps.append(Step("our-dossier", "Our dossier: chain and signatures", "failed",
                              "; ".join(str(p) for p in report.problems[:3]) + more, kind="evidence"))
        return None
    res.steps.append(Step("our-dossier", "Our dossier: chain and signatures", "passed",
                          f"{report.entries} entr{'y' if report.entries == 1 else 'ies'}, hash chain intact, "
                          f"every signature trusted; head {report.head}", kind="evidence"))
    if new_run_id is not None:  # the run made for this check, whatever else the dossier holds
        entries = [e for e in entries if isinstance(e, Entry) and e.run_id == new_run_id]
    assert official.seal is not None  # checked against its seal by _check_package
    entry, caveat = _pick_entry(entries, official.seal.seal, claim, dossier)
    if entry is None:
        what = f"model digest {claim.model.digest}" if claim.model.digest else f"model {claim.model.name!r}"
        res.steps.append(Step("our-run", "Our run of the package on the model", "not checked",
                              f"no run of {pref.name} with the official seal on {what} in the dossier "
                              "(use --run to make one)", kind="evidence"))
        return None
    record = dossier.record_of(entry)
    signer = {rid: s for _, rid, s in report.signers}.get(entry.run_id, "?")
    detail = (f"entry {entry.seq}, run {entry.run_id}: official seal, model {record.model.name} "
              f"(digest {entry.model_digest}), {record.status}, signed by {signer}")
    if claim.model.digest is None:
        detail += "; matched by model name only (the claim gives no weights digest)"
        res.limitations.append("The claim gives no model weights digest: our run was matched to the "
                               "claimed model by name only.")
    if caveat:
        detail += f"; {caveat}"
    res.steps.append(Step("our-run", "Our run of the package on the model", "passed", detail, kind="evidence"))
    overrides = record.overrides.model_dump(mode="json")
    if overrides:
        res.limitations.append(f"Our run used overrides of the package's settings: {overrides} "
                               "(e.g. a sample limit), so it measures a variant of the benchmark protocol.")
    if record.status != "complete":
        res.limitations.append(f"Our run is {record.status}: {record.outputs.errors} samples "
                               "errored and count in no metric.")
    res.our_run = {"run_id": record.run_id, "entry": entry.seq, "signer": signer,
                   "model": {"name": record.model.name, "digest": entry.model_digest},
                   "status": record.status, "overrides": overrides,
                   "samples": record.outputs.samples, "finished_at": record.finished_at,
                   "dossier_head": report.head}
    return record


def _compare(claim: Claim, our_record: RunRecord | None, vendor_record: RunRecord | None, res: ClaimResult) -> None:
    """Step 4: the claimed value against our count, and the per-language / per-category tables."""
    m = claim.metric
    if our_record is not None:
        got = _metric_of(our_record.metrics, m.name, m.group)
        if got is None or not got.n:
            have = sorted({x.metric for x in our_record.metrics})
            groups = sorted({x.group for x in our_record.metrics if x.metric == m.name})
            why = (f"our run has no {m.name} for {m.group}"
                   + (f" (it has {m.name} for: {', '.join(groups)})" if groups else f" (metrics computed: {', '.join(have)})"))
            res.steps.append(Step("comparison", "Claimed value against our run", "not checked", why, kind="evidence"))
        else:
            k, n = got.successes, got.n
            lo, hi = clopper_pearson(k, n)
            cmp = Comparison(claimed=m.value, group=m.group, n=n, successes=k, estimate=k / n, ci_low=lo, ci_high=hi,
                             p_value=binomial_test(k, n, m.value))
            res.comparison = cmp
            text = (f"claimed {_fmt(m.value)}; ours {_fmt(cmp.estimate)} ({k}/{n}), {int(CONFIDENCE * 100)}% CI "
                    f"[{_fmt(lo)}, {_fmt(hi)}]; probability of a result this far from the claim if it were true: "
                    f"p = {cmp.p_value:.3g} ({'at or above' if cmp.consistent else 'below'} {ALPHA})")
            res.steps.append(Step("comparison", "Claimed value against our run",
                                  "passed" if cmp.consistent else "failed", text))
            if hi - lo > 0.2:
                res.limitations.append(f"Our run has only {n} samples in {m.group} for {m.name}: its {int(CONFIDENCE * 100)}% "
                                       f"CI is {hi - lo:.2f} wide, so only a large difference from the claim could "
                                       "be detected.")
        vend = vendor_record.metrics if vendor_record is not None else []
        for m_ in our_record.metrics:
            if m_.metric != m.name or not m_.n:
                continue
            g = m_.group
            k, n = m_.successes, m_.n
            lo, hi = clopper_pearson(k, n)
            v = _metric_of(vend, m.name, g)
            row = GroupRow(g, n, k, k / n, lo, hi, None if v is None else v.value)
            if g.startswith("language:"):
                res.languages.append(row)
            elif g.startswith("category:"):
                res.categories.append(row)
    else:
        res.steps.append(Step("comparison", "Claimed value against our run", "not checked",
                              "there is no verified run of ours to compare with", kind="evidence"))
        res.limitations.append("No verified run of ours was available, so the claimed value itself was not tested.")


def check_claim(loaded: LoadedClaim, opts: CheckOptions) -> ClaimResult:
    """Run every check of ``docs/claims.md`` and return the result (nothing is written)."""
    claim = loaded.claim
    res = ClaimResult(
        claim=claim, claim_path=str(loaded.path), claim_sha256=loaded.sha256,
        checked_at=now_seconds(),
        harness_version=__version__,
    )
    res.steps.append(Step("claim-file", "Claim file", "passed",
                          f"{loaded.path.name} is a valid claim (schema version {claim.schema_version}, "
                          f"sha256 {loaded.sha256})"))

    official = _check_package(claim.package, opts, res)
    official_seal = official.seal.seal if official is not None and official.seal is not None else None
    vendor_record = _check_vendor(loaded, official_seal, opts.trusted, res)
    our_record = _find_our_run(claim, official, opts, res)
    _compare(claim, our_record, vendor_record, res)
    res.limitations.extend(
        f"{s.title}: {s.detail}" for s in res.steps if s.outcome == "not checked"
    )
    return res
