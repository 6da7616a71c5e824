"""What changed between two runs, and whether the change in scores is more than noise.

Inputs are compared section by section (package, data, lockfile, harness, model,
engine, parameters, seeds, scorer) so that a score difference comes with its likely
causes. A metric's delta is tested on the pairs when both runs scored the same samples
of the same package (exact McNemar, Newcombe's paired interval), and otherwise as two
independent proportions (Newcombe's unpaired interval), labelled so; the p-values of
all deltas are adjusted together (Holm). Verdict flips are listed by sample id.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter, ne
from pathlib import Path
from typing import Any

from harness.dossier.refs import run_files_of
from harness.record import RunRecord, parse_output_line, parse_record
from harness.scoring.metrics import MetricValue, Scored, metric_outcome
from harness.scoring.stats import (
    ADJUSTMENT,
    ALPHA,
    Difference,
    holm,
    paired_difference,
    unpaired_difference,
)

SECTIONS = ("package", "data", "lockfile", "harness", "platform", "model", "engine", "generation", "seeds", "scorer")


@dataclass(frozen=True)
class Change:
    section: str
    key: str
    a: Any
    b: Any


@dataclass(frozen=True)
class MetricDelta:
    """b - a for one metric and group. ``paired``: both runs scored exactly these
    ``paired_n`` samples, and the test is McNemar's; otherwise the two runs' counts are
    compared as independent samples. ``significant``: ``p_adjusted`` < 0.05 (Holm)."""

    metric: str
    group: str
    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float
    significant: bool
    paired_n: int
    paired: bool = True
    method: str = ""
    p_value: float = 1.0
    p_adjusted: float = 1.0


@dataclass
class DiffReport:
    run_a: str
    run_b: str
    changes: list[Change] = field(default_factory=list)
    outputs_identical: bool = True
    responses_changed: int = 0
    flips: list[tuple[str, str, str]] = field(default_factory=list)
    metrics: list[MetricDelta] = field(default_factory=list)
    only_in_a: int = 0
    only_in_b: int = 0
    subset_a: bool = False
    subset_b: bool = False
    adjustment: str = ADJUSTMENT

    @property
    def paired(self) -> bool:
        """Whether every metric delta was tested on pairs of the same samples."""
        return bool(self.metrics) and all(m.paired for m in self.metrics)

    @property
    def no_change(self) -> bool:
        return not self.changes and self.outputs_identical and not self.flips

    def changed_sections(self) -> list[str]:
        return sorted({c.section for c in self.changes}, key=lambda s: SECTIONS.index(s) if s in SECTIONS else 99)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "no_change": self.no_change,
            "changed_sections": self.changed_sections(),
            "changes": [c.__dict__ for c in self.changes],
            "outputs_identical": self.outputs_identical,
            "responses_changed": self.responses_changed,
            "verdict_flips": len(self.flips),
            "first_flips": [{"id": i, "a": a, "b": b} for i, a, b in self.flips[:10]],
            "samples_only_in_a": self.only_in_a,
            "samples_only_in_b": self.only_in_b,
            "subset_a": self.subset_a,
            "subset_b": self.subset_b,
            "paired": self.paired,
            "adjustment": self.adjustment,
            "metrics": [m.__dict__ for m in self.metrics],
        }


def _flatten(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = obj


def _section_values(r: RunRecord) -> dict[str, Any]:
    model = r.model.model_dump(mode="json", exclude={"engine", "engine_args", "files"})  # the digest covers the files
    engine = r.model.model_dump(mode="json", include={"engine", "engine_args"})
    p = r.platform
    return {
        "package": r.package.model_dump(mode="json"),
        "data": {d.id: d.sha256 for d in r.data},
        "lockfile": {"sha256": r.lockfile.sha256, "environment_matches": r.lockfile.matches},
        "harness": r.harness.model_dump(mode="json"),
        "platform": {"python": p.python, "implementation": p.implementation, "system": p.system, "machine": p.machine},
        "model": model,
        "engine": engine,
        "generation": r.generation.model_dump(mode="json"),
        "seeds": r.seeds.model_dump(mode="json"),
        "scorer": r.scorer.model_dump(mode="json"),
    }


# Reading outputs lines by pattern, most of a diff's time otherwise (json.loads of
# every line). _LINE matches only the exact form the harness writes for a sample
# (run.py's line_for through record.output_line: sorted keys, compact separators),
# checking every value's JSON type and grammar, so a line it matches is a valid JSON
# object with exactly these members and no others. Strings are matched as runs of
# non-quote characters (a fast loop in `re`); that is exact only when the text has no
# backslash (escape) and no control character, which _read_compact checks per block
# before using the pattern. Any line it does not match goes through json.loads.
_STRING = r'"[^"]*+"'
_FIELD = r'"([^"]*+)"'
_INT = r"-?+(?:0|[1-9][0-9]*+)"
_NUMBER = _INT + r"(?:\.[0-9]++)?+(?:[eE][-+]?+[0-9]++)?+"
_SCALAR = rf"(?:{_STRING}|{_NUMBER}|true|false|null)"
_FLAT = rf"\{{(?:{_STRING}:{_SCALAR}(?:,{_STRING}:{_SCALAR})*+)?+\}}"  # an object of scalars
_LINE = re.compile(
    rf'^(?:\{{"attempts":{_INT},"category":{_FIELD},"correct":(?:true|false|null),"error":(?:null|{_STRING}),'
    rf'"expected":{_FIELD},"finish_reason":(?:null|{_STRING}),"id":{_FIELD},(?:"judge":{_FLAT},)?+'
    rf'"language":{_FIELD},"prompt_sha256":{_STRING},"response":(?:{_FIELD}|(null)),"seed":(?:{_INT}|null),'
    rf'"timing":{_FLAT},"verdict":{_FIELD}\}})$',
    re.MULTILINE,
)
_NOT_IN_BLOCK = (b"\\", *(bytes([c]) for c in range(32) if c != ord("\n")))  # escapes, control characters
# A sample as _read_compact keeps it: _LINE's groups; at _ANSWER the response as compared (_answer).
_CATEGORY, _EXPECTED, _ID, _LANGUAGE, _ANSWER, _NULL, _VERDICT = range(7)
_BLOCK = 1 << 22  # bytes read at a time: bounded memory, and few Python-level steps per line
_SHORT = 64  # responses up to this many characters are kept as they are (refusals), longer ones as digests


def _read_compact(path: Path | None) -> dict[str, tuple[Any, ...]]:
    """Per sample id, what a diff compares: a tuple indexed by _CATEGORY ... _VERDICT.

    Streamed in 4 MiB blocks, with responses longer than a refusal reduced to 16-byte
    digests, so diffing two 100,000-sample runs holds a few tens of MB rather than
    every line. A block of lines all in the harness's own form is read by pattern
    (_LINE, whose rows are kept as they are: two to three times faster than json.loads);
    any other block is parsed and checked line by line as
    :func:`harness.record.read_outputs` does (same errors, same line numbers). A later
    line for an id replaces an earlier one, as in a dict of the parsed lines.
    """
    out: dict[str, tuple[Any, ...]] = {}
    if not path or not path.exists():
        return out
    share: Any = {}.setdefault  # one shared copy of each repeated string
    done = 0  # lines before the current block
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            if not block.endswith(b"\n"):
                block += fh.readline()
            lines = block.count(b"\n") + (not block.endswith(b"\n"))
            rows = _match_block(block, lines)
            if rows is None:
                for n, raw in enumerate(io.BytesIO(block), done + 1):  # split as a file is: at b"\n" only
                    _add_parsed(out, share, parse_output_line(path, n, raw))
            else:
                _add_rows(out, share, rows)
            done += lines
    return out


def _add_rows(out: dict[str, Any], share: Any, rows: list[tuple[str, ...]]) -> None:
    """Store a block's rows; as they are (C loops) when every answer is short."""
    if max(map(len, map(itemgetter(_ANSWER), rows))) <= _SHORT and not any(map(itemgetter(_NULL), rows)):
        out.update(zip(map(itemgetter(_ID), rows), rows, strict=True))
        return
    for c, e, i, la, r, null, v in rows:
        answer = _answer(None) if null else r if len(r) <= _SHORT else _answer(r)
        out[i] = (share(c, c), share(e, e), i, share(la, la), answer, "", share(v, v))


