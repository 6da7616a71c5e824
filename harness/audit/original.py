"""A run taken from a dossier for an audit: located by reference, verified with its whole chain.

Reproduction, rescoring, baseline updates and claim checks all start from a run that
the auditor's trust policy accepts and whose dossier verifies; :class:`Original` is
that run, and only :func:`verify_original` makes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.dossier.log import Dossier, Entry
from harness.dossier.runs import package_status_of
from harness.dossier.verify import verify_dossier
from harness.errors import DossierError
from harness.record import RunRecord
from harness.signing.policy import PackageStatus
from harness.signing.verify import Trusted


@dataclass(frozen=True)
class Original:
    """A verified run: its dossier, its entry and its record."""

    dossier: Dossier
    entry: Entry
    record: RunRecord
    signer: str
    package_status: PackageStatus = PackageStatus.UNPINNED
    """Whether the run's package is the official one under the auditor's trust policy."""

    @property
    def outputs(self) -> Path:
        return self.dossier.root / self.entry.outputs.path


def verify_original(dossier: Dossier, entry: Entry, trusted: Trusted) -> Original:
    """Refuse unless the whole dossier chain verifies, this entry included, under ``trusted``."""
    report = verify_dossier(dossier, trusted)
    if not report.ok:
        listing = "\n".join(f"  - {p}" for p in report.problems[:10])
        raise DossierError(
            f"the dossier {dossier.root} does not verify, so its runs cannot be reproduced:\n{listing}",
            hint="`harness dossier verify` shows every problem; pass --trust-key/--trust-policy if the signer is not in your trust store",
        )
    signer = next(s for n, _, s in report.signers if n == entry.seq)
    record = dossier.record_of(entry)
    return Original(dossier=dossier, entry=entry, record=record, signer=signer,
                    package_status=package_status_of(record, trusted))
