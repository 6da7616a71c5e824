"""``harness reproduce SUITE_RECORD``: reproduce every run a verified suite record lists.

Nothing new is decided here: the suite record is verified first (its signature and every
run it lists, :mod:`harness.suite.verify`), then each run is reproduced exactly as
``harness reproduce PACKAGE@N`` would (:func:`harness.audit.reproduce.reproduce`: its
own chain check, the package by seal, the recorded parameters and seeds, a signed
reproduction entry in its dossier), with the model reached the way the suite reached it
(the recorded local weights, the same endpoint, or vLLM launched with the same engine
arguments and the run's seed). The suite's verdict is the worst of the runs'
(:data:`SEVERITY`). Each run's model is opened afresh: reproduction favours fidelity to
``harness reproduce`` over the suite's shared servers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.audit import reproduce as rp
from harness.audit.environment import EnvironmentPlan, environment_plan
from harness.audit.original import Original, verify_original
from harness.dossier.log import Dossier, Entry
from harness.errors import HarnessError
from harness.packages.archive import find_package
from harness.packages.package import Package
from harness.signing.policy import resolve_trust
from harness.signing.verify import Trusted
from harness.suite.record import SuiteModel, SuiteRun
from harness.suite.verify import SuiteVerification, verify_suite

SEVERITY = (0, 4, 5, 3, 2, 1)
"""Exit codes from best to worst: reproduced, within tolerance, not reproduced, incomplete,
bad input, a verification failed. The suite exits with the worst of its runs."""

Rebuild = Callable[[SuiteRun, Original, Package, EnvironmentPlan], int]
"""Runs one reproduction in the environment rebuilt from the package's lockfile (the
command re-executes ``harness reproduce`` there) and returns its exit code."""


def worst(codes: list[int]) -> int:
    return max(codes, key=lambda c: SEVERITY.index(c) if c in SEVERITY else len(SEVERITY), default=0)


@dataclass
class RunReproduction:
    """One listed run: its reproduction, or the exit code and reason it has none here."""

    run: SuiteRun
    exit_code: int
    result: rp.ReproductionResult | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        r = self.result
        return {"package": self.run.package, "model": self.run.model, "run_id": self.run.run_id,
                "exit_code": self.exit_code, "verdict": r.verdict.value if r else None,
                "rerun": r.rerun.run_id if r else None, "entry": r.entry.seq if r else None,
                "not_exact_because": [x.message for x in r.reasons] if r else [], "message": self.message}


@dataclass
class SuiteReproduction:
    verification: SuiteVerification
    runs: list[RunReproduction] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if not self.verification.ok:
            return 1
        return worst([r.exit_code for r in self.runs])

    def as_dict(self) -> dict[str, Any]:
        v = self.verification
        return {"kind": "suite", "suite_id": v.record.suite_id, "name": v.record.name, "exit_code": self.exit_code,
                "verified": v.ok, "problems": [str(p) for p in v.problems], "runs": [r.as_dict() for r in self.runs]}


@dataclass
class SuiteReproduceOptions:
    env: Literal["auto", "current", "rebuild"] = "auto"
    mirror: Path | None = None
    threads: int = 1
    vllm_python: str | None = None
    progress: bool = False
    config_dir: Path | None = None
    log: Callable[[str], None] = field(default=lambda message: None)


def _options(model: SuiteModel | None, original: Original, opts: SuiteReproduceOptions,
             env: EnvironmentPlan) -> rp.ReproduceOptions:
    """How to reach the run's model again: as the suite did."""
    common: dict[str, Any] = {"mirror": opts.mirror, "threads": opts.threads, "progress": opts.progress,
                              "config_dir": opts.config_dir, "environment": env, "vllm_python": opts.vllm_python}
    if model is not None and model.endpoint:
        return rp.ReproduceOptions(endpoint=model.endpoint, model=model.served_model, **common)
    if model is not None and model.serve:
        return rp.ReproduceOptions(serve=model.serve, engine_args=model.engine_args,
                                   model=original.record.model.path, **common)
    return rp.ReproduceOptions(**common)


def reproduce_suite(ref: str | Path, trusted: Trusted | None = None, *, dossiers_dir: Path | None = None,
                    opts: SuiteReproduceOptions | None = None, rebuild: Rebuild | None = None) -> SuiteReproduction:
    """Verify the suite record, then reproduce each run; a run that cannot be reproduced
    here (no package with its seal, another model) gets that error's exit code."""
    opts = opts or SuiteReproduceOptions()
    trust = resolve_trust() if trusted is None else trusted
    verification = verify_suite(ref, trust, dossiers_dir=dossiers_dir)
    out = SuiteReproduction(verification=verification)
    if not verification.ok:
        return out
    models = {m.name: m for m in verification.record.models}
    for run in verification.record.runs:
        opts.log(f"reproducing {run.package} x {run.model} (run {run.run_id}, entry {run.seq})")
        try:
            dossier = Dossier.for_package(run.dossier, verification.dossiers)
            entry = entry_of(dossier, run.seq)
            assert entry is not None  # verify_suite found it
            original = verify_original(dossier, entry, trust)
            rec = original.record
            pkg = find_package(rec.package.seal, rec.package.name)
            env = environment_plan(pkg, opts.env)
            if env.rebuild:
                if rebuild is None:
                    out.runs.append(RunReproduction(run, 2, message="this environment differs from the package's "
                                                    "lockfile; run with --env current, or from the command line"))
                    continue
                code = rebuild(run, original, pkg, env)
                out.runs.append(RunReproduction(run, code, message=f"reproduced in the environment rebuilt from "
                                                f"{env.lockfile.name} (exit {code})"))
                continue
            result = rp.reproduce(_options(models.get(run.model), original, opts, env), original, pkg)
        except HarnessError as e:
            out.runs.append(RunReproduction(run, e.exit_code, message=e.message))
            opts.log(f"  {run.package} x {run.model}: {e.message}")
            continue
        out.runs.append(RunReproduction(run, result.exit_code, result=result))
        opts.log(f"  {run.package} x {run.model}: {result.verdict.value}")
    return out


def entry_of(dossier: Dossier, seq: int) -> Entry | None:
    return next((e for e in dossier.runs() if e.seq == seq), None)
