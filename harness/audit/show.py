"""What a model said: the samples of a verified run, with their prompts (``harness show``).

``outputs.jsonl`` keeps each prompt's digest, not its text (the text belongs to the
package, under its license). To show a prompt, the run is verified first, then the
package is found by the record's seal and its data verified, and each prompt's text is
checked against the digest the run recorded: what is shown is what the model was asked.
Without the package the answers are still shown, with the prompt marked unavailable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness._internal.hashing import sha256_bytes
from harness.dossier.refs import run_files_of
from harness.dossier.runs import verify_record
from harness.errors import HarnessError
from harness.packages.archive import find_package
from harness.packages.data import load_samples, resolve_sources
from harness.record import RunRecord, read_outputs
from harness.signing.verify import Trusted


@dataclass(frozen=True)
class Filters:
    """Which samples to show: every given field must match."""

    sample: str | None = None
    language: str | None = None
    category: str | None = None
    verdict: str | None = None
    flipped_against: str | Path | None = None
    """Another run (a reference): only samples whose verdict differs between the two."""


@dataclass(frozen=True)
class SampleView:
    """One sample as ``harness show`` prints it (``as_dict`` is its ``--json`` form)."""

    id: str
    language: str
    category: str
    expected: str
    verdict: str
    response: str | None
    prompt: str | None
    """The prompt text, checked against the run's digest; None when the package was not found."""
    finish_reason: str | None = None
    error: str | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    other_verdict: str | None = None
    """With ``flipped_against``: the verdict of the other run."""
    uncertain_reason: str | None = None
    """Why the scorer marked this verdict uncertain (docs/uncertainty.md); None: not marked."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShowResult:
    record: RunRecord
    signer: str
    samples: list[SampleView]
    total: int
    """Samples in the run (before filtering)."""
    prompts: str
    """Where the prompt texts came from, or why they are missing."""

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.record.run_id, "package": self.record.package.name, "signer": self.signer,
                "subset": self.record.is_subset, "total": self.total, "shown": len(self.samples),
                "prompts": self.prompts, "samples": [s.as_dict() for s in self.samples]}


def _prompts(record: RunRecord, package: str | Path | None, archive: Path | None,
             mirror: Path | None) -> tuple[dict[str, str], str]:
    """{sample id: prompt text} from the verified package of ``record``, and where it came from."""
    try:
        pkg = find_package(record.package.seal, record.package.name, package=package, archive=archive)
        samples = load_samples(pkg, resolve_sources(pkg, mirror))
    except HarnessError as e:
        return {}, f"unavailable: {e.message}"
    return {s.id: s.prompt for s in samples}, f"from package {pkg.name} at {pkg.root} (seal checked)"


def _matches(line: dict[str, Any], f: Filters) -> bool:
    return all(want is None or line.get(key) == want for key, want in
               (("id", f.sample), ("language", f.language), ("category", f.category), ("verdict", f.verdict)))


def show_run(
    ref: str | Path, filters: Filters = Filters(), *, trusted: Trusted | None = None,
    dossiers_dir: Path | None = None, package: str | Path | None = None, archive: Path | None = None,
    mirror: Path | None = None,
) -> ShowResult:
    """The samples of run ``ref`` that match ``filters``, with their prompts.

    Both runs are verified (signature, signer, digests) before anything is read; a
    sample id that the run does not have is an error (exit 2), not an empty result.
    """
    res = verify_record(ref, trusted, dossiers_dir=dossiers_dir)
    _, _, outputs = run_files_of(str(ref), dossiers_dir)
    lines = list(read_outputs(outputs))
    other: dict[str, str] | None = None
    if filters.flipped_against is not None:
        verify_record(filters.flipped_against, trusted, dossiers_dir=dossiers_dir)
        _, _, other_outputs = run_files_of(str(filters.flipped_against), dossiers_dir)
        other = {x["id"]: x["verdict"] for x in read_outputs(other_outputs)}
    if filters.sample is not None and not any(x["id"] == filters.sample for x in lines):
        raise HarnessError(f"run {res.record.run_id} has no sample {filters.sample!r}",
                           hint="`harness show REF --json` lists the run's sample ids")
    chosen = [x for x in lines if _matches(x, filters)
              and (other is None or (x["id"] in other and other[x["id"]] != x["verdict"]))]
    texts, where = _prompts(res.record, package, archive, mirror) if chosen else ({}, "not needed")
    views = [_view(x, texts, other) for x in sorted(chosen, key=lambda x: x["id"])]
    return ShowResult(record=res.record, signer=res.signer, samples=views, total=len(lines), prompts=where)


def _view(line: dict[str, Any], texts: dict[str, str], other: dict[str, str] | None) -> SampleView:
    text = texts.get(line["id"])
    if text is not None and sha256_bytes(text.encode()) != line.get("prompt_sha256"):
        text = None  # never show a prompt the model was not asked
    response = line.get("response")
    return SampleView(
        id=line["id"], language=line["language"], category=line["category"], expected=line["expected"],
        verdict=line["verdict"], response=response if isinstance(response, str) else None, prompt=text,
        finish_reason=line.get("finish_reason"), error=line.get("error"), timing=dict(line.get("timing") or {}),
        other_verdict=None if other is None else other.get(line["id"]),
        uncertain_reason=str(line.get("uncertain_reason") or "uncertain") if line.get("uncertain") is True else None,
    )


def rows(views: Iterable[SampleView]) -> list[dict[str, Any]]:
    """The samples as a list of flat dicts (``harness.to_rows`` / a DataFrame)."""
    return [{k: v for k, v in s.as_dict().items() if k != "timing"} | {f"timing_{k}": v for k, v in s.timing.items()}
            for s in views]
