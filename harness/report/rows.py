"""Results as rows: a list of flat dicts, or a pandas DataFrame when pandas is installed.

Notebook users want a table they can filter and plot, not nested models. Every result
the public API returns converts the same way::

    import harness

    rows = harness.to_rows(harness.diff_refs("mini-safety@1", "mini-safety@latest"))
    df = harness.to_dataframe(harness.parse_record("dossiers/mini-safety/runs/<id>/record.json"))

pandas is not a dependency of the harness: :func:`to_dataframe` imports it when called
and says how to install it when it is missing.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Any

from pydantic import BaseModel

from harness.errors import HarnessError


def to_rows(result: Any) -> list[dict[str, Any]]:
    """The natural rows of ``result``.

    - a run record or a :class:`~harness.run.RunResult`: one row per metric and group;
    - a :class:`~harness.diff.DiffReport`: one row per metric delta;
    - a :class:`~harness.audit.gate.GateResult`: one row per baseline verdict;
    - a :class:`~harness.audit.show.ShowResult`: one row per sample;
    - a :class:`~harness.dossier.verify.DossierReport`: one row per problem;
    - a list of any of these rows' sources (models or dataclasses): one row each.
    """
    from harness.audit.gate import GateResult
    from harness.audit.show import ShowResult
    from harness.audit.show import rows as sample_rows
    from harness.diff import DiffReport
    from harness.dossier.verify import DossierReport
    from harness.record import RunRecord
    from harness.run import RunResult

    if isinstance(result, RunResult):
        result = result.record
    if isinstance(result, RunRecord):
        return [{"run_id": result.run_id, "package": result.package.name, "model": result.model.name,
                 "subset": result.is_subset, **m.model_dump(mode="json")} for m in result.metrics]
    if isinstance(result, DiffReport):
        return [{"run_a": result.run_a, "run_b": result.run_b, **asdict(m)} for m in result.metrics]
    if isinstance(result, GateResult):
        return [{"run_id": result.record.run_id, **v.model_dump(mode="json")} for v in result.verdicts]
    if isinstance(result, ShowResult):
        return [{"run_id": result.record.run_id, **r} for r in sample_rows(result.samples)]
    if isinstance(result, DossierReport):
        return [_flat(p) for p in result.problems]
    if isinstance(result, list | tuple):
        return [_flat(x) for x in result]
    raise HarnessError(f"cannot make rows of a {type(result).__name__}",
                       hint="pass a run record or result, a diff, a gate or show result, or a dossier report")


def _flat(x: Any) -> dict[str, Any]:
    if isinstance(x, BaseModel):
        out: dict[str, Any] = x.model_dump(mode="json")
        return out
    if is_dataclass(x) and not isinstance(x, type):
        return {k: (str(v) if not isinstance(v, str | int | float | bool | type(None)) else v)
                for k, v in asdict(x).items()}
    if isinstance(x, dict):
        return dict(x)
    raise HarnessError(f"cannot make a row of a {type(x).__name__}")


def to_dataframe(result: Any) -> Any:
    """:func:`to_rows` as a pandas DataFrame (pandas is optional: ``uv pip install pandas``)."""
    import importlib

    try:
        pd = importlib.import_module("pandas")  # optional: not a dependency, so not type-checked
    except ImportError:
        raise HarnessError("to_dataframe needs pandas, which is not installed (the harness does not depend on it)",
                           hint="install it in this environment (`uv pip install pandas`), or use to_rows()") from None
    return pd.DataFrame(to_rows(result))
