"""Suites: many packages x many models in one command, gated as one, signed as one.

Modules, bottom up: :mod:`.file` (the suite file, TOML, docs/suite-format.md),
:mod:`.record` (the signed suite record: every run by record digest and dossier entry,
and the gate), :mod:`.state` (resuming an interrupted suite), :mod:`.gate` (required
baselines and acceptance criteria, decided on each run's interval), :mod:`.run`
(``harness suite run``), :mod:`.verify` (``harness verify`` of a suite record) and
:mod:`.reproduce` (``harness reproduce`` of a suite record).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.suite.file import SuiteFile, load_suite
    from harness.suite.record import SuiteRecord, parse_suite_record
    from harness.suite.reproduce import SuiteReproduction, reproduce_suite
    from harness.suite.run import SuiteOptions, SuiteResult, run_suite
    from harness.suite.verify import SuiteVerification, verify_suite

__all__ = [
    "SuiteFile",
    "SuiteOptions",
    "SuiteRecord",
    "SuiteReproduction",
    "SuiteResult",
    "SuiteVerification",
    "load_suite",
    "parse_suite_record",
    "reproduce_suite",
    "run_suite",
    "verify_suite",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "SuiteFile": "harness.suite.file",
    "load_suite": "harness.suite.file",
    "SuiteRecord": "harness.suite.record",
    "parse_suite_record": "harness.suite.record",
    "SuiteReproduction": "harness.suite.reproduce",
    "reproduce_suite": "harness.suite.reproduce",
    "SuiteOptions": "harness.suite.run",
    "SuiteResult": "harness.suite.run",
    "run_suite": "harness.suite.run",
    "SuiteVerification": "harness.suite.verify",
    "verify_suite": "harness.suite.verify",
})
