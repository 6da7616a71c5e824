"""The fast paths behind the benchmarks keep the product's guarantees.

Each test pins one optimisation to the behaviour it must not change: a fast dossier
check still catches tampering, data files are hashed once per run and still verified,
the event-loop client still delivers every answer exactly once, digests still match.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

import harness.packages.data
import harness.packages.seal
from harness._internal import hashing as _hashing
from harness.backends.base import GenerationRequest
from harness.backends.openai import OpenAIBackend
from harness.dossier.log import Dossier
from harness.dossier.verify import verify_dossier
from harness.environment import installed_versions
from harness.packages.data import resolve_sources
from harness.packages.package import load_package
from harness.packages.seal import check_package
from harness.run import RunOptions, run_package

from .fake_openai import FakeOpenAI


def _two_runs(pkg_dir: Path, tmp_path: Path) -> Dossier:
    with FakeOpenAI() as srv:
        for _ in range(2):
            result = run_package(RunOptions(package=pkg_dir, endpoint=srv.url, model="fake-model", concurrency=8,
                                            dossiers_dir=tmp_path / "d", config_dir=tmp_path / "cfg", progress=False))
    return result.dossier


def test_chain_only_verify_catches_tampering_but_not_signers(pkg_dir: Path, tmp_path: Path) -> None:
    d = _two_runs(pkg_dir, tmp_path)
    assert verify_dossier(d, [], chain_only=True).ok  # no trusted keys needed: signatures are not checked
    assert not verify_dossier(d, []).ok  # the full check refuses an untrusted signer
    entry = d.entries()[0]
    rec = d.root / entry.record.path
    rec.write_bytes(rec.read_bytes().replace(b'"complete"', b'"COMPLETE"'))
    report = verify_dossier(d, [], chain_only=True)
    assert not report.ok and any("record file differs" in p.what for p in report.problems)
    assert not report.as_dict()["signatures_checked"]
    lines = d.log.read_bytes().splitlines(keepends=True)
    d.log.write_bytes(lines[1])  # drop the first entry
    report = verify_dossier(d, [], chain_only=True)
    assert any("chain broken" in p.what for p in report.problems)


def test_in_package_data_is_hashed_once_per_run(pkg_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = _hashing.sha256_file

    def counting(path: Path) -> str:
        calls.append(Path(path).name)
        return real(path)

    for mod in (harness.packages.seal, harness.packages.data):
        monkeypatch.setattr(mod, "sha256_file", counting)
    pkg = check_package(pkg_dir)
    sources = resolve_sources(pkg)
    assert calls.count("prompts.jsonl") == 1
    assert sources[0].sha256 == real(pkg_dir / "data" / "prompts.jsonl")
    # a package not checked in this process still hashes (and so verifies) its data
    calls.clear()
    resolve_sources(load_package(pkg_dir))
    assert calls.count("prompts.jsonl") == 1


def test_sha256_file_small_and_large(tmp_path: Path) -> None:
    for size in (0, 10, (1 << 20) - 1, 1 << 20, (3 << 20) + 7):
        p = tmp_path / f"f{size}"
        p.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
        assert _hashing.sha256_file(p) == hashlib.sha256(p.read_bytes()).hexdigest()


def test_installed_versions_agree_with_importlib_metadata() -> None:
    slow: dict[str, str] = {}
    for d in metadata.distributions():
        if d.metadata["Name"]:
            slow.setdefault(canonicalize_name(d.metadata["Name"]), d.version)
    assert installed_versions() == slow


def test_generate_many_delivers_each_answer_once_and_stops_on_error() -> None:
    reqs = [GenerationRequest(f"s{i}", f"prompt {i}", 8, 0.0, 1.0, (), i) for i in range(40)]
    with FakeOpenAI(faults={"prompt 7": ["500"]}) as srv:
        b = OpenAIBackend(srv.url, "fake-model", max_retries=2, concurrency=8)
        got: dict[int, str] = {}

        def keep(i: int, res: object) -> None:
            assert i not in got
            got[i] = res.text  # type: ignore[attr-defined]

        b.generate_many(reqs, keep)
        assert sorted(got) == list(range(40)) and all(t.startswith("Sure") for t in got.values())
        sent = [r["seed"] for r in srv.requests if r["messages"][0]["content"].startswith("prompt")]
        assert sorted(sent) == sorted([*range(40), 7])  # one retry of the faulted prompt, nothing else twice

        n_before = len(srv.requests)

        def boom(i: int, res: object) -> None:
            raise RuntimeError("stop")

        with pytest.raises(RuntimeError, match="stop"):
            b.generate_many(reqs, boom)
        assert len(srv.requests) - n_before < len(reqs)  # queued requests were dropped
        b.close()


def test_run_outputs_are_identical_to_a_sequential_run(pkg_dir: Path, tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        runs = [run_package(RunOptions(package=pkg_dir, endpoint=srv.url, model="fake-model", concurrency=c,
                                       dossiers_dir=tmp_path / "d", config_dir=tmp_path / "cfg", progress=False))
                for c in (1, 32)]
    assert runs[0].record.outputs.content_sha256 == runs[1].record.outputs.content_sha256
    lines = [json.loads(x) for x in (runs[1].run_dir / "outputs.jsonl").read_text().splitlines()]
    assert len(lines) == runs[1].record.outputs.samples == len({x["id"] for x in lines})


@pytest.mark.parametrize("n", [0, 1, 1023, 1024, 1025, 2500])
def test_content_digest_is_the_canonical_digest_of_the_sorted_stable_lines(n: int) -> None:
    import random

    from harness._internal.hashing import canonical_digest
    from harness.record import VOLATILE_OUTPUT_FIELDS, content_digest

    lines = [{"id": f"s{i:05d}", "response": "é" * (i % 7), "verdict": "refusal", "seed": i,
              "timing": {"latency_s": 0.01 * i}, "attempts": 1 + i % 2} for i in range(n)]
    random.Random(n).shuffle(lines)
    stable = sorted(({k: v for k, v in x.items() if k not in VOLATILE_OUTPUT_FIELDS} for x in lines), key=lambda d: d["id"])
    assert content_digest(lines) == canonical_digest(stable)


def test_diff_of_identical_outputs_skips_reading_but_reports_the_same(pkg_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.diff
    from harness.diff import diff_runs

    read: list[Path] = []
    real_read = harness.diff._read_compact

    def counting(path: Path) -> object:
        read.append(path)
        return real_read(path)

    monkeypatch.setattr(harness.diff, "_read_compact", counting)
    d = _two_runs(pkg_dir, tmp_path)
    e1, e2 = d.entries()
    a, b = d.record_of(e1), d.record_of(e2)
    fa, fb = d.root / e1.outputs.path, d.root / e2.outputs.path
    read.clear()
    fast = diff_runs(a, b, fa, fb)
    assert fast.outputs_identical and fast.metrics
    assert read == []  # the equal content digests were enough: no outputs file was read
    # the same runs, with the digest shortcut defeated: every line is read and compared
    b_other = b.model_copy(update={"outputs": b.outputs.model_copy(update={"content_sha256": "0" * 64})})
    slow = diff_runs(a, b_other, fa, fb)
    assert read == [fa, fb]
    assert not slow.outputs_identical
    assert (slow.flips, slow.responses_changed, slow.only_in_a, slow.only_in_b) == ([], 0, 0, 0)
    assert slow.metrics == fast.metrics


def test_generate_inside_another_event_loop_uses_a_helper_thread() -> None:
    """A judge (or any caller) may call generate from a callback of a running loop."""
    import asyncio

    with FakeOpenAI() as srv:
        b = OpenAIBackend(srv.url, "fake-model", max_retries=0)

        async def inside() -> str:
            return b.generate(GenerationRequest("s", "hello", 8, 0.0, 1.0, (), 1)).text

        assert asyncio.run(inside()).startswith("Sure")
        b.close()
