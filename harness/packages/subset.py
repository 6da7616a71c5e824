"""Choosing part of a package's samples: ``--limit``, ``--sample-ids`` and ``--filter``.

A quick run must still look like the benchmark: ``--limit N`` draws a stratified sample
(language x category x expected behaviour, each stratum in proportion to its size and,
when N allows, at least one from each), not the first N ids, which in a package sorted
by language is one language. The draw is fixed by the run seed through the one seed
rule: within a stratum, samples are taken in the order of
``derive_seed(run_seed, "subset:<id>")`` (ties by id), so anyone can recompute which
samples a recorded run used. Prompts that are the same question in several languages
(a ``pair`` column) are drawn as whole groups, so paired comparisons keep their pairs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness._internal.seeds import derive_seed
from harness.errors import HarnessError
from harness.packages.data import Sample

FILTER_FIELDS = ("language", "category", "expected", "id")
SUBSET_RULE = ("stratified by language, then expected behaviour, then category: at each level one per group when N "
               "allows, the rest in proportion (largest remainder, ties by derive_seed(run_seed, "
               "'subset-stratum:<path>')); within a stratum by derive_seed(run_seed, 'subset:<id>'); "
               "paired prompts as whole groups")
MAX_ID_FILE_BYTES = 16 * 1024 * 1024


class SubsetError(HarnessError):
    """A ``--limit``, ``--sample-ids`` or ``--filter`` that cannot select anything sensible (bad input: exit 2)."""


@dataclass(frozen=True)
class Selection:
    """The samples a run will use, and how they were chosen."""

    samples: tuple[Sample, ...]
    of: int
    """How many samples the whole package has."""
    notices: tuple[str, ...] = ()

    @property
    def is_subset(self) -> bool:
        return len(self.samples) < self.of


def check_limit(limit: object) -> int:
    """A ``--limit`` value: a positive integer, nothing else (0 used to mean "everything")."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise SubsetError(f"--limit must be a positive whole number of samples, not {limit!r}",
                          hint="leave --limit out to run the whole package")
    return limit


def parse_filter(term: str) -> tuple[str, str]:
    """``FIELD=VALUE`` as (field, value); the fields are :data:`FILTER_FIELDS`."""
    field, sep, value = term.partition("=")
    field, value = field.strip(), value.strip()
    if not sep or not value or field not in FILTER_FIELDS:
        raise SubsetError(f"--filter {term!r} is not FIELD=VALUE with FIELD one of {', '.join(FILTER_FIELDS)}",
                          hint="for example --filter language=hi (repeat --filter for more)")
    return field, value


def normalize_filters(terms: Iterable[str]) -> tuple[str, ...]:
    """The filter terms as recorded: parsed, deduplicated, sorted."""
    return tuple(sorted({"=".join(parse_filter(t)) for t in terms}))


def apply_filters(samples: Sequence[Sample], terms: Sequence[str]) -> list[Sample]:
    """Samples matching every filtered field (several values of one field: any of them).

    A value the package does not have is an error naming the values it does have, so a
    typo (``language=hn``) is never an empty or silently full run.
    """
    wanted: dict[str, set[str]] = {}
    for term in terms:
        field, value = parse_filter(term)
        wanted.setdefault(field, set()).add(value)
    for field, values in wanted.items():
        present = {getattr(s, field) for s in samples}
        unknown = sorted(values - present)
        if unknown:
            shown = ", ".join(sorted(present)[:20]) + (" ..." if len(present) > 20 else "")
            raise SubsetError(f"--filter {field}={unknown[0]}: the package has no such {field}",
                              hint=f"its {field} values are: {shown}")
    return [s for s in samples if all(getattr(s, f) in v for f, v in wanted.items())]


def read_id_file(path: Path) -> list[str]:
    """The ids in a ``--sample-ids`` file: one per line; blank lines and ``#`` comments skipped."""
    try:
        if not path.is_file():
            raise SubsetError(f"--sample-ids {path}: not a file", hint="give a text file with one sample id per line")
        if path.stat().st_size > MAX_ID_FILE_BYTES:
            raise SubsetError(f"--sample-ids {path} is over {MAX_ID_FILE_BYTES} bytes",
                              hint="give a text file with one sample id per line")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SubsetError(f"cannot read --sample-ids {path}: {e}", hint="a UTF-8 text file, one id per line") from None
    ids = [line.strip() for line in text.splitlines()]
    ids = [i for i in ids if i and not i.startswith("#")]
    if not ids:
        raise SubsetError(f"--sample-ids {path} names no ids", hint="one sample id per line")
    return ids


