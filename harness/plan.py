"""The run plan: everything a run will do, fixed before a model is loaded.

A plan is built either from a package and the caller's overrides (``harness run``) or
from a signed record (``harness reproduce``: the recorded parameters, seeds and sample
subset), and then executed with a backend and a scorer that are passed in
(:func:`harness.run.execute`). Everything random in the run derives from the plan's one
run seed by one rule (:mod:`harness._internal.seeds`), which the record states.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness._internal.clock import now
from harness._internal.seeds import SEED_RULE, derive_seed
from harness.environment import LockRef, environment_match
from harness.errors import HarnessError, SealError
from harness.packages.data import Sample, VerifiedSource, load_samples, resolve_sources
from harness.packages.package import Package, resolve_package
from harness.packages.seal import check_package, summarize
from harness.packages.subset import (
    SubsetError,
    apply_filters,
    check_limit,
    ids_digest,
    normalize_filters,
    read_id_file,
    select_ids,
    stratified,
)
from harness.record import GenerationParams, Overrides, RunRecord, SeedPlan

PURPOSES = ("run", "reproduction")
"""Why a run is made; part of its journal key, so a reproduction never continues (or is
continued by) an unfinished ordinary run of the same configuration."""


SEED_PURPOSES = ("python", "numpy", "torch", "order", "sample:<id>", "subset:<id>", "subset-stratum:<path>")
"""Every purpose a run derives a seed for: the generators, the request order, each request,
and a ``--limit`` draw (the rank of each sample, and the tie-break between strata). The
intervals and tests are exact and take no seed."""


def seed_plan(run_seed: int) -> SeedPlan:
    """Every seed of a run, derived from the run seed (the record's ``seeds`` section)."""
    return SeedPlan(
        run=run_seed,
        python=derive_seed(run_seed, "python"),
        numpy=derive_seed(run_seed, "numpy"),
        torch=derive_seed(run_seed, "torch"),
        order=derive_seed(run_seed, "order"),
        sample_rule=SEED_RULE.replace("{purpose}", "sample:{id}"),
        purposes=SEED_PURPOSES,
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

    @property
    def is_subset(self) -> bool:
        return self.overrides.selects_subset()

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
        sample_ids: Sequence[str] | Path | None = None,
        filters: Sequence[str] = (),
        subset_seed: int | None = None,
        purpose: str = "run",
    ) -> RunPlan:
        """Check the package against its seal, verify its data, and fix the parameters.

        Overrides equal to the package's own values are not overrides; those that differ
        are recorded as such. A subset is chosen in this order: ``sample_ids`` (a list,
        or a file of one id per line), then ``filters`` (``FIELD=VALUE``), then ``limit``
        (a stratified draw fixed by the run seed, or by ``subset_seed`` when a re-run with
        another seed must keep the original's subset; :mod:`harness.packages.subset`).
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
        if limit is not None:
            check_limit(limit)
        changed: dict[str, int | float | str | tuple[str, ...]] = {}
        run_seed = m.seed
        if seed is not None and seed != m.seed:
            run_seed = changed["seed"] = seed
        if sample_ids is not None:
            ids = read_id_file(sample_ids) if isinstance(sample_ids, Path) else list(sample_ids)
            samples = select_ids(samples, ids)
            changed["sample_ids"] = ids_digest(ids)
        if filters:
            samples = apply_filters(samples, filters)
            if not samples:
                raise SubsetError(f"no sample matches every filter ({', '.join(filters)})",
                                  hint="filters on different fields must all match; drop one")
            changed["filters"] = normalize_filters(filters)
        if limit is not None:
            selection = stratified(samples, limit, run_seed if subset_seed is None else subset_seed)
            notices = (*notices, *selection.notices)
            if selection.is_subset:
                samples = list(selection.samples)
                changed["limit"] = limit
        gen = {"max_tokens": m.generation.max_tokens, "temperature": m.generation.temperature,
               "top_p": m.generation.top_p}
        for key, value in (("max_tokens", max_tokens), ("temperature", temperature), ("top_p", top_p)):
            if value is not None and value != gen[key]:
                gen[key] = changed[key] = value
        return cls(
            package=pkg,
            sources=tuple(sources),
            samples=tuple(samples),
            generation=GenerationParams(max_tokens=int(gen["max_tokens"]), temperature=float(gen["temperature"]),
                                        top_p=float(gen["top_p"]), stop=m.generation.stop),
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
        sample_ids: Sequence[str] | None = None,
    ) -> RunPlan:
        """The plan that re-runs ``record`` with ``package`` (which must have the recorded seal):
        the recorded parameters, run seed (or ``seed``, a deliberate what-if) and subset.

        A ``--sample-ids`` run records only the digest of its ids: pass the ids (the
        original's outputs hold them) as ``sample_ids``; they must match that digest.
        """
        if package.seal is None or package.seal.seal != record.package.seal:
            raise SealError(
                f"package {package.name} at {package.root} is not the one run {record.run_id} used "
                f"(seal {record.package.seal})",
                hint="find the package by the record's seal (harness.packages.archive.find_package)",
            )
        gen = record.generation
        return cls.from_package(
            package, mirror=mirror, seed=record.seeds.run if seed is None else seed, max_tokens=gen.max_tokens,
            temperature=gen.temperature, top_p=gen.top_p, limit=record.overrides.limit,
            sample_ids=_recorded_ids(record, sample_ids), filters=record.overrides.filters or (),
            subset_seed=record.seeds.run, purpose="reproduction",
        )


def _recorded_ids(record: RunRecord, ids: Sequence[str] | None) -> Sequence[str] | None:
    """The ids of a ``--sample-ids`` record, checked against its digest; None for other runs."""
    wanted = record.overrides.sample_ids
    if wanted is None:
        return None
    if ids is None:
        raise SubsetError(f"run {record.run_id} used --sample-ids: its ids are needed to re-run it",
                          hint="pass the ids of its outputs (harness reproduce does this itself)")
    if ids_digest(ids) != wanted:
        raise SealError(f"the ids given do not match the digest run {record.run_id} recorded for its --sample-ids",
                        hint="take the ids from the run's own outputs file")
    return ids
