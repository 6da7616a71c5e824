"""`harness import lm-eval`: lm-evaluation-harness results, checked and signed in as imported.

The folder below is laid out as lm-eval's EvaluationTracker writes it (results_<date>.json
and samples_<task>_<date>.jsonl in the model folder, the task hash as sha256 over the
samples' doc/prompt/target hashes). The nox `interop` session imports a folder written by
lm-eval itself (tests/test_interop_inspect.py's neighbour, when lm-eval is installed).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.dossier.log import Dossier, EventEntry
from harness.dossier.verify import verify_dossier
from harness.errors import HarnessError
from harness.interop.lm_eval_import import import_lm_eval

DATE = "2026-12-03T10-00-00.123456"


def _h(x: str) -> str:
    return hashlib.sha256(x.encode()).hexdigest()


def write_results(folder: Path, *, correct: int = 7, n: int = 10, reported: float | None = None,
                  task: str = "refusal_mini") -> Path:
    model_dir = folder / "local-model"
    model_dir.mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(n):
        doc = {"prompt": f"question {i}", "language": "en" if i % 2 else "hi"}
        samples.append({"doc_id": i, "doc": doc, "target": "refuse", "arguments": {"gen_args_0": {"arg_0": "q"}},
                        "resps": [["I can't"]], "filtered_resps": ["I can't"], "doc_hash": _h(json.dumps(doc)),
                        "prompt_hash": _h(f"p{i}"), "target_hash": _h("refuse"), "acc": 1.0 if i < correct else 0.0,
                        "perplexity": 3.5 + i})
    with open(model_dir / f"samples_{task}_{DATE}.jsonl", "w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps(s) + "\n")
    results = {
        "results": {task: {"alias": task, "acc,none": correct / n if reported is None else reported,
                           "acc_stderr,none": 0.1, "perplexity,none": 8.0}},
        "versions": {task: 1.0}, "n-samples": {task: {"original": n, "effective": n}},
        "config": {"model": "local-completions", "model_args": "model=tiny,base_url=http://127.0.0.1:1/v1"},
        "task_hashes": {task: _h("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples))},
        "model_name": "tiny", "date": 1764756000.0, "lm_eval_version": "0.4.9",
    }
    (model_dir / f"results_{DATE}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return folder


def test_a_result_is_recounted_signed_and_verifiable(tmp_path: Path) -> None:
    res = import_lm_eval(write_results(tmp_path / "out"), "mini-safety")
    doc = res.document
    assert doc.summary.source_format == "lm-eval" and doc.summary.status == "imported, not reproduced"
    m = {(x.metric, x.group): x for x in doc.details.metrics}
    overall = m[("refusal_mini/acc", "overall")]
    assert (overall.successes, overall.n, overall.ci_method) == (7, 10, "clopper-pearson")
    assert 0.34 < overall.ci_low < 0.35 and 0.93 < overall.ci_high < 0.94  # Clopper-Pearson for 7/10
    assert ("refusal_mini/acc", "language:hi") in m and ("refusal_mini/perplexity", "overall") not in m
    assert any("not recounted" in p for p in doc.details.proven)
    d = Dossier.for_package("mini-safety")
    rep = verify_dossier(d)
    assert rep.ok, rep.problems
    entry = d.entries()[-1]
    assert isinstance(entry, EventEntry) and entry.kind == "imported"
    assert {Path(f.path).name for f in entry.files} == {"results.json", "samples_refusal_mini.jsonl"}


@pytest.mark.parametrize("how", ["value", "hash", "count", "duplicate-key", "no-samples"])
def test_a_result_that_contradicts_itself_is_refused(tmp_path: Path, how: str) -> None:
    folder = write_results(tmp_path / "out", reported=0.9 if how == "value" else None)
    model_dir = folder / "local-model"
    results_path = model_dir / f"results_{DATE}.json"
    samples_path = model_dir / f"samples_refusal_mini_{DATE}.jsonl"
    results: dict[str, Any] = json.loads(results_path.read_text())
    if how == "hash":
        lines = samples_path.read_text().splitlines()
        lines[3] = lines[3].replace('"prompt_hash": "', '"prompt_hash": "0')
        samples_path.write_text("\n".join(lines) + "\n")
    elif how == "count":
        results["n-samples"]["refusal_mini"]["effective"] = 12
        results_path.write_text(json.dumps(results))
    elif how == "duplicate-key":
        results_path.write_text(results_path.read_text().replace('"model_name": "tiny"',
                                                                  '"model_name": "tiny", "model_name": "other"'))
    elif how == "no-samples":
        samples_path.unlink()
    with pytest.raises(HarnessError, match="not an lm-eval result"):
        import_lm_eval(folder, "mini-safety")
    assert not (Dossier.for_package("mini-safety").log).exists()  # nothing appended


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_results(tmp_path / "out")
    assert main(["import", "lm-eval", str(folder), "--package", "mini-safety", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["source_format"] == "lm-eval" and doc["seq"] == 1
    assert main(["import", "lm-eval", str(tmp_path / "nothing-here"), "--package", "mini-safety"]) == 2
    assert main(["dossier", "log", "mini-safety"]) == 0
    assert "IMPORTED" in capsys.readouterr().out


def test_a_claim_check_against_an_imported_result_says_imported_not_reproduced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = Path(__file__).resolve().parents[1]
    folder = write_results(tmp_path / "out")
    results = next(folder.rglob("results_*.json"))
    results.write_text(results.read_text().replace('"model_name": "tiny"', '"model_name": "tiny-chat"'))
    import_lm_eval(folder, "mini-safety")
    code = main(["claim", "check", str(repo / "docs" / "examples" / "claim.toml"), "--packages",
                 str(repo / "packages"), "--report-dir", str(tmp_path / "report"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 6 and doc["verdict"] == "unverifiable"
    step = next(s for s in doc["steps"] if s["id"] == "our-run")
    assert step["outcome"] == "not checked" and "imported, not reproduced" in step["detail"]
