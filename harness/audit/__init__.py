"""Audits of recorded runs: reproduce them, re-score them, review them, move baselines, check claims;
label their uncertain answers, adjudicate them, and hold their numbers until review is done.

Each starts from an :class:`~harness.audit.original.Original` (a run whose whole dossier
verifies under the auditor's trust policy) and leaves a signed dossier entry, except
claim checks, which write a report.
"""
