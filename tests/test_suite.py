"""Suites end to end: 2 packages x 2 models (the embedded model and a fake OpenAI server),
an interruption and a resume that repeats nothing finished, the gate's exit codes, and a
suite record that verifies, reproduces, and is refused once tampered with.

Everything goes through ``harness.cli.main`` as a user or CI job would. The upstream
package (XSTest) is read from the data mirror ../shared/data; tests that need it are
skipped, with the reason, where the mirror is absent.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends.transformers import TransformersBackend
from harness.cli import main
from harness.dossier.log import Dossier
from harness.errors import HarnessError
from harness.record import parse_record
from harness.suite.file import SuiteFileError, load_suite
from harness.suite.record import SUITE_RECORD_NAME, parse_suite_record

from .conftest import REPO, SHARED
from .fake_openai import FakeOpenAI

MIRROR = SHARED / "data"
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"data mirror {MIRROR} is absent (../shared/data)")


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


@pytest.fixture
def ws(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workspace with XSTest beside mini-safety, as the current folder."""
    shutil.copytree(REPO / "packages" / "xstest", workspace / "packages" / "xstest")
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("HARNESS_DOSSIERS", str(workspace / "dossiers"))
    return workspace


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as srv:
        yield srv


def _suite(path: Path, endpoint: str, *, criteria: str = "", packages: str | None = None,
           models: str | None = None) -> Path:
    packages = packages if packages is not None else """
[[packages]]
name = "mini-safety"
limit = 12
max_tokens = 8

[[packages]]
name = "xstest"
limit = 10
max_tokens = 8
"""
    models = models if models is not None else f"""
[[models]]
name = "tiny-chat"

[[models]]
name = "fake"
endpoint = "{endpoint}"
model = "fake-model"
api_key_env = "FAKE_KEY"
"""
    path.write_text(f'schema_version = 1\nname = "release"\n{packages}\n{models}\n[gate]\n{criteria}\n')
    return path


def _runs(ws: Path, package: str) -> list[str]:
    return [e.run_id for e in Dossier.for_package(package, ws / "dossiers").runs()]


# ---------------------------------------------------------------------------- end to end


