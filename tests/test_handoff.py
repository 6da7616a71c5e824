"""Hand-off before use: gates and claim checks answer "awaiting review" (exit 8) until people
have labelled every uncertain answer and approved the run, then decide on the adjudicated numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.audit.gate import EXIT_AWAITING_REVIEW, gate_run
from harness.audit.handoff import review_state
from harness.cli import main
from harness.dossier.log import Dossier
from harness.packages.seal import seal_package
from harness.suite.file import GateSpec
from harness.suite.gate import GatedRun, suite_review
from tests import test_review
from tests.conftest import REPO
from tests.test_review import run_with_uncertain

# the module's run (24 samples of mini-safety, some uncertain) and a per-test copy of its
# dossiers: the same fixtures as the review tests
base, ws, _json = test_review.base, test_review.ws, test_review._json


def _uncertain(dossiers: Path) -> list[dict[str, Any]]:
    d = Dossier(dossiers / "mini-safety")
    e = d.resolve("1")
    lines = [json.loads(x) for x in (d.root / e.outputs.path).read_text().splitlines()]
    return sorted((x for x in lines if x.get("uncertain")), key=lambda x: x["id"])


def _label_all(dossiers: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *, flip: bool = True) -> None:
    rows = ["sample_id,label"]
    for x in _uncertain(dossiers):
        other = "compliance" if x["verdict"] == "refusal" else "refusal"
        rows.append(f"{x['id']},{other if flip else x['verdict']}")
    (tmp_path / "all.csv").write_text("\n".join(rows) + "\n")
    assert main(["review", "import", "mini-safety@1", str(tmp_path / "all.csv"), "--reviewer", "dana"]) == 0
    capsys.readouterr()


def test_gate_awaits_review_until_labelled_and_approved(ws: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert EXIT_AWAITING_REVIEW == 8
    plain = main(["gate", "mini-safety@1"])
    assert plain in (0, 7)  # the package does not require review: the gate decides as before
    capsys.readouterr()
    code, out = _json(["gate", "mini-safety@1", "--require-review"], capsys)
    assert code == 8 and out["gate"] == "AWAITING REVIEW" and out["review"]["state"] == "awaiting review"
    assert len(out["review"]["unlabelled"]) == len(_uncertain(ws)) and out["review"]["approval"] is None
    assert main(["review", "status", "mini-safety@1"]) == 8
    capsys.readouterr()

    # every uncertain sample labelled: still no approval
    _label_all(ws, tmp_path, capsys)
    code, out = _json(["gate", "mini-safety@1", "--require-review"], capsys)
    assert code == 8 and out["review"]["unlabelled"] == [] and "approve" in " ".join(out["review"]["reasons"])

    # an approval before a later label does not count
    assert main(["dossier", "approve", "mini-safety@1", "--note", "read every label", "--reviewer", "erin"]) == 0
    capsys.readouterr()
    code, out = _json(["gate", "mini-safety@1", "--require-review"], capsys)
    assert code in (0, 7) and out["adjudicated"] and out["review"]["approval"]["reviewer"] == "erin"
    adjudicated = gate_run("mini-safety@1", require_review=True)
    assert adjudicated.review is not None and adjudicated.review.adjudicated is not None
    assert list(adjudicated.review.adjudicated.metrics) != list(adjudicated.record.metrics)  # labels flipped verdicts
    assert {(v.metric, v.group): v.observed for v in adjudicated.verdicts} == {
        (m.metric, m.group): m.value for m in adjudicated.review.adjudicated.metrics
        if (m.metric, m.group) in {(v.metric, v.group) for v in adjudicated.verdicts}}
    assert main(["review", "status", "mini-safety@1"]) == 0

    first = _uncertain(ws)[0]
    assert main(["review", "label", "mini-safety@1", "--sample", first["id"], "--label", first["verdict"]]) == 0
    capsys.readouterr()
    code, out = _json(["gate", "mini-safety@1", "--require-review"], capsys)
    assert code == 8 and out["review"]["stale_approval"]["reviewer"] == "erin"
    state = review_state("mini-safety@1")
    assert state.awaiting and "came before the last label" in " ".join(state.reasons())


def test_a_package_that_requires_review_and_the_claim_check(home: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    pkgs = tmp_path / "packages"
    shutil.copytree(REPO / "packages" / "mini-safety", pkgs / "mini-safety")
    shutil.copytree(REPO / "lockfiles", tmp_path / "lockfiles")
    manifest = pkgs / "mini-safety" / "manifest.toml"
    manifest.write_text(manifest.read_text() + "\n[review]\nrequired = true\n")
    seal_package(pkgs / "mini-safety")
    monkeypatch.setenv("HARNESS_PACKAGES", str(pkgs))
    dossiers = tmp_path / "dossiers"
    monkeypatch.setenv("HARNESS_DOSSIERS", str(dossiers))
    run_with_uncertain(pkgs / "mini-safety", limit=24, max_tokens=8)

    code, out = _json(["gate", "mini-safety@1"], capsys)
    assert code == 8 and out["review"]["required_by"] == ["package"]
    record = Dossier(dossiers / "mini-safety").record_of(Dossier(dossiers / "mini-safety").resolve("1"))
    claimed = record.metric("refusal_rate")
    assert claimed is not None
    claim = tmp_path / "claim.toml"
    claim.write_text('schema_version = 1\n[vendor]\nname = "Example <Corp>"\n[model]\nname = "tiny-chat"\n'
                     '[package]\nname = "mini-safety"\nversion = "1.0.0"\n'
                     f'[metric]\nname = "refusal_rate"\nvalue = {claimed.value!r}\n')
    reports = tmp_path / "reports"
    argv = ["claim", "check", str(claim), "--dossiers", str(dossiers), "--packages", str(pkgs),
            "--report-dir", str(reports)]
    code, out = _json(argv, capsys)
    assert code == 8 and out["verdict"] == "awaiting review" and out["review"]["state"] == "awaiting review"

    _label_all(dossiers, tmp_path, capsys, flip=False)  # people agree with the scorer: the numbers stay
    assert main(["dossier", "approve", "mini-safety@1", "--note", "checked the Hindi and Bengali answers",
                 "--reviewer", "farah"]) == 0
    capsys.readouterr()
    code, out = _json(["gate", "mini-safety@1"], capsys)
    assert code in (0, 7) and out["review"]["state"] == "reviewed"
    code, out = _json(argv, capsys)
    assert out["verdict"] != "awaiting review" and code == {"consistent": 0, "inconsistent": 1,
                                                            "unverifiable": 6}[out["verdict"]]
    assert out["review"]["approval"]["reviewer"] == "farah" and out["review"]["labels"]
    html = (reports / "report.html").read_text() if (reports / "report.html").exists() else \
        next(reports.glob("*.html")).read_text()
    md = next(reports.glob("*.md")).read_text()
    assert "farah" in html and "dana" in md and "What a person checked" in md


def test_suite_review_awaits_and_then_decides_on_adjudicated_numbers(ws: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    d = Dossier(ws / "mini-safety")
    record = d.record_of(d.resolve("1"))
    runs = [GatedRun("mini-safety", "tiny-chat", record)]
    assert not suite_review(GateSpec(), runs, ws).statuses  # neither suite nor package requires review
    review = suite_review(GateSpec(require_review=True), runs, ws)
    assert review.awaiting and review.exit_code(0) == 8 and review.exit_code(7) == 8
    _label_all(ws, tmp_path, capsys)
    assert main(["dossier", "approve", "mini-safety@1", "--note", "ok"]) == 0
    review = suite_review(GateSpec(require_review=True), runs, ws)
    assert not review.awaiting and review.exit_code(7) == 7
    assert review.runs[0].record.metrics != record.metrics


def test_a_suite_that_requires_review_awaits_then_its_gate_decides_after_review(
        workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`suite run` answers 8 while its runs wait for people; `suite gate FILE` decides from the
    signed record once every uncertain answer is labelled and the run approved."""
    monkeypatch.chdir(workspace)
    dossiers = workspace / "dossiers"
    monkeypatch.setenv("HARNESS_DOSSIERS", str(dossiers))
    suite = workspace / "release.toml"
    suite.write_text('schema_version = 1\nname = "reviewed-release"\n\n[[packages]]\nname = "mini-safety"\n'
                     'limit = 24\nmax_tokens = 8\n\n[[models]]\nname = "tiny-chat"\n\n[gate]\nrequire_review = true\n')
    assert main(["suite", "run", str(suite), "--quiet"]) == 8  # mini-safety pins refusal-patterns@1.1.0: it marks
    assert "AWAITING REVIEW" in capsys.readouterr().err
    assert _uncertain(dossiers), "a 24-sample run of the embedded model has uncertain answers"
    code, out = _json(["suite", "gate", str(suite)], capsys)
    assert code == 8 and out["verdict"] == "AWAITING REVIEW" and out["awaiting_review"][0]["package"] == "mini-safety"

    _label_all(dossiers, tmp_path, capsys, flip=False)  # people agree with the scorer
    assert main(["suite", "gate", str(suite)]) == 8  # labelled, not approved
    capsys.readouterr()
    assert main(["dossier", "approve", "mini-safety@1", "--note", "every label read"]) == 0
    capsys.readouterr()
    code, out = _json(["suite", "gate", str(suite)], capsys)
    assert code in (0, 7) and out["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") and not out["awaiting_review"]
    assert code == (7 if out["verdict"] == "FAIL" else 0)
    assert any("reviewed" in n for n in out["notes"])

    # the gate's rules come from the file the suite ran with: an edited file is refused
    suite.write_text(suite.read_text().replace("require_review = true", "require_review = false"))
    assert main(["suite", "gate", str(suite)]) == 2
    assert "not the suite file" in capsys.readouterr().err
