"""The suite's gate after review: ``harness suite gate FILE``.

A suite whose runs must be reviewed (``[gate] require_review = true``, or a package with
``[review] required``) cannot be decided when it finishes: its uncertain answers have not
been labelled yet, so ``harness suite run`` answers "awaiting review" (exit 8) and signs
the suite record with the gate on the scorer's numbers, as run. People then label
(``harness review``) and approve (``harness dossier approve``) each run in its own
dossier. This module decides the suite again, later, from what is signed:

1. the suite record is verified (signature, every listed run, every dossier whole);
2. the suite file given must be the one the record was run with (its sha256), because
   the gate's rules come from it;
3. each run's review state is read from its verified dossier (:func:`suite_review`);
   reviewed runs count with their adjudicated numbers;
4. the gate is decided over those numbers with the same rules (:func:`decide_suite`).

Nothing is written: the decision is reproducible from the signed files at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.dossier.log import Dossier
from harness.errors import DossierError
from harness.signing.verify import Trusted
from harness.suite.file import SuiteFileError, load_suite
from harness.suite.gate import GatedRun, SuiteReview, decide_suite, suite_review
from harness.suite.record import GateWord, SuiteGate
from harness.suite.verify import SUITE_REF_PREFIX, SuiteVerification, verify_suite


@dataclass(frozen=True)
class SuiteGateResult:
    """The suite's gate decided again from its signed record and its runs' reviews."""

    verification: SuiteVerification
    gate: SuiteGate
    per_pair: dict[tuple[str, str], GateWord]
    review: SuiteReview

    @property
    def exit_code(self) -> int:
        """8 while a run awaits review, else 7 on a FAIL, else 0."""
        return self.review.exit_code(7 if self.gate.verdict == "FAIL" else 0)

    def as_dict(self) -> dict[str, Any]:
        r = self.verification.record
        return {
            "kind": "suite-gate", "suite_id": r.suite_id, "name": r.name, "suite_record": str(self.verification.path),
            "signer": self.verification.signer, "exit_code": self.exit_code,
            "awaiting_review": [{"package": p, "model": m, "reasons": list(s.reasons())}
                                for (p, m), s in self.review.awaiting.items()],
            "verdict": "AWAITING REVIEW" if self.review.awaiting else str(self.gate.verdict),
            "recorded_verdict": str(r.gate.verdict),
            "pairs": [{"package": p, "model": m, "gate": str(w)} for (p, m), w in self.per_pair.items()],
            "gate": self.gate.model_dump(mode="json"),
            "notes": list(self.review.notes),
        }


def gate_suite(file: Path, trusted: Trusted, *, suite_id: str | None = None,
               dossiers_dir: Path | None = None) -> SuiteGateResult:
    """Decide the suite run from ``file`` again (its latest record, or ``suite_id``), after review."""
    loaded = load_suite(file)
    ref = f"{SUITE_REF_PREFIX}{loaded.file.name}" + (f"@{suite_id}" if suite_id else "")
    v = verify_suite(ref, trusted, dossiers_dir=dossiers_dir)
    if not v.ok:
        raise DossierError(f"the suite record {v.path} or one of its runs does not verify: "
                           + "; ".join(str(p) for p in v.problems[:3]),
                           hint="`harness verify suite:NAME` shows every problem; nothing unverified is gated")
    if v.record.suite_file.sha256 != loaded.sha256:
        raise SuiteFileError(f"{file} is not the suite file the record {v.record.suite_id} was run with "
                             f"(sha256 {loaded.sha256[:12]}, the record names {v.record.suite_file.sha256[:12]})",
                             hint="the gate's rules come from the suite file: give the one the suite ran with")
    gated, roots = [], set()
    for run in v.record.runs:  # every run file and every dossier was verified whole just now
        dossier = Dossier.for_package(run.dossier, v.dossiers)
        entry = next(e for e in dossier.runs() if e.seq == run.seq)
        gated.append(GatedRun(run.package, run.model, dossier.record_of(entry)))
        roots.add(dossier.root)
    review = suite_review(loaded.file.gate, gated, v.dossiers, verified=roots)
    gate, per_pair = decide_suite(loaded.file.gate, review.runs)
    return SuiteGateResult(verification=v, gate=gate, per_pair=per_pair, review=review)
