"""The scorer a manifest's ``[scorer]`` table (or a ``--scorer`` reference) describes."""

from __future__ import annotations

from pathlib import Path

from harness.backends.base import Backend
from harness.errors import ScorerError
from harness.packages.manifest import JudgeSpec, RefusalSpec
from harness.packages.package import resolve_package
from harness.packages.seal import check_package
from harness.scoring.behaviours import BINARY
from harness.scoring.judge import JudgeScorer
from harness.scoring.refusal import RefusalClassifier, load_patterns


def make_scorer(
    spec: RefusalSpec | JudgeSpec,
    package_root: Path | None = None,
    *,
    judge_model: str | Path | None = None,
    judge_endpoint: str | None = None,
    judge_backend: Backend | None = None,
    threads: int = 1,
) -> RefusalClassifier | JudgeScorer:
    """The scorer a manifest's ``[scorer]`` table describes.

    ``package_root`` is needed by a judge (its prompt template is a package file);
    ``judge_model`` is where the judge's weights are on this machine (the embedded
    tiny-chat model needs none); ``judge_endpoint`` is the server of a judge whose
    backend is "openai"; ``judge_backend`` injects an already loaded backend.
    """
    scorer: RefusalClassifier | JudgeScorer
    if isinstance(spec, RefusalSpec):
        scorer = RefusalClassifier(load_patterns(spec.patterns), behaviours=spec.behaviours or BINARY)
    elif isinstance(spec, JudgeSpec):
        scorer = JudgeScorer.from_spec(
            spec, package_root, model_path=judge_model, endpoint=judge_endpoint, backend=judge_backend,
            threads=threads,
        )
    else:
        raise ScorerError(f"unknown scorer kind {spec.kind!r}", hint="use kind = 'refusal' or 'judge'")
    if spec.cross_check is not None:
        # A judge cross-check takes the same judge options: one judge per run is what the CLI offers.
        scorer.cross_check = make_scorer(spec.cross_check, package_root, judge_model=judge_model,
                                         judge_endpoint=judge_endpoint, threads=threads)
    return scorer


def resolve_scorer(
    ref: str, *, judge_model: str | Path | None = None, judge_endpoint: str | None = None, threads: int = 1,
    packages_dir: Path | None = None, behaviours: tuple[str, ...] = BINARY,
) -> RefusalClassifier | JudgeScorer:
    """``refusal-patterns@X`` (a built-in pattern set) or a package name / folder (its scorer).

    A package must match its seal: a judge validated from an altered template would
    vouch for a scorer nobody runs. ``behaviours`` applies to a built-in pattern set
    (rescoring a three-way package); a package's scorer takes the package's own.
    """
    if ref.startswith("refusal-patterns@"):
        return RefusalClassifier(load_patterns(ref), behaviours=behaviours)
    pkg = check_package(resolve_package(ref, packages_dir))
    return make_scorer(pkg.manifest.scorer, pkg.root, judge_model=judge_model, judge_endpoint=judge_endpoint,
                       threads=threads)
