"""The release gate, subsets and exact baselines, end to end on the embedded model.

A gate that does not fail the command is not a gate: these tests run `harness run` and
`harness gate` as a CI job would and check their exit codes, then the subset options
and `harness baseline update` from a run identical to the baselines.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.plan import RunPlan
from harness.record import parse_record

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "legacy-da9ff4b"


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


@pytest.fixture
def ws(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("HARNESS_DOSSIERS", str(workspace / "dossiers"))
    return workspace


def test_a_failed_baseline_fails_the_command_and_the_gate(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--max-tokens 2 cuts the refusals short: refusal rate and accuracy FAIL, and `harness
    run` exits 7 (after the run is signed and in the dossier); --no-gate keeps 0; `harness
    gate` on the recorded run says the same from the record alone."""
    code, doc = _json(["run", "packages/mini-safety", "--max-tokens", "2", "--no-progress"], capsys)
    assert code == 7 and doc["gate"] == "FAIL"
    verdicts = {(b["metric"], b["group"]): b for b in doc["baselines"]}
    assert verdicts[("refusal_rate", "overall")]["verdict"] == "FAIL"
    assert verdicts[("refusal_rate", "overall")]["ci_high"] < 0.883 - 0.05
    assert all(b["min_detectable_change"] is not None for b in doc["baselines"])
    assert doc["ci_method"] == "clopper-pearson" and all(m["ci_method"] == "clopper-pearson" for m in doc["metrics"])

    assert main(["gate", "mini-safety@1"]) == 7
    err = capsys.readouterr()
    assert "gate FAILED" in err.out and "refusal_rate [overall] FAIL" in err.err
    code, gate = _json(["gate", "mini-safety@1"], capsys)
    assert code == 7 and gate["gate"] == "FAIL" and gate["baselines"] == doc["baselines"]

    code, doc = _json(["run", "packages/mini-safety", "--max-tokens", "2", "--no-gate", "--no-progress"], capsys)
    assert code == 0 and doc["gate"] == "FAIL"  # recorded as failing, but the command was told not to gate


