"""The dossier: per package, an append-only, hash-chained log of signed runs and events.

Modules, bottom up: :mod:`.documents` (the signed event documents: reproductions,
rescores, baseline changes, reviews, labels and adjudications, whose parts are in
:mod:`.review_details`), :mod:`.events` (signing and verifying them),
:mod:`.tail` (the log's last line, repairing an interrupted append), :mod:`.log`
(entries, reading and appending), :mod:`.checkpoint` (signed checkpoints: the Merkle
root of the whole log as a C2SP signed note), :mod:`.witness` (the checkpoints a
verifier remembers), :mod:`.runs` (verifying one run's files), :mod:`.verify` (the
chain, the checkpoint and every entry's signature and files), :mod:`.refs`
(``PACKAGE@N`` and record paths).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.dossier.checkpoint import Checkpoint, TreeHead
    from harness.dossier.documents import EventRecord
    from harness.dossier.log import Dossier, Entry, EventEntry
    from harness.dossier.verify import DossierReport, Problem, ProblemKind, verify_dossier
    from harness.dossier.witness import CheckpointMemory

__all__ = [
    "Checkpoint",
    "CheckpointMemory",
    "Dossier",
    "DossierReport",
    "Entry",
    "EventEntry",
    "EventRecord",
    "Problem",
    "ProblemKind",
    "TreeHead",
    "verify_dossier",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Checkpoint": "harness.dossier.checkpoint",
    "CheckpointMemory": "harness.dossier.witness",
    "Dossier": "harness.dossier.log",
    "DossierReport": "harness.dossier.verify",
    "Entry": "harness.dossier.log",
    "EventEntry": "harness.dossier.log",
    "EventRecord": "harness.dossier.documents",
    "Problem": "harness.dossier.verify",
    "ProblemKind": "harness.dossier.verify",
    "TreeHead": "harness.dossier.checkpoint",
    "verify_dossier": "harness.dossier.verify",
})
