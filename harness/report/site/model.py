"""What the viewer knows about one dossier: its entries, each run's record, and what verified.

The dossier is verified once, when the site is built, with the reader's own trust
(:func:`harness.dossier.verify.verify_dossier`: chain, checkpoint, every signature and
digest), and each entry's state is read off that one report: verified and by whom, or
the problems named for it. The site is a snapshot, and every page says when it was taken.
Building a site does not update the remembered checkpoints (``remember=False``): looking
at results must not change what a later ``harness dossier verify`` compares against.

Texts shown from a dossier may name files; :func:`relative` keeps them relative to the
dossier, so a published site does not reveal the folders of the machine that built it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._internal.clock import now_seconds
from harness._internal.hashing import sha256_bytes
from harness.audit.show import SampleView, _prompts, _view
from harness.dossier.log import Dossier, Entry, EventEntry
from harness.dossier.refs import entry_file
from harness.dossier.verify import DossierReport, verify_dossier
from harness.errors import HarnessError
from harness.record import RunRecord, parse_record
from harness.signing.verify import Trusted

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def slug(name: str) -> str:
    """A file-name-safe form of a package or claim name (names are checked, but a received
    dossier's folder could still be called anything)."""
    return name if _SLUG.match(name) and name not in (".", "..") else "x-" + sha256_bytes(name.encode())[:16]


@dataclass(frozen=True)
class EntryState:
    """One entry's verification state when the site was built."""

    verified: bool
    signer: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def word(self) -> str:
        if self.problems:
            return "FAILED"
        return "VERIFIED" if self.verified else "NOT CHECKED"


@dataclass
class RunInfo:
    entry: Entry
    state: EntryState
    record: RunRecord | None = None
    error: str | None = None
    outputs: Path | None = None

    @property
    def seq(self) -> int:
        return self.entry.seq


@dataclass
class PackageView:
    """A dossier as the site shows it: entries in order, run records parsed once, the report."""

    name: str
    slug: str
    dossier: Dossier
    verified_at: str
    report: DossierReport | None = None
    entries: list[Entry | EventEntry] = field(default_factory=list)
    states: dict[int, EntryState] = field(default_factory=dict)
    runs: list[RunInfo] = field(default_factory=list)
    refers: dict[int, int] = field(default_factory=dict)
    """Event entry seq -> the seq of the entry it is about."""
    later: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    """Entry seq -> (kind, seq) of later entries about it (reproduced, reviewed, ...)."""
    error: str | None = None
    """Why the log could not be read at all."""
    _by_seq: dict[int, RunInfo] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.report is not None and self.report.ok

    def general_problems(self) -> list[str]:
        """Problems not tied to one entry (checkpoint, head, torn tail), relative paths only."""
        if self.report is None:
            return []
        return [relative(f"{p.path}: {p.what}", self) for p in self.report.problems if p.entry is None]

    def run(self, seq: int) -> RunInfo | None:
        if len(self._by_seq) != len(self.runs):
            self._by_seq = {r.seq: r for r in self.runs}
        return self._by_seq.get(seq)


def relative(text: str, pv: PackageView) -> str:
    """``text`` with the dossier's absolute folder written as the dossier's name."""
    root = str(pv.dossier.root)
    resolved = str(pv.dossier.root.resolve())
    for prefix in sorted({resolved, root}, key=len, reverse=True):
        text = text.replace(prefix + "/", "").replace(prefix, pv.dossier.root.name)
    return text


def load_package(name: str, dossiers_dir: Path | None, trusted: Trusted) -> PackageView:
    """Verify the dossier of ``name`` and read its entries and run records."""
    dossier = Dossier.for_package(name, dossiers_dir)
    pv = PackageView(name=name, slug=slug(name), dossier=dossier, verified_at=now_seconds())
    pv.report = verify_dossier(dossier if dossier.log.exists() else name, trusted, dossiers_dir=dossiers_dir,
                               remember=False)
    try:
        parsed = dossier.parsed_lines()
    except HarnessError as err:
        pv.error = relative(err.message, pv)
        return pv
    problems: dict[int, list[str]] = {}
    for p in pv.report.problems:
        if p.entry is not None:
            problems.setdefault(p.entry, []).append(relative(p.what, pv))
    signers = {n: s for n, _, s in pv.report.signers}
    by_record = {e.record.sha256: e.seq for e, _ in parsed if isinstance(e, Entry)}
    by_line = {sha256_bytes(raw): e.seq for e, raw in parsed}
    for e, _ in parsed:
        state = EntryState(verified=e.seq in signers and e.seq not in problems, signer=signers.get(e.seq),
                           problems=tuple(problems.get(e.seq, ())))
        pv.entries.append(e)
        pv.states[e.seq] = state
        if isinstance(e, Entry):
            pv.runs.append(_run_info(dossier, e, state, pv))
        else:
            target = by_record.get(e.refers_to) or by_line.get(e.refers_to)
            if target is not None:
                pv.refers[e.seq] = target
                pv.later.setdefault(target, []).append((e.kind, e.seq))
    return pv


def _run_info(dossier: Dossier, e: Entry, state: EntryState, pv: PackageView) -> RunInfo:
    info = RunInfo(entry=e, state=state)
    try:
        info.record = parse_record(entry_file(dossier.root, e.record.path))
        info.outputs = entry_file(dossier.root, e.outputs.path)
    except (HarnessError, OSError) as err:
        info.error = relative(getattr(err, "message", None) or str(err), pv)
    return info


@dataclass
class Prompts:
    """Prompt texts per package seal, looked up once (the package found by seal, its data verified).

    The lookup and the per-sample digest check are :mod:`harness.audit.show`'s own, so a
    prompt the site shows is exactly what ``harness show`` would: the text the run's
    recorded digest names, or nothing.
    """

    package: str | Path | None = None
    archive: Path | None = None
    mirror: Path | None = None
    _cache: dict[str, tuple[dict[str, str], str]] = field(default_factory=dict)

    def texts(self, record: RunRecord) -> tuple[dict[str, str], str]:
        seal = record.package.seal
        if seal not in self._cache:
            texts, where = _prompts(record, self.package, self.archive, self.mirror)
            if texts:
                where = (f"from package {record.package.name} {record.package.version}, found by the record's seal "
                         "with its data verified; each prompt checked against the digest the run recorded")
            else:
                where = "prompts " + re.sub(r"(?<![\w.])/[^\s:;,)]+", "<path>", where)  # no folders of this machine
            self._cache[seal] = (texts, where)
        return self._cache[seal]

    def samples(self, run: RunInfo) -> tuple[list[SampleView], str]:
        """The run's samples in id order, with prompts where the package is here."""
        if run.record is None or run.outputs is None:
            return [], "no samples: the record could not be read"
        try:
            lines = _read_lines(run.outputs)
        except OSError as err:
            return [], f"no samples: {err.strerror or err}"
        texts, where = self.texts(run.record)
        return [_safe_view(x, texts) for x in sorted(lines, key=_by_id)], where


def outputs_lines(run: RunInfo) -> list[dict[str, Any]]:
    """The run's outputs lines for display (the review section reads ``uncertain`` from them); [] when unreadable."""
    if run.outputs is None:
        return []
    try:
        return _read_lines(run.outputs)
    except OSError:
        return []


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """The outputs file's lines as dicts, for display only: ``json.loads`` per line (what the
    dossier's verification already checked, strictly, for every verified run), and a line
    that is not a JSON object (a damaged, unverified file) as a malformed sample, not an error."""
    out: list[dict[str, Any]] = []
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            out.append(obj if isinstance(obj, dict) else {"id": f"line {n}", "verdict": "malformed"})
    return out


def _by_id(line: dict[str, Any]) -> str:
    return str(line.get("id"))


def _safe_view(line: dict[str, Any], texts: dict[str, str]) -> SampleView:
    """``harness show``'s view of a line; a line without the fields a sample has (a received,
    unverified outputs file) is shown as malformed rather than stopping the whole site."""
    try:
        return _view(line, texts, None)
    except (KeyError, TypeError, AttributeError):
        return SampleView(id=str(line.get("id")), language=str(line.get("language")),
                          category=str(line.get("category")), expected=str(line.get("expected")),
                          verdict="malformed", response=None, prompt=None)


def trust_label(trusted: Any) -> str:
    """How the pages name whose signatures were accepted (no folders of this machine)."""
    source = getattr(trusted, "source", None)
    if source is not None:
        return f"the trust policy {Path(source).name}"
    keys = getattr(trusted, "keys", None)
    ids = getattr(trusted, "identities", ())
    if keys is not None:
        parts = [f"{len(keys)} trusted key{'s' if len(keys) != 1 else ''}"]
        if ids:
            parts.append(f"{len(ids)} Sigstore identit{'ies' if len(ids) != 1 else 'y'}")
        return " and ".join(parts)
    return f"{len(list(trusted))} trusted keys"
