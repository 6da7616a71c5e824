"""``harness diagnose`` end to end on the embedded model and the default package.

The module diagnoses mini-safety twice in one dossier: the first diagnosis finds no
evaluation run and makes one, the second finds it. Both must give the same numbers.
Tests that damage the dossier work on copies.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.diagnose import DiagnoseOptions, DiagnosisResult, diagnose
from harness.dossier.diagnosis_details import InterventionKind
from harness.dossier.documents import DiagnosisRecord
from harness.dossier.events import parse_event
from harness.dossier.log import Dossier, EventEntry
from harness.dossier.verify import ProblemKind, verify_dossier
from harness.report.terminal import _entry_what

from .conftest import environment

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _env(base: Path) -> contextlib.AbstractContextManager[None]:
    return environment(HARNESS_CONFIG_DIR=str(base / "config"), HARNESS_DOSSIERS=str(base / "dossiers"),
                       HARNESS_CACHE_DIR=str(base / "cache"), HARNESS_CHECKPOINTS_DIR=str(base / "checkpoints"))


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DiagnosisResult, dict[str, Any]]:
    """The base folder, the first diagnosis (library) and the second one (``harness diagnose --json``)."""
    base = tmp_path_factory.mktemp("diagnose")
    shutil.copytree(REPO / "packages" / "mini-safety", base / "packages" / "mini-safety")
    shutil.copytree(REPO / "lockfiles", base / "lockfiles")
    pkg = base / "packages" / "mini-safety"
    with _env(base):
        first = diagnose(DiagnoseOptions(package=pkg))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["diagnose", str(pkg), "--json"]) == 0
    return base, first, json.loads(out.getvalue())


@pytest.fixture
def home(diagnosed: tuple[Path, DiagnosisResult, dict[str, Any]], tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the module's dossier, verified with the module's key."""
    base = diagnosed[0]
    shutil.copytree(base / "dossiers", tmp_path / "dossiers")
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("HARNESS_DOSSIERS", str(tmp_path / "dossiers"))
    return tmp_path


def test_two_diagnoses_of_one_seed_give_identical_numbers(diagnosed: tuple[Path, DiagnosisResult, dict[str, Any]]) -> None:
    _, first, second = diagnosed
    d = first.document.details
    assert d.evaluation.made_for_diagnosis and first.evaluation.entry.seq == 1  # no run yet: made one
    assert second["evaluation_made"] is False and second["evaluation_entry"] == 1  # found it
    assert second["numbers_sha256"] == d.numbers_sha256 == first.document.summary.numbers_sha256
    assert second["rows"] == [r.model_dump(mode="json") for r in d.rows]
    assert second["interventions"] == [r.model_dump(mode="json") for r in d.interventions]
    assert d.seeds.run == 20261123 and d.model.name == "tiny-chat" and d.model.threads == 1


def test_json_has_the_issues_shape(diagnosed: tuple[Path, DiagnosisResult, dict[str, Any]]) -> None:
    _, first, out = diagnosed
    d = first.document.details
    assert out["layers"] == [0, 1] and out["diagnosis_layer"] in (0, 1) and out["reference_language"] == "en"
    languages = ["bn", "en", "es", "fr", "hi", "ta"]
    assert [(r["language"], r["layer"]) for r in out["rows"]] == [(lang, j) for lang in languages for j in (0, 1)]
    for r in out["rows"]:
        assert {"language", "layer", "probe_auroc", "cosine_to_reference"} <= r.keys()
        assert r["n_harmful"] == r["n_harmless"] == 10
        assert r["probe_auroc_ci_low"] <= r["probe_auroc"] <= r["probe_auroc_ci_high"]
        if r["language"] == "en":
            assert r["cosine_to_reference"] == 1.0 and r["transfer_auroc"] == r["probe_auroc"]
    for r in out["interventions"]:
        assert {"language", "intervention", "refusal_rate_before", "refusal_rate_after"} <= r.keys()
    assert [g["language"] for g in out["gaps"]] == languages
    assert all(g["classification"] in ("representation failure", "action failure", "neither") for g in out["gaps"])
    assert d.intervention.direction == "refused-harmful-minus-answered-harmless" and d.intervention.ablation_layers == (0, 1)
    assert d.intervention.max_tokens == 24 and d.intervention.addition_scale == 1.0


