"""The run plan: everything a run will do, fixed before a model is loaded.

A plan is built either from a package and the caller's overrides (``harness run``) or
from a signed record (``harness reproduce``: the recorded parameters, seeds and sample
subset), and then executed with a backend and a scorer that are passed in
(:func:`harness.run.execute`). Everything random in the run derives from the plan's one
run seed by one rule (:mod:`harness._internal.seeds`), which the record states.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from harness._internal.clock import now
from harness._internal.seeds import SEED_RULE, derive_seed
from harness.environment import LockRef, environment_match
from harness.errors import HarnessError, SealError
from harness.packages.data import Sample, VerifiedSource, load_samples, resolve_sources
from harness.packages.package import Package, resolve_package
from harness.packages.seal import check_package, summarize
from harness.record import GenerationParams, Overrides, RunRecord, SeedPlan

PURPOSES = ("run", "reproduction")
"""Why a run is made; part of its journal key, so a reproduction never continues (or is
continued by) an unfinished ordinary run of the same configuration."""


def seed_plan(run_seed: int) -> SeedPlan:
    """Every seed of a run, derived from the run seed (the record's ``seeds`` section)."""
    return SeedPlan(
        run=run_seed,
        python=derive_seed(run_seed, "python"),
        numpy=derive_seed(run_seed, "numpy"),
        torch=derive_seed(run_seed, "torch"),
        order=derive_seed(run_seed, "order"),
        sample_rule=SEED_RULE.replace("{purpose}", "sample:{id}"),
    )


@dataclass(frozen=True)
class RunPlan:
    """A checked package, its verified data and samples, and the run's parameters and seeds.

    Build one with :meth:`from_package` or :meth:`from_record`; the constructor trusts
    its arguments. ``samples`` is what the run generates for (the subset, if limited).
    """

    package: Package
    sources: tuple[VerifiedSource, ...]
    samples: tuple[Sample, ...]
    generation: GenerationParams
    seeds: SeedPlan
    overrides: Overrides
    environment: LockRef
    purpose: str = "run"
    notices: tuple[str, ...] = ()
    started_at: str = field(default_factory=now)
    started: float = field(default_factory=time.perf_counter, compare=False)
    """perf_counter() when the plan was made: the run's duration counts from here."""

    @property
    def run_seed(self) -> int:
        return self.seeds.run

    @property
    def limit(self) -> int | None:
        return self.overrides.limit

    @classmethod
    def from_package(
        cls,
        package: str | Path | Package,
        *,
        mirror: Path | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        limit: int | None = None,
        purpose: str = "run",
    ) -> RunPlan:
        """Check the package against its seal, verify its data, and fix the parameters.

        Overrides equal to the package's own values are not overrides; those that differ
        are recorded as such. ``limit`` runs the first N samples by id.
        """
        started_at, started = now(), time.perf_counter()
        if purpose not in PURPOSES:
            raise HarnessError(f"unknown run purpose {purpose!r}", hint=f"one of {', '.join(PURPOSES)}")
        pkg = check_package(package if isinstance(package, Package) else resolve_package(package))
        m = pkg.manifest
        notices = (m.usage_notice,) if m.usage_notice else ()
        env = environment_match(pkg.lockfile_path())
        sources = resolve_sources(pkg, mirror)
        samples = load_samples(pkg, sources)
        counted = summarize(samples)
        if pkg.seal is not None and counted != pkg.seal.summary:
            raise SealError(
                f"package {m.name}: the data holds {counted.samples} samples in {list(counted.languages)}, "
                f"the seal says {pkg.seal.summary.samples} in {list(pkg.seal.summary.languages)}",
                hint="the harness reads this data differently from when it was sealed; reseal after checking why",
            )
        if limit:
            samples = sorted(samples, key=lambda s: s.id)[:limit]
        changed: dict[str, int | float] = {}
        run_seed = m.seed
        if seed is not None and seed != m.seed:
            run_seed = changed["seed"] = seed
        gen = {"max_tokens": m.generation.max_tokens, "temperature": m.generation.temperature,
               "top_p": m.generation.top_p}
        for key, value in (("max_tokens", max_tokens), ("temperature", temperature), ("top_p", top_p)):
            if value is not None and value != gen[key]:
                gen[key] = changed[key] = value
        if limit:
            changed["limit"] = limit
        return cls(
            package=pkg,
            sources=tuple(sources),
            samples=tuple(samples),
            generation=GenerationParams(max_tokens=int(gen["max_tokens"]), temperature=gen["temperature"],
                                        top_p=gen["top_p"], stop=m.generation.stop),
            seeds=seed_plan(run_seed),
            overrides=Overrides(**changed),
            environment=env,
            purpose=purpose,
            notices=notices,
            started_at=started_at,
            started=started,
        )

    @classmethod
    def from_record(
        cls, record: RunRecord, package: Package, *, mirror: Path | None = None, seed: int | None = None,
    ) -> RunPlan:
        """The plan that re-runs ``record`` with ``package`` (which must have the recorded seal):
        the recorded parameters, run seed (or ``seed``, a deliberate what-if) and subset."""
        if package.seal is None or package.seal.seal != record.package.seal:
            raise SealError(
                f"package {package.name} at {package.root} is not the one run {record.run_id} used "
                f"(seal {record.package.seal})",
                hint="find the package by the record's seal (harness.packages.archive.find_package)",
            )
        gen = record.generation
        return cls.from_package(
            package, mirror=mirror, seed=record.seeds.run if seed is None else seed, max_tokens=gen.max_tokens,
            temperature=gen.temperature, top_p=gen.top_p, limit=record.overrides.limit, purpose="reproduction",
        )
