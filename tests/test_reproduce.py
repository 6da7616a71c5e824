"""Audit reproduction, rescoring, package archives, baseline updates and reviews, end to end.

One small sealed package (8 prompts of mini-safety) and one original run on the
embedded model are shared by the module; tests that damage something work on copies.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest

from harness._internal.hashing import sha256_file
from harness.audit.review import _strip_baselines
from harness.cli import main
from harness.dossier.documents import ReproductionSummary, ReproductionVerdict
from harness.dossier.log import Dossier, EventEntry
from harness.packages.package import load_package
from harness.packages.seal import check_package, seal_package
from harness.record import read_outputs
from harness.run import RunOptions, run_package
from harness.scoring.refusal import RefusalClassifier, load_patterns

from .conftest import environment

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
KEEP = ("en-comply-01", "en-comply-02", "en-comply-03", "en-refuse-01", "en-refuse-02", "en-refuse-03",
        "hi-comply-01", "hi-refuse-01")


def make_small_package(root: Path) -> Path:
    """mini-safety cut to 8 prompts (en and hi), without baselines, resealed."""
    shutil.copytree(REPO / "packages" / "mini-safety", root / "packages" / "small")
    if not (root / "lockfiles").exists():
        shutil.copytree(REPO / "lockfiles", root / "lockfiles")
    pkg = root / "packages" / "small"
    data = pkg / "data" / "prompts.jsonl"
    rows = [line for line in data.read_text(encoding="utf-8").splitlines() if json.loads(line)["id"] in KEEP]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    text = _strip_baselines((pkg / "manifest.toml").read_text(encoding="utf-8"))
    text = text.replace('name = "mini-safety"', 'name = "small"')
    text = re.sub(r'sha256 = "[0-9a-f]{64}"', f'sha256 = "{sha256_file(data)}"', text)
    text = re.sub(r"size = \d+", f"size = {data.stat().st_size}", text)
    (pkg / "manifest.toml").write_text(text, encoding="utf-8")
    seal_package(pkg)
    return pkg


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small package and its dossier with one run (greedy) and one sampled run (temperature 1)."""
    base = tmp_path_factory.mktemp("repro")
    with environment(HARNESS_CONFIG_DIR=str(base / "config"), HARNESS_DOSSIERS=str(base / "dossiers"),
                     HARNESS_CACHE_DIR=str(base / "cache")):
        pkg = make_small_package(base)
        run_package(RunOptions(package=pkg, progress=False))
        run_package(RunOptions(package=pkg, temperature=1.0, progress=False))
    return base


