"""``harness import lm-eval RESULTS_DIR --package NAME``: lm-evaluation-harness results signed in
as *imported*.

lm-eval (``--output_path DIR --log_samples``) writes, per model folder, one
``results_<date>.json`` and one ``samples_<task>_<date>.jsonl`` per task with the same
``<date>``. Both are hostile input: each file must be a regular file within
:data:`MAX_FILE_BYTES`, parsed as strict JSON (duplicate keys and NaN refused), with at
most :data:`MAX_SAMPLES` lines. What can be checked without re-running anything is checked:

- every task of the results has its samples file, and its ``n-samples`` ("effective")
  count is the number of lines, with unique ``doc_id``;
- lm-eval's own ``task_hashes`` (sha256 of the samples' ``doc_hash + prompt_hash +
  target_hash``, concatenated in file order) match the samples, so the results file was
  written for exactly these samples;
- every binary per-sample metric (values 0/1) is recounted here, its Clopper-Pearson
  interval computed, and its rate compared with the value lm-eval reported (a result
  that does not match its own samples is refused).

Non-binary metrics (perplexity, BLEU, ...) are kept as reported, marked unrecounted. The
files are stored beside the signed document. What an import cannot prove is the same as
for Inspect logs (:data:`harness.interop.imported.NOT_PROVEN`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness._internal.clock import new_id, now
from harness._internal.files import NotRegularFileError, read_regular
from harness._internal.hashing import canonical_digest, sha256_bytes
from harness._internal.strictjson import StrictJSONError, loads_strict
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
from harness.dossier.log import Dossier
from harness.errors import HarnessError
from harness.interop.imported import _PACKAGE_NAME, NOT_PROVEN, ImportResult
from harness.scoring.metrics import MetricValue
from harness.scoring.stats import CI_METHOD, clopper_pearson
from harness.signing.signers import KeySigner, Signer

MAX_FILE_BYTES: Final = 512 * 1024 * 1024
MAX_SAMPLES: Final = 1_000_000
MAX_TASKS: Final = 500
RESULTS = re.compile(r"^results_(?P<date>[0-9T.:_-]{10,40})\.json$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
RESULTS_NAME: Final = "results.json"


def _refuse(where: Path, why: str) -> HarnessError:
    return HarnessError(f"{where} is not an lm-eval result this harness will read: {why}",
                        hint="give the folder lm-eval wrote with --output_path DIR --log_samples (its model folder)")


def _read_json(path: Path) -> Any:
    try:
        raw = read_regular(path, limit=MAX_FILE_BYTES)
        return loads_strict(raw)
    except NotRegularFileError as e:
        raise _refuse(path, f"it is a {e.kind}, not a regular file") from None
    except OSError as e:
        raise _refuse(path, f"it cannot be read ({e.strerror or e})") from None
    except (StrictJSONError, UnicodeDecodeError, ValueError) as e:
        raise _refuse(path, f"not strict JSON ({e})") from None


def _read_lines(path: Path) -> tuple[list[dict[str, Any]], bytes]:
    try:
        raw = read_regular(path, limit=MAX_FILE_BYTES)
    except NotRegularFileError as e:
        raise _refuse(path, f"it is a {e.kind}, not a regular file") from None
    except OSError as e:
        raise _refuse(path, f"it cannot be read ({e.strerror or e})") from None
    lines = [line for line in raw.split(b"\n") if line.strip()]
    if len(lines) > MAX_SAMPLES:
        raise _refuse(path, f"{len(lines)} samples, over the limit of {MAX_SAMPLES}")
    out = []
    for i, line in enumerate(lines, 1):
        try:
            obj = loads_strict(line)
        except (StrictJSONError, UnicodeDecodeError, ValueError) as e:
            raise _refuse(path, f"line {i} is not strict JSON ({e})") from None
        if not isinstance(obj, dict):
            raise _refuse(path, f"line {i} is not a JSON object")
        out.append(obj)
    return out, raw


def find_results(folder: Path) -> tuple[Path, str]:
    """The newest ``results_<date>.json`` in ``folder`` (or a model folder directly under it)."""
    if not folder.is_dir():
        raise HarnessError(f"{folder} is not a folder", hint="give the --output_path folder lm-eval wrote")
    found = [(m.group("date"), p) for d in (folder, *sorted(x for x in folder.iterdir() if x.is_dir()))
             for p in sorted(d.iterdir()) if (m := RESULTS.match(p.name)) and p.is_file()]
    if not found:
        raise _refuse(folder, "no results_<date>.json in it or in a model folder under it")
    date, path = max(found)
    return path, date


@dataclass(frozen=True)
class Task:
    name: str
    samples: list[dict[str, Any]]
    raw: bytes
    path: Path


def read_lm_eval(folder: Path) -> tuple[dict[str, Any], Path, list[Task]]:
    """The results object, its path, and each task's checked samples."""
    results_path, date = find_results(folder)
    results = _read_json(results_path)
    if not isinstance(results, dict) or not isinstance(results.get("results"), dict):
        raise _refuse(results_path, "it has no 'results' object")
    tasks = []
    names = sorted(results["results"])
    if len(names) > MAX_TASKS:
        raise _refuse(results_path, f"{len(names)} tasks, over the limit of {MAX_TASKS}")
    for name in names:
        if not isinstance(name, str) or not _NAME.match(name):
            raise _refuse(results_path, f"task name {name!r} is not a plain name")
        path = results_path.parent / f"samples_{name}_{date}.jsonl"
        if not path.is_file():
            raise _refuse(results_path, f"task {name}: no {path.name} beside it (run lm-eval with --log_samples)")
        samples, raw = _read_lines(path)
        _check_task(results, name, samples, path)
        tasks.append(Task(name, samples, raw, path))
    if not tasks:
        raise _refuse(results_path, "it reports no task")
    return results, results_path, tasks