def _match_block(block: bytes, lines: int) -> list[tuple[str, ...]] | None:
    """One row per line of the block (see _LINE), or None where the pattern cannot be used on it."""
    if any(c in block for c in _NOT_IN_BLOCK):
        return None
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return None  # read line by line: the error names the line
    rows = _LINE.findall(text)
    return rows if len(rows) == lines else None  # a line it does not fit: the block line by line


def _add_parsed(out: dict[str, Any], share: Any, x: dict[str, Any] | None) -> None:
    if x is None:
        return
    sid, resp = x["id"], x.get("response")
    verdict, lang, cat, exp = x["verdict"], x["language"], x["category"], x["expected"]
    out[sid] = (share(cat, cat), share(exp, exp), sid, share(lang, lang), _answer(resp), "", share(verdict, verdict))


def _answer(resp: Any) -> str | bytes:
    """What responses are compared by: a short one itself, a longer one (or a non-string) as a digest."""
    if isinstance(resp, str) and len(resp) <= _SHORT:
        return resp
    return hashlib.blake2b(json.dumps(resp).encode(), digest_size=16).digest()


def diff_runs(
    a: RunRecord, b: RunRecord, outputs_a: Path | None = None, outputs_b: Path | None = None
) -> DiffReport:
    report = DiffReport(run_a=a.run_id, run_b=b.run_id)
    va, vb = _section_values(a), _section_values(b)
    for section in SECTIONS:
        fa: dict[str, Any] = {}
        fb: dict[str, Any] = {}
        _flatten("", va[section], fa)
        _flatten("", vb[section], fb)
        for key in sorted(set(fa) | set(fb)):
            if fa.get(key) != fb.get(key):
                report.changes.append(Change(section, key or section, fa.get(key), fb.get(key)))
    report.outputs_identical = a.outputs.content_sha256 == b.outputs.content_sha256
    report.subset_a, report.subset_b = a.is_subset, b.is_subset

    mb = {(m.metric, m.group): m for m in b.metrics}
    found: list[tuple[MetricValue, MetricValue, Difference]] = []
    if report.outputs_identical and all(
        (other := mb.get((m.metric, m.group))) is None or other.n == m.n for m in a.metrics
    ):
        # Same content digest: the same samples, answers and verdicts, so every pair is
        # concordant and the 2x2 table is the record's own counts; reading 2 x 100,000
        # lines would only confirm that.
        for m in a.metrics:
            other = mb.get((m.metric, m.group))
            if other is not None:
                found.append((m, other, paired_difference(m.successes, 0, 0, m.n - m.successes)))
        _add_deltas(report, found)
        return report
    sa = _read_compact(outputs_a)
    sb = _read_compact(outputs_b)
    common = list(sa.keys() & sb.keys()) if a.package.name == b.package.name else []
    report.only_in_a = len(sa) - len(common)
    report.only_in_b = len(sb) - len(common)
    # Column-wise, in C loops (map, zip, compress, Counter): the per-sample work of a
    # diff of 100,000 samples is then a few tens of ms.
    xa = itemgetter(*common)(sa) if len(common) > 1 else tuple(sa[i] for i in common)
    xb = itemgetter(*common)(sb) if len(common) > 1 else tuple(sb[i] for i in common)
    report.responses_changed = sum(map(ne, map(itemgetter(_ANSWER), xa), map(itemgetter(_ANSWER), xb)))
    flipped = compress(common, map(ne, map(itemgetter(_VERDICT), xa), map(itemgetter(_VERDICT), xb)))
    report.flips = sorted((i, sa[i][_VERDICT], sb[i][_VERDICT]) for i in flipped)
    # Metrics only see a sample's verdicts, expected labels and (run a's) language and
    # category: tally the common samples by those, then work per distinct combination.
    tally = Counter(zip(map(itemgetter(_VERDICT, _EXPECTED, _LANGUAGE, _CATEGORY), xa),
                        map(itemgetter(_VERDICT, _EXPECTED), xb), strict=True))

    by_metric: dict[str, dict[str, list[int]]] = {}
    for m in a.metrics:
        other = mb.get((m.metric, m.group))
        if other is None:
            continue
        if m.metric not in by_metric:
            by_metric[m.metric] = _tables_by_group(m.metric, tally)
        both, only_a, only_b, neither = by_metric[m.metric].get(m.group, [0, 0, 0, 0])
        n = both + only_a + only_b + neither
        if n and n == m.n == other.n:  # both runs scored exactly these samples: test the pairs
            found.append((m, other, paired_difference(both, only_a, only_b, neither)))
        else:
            found.append((m, other, unpaired_difference(m.successes, m.n, other.successes, other.n)))
    _add_deltas(report, found)
    return report


