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

Work state is honoured only when this machine wrote it. A dossier can arrive with a
``.work/`` folder in it (copied whole, or planted), and resuming a planted journal would
sign answers nobody here generated. So ``run.json`` carries an HMAC-SHA256 under a
per-user secret (``<config>/local-state.key``, 0600, made on first use), every journal
line has its MAC in ``journal.mac`` (written before the line, so a crash never leaves
an honest line without one), and a commit marker counts only when the run folder it
names holds such a state for the same configuration. Anything else is moved aside into
``.work/untrusted-<time>-<random>/`` (never deleted) and reported, and the run starts
afresh. Ids read from these files are checked as plain names before any path is built
from them.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import ValidationError

from harness._internal.clock import new_id
from harness._internal.crashpoint import crashpoint
from harness._internal.files import (
    NotRegularFileError,
    UnsafeNameError,
    atomic_write,
    check_name,
    create_exclusive,
    read_regular,
)
from harness._internal.files import fsync_dir as _fsync_dir
from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_digest, canonical_json
from harness._internal.settings import local_state_key_path
from harness._internal.strictjson import loads_strict
from harness.dossier.log import Dossier, Entry
from harness.errors import JournalError
from harness.record import BUNDLE_NAME, OUTPUTS_NAME, RECORD_NAME, Resume, RunRecord, output_line
from harness.signing.signers import Signer

STATE_NAME = "run.json"
MAC_NAME = "journal.mac"
STATE_SCHEMA_VERSION: Final[Literal[2]] = 2
"""Version 2 added ``mac``; a version 1 state (no MAC) is not resumed, it is moved aside."""
SYNC_INTERVAL_S = 0.05
UNTRUSTED_PREFIX = "untrusted-"
"""Folders under ``.work/`` that hold work state this machine did not write (kept, never resumed)."""
_MAX_STATE_BYTES = 1 << 20


class RunState(Frozen):
    """``.work/<config>/run.json``: the identity of a run in progress, schema version 2.

    ``mac`` is HMAC-SHA256, under the local state key, of the RFC 8785 form of every
    other field (prefixed ``harness-run-state-v2\\0``): only a state this machine wrote
    verifies, so only such a run is resumed.
    """

    schema_version: Literal[2] = STATE_SCHEMA_VERSION
    run_id: str
    config_key: str
    started_at: str
    package: str
    samples: int
    resumes: list[Resume] = []
    mac: str = ""


def local_state_key() -> bytes:
    """The per-user secret that authenticates work state, created (0600) on first use."""
    path = local_state_key_path()
    try:
        raw = read_regular(path, limit=4096)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        create_exclusive(path, secrets.token_hex(32).encode() + b"\n")  # a racing process may win: read theirs
        raw = read_regular(path, limit=4096)
    except OSError as e:
        raise JournalError(f"cannot read the local state key {path}: {e}",
                           hint="remove it (unfinished runs then start over) or fix its permissions") from None
    try:
        key = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) < 32:
        raise JournalError(f"the local state key {path} is damaged",
                           hint="remove it; a new one is made and unfinished runs start over")
    return key


def _mac(key: bytes, purpose: bytes, *parts: bytes) -> str:
    return hmac.new(key, b"\0".join((purpose, *parts)), hashlib.sha256).hexdigest()


def state_mac(key: bytes, state: RunState) -> str:
    """The MAC of a state (its ``mac`` field excluded)."""
    return _mac(key, b"harness-run-state-v2", canonical_json(state.model_dump(mode="json", exclude={"mac"})))


def line_mac(key: bytes, run_id: str, line: bytes) -> str:
    """The MAC of one journal line (without its newline), bound to the run it belongs to."""
    return _mac(key, b"harness-journal-line-v1", run_id.encode(), line.rstrip(b"\n"))


def config_key(config: dict[str, Any]) -> str:
    """The digest that names a run's work folder: equal exactly when the run would be the same."""
    return canonical_digest(config)


