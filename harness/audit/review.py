"""Human review and baseline changes: the two dossier events that people, not runs, make.

A run's numbers should not be used downstream until someone has looked at them, and
a package's baselines should not move without a trace. Both are signed dossier
entries: a review names the exact entry it approves (by the digest of its log line),
who approved it, when, and what was checked; a baseline change names the run the new
values came from and the package seal before and after the reseal it forces.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from harness._internal.clock import new_id, now
from harness._internal.settings import reviewer as reviewer_from_env
from harness.audit.original import Original
from harness.dossier.documents import (
    BaselineChange,
    BaselineDetails,
    BaselineRecord,
    BaselineSummary,
    EventPackage,
    ModelName,
    Reference,
    ReviewDetails,
    ReviewRecord,
    ReviewSummary,
)
from harness.dossier.events import sign_event
from harness.dossier.log import Dossier, Entry, EventEntry
from harness.dossier.verify import require_verified
from harness.errors import HarnessError, SealError
from harness.packages.manifest import MANIFEST_NAME, Baseline, parse_manifest, parse_manifest_text
from harness.packages.package import Package
from harness.packages.seal import check_package, compute_seal, seal_package
from harness.signing.signers import KeySigner, Signer
from harness.signing.verify import Trusted

D = TypeVar("D", ReviewRecord, BaselineRecord)


@dataclass
class EventResult(Generic[D]):
    """A signed event appended to the dossier: its document, its entry, and the key if created now."""

    document: D
    entry: EventEntry
    key_created: Path | None = None


def reviewer_name(given: str | None) -> str:
    if given:
        return given
    from_env = reviewer_from_env()
    if from_env:
        return from_env
    for var in ("USER", "LOGNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def approve(dossier: Dossier, ref: str, note: str, trusted: Trusted, *, reviewer: str | None = None,
            checked: tuple[str, ...] = (), signer: Signer | None = None) -> EventResult[ReviewRecord]:
    """Append a signed review of entry ``ref``; refused unless the whole dossier verifies first."""
    if not note.strip():
        raise HarnessError("a review needs a note", hint='say what you checked: --note "numbers match the CI report"')
    target = dossier.resolve_any(ref)
    report = require_verified(dossier, trusted, "nothing in it can be approved", remember=True)
    entry_signer = next((s for n, _, s in report.signers if n == target.seq), None)
    auto = [f"dossier chain and all {report.entries} signatures verified (head {report.head[:16]})",
            f"entry {target.seq} signed by {entry_signer}"]
    name = reviewer_name(reviewer)
    kind = "run" if isinstance(target, Entry) else target.kind
    doc = ReviewRecord(
        id=new_id(), time=now(),
        package=EventPackage(name=target.package, version=target.package_version, seal=target.seal),
        refers_to=Reference(kind="entry", sha256=dossier.entry_digest(target.seq), seq=target.seq,
                            run_id=target.run_id if isinstance(target, Entry) else None),
        summary=ReviewSummary(entry=target.seq, entry_kind=kind, entry_id=target.ident, reviewer=name, note=note),
        details=ReviewDetails(reviewer=name, note=note, checked=(*auto, *checked), dossier_head=report.head,
                              entry_signer=entry_signer),
    )
    signed = sign_event(doc, {}, signer or KeySigner())
    entry = dossier.add_event(doc, signed.bundle, {}, checkpoint=signer or KeySigner())
    return EventResult(document=doc, entry=entry, key_created=signed.key_created)


# ---------------------------------------------------------------------------- baselines

_HEADER = re.compile(r"^\s*\[")
_BASELINE_HEADER = re.compile(r"^\s*\[\[\s*baselines\s*\]\]\s*(#.*)?$")


def _strip_baselines(text: str) -> str:
    """The manifest text without its [[baselines]] tables (comments elsewhere are kept)."""
    out, skipping = [], False
    for line in text.splitlines():
        if _BASELINE_HEADER.match(line):
            skipping = True
            continue
        if skipping and _HEADER.match(line):
            skipping = False
        if skipping and line.strip() and not line.lstrip().startswith("#"):
            continue
        if not skipping or not line.strip():
            out.append(line)
    return "\n".join(out).rstrip() + "\n"


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _baseline_toml(b: dict[str, Any]) -> str:
    lines = ["[[baselines]]", f"model = {_toml_str(b['model'])}", f"metric = {_toml_str(b['metric'])}"]
    if b.get("group", "overall") != "overall":
        lines.append(f"group = {_toml_str(b['group'])}")
    lines += [f"value = {b['value']!r}", f"tolerance = {b['tolerance']!r}"]
    if b.get("successes") is not None:
        lines += [f"successes = {b['successes']}", f"n = {b['n']}"]
    return "\n".join(lines)


def _same(b: dict[str, Any], successes: int, n: int) -> bool:
    """Whether a baseline already says what the run measured: the same counts, or (for a
    baseline written without counts) the run's rate rounded as the baseline's value was."""
    if b.get("successes") is not None:
        return bool(b["successes"] == successes and b["n"] == n)
    if b.get("value") is None:
        return False
    text = repr(float(b["value"]))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 6
    return bool(round(successes / n, decimals) == b["value"])


@dataclass(frozen=True)
class BaselineUpdate:
    """What ``harness baseline update`` did, or (``dry_run``) would do."""

    changes: tuple[BaselineChange, ...]
    old_seal: str
    new_seal: str
    """The seal after the change (equal to ``old_seal`` when nothing changes)."""
    dry_run: bool
    result: EventResult[BaselineRecord] | None
    """The dossier event; None for a dry run or when nothing changed."""


def update_baselines(pkg: Package, original: Original, *, tolerance: float = 0.05, mirror: Path | None = None,
                     signer: Signer | None = None, dry_run: bool = False) -> BaselineUpdate:
    """Set the package's baselines for the run's model to the run's counts, reseal, and record the change.

    Baselines that exist for the model (by name or digest) are updated; without any,
    one per metric for the pooled group is added with ``tolerance``. Baselines of
    other models are kept as they are. Values are stored as exact counts (successes and
    n, with the rate for reading), so updating from a run identical to the baselines'
    changes nothing: no reseal, no entry. ``dry_run`` computes the changes and the seal
    they would make and writes nothing.
    """
    pkg = check_package(pkg)
    assert pkg.seal is not None
    rec = original.record
    if rec.package.seal != pkg.seal.seal:
        raise SealError(
            f"run {rec.run_id} was made with seal {rec.package.seal[:16]}, the package is now {pkg.seal.seal[:16]}",
            hint="baselines come from a run of this exact package: run it first (`harness run`), then update from that run",
        )
    if rec.status != "complete" or not rec.overrides.is_empty():
        raise HarnessError(
            f"run {rec.run_id} is {rec.status} with overrides {rec.overrides.model_dump(mode='json') or 'none'}",
            hint="baselines come from a complete run with the package's own seed, parameters and every sample",
        )
    names = {rec.model.name, rec.model.digest}
    counts = {(m.metric, m.group): (m.successes, m.n) for m in rec.metrics}
    before = [b.model_dump(mode="json") for b in pkg.manifest.baselines]
    targets = list(before)
    if not any(b["model"] in names for b in before):
        targets += [{"model": rec.model.name, "metric": mt, "group": "overall", "value": None,
                     "tolerance": tolerance} for mt in pkg.manifest.metrics if (mt, "overall") in counts]
    after: list[dict[str, Any]] = []
    changes: list[BaselineChange] = []
    for b in targets:
        if b["model"] not in names:
            after.append(b)
            continue
        got = counts.get((b["metric"], b["group"]))
        if got is None:
            raise HarnessError(f"run {rec.run_id} has no {b['metric']} for {b['group']}",
                               hint="baselines can only take values the run measured")
        k, n = got
        if _same(b, k, n):
            after.append(b)
            continue
        nb = {**b, "value": round(k / n, 4), "successes": k, "n": n}
        changes.append(BaselineChange(model=b["model"], metric=b["metric"], group=b["group"], old=b["value"],
                                      new=nb["value"]))
        after.append(nb)
    old_seal = pkg.seal.seal
    if not changes:
        return BaselineUpdate(changes=(), old_seal=old_seal, new_seal=old_seal, dry_run=dry_run, result=None)
    manifest = pkg.root / MANIFEST_NAME
    text = manifest.read_text(encoding="utf-8")
    stamp = f"# Baselines updated from run {rec.run_id} (harness baseline update; see the dossier)."
    new_text = _strip_baselines(text).rstrip() + "\n\n" + stamp + "\n" + "\n\n".join(_baseline_toml(b) for b in after) + "\n"
    if dry_run:
        new_manifest = parse_manifest_text(new_text, manifest)
        would = compute_seal(dataclasses.replace(pkg, manifest=new_manifest), pkg.seal.summary,
                             manifest_text=new_text.encode("utf-8"))
        return BaselineUpdate(changes=tuple(changes), old_seal=old_seal, new_seal=would.seal, dry_run=True,
                              result=None)
    manifest.write_text(new_text, encoding="utf-8")
    try:
        parse_manifest(manifest)
        seal = seal_package(pkg.root, mirror=mirror)
    except HarnessError:
        manifest.write_text(text, encoding="utf-8")
        raise
    doc = BaselineRecord(
        id=new_id(), time=now(),
        package=EventPackage(name=seal.package, version=seal.version, seal=seal.seal),
        refers_to=Reference(kind="run", sha256=original.entry.record.sha256, run_id=rec.run_id, seq=original.entry.seq),
        summary=BaselineSummary(from_run=rec.run_id, old_seal=old_seal, new_seal=seal.seal, changed=len(changes)),
        details=BaselineDetails(model=ModelName(name=rec.model.name, digest=rec.model.digest),
                                before=tuple(pkg.manifest.baselines),
                                after=tuple(Baseline.model_validate(b) for b in after), changes=tuple(changes)),
    )
    signed = sign_event(doc, {}, signer or KeySigner())
    entry = original.dossier.add_event(doc, signed.bundle, {}, checkpoint=signer or KeySigner())
    return BaselineUpdate(changes=tuple(changes), old_seal=old_seal, new_seal=seal.seal, dry_run=False,
                          result=EventResult(document=doc, entry=entry, key_created=signed.key_created))
