"""Validation of a scorer against human labels: how often does it agree with people?

Labelled sets: XSTest's human-labelled model completions (refusal / compliance) and
HarmBench's classifier validation set (harmful / not harmful, which is a different
question; see docs/judge.md). Figures: accuracy, Cohen's kappa, confusion matrices,
parse failures.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness._internal.hashing import sha256_file
from harness.errors import DataError
from harness.scoring.agreement import (
    POOLED,
    LanguageAgreement,
    agreement_by_language,
    format_languages,
)
from harness.scoring.base import JudgeScorerInfo, RefusalScorerInfo, Scorer
from harness.scoring.behaviours import BINARY, THREE_WAY
from harness.scoring.stats import CI_METHOD, proportion_ci

# ----------------------------------------------------------------------- labelled sets

LabelKind = Literal["refusal", "harmfulness", "three_way"]
XSTEST_COLUMNS = ("id", "type", "prompt", "completion", "final_label")
XSTEST_LABELS = {"1_full_compliance": "compliance", "2_full_refusal": "refusal", "3_partial_refusal": "refusal"}
XSTEST_LABELS_THREE_WAY = {"1_full_compliance": "compliance", "2_full_refusal": "refusal",
                           "3_partial_refusal": "safe_completion"}
"""XSTest's labels on the three behaviours: a partial refusal is a safe completion."""
HARMBENCH_HUMAN = ("human_0", "human_1", "human_2")


@dataclass(frozen=True, slots=True)
class LabelledRow:
    id: str
    source: str
    prompt: str
    response: str
    human: str  # refusal | compliance (XSTest), harmful | not_harmful (HarmBench)
    raw_label: str
    language: str = "en"
    group: str = ""


@dataclass(frozen=True)
class LabelledSet:
    name: str
    kind: LabelKind
    files: dict[str, str]  # file name -> sha256, so figures are tied to exact bytes
    rows: tuple[LabelledRow, ...]


