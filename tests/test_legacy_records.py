"""Records and dossiers written by an older harness (main at da9ff4b) still verify, diff and read.

The fixture (tests/fixtures/legacy-da9ff4b, see its README) holds every kind of entry that
harness wrote. Users' dossiers look like it, so a change to a format or its types that
stops any of this is a break of the on-disk format, whatever the tests of new runs say.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "legacy-da9ff4b"
RUN_KINDS = {1: "transformers", 2: "transformers", 3: "transformers", 7: "openai", 8: "transformers"}


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A copy of the fixture (commands that append must never touch the committed one)."""
    shutil.copytree(FIXTURE, tmp_path / "legacy")
    return tmp_path / "legacy"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


def test_the_old_dossier_verifies_entry_by_entry(legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every old entry verifies; the only thing missing is a signed checkpoint (old harnesses wrote
    none), a distinct problem with its remedy. Signing one appends a file beside the log and
    rewrites nothing; the dossier then verifies with the old signer and the migrating user's key."""
    base = legacy / "dossiers" / "mini-safety"
    log_before = (base / "log.jsonl").read_bytes()
    code, out = _run(["dossier", "verify", "mini-safety", "--dossiers", str(legacy / "dossiers"),
                      "--trust-key", str(legacy / "signer.pub.pem"), "--json"], capsys)
    report = json.loads(out)
    assert code == 1 and report["entries"] == 9 and report["signatures_checked"]
    assert [p["kind"] for p in report["problems"]] == ["no-checkpoint"]
    assert "harness dossier checkpoint mini-safety --sign" in report["problems"][0]["hint"]
    assert [s["entry"] for s in report["signers"]] == list(range(1, 10))

    code, note = _run(["dossier", "checkpoint", "mini-safety", "--sign", "--dossiers", str(legacy / "dossiers")], capsys)
    assert code == 0 and note.splitlines()[1] == "9" and "\n\n\u2014 llm-safety-harness/dossier/mini-safety/" in note
    assert (base / "log.jsonl").read_bytes() == log_before  # migration appends a checkpoint, never rewrites entries
    mine = Path(os.environ["HARNESS_CONFIG_DIR"]) / "signing-key.pub.pem"
    code, out = _run(["dossier", "verify", "mini-safety", "--dossiers", str(legacy / "dossiers"),
                      "--trust-key", str(legacy / "signer.pub.pem"), "--trust-key", str(mine), "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["entries"] == 9 and report["checkpoint"]["size"] == 9
    assert [s["entry"] for s in report["signers"]] == list(range(1, 10))


def test_the_old_dossier_fails_without_its_signer(legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fixture's key is not in the test's trust store: the same check must then fail."""
    code, out = _run(["dossier", "verify", "mini-safety", "--dossiers", str(legacy / "dossiers"), "--json"], capsys)
    assert code == 1 and not json.loads(out)["ok"]


@pytest.mark.parametrize("seq", sorted(RUN_KINDS))
def test_each_old_run_verifies(seq: int, legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["verify", f"mini-safety@{seq}", "--dossiers", str(legacy / "dossiers"),
                      "--trust-key", str(legacy / "signer.pub.pem"), "--json"], capsys)
    assert code == 0 and json.loads(out)["ok"]


def test_an_edited_old_record_is_named(legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = json.loads((legacy / "dossiers" / "mini-safety" / "log.jsonl").read_bytes().split(b"\n")[0])
    record = legacy / "dossiers" / "mini-safety" / first["record"]["path"]
    raw = record.read_bytes()
    assert b'"status":"complete"' in raw
    record.write_bytes(raw.replace(b'"status":"complete"', b'"status":"incomplete"', 1))
    code = main(["dossier", "verify", "mini-safety", "--dossiers", str(legacy / "dossiers"),
                 "--trust-key", str(legacy / "signer.pub.pem")])
    assert code == 1 and record.parent.name in capsys.readouterr().out


def test_old_runs_diff(legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(legacy / "dossiers")
    code, out = _run(["diff", "mini-safety@1", "mini-safety@3", "--dossiers", d, "--json"], capsys)
    same = json.loads(out)
    assert code == 0 and same["no_change"] and same["outputs_identical"]  # the reproduction's re-run
    code, out = _run(["diff", "mini-safety@1", "mini-safety@2", "--dossiers", d, "--json"], capsys)
    seeds = json.loads(out)
    assert code == 1 and "seeds" in seeds["changed_sections"] and "generation" in seeds["changed_sections"]
    assert seeds["responses_changed"] > 0 and seeds["metrics"]
    code, out = _run(["diff", "mini-safety@1", "mini-safety@7", "--dossiers", d, "--json"], capsys)
    backends = json.loads(out)
    assert code == 1 and {"model", "engine"} <= set(backends["changed_sections"])
    assert any(c["key"] == "backend" and c["a"] == "transformers" and c["b"] == "openai" for c in backends["changes"])


def test_old_timeline(legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["dossier", "log", "mini-safety", "--dossiers", str(legacy / "dossiers"), "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and [r["kind"] for r in rows] == [
        "run", "run", "run", "reproduction", "rescore", "review", "run", "run", "baseline"]
    assert rows[0]["model"] == "tiny-chat" and rows[6]["model"] == "fake-model"
    assert "REPRODUCED (#4)" in rows[0]["later"] and any("reviewed by fixture" in x for x in rows[1]["later"])


def test_every_old_file_reads_into_its_typed_model_and_writes_back_the_same_bytes() -> None:
    """The typed formats are the old JSON exactly: nothing lost, renamed or added on a round trip."""
    from harness._internal.hashing import canonical_json
    from harness.dossier.documents import parse_event_bytes
    from harness.dossier.log import Entry, EventEntry, parse_entry
    from harness.record import RunRecord

    base = FIXTURE / "dossiers" / "mini-safety"
    records = sorted(base.glob("runs/*/record.json"))
    assert len(records) == 5
    for path in records:
        raw = path.read_bytes()
        record = RunRecord.model_validate_json(raw)
        assert record.to_bytes() == raw, path
    kinds = set()
    for path in sorted(base.glob("*s/*/*.json")):
        if path.parent.parent.name == "runs" or path.name.endswith(".sigstore.json"):
            continue
        raw = path.read_bytes()
        doc = parse_event_bytes(raw)
        kinds.add(doc.kind)
        assert canonical_json(doc.model_dump(mode="json")) == raw, path
    assert kinds == {"reproduction", "rescore", "baseline", "review"}
    lines = [line for line in (base / "log.jsonl").read_bytes().split(b"\n") if line]
    entries = [parse_entry(line) for line in lines]
    assert [e.line() for e in entries] == lines
    assert sum(isinstance(e, Entry) for e in entries) == 5 and sum(isinstance(e, EventEntry) for e in entries) == 4


def test_old_records_read_through_typed_fields() -> None:
    """What the diff, the dossier and reproduction read is there, by field, in every kind of old run."""
    from harness.record import RunRecord
    from harness.scoring.base import JudgeScorerInfo, RefusalScorerInfo

    base = FIXTURE / "dossiers" / "mini-safety"
    by_backend: dict[str, list[RunRecord]] = {}
    for path in sorted(base.glob("runs/*/record.json")):
        r = RunRecord.model_validate_json(path.read_bytes())
        by_backend.setdefault(r.model.backend, []).append(r)
        assert len(r.model.digest) == 64 and r.seeds.run > 0 and r.generation.max_tokens > 0
        assert (r.metrics and r.metric(r.metrics[0].metric, r.metrics[0].group) is r.metrics[0]) or \
            r.outputs.unparsed == r.outputs.samples  # the judge run: its tiny judge parsed nothing
    openai = by_backend["openai"][0]
    assert openai.status == "incomplete" and openai.model.engine.served_model is not None
    assert openai.model.engine_args.concurrency == 4
    local = [r for r in by_backend["transformers"] if isinstance(r.scorer, RefusalScorerInfo)]
    assert local and all(r.model.engine.torch and r.model.engine_args.threads == 1 for r in local)
    judged = [r for r in by_backend["transformers"] if isinstance(r.scorer, JudgeScorerInfo)]
    assert len(judged) == 1 and judged[0].scorer.identity.digest == judged[0].scorer.identity_digest
    assert judged[0].overrides.limit == 12 and judged[0].overrides.seed is None
