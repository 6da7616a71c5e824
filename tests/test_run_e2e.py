"""End to end on the embedded model: run, sign, append, verify, diff, and tamper."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.diff import diff_runs
from harness.dossier.log import Dossier
from harness.dossier.runs import verify_record
from harness.dossier.verify import verify_dossier
from harness.errors import RecordError, SignatureError, UntrustedSignerError
from harness.record import parse_record, read_outputs
from harness.run import RunOptions, RunResult, run_package
from harness.signing.keys import default_trust_store, load_or_create_key, load_public_keys

from .conftest import environment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    """Four runs into one dossier: two identical, one with another seed, one with fewer tokens."""
    base = tmp_path_factory.mktemp("e2e")
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "packages" / "mini-safety", base / "packages" / "mini-safety")
    shutil.copytree(repo / "lockfiles", base / "lockfiles")
    with environment(HARNESS_CONFIG_DIR=str(base / "config"), HARNESS_DOSSIERS=str(base / "dossiers")):
        pkg = base / "packages" / "mini-safety"
        out = {
            "a": run_package(RunOptions(package=pkg, progress=False)),
            "b": run_package(RunOptions(package=pkg, progress=False)),
            "seed": run_package(RunOptions(package=pkg, seed=7, progress=False)),
            "tokens": run_package(RunOptions(package=pkg, max_tokens=8, progress=False)),
        }
    out["_base"] = base  # type: ignore[assignment]
    return out


def _trust(runs: dict[str, RunResult]) -> list:
    return default_trust_store(runs["_base"] / "config")  # type: ignore[operator]


def test_two_runs_give_identical_outputs_and_an_empty_diff(runs: dict[str, RunResult]) -> None:
    a, b = runs["a"].record, runs["b"].record
    assert a.status == "complete" and a.outputs.samples == 120 and a.outputs.errors == 0
    assert a.outputs.content_sha256 == b.outputs.content_sha256
    assert runs["a"].previous is None
    assert runs["b"].previous is not None and runs["b"].previous.no_change
    d = diff_runs(a, b, runs["a"].run_dir / "outputs.jsonl", runs["b"].run_dir / "outputs.jsonl")
    assert d.no_change and d.changes == [] and d.flips == []
    assert d.metrics and all(m.delta == 0 for m in d.metrics)


def test_record_holds_what_reproduction_needs(runs: dict[str, RunResult]) -> None:
    r = runs["a"].record
    assert r.schema_version == 1
    assert r.package.name == "mini-safety" and len(r.package.seal) == 64
    assert r.data[0].id == "prompts" and len(r.data[0].sha256) == 64
    assert r.lockfile.lockfile == "harness.txt" and isinstance(r.lockfile.matches, bool)
    assert r.model.backend == "transformers" and r.model.name == "tiny-chat"
    assert "model.safetensors" in r.model.files and len(r.model.digest) == 64
    assert set(r.seeds.model_dump()) >= {"run", "python", "numpy", "torch", "order", "sample_rule"}
    assert r.generation.model_dump(mode="json") == {"max_tokens": 48, "temperature": 0.0, "top_p": 1.0, "stop": []}
    assert r.scorer.kind == "refusal" and r.scorer.patterns == "refusal-patterns@1.1.0"
    assert len(r.scorer.patterns_sha256) == 64
    groups = {m.group for m in r.metrics}
    assert {"overall", "language:hi", "language:bn", "language:ta", "category:drugs"} <= groups
    assert r.baselines, "the package states baselines for the embedded model"
    # the record on disk is canonical JSON
    raw = (runs["a"].run_dir / "record.json").read_bytes()
    import rfc8785

    assert rfc8785.dumps(json.loads(raw)) == raw


def test_scores_are_not_degenerate(runs: dict[str, RunResult]) -> None:
    m = {(x.metric, x.group): x.value for x in runs["a"].record.metrics}
    assert 0.2 < m[("refusal_rate", "overall")] < 1.0
    assert 0.0 < m[("over_refusal_rate", "overall")] < 0.8
    lines = list(read_outputs(runs["a"].run_dir / "outputs.jsonl"))
    assert len({x["response"] for x in lines}) > 20  # not one canned string


def test_another_seed_is_named_in_the_diff(runs: dict[str, RunResult]) -> None:
    d = runs["seed"].previous
    assert d is not None and not d.no_change
    assert "seeds" in d.changed_sections()
    assert any(c.key == "run" and c.b == 7 for c in d.changes if c.section == "seeds")
    assert runs["seed"].record.overrides.model_dump() == {"seed": 7}


def test_another_parameter_is_named_in_the_diff(runs: dict[str, RunResult]) -> None:
    d = runs["tokens"].previous
    assert d is not None and "generation" in d.changed_sections()
    assert any(c.key == "max_tokens" and (c.a, c.b) == (48, 8) for c in d.changes)
    assert d.responses_changed > 0


def test_verify_accepts_an_untouched_run(runs: dict[str, RunResult]) -> None:
    res = verify_record(runs["a"].run_dir / "record.json", _trust(runs))
    assert res.signer.startswith("key:") and res.record.run_id == runs["a"].record.run_id


def _copy_run(runs: dict[str, RunResult], tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(runs["a"].run_dir, dst)
    return dst


def test_tampered_outputs_are_named(runs: dict[str, RunResult], tmp_path: Path) -> None:
    run = _copy_run(runs, tmp_path)
    p = run / "outputs.jsonl"
    p.write_bytes(p.read_bytes().replace(b'"verdict":"compliance"', b'"verdict":"refusal"', 1))
    with pytest.raises(RecordError, match="outputs.jsonl: sha256"):
        verify_record(run / "record.json", _trust(runs))


def test_tampered_record_is_named(runs: dict[str, RunResult], tmp_path: Path) -> None:
    run = _copy_run(runs, tmp_path)
    p = run / "record.json"
    p.write_bytes(p.read_bytes().replace(b'"status":"complete"', b'"status":"complete" ', 1))
    with pytest.raises(RecordError, match="record.json: sha256"):
        verify_record(run / "record.json", _trust(runs))


def test_tampered_signature_payload_is_rejected(runs: dict[str, RunResult], tmp_path: Path) -> None:
    run = _copy_run(runs, tmp_path)
    p = run / "record.sigstore.json"
    bundle = json.loads(p.read_text())
    import base64

    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["subject"][0]["digest"]["sha256"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    p.write_text(json.dumps(bundle))
    with pytest.raises(SignatureError, match="signature does not verify"):  # not any other bundle complaint
        verify_record(run / "record.json", _trust(runs))


def test_unknown_key_is_rejected(runs: dict[str, RunResult], tmp_path: Path) -> None:
    other = load_or_create_key(tmp_path / "other")
    with pytest.raises(UntrustedSignerError, match="--trust-key"):
        verify_record(runs["a"].run_dir / "record.json", load_public_keys([other.public_key_path]))


def _dossier_copy(runs: dict[str, RunResult], tmp_path: Path) -> Dossier:
    dst = tmp_path / "mini-safety"
    shutil.copytree(runs["a"].dossier.root, dst)
    return Dossier(dst)


def test_dossier_verifies(runs: dict[str, RunResult], tmp_path: Path) -> None:
    d = _dossier_copy(runs, tmp_path)
    rep = verify_dossier(d, _trust(runs))
    assert rep.ok, rep.problems
    assert rep.entries == 4 and len(rep.signers) == 4


def _lines(d: Dossier) -> list[bytes]:
    return d.log.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("how", ["edit", "delete", "reorder", "edit-last"])
def test_dossier_tampering_is_reported(runs: dict[str, RunResult], tmp_path: Path, how: str) -> None:
    d = _dossier_copy(runs, tmp_path)
    lines = _lines(d)
    if how == "edit":
        lines[1] = lines[1].replace(b'"status":"complete"', b'"status":"incomplete"')
    elif how == "delete":
        del lines[1]
    elif how == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    else:
        lines[-1] = lines[-1].replace(b'"package_version":"1.0.0"', b'"package_version":"1.0.1"')
    d.log.write_bytes(b"".join(lines))
    rep = verify_dossier(d, _trust(runs))
    assert not rep.ok
    text = "\n".join(str(p) for p in rep.problems)
    if how == "edit-last":
        assert "package_version" in text
    else:
        assert "chain broken" in text or "sequence number" in text


def test_dossier_detects_a_tampered_run_file(runs: dict[str, RunResult], tmp_path: Path) -> None:
    d = _dossier_copy(runs, tmp_path)
    entry = d.entries()[2]
    p = d.root / entry.outputs.path
    raw = p.read_bytes()
    p.write_bytes(raw[:40] + bytes([raw[40] ^ 1]) + raw[41:])
    rep = verify_dossier(d, _trust(runs))
    assert not rep.ok and any("outputs.jsonl" in str(x) for x in rep.problems)


def test_cli_verify_diff_and_dossier(runs: dict[str, RunResult], capsys: pytest.CaptureFixture[str]) -> None:
    base = runs["_base"]  # type: ignore[index]
    dossiers = str(base / "dossiers")
    trust = ["--trust-key", str(base / "config" / "trusted-keys")]
    assert main(["verify", "mini-safety@1", "--dossiers", dossiers, *trust]) == 0
    assert "signed by key:" in capsys.readouterr().out
    assert main(["diff", "mini-safety@1", "mini-safety@2", "--dossiers", dossiers]) == 0
    assert "no change" in capsys.readouterr().out
    assert main(["diff", "mini-safety@2", "mini-safety@4", "--dossiers", dossiers, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert "generation" in out["changed_sections"]
    assert main(["dossier", "verify", "mini-safety", "--dossiers", dossiers, *trust]) == 0
    assert "4 entries, chain intact" in capsys.readouterr().out
    record = parse_record(runs["a"].run_dir / "record.json")
    assert record.run_id == runs["a"].record.run_id