def ids_digest(ids: Iterable[str]) -> str:
    """The digest recorded for a ``--sample-ids`` selection: sha256 of the sorted unique ids, one per line."""
    return hashlib.sha256("".join(f"{i}\n" for i in sorted(set(ids))).encode()).hexdigest()


def select_ids(samples: Sequence[Sample], ids: Sequence[str]) -> list[Sample]:
    known = {s.id for s in samples}
    unknown = [i for i in dict.fromkeys(ids) if i not in known]
    if unknown:
        raise SubsetError(f"--sample-ids: {len(unknown)} ids are not in the package (first: {unknown[0]!r})",
                          hint="ids are the `id` field of the package's data (and of a run's outputs.jsonl)")
    chosen = set(ids)
    return [s for s in samples if s.id in chosen]


def stratified(samples: Sequence[Sample], n: int, run_seed: int) -> Selection:
    """A deterministic, stratified sample of about ``n`` samples (see the module's docstring)."""
    n = check_limit(n)
    total = len(samples)
    if n >= total:
        return Selection(tuple(samples), total, (f"--limit {n} is at least the {total} samples selected: all are run",))
    # units: groups of the same prompt in several languages, else single samples
    units: dict[str, list[Sample]] = {}
    for s in samples:
        units.setdefault(s.pair_id or s.id, []).append(s)
    paired = any(len(u) > 1 for u in units.values())

    def stratum(unit: list[Sample]) -> tuple[str, ...]:
        first = unit[0]
        return (first.expected, first.category) if paired else (first.language, first.expected, first.category)

    strata: dict[tuple[str, ...], list[list[Sample]]] = {}
    for unit in units.values():
        strata.setdefault(stratum(unit), []).append(unit)
    # quotas in units: a group of paired prompts counts once, so N samples is about N / group size groups
    want = max(1, round(n * len(units) / total))
    quotas = _allocate({k: len(v) for k, v in strata.items()}, want, run_seed)
    chosen: list[Sample] = []
    for k in sorted(strata):
        ranked = sorted(strata[k], key=lambda u: min((derive_seed(run_seed, f"subset:{s.id}"), s.id) for s in u))
        for unit in ranked[: quotas.get(k, 0)]:
            chosen.extend(unit)
    notices = []
    missing = sum(1 for k in strata if not quotas.get(k))
    if missing:
        notices.append(f"--limit {n} is below the {len(strata)} strata ({' x '.join(_LEVELS[paired])}): "
                       f"{missing} are not represented")
    order = {s.id: i for i, s in enumerate(samples)}
    chosen.sort(key=lambda s: order[s.id])
    return Selection(tuple(chosen), total, tuple(notices))


_LEVELS = {False: ("language", "expected", "category"), True: ("expected", "category")}


def _allocate(sizes: dict[tuple[str, ...], int], n: int, run_seed: int, prefix: tuple[str, ...] = ()
              ) -> dict[tuple[str, ...], int]:
    """Quotas summing to ``n``, level by level (language, then expected behaviour, then category):
    at each level every group gets one first when ``n`` allows, the rest in proportion to
    what is left of each (largest remainder; ties in a seeded order, so a small ``n``
    does not always favour the alphabetically first). A top-down split keeps every
    language in a small subset before it spends samples on finer strata."""
    if not sizes or n <= 0:
        return {}
    depth = len(prefix)
    if len(next(iter(sizes))) == depth:
        return {k: n for k in sizes}
    groups: dict[str, dict[tuple[str, ...], int]] = {}
    for k, size in sizes.items():
        groups.setdefault(k[depth], {})[k] = size
    weight = {g: sum(v.values()) for g, v in groups.items()}
    names = sorted(groups)
    base = 1 if n >= len(names) else 0
    room = {g: weight[g] - base for g in names}
    rest, total_room = n - base * len(names), sum(room.values())
    exact = {g: rest * room[g] / total_room if total_room else 0.0 for g in names}
    share = {g: base + int(exact[g]) for g in names}
    tie = {g: derive_seed(run_seed, "subset-stratum:" + "/".join((*prefix, g))) for g in names}
    for g in sorted(names, key=lambda g: (-(exact[g] - int(exact[g])), tie[g], g))[: n - sum(share.values())]:
        share[g] += 1
    out: dict[tuple[str, ...], int] = {}
    for g in names:
        out.update(_allocate(groups[g], min(share[g], weight[g]), run_seed, (*prefix, g)))
    return out
