"""The diff's fast outputs reader and column-wise comparison against the straightforward one.

`harness.diff` reads outputs lines in the harness's own form by pattern and compares
samples column-wise; the reference below is the straightforward form (every line
through json.loads, one pass per sample, a 2x2 table built from the list of pairs). Both
must report the same flips, response changes, metric deltas, intervals and tests, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from harness.backends.base import ModelIdentity
from harness.diff import _read_compact, diff_runs
from harness.environment import HarnessInfo, LockRef, PlatformInfo
from harness.errors import RecordError
from harness.record import (
    DataRef,
    GenerationParams,
    OutputsRef,
    PackageRef,
    RunRecord,
    SeedPlan,
    output_line,
    read_outputs,
)
from harness.scoring.base import RefusalScorerInfo
from harness.scoring.metrics import Scored, metric_outcome
from harness.scoring.stats import holm, paired_difference, unpaired_difference

METRICS = ("refusal_rate", "attack_success_rate", "over_refusal_rate", "compliance_rate", "accuracy")
LANGS = ("en", "de", "ja")
CATS = ("violence", "fraud", "online-safety")


# --- the reference: the diff's per-sample part as it was before it was made fast ---

def _ref_read(path: Path) -> tuple[dict[str, Scored], dict[str, str | bytes]]:
    scored: dict[str, Scored] = {}
    responses: dict[str, str | bytes] = {}
    for x in read_outputs(path):
        sid = x["id"]
        scored[sid] = Scored(sid, x["language"], x["category"], x["expected"], x["verdict"])
        resp = x.get("response")
        if isinstance(resp, str) and len(resp) <= 64:
            responses[sid] = resp
        else:
            responses[sid] = hashlib.blake2b(json.dumps(resp).encode(), digest_size=16).digest()
    return scored, responses


def _reference(a: RunRecord, b: RunRecord, fa: Path, fb: Path) -> dict[str, Any]:
    sa, ra = _ref_read(fa)
    sb, rb = _ref_read(fb)
    common = sorted(set(sa) & set(sb))
    out: dict[str, Any] = {
        "only_in_a": len(set(sa) - set(sb)), "only_in_b": len(set(sb) - set(sa)),
        "responses_changed": sum(1 for i in common if ra[i] != rb[i]),
        "flips": [(i, sa[i].verdict, sb[i].verdict) for i in common if sa[i].verdict != sb[i].verdict],
        "metrics": [],
    }
    mb = {(m.metric, m.group): m for m in b.metrics}
    found = []
    for m in a.metrics:
        other = mb.get((m.metric, m.group))
        if other is None:
            continue
        pairs: dict[str, list[tuple[float, float]]] = {"overall": []}
        for i in common:
            x, y = sa[i], sb[i]
            oa, ob = metric_outcome(m.metric, x), metric_outcome(m.metric, y)
            if oa is None or ob is None:
                continue
            for key in ("overall", f"language:{x.language}", f"category:{x.category}"):
                pairs.setdefault(key, []).append((float(oa), float(ob)))
        group = pairs.get(m.group, [])
        if group and len(group) == m.n == other.n:
            table = [sum(1 for x, y in group if (x, y) == cell) for cell in ((1, 1), (1, 0), (0, 1), (0, 0))]
            d = paired_difference(*table)
        else:
            d = unpaired_difference(m.successes, m.n, other.successes, other.n)
        found.append((m, other, d))
    for (m, other, d), p_adj in zip(found, holm([d.p_value for _, _, d in found]), strict=True):
        delta = other.value - m.value
        out["metrics"].append((m.metric, m.group, round(delta, 6), round(d.ci_low, 6), round(d.ci_high, 6),
                               p_adj < 0.05 and delta != 0.0, d.n_a if d.paired else 0))
    return out


# --- generated runs ---

def _lines(n: int, seed: int, flip_every: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        expected = "refuse" if i % 3 else "comply"
        verdict = rng.choice(("refusal", "compliance", "compliance", "refusal", "error", "unparsed")[: 4 + (i % 7 == 0) * 2])
        if flip_every and i % flip_every == 0 and verdict in ("refusal", "compliance"):
            verdict = "compliance" if verdict == "refusal" else "refusal"
        response = rng.choice(("I'm sorry, but I can't help with that.", "Sure.", "", "x" * 65,
                               "Here is how:\n1. \"quoted\" \\ step", "Voilà — 日本語 ✓", "long " * 40))
        lines.append({
            "id": f"s{i:05d}", "language": LANGS[i % 3], "category": CATS[(i // 3) % 3], "expected": expected,
            "prompt_sha256": hashlib.sha256(str(i).encode()).hexdigest(), "seed": rng.randrange(2**32),
            "response": response, "finish_reason": "error" if verdict == "error" else "stop", "verdict": verdict,
            "correct": None if verdict in ("error", "unparsed") else (verdict == "refusal") == (expected == "refuse"),
            "error": "HTTP 500: \"boom\"" if verdict == "error" else None, "attempts": 1 + i % 2,
            "timing": {} if verdict == "error" else {"latency_s": round(rng.random(), 4), "completion_tokens": i % 50},
        })
    return lines


def _record(run_id: str, lines: list[dict[str, Any]], rng: random.Random) -> RunRecord:
    """A record whose metrics name every metric and group (values made up: the diff takes them as given)."""
    groups = ["overall", *(f"language:{x}" for x in LANGS), *(f"category:{x}" for x in CATS), "language:xx"]
    metrics = []
    for metric in METRICS:
        for group in groups:
            v = round(rng.random(), 4)
            metrics.append({"metric": metric, "group": group, "value": v, "ci_low": v - 0.05, "ci_high": v + 0.04,
                            "n": len(lines), "successes": round(v * len(lines))})
    return RunRecord(
        run_id=run_id, status="complete", started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:01:00Z",
        duration_s=60.0, package=PackageRef(name="p", version="1", seal="s", manifest_sha256="0" * 64, license="MIT"),
        data=[DataRef(id="d", sha256="1" * 64, size=1)],
        lockfile=LockRef(lockfile="l", sha256="2" * 64, matches=True, checked=1, mismatch_count=0, mismatches=[]),
        harness=HarnessInfo(version="0", commit=None, dirty=None),
        platform=PlatformInfo(python="3", implementation="CPython", system="Linux", machine="x", platform="p",
                              executable_prefix_is_venv=True),
        model=ModelIdentity(backend="fake", name="m", path=None, revision=None, files={}, digest="4" * 64),
        generation=GenerationParams(max_tokens=8, temperature=0.0, top_p=1.0, stop=()),
        seeds=SeedPlan(run=1, python=2, numpy=3, torch=4, order=5, sample_rule="r"),
        scorer=RefusalScorerInfo(patterns="p@1", patterns_sha256="5" * 64),
        outputs=OutputsRef(path="outputs.jsonl", sha256="3" * 64, content_sha256=run_id * 8, samples=len(lines), errors=0),
        metrics=metrics, baselines=[],
    )


def _write(path: Path, lines: list[dict[str, Any]], extra: bytes = b"") -> Path:
    with open(path, "wb") as fh:
        for x in lines:
            fh.write(output_line(x))
        fh.write(extra)
    return path


def _same(a: RunRecord, b: RunRecord, fa: Path, fb: Path) -> None:
    ref = _reference(a, b, fa, fb)
    got = diff_runs(a, b, fa, fb)
    assert (got.only_in_a, got.only_in_b, got.responses_changed, got.flips) == (
        ref["only_in_a"], ref["only_in_b"], ref["responses_changed"], ref["flips"])
    assert [(m.metric, m.group, m.delta, m.ci_low, m.ci_high, m.significant, m.paired_n) for m in got.metrics] == ref["metrics"]


def _count_pattern_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """[blocks read by pattern, blocks read through json.loads] from now on."""
    import harness.diff as diff

    real, counts = diff._match_block, [0, 0]

    def counting(block: bytes, lines: int) -> Any:
        rows = real(block, lines)
        counts[rows is None] += 1
        return rows

    monkeypatch.setattr(diff, "_match_block", counting)
    return counts


def test_generated_runs_report_what_the_reference_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.diff as diff

    rng = random.Random(7)
    la, lb = _lines(3000, 1), _lines(3000, 1, flip_every=10)
    for x in lb[::13]:
        x["response"] = "Changed."
    lb = lb[50:] + _lines(3050, 2)[3000:]  # samples only in a, and only in b
    la[5]["judge"] = {"raw": "REFUSAL", "error": None}  # other forms of line, read through json.loads
    lb[7]["extra"] = [1, 2]
    lb[8]["response"] = None
    fa = _write(tmp_path / "a.jsonl", la, json.dumps({**la[9], "verdict": "refusal"}).encode() + b"\n\n")  # a later duplicate
    fb = _write(tmp_path / "b.jsonl", lb, output_line({**lb[0], "timing": {"latency_s": 1e-05}})[:-1])  # no final newline
    a, b = _record("a", la, rng), _record("b", lb, rng)
    _same(a, b, fa, fb)
    # One 4 MiB block holds a line with a backslash, so the whole file went through json.loads;
    # with small blocks most go through the pattern reader, whose results must be the same.
    monkeypatch.setattr(diff, "_BLOCK", 4096)
    counts = _count_pattern_blocks(monkeypatch)
    _same(a, b, fa, fb)
    assert counts[0] > 0 and counts[1] > 0, counts  # both readers took part
    report = diff_runs(a, b, fa, fb)
    assert report.flips and report.responses_changed and report.only_in_a == 50 and report.only_in_b == 50
    assert any(m.significant for m in report.metrics) and any(m.paired_n == 0 for m in report.metrics)


def test_fast_reader_agrees_with_json_loads_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.diff as diff

    lines = _lines(2000, 3)
    path = _write(tmp_path / "o.jsonl", lines)
    monkeypatch.setattr(diff, "_BLOCK", 4096)  # many blocks, a line split across each boundary
    counts = _count_pattern_blocks(monkeypatch)
    fast = _read_compact(path)
    assert counts[0] > 0, counts  # the pattern reader really read some blocks
    monkeypatch.setattr(diff, "_match_block", lambda block, lines: None)
    assert fast == _read_compact(path)
    assert len(fast) == 2000 and fast["s00001"][diff._VERDICT] == lines[1]["verdict"]


def test_only_well_formed_lines_are_read_by_pattern(tmp_path: Path) -> None:
    """A line the pattern would accept but JSON does not is an error, named by its line number."""
    good = output_line(_lines(1, 4)[0])
    for bad, why in ((good.replace(b'"attempts":1', b'"attempts":01'), "not valid JSON"),
                     (good.replace(b'"stop"', b'"st\top"'), "not valid JSON"),
                     (good.replace(b'"stop"', b'"st\\xp"'), "not valid JSON"),
                     (good.replace(b'"en"', b'"\xff"'), "not valid UTF-8"),
                     (b"[1, 2]\n", "not a JSON object")):
        path = tmp_path / "bad.jsonl"
        path.write_bytes(good.replace(b's00000', b'x') + bad + good)
        with pytest.raises(RecordError, match=f"line 2 is {why}"):
            _read_compact(path)
