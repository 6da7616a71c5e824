"""The review queue, signed human labels, and adjudication (docs/review.md).

One run of mini-safety on the embedded model is made per module; its uncertain samples
are set by wrapping the journal (every Hindi and Bengali answer is marked uncertain, every
other one certain), so these tests do not depend on what the scorers' rules decide.
Each test labels a copy of that dossier.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.audit.adjudicate import apply_labels
from harness.audit.labels import LabelEvent, import_labels, label_samples, labels_of
from harness.audit.labels_file import LabelInput
from harness.cli import main
from harness.dossier.log import Dossier
from harness.dossier.verify import ProblemKind, verify_dossier
from harness.errors import LabelError, LabelRefusal
from harness.journal import Journal
from harness.run import RunOptions, run_package
from harness.scoring.metrics import MetricValue
from tests.conftest import REPO, environment

UNCERTAIN_LANGUAGES = ("hi", "bn")


def mark_uncertain(line: dict[str, Any]) -> None:
    """What a scorer of the scoring half writes: ``uncertain`` and its reason, or neither key."""
    line.pop("uncertain", None)
    line.pop("uncertain_reason", None)
    if line["language"] in UNCERTAIN_LANGUAGES:
        line["uncertain"] = True
        line["uncertain_reason"] = "no-validated-patterns"


def run_with_uncertain(package: Path, **options: Any) -> Any:
    original = Journal.append

    def append(self: Journal, line: dict[str, Any]) -> None:
        mark_uncertain(line)  # in place: the run's metrics and the journal see the same line
        original(self, line)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Journal, "append", append)
        return run_package(RunOptions(package=package, progress=False, **options))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("review")
    shutil.copytree(REPO / "packages" / "mini-safety", base / "packages" / "mini-safety")
    shutil.copytree(REPO / "lockfiles", base / "lockfiles")
    with environment(HARNESS_CONFIG_DIR=str(base / "config"), HARNESS_DOSSIERS=str(base / "dossiers"),
                     HARNESS_CACHE_DIR=str(base / "cache"), HARNESS_PACKAGES=str(base / "packages")):
        run_with_uncertain(base / "packages" / "mini-safety", limit=24, max_tokens=8)
    return base


@pytest.fixture
def ws(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the module's dossiers, so each test labels its own."""
    shutil.copytree(home / "dossiers", tmp_path / "dossiers")
    monkeypatch.setenv("HARNESS_DOSSIERS", str(tmp_path / "dossiers"))
    yield tmp_path / "dossiers"


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def _lines(dossiers: Path) -> list[dict[str, Any]]:
    d = Dossier(dossiers / "mini-safety")
    e = d.resolve("1")
    return [json.loads(x) for x in (d.root / e.outputs.path).read_text().splitlines()]


def _uncertain(dossiers: Path) -> list[dict[str, Any]]:
    return sorted((x for x in _lines(dossiers) if x.get("uncertain")), key=lambda x: x["id"])


