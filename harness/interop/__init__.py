"""Speaking other tools' formats: exports of verified runs (and reproduction verdicts), imports.

Modules: :mod:`.common` (a run verified before anything is exported), :mod:`.eval_result`
(the in-toto eval-result predicate, signed), :mod:`.vsa` (SLSA verification summaries of
reproductions, signed), :mod:`.eee` (Every Eval Ever), :mod:`.tables` (tidy CSV/JSONL),
:mod:`.inspect_log` (Inspect ``.eval`` logs, written by inspect-ai's own writer),
:mod:`.export` (``harness export``), :mod:`.imported` (``harness import inspect``: another
tool's result signed into a dossier as *imported*). docs/interop.md maps every field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.interop.common import EXPORT_FORMATS, VerifiedRun, load_verified
    from harness.interop.eval_result import PREDICATE_TYPE_EVAL_RESULT, verify_eval_result
    from harness.interop.export import ExportResult, export
    from harness.interop.vsa import PREDICATE_TYPE_VSA, verify_vsa

__all__ = ["EXPORT_FORMATS", "ExportResult", "PREDICATE_TYPE_EVAL_RESULT", "PREDICATE_TYPE_VSA", "VerifiedRun",
           "export", "load_verified", "verify_eval_result", "verify_vsa"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "EXPORT_FORMATS": "harness.interop.common",
    "ExportResult": "harness.interop.export",
    "PREDICATE_TYPE_EVAL_RESULT": "harness.interop.eval_result",
    "PREDICATE_TYPE_VSA": "harness.interop.vsa",
    "VerifiedRun": "harness.interop.common",
    "export": "harness.interop.export",
    "load_verified": "harness.interop.common",
    "verify_eval_result": "harness.interop.eval_result",
    "verify_vsa": "harness.interop.vsa",
})