class WorkDir:
    """The work folder of one configuration, held under an exclusive lock while a run uses it.

    ``notices`` collects what was found and set aside (untrusted state, a marker that
    names another run), for the run to report.
    """

    def __init__(self, work_root: Path, key: str) -> None:
        self.root = work_root
        self.key = key
        self.path = work_root / key[:24]
        self.marker = work_root / f"{key[:24]}.commit"
        self.notices: list[str] = []
        self._lock_fd: int | None = None
        self._secret: bytes | None = None

    @property
    def journal(self) -> Path:
        return self.path / OUTPUTS_NAME

    @property
    def state_path(self) -> Path:
        return self.path / STATE_NAME

    @property
    def mac_path(self) -> Path:
        return self.path / MAC_NAME

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = local_state_key()
        return self._secret

    def lock(self) -> None:
        """Refuse to share a work folder with another live run of the same configuration."""
        if self.root.is_symlink() or (self.root.exists() and not self.root.is_dir()):
            self._set_aside(self.root, "the work folder .work is not a folder of this dossier (a link or a file)",
                            into=self.root.parent)
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / f"{self.key[:24]}.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
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

    def _set_aside(self, path: Path, why: str, *, into: Path | None = None) -> Path:
        """Move ``path`` (a file, folder or link, never followed) into a fresh untrusted folder; report it."""
        base = into if into is not None else self.root
        holder = base / f"{'.work-' if into is not None else ''}{UNTRUSTED_PREFIX}{new_id()}"
        os.mkdir(holder)  # fresh: never an existing folder or a planted link
        dest = holder / path.name
        os.rename(path, dest)
        _fsync_dir(base)
        self.notices.append(f"{why}; it was not used and is kept in {dest}")
        return dest

    def read_state(self) -> RunState | None:
        """The state of this configuration's unfinished run, if this machine wrote it.

        A folder whose ``run.json`` is missing (with other files in it), unreadable, not
        a regular file, or fails its MAC is moved aside and None returned: the run
        starts afresh and the received state is never used.
        """
        if not os.path.lexists(self.path):
            return None
        if self.path.is_symlink() or not self.path.is_dir():
            self._set_aside(self.path, f"{self.path} is not a folder (a link or a file)")
            return None
        if not os.path.lexists(self.state_path):
            if not any(self.path.iterdir()):
                self.path.rmdir()  # made, then killed before its state was written
                return None
            self._set_aside(self.path, f"the unfinished run in {self.path} has no {STATE_NAME}")
            return None
        why = self._state_problem()
        if isinstance(why, RunState):
            return why
        self._set_aside(self.path, f"the unfinished run in {self.path} was not written by this machine ({why})")
        return None

    def _state_problem(self) -> RunState | str:
        """The authenticated state, or why it is not one."""
        try:
            raw = read_regular(self.state_path, follow=False, limit=_MAX_STATE_BYTES)
            loads_strict(raw)
            state = RunState.model_validate_json(raw)
            check_name(state.run_id, "run id")
        except NotRegularFileError as e:
            return f"{STATE_NAME} is a {e.kind}"
        except (OSError, ValidationError, ValueError):
            return f"{STATE_NAME} is damaged or of another version"
        if not hmac.compare_digest(state.mac, state_mac(self.secret, state)):
            return f"{STATE_NAME} does not carry this machine's MAC"
        if state.config_key != self.key:
            return f"{STATE_NAME} belongs to another configuration"
        return state

    def write_state(self, state: RunState) -> None:
        signed = state.model_copy(update={"mac": state_mac(self.secret, state)})
        atomic_write(self.state_path, signed.model_dump_json().encode())

    def read_journal(self, state: RunState) -> list[dict[str, Any]]:
        """The journal's lines that this machine wrote for ``state``'s run (see :func:`read_journal`);
        parseable lines without a valid MAC are dropped, kept aside and reported."""
        rejected: list[bytes] = []
        lines = read_journal(self.journal, mac=lambda raw: line_mac(self.secret, state.run_id, raw),
                             mac_path=self.mac_path, rejected=rejected)
        if rejected:
            holder = self.root / f"{UNTRUSTED_PREFIX}{new_id()}"
            os.mkdir(holder)
            atomic_write(holder / OUTPUTS_NAME, b"".join(r + b"\n" for r in rejected))
            self.notices.append(f"{len(rejected)} journal line(s) of run {state.run_id} were not written by this "
                                f"machine; they were not used and are kept in {holder / OUTPUTS_NAME}")
        return lines

    def open_journal(self, state: RunState) -> Journal:
        """The journal writer of ``state``'s run: each line with its MAC."""
        return Journal(self.journal, mac=lambda raw: line_mac(self.secret, state.run_id, raw), mac_path=self.mac_path)

    def discard(self) -> None:
        import shutil

        if self.path.is_symlink():
            self._set_aside(self.path, f"{self.path} is a link")
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            self.marker.unlink()
        except FileNotFoundError:
            pass


