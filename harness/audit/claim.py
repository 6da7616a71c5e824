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
from harness._internal.version import __version__
from harness.audit.claim_file import Claim, LoadedClaim, PackageRef
from harness.audit.claim_result import ALPHA, CONFIDENCE, ClaimResult, Comparison, GroupRow, Step
from harness.audit.claim_vendor import VendorContext, check_vendor, matches_claimed
from harness.audit.claim_vendor import fmt as _fmt
from harness.audit.claim_vendor import metric_of as _metric_of
from harness.audit.handoff import RequiredBy, review_status
from harness.audit.labels import labels_of
from harness.dossier.log import Dossier, Entry, EventEntry
from harness.dossier.runs import package_status_of
from harness.dossier.verify import verify_dossier
from harness.errors import HarnessError
from harness.packages.data import load_samples, resolve_sources
from harness.packages.package import Package, resolve_package
from harness.packages.seal import check_package
from harness.record import RunRecord
from harness.run import RunOptions, run_package
from harness.scoring.stats import binomial_test, clopper_pearson
from harness.signing.policy import PackageStatus, TrustPolicy
from harness.signing.verify import Trusted

__all__ = ["CheckOptions", "check_claim", "matches_claimed"]

# --------------------------------------------------------------------------- statistics


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
    vendor_trusted: TrustPolicy | None = None
    """The vendor's signer as the reviewer pinned it (``--vendor-key`` / ``--vendor-identity``);
    None: the reviewer's own trust policy (``trusted``) decides. Never taken from the claim folder."""
    mirror: Path | None = None
    """A data mirror, to read the official package's sample ids (the vendor coverage check)."""
    require_review: bool = False
    """Our run must be reviewed (labels of its uncertain samples, an approval) before it is used, as a
    package with ``[review] required = true`` asks (docs/review.md)."""


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


def _imported_about(entries: Sequence[Entry | EventEntry], claim: Claim) -> int | None:
    """The latest imported entry (another tool's result) naming the claimed model, if any."""
    hits = [e.seq for e in entries if isinstance(e, EventEntry) and e.kind == "imported"
            and getattr(e.summary, "model", None) in (claim.model.name, claim.model.digest)]
    return hits[-1] if hits else None


def _check_package(pref: PackageRef, opts: CheckOptions, res: ClaimResult) -> Package | None:
    """Step 1: the official sealed package the claim names, or None (with the step saying why).

    Official means a seal the package's maintainer published, pinned in the reviewer's
    trust policy (``[[official_packages]]``); without such a pin the local sealed copy is
    taken as the reference, and the report says so.
    """
    official = None
    try:
        pkg = resolve_package(pref.name, opts.packages_dir)
        check_package(pkg)
        official = pkg
    except HarnessError as e:
        res.steps.append(Step("package", "Official package available and intact", "not checked",
                              f"{e.message}", kind="evidence"))
    pinned = opts.trusted.official_seals(pref.name) if isinstance(opts.trusted, TrustPolicy) else []
    res.package_status = PackageStatus.OFFICIAL if pinned else PackageStatus.UNPINNED
    if not pinned:
        res.limitations.append(f"Your trust policy pins no official seal for {pref.name} ([[official_packages]], "
                               "docs/trust-policy.md): the sealed copy here was taken as the official package.")
    if official is not None and pinned and official.seal is not None \
            and official.seal.seal not in {p.seal for p in pinned}:
        res.steps.append(Step("package", "Official package available and intact", "failed",
                              f"the copy of {pref.name} here has seal {official.seal.seal}, which is not a seal your "
                              f"trust policy pins as official ({', '.join(p.seal[:12] for p in pinned)})",
                              kind="evidence"))
        res.package_status = PackageStatus.NOT_OFFICIAL
        official = None
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
        imported = _imported_about(entries, claim)
        if imported is not None:
            res.steps.append(Step("our-run", "Our run of the package on the model", "not checked",
                                  f"the dossier holds only an imported result about this claim (entry {imported}: "
                                  "imported, not reproduced; no seal, no lockfile, no model digest), which cannot "
                                  "support or refute it; make a run of our own with --run", kind="evidence"))
            res.limitations.append(f"Entry {imported} of our dossier is a result imported from another tool: "
                                   "imported, not reproduced, so it was not compared with the claim.")
            return None
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
    record = _review_step(dossier, entry, record, official, opts, res)
    overrides = record.overrides.model_dump(mode="json")
    if overrides:
        res.limitations.append(f"Our run used overrides of the package's settings: {overrides} "
                               "(e.g. a sample limit), so it measures a variant of the benchmark protocol.")
    if record.status != "complete":
        res.limitations.append(f"Our run is {record.status}: {record.outputs.errors} samples "
                               "errored and count in no metric.")
    res.our_run = {"run_id": record.run_id, "entry": entry.seq, "signer": signer,
                   "package_status": str(package_status_of(record, opts.trusted)),
                   "model": {"name": record.model.name, "digest": entry.model_digest},
                   "status": record.status, "overrides": overrides,
                   "samples": record.outputs.samples, "finished_at": record.finished_at,
                   "dossier_head": report.head}
    return record