def test_the_queue_lists_uncertain_samples_with_checked_prompts(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, q = _json(["review", "queue", "mini-safety@1"], capsys)
    assert code == 0
    want = _uncertain(ws)
    assert want and [i["id"] for i in q["items"]] == sorted(x["id"] for x in want)
    assert q["uncertain"] == len(want) and q["labelled"] == 0 and q["allowed_labels"] == ["refusal", "compliance"]
    assert set(q["languages"]) == set(UNCERTAIN_LANGUAGES)
    item = q["items"][0]
    assert item["prompt"] and item["uncertain_reason"] == "no-validated-patterns" and item["label"] is None
    code, only = _json(["review", "queue", "mini-safety@1", "--language", "bn"], capsys)
    assert code == 0 and only["items"] and {i["language"] for i in only["items"]} == {"bn"}
    assert main(["review", "queue", "mini-safety@1", "--language", "hi"]) == 0
    assert "no-validated-patterns" in capsys.readouterr().out


def test_a_label_is_a_signed_event_that_dossier_verify_checks(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = _uncertain(ws)[0]
    flip = "compliance" if sample["verdict"] == "refusal" else "refusal"
    code, out = _json(["review", "label", "mini-safety@1", "--sample", sample["id"], "--label", flip,
                       "--note", "read it twice", "--reviewer", "alice"], capsys)
    assert code == 0 and out["entry"] == 2 and out["labels"][0]["reviewer"] == "alice"
    d = Dossier(ws / "mini-safety")
    entry = d.entries()[-1]
    assert entry.kind == "label" and entry.refers_to == d.resolve("1").record.sha256
    doc = json.loads((d.root / entry.document.path).read_text())  # type: ignore[union-attr]
    assert doc["details"]["labels"][0] == {
        "sample": sample["id"], "language": sample["language"], "label": flip, "reviewer": "alice",
        "note": "read it twice", "scorer_verdict": sample["verdict"], "uncertain_reason": "no-validated-patterns"}
    assert verify_dossier(d).ok
    code, q = _json(["review", "queue", "mini-safety@1"], capsys)
    labelled = next(i for i in q["items"] if i["id"] == sample["id"])
    assert labelled["label"] == flip and labelled["history"][0]["reviewer"] == "alice" and q["labelled"] == 1
    code, log = _json(["dossier", "log", "mini-safety"], capsys)
    assert code == 0 and log[-1]["kind"] == "label" and log[-1]["refers_to_entry"] == 1
    assert main(["dossier", "log", "mini-safety"]) == 0
    assert "label" in capsys.readouterr().out

    # a tampered label: the document no longer matches its signature (and its digest in the log)
    path = d.root / entry.document.path  # type: ignore[union-attr]
    path.write_text(path.read_text().replace(f'"label":"{flip}"', f'"label":"{sample["verdict"]}"'))
    report = verify_dossier(d)
    assert not report.ok and report.kinds() & {ProblemKind.SIGNATURE, ProblemKind.FILE_DIGEST}
    assert main(["dossier", "verify", "mini-safety"]) == 1
    # and nothing more can be labelled on a dossier that does not verify
    assert main(["review", "label", "mini-safety@1", "--sample", sample["id"], "--label", flip]) == 1


def test_unknown_samples_and_labels_are_refused_with_nothing_written(ws: Path) -> None:
    d = Dossier(ws / "mini-safety")
    before = d.log.read_bytes()
    sample = _uncertain(ws)[0]["id"]
    with pytest.raises(LabelError) as e:
        label_samples("mini-safety@1", [LabelInput(sample="no-such-sample", label="refusal")])
    assert e.value.reason == LabelRefusal.UNKNOWN_SAMPLE
    with pytest.raises(LabelError) as e:
        label_samples("mini-safety@1", [LabelInput(sample=sample, label="safe_completion")])
    assert e.value.reason == LabelRefusal.UNKNOWN_LABEL  # mini-safety declares two behaviours
    with pytest.raises(LabelError) as e:
        label_samples("mini-safety@1", [LabelInput(sample=sample, label="refusal"),
                                        LabelInput(sample=sample, label="compliance")])
    assert e.value.reason == LabelRefusal.DUPLICATE_SAMPLE
    assert main(["review", "label", "mini-safety@1", "--sample", "nope", "--label", "refusal"]) == 2
    assert d.log.read_bytes() == before and not (d.root / "labels").exists()


def test_import_csv_and_jsonl_all_or_nothing(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unc = _uncertain(ws)
    d = Dossier(ws / "mini-safety")
    csv_file = tmp_path / "labels.csv"
    rows = ["sample_id,label,note,reviewer,prompt"]
    rows += [f'{x["id"]},refusal,"checked, in {x["language"]}",bob,"ignored"' for x in unc[:3]]
    rows.append(f"{unc[3]['id']},,,,")  # an unreviewed row of an exported queue: skipped
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, out = _json(["review", "import", "mini-safety@1", str(csv_file)], capsys)
    assert code == 0 and [x["sample"] for x in out["labels"]] == [x["id"] for x in unc[:3]]
    assert out["labels"][0]["note"] == f"checked, in {unc[0]['language']}"
    doc = json.loads((d.root / d.entries()[-1].document.path).read_text())  # type: ignore[union-attr]
    assert doc["details"]["source"]["kind"] == "csv" and doc["details"]["source"]["name"] == "labels.csv"

    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text("\n".join(json.dumps({"sample_id": x["id"], "label": "compliance"}) for x in unc[3:5]) + "\n")
    result = import_labels("mini-safety@1", jsonl, reviewer="carol")
    assert [x.reviewer for x in result.document.details.labels] == ["carol", "carol"]
    assert verify_dossier(d).ok and len(labels_of(d, d.resolve("1"))) == 2

    before = d.log.read_bytes()
    bad = {
        "dup.jsonl": f'{{"sample_id": "{unc[0]["id"]}", "label": "refusal", "label": "compliance"}}\n',
        "extra.jsonl": f'{{"sample_id": "{unc[0]["id"]}", "label": "refusal", "score": 1}}\n',
        "notjson.jsonl": json.dumps({"sample_id": unc[0]["id"], "label": "refusal"}) + "\n{oops\n",
        "header.csv": "id,label\nx,refusal\n",
        "unknown.csv": f"sample_id,label\n{unc[0]['id']},refusal\nnot-a-sample,refusal\n",
        "badlabel.csv": f"sample_id,label\n{unc[0]['id']},refusal\n{unc[1]['id']},maybe\n",
        "ragged.csv": f"sample_id,label\n{unc[0]['id']},refusal,extra\n",
        "labels.txt": "sample_id,label\n",
    }
    for name, text in bad.items():
        f = tmp_path / name
        f.write_text(text)
        with pytest.raises(LabelError):
            import_labels("mini-safety@1", f)
        assert main(["review", "import", "mini-safety@1", str(f)]) == 2
    (tmp_path / "binary.csv").write_bytes(b"sample_id,label\n\xff\xfe,refusal\n")
    assert main(["review", "import", "mini-safety@1", str(tmp_path / "binary.csv")]) == 2
    (tmp_path / "huge.csv").write_bytes(b"sample_id,label\n" + b"x,refusal\n" * (1 << 20))
    with pytest.raises(LabelError) as e:
        import_labels("mini-safety@1", tmp_path / "huge.csv")
    assert e.value.reason == LabelRefusal.TOO_LARGE
    assert d.log.read_bytes() == before


def _fake_event(seq: int, labels: list[tuple[str, str]]) -> LabelEvent:
    from harness.dossier.review_details import LabelDetails, LabelSource, SampleLabel

    details = LabelDetails(run_id="r", outputs_content_sha256="0" * 64, allowed=("refusal", "compliance"),
                           source=LabelSource(kind="command"),
                           labels=tuple(SampleLabel(sample=s, language="en", label=lab, reviewer=f"p{seq}",
                                                    scorer_verdict="?") for s, lab in labels))
    return LabelEvent(entry=SimpleNamespace(seq=seq), line_sha256=f"{seq:064x}",  # type: ignore[arg-type]
                      document=SimpleNamespace(id=f"ev{seq}", details=details))  # type: ignore[arg-type]


def test_adjudicated_metrics_against_a_hand_computed_case() -> None:
    """Four samples: two should be refused (scored refusal, compliance), two answered (compliance,
    refusal): every rate is 1/2. The reviewers say s2 was a refusal and s4 an answer (s4 first
    labelled refusal, then compliance: the latest wins). Every rate becomes 2/2 or 0/2."""
    lines = [{"id": "s1", "language": "en", "category": "c", "expected": "refuse", "verdict": "refusal"},
             {"id": "s2", "language": "en", "category": "c", "expected": "refuse", "verdict": "compliance",
              "uncertain": True},
             {"id": "s3", "language": "en", "category": "c", "expected": "comply", "verdict": "compliance"},
             {"id": "s4", "language": "en", "category": "c", "expected": "comply", "verdict": "refusal",
              "uncertain": True}]
    half = [MetricValue(metric=m, group="overall", value=0.5, ci_low=0.0, ci_high=1.0, n=n, successes=n // 2)
            for m, n in (("refusal_rate", 2), ("over_refusal_rate", 2), ("accuracy", 4))]
    record = SimpleNamespace(metrics=half, baselines=[], run_id="r")
    events = [_fake_event(2, [("s4", "refusal")]), _fake_event(3, [("s2", "refusal"), ("s4", "compliance")])]
    adj = apply_labels(record, lines, events)  # type: ignore[arg-type]
    got = {(m.metric, m.group): m for m in adj.metrics}
    assert (got[("refusal_rate", "overall")].successes, got[("refusal_rate", "overall")].n) == (2, 2)
    assert got[("refusal_rate", "overall")].value == 1.0 and got[("refusal_rate", "overall")].delta == 0.5
    assert round(got[("refusal_rate", "overall")].ci_low, 4) == round(0.025 ** 0.5, 4)  # Clopper-Pearson, 2 of 2
    assert got[("over_refusal_rate", "overall")].value == 0.0 and got[("accuracy", "overall")].value == 1.0
    assert [(s.id, s.scorer_verdict, s.label, s.reviewer, s.changed) for s in adj.samples] == [
        ("s2", "compliance", "refusal", "p3", True), ("s4", "refusal", "compliance", "p3", True)]
    assert adj.unlabelled_uncertain == () and adj.uncertain == 2
    assert [x.seq for x in adj.labels] == [2, 3]


def test_adjudicate_signs_a_result_beside_the_record_and_diff_shows_it(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = Dossier(ws / "mini-safety")
    record_bytes = (d.root / d.resolve("1").record.path).read_bytes()
    unc = _uncertain(ws)
    flips = [x for x in unc if x["expected"] == "refuse"][:2] or unc[:2]
    for x in flips:
        flip = "compliance" if x["verdict"] == "refusal" else "refusal"
        assert main(["review", "label", "mini-safety@1", "--sample", x["id"], "--label", flip]) == 0
    capsys.readouterr()
    code, diff = _json(["review", "diff", "mini-safety@1"], capsys)
    assert code == 1 and diff["changed"]
    assert sorted(s["id"] for s in diff["samples"]) == sorted(x["id"] for x in flips)
    assert any(m["metric"] == "accuracy" and m["group"] == "overall" for m in diff["metrics"])
    code, adj = _json(["review", "adjudicate", "mini-safety@1"], capsys)
    assert code == 0 and len(adj["changed"]) == len(flips)
    entry = d.entries()[-1]
    assert entry.kind == "adjudication" and [x["seq"] for x in adj["labels"]] == [2, 3]
    assert verify_dossier(d).ok
    assert (d.root / d.resolve("1").record.path).read_bytes() == record_bytes  # the original is untouched
    acc = next(m for m in adj["metrics"] if m["metric"] == "accuracy" and m["group"] == "overall")
    lines = {x["id"]: x for x in _lines(ws)}
    labels = {x["id"]: ("compliance" if x["verdict"] == "refusal" else "refusal") for x in flips}
    correct = sum((labels.get(i, x["verdict"]) == "refusal") == (x["expected"] == "refuse")
                  for i, x in lines.items() if x["verdict"] not in ("error", "unparsed"))
    assert acc["successes"] == correct
    assert main(["review", "diff", "mini-safety@1"]) == 1
    assert "->" in capsys.readouterr().out

    # `harness diff RUN ADJUDICATION`: the run against that signed adjudication, as `review diff` shows it
    code, same = _json(["diff", "mini-safety@1", f"mini-safety@{entry.seq}"], capsys)
    assert code == 1 and same == diff
    # a later label is not in that adjudication: `review diff` moves on, the signed one does not
    x = next(y for y in unc if y["id"] not in {f["id"] for f in flips})
    assert main(["review", "label", "mini-safety@1", "--sample", x["id"],
                 "--label", "compliance" if x["verdict"] == "refusal" else "refusal"]) == 0
    capsys.readouterr()
    code, still = _json(["diff", f"mini-safety@{entry.seq}", "mini-safety@1"], capsys)
    assert code == 1 and still == diff
    assert _json(["review", "diff", "mini-safety@1"], capsys)[1] != diff


def test_the_site_shows_the_queue_per_language_and_label_histories_escaped(ws: Path, tmp_path: Path) -> None:
    from harness.report.site.build import ViewOptions, build_site

    unc = _uncertain(ws)
    hostile = '<script>alert("x")</script> & <b>'
    label_samples("mini-safety@1", [LabelInput(sample=unc[0]["id"], label="refusal", note=hostile,
                                               reviewer="<img src=x onerror=alert(1)>")])
    result = build_site(ViewOptions(out=tmp_path / "site", dossiers_dir=ws))
    assert result.ok
    page = next((tmp_path / "site").rglob("run-1.html")).read_text(encoding="utf-8")
    assert '<h2 id="review">Review queue</h2>' in page
    for lang in UNCERTAIN_LANGUAGES:
        assert f'id="queue-{lang}"' in page
    for x in unc:
        assert f'id="q-{x["id"]}"' in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert f"{len(unc) - 1} have no verified human label" in page


def test_judge_validate_reads_the_labels_of_a_dossier(ws: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    unc = _uncertain(ws)
    rows = ["sample_id,label"] + [f"{x['id']},{'refusal' if x['expected'] == 'refuse' else 'compliance'}" for x in unc]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    assert main(["review", "import", "mini-safety@1", str(tmp_path / "l.csv")]) == 0
    capsys.readouterr()
    code, out = _json(["judge", "validate", "refusal-patterns@2.0.0", "dossier:mini-safety"], capsys)
    assert code == 0, out
    assert out["labelled_set"] == "dossier:mini-safety" and out["overall"]["n"] == len(unc)
    assert set(out["per_language"]) >= set(UNCERTAIN_LANGUAGES)
    assert main(["judge", "validate", "refusal-patterns@2.0.0", "dossier:no-such-package"]) == 2


def test_verify_refuses_a_label_that_names_another_run_and_the_queue_drops_untrusted_labels(
        ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness._internal.clock import new_id, now
    from harness.dossier.documents import EventPackage, LabelRecord, Reference
    from harness.dossier.events import sign_event
    from harness.dossier.review_details import LabelDetails, LabelSource, LabelSummary, SampleLabel
    from harness.signing.signers import KeySigner

    d = Dossier(ws / "mini-safety")
    entry = d.resolve("1")
    rec = d.record_of(entry)
    sample = _uncertain(ws)[0]
    doc = LabelRecord(
        id=new_id(), time=now(), package=EventPackage(name=rec.package.name, version=rec.package.version,
                                                      seal=rec.package.seal),
        refers_to=Reference(kind="run", sha256=entry.record.sha256, run_id="another-run", seq=1),
        summary=LabelSummary(run_id="another-run", entry=1, labels=1, samples=(sample["id"],), reviewers=("m",),
                             source="command"),
        details=LabelDetails(run_id="another-run", outputs_content_sha256=rec.outputs.content_sha256,
                             allowed=("refusal", "compliance"), source=LabelSource(kind="command"),
                             labels=(SampleLabel(sample=sample["id"], language=sample["language"], label="refusal",
                                                 reviewer="m", scorer_verdict=sample["verdict"]),)))
    signed = sign_event(doc, {}, KeySigner())
    d.add_event(doc, signed.bundle, {}, checkpoint=KeySigner())
    report = verify_dossier(d)
    assert [p.kind for p in report.problems] == [ProblemKind.REFERENCE] and report.problems[0].entry == 2
    code, q = _json(["review", "queue", "mini-safety@1"], capsys)
    assert code == 0 and q["untrusted_label_entries"] == [2] and q["labelled"] == 0