def read_journal(
    path: Path, *, mac: Callable[[bytes], str] | None = None, mac_path: Path | None = None,
    rejected: list[bytes] | None = None,
) -> list[dict[str, Any]]:
    """Every complete, successful line of a journal, repairing a torn tail in place.

    Error lines are dropped (and rewritten out of the file) so resume retries those
    samples; a duplicated id keeps its first line, which is the one that counted. With
    ``mac``, a line counts only if its MAC is in ``mac_path``; the others are dropped
    too and, when they parsed, appended to ``rejected``.
    """
    if not os.path.lexists(path):
        return []
    data = read_regular(path, follow=False)
    known: set[str] = set()
    if mac is not None and mac_path is not None and os.path.lexists(mac_path):
        known = {x.strip() for x in read_regular(mac_path, follow=False).decode("ascii", "replace").split("\n")}
    keep: list[dict[str, Any]] = []
    seen: set[str] = set()
    dirty = not data.endswith(b"\n") and bool(data)
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            line = loads_strict(raw)
        except ValueError:
            dirty = True  # a torn last line: the sample was never counted
            continue
        if mac is not None and mac(raw) not in known:
            dirty = True
            if rejected is not None:
                rejected.append(raw)
            continue
        if (not isinstance(line, dict) or not isinstance(line.get("id"), str) or line["id"] in seen
                or line.get("verdict") == "error"):
            dirty = True
            continue
        seen.add(line["id"])
        keep.append(line)
    if dirty:
        body = [output_line(x) for x in keep]
        if mac is not None and mac_path is not None:
            atomic_write(mac_path, b"".join(mac(b).encode() + b"\n" for b in body))
        atomic_write(path, b"".join(body))
    return keep


class Journal:
    """Append-only writer of outputs lines with group fsync.

    Each line is one ``write`` on the caller's thread (so it is in the file before the
    sample counts as done); the fsyncs run on a helper thread every ``SYNC_INTERVAL_S``
    while there is something unsynced, because an fsync takes milliseconds on a busy
    disk and would otherwise stall the event loop that keeps requests in flight.
    """

    def __init__(self, path: Path, *, mac: Callable[[bytes], str] | None = None, mac_path: Path | None = None) -> None:
        import threading

        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        self._fd = os.open(path, flags, 0o644)
        self._mac = mac
        self._mac_fd = os.open(mac_path, flags, 0o600) if mac is not None and mac_path is not None else -1
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
                    if self._mac_fd >= 0:
                        os.fsync(self._mac_fd)
                    os.fsync(self._fd)
                except OSError as e:  # reported by the next append or close
                    self._error = e
                    return

    def append(self, line: dict[str, Any]) -> None:
        if self._error is not None:
            raise JournalError(f"cannot sync {self.path}: {self._error}", hint="check the disk")
        payload = output_line(line)
        if self._mac is not None and self._mac_fd >= 0:  # the MAC first: a crash never leaves an honest line without one
            tag = self._mac(payload).encode() + b"\n"
            if os.write(self._mac_fd, tag) != len(tag):  # pragma: no cover - regular files write fully
                raise JournalError(f"short write beside {self.path}", hint="check free disk space")
        if os.write(self._fd, payload) != len(payload):  # pragma: no cover - regular files write fully
            raise JournalError(f"short write to {self.path}", hint="check free disk space")
        self._unsynced = True
        crashpoint("journal-line")

    def close(self) -> None:
        if self._fd >= 0:
            self._stop.set()
            self._syncer.join()
            if self._mac_fd >= 0:
                os.fsync(self._mac_fd)
                os.close(self._mac_fd)
                self._mac_fd = -1
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


