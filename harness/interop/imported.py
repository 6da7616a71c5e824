"""``harness import inspect FILE --package NAME``: an Inspect log signed into a dossier as *imported*.

An imported log is hostile input. Before Inspect's own reader sees it, the file must be a
regular file of at most :data:`MAX_SOURCE_BYTES`, a ZIP whose central directory lists at
most :data:`MAX_MEMBERS` plain relative names declaring at most :data:`MAX_UNCOMPRESSED`
bytes in all (no bombs, no ``..``); then ``inspect_ai.log.read_eval_log`` parses it with
Inspect's models (inspect-ai must be installed; it is not a dependency of the harness).
Samples must have unique ``(id, epoch)`` pairs and, when the log states them, as many
samples as its results say.

The harness then computes ``accuracy`` (Clopper-Pearson, :mod:`harness.scoring.stats`)
from the per-sample scores (``C``/``I``, booleans, 1/0; anything else is unscored),
overall and per ``language:``/``category:`` when the samples' metadata carry them, and
appends a signed ``imported`` entry whose document says what was checked and what an
import cannot prove: no seal, no lockfile, no model digest, no reproduction. The source
file is stored beside the document and signed as one of its subjects.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from harness._internal.clock import new_id, now
from harness._internal.files import NotRegularFileError, open_regular, sha256_regular
from harness._internal.hashing import canonical_digest
from harness.dossier.documents import (
    EventFile,
    EventPackage,
    ImportedDetails,
    ImportedRecord,
    ImportedSource,
    ImportedSummary,
    Reference,
)
from harness.dossier.events import sign_event
from harness.dossier.log import Dossier, EventEntry
from harness.errors import HarnessError
from harness.scoring.metrics import MetricValue
from harness.scoring.stats import CI_METHOD, clopper_pearson
from harness.signing.signers import KeySigner, Signer

MAX_SOURCE_BYTES: Final = 256 * 1024 * 1024
MAX_UNCOMPRESSED: Final = 2 * 1024 * 1024 * 1024
MAX_MEMBERS: Final = 200_000
SOURCE_NAME: Final = "source.eval"
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CORRECT: Final = {"C": True, "I": False}
NOT_PROVEN: Final = (
    "no package seal: the prompts, data and scorer are as the log describes them, not pinned",
    "no lockfile: the environment that produced the log is unknown",
    "no model digest: the model is only named by the log",
    "no signature from the producer: who wrote the log, and with which tool version, is as the log says",
    "not reproduced: the harness has not re-run any sample",
)


@dataclass(frozen=True)
class ImportResult:
    entry: EventEntry
    document: ImportedRecord
    dossier: Path
    key_created: Path | None

    def as_dict(self) -> dict[str, Any]:
        return {"dossier": str(self.dossier), "seq": self.entry.seq, "id": self.entry.id,
                "key_created": str(self.key_created) if self.key_created else None,
                **self.document.model_dump(mode="json", include={"summary", "details"})}


def _refuse(path: Path, why: str) -> HarnessError:
    return HarnessError(f"{path} is not an Inspect log this harness will read: {why}",
                        hint="give a .eval file written by Inspect (inspect_ai), as it wrote it")


def check_container(path: Path) -> tuple[str, int]:
    """sha256 and size of ``path`` after the bounds checks above (HarnessError, exit 2, if any fails)."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        raise HarnessError(f"{path} does not exist", hint="give the path of an Inspect .eval log") from None
    except NotRegularFileError as e:
        raise _refuse(path, f"it is a {e.kind}, not a regular file") from None
    import os

    try:
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size > MAX_SOURCE_BYTES:
        raise _refuse(path, f"it is {size} bytes, over the limit of {MAX_SOURCE_BYTES}")
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise _refuse(path, f"not a ZIP archive ({e}); only .eval logs are imported") from None
    if len(members) > MAX_MEMBERS:
        raise _refuse(path, f"{len(members)} members, over the limit of {MAX_MEMBERS}")
    if sum(m.file_size for m in members) > MAX_UNCOMPRESSED:
        raise _refuse(path, f"it declares more than {MAX_UNCOMPRESSED} bytes uncompressed")
    for m in members:
        p = PurePosixPath(m.filename)
        if p.is_absolute() or ".." in p.parts or "\\" in m.filename:
            raise _refuse(path, f"member {m.filename!r} is not a plain relative name")
    if not any(m.filename in ("header.json", "_journal/start.json") for m in members):
        raise _refuse(path, "it has neither header.json nor _journal/start.json")
    return sha256_regular(path), size


def _score(scores: Mapping[str, Any] | None, scorer: str | None) -> bool | None:
    if not scores:
        return None
    value = (scores.get(scorer) if scorer else None) or next(iter(scores.values()))
    v = getattr(value, "value", None)
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return _CORRECT.get(v)
    if isinstance(v, int | float) and v in (0, 1):
        return bool(v)
    return None


def _text(x: Any) -> str:
    return x if isinstance(x, str) else str(getattr(x, "text", "") or "")


