"""The dossier: per package, an append-only, hash-chained log of signed runs and events.

Modules, bottom up: :mod:`.documents` (the signed event documents: reproductions,
rescores, baseline changes, reviews), :mod:`.events` (signing and verifying them),
:mod:`.log` (entries, reading and appending), :mod:`.runs` (verifying one run's files),
:mod:`.verify` (the chain and every entry's signature and files), :mod:`.refs`
(``PACKAGE@N`` and record paths).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.dossier.documents import EventRecord
    from harness.dossier.log import Dossier, Entry, EventEntry
    from harness.dossier.verify import DossierReport, Problem, verify_dossier

__all__ = [
    "Dossier",
    "DossierReport",
    "Entry",
    "EventEntry",
    "EventRecord",
    "Problem",
    "verify_dossier",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Dossier": "harness.dossier.log",
    "DossierReport": "harness.dossier.verify",
    "Entry": "harness.dossier.log",
    "EventEntry": "harness.dossier.log",
    "EventRecord": "harness.dossier.documents",
    "Problem": "harness.dossier.verify",
    "verify_dossier": "harness.dossier.verify",
})
