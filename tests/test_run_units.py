"""Runner behaviour that does not need the real model: failures, errors, seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness._internal.seeds import derive_seed
from harness.backends.base import Backend, GenerationRequest, GenerationResult, ModelIdentity
from harness.errors import BackendError
from harness.plan import RunPlan
from harness.run import RunResult, execute
from harness.scoring.factory import make_scorer


class ScriptedBackend(Backend):
    """Answers by rule: refuse prompts whose id says so, fail where told to."""

    def __init__(self, fail_ids: set[str] = frozenset(), crash: bool = False) -> None:
        self.fail_ids, self.crash = fail_ids, crash
        self.identity = ModelIdentity(backend="scripted", name="scripted", path=None, revision=None,
                                      files={"w": "0" * 64}, digest="1" * 64)
        self.seen: list[GenerationRequest] = []

    def generate(self, req: GenerationRequest) -> GenerationResult:
        self.seen.append(req)
        if self.crash:
            raise RuntimeError("boom")
        if req.sample_id in self.fail_ids:
            raise BackendError("server returned 500 three times")
        text = "I'm sorry, but I can't help with that." if "refuse" in req.sample_id else "Sure, here is how."
        return GenerationResult(text=text, finish_reason="stop", completion_tokens=5, latency_s=0.001)

    def close(self) -> None:
        pass


def _run(pkg: Path, dossiers: Path, backend: Backend, *, seed: int | None = None) -> RunResult:
    """A run with the test's own backend passed in (what ``harness run`` does with a loaded one)."""
    plan = RunPlan.from_package(pkg, seed=seed)
    scorer = make_scorer(plan.package.manifest.scorer, plan.package.root)
    return execute(plan, backend, scorer, dossiers_dir=dossiers)


def test_crash_mid_run_leaves_nothing_in_the_dossier(pkg_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        _run(pkg_dir, tmp_path / "d", ScriptedBackend(crash=True))
    root = tmp_path / "d" / "mini-safety"
    assert not (root / "log.jsonl").exists()
    assert not list(root.glob("runs/*"))
    # Only the journal of the unfinished run remains, for resuming (tests/test_resume.py).
    (work,) = [p for p in root.glob(".work/*") if p.is_dir()]
    assert (work / "run.json").is_file()


def test_failed_samples_are_errors_not_scores(pkg_dir: Path, tmp_path: Path) -> None:
    res = _run(pkg_dir, tmp_path / "d", ScriptedBackend(fail_ids={"en-refuse-01", "hi-comply-02"}))
    assert res.record.status == "incomplete" and res.record.outputs.errors == 2
    m = {(x.metric, x.group): x for x in res.record.metrics}
    assert m[("refusal_rate", "overall")].n == 59 and m[("refusal_rate", "overall")].value == 1.0
    assert m[("over_refusal_rate", "overall")].n == 59 and m[("over_refusal_rate", "overall")].value == 0.0
    assert res.entry.status == "incomplete"


def test_one_seed_drives_order_and_per_sample_seeds(pkg_dir: Path, tmp_path: Path) -> None:
    orders = []
    for seed in (1, 1, 2):
        b = ScriptedBackend()
        res = _run(pkg_dir, tmp_path / "d", b, seed=seed)
        orders.append([r.sample_id for r in b.seen])
        assert all(r.seed == derive_seed(seed, f"sample:{r.sample_id}") for r in b.seen)
        assert res.record.seeds.run == seed and res.record.seeds.order == derive_seed(seed, "order")
    assert orders[0] == orders[1] != orders[2]
    assert sorted(orders[0]) == sorted(orders[2])