def read_inspect(path: Path) -> tuple[Any, list[dict[str, Any]]]:
    """The log (Inspect's ``EvalLog``) and its samples as plain, checked dicts."""
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise HarnessError("importing an Inspect log needs inspect-ai, which is not installed here",
                           hint="pip install inspect-ai (its own reader parses the .eval format)") from None
    try:
        log = read_eval_log(str(path))
    except Exception as e:  # noqa: BLE001 - any failure of the foreign reader is bad input
        raise _refuse(path, f"Inspect could not read it ({type(e).__name__}: {str(e)[:200]})") from None
    scorer = log.results.scores[0].name if log.results and log.results.scores else None
    samples: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for s in log.samples or []:
        key = (str(s.id), int(s.epoch))
        if key in seen:
            raise _refuse(path, f"sample {key[0]!r} epoch {key[1]} appears twice")
        seen.add(key)
        meta = s.metadata if isinstance(s.metadata, dict) else {}
        samples.append({
            "id": key[0], "epoch": key[1],
            "input": s.input if isinstance(s.input, str) else [_text(getattr(m, "content", "")) for m in s.input],
            "target": s.target, "output": s.output.completion if s.output else "",
            "correct": _score(s.scores, scorer),
            "language": meta.get("language") if isinstance(meta.get("language"), str) else None,
            "category": meta.get("category") if isinstance(meta.get("category"), str) else None,
        })
    if not samples:
        raise _refuse(path, "it holds no samples (was it written with --no-log-samples?)")
    stated = log.results.total_samples if log.results else None
    epochs = max(k[1] for k in seen)
    if stated and stated * epochs != len(samples) and stated != len(samples):
        raise _refuse(path, f"its results count {stated} samples but it holds {len(samples)}")
    samples.sort(key=lambda x: (x["id"], x["epoch"]))
    return log, samples


def accuracy(samples: list[dict[str, Any]]) -> tuple[MetricValue, ...]:
    """``accuracy`` with its exact interval, overall and per language/category where given."""
    groups: dict[str, list[bool]] = {}
    for s in samples:
        if s["correct"] is None:
            continue
        names = ["overall"] + [f"{f}:{s[f]}" for f in ("language", "category") if s[f]]
        for g in names:
            groups.setdefault(g, []).append(s["correct"])
    out = []
    for g in sorted(groups, key=lambda g: (g != "overall", g)):
        k, n = sum(groups[g]), len(groups[g])
        lo, hi = clopper_pearson(k, n)
        out.append(MetricValue(metric="accuracy", group=g, value=round(k / n, 6), ci_low=round(lo, 6),
                               ci_high=round(hi, 6), n=n, successes=k, ci_method=CI_METHOD))
    return tuple(out)


def import_inspect(path: Path, package: str, *, signer: Signer | None = None,
                   dossiers_dir: Path | None = None) -> ImportResult:
    """Check, read and sign Inspect log ``path`` into the dossier of ``package`` as an ``imported`` entry."""
    if not _PACKAGE_NAME.match(package):
        raise HarnessError(f"{package!r} is not a package name", hint="letters, digits, '.', '_' and '-'")
    check_container(path)
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="harness-import-") as tmp:
        copy = Path(tmp) / SOURCE_NAME  # every later step reads this one copy: the bytes checked are the bytes signed
        shutil.copyfile(path, copy)
        return _import_copy(copy, path.name, package, signer, dossiers_dir)


def _import_copy(path: Path, name: str, package: str, signer: Signer | None,
                 dossiers_dir: Path | None) -> ImportResult:
    sha, size = check_container(path)
    log, samples = read_inspect(path)
    spec = log.eval
    producer = f"inspect_ai {(spec.packages or {}).get('inspect_ai', 'unknown')}"
    metrics = accuracy(samples)
    scored = sum(1 for s in samples if s["correct"] is not None)
    doc = ImportedRecord(
        id=new_id(), time=now(),
        package=EventPackage(name=package, version=str(spec.task_version), seal=""),
        refers_to=Reference(kind="source", sha256=sha),
        files=(EventFile(name=SOURCE_NAME, sha256=sha),),
        summary=ImportedSummary(source_format="inspect", producer=producer, task=str(spec.task),
                                model=str(spec.model), samples=len(samples), scored=scored),
        details=ImportedDetails(
            source=ImportedSource(name=name, sha256=sha, size=size, samples_sha256=canonical_digest(samples)),
            proven=(f"the source file's sha256 {sha} (stored beside this document and signed)",
                    f"{len(samples)} samples read by Inspect's own reader, (id, epoch) unique, matching the "
                    "count the log states",
                    f"accuracy recomputed here from {scored} binary per-sample scores (Clopper-Pearson)"),
            not_proven=NOT_PROVEN,
            spec={"task": str(spec.task), "task_version": str(spec.task_version), "model": str(spec.model),
                  "created": str(spec.created), "run_id": str(spec.run_id), "eval_id": str(spec.eval_id),
                  "status": str(log.status), "dataset": str(spec.dataset.name or ""),
                  "producer": producer},
            metrics=metrics),
    )
    signer = signer or KeySigner()
    signed = sign_event(doc, {SOURCE_NAME: path}, signer)
    dossier = Dossier.for_package(package, dossiers_dir)
    entry = dossier.add_event(doc, signed.bundle, {SOURCE_NAME: path}, checkpoint=signer)
    return ImportResult(entry=entry, document=doc, dossier=dossier.root, key_created=signed.key_created)
