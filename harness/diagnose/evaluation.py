"""The evaluation run a diagnosis explains: found in the dossier, or made first.

A diagnosis compares what the model represents with what it did, so it needs what it
did: the per-prompt verdicts of a signed run of the same sealed package on the same
model (by weights digest). The latest complete run of that seal and model whose outputs
cover every diagnosed prompt is taken, after its signature and digests verify under the
user's trust store. If there is none, the evaluation is run first with the same plan and
the model already loaded (an ordinary signed ``run`` entry), because a diagnosis entry
must name an earlier run of its dossier and a representation-action gap without the
action is not a gap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.backends.base import Backend
from harness.dossier.log import Dossier, Entry
from harness.dossier.refs import entry_file
from harness.dossier.runs import verify_run_files
from harness.plan import RunPlan
from harness.record import RunRecord, read_outputs
from harness.run import execute
from harness.scoring.base import Scorer
from harness.signing.signers import Signer
from harness.signing.verify import Trusted


@dataclass(frozen=True)
class Evaluation:
    """A verified run of the diagnosed package and model, with its per-sample verdicts."""

    dossier: Dossier
    entry: Entry
    record: RunRecord
    verdicts: dict[str, str]
    made: bool
    """True when the diagnosis ran it (no earlier run of this seal and model covered the prompts)."""
    key_created: Path | None = None


def find_evaluation(dossier: Dossier, plan: RunPlan, model_digest: str, trusted: Trusted) -> Evaluation | None:
    """The latest complete run of ``plan``'s seal on the model ``model_digest`` whose outputs
    cover every sample of ``plan``, verified (signature, signer, digests); None if there is none.

    A candidate that does not verify raises (a diagnosis never explains an unverified run)."""
    seal = plan.package.seal.seal if plan.package.seal else None
    wanted = {s.id for s in plan.samples}
    for entry in reversed(dossier.runs()):
        if entry.seal != seal or entry.model_digest != model_digest or entry.status != "complete":
            continue
        root = dossier.root
        record_path, bundle_path, outputs_path = (entry_file(root, ref.path)
                                                  for ref in (entry.record, entry.bundle, entry.outputs))
        verified = verify_run_files(record_path, bundle_path, outputs_path, trusted)
        verdicts = {str(x["id"]): str(x["verdict"]) for x in read_outputs(outputs_path)}
        if wanted <= verdicts.keys():
            return Evaluation(dossier=dossier, entry=entry, record=verified.record, verdicts=verdicts, made=False)
    return None


def evaluation_for(
    plan: RunPlan, backend: Backend, scorer: Scorer, *, dossiers_dir: Path | None, signer: Signer,
    trusted: Trusted, log: Callable[[str], None],
) -> Evaluation:
    """The run to explain: found (:func:`find_evaluation`), or made now with ``plan`` and the
    loaded ``backend``, signed by ``signer`` and appended to the dossier like any run."""
    m = plan.package.manifest
    dossier = Dossier.for_package(m.name, dossiers_dir)
    found = find_evaluation(dossier, plan, backend.identity.digest, trusted)
    if found is not None:
        log(f"explaining run {found.record.run_id} (entry {found.entry.seq}) of {m.name}")
        return found
    log(f"no run of {m.name} (this seal) on this model covers these prompts: running the evaluation first")
    result = execute(plan, backend, scorer, dossiers_dir=dossiers_dir, signer=signer)
    verdicts = {str(x["id"]): str(x["verdict"]) for x in read_outputs(result.dossier.root / result.entry.outputs.path)}
    log(f"evaluation run {result.record.run_id} recorded as entry {result.entry.seq}")
    return Evaluation(dossier=result.dossier, entry=result.entry, record=result.record, verdicts=verdicts, made=True,
                      key_created=result.key_created)
