"""The dossier: per package, an append-only, hash-chained log of signed runs and events.

Modules: :mod:`.events` (signed event documents: reproductions, rescores, baseline
changes, reviews), :mod:`.log` (entries, reading and appending), :mod:`.verify` (the
chain and every entry's signature and files).
"""

from harness.dossier.events import EventRecord
from harness.dossier.log import Dossier, Entry, EventEntry
from harness.dossier.verify import DossierReport, Problem, verify_dossier

__all__ = ["Dossier", "DossierReport", "Entry", "EventEntry", "EventRecord", "Problem", "verify_dossier"]
