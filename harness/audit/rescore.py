"""Re-scoring recorded answers with another scorer or judge, without generating again.

Auditing a judge means asking "would another judge have said the same about these
exact answers?". The answers are taken from a verified run; only the verdicts and
metrics are recomputed, and the re-scored outputs go into the dossier as a signed
``rescore`` entry that names the original record's digest, so the dossier says that
the numbers came from a re-scoring and from which scorer.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._internal.clock import new_id, now
from harness._internal.hashing import sha256_file
from harness.audit.original import Original
from harness.dossier.documents import (
    ChangedVerdict,
    EventFile,
    EventPackage,
    Reference,
    RescoreDetails,
    RescoredMetric,
    RescoredOutputs,
    RescoreRecord,
    RescoreSummary,
)
from harness.dossier.events import sign_event
from harness.dossier.log import EventEntry
from harness.packages.data import load_samples, resolve_sources
from harness.packages.package import Package
from harness.record import OUTPUTS_NAME, content_digest, output_line, read_outputs
from harness.scoring.base import RefusalScorerInfo
from harness.scoring.behaviours import behaviours_of, is_correct, uncertain_fields
from harness.scoring.factory import resolve_scorer
from harness.scoring.metrics import Scored, compute_metrics
from harness.signing.signers import KeySigner, Signer


@dataclass
class RescoreResult:
    original: Original
    document: RescoreRecord
    entry: EventEntry
    changed: list[ChangedVerdict]
    metrics: list[RescoredMetric]
    key_created: Path | None = None


def rescore(original: Original, pkg: Package, scorer_ref: str, *, judge_model: str | None = None,
            judge_endpoint: str | None = None, threads: int = 1, mirror: Path | None = None,
            signer: Signer | None = None) -> RescoreResult:
    """Score every recorded answer of ``original`` with ``scorer_ref``; sign and append the result."""
    rec = original.record
    m = pkg.manifest
    prompts = {s.id: s.prompt for s in load_samples(pkg, resolve_sources(pkg, mirror))}
    scorer = resolve_scorer(scorer_ref, judge_model=judge_model, judge_endpoint=judge_endpoint, threads=threads,
                            behaviours=behaviours_of(m))
    lines: list[dict[str, Any]] = []
    changed: list[ChangedVerdict] = []
    try:
        for line in sorted(read_outputs(original.outputs), key=lambda x: x["id"]):
            # the original's marks belong to the original's scorer: the new scorer sets its own
            new = {k: v for k, v in line.items() if k not in ("judge", "uncertain", "uncertain_reason")}
            if line["verdict"] != "error":
                j = scorer.score(line["response"], line["language"], prompt=prompts.get(line["id"]),
                                 finish_reason=line.get("finish_reason"))
                new["verdict"] = j.verdict
                new["correct"] = is_correct(j.verdict, line["expected"])
                new.update(uncertain_fields(j.uncertain))
                if scorer.kind == "judge":
                    new["judge"] = {"raw": j.raw, "error": f"judge: {j.error}" if j.error else None}
            new["original_verdict"] = line["verdict"]
            if new["verdict"] != line["verdict"]:
                changed.append(ChangedVerdict(id=line["id"], language=line["language"], original=line["verdict"],
                                              rescored=new["verdict"], response=line["response"][:200]))
            lines.append(new)
        described = scorer.describe()
    finally:
        scorer.close()
    scored = [Scored(x["id"], x["language"], x["category"], x["expected"], x["verdict"]) for x in lines]
    before = {(x.metric, x.group): x.value for x in rec.metrics}
    metrics = []
    for mv in compute_metrics(scored, m.metrics, m.bootstrap.confidence,
                              overall=not (m.compare and not m.compare.overall)):
        value = round(mv.value, 6)  # as the run record states values
        old = before.get((mv.metric, mv.group))
        metrics.append(RescoredMetric(**mv.model_dump(mode="json"), original=old,
                                      delta=None if old is None else round(value - old, 6)))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / OUTPUTS_NAME
        with open(out, "wb") as fh:
            for x in lines:
                fh.write(output_line(x))
        label = (described.patterns if isinstance(described, RefusalScorerInfo) else described.model) or scorer_ref
        doc = RescoreRecord(
            id=new_id(), time=now(),
            package=EventPackage(name=rec.package.name, version=rec.package.version, seal=rec.package.seal),
            refers_to=Reference(kind="run", sha256=original.entry.record.sha256, run_id=rec.run_id,
                                seq=original.entry.seq),
            summary=RescoreSummary(original_run=rec.run_id, scorer=label, samples=len(lines),
                                   changed_verdicts=len(changed),
                                   unparsed=sum(1 for x in lines if x["verdict"] == "unparsed")),
            details=RescoreDetails(
                scorer=described, original_scorer=rec.scorer, regenerated=False,
                outputs=RescoredOutputs(path=OUTPUTS_NAME, sha256=sha256_file(out), content_sha256=content_digest(lines)),
                metrics=tuple(metrics), first_changed=tuple(changed[:20]),
            ),
            files=(EventFile(name=OUTPUTS_NAME, sha256=sha256_file(out)),),
        )
        signed = sign_event(doc, {OUTPUTS_NAME: out}, signer or KeySigner())
        entry = original.dossier.add_event(doc, signed.bundle, {OUTPUTS_NAME: out},
                                           checkpoint=signer or KeySigner())
    return RescoreResult(original=original, document=doc, entry=entry, changed=changed, metrics=metrics,
                         key_created=signed.key_created)