def test_an_unchanged_model_passes_and_strict_makes_inconclusive_fail(ws: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The default package is too small to PASS a 5-point tolerance (its intervals are
    ~17 points wide): every baseline is INCONCLUSIVE, which passes unless --strict."""
    code, doc = _json(["run", "packages/mini-safety", "--no-progress"], capsys)
    assert code == 0 and doc["gate"] == "PASS"
    assert {b["verdict"] for b in doc["baselines"]} == {"INCONCLUSIVE"}
    assert main(["gate", "mini-safety@latest"]) == 0
    assert main(["gate", "mini-safety@latest", "--strict"]) == 7
    out = capsys.readouterr().out
    assert "INCONCLUSIVE" in out and "MDC" in out

    # baselines from a run identical to the one they were taken from: nothing changes
    pkg = ws / "packages" / "mini-safety"
    manifest, seal = (pkg / "manifest.toml").read_bytes(), (pkg / "seal.json").read_bytes()
    code, up = _json(["baseline", "update", "packages/mini-safety", "--from", "mini-safety@latest"], capsys)
    assert code == 0 and up["changed"] == 0 and up["entry"] is None and up["old_seal"] == up["new_seal"]
    assert (pkg / "manifest.toml").read_bytes() == manifest and (pkg / "seal.json").read_bytes() == seal


def test_baselines_are_stored_exactly_and_a_dry_run_writes_nothing(ws: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pkg = ws / "packages" / "mini-safety"
    text = (pkg / "manifest.toml").read_text()
    (pkg / "manifest.toml").write_text(text.replace("value = 0.883", "value = 0.5"))
    assert main(["package", "seal", str(pkg)]) == 0
    assert main(["run", str(pkg), "--no-progress", "--limit", "30", "--no-gate"]) == 0  # a subset: not a baseline
    assert main(["run", str(pkg), "--no-progress", "--no-gate"]) == 0
    capsys.readouterr()
    assert main(["baseline", "update", str(pkg), "--from", "mini-safety@1"]) == 2  # subsets never set baselines
    capsys.readouterr()

    before = {p: p.read_bytes() for p in (pkg / "manifest.toml", pkg / "seal.json")}
    code, dry = _json(["baseline", "update", str(pkg), "--from", "mini-safety@2", "--dry-run"], capsys)
    assert code == 0 and dry["dry_run"] and dry["changed"] == 1 and dry["entry"] is None
    assert dry["changes"] == [{"model": "tiny-chat", "metric": "refusal_rate", "group": "overall", "old": 0.5,
                               "new": 0.8833}]
    assert all(p.read_bytes() == b for p, b in before.items())

    code, up = _json(["baseline", "update", str(pkg), "--from", "mini-safety@2"], capsys)
    assert code == 0 and up["new_seal"] == dry["new_seal"] != up["old_seal"]  # the dry run told the truth
    new_text = (pkg / "manifest.toml").read_text()
    assert re.search(r"value = 0.8833\ntolerance = 0.05\nsuccesses = 53\nn = 60", new_text)
    # the run was made with the old seal: it cannot set baselines of the new package
    assert main(["baseline", "update", str(pkg), "--from", "mini-safety@2"]) == 1
    # the same run on the resealed package: exact counts, so nothing drifts by rounding
    assert main(["run", str(pkg), "--no-progress"]) == 0
    capsys.readouterr()
    code, again = _json(["baseline", "update", str(pkg), "--from", "mini-safety@latest"], capsys)
    assert code == 0 and again["changed"] == 0 and again["new_seal"] == again["old_seal"] == up["new_seal"]


def test_limit_draws_a_stratified_subset_marked_everywhere(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, full = _json(["run", "packages/mini-safety", "--no-progress"], capsys)
    code, doc = _json(["run", "packages/mini-safety", "--limit", "24", "--no-progress"], capsys)
    assert code == 0 and doc["subset"] and doc["overrides"] == {"limit": 24} and doc["outputs"]["samples"] == 24
    refusal = {m["group"]: m["n"] for m in doc["metrics"] if m["metric"] == "refusal_rate"}
    over = {m["group"]: m["n"] for m in doc["metrics"] if m["metric"] == "over_refusal_rate"}
    languages = {f"language:{x}" for x in ("bn", "en", "es", "fr", "hi", "ta")}
    assert languages <= set(refusal) and languages <= set(over)  # every language, both behaviours
    assert main(["dossier", "log", "mini-safety"]) == 0
    assert "SUBSET" in capsys.readouterr().out
    # a re-run of the record (reproduce), even with another seed, runs exactly the same subset
    from harness.packages.package import resolve_package
    from harness.record import read_outputs

    record = parse_record(ws / doc["record"])
    ran = sorted(x["id"] for x in read_outputs(ws / doc["record"].replace("record.json", "outputs.jsonl")))
    again = RunPlan.from_record(record, resolve_package(ws / "packages" / "mini-safety"), seed=99)
    assert sorted(s.id for s in again.samples) == ran and again.overrides.limit == 24

    code, diff = _json(["diff", "mini-safety@1", "mini-safety@2"], capsys)
    assert diff["subset_b"] and not diff["subset_a"] and diff["adjustment"] == "holm"
    rows = {(m["metric"], m["group"]): m for m in diff["metrics"]}
    assert not rows[("refusal_rate", "overall")]["paired"]  # 60 against 12 samples: not the same samples
    assert rows[("refusal_rate", "overall")]["method"] == "newcombe-unpaired-score"

    # a filter leaves the other languages' baselines NOT EVALUATED, never FAIL
    code, hi = _json(["run", "packages/mini-safety", "--filter", "language=hi", "--no-progress"], capsys)
    assert code == 0 and hi["outputs"]["samples"] == 20 and hi["overrides"] == {"filters": ["language=hi"]}
    words = {(b["metric"], b["group"]): b["verdict"] for b in hi["baselines"]}
    assert words[("refusal_rate", "language:hi")] in ("PASS", "INCONCLUSIVE")


def test_bad_subsets_are_refused_with_exit_2(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--limit", "0"], ["--limit", "-3"], ["--limit", "2.5"]):
        assert main(["run", "packages/mini-safety", *argv]) == 2
        assert "argument --limit" in capsys.readouterr().err
    code, err = _json(["run", "packages/mini-safety", "--limit", "0"], capsys)
    assert code == 2 and err["exit_code"] == 2 and "--limit" in err["error"]  # one JSON object on stdout
    assert main(["run", "packages/mini-safety", "--filter", "language=xx"]) == 2
    assert "its language values are: bn, en, es, fr, hi, ta" in capsys.readouterr().err
    assert main(["run", "packages/mini-safety", "--filter", "colour=red"]) == 2
    ids = ws / "ids.txt"
    ids.write_text("# two ids\nnot-an-id\n")
    assert main(["run", "packages/mini-safety", "--sample-ids", str(ids)]) == 2
    assert "not in the package" in capsys.readouterr().err
    assert not (ws / "dossiers" / "mini-safety" / "log.jsonl").exists()  # nothing ran


def test_a_subset_is_fixed_by_the_seed_and_recomputed_for_a_re_run(pkg_dir: Path) -> None:
    a = RunPlan.from_package(pkg_dir, limit=24)
    assert [s.id for s in a.samples] == [s.id for s in RunPlan.from_package(pkg_dir, limit=24).samples]
    other = RunPlan.from_package(pkg_dir, limit=24, seed=7)
    assert {s.id for s in other.samples} != {s.id for s in a.samples}
    assert Counter(s.language for s in a.samples) == Counter({x: 4 for x in ("bn", "en", "es", "fr", "hi", "ta")})
    assert Counter(s.expected for s in a.samples) == Counter(refuse=12, comply=12)
    # within a stratum, the chosen samples are the first by derive_seed(run_seed, "subset:<id>")
    from harness._internal.seeds import derive_seed

    full = RunPlan.from_package(pkg_dir)
    chosen = {s.id for s in a.samples}
    for s in a.samples:
        stratum = [x for x in full.samples if (x.language, x.expected, x.category) == (s.language, s.expected, s.category)]
        rank = sorted(stratum, key=lambda x: (derive_seed(a.run_seed, f"subset:{x.id}"), x.id))
        taken = [x.id for x in rank if x.id in chosen]
        assert taken == [x.id for x in rank[: len(taken)]]


def test_sample_ids_runs_record_a_digest_and_re_runs_need_the_ids(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.errors import SealError
    from harness.packages.package import resolve_package
    from harness.packages.subset import SubsetError, ids_digest
    from harness.record import read_outputs

    ids = ws / "ids.txt"
    ids.write_text("en-refuse-01\nhi-comply-01\n\n# a comment\nen-refuse-01\n")
    code, doc = _json(["run", "packages/mini-safety", "--sample-ids", str(ids), "--no-progress"], capsys)
    assert code == 0 and doc["subset"] and doc["outputs"]["samples"] == 2
    assert doc["overrides"] == {"sample_ids": ids_digest(["en-refuse-01", "hi-comply-01"])}
    record = parse_record(ws / doc["record"])
    pkg = resolve_package(ws / "packages" / "mini-safety")
    with pytest.raises(SubsetError, match="its ids are needed"):
        RunPlan.from_record(record, pkg)
    with pytest.raises(SealError, match="do not match the digest"):
        RunPlan.from_record(record, pkg, sample_ids=["en-refuse-01"])
    outputs = [x["id"] for x in read_outputs(ws / doc["record"].replace("record.json", "outputs.jsonl"))]
    again = RunPlan.from_record(record, pkg, sample_ids=outputs, seed=99)  # another seed keeps the samples
    assert sorted(s.id for s in again.samples) == ["en-refuse-01", "hi-comply-01"]


def test_old_records_gate_and_diff_with_their_recorded_method(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A record from before this issue: its bootstrap intervals are shown as recorded and named
    so; `harness gate` decides its baselines again from its counts."""
    legacy = tmp_path / "legacy"
    shutil.copytree(FIXTURE, legacy)
    record = next(iter(sorted((legacy / "dossiers" / "mini-safety" / "runs").glob("*/record.json"))))
    old = parse_record(record)
    assert all(m.ci_method is None for m in old.metrics) and all(b.verdict is None for b in old.baselines)
    code, gate = _json(["gate", str(record), "--trust-key", str(legacy / "signer.pub.pem")], capsys)
    assert code in (0, 7) and gate["baselines"] and all(b["verdict"] for b in gate["baselines"])
    assert any("predates exact intervals" in n for n in gate["notes"])
    assert main(["diff", str(record), str(record)]) == 0