def _review_step(dossier: Dossier, entry: Entry, record: RunRecord, official: Package, opts: CheckOptions,
                 res: ClaimResult) -> RunRecord:
    """What people checked of our run (for the report), and, where review is required, whether it is
    complete: awaiting review decides the verdict; a reviewed run is compared on its adjudicated numbers."""
    review = getattr(official.manifest, "review", None)
    required: tuple[RequiredBy, ...] = ("package",) if getattr(review, "required", False) else ()
    required += ("option",) if opts.require_review and not required else ()
    status = review_status(dossier, entry, required)
    events = labels_of(dossier, entry)
    if not required and not events and status.approval is None and status.stale_approval is None:
        return record
    res.review = {**status.as_dict(), "labels": [
        {**lab.model_dump(mode="json"), "entry": ev.entry.seq, "time": ev.document.time}
        for ev in events for lab in ev.document.details.labels]}
    if not required:
        return record
    if status.awaiting:
        res.steps.append(Step("review", "Human review of our run", "not checked", "; ".join(status.reasons()),
                              kind="evidence"))
        return record
    adj = status.adjudicated
    assert adj is not None and status.approval is not None
    res.steps.append(Step("review", "Human review of our run", "passed",
                          f"{len(status.uncertain)} uncertain samples all labelled ({len(adj.changed)} verdicts changed "
                          f"by the labels); approved by {status.approval.reviewer} at entry {status.approval.seq}; "
                          "compared on the adjudicated numbers", kind="evidence"))
    return record.model_copy(update={"metrics": list(adj.metrics)})


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
                             p_value=binomial_test(k, n, m.value), metric=m.name)
            res.comparison = cmp
            text = (f"claimed {_fmt(m.value)}; ours {_fmt(cmp.estimate)} ({k}/{n}), {int(CONFIDENCE * 100)}% CI "
                    f"[{_fmt(lo)}, {_fmt(hi)}]; probability of a result this far from the claim if it were true: "
                    f"p = {cmp.p_value:.3g} ({'at or above' if cmp.consistent else 'below'} {ALPHA}); "
                    f"{cmp.direction_text()}")
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
    vendor_record = check_vendor(VendorContext(
        loaded=loaded, official=official, official_seal=official_seal, trusted=opts.trusted,
        vendor_trusted=opts.vendor_trusted, official_ids=_sample_ids(official, opts.mirror),
    ), res)
    our_record = _find_our_run(claim, official, opts, res)
    _compare(claim, our_record, vendor_record, res)
    res.limitations.extend(
        f"{s.title}: {s.detail}" for s in res.steps if s.outcome == "not checked"
    )
    return res


def _sample_ids(pkg: Package | None, mirror: Path | None) -> frozenset[str] | None:
    """The official package's sample ids, or None when its data cannot be read here."""
    if pkg is None:
        return None
    try:
        return frozenset(s.id for s in load_samples(pkg, resolve_sources(pkg, mirror)))
    except HarnessError:
        return None
