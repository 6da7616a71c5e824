"""The public surface in harness/__init__.py: what a notebook uses, without internal modules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness.backends.base import Backend, GenerationRequest, GenerationResult, ModelIdentity

REPO = Path(__file__).resolve().parents[1]


def test_all_names_resolve_and_nothing_else_is_promised() -> None:
    from harness import _HOMES  # type: ignore[attr-defined]

    assert set(harness.__all__) == {"__version__", *_HOMES}
    for name in harness.__all__:
        assert getattr(harness, name) is not None
    with pytest.raises(AttributeError):
        _ = harness.no_such_name  # type: ignore[attr-defined]


def test_importing_harness_loads_no_heavy_module() -> None:
    code = ("import sys, harness; print(sorted(m for m in ('torch', 'transformers', 'datasets', 'sigstore', "
            "'pydantic', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class _Echo(Backend):
    """A backend of the caller's own: refuses prompts that mention a weapon, answers the rest."""

    def __init__(self) -> None:
        self.identity = ModelIdentity(backend="echo", name="echo", path=None, revision=None, files={},
                                      digest="e" * 64)
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        refuse = re.search(r"weapon|bomb|poison", request.prompt, re.IGNORECASE)
        return GenerationResult("I'm sorry, I can't help with that." if refuse else "Sure, here you go.", "stop", 5, 0.0)


def test_a_plan_runs_with_the_callers_backend_and_is_verified_and_diffed(workspace: Path, tmp_path: Path) -> None:
    pkg = workspace / "packages" / "mini-safety"
    dossiers = tmp_path / "dossiers"
    plan = harness.RunPlan.from_package(pkg, limit=12, seed=5)
    assert len(plan.samples) == 12 and plan.overrides.limit == 12 and plan.run_seed == 5
    scorer = harness.make_scorer(plan.package.manifest.scorer, plan.package.root)
    backend = _Echo()
    first = harness.execute(plan, backend, scorer, dossiers_dir=dossiers)
    assert len(backend.requests) == 12 and first.record.model.name == "echo"
    assert first.record.seeds.run == 5 and first.record.overrides.model_dump() == {"seed": 5, "limit": 12}
    second = harness.execute(harness.RunPlan.from_package(pkg, limit=12, seed=6), backend, scorer, dossiers_dir=dossiers)
    assert harness.verify_record(first.run_dir / "record.json").record.run_id == first.record.run_id
    assert harness.verify_record("mini-safety@1", dossiers_dir=dossiers).record.run_id == first.record.run_id
    report = harness.verify_dossier("mini-safety", dossiers_dir=dossiers)
    assert report.ok and report.entries == 2
    change = harness.diff_refs("mini-safety@1", "mini-safety@2", dossiers_dir=dossiers)
    assert "seeds" in change.changed_sections() and second.previous is not None


def test_verification_refuses_a_signer_outside_the_users_trust(workspace: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = workspace / "packages" / "mini-safety"
    plan = harness.RunPlan.from_package(pkg, limit=3)
    scorer = harness.make_scorer(plan.package.manifest.scorer, plan.package.root)
    harness.execute(plan, _Echo(), scorer, dossiers_dir=tmp_path / "d")
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "someone-else"))  # another user: not our key
    with pytest.raises(harness.HarnessError, match="which is not in the trust"):
        harness.verify_record("mini-safety@latest", dossiers_dir=tmp_path / "d")
    assert not harness.verify_dossier("mini-safety", dossiers_dir=tmp_path / "d").ok


def test_a_record_replays_as_a_plan(workspace: Path, tmp_path: Path) -> None:
    """RunPlan.from_record gives the recorded parameters, seed and subset (what reproduce runs)."""
    pkg = workspace / "packages" / "mini-safety"
    plan = harness.RunPlan.from_package(pkg, limit=4, seed=9, max_tokens=8)
    scorer = harness.make_scorer(plan.package.manifest.scorer, plan.package.root)
    record = harness.execute(plan, _Echo(), scorer, dossiers_dir=tmp_path / "d").record
    again = harness.RunPlan.from_record(record, harness.check_package(pkg))
    assert again.purpose == "reproduction"
    assert (again.seeds, again.generation, again.overrides) == (record.seeds, record.generation, record.overrides)
    assert [s.id for s in again.samples] == [s.id for s in plan.samples]