def _add_deltas(report: DiffReport, found: list[tuple[MetricValue, MetricValue, Difference]]) -> None:
    """Adjust the p-values of every delta together (Holm) and add the deltas to the report."""
    adjusted = holm([d.p_value for _, _, d in found])
    for (m, other, d), p_adj in zip(found, adjusted, strict=True):
        report.metrics.append(MetricDelta(
            m.metric, m.group, m.value, other.value, round(other.value - m.value, 6), round(d.ci_low, 6),
            round(d.ci_high, 6), p_adj < ALPHA and other.value != m.value, d.n_a if d.paired else 0,
            paired=d.paired, method=d.method, p_value=round(d.p_value, 6), p_adjusted=round(p_adj, 6),
        ))


def _tables_by_group(metric: str, tally: Counter[tuple[Any, ...]]) -> dict[str, list[int]]:
    """Per group, the 2x2 table of the samples the metric counts in both runs: how many
    succeed in both, only in a, only in b, in neither. Groups follow run a's language and
    category; the per-sample pairs are never built."""
    out: dict[str, list[int]] = {}
    for ((va, ea, lang, cat), (vb, eb)), k in tally.items():
        oa = metric_outcome(metric, Scored("", lang, cat, ea, va))
        ob = metric_outcome(metric, Scored("", lang, cat, eb, vb))
        if oa is None or ob is None:
            continue
        cell = 0 if oa and ob else 1 if oa else 2 if ob else 3
        for key in ("overall", f"language:{lang}", f"category:{cat}"):
            out.setdefault(key, [0, 0, 0, 0])[cell] += k
    return out


def diff_refs(a: str | Path, b: str | Path, *, dossiers_dir: Path | None = None) -> DiffReport:
    """What differs between two runs, each a record path, a run folder or ``PACKAGE@N``."""
    record_a, _, outputs_a = run_files_of(str(a), dossiers_dir)
    record_b, _, outputs_b = run_files_of(str(b), dossiers_dir)
    return diff_runs(parse_record(record_a), parse_record(record_b), outputs_a, outputs_b)
