"""Four processes appending to one dossier at once: no torn, lost or reordered entry.

Each worker signs and appends 50 real run records (the record of one small run, with
its own run id) through ``Dossier.add_run``, the path every run takes. All four start
at the same moment; afterwards the log must hold exactly 200 entries, seq 1..200,
every chain link and signature must verify, and each worker's entries must appear in
the order that worker appended them.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
from pathlib import Path

import pytest

from harness import signing as sign
from harness.dossier.log import Dossier
from harness.dossier.verify import verify_dossier
from harness.record import OUTPUTS_NAME, PREDICATE_TYPE_RUN, RunRecord, parse_record
from harness.run import RunOptions, run_package
from harness.signing.signers import KeySigner

from .fake_openai import FakeOpenAI

WORKERS = 4
APPENDS = 50


def _worker(dossier_root: str, template_dir: str, config_dir: str, worker: int, go: object) -> None:
    """Runs in a child process: append APPENDS records, each with its own run id."""
    from harness._internal.hashing import sha256_bytes, sha256_file

    d = Dossier(Path(dossier_root))
    key = sign.load_or_create_key(Path(config_dir))
    base = parse_record(Path(template_dir) / "record.json")
    outputs = Path(template_dir) / OUTPUTS_NAME
    scratch = Path(dossier_root).parent / f"scratch-{worker}"
    scratch.mkdir()
    go.wait(30)  # type: ignore[attr-defined]
    for n in range(APPENDS):
        run_id = f"w{worker}-{n:03d}"
        record = RunRecord.model_validate({**base.model_dump(mode="json"), "run_id": run_id})
        out = scratch / f"{run_id}.jsonl"
        shutil.copyfile(outputs, out)
        subjects = {"record.json": sha256_bytes(record.to_bytes()), OUTPUTS_NAME: sha256_file(out)}
        bundle = sign.sign_statement(subjects, PREDICATE_TYPE_RUN, {"run_id": run_id}, key)
        d.add_run(record, bundle, out, checkpoint=KeySigner(Path(config_dir)))  # a checkpoint after each append


@pytest.fixture
def template(pkg_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """One real, small run (5 samples through the loopback fake), and the key that signed it."""
    with FakeOpenAI() as srv:
        res = run_package(RunOptions(package=pkg_dir, endpoint=srv.url, model="fake-model", limit=5,
                                     dossiers_dir=tmp_path / "template", config_dir=tmp_path / "cfg", progress=False))
    return res.run_dir, tmp_path / "cfg"


def test_four_processes_append_200_entries(template: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, cfg = template
    root = tmp_path / "shared" / "mini-safety"
    root.mkdir(parents=True)
    ctx = mp.get_context("fork")  # children inherit the imported harness: seconds faster than spawn
    go = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(str(root), str(run_dir), str(cfg), w, go)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    d = Dossier(root)
    raw = d.log.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == WORKERS * APPENDS  # no torn line
    entries = d.entries()
    assert [e.seq for e in entries] == list(range(1, WORKERS * APPENDS + 1))
    ids = [e.run_id for e in entries]
    assert len(set(ids)) == WORKERS * APPENDS  # nothing lost, nothing doubled
    for w in range(WORKERS):
        mine = [i for i in ids if i.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{n:03d}" for n in range(APPENDS)]  # each worker's own order
    # The workers really interleaved (otherwise this test would prove little about locking).
    switches = sum(1 for a, b in zip(ids, ids[1:], strict=False) if a[:2] != b[:2])
    assert switches >= WORKERS - 1
    report = verify_dossier(d, sign.default_trust_store(cfg))
    assert report.ok, report.problems[:3]
    assert report.entries == WORKERS * APPENDS