def commit_run(work: WorkDir, dossier: Dossier, record: RunRecord, bundle: bytes,
               signer: Signer | None = None) -> tuple[Entry, RunRecord]:
    """Move a finished run from its work folder into the dossier, in steps a crash can stop between.

    The run counts as committed only once its entry is in the log; until then
    :func:`recover_commit` can roll the folder back and the run is signed again.

    Every step runs under the dossier lock, so the record's signed ``previous_entry`` is
    the entry its own entry follows: when another run or event was appended after the
    record was signed, the record is amended and signed again by ``signer`` (same
    statement, new digest). With ``signer`` the append also signs a checkpoint over the
    log. Returns the entry and the record as committed.
    """
    with dossier.locked():
        seq, head = dossier.head()
        if signer is not None and record.previous_entry != (head if seq else None):
            record = record.model_copy(update={"previous_entry": head if seq else None})
            bundle = _resign_run(bundle, record, signer)
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
        entry = dossier.append_run(record, checkpoint=signer)
        crashpoint("appended")
        work.marker.unlink()
    return entry, record


def _resign_run(bundle: bytes, record: RunRecord, signer: Signer) -> bytes:
    """Sign ``record`` with the statement of ``bundle`` (our own, just made): the same predicate
    type, predicate and outputs digest, the record's subject digest replaced."""
    import base64
    import json

    from harness._internal.hashing import sha256_bytes

    statement = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    subjects[RECORD_NAME] = sha256_bytes(record.to_bytes())
    return signer.sign(subjects, statement["predicateType"], statement["predicate"]).bundle


def recover_commit(work: WorkDir, dossier: Dossier) -> Entry | None:
    """Finish or undo a commit that a crash interrupted; the entry if the run had been committed.

    The marker names a run id; it is honoured only when that id is a plain name and the
    run's folder (in ``runs/`` or still in the work folder) holds a state this machine
    wrote for this configuration. A marker that fails either test moves and deletes
    nothing: it is set aside and reported.
    """
    if not os.path.lexists(work.marker):
        return None
    try:
        run_id = check_name(read_regular(work.marker, follow=False, limit=256).decode("utf-8").strip(), "run id")
    except (OSError, UnsafeNameError, UnicodeDecodeError) as e:
        work._set_aside(work.marker, f"the commit marker {work.marker} is not usable ({e})")
        return None
    run_dir = dossier.run_dir(run_id)
    folder = work.path if os.path.lexists(work.path) else run_dir
    if not _holds_own_state(work, folder, run_id):
        work._set_aside(work.marker, f"the commit marker {work.marker} names run {run_id!r}, whose folder holds no "
                                     "state this machine wrote for this configuration")
        return None
    entry = dossier.entry_for_run(run_id)
    if entry is None and folder == run_dir and not os.path.lexists(work.path):
        os.rename(run_dir, work.path)  # not committed until the entry exists: roll back
        _fsync_dir(work.root)
    work.marker.unlink()
    return entry


def _holds_own_state(work: WorkDir, folder: Path, run_id: str) -> bool:
    """Whether ``folder`` is a real folder (no link) whose ``run.json`` this machine wrote for ``run_id``."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return False
        raw = read_regular(folder / STATE_NAME, follow=False, limit=_MAX_STATE_BYTES)
        state = RunState.model_validate_json(raw)
    except (OSError, ValidationError, ValueError):
        return False
    return (state.run_id == run_id and state.config_key == work.key
            and hmac.compare_digest(state.mac, state_mac(work.secret, state)))