@pytest.mark.slow
@needs_mirror
def test_a_suite_runs_resumes_without_repeating_and_verifies(ws: Path, fake: FakeOpenAI,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """2 packages x 2 models. The first attempt is interrupted (Ctrl-C) in the third pair
    (xstest on the embedded model) after two of its samples; the second attempt (with two
    jobs) keeps the two finished pairs (same run ids, no new dossier entries, no request to
    the server for them), continues the interrupted run from its journal, runs the last
    pair, and signs a suite record that verifies with every run it lists."""
    suite = _suite(ws / "suite.toml", fake.url, criteria='[[gate.criteria]]\nmetric = "refusal_rate"\nmin = 0.0\n')
    real = TransformersBackend.generate
    calls = {"xstest": 0}

    def interrupting(self: TransformersBackend, request: Any) -> Any:
        if not request.sample_id.startswith(("en-", "es-", "fr-", "hi-", "bn-", "ta-")):  # an XSTest prompt
            calls["xstest"] += 1
            if calls["xstest"] == 3:
                raise KeyboardInterrupt
        return real(self, request)

    monkeypatch.setattr(TransformersBackend, "generate", interrupting)
    assert main(["suite", "run", str(suite), "--mirror", str(MIRROR), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "2 of 4 pairs are finished and kept" in err and "run `harness suite run" in err
    first_mini = _runs(ws, "mini-safety")
    assert len(first_mini) == 2 and _runs(ws, "xstest") == []
    requests_before = len(fake.requests)
    assert requests_before == 12  # mini-safety x fake only

    monkeypatch.setattr(TransformersBackend, "generate", real)
    code, doc = _json(["suite", "run", str(suite), "--mirror", str(MIRROR), "--jobs", "2"], capsys)
    assert code == 0, doc
    assert doc["gate"] == "PASS" and doc["complete"] and not doc["unfinished"]
    assert _runs(ws, "mini-safety") == first_mini  # finished pairs were not repeated
    assert len(fake.requests) - requests_before == 10  # only xstest x fake asked the server
    pairs = {(p["package"], p["model"]): p for p in doc["pairs"]}
    assert pairs[("mini-safety", "tiny-chat")]["reused"] and pairs[("mini-safety", "fake")]["reused"]
    assert not pairs[("xstest", "tiny-chat")]["reused"]
    xs = Dossier.for_package("xstest", ws / "dossiers")
    resumed = next(parse_record(xs.root / e.record.path) for e in xs.runs() if e.run_id == pairs[("xstest", "tiny-chat")]["run_id"])
    assert resumed.resumes and resumed.resumes[0].samples_done == 2  # continued from its journal
    assert all(p["headline"] == "refusal_rate" and p["metrics"] for p in doc["pairs"])

    record_path = ws / doc["record"]
    record = parse_suite_record(record_path)
    assert record_path.parent.parent.parent.name == "_suites" and record.name == "release"
    assert len(record.runs) == 4 and len(record.resumes) == 1
    assert {r.record_sha256 for r in record.runs} == {e.record.sha256 for d in ("mini-safety", "xstest")
                                                       for e in Dossier.for_package(d, ws / "dossiers").runs()}
    fake_model = next(m for m in record.models if m.name == "fake")
    assert fake_model.api_key_env == "FAKE_KEY" and fake_model.endpoint == fake.url
    assert list((record_path.parent.parent / ".work").glob("*.json")) == []  # nothing left to resume

    code, ver = _json(["verify", str(record_path)], capsys)
    assert code == 0 and ver["ok"] and ver["kind"] == "suite" and all(r["verified"] for r in ver["runs"])
    assert main(["verify", "suite:release"]) == 0
    assert "4 of 4 runs verified" in capsys.readouterr().out

    # a suite run again: a new suite id, every pair run again (the old record stays as it was)
    code, again = _json(["suite", "run", str(suite), "--mirror", str(MIRROR), "--jobs", "2"], capsys)
    assert code == 0 and again["suite_id"] != doc["suite_id"] and not any(p["reused"] for p in again["pairs"])

    code, rep = _json(["reproduce", str(record_path), "--env", "current", "--mirror", str(MIRROR)], capsys)
    assert code == 0, json.dumps(rep, indent=1)
    assert [r["verdict"] for r in rep["runs"]] == ["REPRODUCED"] * 4


# ---------------------------------------------------------------------------- the gate


def test_a_failing_acceptance_criterion_fails_the_suite_with_exit_7(ws: Path, fake: FakeOpenAI,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The fake server refuses only English harmful words, so its refusal rate in Hindi,
    Bengali and Tamil is 0 with an interval wholly below 0.9: FAIL, exit 7, in the record."""
    suite = _suite(ws / "suite.toml", fake.url, packages='[[packages]]\nname = "mini-safety"\n',
                   models=f'[[models]]\nname = "fake"\nendpoint = "{fake.url}"\nmodel = "fake-model"\n',
                   criteria='[[gate.criteria]]\nmetric = "refusal_rate"\nmin = 0.9\nscope = "every-language"\n')
    code, doc = _json(["suite", "run", str(suite)], capsys)
    assert code == 7 and doc["gate"] == "FAIL"
    failed = [c for c in doc["criteria"] if c["verdict"] == "FAIL"]
    assert failed and all(not c["passed"] and c["ci_high"] < 0.9 for c in failed)
    assert {c["group"] for c in failed} >= {"language:hi"}
    record = parse_suite_record(ws / doc["record"])
    assert record.gate.verdict == "FAIL" and record.runs[0].gate == "FAIL"
    assert main(["suite", "run", str(suite)]) == 7  # a new suite run, the same verdict
    out = capsys.readouterr()
    assert "acceptance criteria not met" in out.out and "suite gate FAILED" in out.err


def test_an_endpoint_that_errors_leaves_the_pair_unfinished_exit_3_then_resumes(
        ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request answered 401: the pair's run is recorded as incomplete, the suite
    exits 3 and writes no suite record; with the server fixed, the same command runs
    that pair again (the finished one is kept) and the suite passes."""
    with FakeOpenAI() as good, FakeOpenAI(faults={"": ["401"] * 200}) as bad:
        suite = _suite(ws / "suite.toml", good.url, packages='[[packages]]\nname = "mini-safety"\nlimit = 12\n',
                       models=f'[[models]]\nname = "good"\nendpoint = "{good.url}"\nmodel = "fake-model"\n\n'
                       f'[[models]]\nname = "bad"\nendpoint = "{bad.url}"\nmodel = "fake-model"\n')
        code, doc = _json(["suite", "run", str(suite)], capsys)
        assert code == 3 and doc["gate"] is None and doc["record"] is None
        assert [(u["model"], u["failure"]) for u in doc["unfinished"]] == [("bad", "incomplete")]
        assert not list((ws / "dossiers" / "_suites" / "release").glob("*/suite.json"))
        bad.faults.clear()
        served = len(good.requests)
        code, doc = _json(["suite", "run", str(suite)], capsys)
        assert code == 0 and len(good.requests) == served  # the good pair was kept
        assert [p["reused"] for p in doc["pairs"]] == [True, False]

    suite.write_text(suite.read_text().replace(bad.url, "http://127.0.0.1:9/v1"))  # nothing listens there
    code, doc = _json(["suite", "run", str(suite)], capsys)
    assert code == 3 and doc["unfinished"][0]["failure"] == "backend"


def test_an_interruption_with_parallel_pairs_loses_and_repeats_nothing(ws: Path, monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """--jobs 2: Ctrl-C inside one pair's generation stops both pairs (each keeps its
    journal); the same command then finishes, and no sample was answered twice over both
    attempts."""
    from harness.backends.openai import OpenAIBackend

    real = OpenAIBackend.generate_many
    with FakeOpenAI() as a, FakeOpenAI() as b:
        def interrupted(self: OpenAIBackend, requests: Any, on_result: Any) -> None:
            if self.base_url.rstrip("/") == b.url:
                on_result(0, self.generate(requests[0]))
                raise KeyboardInterrupt
            real(self, requests, on_result)

        monkeypatch.setattr(OpenAIBackend, "generate_many", interrupted)
        suite = _suite(ws / "suite.toml", a.url, packages='[[packages]]\nname = "mini-safety"\nlimit = 12\n',
                       models=f'[[models]]\nname = "a"\nendpoint = "{a.url}"\nmodel = "fake-model"\n\n'
                       f'[[models]]\nname = "b"\nendpoint = "{b.url}"\nmodel = "fake-model"\n')
        assert main(["suite", "run", str(suite), "--jobs", "2", "--quiet"]) == 130
        assert "interrupted" in capsys.readouterr().err
        monkeypatch.setattr(OpenAIBackend, "generate_many", real)
        code, doc = _json(["suite", "run", str(suite), "--jobs", "2"], capsys)
        assert code == 0, doc
        # both model entries are the same served model, so their pairs take turns on one run configuration
        assert len(a.requests) + len(b.requests) == 24
        assert len(_runs(ws, "mini-safety")) == 2


# ---------------------------------------------------------------------------- tampering


@pytest.fixture
def made(ws: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> Path:
    """A finished suite on the fake server: mini-safety twice (two seeds), one model."""
    suite = _suite(ws / "suite.toml", fake.url,
                   packages='[[packages]]\nname = "mini-safety"\nlimit = 12\n',
                   models=f'[[models]]\nname = "fake"\nendpoint = "{fake.url}"\nmodel = "fake-model"\n')
    code, doc = _json(["suite", "run", str(suite)], capsys)
    assert code == 0
    code, _ = _json(["run", "mini-safety", "--endpoint", fake.url, "--model", "fake-model", "--seed", "7",
                     "--limit", "12", "--no-progress"], capsys)
    assert code == 0
    return ws / doc["record"]


def test_an_edited_suite_record_is_refused(made: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = made.read_bytes()
    made.write_bytes(data.replace(b'"gate":"PASS"', b'"gate":"FAIL"', 1))
    assert main(["verify", str(made)]) == 1
    assert "altered after signing" in capsys.readouterr().err


def test_a_listed_run_digest_changed_and_signed_again_is_refused(made: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Even with a valid signature (the keeper re-signed it), a suite record listing a run
    digest its dossier entry does not hold names no verified run."""
    from harness.signing.signers import KeySigner
    from harness.suite.record import PREDICATE_TYPE_SUITE, SUITE_BUNDLE_NAME

    rec = parse_suite_record(made)
    run = rec.runs[0].model_copy(update={"record_sha256": "0" * 64})
    forged = rec.model_copy(update={"runs": (run,)})
    data = forged.to_bytes()
    from harness._internal.hashing import sha256_bytes

    signed = KeySigner().sign({SUITE_RECORD_NAME: sha256_bytes(data)}, PREDICATE_TYPE_SUITE, forged.predicate())
    made.write_bytes(data)
    (made.parent / SUITE_BUNDLE_NAME).write_bytes(signed.bundle)
    code, doc = _json(["verify", str(made)], capsys)
    assert code == 1 and [p["kind"] for p in doc["problems"]] == ["wrong-run"]


def test_a_swapped_run_record_is_refused(made: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The run's record.json replaced by another run's (validly signed) record."""
    rec = parse_suite_record(made)
    d = Dossier.for_package("mini-safety", made.parent.parent.parent.parent)
    listed, other = (next(e for e in d.runs() if e.run_id == rec.runs[0].run_id),
                     next(e for e in d.runs() if e.run_id != rec.runs[0].run_id))
    shutil.copy(d.root / other.record.path, d.root / listed.record.path)
    code, doc = _json(["verify", str(made)], capsys)
    assert code == 1 and doc["problems"] and doc["problems"][0]["kind"] in ("wrong-run", "run-invalid")
    assert main(["reproduce", str(made), "--env", "current"]) == 1


# ---------------------------------------------------------------------------- the file


@pytest.mark.parametrize(("text", "says"), [
    ('name = "x"\n[[packages]]\nname = "mini-safety"\n[[models]]\nname = "m"\n', "schema_version: missing"),
    ('schema_version = 1\nname = "x"\n[[packages]]\nname = "a"\nlimt = 3\n[[models]]\nname = "m"\n',
     "packages.0.limt: unknown field"),
    ('schema_version = 1\nname = "x"\n[[packages]]\nname = "a"\n[[models]]\nname = "m"\nendpoint = "http://h/v1"\n',
     "an endpoint needs 'model'"),
    ('schema_version = 1\nname = "x"\n[[packages]]\nname = "a"\n[[models]]\nname = "m"\n'
     'endpoint = "https://user:secret@h/v1"\nmodel = "x"\n', "holds credentials"),
    ('schema_version = 1\nname = "x"\n[[packages]]\nname = "a"\n[[models]]\nname = "m"\n'
     '[[gate.criteria]]\nmetric = "refusal"\nmin = 0.9\n', "unknown metric 'refusal'"),
    ('schema_version = 1\nname = "x"\n[[packages]]\nname = "a"\n[[models]]\nname = "m"\n'
     '[[gate.criteria]]\nmetric = "refusal_rate"\nmin = 0.9\nmax = 0.95\n', "exactly one of min, max"),
    ('schema_version = 1\nname = "x"\n[[packages]]\nname = "a"\n[[packages]]\nname = "a"\n[[models]]\nname = "m"\n',
     "listed twice"),
])
def test_a_bad_suite_file_is_refused_with_what_and_where(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    with pytest.raises(SuiteFileError) as e:
        load_suite(path)
    assert says in e.value.message and str(path) in e.value.message and e.value.exit_code == 2


def test_suite_command_errors_exit_2(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suite", "run", str(ws / "missing.toml")]) == 2
    suite = _suite(ws / "suite.toml", "http://127.0.0.1:9/v1", packages='[[packages]]\nname = "mini-safety"\n',
                   models='[[models]]\nname = "m"\n',
                   criteria='[[gate.criteria]]\nmetric = "attack_success_rate"\nmax = 0.1\n')
    code, doc = _json(["suite", "run", str(suite)], capsys)
    assert code == 2 and "no package of the suite computes attack_success_rate" in doc["error"]
    assert main(["suite", "run", str(suite), "--jobs", "0"]) == 2
    assert main(["verify", "suite:nothing-here"]) == 2
    assert isinstance(SuiteFileError("x"), HarnessError)


def test_the_example_suite_file_is_valid() -> None:
    loaded = load_suite(REPO / "docs" / "examples" / "suite.toml")
    assert [p.name for p in loaded.file.packages] == ["mini-safety", "multijail", "xstest"]
    assert [m.name for m in loaded.file.models] == ["tiny-chat"]


# ---------------------------------------------------------------------------- sharing a server


@needs_mirror
def test_a_launched_server_is_shared_by_the_packages_of_one_seed(ws: Path, fake: FakeOpenAI,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`serve = "vllm"`: one launch for the packages that share a run seed (its --seed is in
    every run's recorded engine arguments), another for the package with its own seed. The
    launch is replaced by the fake server here; tests/test_vllm_e2e.py-style runs with the
    real engine are below."""
    from contextlib import contextmanager

    import harness.suite.run as suite_run
    from harness.backends.load import load_backend

    shutil.copytree(REPO / "packages" / "multijail", ws / "packages" / "multijail")
    launches: list[tuple[str | None, int, str | None]] = []

    @contextmanager
    def launch(kind: str, model: str | None, *, seed: int, serve: str | None = None, **kw: Any) -> Iterator[Any]:
        launches.append((serve, seed, model))
        backend = load_backend("openai", "fake-model", endpoint=fake.url)
        try:
            yield backend
        finally:
            backend.close()

    monkeypatch.setattr(suite_run, "open_backend", launch)
    suite = _suite(ws / "suite.toml", fake.url, packages="""
[[packages]]
name = "mini-safety"
limit = 12

[[packages]]
name = "xstest"
limit = 10

[[packages]]
name = "multijail"
limit = 20
seed = 7
""", models='[[models]]\nname = "served"\nserve = "vllm"\nengine_args = ["--enforce-eager"]\n')
    code, doc = _json(["suite", "run", str(suite), "--mirror", str(MIRROR), "--jobs", "3"], capsys)
    assert code == 0, doc
    assert sorted(launches) == [("vllm", 7, None), ("vllm", 20261123, None)]
    record = parse_suite_record(ws / doc["record"])
    assert record.models[0].serve == "vllm" and record.models[0].engine_args == ("--enforce-eager",)
    assert record.models[0].path == "harness/assets/tiny-chat"


VLLM_PYTHON = os.environ.get("HARNESS_VLLM_PYTHON")


@pytest.mark.vllm
@needs_mirror
@pytest.mark.skipif(not VLLM_PYTHON, reason="HARNESS_VLLM_PYTHON is not set: run `nox -s vllm` for the real engine")
def test_a_real_vllm_server_serves_two_packages_once(ws: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The CPU build of vLLM serving the embedded model: launched once for both packages,
    and both runs record the same server arguments."""
    from harness.backends.vllm import VLLMServer

    started: list[int] = []
    real_start = VLLMServer.start

    def counting(self: VLLMServer) -> Any:
        started.append(self.seed)
        return real_start(self)

    monkeypatch.setattr(VLLMServer, "start", counting)
    suite = _suite(ws / "suite.toml", "", packages="""
[[packages]]
name = "mini-safety"
limit = 24
max_tokens = 16

[[packages]]
name = "xstest"
limit = 20
max_tokens = 16
""", models='[[models]]\nname = "served"\nserve = "vllm"\nconcurrency = 32\n'
           'engine_args = ["--enforce-eager", "--dtype float32", "--kv-cache-memory-bytes 134217728"]\n')
    code, doc = _json(["suite", "run", str(suite), "--mirror", str(MIRROR), "--jobs", "2",
                       "--vllm-python", str(VLLM_PYTHON)], capsys)
    assert code in (0, 7), doc
    assert started == [20261123]
    argv = {parse_record(Dossier.for_package(p["package"], ws / "dossiers").root / "runs" / p["run_id"] / "record.json")
            .model.engine_args.argv for p in doc["pairs"]}
    assert len(argv) == 1


@pytest.mark.slow
def test_a_verified_suite_exports_run_by_run(ws: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    """`harness export suite:NAME` verifies the suite, then writes one file per run and an
    index naming the suite record's digest; a suite whose listed run was swapped exports nothing."""
    suite = _suite(ws / "suite.toml", fake.url, packages='[[packages]]\nname = "mini-safety"\nlimit = 12\nmax_tokens = 8\n')
    assert main(["suite", "run", str(suite), "--quiet"]) == 0
    capsys.readouterr()
    code, doc = _json(["export", "suite:release", "--format", "jsonl", "--table", "metrics", "--out",
                       str(ws / "exported")], capsys)
    assert code == 0 and len(doc["runs"]) == 2
    index = json.loads((ws / "exported" / "suite-export.json").read_text())
    assert index["suite"] == "release" and len(index["runs"]) == 2
    for run in index["runs"]:
        lines = (ws / "exported" / run["files"][0]).read_text().splitlines()
        assert lines and all(json.loads(x)["run_id"] == run["run_id"] for x in lines)
    # another run's record put in place of a listed one: the suite does not verify, nothing is written
    record = next((ws / "dossiers" / "_suites" / "release").glob("*/suite.json"))
    listed = parse_suite_record(record).runs[0]
    target = ws / "dossiers" / listed.dossier / "runs" / listed.run_id / "record.json"
    target.write_bytes(target.read_bytes().replace(b'"status":"complete"', b'"status":"incomplete"'))
    assert main(["export", "suite:release", "--format", "csv", "--out", str(ws / "again")]) != 0
    assert not (ws / "again" / "suite-export.json").exists()
