"""White-box diagnosis of an evaluation: why a model refuses in one language and not in another.

:func:`~harness.diagnose.diagnosis.diagnose` (``harness diagnose``) reads a model's
activations on exactly an evaluation run's sealed prompts, chat template and seeds,
measures per language and layer how harmful and harmless prompts separate, compares that
with what the model did, intervenes on the reference language's refusal direction, and
appends a signed ``diagnosis`` entry to the package's dossier (docs/diagnosis.md).
:mod:`.probes` is the arithmetic (numpy only), :mod:`.gap` the statistics and the
classification rule, :mod:`.hooks` the forward hooks, :mod:`.evaluation` the run explained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.diagnose.diagnosis import DiagnoseOptions, DiagnosisResult, diagnose
    from harness.errors import DiagnoseError

_HOMES = {
    "DiagnoseError": "harness.errors",
    "DiagnoseOptions": "harness.diagnose.diagnosis",
    "DiagnosisResult": "harness.diagnose.diagnosis",
    "diagnose": "harness.diagnose.diagnosis",
}

__all__ = ["DiagnoseError", "DiagnoseOptions", "DiagnosisResult", "diagnose"]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