@pytest.fixture
def home(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the module's package and dossier (and caches), signed with the module's key."""
    shutil.copytree(base / "packages", tmp_path / "packages")
    shutil.copytree(base / "lockfiles", tmp_path / "lockfiles")
    shutil.copytree(base / "dossiers", tmp_path / "dossiers")
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))  # imports and envs stay private
    monkeypatch.setenv("HARNESS_DOSSIERS", str(tmp_path / "dossiers"))
    monkeypatch.setenv("HARNESS_PACKAGES", str(tmp_path / "packages"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def _verify_ok(capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["dossier", "verify", "small", "--json"]) == 0, capsys.readouterr()
    return _json(capsys)


def test_reproduce_exactly_and_record_it(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "small@1", "--json"]) == 0
    out = _json(capsys)
    assert out["verdict"] == "REPRODUCED" and out["exact"] and out["differing_samples"] == 0
    assert out["samples"] == len(KEEP) and out["metrics_out_of_tolerance"] == []
    assert out["tolerance"]["rule"] == "absolute" and out["tolerance"]["stated_in_package"] is True
    d = Dossier(home / "dossiers" / "small")
    entries = d.entries()
    assert [e.kind for e in entries] == ["run", "run", "run", "reproduction"]
    rep = entries[-1]
    assert isinstance(rep, EventEntry) and rep.refers_to == entries[0].record.sha256
    assert isinstance(rep.summary, ReproductionSummary)
    assert rep.summary.rerun == entries[2].run_id and rep.summary.verdict is ReproductionVerdict.EXACT
    report = _verify_ok(capsys)
    assert report["entries"] == 4 and report["ok"]
    # the text form names the verdict, the rule and the environment
    assert main(["reproduce", str(d.root / entries[0].record.path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("REPRODUCED (exact)") and "within 0.02 (absolute)" in text and "this environment" in text


def test_altered_package_is_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = home / "packages" / "small" / "manifest.toml"
    manifest.write_text(manifest.read_text().replace("max_tokens = 48", "max_tokens = 47"))
    n = len(Dossier(home / "dossiers" / "small").entries())
    assert main(["reproduce", "small@1"]) == 2
    err = capsys.readouterr().err
    assert "no package small with seal" in err and "does not match its seal" in err and "--archive" in err
    assert len(Dossier(home / "dossiers" / "small").entries()) == n  # nothing ran, nothing appended


def test_tampered_record_or_untrusted_signer_is_refused(home: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.pub"
    from harness.signing.keys import load_or_create_key

    key = load_or_create_key(tmp_path / "other-config")
    other.write_bytes(key.public_key_path.read_bytes())
    assert main(["reproduce", "small@1", "--trust-key", str(other)]) == 1
    assert "does not verify" in capsys.readouterr().err
    d = Dossier(home / "dossiers" / "small")
    record = d.root / d.entries()[0].record.path
    record.write_text(record.read_text().replace('"complete"', '"incomplete"', 1))
    assert main(["reproduce", "small@1"]) == 1
    assert "record" in capsys.readouterr().err


def test_changed_model_is_refused_or_marked(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = home / "tiny-chat-copy"
    shutil.copytree(REPO / "harness" / "assets" / "tiny-chat", model)
    (model / "notes.txt").write_text("same weights, one more file: another digest\n")
    assert main(["reproduce", "small@1", "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "weights digest" in err and "--allow-model-mismatch" in err
    rc = main(["reproduce", "small@1", "--model", str(model), "--allow-model-mismatch", "--json"])
    out = _json(capsys)
    assert rc == 4 and out["verdict"] == "REPRODUCED WITHIN TOLERANCE" and not out["exact"]
    assert any("model weights differ" in r for r in out["not_exact_because"])
    assert out["differing_samples"] == 0  # same weights, so the same answers: only the identity differs


def test_changed_seed_is_not_reproduced_and_names_the_samples(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["reproduce", "small@2", "--seed", "7", "--json"])
    out = _json(capsys)
    assert rc == 5 and out["verdict"] == "NOT REPRODUCED"
    assert out["differing_samples"] > 0 and out["first_differing_samples"]
    first = out["first_differing_samples"][0]
    assert first["id"] in KEEP and "response" in first["fields"]
    assert first["original"]["response"] != first["rerun"]["response"]
    assert out["metrics_out_of_tolerance"]
    assert all(abs(m["delta"]) > 0.02 for m in out["metrics_out_of_tolerance"] if m["delta"] is not None)
    assert any("seed" in r for r in out["not_exact_because"])
    main(["reproduce", "small@2", "--seed", "7"])
    text = capsys.readouterr().out
    assert text.startswith("NOT REPRODUCED") and "first differing samples" in text and "metrics out of tolerance" in text
    _verify_ok(capsys)


def test_rescore_with_another_scorer(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rescore", "small@1", "--scorer", "refusal-patterns@2.0.0", "--json"]) == 0
    out = _json(capsys)
    assert out["scorer"] == "refusal-patterns@2.0.0" and out["samples"] == len(KEEP)
    d = Dossier(home / "dossiers" / "small")
    entry = d.entries()[-1]
    assert isinstance(entry, EventEntry) and entry.kind == "rescore" and len(entry.files) == 1
    assert len(d.runs()) == 2  # nothing was generated
    original = {x["id"]: x for x in read_outputs(d.root / d.entries()[0].outputs.path)}
    scorer = RefusalClassifier(load_patterns("refusal-patterns@2.0.0"))
    changed = 0
    rescored = list(read_outputs(d.root / entry.files[0].path))
    assert sorted(x["id"] for x in rescored) == sorted(original) and len(original) == len(KEEP)
    for line in rescored:
        assert line["response"] == original[line["id"]]["response"]
        assert line["verdict"] == scorer.classify(line["response"], line["language"])
        assert line["original_verdict"] == original[line["id"]]["verdict"]
        changed += line["verdict"] != line["original_verdict"]
    assert out["changed_verdicts"] == changed
    _verify_ok(capsys)
    # the re-scored outputs are signed: editing them breaks verification
    path = d.root / entry.files[0].path
    text = path.read_text()
    flipped = {"refusal": "compliance", "compliance": "refusal"}
    edited = re.sub(r'"verdict":"(refusal|compliance)"', lambda m: f'"verdict":"{flipped[m[1]]}"', text, count=1)
    assert edited != text  # one verdict flipped, nothing else touched
    path.write_text(edited)
    assert main(["dossier", "verify", "small"]) == 1


def test_export_import_round_trip_then_reproduce_from_the_archive(home: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    a = tmp_path / "a.harness.tar.gz"
    assert main(["package", "export", "small", "-o", str(a), "--json"]) == 0
    seal = _json(capsys)["seal"]
    b = tmp_path / "b.harness.tar.gz"
    assert main(["package", "export", "small", "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()  # deterministic
    shutil.rmtree(home / "packages" / "small")  # only the archive is left
    assert main(["reproduce", "small@1"]) == 2
    assert "no package small with seal" in capsys.readouterr().err
    assert main(["reproduce", "small@1", "--archive", str(a), "--json"]) == 0
    assert _json(capsys)["verdict"] == "REPRODUCED"
    assert main(["package", "import", str(a), "--json"]) == 0
    imported = Path(_json(capsys)["path"])
    assert check_package(load_package(imported)).seal.seal == seal  # type: ignore[union-attr]
    assert main(["reproduce", "small@1", "--json"]) == 0  # found in the import store by its seal
    assert _json(capsys)["verdict"] == "REPRODUCED"
    # an altered archive is refused
    import tarfile

    bad = tmp_path / "bad.harness.tar.gz"
    with tarfile.open(a) as src, tarfile.open(bad, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            if m.name.endswith("data/prompts.jsonl"):
                data = data.replace(b"en-", b"EN-", 1)
            m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    assert main(["package", "import", str(bad)]) == 1
    assert "data/prompts.jsonl has sha256" in capsys.readouterr().err


def test_baseline_update_reseals_and_is_recorded(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = home / "packages" / "small"
    old_seal = load_package(pkg).seal.seal  # type: ignore[union-attr]
    assert main(["baseline", "update", "small", "--from", "small@2"]) == 2  # temperature override: refused
    assert "overrides" in capsys.readouterr().err
    assert main(["baseline", "update", "small", "--from", "small@1", "--json"]) == 0
    out = _json(capsys)
    m = check_package(load_package(pkg))
    assert out["old_seal"] == old_seal and out["new_seal"] == m.seal.seal != old_seal  # type: ignore[union-attr]
    rec = Dossier(home / "dossiers" / "small").record_of(Dossier(home / "dossiers" / "small").runs()[0])
    values = {x.metric: x.value for x in rec.metrics if x.group == "overall"}
    assert {b.metric: b.value for b in m.manifest.baselines} == {k: round(v, 4) for k, v in values.items()}
    assert all(b.model == "tiny-chat" and b.tolerance == 0.05 for b in m.manifest.baselines)
    assert "# Baselines updated from run" in (pkg / "manifest.toml").read_text()
    entry = Dossier(home / "dossiers" / "small").entries()[-1]
    assert entry.kind == "baseline" and entry.seal == m.seal.seal  # type: ignore[union-attr]
    _verify_ok(capsys)
    # the old run was made with the old seal: reproducing it now needs the old package
    assert main(["reproduce", "small@1"]) == 2


def test_approve_verify_and_log(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dossier", "approve", "small@1", "--note", "numbers match the CI report", "--reviewer", "alice",
                 "--checked", "read every hi answer", "--json"]) == 0
    out = _json(capsys)
    assert out["approves"]["entry"] == 1 and out["approves"]["reviewer"] == "alice"
    assert "read every hi answer" in out["checked"] and any("signatures verified" in c for c in out["checked"])
    d = Dossier(home / "dossiers" / "small")
    review = d.entries()[-1]
    assert isinstance(review, EventEntry) and review.kind == "review" and review.refers_to == d.entry_digest(1)
    _verify_ok(capsys)
    assert main(["dossier", "log", "small", "--json"]) == 0
    log = _json(capsys)
    assert [e["kind"] for e in log] == ["run", "run", "review"]
    assert log[0]["later"] == ["reviewed by alice (#3)"] and set(log[0]["key_metrics"]) >= {"accuracy"}
    assert log[2]["refers_to_entry"] == 1
    assert main(["dossier", "log", "small"]) == 0
    text = capsys.readouterr().out
    assert "review" in text and "alice" in text
    # editing the signed summary in the log is caught (every field is re-derived from the signed review)
    lines = d.log.read_text().splitlines()
    lines[-1] = lines[-1].replace('"alice"', '"mallory"')
    d.log.write_text("\n".join(lines) + "\n")
    assert main(["dossier", "verify", "small", "--json"]) == 1
    problems = _json(capsys)["problems"]
    assert any("field 'summary' does not match the signed review record" in p["what"] for p in problems)
    # and nothing in a dossier that does not verify can be approved
    assert main(["dossier", "approve", "small@1", "--note", "x"]) == 1


def test_environment_is_rebuilt_from_the_lockfile_and_the_run_happens_there(
        home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """--env rebuild: a uv venv from lockfiles/harness.txt (cached by its digest), harness re-executed inside it."""
    from harness.audit.environment import env_dir

    rc = main(["reproduce", "small@1", "--env", "rebuild", "--json"])
    out = json.loads(capfd.readouterr().out)
    assert rc == 0 and out["verdict"] == "REPRODUCED"
    assert out["environment"]["mode"] == "rebuilt" and out["environment"]["rerun_lockfile_matches"] is True
    lock_sha = sha256_file(home / "lockfiles" / "harness.txt")
    env = env_dir(lock_sha)
    assert (env / ".complete").read_text().strip() == lock_sha
    site = next((env / "lib").glob("python*/site-packages"))
    assert (site / "torch").is_dir() and not (site / "pytest").exists()  # the lock's pins, not this dev env
    assert Dossier(home / "dossiers" / "small").entries()[-1].kind == "reproduction"


def test_auto_rebuilds_only_when_the_environment_differs(home: Path) -> None:
    from harness.audit.environment import environment_plan

    pkg = load_package(home / "packages" / "small")
    here = environment_plan(pkg, "auto")
    assert (here.rebuild, here.matches, here.mode) == (False, True, "current")
    assert environment_plan(pkg, "rebuild").rebuild is True
    lock = home / "lockfiles" / "harness.txt"
    lock.write_text(re.sub(r"^numpy==[^ ]+", "numpy==0.0.1", lock.read_text(), count=1, flags=re.M))
    plan = environment_plan(pkg, "auto")
    assert plan.matches is False and plan.mismatch_count == 1 and plan.rebuild is True
    assert environment_plan(pkg, "current").rebuild is False


@pytest.mark.skipif(not (REPO.parent / "shared" / "data" / "xstest").is_dir(), reason="needs the data mirror ../shared/data")
def test_archive_of_an_upstream_package_carries_its_verified_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The archive brings the upstream file; after import no mirror is needed to read the package."""
    from harness.packages.archive import export_package, find_package, import_archive
    from harness.packages.data import load_samples, resolve_sources

    monkeypatch.chdir(REPO)
    path, pkg = export_package("xstest", tmp_path / "x.harness.tar.gz", mirror=REPO.parent / "shared" / "data")
    monkeypatch.chdir(tmp_path)  # no ./packages here: only the archive
    imported = import_archive(path)
    assert imported.seal == pkg.seal
    found = find_package(pkg.seal.seal, "xstest")  # type: ignore[union-attr]
    sources = resolve_sources(found)
    assert [s.origin for s in sources] == ["cache"] and len(load_samples(found, sources)) == 450


def test_rescore_with_a_judge_keeps_its_raw_output(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An LLM judge (tiny-chat, from a judge package) re-scores the recorded answers; nothing is generated."""
    from tests.test_judge import ANY_WORD, _judge_manifest

    judged = home / "packages" / "judged"
    shutil.copytree(home / "packages" / "small", judged)
    _judge_manifest(judged, regex=ANY_WORD)
    seal_package(judged)
    assert main(["rescore", "small@1", "--scorer", str(judged), "--json"]) == 0
    out = _json(capsys)
    assert out["scorer_details"]["kind"] == "judge" and out["scorer"] == "tiny-chat"
    d = Dossier(home / "dossiers" / "small")
    entry = d.entries()[-1]
    assert isinstance(entry, EventEntry) and len(d.runs()) == 2
    lines = list(read_outputs(d.root / entry.files[0].path))
    assert len(lines) == len(KEEP)
    for line in lines:  # every word parses as "compliance" under ANY_WORD; the raw answer is kept
        assert line["judge"]["raw"] is not None
        assert line["verdict"] == ("compliance" if re.search(ANY_WORD, line["judge"]["raw"]) else "unparsed")
    _verify_ok(capsys)
