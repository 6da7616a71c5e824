"""What every export starts from: a run verified before any number leaves the harness.

An export never reads a record it has not verified: :func:`load_verified` checks the
run's signature, that the verifier's trust store or policy accepts its signer, and every
digest tying record, outputs and bundle together (:func:`harness.dossier.runs.verify_record`),
then reads the outputs lines from the verified file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from harness._internal.files import atomic_write
from harness._internal.hashing import sha256_bytes
from harness.dossier.refs import run_files_of
from harness.dossier.runs import VerifyResult, verify_record
from harness.errors import HarnessError
from harness.record import OUTPUTS_NAME, RECORD_NAME, RunRecord, read_outputs
from harness.signing.verify import Trusted

HARNESS_URI: Final = "https://github.com/llm-safety-harness/harness"
"""The harness as an in-toto ``verifier.id`` / SLSA verifier id (a TypeURI)."""
HARNESS_NAME: Final = "llm-safety-harness"

ExportFormat = Literal["eval-result", "vsa", "every-eval-ever", "csv", "jsonl", "inspect"]
EXPORT_FORMATS: Final[tuple[ExportFormat, ...]] = ("eval-result", "vsa", "every-eval-ever", "csv", "jsonl", "inspect")


@dataclass(frozen=True)
class VerifiedRun:
    """A run whose signature, signer and digests checked, with its files and answers."""

    verified: VerifyResult
    record_path: Path
    bundle_path: Path
    outputs_path: Path
    lines: list[dict[str, Any]]

    @property
    def record(self) -> RunRecord:
        return self.verified.record

    @property
    def subjects(self) -> dict[str, str]:
        """The files our own run bundle signs ({name: sha256}): what exported attestations bind to."""
        return {RECORD_NAME: self.verified.subjects[RECORD_NAME], OUTPUTS_NAME: self.verified.subjects[OUTPUTS_NAME]}


def load_verified(ref: str | Path, trusted: Trusted | None = None, *, dossiers_dir: Path | None = None) -> VerifiedRun:
    """Verify run ``ref`` (a record path, a run folder or ``PACKAGE@N``) and read its answers."""
    verified = verify_record(ref, trusted, dossiers_dir=dossiers_dir)
    record_path, bundle_path, outputs_path = run_files_of(str(ref), dossiers_dir)
    lines = sorted(read_outputs(outputs_path), key=lambda line: str(line.get("id")))
    return VerifiedRun(verified, record_path, bundle_path, outputs_path, lines)


def checked_prompts(run: VerifiedRun, mirror: Path | None = None) -> tuple[dict[str, str], str]:
    """{sample id: prompt text} for the run's samples whose text, read from the package found by
    the record's seal (its data verified), has the digest the run recorded; and where they
    came from, or why there are none (the record keeps only each prompt's sha256)."""
    from harness.packages.archive import find_package
    from harness.packages.data import load_samples, resolve_sources

    rec = run.record
    try:
        pkg = find_package(rec.package.seal, rec.package.name)
        texts = {s.id: s.prompt for s in load_samples(pkg, resolve_sources(pkg, mirror))}
    except HarnessError as e:
        return {}, f"unavailable: {e.message}"
    recorded = {str(line.get("id")): line.get("prompt_sha256") for line in run.lines}
    return ({sid: text for sid, text in texts.items() if recorded.get(sid) == sha256_bytes(text.encode())},
            f"from package {rec.package.name} (seal checked; each prompt checked against its recorded sha256)")


def metric_label(metric: str, group: str) -> str:
    """``refusal_rate`` for the overall group, ``refusal_rate[language:hi]`` for another."""
    return metric if group == "overall" else f"{metric}[{group}]"


def write_out(path: Path, data: bytes) -> Path:
    """Write an export atomically (a crash leaves the old file or the new one, never half)."""
    atomic_write(path, data)
    return path