def test_ablating_the_english_refusal_direction_lowers_english_refusal(
        diagnosed: tuple[Path, DiagnosisResult, dict[str, Any]]) -> None:
    """Measured on tiny-chat: English refusal falls from 8/10 to 4/10 when the direction is
    ablated. Newcombe's paired interval for the change lies below zero; the exact McNemar
    test on 4 discordant pairs cannot reach 5% (p = 0.125), so per language the effect is
    not significant at n = 10; pooled over the six languages (60 prompts) it is."""
    d = diagnosed[1].document.details
    rows = {(r.intervention, r.language): r for r in d.interventions}
    en = rows[(InterventionKind.ABLATE, "en")]
    assert en.prompts == "refuse" and en.n == 10
    assert en.refusal_rate_before is not None and en.refusal_rate_after is not None
    assert en.refusal_rate_after < en.refusal_rate_before
    assert en.delta is not None and en.delta < 0 and en.delta_ci_high is not None and en.delta_ci_high < 0
    assert en.p_value is not None and en.p_value > 0.05 and not en.significant
    pooled = rows[(InterventionKind.ABLATE, "all")]
    assert pooled.n == 60 and pooled.delta_ci_high is not None and pooled.delta_ci_high < 0 and pooled.significant
    added = rows[(InterventionKind.ADD, "all")]  # adding it makes the model refuse should-comply prompts more
    assert added.prompts == "comply" and added.delta_ci_low is not None and added.delta_ci_low > 0 and added.significant


def test_the_diagnosis_is_a_signed_entry_that_verify_and_log_show(
        home: Path, diagnosed: tuple[Path, DiagnosisResult, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    d = Dossier(home / "dossiers" / "mini-safety")
    entries = d.entries()
    assert [e.kind for e in entries] == ["run", "diagnosis", "diagnosis"]
    entry = entries[1]
    assert isinstance(entry, EventEntry) and entry.refers_to == entries[0].record.sha256  # type: ignore[union-attr]
    assert entry.document.path.startswith("diagnoses/")
    doc = parse_event(d.root / entry.document.path)
    assert isinstance(doc, DiagnosisRecord) and (d.root / entry.document.path).read_bytes() == doc.to_bytes()
    report = verify_dossier(d)
    assert report.ok, report.problems
    assert [n for n, _, _ in report.signers] == [1, 2, 3]
    assert main(["dossier", "log", "mini-safety", "--json"]) == 0
    timeline = json.loads(capsys.readouterr().out)
    assert timeline[0]["later"] == ["diagnosed (#2)", "diagnosed (#3)"]
    assert _entry_what(timeline[1]).startswith("diagnosis of #1 on tiny-chat (layers [0, 1], reference en)")
    assert main(["dossier", "log", "mini-safety"]) == 0
    assert "diagnosis" in capsys.readouterr().out


def test_a_tampered_diagnosis_is_refused_by_dossier_verify(home: Path) -> None:
    d = Dossier(home / "dossiers" / "mini-safety")
    entry = d.entries()[1]
    assert isinstance(entry, EventEntry)
    path = d.root / entry.document.path
    body = json.loads(path.read_text(encoding="utf-8"))
    body["details"]["interventions"][0]["refusal_rate_after"] = body["details"]["interventions"][0][
        "refusal_rate_before"]  # hide the ablation's effect
    path.write_text(json.dumps(body, sort_keys=True, separators=(",", ":")), encoding="utf-8")
    report = verify_dossier(d)
    assert not report.ok
    assert report.kinds() & {ProblemKind.SIGNATURE, ProblemKind.FILE_DIGEST}
    assert any(p.entry == 2 for p in report.problems)


def test_an_edited_diagnosis_entry_is_refused_by_dossier_verify(home: Path) -> None:
    d = Dossier(home / "dossiers" / "mini-safety")
    lines = d.log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"action_failures":[]', b'"action_failures":["hi"]')
    d.log.write_bytes(b"".join(lines))
    report = verify_dossier(d)
    assert not report.ok and ProblemKind.FIELD_MISMATCH in report.kinds()