def load_xstest_completions(path: str | Path, *, three_way: bool = False) -> LabelledSet:
    """XSTest v2 human-labelled completions: one CSV or a folder of them.

    ``final_label`` 1_full_compliance is "compliance"; 2_full_refusal and
    3_partial_refusal are both "refusal" (a partial refusal is still a refusal), or with
    ``three_way`` 3_partial_refusal is "safe_completion" (kind ``three_way``).
    """
    mapping = XSTEST_LABELS_THREE_WAY if three_way else XSTEST_LABELS
    p = Path(path)
    files = sorted(p.glob("*.csv")) if p.is_dir() else [p]
    if not files or not all(f.is_file() for f in files):
        raise DataError(f"no XSTest completion CSV at {p}", hint="give a model_completions/*.csv file or its folder")
    rows: list[LabelledRow] = []
    digests: dict[str, str] = {}
    for f in files:
        digests[f.name] = sha256_file(f)
        source = f.stem.removeprefix("xstest_v2_completions_")
        with open(f, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in XSTEST_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(
                    f"{f} is not an XSTest completions file: missing columns {missing}",
                    hint=f"expected columns {', '.join(XSTEST_COLUMNS)}",
                )
            for i, r in enumerate(reader, start=2):
                label = r["final_label"].strip()
                if label not in XSTEST_LABELS:
                    raise DataError(
                        f"{f}:{i}: unknown final_label {label!r} (id {r['id']})",
                        hint=f"expected one of {', '.join(XSTEST_LABELS)}",
                    )
                rows.append(
                    LabelledRow(
                        id=f"{source}/{r['id']}", source=source, prompt=r["prompt"], response=r["completion"],
                        human=mapping[label], raw_label=label, group=r["type"],
                    )
                )
    name = p.name if p.is_dir() else p.stem
    return LabelledSet(name=f"xstest:{name}" + (":three-way" if three_way else ""),
                       kind="three_way" if three_way else "refusal", files=digests, rows=tuple(rows))


def load_harmbench_val(path: str | Path) -> LabelledSet:
    """HarmBench's text classifier validation set, labelled by three people each.

    The label is the majority of ``human_0..2``: 1 "harmful" (the generation is an
    instance of the harmful behaviour), 0 "not_harmful". It says nothing directly
    about refusal: an off-topic or useless answer is not harmful and not a refusal.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_bytes())
    except FileNotFoundError:
        raise DataError(f"no HarmBench validation set at {p}", hint="give classifier_val_sets/text_behaviors_val_set.json") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{p} is not valid JSON: {e}", hint="give text_behaviors_val_set.json") from None
    if not isinstance(data, dict):
        raise DataError(f"{p}: expected an object of behaviour id -> records", hint="give text_behaviors_val_set.json")
    rows: list[LabelledRow] = []
    for behaviour, records in sorted(data.items()):
        for i, r in enumerate(records):
            try:
                votes = [int(r[k]) for k in HARMBENCH_HUMAN]
                test_case, generation = r["test_case"], r["generation"]
            except (KeyError, TypeError, ValueError):
                raise DataError(
                    f"{p}: record {behaviour}#{i} lacks test_case, generation or integer human_0..2 labels",
                    hint="this loader reads HarmBench's text_behaviors_val_set.json format",
                ) from None
            harmful = sum(votes) >= 2
            rows.append(
                LabelledRow(
                    id=f"{behaviour}#{i}", source="harmbench", prompt=test_case, response=generation,
                    human="harmful" if harmful else "not_harmful", raw_label="".join(map(str, votes)),
                    group=str(r.get("experiment", "")),
                )
            )
    return LabelledSet(name=f"harmbench:{p.stem}", kind="harmfulness", files={p.name: sha256_file(p)}, rows=tuple(rows))


def load_labelled_set(path: str | Path, *, three_way: bool = False) -> LabelledSet:
    """A folder or ``.csv`` is read as XSTest completions (``three_way``: partial refusal
    is safe completion), a ``.json`` as HarmBench's set."""
    p = Path(path)
    if not p.exists():
        raise DataError(
            f"labelled set {p} does not exist",
            hint="give an XSTest model_completions CSV or folder, or HarmBench's text_behaviors_val_set.json",
        )
    if p.is_dir() or p.suffix.lower() == ".csv":
        return load_xstest_completions(p, three_way=three_way)
    if p.suffix.lower() == ".json":
        return load_harmbench_val(p)
    raise DataError(f"unknown labelled set format: {p}", hint="use a .csv (XSTest), a folder of them, or a .json (HarmBench)")


# -------------------------------------------------------------------------- validation

VERDICT_ORDER = ("refusal", "safe_completion", "compliance", "unparsed", "error")
HUMAN_ORDER: dict[LabelKind, tuple[str, ...]] = {
    "refusal": ("refusal", "compliance"),
    "harmfulness": ("not_harmful", "harmful"),
    "three_way": THREE_WAY,
}
AGREES: dict[LabelKind, dict[str, str]] = {
    "refusal": {"refusal": "refusal", "compliance": "compliance"},
    "three_way": {"refusal": "refusal", "safe_completion": "safe_completion", "compliance": "compliance"},
    # A proxy: "refusal" predicts "not harmful", "compliance" predicts "harmful".
    "harmfulness": {"refusal": "not_harmful", "compliance": "harmful"},
}


def cohen_kappa(confusion: dict[tuple[str, str], int], a_labels: Sequence[str], b_labels: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters; ``confusion[(a, b)]``, a_labels[i] pairs with b_labels[i]."""
    n = sum(confusion.get((a, b), 0) for a in a_labels for b in b_labels)
    if n == 0:
        return None
    po = sum(confusion.get((a, b), 0) for a, b in zip(a_labels, b_labels, strict=True)) / n
    pe = sum(
        sum(confusion.get((a, y), 0) for y in b_labels) * sum(confusion.get((x, b), 0) for x in a_labels)
        for a, b in zip(a_labels, b_labels, strict=True)
    ) / (n * n)
    if pe >= 1.0:
        return None
    return (po - pe) / (1 - pe)


@dataclass(frozen=True)
class SampleResult:
    id: str
    source: str
    human: str
    raw_label: str
    verdict: str
    raw: str | None = None
    error: str | None = None
    language: str = "en"
    uncertain: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Agreement:
    """Agreement figures over one set of samples."""

    kind: LabelKind
    n: int
    scored: int  # samples with a refusal/compliance verdict
    parse_failures: int
    errors: int
    correct: int
    accuracy: float | None  # over scored samples
    accuracy_strict: float | None  # over all samples: unparsed and errors count as disagreement
    kappa: float | None
    confusion: dict[str, dict[str, int]]  # verdict -> human label -> count
    confusion_raw: dict[str, dict[str, int]]  # verdict -> original label -> count
    extra: dict[str, float | None] = field(default_factory=dict)

    @property
    def accuracy_ci(self) -> tuple[float, float] | None:
        """The accuracy's 95% interval, by the same method as every rate the harness prints."""
        return proportion_ci(self.correct, self.scored) if self.scored else None

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        ci = self.accuracy_ci
        return {
            "n": self.n, "scored": self.scored, "parse_failures": self.parse_failures, "errors": self.errors,
            "correct": self.correct, "accuracy": r(self.accuracy), "accuracy_strict": r(self.accuracy_strict),
            "accuracy_ci_low": None if ci is None else r(ci[0]), "accuracy_ci_high": None if ci is None else r(ci[1]),
            "ci_method": CI_METHOD,
            "kappa": r(self.kappa), "confusion": self.confusion, "confusion_raw": self.confusion_raw,
            **{k: r(v) for k, v in self.extra.items()},
        }


def agreement(kind: LabelKind, results: Sequence[SampleResult]) -> Agreement:
    humans = HUMAN_ORDER[kind]
    agrees = AGREES[kind]
    cm: Counter[tuple[str, str]] = Counter((s.verdict, s.human) for s in results)
    raw_labels = sorted({s.raw_label for s in results})
    cm_raw: Counter[tuple[str, str]] = Counter((s.verdict, s.raw_label) for s in results)
    n = len(results)
    scored = sum(1 for s in results if s.verdict in agrees)
    correct = sum(1 for s in results if agrees.get(s.verdict) == s.human)
    kappa = cohen_kappa(cm, list(agrees), [agrees[v] for v in agrees])
    extra: dict[str, float | None] = {}
    if kind == "harmfulness":
        refusals = cm["refusal", "not_harmful"] + cm["refusal", "harmful"]
        harmful = sum(cm[v, "harmful"] for v in agrees)
        not_harmful = sum(cm[v, "not_harmful"] for v in agrees)
        extra = {
            # Is a "refusal" verdict safe to trust? P(not harmful | refusal)
            "refusal_precision_not_harmful": cm["refusal", "not_harmful"] / refusals if refusals else None,
            # How often is a harmful generation hidden as a refusal? P(refusal | harmful)
            "harmful_called_refusal": cm["refusal", "harmful"] / harmful if harmful else None,
            # How much of the not-harmful mass is explained by refusals? P(refusal | not harmful)
            "not_harmful_called_refusal": cm["refusal", "not_harmful"] / not_harmful if not_harmful else None,
        }
    present = [v for v in VERDICT_ORDER if v in agrees or any(cm[v, h] for h in humans)]
    return Agreement(
        kind=kind, n=n, scored=scored, parse_failures=cm_total(cm, "unparsed"), errors=cm_total(cm, "error"),
        correct=correct, accuracy=correct / scored if scored else None, accuracy_strict=correct / n if n else None,
        kappa=kappa,
        confusion={v: {h: cm[v, h] for h in humans} for v in present},
        confusion_raw={v: {lab: cm_raw[v, lab] for lab in raw_labels} for v in present},
        extra=extra,
    )


def cm_total(cm: Counter[tuple[str, str]], verdict: str) -> int:
    return sum(c for (v, _), c in cm.items() if v == verdict)


@dataclass(frozen=True)
class ValidationReport:
    scorer: RefusalScorerInfo | JudgeScorerInfo
    labelled_set: str
    kind: LabelKind
    files: dict[str, str]
    overall: Agreement
    per_source: dict[str, Agreement]
    samples: tuple[SampleResult, ...]
    per_language: dict[str, LanguageAgreement] = field(default_factory=dict)
    """Agreement per language and pooled, with intervals (refusal and three-way labels)."""

    def as_dict(self, *, samples: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scorer": self.scorer.model_dump(mode="json"),
            "labelled_set": self.labelled_set,
            "label_kind": self.kind,
            "files": self.files,
            "overall": self.overall.as_dict(),
            "per_source": {k: v.as_dict() for k, v in self.per_source.items()},
            "per_language": {k: v.as_dict() for k, v in self.per_language.items()},
        }
        if samples:
            out["samples"] = [s.as_dict() for s in self.samples]
        return out


def score_row(scorer: Scorer, row: LabelledRow) -> SampleResult:
    j = scorer.score(row.response, row.language, prompt=row.prompt)
    return SampleResult(row.id, row.source, row.human, row.raw_label, j.verdict, j.raw, j.error, row.language,
                        j.uncertain)


def validate(
    scorer: Scorer,
    labelled: LabelledSet | Iterable[LabelledRow],
    *,
    kind: LabelKind | None = None,
    limit: int | None = None,
    progress: Callable[[], None] | None = None,
) -> ValidationReport:
    """Score every labelled row and measure agreement with the human labels."""
    if isinstance(labelled, LabelledSet):
        rows, name, files, kind = list(labelled.rows), labelled.name, labelled.files, kind or labelled.kind
    else:
        rows, name, files = list(labelled), "rows", {}
        if kind is None:
            kind = "harmfulness" if rows and rows[0].human in ("harmful", "not_harmful") else \
                "three_way" if any(r.human == "safe_completion" for r in rows) else "refusal"
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise DataError(f"labelled set {name} has no rows", hint="check the path (and --limit)")
    bad = sorted({r.human for r in rows} - set(HUMAN_ORDER[kind]))
    if bad:
        raise DataError(f"labels {bad} do not belong to a {kind} set", hint=f"expected {HUMAN_ORDER[kind]}")
    results = []
    for row in rows:
        results.append(score_row(scorer, row))
        if progress:
            progress()
    sources = sorted({s.source for s in results})
    per_source = {src: agreement(kind, [s for s in results if s.source == src]) for src in sources} if len(sources) > 1 else {}
    per_language = {} if kind == "harmfulness" else agreement_by_language(
        ((s.language, s.verdict, s.human) for s in results), THREE_WAY if kind == "three_way" else BINARY)
    return ValidationReport(
        scorer=scorer.describe(), labelled_set=name, kind=kind, files=files,
        overall=agreement(kind, results), per_source=per_source, samples=tuple(results), per_language=per_language,
    )


# ---------------------------------------------------------------------------- printing


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_report(report: ValidationReport) -> str:
    """A plain-text summary: pooled figures, per-source figures, confusion matrix."""
    sc = report.scorer
    what = sc.patterns if isinstance(sc, RefusalScorerInfo) else \
        f"{sc.model} (template {sc.template}, parse {sc.parse.regex!r})"
    o = report.overall
    lines = [
        f"scorer:       {sc.kind} {what}",
        f"labelled set: {report.labelled_set} ({report.kind} labels, {len(report.files)} file(s))",
    ]
    if report.kind == "harmfulness":
        lines.append("  note: human labels say harmful / not harmful; 'refusal' is read as predicting 'not harmful'")
    head = f"{'source':<18}{'n':>6}{'acc':>8}{'95% CI':>16}{'kappa':>8}{'unparsed':>10}{'errors':>8}"
    lines += ["", head]
    for src, a in [*report.per_source.items(), ("pooled", o)]:
        ci = a.accuracy_ci
        shown = "n/a" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
        lines.append(f"{src:<18}{a.n:>6}{_fmt(a.accuracy):>8}{shown:>16}{_fmt(a.kappa):>8}{a.parse_failures:>10}"
                     f"{a.errors:>8}")
    lines.append("(95% CI: Clopper-Pearson, as for every rate the harness prints; docs/statistics.md)")
    humans = HUMAN_ORDER[report.kind]
    lines += ["", "confusion (rows: scorer verdict, columns: human label)", f"{'':<16}" + "".join(f"{h:>16}" for h in humans)]
    for v, row in o.confusion.items():
        lines.append(f"{v:<16}" + "".join(f"{row[h]:>16}" for h in humans))
    for name, value in o.extra.items():
        lines.append(f"{name}: {_fmt(value)}")
    if report.per_language and set(report.per_language) != {"en", POOLED}:
        lines += ["", "by language", format_languages(report.per_language)]
    if o.parse_failures:
        lines.append(f"{o.parse_failures} judge output(s) did not match the parse rule (verdict 'unparsed'); "
                     "they are not counted in accuracy or kappa")
    return "\n".join(lines)


def markdown_row(label: str, a: Agreement) -> str:
    """One table row of VALIDATION.md: label | n | accuracy | kappa | TP FP FN TN (refusal = positive)."""
    pos, neg = HUMAN_ORDER[a.kind]
    c = a.confusion
    tp = c.get("refusal", {}).get(pos, 0)
    fp = c.get("refusal", {}).get(neg, 0)
    fn = c.get("compliance", {}).get(pos, 0)
    tn = c.get("compliance", {}).get(neg, 0)
    return f"| {label} | {a.n} | {_fmt(a.accuracy, 4)} | {_fmt(a.kappa, 4)} | {tp} | {fp} | {fn} | {tn} |"
