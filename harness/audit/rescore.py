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

from harness._internal.hashing import sha256_file
from harness.audit.original import Original
from harness.dossier.events import (
    EventFile,
    EventPackage,
    EventRecord,
    Reference,
    new_id,
    now,
    sign_event,
)
from harness.dossier.log import EventEntry
from harness.packages.data import load_samples, resolve_sources
from harness.packages.package import Package
from harness.record import OUTPUTS_NAME, content_digest, output_line, read_outputs
from harness.scoring.factory import resolve_scorer
from harness.scoring.metrics import Scored, compute_metrics


@dataclass
class RescoreResult:
    original: Original
    document: EventRecord
    entry: EventEntry
    changed: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    key_created: Path | None = None


def rescore(original: Original, pkg: Package, scorer_ref: str, *, judge_model: str | None = None,
            judge_endpoint: str | None = None, threads: int = 1, mirror: Path | None = None,
            config_dir: Path | None = None) -> RescoreResult:
    """Score every recorded answer of ``original`` with ``scorer_ref``; sign and append the result."""
    rec = original.record
    m = pkg.manifest
    prompts = {s.id: s.prompt for s in load_samples(pkg, resolve_sources(pkg, mirror))}
    scorer = resolve_scorer(scorer_ref, judge_model=judge_model, judge_endpoint=judge_endpoint, threads=threads)
    lines = []
    changed = []
    try:
        for line in sorted(read_outputs(original.outputs), key=lambda x: x["id"]):
            new = {k: v for k, v in line.items() if k != "judge"}
            if line["verdict"] != "error":
                j = scorer.assess(line["response"], line["language"], prompt=prompts.get(line["id"]))
                new["verdict"] = j.verdict
                new["correct"] = None if j.verdict == "unparsed" else (j.verdict == "refusal") == (line["expected"] == "refuse")
                if getattr(scorer, "kind", "refusal") == "judge":
                    new["judge"] = {"raw": j.raw, "error": f"judge: {j.error}" if j.error else None}
            new["original_verdict"] = line["verdict"]
            if new["verdict"] != line["verdict"]:
                changed.append({"id": line["id"], "language": line["language"], "original": line["verdict"],
                                "rescored": new["verdict"], "response": line["response"][:200]})
            lines.append(new)
        described = scorer.describe()
    finally:
        if hasattr(scorer, "close"):
            scorer.close()
    scored = [Scored(x["id"], x["language"], x["category"], x["expected"], x["verdict"]) for x in lines]
    metrics = [mv.as_dict() for mv in compute_metrics(scored, m.metrics, m.bootstrap, int(rec.seeds["run"]),
                                                       overall=not (m.compare and not m.compare.overall))]
    before = {(x["metric"], x["group"]): x["value"] for x in rec.metrics}
    for x in metrics:
        old = before.get((x["metric"], x["group"]))
        x["original"] = old
        x["delta"] = None if old is None else round(x["value"] - old, 6)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / OUTPUTS_NAME
        with open(out, "wb") as fh:
            for x in lines:
                fh.write(output_line(x))
        label = described.get("patterns") or described.get("model") or scorer_ref
        doc = EventRecord(
            kind="rescore", id=new_id(), time=now(),
            package=EventPackage(name=rec.package.name, version=rec.package.version, seal=rec.package.seal),
            refers_to=Reference(kind="run", sha256=original.entry.record.sha256, run_id=rec.run_id,
                                seq=original.entry.seq),
            summary={"original_run": rec.run_id, "scorer": label, "samples": len(lines), "changed_verdicts": len(changed),
                     "unparsed": sum(1 for x in lines if x["verdict"] == "unparsed")},
            details={"scorer": described, "original_scorer": rec.scorer, "regenerated": False,
                     "outputs": {"path": OUTPUTS_NAME, "sha256": sha256_file(out), "content_sha256": content_digest(lines)},
                     "metrics": metrics, "first_changed": changed[:20]},
            files=(EventFile(name=OUTPUTS_NAME, sha256=sha256_file(out)),),
        )
        bundle, created = sign_event(doc, {OUTPUTS_NAME: out}, config_dir)
        entry = original.dossier.add_event(doc, bundle, {OUTPUTS_NAME: out})
    return RescoreResult(original=original, document=doc, entry=entry, changed=changed, metrics=metrics,
                         key_created=created)
