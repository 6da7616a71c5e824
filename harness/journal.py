"""The journal of a run in progress: what lets an interrupted run resume.

A run writes each sample's outputs line to ``.work/<config>/outputs.jsonl`` the moment
the sample is answered and scored, with one ``write`` on an ``O_APPEND`` descriptor,
so a process killed at any instant leaves every finished sample on disk and at worst
one torn last line (dropped on resume). Lines are fsynced in groups (at most every
``SYNC_INTERVAL_S``) because an fsync per sample would cap a fast server's run at the
disk's fsync rate; a SIGKILL loses nothing either way, a power cut at most the last
group, which resume simply generates again.

The folder is named by a digest of the run's configuration (package seal, model,
generation parameters, seed, sample limit), so the same command finds its own
unfinished run and nothing else. ``run.json`` fixes the run id and start time at the
first attempt, so a resumed run is the same run, not a new one.

When generation is over, the finished run is committed in steps that can each be
interrupted: record and bundle are written into the work folder, a marker
``.work/<config>.commit`` names the run, the folder is renamed to ``runs/<run_id>``,
the dossier entry is appended, and the marker removed. :func:`recover_commit` finishes
or rolls back whatever step a crash stopped at.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import ValidationError

from harness._internal.crashpoint import crashpoint
from harness._internal.files import atomic_write
from harness._internal.files import fsync_dir as _fsync_dir
from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_digest
from harness.dossier.log import Dossier, Entry
from harness.errors import JournalError
from harness.record import BUNDLE_NAME, OUTPUTS_NAME, RECORD_NAME, Resume, RunRecord, output_line

STATE_NAME = "run.json"
STATE_SCHEMA_VERSION: Final[Literal[1]] = 1
SYNC_INTERVAL_S = 0.05


class RunState(Frozen):
    """``.work/<config>/run.json``: the identity of a run in progress, schema version 1."""

    schema_version: Literal[1] = STATE_SCHEMA_VERSION
    run_id: str
    config_key: str
    started_at: str
    package: str
    samples: int
    resumes: list[Resume] = []


def config_key(config: dict[str, Any]) -> str:
    """The digest that names a run's work folder: equal exactly when the run would be the same."""
    return canonical_digest(config)


class WorkDir:
    """The work folder of one configuration, held under an exclusive lock while a run uses it."""

    def __init__(self, work_root: Path, key: str) -> None:
        self.root = work_root
        self.key = key
        self.path = work_root / key[:24]
        self.marker = work_root / f"{key[:24]}.commit"
        self._lock_fd: int | None = None

    @property
    def journal(self) -> Path:
        return self.path / OUTPUTS_NAME

    @property
    def state_path(self) -> Path:
        return self.path / STATE_NAME

    def lock(self) -> None:
        """Refuse to share a work folder with another live run of the same configuration."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / f"{self.key[:24]}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(
                "another run of this same package, model and configuration is in progress",
                hint="wait for it to finish, or run with another --seed or --dossiers folder",
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
            try:
                (self.root / f"{self.key[:24]}.lock").unlink()
            except FileNotFoundError:
                pass

    def read_state(self) -> RunState | None:
        if not self.state_path.exists():
            return None
        try:
            return RunState.model_validate_json(self.state_path.read_bytes())
        except (ValidationError, ValueError):
            raise JournalError(
                f"{self.state_path} is damaged",
                hint="start over with `harness run ... --fresh` (the unfinished run is discarded)",
            ) from None

    def write_state(self, state: RunState) -> None:
        atomic_write(self.state_path, state.model_dump_json().encode())

    def discard(self) -> None:
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)
        try:
            self.marker.unlink()
        except FileNotFoundError:
            pass


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every complete, successful line of a journal, repairing a torn tail in place.

    Error lines are dropped (and rewritten out of the file) so resume retries those
    samples; a duplicated id keeps its first line, which is the one that counted.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    keep: list[dict[str, Any]] = []
    seen: set[str] = set()
    dirty = not data.endswith(b"\n") and bool(data)
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            dirty = True  # a torn last line: the sample was never counted
            continue
        if not isinstance(line, dict) or "id" not in line or line["id"] in seen or line.get("verdict") == "error":
            dirty = True
            continue
        seen.add(line["id"])
        keep.append(line)
    if dirty:
        atomic_write(path, b"".join(output_line(x) for x in keep))
    return keep


class Journal:
    """Append-only writer of outputs lines with group fsync.

    Each line is one ``write`` on the caller's thread (so it is in the file before the
    sample counts as done); the fsyncs run on a helper thread every ``SYNC_INTERVAL_S``
    while there is something unsynced, because an fsync takes milliseconds on a busy
    disk and would otherwise stall the event loop that keeps requests in flight.
    """

    def __init__(self, path: Path) -> None:
        import threading

        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._unsynced = False
        self._stop = threading.Event()
        self._error: OSError | None = None
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-fsync", daemon=True)
        self._syncer.start()

    def _sync_loop(self) -> None:
        while not self._stop.wait(SYNC_INTERVAL_S):
            if self._unsynced:
                self._unsynced = False
                try:
                    os.fsync(self._fd)
                except OSError as e:  # reported by the next append or close
                    self._error = e
                    return

    def append(self, line: dict[str, Any]) -> None:
        if self._error is not None:
            raise JournalError(f"cannot sync {self.path}: {self._error}", hint="check the disk")
        payload = output_line(line)
        if os.write(self._fd, payload) != len(payload):  # pragma: no cover - regular files write fully
            raise JournalError(f"short write to {self.path}", hint="check free disk space")
        self._unsynced = True
        crashpoint("journal-line")

    def close(self) -> None:
        if self._fd >= 0:
            self._stop.set()
            self._syncer.join()
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def missing(samples: Iterable[Any], done: Iterable[dict[str, Any]]) -> list[Any]:
    finished = {x["id"] for x in done}
    return [s for s in samples if s.id not in finished]


def commit_run(work: WorkDir, dossier: Dossier, record: RunRecord, bundle: bytes) -> Entry:
    """Move a finished run from its work folder into the dossier, in steps a crash can stop between.

    The run counts as committed only once its entry is in the log; until then
    :func:`recover_commit` can roll the folder back and the run is signed again.
    """
    atomic_write(work.path / RECORD_NAME, record.to_bytes())
    crashpoint("record-written")
    atomic_write(work.path / BUNDLE_NAME, bundle)
    crashpoint("bundle-written")
    atomic_write(work.marker, record.run_id.encode())
    crashpoint("commit-marked")
    run_dir = dossier.run_dir(record.run_id)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    os.rename(work.path, run_dir)
    _fsync_dir(run_dir.parent)
    _fsync_dir(work.root)
    crashpoint("moved")
    entry = dossier.append_run(record)
    crashpoint("appended")
    work.marker.unlink()
    return entry


def recover_commit(work: WorkDir, dossier: Dossier) -> Entry | None:
    """Finish or undo a commit that a crash interrupted; the entry if the run had been committed."""
    if not work.marker.exists():
        return None
    run_id = work.marker.read_text().strip()
    entry = dossier.entry_for_run(run_id) if run_id else None
    if entry is None:
        run_dir = dossier.run_dir(run_id) if run_id else None
        if run_dir is not None and run_dir.is_dir() and not work.path.exists():
            os.rename(run_dir, work.path)  # not committed until the entry exists: roll back
            _fsync_dir(work.root)
    work.marker.unlink()
    return entry
