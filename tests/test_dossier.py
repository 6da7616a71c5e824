"""The dossier's hash chain: appends are atomic and every kind of tampering is named."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
from pathlib import Path

import pytest

from harness.dossier.log import GENESIS, Dossier, Entry, FileRef
from harness.dossier.verify import verify_dossier


def _fake(seq: int, prev: str, tag: str = "x") -> Entry:
    ref = FileRef(path=f"runs/{tag}{seq}/record.json", sha256="0" * 64)
    return Entry(seq=seq, prev=prev, run_id=f"{tag}{seq}", time="t", package="p", package_version="1",
                 seal="s", model_digest="m", status="complete", record=ref, bundle=ref, outputs=ref)


def test_append_chains_entries(tmp_path: Path) -> None:
    d = Dossier(tmp_path / "p")
    assert d.head() == (0, GENESIS)
    e1 = d.append(_fake)
    e2 = d.append(_fake)
    assert (e1.seq, e1.prev) == (1, GENESIS)
    assert e2.seq == 2 and e2.prev == hashlib.sha256(d.parsed_lines()[0][1]).hexdigest()
    assert d.head()[0] == 2
    assert [e.run_id for e in d.entries()] == ["x1", "x2"]
    assert d.resolve("latest").run_id == "x2" and d.resolve("1").run_id == "x1" and d.resolve("-1").run_id == "x1"


def test_torn_tail_is_repaired_on_next_append(tmp_path: Path) -> None:
    d = Dossier(tmp_path / "p")
    d.append(_fake)
    with open(d.log, "ab") as fh:
        fh.write(b'{"schema_version":1,"seq":2,"pr')  # a crash mid-line
    e = d.append(_fake)
    assert e.seq == 2
    lines = d.log.read_bytes().splitlines()
    assert len(lines) == 2 and all(json.loads(x) for x in lines)


def _worker(root: str, n: int, tag: str) -> None:
    d = Dossier(Path(root))
    for _ in range(n):
        d.append(lambda seq, prev: _fake(seq, prev, tag))


def test_concurrent_appends_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "p"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(root), 15, f"w{i}-")) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    parsed = Dossier(root).parsed_lines()
    assert [e.seq for e, _ in parsed] == list(range(1, 46))
    prev = GENESIS
    for e, line in parsed:
        assert e.prev == prev
        prev = hashlib.sha256(line).hexdigest()


@pytest.mark.parametrize("bad", ["garbage", '{"seq": 1}'])
def test_malformed_line_is_reported(tmp_path: Path, bad: str) -> None:
    d = Dossier(tmp_path / "p")
    d.root.mkdir(parents=True)
    d.log.write_text(bad + "\n")
    rep = verify_dossier(d, [])
    assert not rep.ok and "line 1 is not a valid dossier entry" in rep.problems[0].what
