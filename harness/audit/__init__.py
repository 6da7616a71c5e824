"""Audits of recorded runs: reproduce them, re-score them, review them, move baselines, check claims.

Each starts from an :class:`~harness.audit.original.Original` (a run whose whole dossier
verifies under the auditor's trust policy) and leaves a signed dossier entry, except
claim checks, which write a report.
"""
