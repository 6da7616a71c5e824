"""Exports of verified runs (issue 17): eval-result and VSA attestations, Every Eval Ever, tidy tables.

One module-wide dossier: a 24-sample stratified run of mini-safety on the embedded model
(so its baselines are decided) and an exact reproduction of it. Signed exports are checked
by our verifier and by sigstore-js (the cross-client fixture of tests/test_sign.py, which
skips only when npm cannot reach the registry); Every Eval Ever exports are validated
with jsonschema against the upstream schemas in ../shared/fixtures/every-eval-ever/,
whose sha256 are checked first (they are never copied into the repository).
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.dossier.log import Dossier
from harness.errors import HarnessError, RecordError, SignatureError
from harness.interop.common import load_verified
from harness.interop.eval_result import (
    PREDICATE_TYPE_EVAL_RESULT,
    build_predicate,
    verify_eval_result,
)
from harness.interop.export import export
from harness.interop.tables import METRIC_COLUMNS, SAMPLE_COLUMNS
from harness.interop.vsa import PREDICATE_TYPE_VSA, verify_vsa
from harness.record import PREDICATE_TYPE_RUN
from harness.run import RunOptions, run_package
from harness.signing.keys import load_or_create_key
from harness.signing.policy import resolve_trust
from harness.signing.verify import verify_attestation

from .conftest import SHARED, environment
from .test_sign import sigstore_js  # noqa: F401  (the sigstore-js fixture, shared)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EEE = SHARED / "fixtures" / "every-eval-ever"
EEE_SHA256 = {
    "eval.schema.json": "215f04c9a0d7a13f83c49ccd85f97018f39ad1e49af7a3a561841418e9ee08c9",
    "instance_level_eval.schema.json": "b16b7fa7f0aa32763444179d94ffb2336ddb12c3fd2903835fe491666c1ff3e6",
}
"""From ../shared/fixtures/every-eval-ever/SOURCE.md (evaleval/every_eval_ever at 9bce413)."""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("interop")
    shutil.copytree(REPO / "packages" / "mini-safety", base / "packages" / "mini-safety")
    shutil.copytree(REPO / "lockfiles", base / "lockfiles")
    with environment(HARNESS_CONFIG_DIR=str(base / "config"), HARNESS_DOSSIERS=str(base / "dossiers"),
                     HARNESS_CACHE_DIR=str(base / "cache"), HARNESS_PACKAGES=str(base / "packages")):
        run_package(RunOptions(package=base / "packages" / "mini-safety", limit=24, progress=False))
        assert main(["reproduce", "mini-safety@1", "--json"]) == 0
    return base


def _run_files(base: Path, seq: int = 1) -> tuple[Path, Path, Path]:
    d = Dossier(base / "dossiers" / "mini-safety")
    e = d.resolve(str(seq))
    return d.root / e.record.path, d.root / e.bundle.path, d.root / e.outputs.path


def _statement(bundle: Path) -> dict[str, Any]:
    doc = json.loads(bundle.read_bytes())
    return json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))  # type: ignore[no-any-return]


# ------------------------------------------------------------------ eval-result


def test_eval_result_is_signed_verified_and_sits_beside_the_run_predicate(home: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.intoto.sigstore.json"
    assert main(["export", "mini-safety@1", "--format", "eval-result", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == [str(out)]
    record, bundle, outputs = _run_files(home)
    statement = verify_eval_result(out, resolve_trust(), record, outputs)
    assert statement.predicate_type == PREDICATE_TYPE_EVAL_RESULT
    # the same subjects as our own run bundle, which still verifies as a run record
    ours = verify_attestation(bundle, resolve_trust(), PREDICATE_TYPE_RUN, {"record.json": record, "outputs.jsonl": outputs})
    assert statement.subjects == ours.subjects
    p = statement.predicate
    rec = load_verified("mini-safety@1").record
    assert p["suite"] == {"name": "mini-safety", "version": rec.package.version}
    assert p["sampleSize"] == rec.outputs.samples == 24
    assert p["commitments"]["model"]["value"] == rec.model.digest and p["commitments"]["model"]["salted"] is False
    assert p["commitments"]["dataset"]["value"] == rec.package.seal
    assert p["assuranceLevel"] == "self_attested" and p["subjectProfile"] == "receipt"
    decided = [b for b in rec.baselines if b.verdict != "NOT EVALUATED"]
    assert len(p["claims"]) == len(decided) >= 1
    for claim, b, seen in zip(p["claims"], decided, p["harnessRun"]["observed"], strict=True):
        assert isinstance(claim["threshold"], str)  # a decimal string, never a float
        higher = b.direction == "higher_is_safer"
        assert claim["comparator"] == (">=" if higher else "<=")
        edge = b.expected - b.tolerance if higher else b.expected + b.tolerance
        assert float(claim["threshold"]) == pytest.approx(edge, abs=1e-9)
        assert claim["passed"] == (b.word == "PASS")
        assert (seen["ciLow"], seen["ciHigh"], seen["gateVerdict"]) == (b.ci_low, b.ci_high, b.word)
        assert seen["ciMethod"] == "clopper-pearson"


def test_eval_result_bundle_refused_when_outputs_change_or_signer_untrusted(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "er.json"
    export("mini-safety@1", "eval-result", out)
    record, _, outputs = _run_files(home)
    changed = tmp_path / "outputs.jsonl"
    changed.write_bytes(outputs.read_bytes().replace(b'"verdict":"refusal"', b'"verdict":"compliance"', 1))
    with pytest.raises(RecordError, match="does not match the signed digest"):
        verify_eval_result(out, resolve_trust(), record, changed)
    with pytest.raises(SignatureError):
        verify_eval_result(out, [], record, outputs)


def test_nothing_is_exported_from_an_unverified_run(home: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for p in _run_files(home):
        shutil.copy(p, run_dir / p.name)
    (run_dir / "record.json").write_bytes((run_dir / "record.json").read_bytes().replace(b'"value":0.', b'"value":1.', 1))
    for fmt in ("eval-result", "every-eval-ever", "csv"):
        out = tmp_path / f"x.{fmt}"
        assert main(["export", str(run_dir), "--format", fmt, "--out", str(out)]) == 1
        assert not out.exists()
    assert "altered after signing" in capsys.readouterr().err


def test_eval_result_needs_a_decided_baseline(home: Path) -> None:
    run = load_verified("mini-safety@1")
    bare = dataclasses.replace(run, verified=dataclasses.replace(
        run.verified, record=run.record.model_copy(update={"baselines": []})))
    with pytest.raises(HarnessError, match="no evaluated baseline") as e:
        build_predicate(bare)
    assert "state baselines" in (e.value.hint or "")


# ------------------------------------------------------------------ VSA


def test_vsa_of_a_reproduction(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = Dossier(home / "dossiers" / "mini-safety")
    kinds = [e.kind for e in d.entries()]
    seq = kinds.index("reproduction") + 1
    out = tmp_path / "vsa.json"
    assert main(["export", f"mini-safety@{seq}", "--format", "vsa", "--out", str(out)]) == 0
    record, bundle, outputs = _run_files(home)
    statement = verify_vsa(out, resolve_trust(), record, outputs)
    assert statement.predicate_type == PREDICATE_TYPE_VSA
    p = statement.predicate
    assert p["verificationResult"] == "PASSED" and p["verifiedLevels"] == ["LLM_SAFETY_HARNESS_REPRODUCED_EXACT"]
    assert p["slsaVersion"] == "1.0" and p["verifier"]["id"] == "https://github.com/llm-safety-harness/harness"
    assert p["resourceUri"].startswith("urn:llm-safety-harness:run:mini-safety:")
    digests = {a["digest"]["sha256"] for a in p["inputAttestations"]}
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() in digests and len(digests) == 3
    # the package name alone means its latest reproduction; a run entry is refused with a hint
    assert main(["export", "mini-safety", "--format", "vsa", "--out", str(tmp_path / "v2.json")]) == 0
    capsys.readouterr()
    assert main(["export", "mini-safety@1", "--format", "vsa", "--out", str(tmp_path / "v3.json")]) == 2
    assert "a VSA summarises a reproduction" in capsys.readouterr().err


def test_sigstore_js_verifies_eval_result_and_vsa(home: Path, tmp_path: Path, sigstore_js: Any) -> None:  # noqa: F811
    key = load_or_create_key(None)
    er, vsa = tmp_path / "er.json", tmp_path / "vsa.json"
    export("mini-safety@1", "eval-result", er)
    seq = [e.kind for e in Dossier(home / "dossiers" / "mini-safety").entries()].index("reproduction") + 1
    export(f"mini-safety@{seq}", "vsa", vsa)
    for path, ptype in ((er, PREDICATE_TYPE_EVAL_RESULT), (vsa, PREDICATE_TYPE_VSA)):
        assert _statement(path)["predicateType"] == ptype
        result = sigstore_js(path, key=key.public_key_path)
        assert result == {"ok": True, "keySigned": True, "hint": key.hint, "identity": None}, path


# ------------------------------------------------------------------ Every Eval Ever


def _schema(name: str) -> dict[str, Any]:
    path = EEE / name
    if not path.is_file():
        pytest.skip(f"Every Eval Ever schemas not found at {EEE} (they live beside the repository, never in it)")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == EEE_SHA256[name], f"{path} is not the pinned upstream file"
    return json.loads(path.read_bytes())  # type: ignore[no-any-return]


def test_every_eval_ever_is_valid_against_the_upstream_schemas(home: Path, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    aggregate_schema, instance_schema = _schema("eval.schema.json"), _schema("instance_level_eval.schema.json")
    out = tmp_path / "eee.json"
    result = export("mini-safety@1", "every-eval-ever", out)
    assert result.files == (out, tmp_path / "eee.samples.jsonl")
    doc = json.loads(out.read_bytes())
    jsonschema.Draft7Validator(aggregate_schema).validate(doc)
    rec = load_verified("mini-safety@1").record
    assert len(doc["evaluation_results"]) == len(rec.metrics)
    for item, m in zip(doc["evaluation_results"], rec.metrics, strict=True):
        ci = item["score_details"]["uncertainty"]["confidence_interval"]
        assert (item["score_details"]["score"], ci["lower"], ci["upper"], ci["method"]) == (
            m.value, m.ci_low, m.ci_high, "clopper-pearson")
    assert doc["model_info"]["inference_engine"]["name"] == rec.model.engine.name
    assert doc["source_metadata"]["additional_details"]["record_sha256"] == _sha(_run_files(home)[0])
    lines = [json.loads(x) for x in (tmp_path / "eee.samples.jsonl").read_bytes().splitlines()]
    assert len(lines) == 24 and result.details["prompts"] == 24  # prompts from the sealed package, checked
    validator = jsonschema.Draft7Validator(instance_schema)
    for line in lines:
        validator.validate(line)
        assert hashlib.sha256(line["input"]["raw"].encode()).hexdigest() == line["sample_hash"]
    # a broken document is refused by the same validator (the check is not vacuous)
    del doc["model_info"]["additional_details"]["deployment_type"]
    assert not validator.is_valid(lines[0] | {"interaction_type": "chat"})
    assert not jsonschema.Draft7Validator(aggregate_schema).is_valid(doc)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# ------------------------------------------------------------------ tables


def test_csv_and_jsonl_tables(home: Path, tmp_path: Path) -> None:
    rec = load_verified("mini-safety@1").record
    export("mini-safety@1", "csv", tmp_path / "s.csv")
    export("mini-safety@1", "csv", tmp_path / "m.csv", table="metrics")
    export("mini-safety@1", "jsonl", tmp_path / "s.jsonl")
    samples = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text(encoding="utf-8"), newline="")))
    assert tuple(samples[0]) == SAMPLE_COLUMNS and len(samples) == 24
    assert {r["run_id"] for r in samples} == {rec.run_id}
    metrics = list(csv.DictReader(io.StringIO((tmp_path / "m.csv").read_text(encoding="utf-8"), newline="")))
    assert tuple(metrics[0]) == METRIC_COLUMNS and len(metrics) == len(rec.metrics)
    for row, m in zip(metrics, rec.metrics, strict=True):
        assert (row["metric"], row["group"], float(row["value"]), float(row["ci_low"]), float(row["ci_high"])) == (
            m.metric, m.group, m.value, m.ci_low, m.ci_high)
    lines = [json.loads(x) for x in (tmp_path / "s.jsonl").read_bytes().splitlines()]
    assert [x["sample_id"] for x in lines] == [r["sample_id"] for r in samples]
    assert all(isinstance(x["correct"], bool) for x in lines)


def test_unknown_format_is_bad_input(home: Path, tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="unknown export format"):
        export("mini-safety@1", "parquet", tmp_path / "x")


# ------------------------------------------------------------------ Inspect (the real round trip: nox -s interop)


def test_inspect_log_mapping(home: Path) -> None:
    from harness.interop.inspect_log import eval_log

    run = load_verified("mini-safety@1")
    log = eval_log(run)
    assert log["eval"]["run_id"] == run.record.run_id and log["eval"]["metadata"]["harness"]["record_sha256"] == \
        run.subjects["record.json"]
    assert [s["id"] for s in log["samples"]] == [line["id"] for line in run.lines]
    for s, line in zip(log["samples"], run.lines, strict=True):
        (score,) = s["scores"].values()
        assert score["value"] == ("C" if line["correct"] else "I")
        assert hashlib.sha256(s["input"].encode()).hexdigest() == line["prompt_sha256"]
    assert len(log["results"]["scores"]) == len(run.record.metrics)


def test_inspect_export_without_inspect_ai_says_how(home: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import inspect_ai  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("inspect-ai is installed here: tests/test_interop_inspect.py covers the export")
    assert main(["export", "mini-safety@1", "--format", "inspect", "--out", str(tmp_path / "r.eval")]) == 2
    assert "pip install inspect-ai" in capsys.readouterr().err
    assert main(["import", "inspect", str(tmp_path / "r.eval"), "--package", "mini-safety"]) == 2
    assert "does not exist" in capsys.readouterr().err