def _check_task(results: dict[str, Any], name: str, samples: list[dict[str, Any]], path: Path) -> None:
    ids = [s.get("doc_id") for s in samples]
    if len(set(map(str, ids))) != len(ids):
        raise _refuse(path, "a doc_id appears twice")
    counts = (results.get("n-samples") or {}).get(name) or {}
    effective = counts.get("effective") if isinstance(counts, dict) else None
    if isinstance(effective, int) and effective != len(samples):
        raise _refuse(path, f"the results count {effective} samples for {name}, the file holds {len(samples)}")
    stated = (results.get("task_hashes") or {}).get(name)
    if stated:
        parts = [str(s.get("doc_hash", "")) + str(s.get("prompt_hash", "")) + str(s.get("target_hash", ""))
                 for s in samples]
        if hashlib.sha256("".join(parts).encode()).hexdigest() != stated:
            raise _refuse(path, f"its samples do not match the task hash the results state for {name}")


def _group_of(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return []
    return [f"{f}:{doc[f]}" for f in ("language", "category") if isinstance(doc.get(f), str) and _NAME.match(doc[f])]


def metrics_of(results: dict[str, Any], task: Task) -> tuple[list[MetricValue], list[str]]:
    """Binary metrics recounted with exact intervals (checked against lm-eval's value), and
    notes on the metrics kept as reported."""
    reported = results["results"][task.name]
    out: list[MetricValue] = []
    notes: list[str] = []
    for key, value in sorted(reported.items()):
        metric, sep, filt = key.partition(",")
        if not sep or metric.endswith("_stderr") or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if not _NAME.match(metric):
            continue
        per: dict[str, list[bool]] = {}
        binary = True
        for s in task.samples:
            v = s.get(metric)
            if isinstance(v, bool) or v in (0, 1, 0.0, 1.0):
                for g in ("overall", *_group_of(s.get("doc"))):
                    per.setdefault(g, []).append(bool(v))
            else:
                binary = False
                break
        if not binary or not per:
            notes.append(f"{task.name} {metric} ({filt}): {value} as lm-eval reported it, not recounted "
                         "(not a 0/1 per-sample metric)")
            continue
        k, n = sum(per["overall"]), len(per["overall"])
        if abs(k / n - float(value)) > 1e-6:
            raise _refuse(task.path, f"{metric} recounts to {k}/{n} = {k / n:.6f}, lm-eval reported {value}")
        for g in sorted(per, key=lambda g: (g != "overall", g)):
            kk, nn = sum(per[g]), len(per[g])
            lo, hi = clopper_pearson(kk, nn)
            out.append(MetricValue(metric=f"{task.name}/{metric}", group=g, value=round(kk / nn, 6),
                                   ci_low=round(lo, 6), ci_high=round(hi, 6), n=nn, successes=kk, ci_method=CI_METHOD))
    return out, notes


def import_lm_eval(folder: Path, package: str, *, signer: Signer | None = None,
                   dossiers_dir: Path | None = None) -> ImportResult:
    """Check, read and sign lm-eval's results in ``folder`` into ``package``'s dossier as ``imported``."""
    if not _PACKAGE_NAME.match(package):
        raise HarnessError(f"{package!r} is not a package name", hint="letters, digits, '.', '_' and '-'")
    import tempfile

    results, results_path, tasks = read_lm_eval(folder)
    metrics: list[MetricValue] = []
    notes: list[str] = []
    for t in tasks:
        m, n = metrics_of(results, t)
        metrics += m
        notes += n
    with tempfile.TemporaryDirectory(prefix="harness-import-") as tmp:
        # the bytes checked are the bytes stored and signed: write them from what was read
        files: dict[str, Path] = {RESULTS_NAME: Path(tmp) / RESULTS_NAME}
        files[RESULTS_NAME].write_bytes(read_regular(results_path, limit=MAX_FILE_BYTES))
        for t in tasks:
            files[f"samples_{t.name}.jsonl"] = Path(tmp) / f"samples_{t.name}.jsonl"
            files[f"samples_{t.name}.jsonl"].write_bytes(t.raw)
        if _read_json(files[RESULTS_NAME]) != results:
            raise _refuse(results_path, "it changed while it was being read")
        sha = sha256_bytes(files[RESULTS_NAME].read_bytes())
        config: dict[str, Any] = results["config"] if isinstance(results.get("config"), dict) else {}
        model = str(results.get("model_name") or config.get("model") or "unknown")[:200]
        producer = f"lm-eval {str(results.get('lm_eval_version') or results.get('git_hash') or 'unknown')[:60]}"
        samples = [{"task": t.name, "doc_id": s.get("doc_id"), **{k: s.get(k) for k in ("doc_hash", "prompt_hash",
                                                                                          "target_hash")}}
                   for t in tasks for s in t.samples]
        scored = sum(len(t.samples) for t in tasks)
        doc = ImportedRecord(
            id=new_id(), time=now(),
            package=EventPackage(name=package, version=str(results.get("versions", {}).get(tasks[0].name, ""))[:40],
                                 seal=""),
            refers_to=Reference(kind="source", sha256=sha),
            files=tuple(EventFile(name=name, sha256=sha256_bytes(p.read_bytes())) for name, p in files.items()),
            summary=ImportedSummary(source_format="lm-eval", producer=producer,
                                    task=",".join(t.name for t in tasks)[:200], model=model,
                                    samples=scored, scored=scored),
            details=ImportedDetails(
                source=ImportedSource(name=results_path.name, sha256=sha, size=files[RESULTS_NAME].stat().st_size,
                                      samples_sha256=canonical_digest(samples)),
                proven=(f"the results file's sha256 {sha} and every samples file (stored beside this document, "
                        "signed)",
                        "every task's samples file is there, with unique doc_ids, as many as the results count, "
                        "and lm-eval's own task hash over them",
                        "every 0/1 per-sample metric recounted here (Clopper-Pearson) and equal to the reported "
                        "value", *notes),
                not_proven=NOT_PROVEN,
                spec={"tasks": [t.name for t in tasks], "model": model, "producer": producer,
                      "date": str(results.get("date", ""))[:40],
                      "model_args": str(config.get("model_args", ""))[:500]},
                metrics=tuple(metrics)),
        )
        signer = signer or KeySigner()
        signed = sign_event(doc, files, signer)
        dossier = Dossier.for_package(package, dossiers_dir)
        entry = dossier.add_event(doc, signed.bundle, files, checkpoint=signer)
    return ImportResult(entry=entry, document=doc, dossier=dossier.root, key_created=signed.key_created)
