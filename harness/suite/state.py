"""The state of a suite run in progress: what lets ``harness suite run`` resume.

A suite can take hours (many packages x models); an interruption must not repeat the
pairs already finished. ``dossiers/_suites/<suite>/.work/<config>.json`` fixes the suite
id and start time at the first attempt and lists each finished pair by run id, dossier
entry and record digest, written (atomically) the moment the pair's run is committed.
A run committed just before a crash, whose pair the state does not list yet, is found
again in its dossier (:func:`harness.suite.run` matches entries made since the suite
started); a pair interrupted mid-generation resumes from its run's own journal.

Like a run's work state, the file carries an HMAC-SHA256 under the per-user local state
key (:func:`harness.journal.local_state_key`): a state this machine did not write is set
aside (``untrusted-<time>-<random>.json``, never deleted) and the suite starts afresh,
and every pair it lists is checked against its dossier entry before the suite record
names it. ``<config>`` is the first 24 hex digits of the digest of the parsed suite file,
so an edited suite starts its own state.
"""

from __future__ import annotations

import fcntl
import hmac
import os
import secrets
from pathlib import Path
from typing import Final, Literal

from pydantic import ValidationError

from harness._internal.clock import new_id, now
from harness._internal.files import atomic_write, read_regular
from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_json
from harness.errors import JournalError
from harness.journal import local_state_key
from harness.record import Resume

STATE_SCHEMA_VERSION: Final[Literal[1]] = 1
_MAX_STATE_BYTES = 4 << 20


class PairDone(Frozen):
    """A finished pair: its complete run, by id, dossier entry and record digest."""

    package: str
    model: str
    run_id: str
    dossier: str
    seq: int
    record_sha256: str


class SuiteState(Frozen):
    """``.work/<config>.json``, schema version 1; ``mac`` covers every other field."""

    schema_version: Literal[1] = STATE_SCHEMA_VERSION
    suite_id: str
    name: str
    config_key: str
    started_at: str
    done: tuple[PairDone, ...] = ()
    resumes: tuple[Resume, ...] = ()
    mac: str = ""

    def finished(self, package: str, model: str) -> PairDone | None:
        return next((p for p in self.done if p.package == package and p.model == model), None)


def _mac(key: bytes, state: SuiteState) -> str:
    body = canonical_json(state.model_dump(mode="json", exclude={"mac"}))
    return hmac.new(key, b"harness-suite-state-v1\0" + body, "sha256").hexdigest()


class SuiteWork:
    """The work state of one suite configuration, held under an exclusive lock while a run uses it."""

    def __init__(self, root: Path, name: str, config_digest: str) -> None:
        self.folder = root / name / ".work"
        self.key = config_digest[:24]
        self.path = self.folder / f"{self.key}.json"
        self.notices: list[str] = []
        self._fd = -1
        self._secret: bytes | None = None

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = local_state_key()
        return self._secret

    def lock(self) -> None:
        """Refuse a second run of the same suite at the same time (its pairs would race)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / f"{self.key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(f"this suite is already running (lock {self.folder / (self.key + '.lock')} is held)",
                               hint="wait for the other `harness suite run` to finish, or stop it") from None
        self._fd = fd

    def unlock(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def start(self, name: str) -> SuiteState:
        """The state to continue (with a resumption noted), or a new one."""
        state = self.read()
        if state is None:
            state = SuiteState(suite_id=new_id(), name=name, config_key=self.key, started_at=now())
        else:
            state = state.model_copy(update={"resumes": (*state.resumes, Resume(at=now(), samples_done=len(state.done)))})
            self.notices.append(f"resuming suite run {state.suite_id}: {len(state.done)} pair(s) had finished")
        self.write(state)
        return state

    def read(self) -> SuiteState | None:
        try:
            raw = read_regular(self.path, limit=_MAX_STATE_BYTES)
        except FileNotFoundError:
            return None
        except OSError as e:
            self._set_aside(f"it could not be read ({e})")
            return None
        try:
            state = SuiteState.model_validate_json(raw)
        except (ValidationError, ValueError):
            self._set_aside("it is not a valid suite state")
            return None
        if state.config_key != self.key or not hmac.compare_digest(state.mac, _mac(self.secret, state)):
            self._set_aside("it was not written by this machine (its MAC does not verify)")
            return None
        return state

    def write(self, state: SuiteState) -> SuiteState:
        signed = state.model_copy(update={"mac": _mac(self.secret, state)})
        atomic_write(self.path, signed.model_dump_json().encode() + b"\n", mode=0o600)
        return signed

    def add(self, state: SuiteState, pair: PairDone) -> SuiteState:
        """The state with ``pair`` finished, written at once."""
        kept = tuple(p for p in state.done if (p.package, p.model) != (pair.package, pair.model))
        return self.write(state.model_copy(update={"done": (*kept, pair), "mac": ""}))

    def drop(self, state: SuiteState, package: str, model: str) -> SuiteState:
        """The state without a pair whose listed run no longer checks out (it is run again)."""
        return self.write(state.model_copy(update={
            "done": tuple(p for p in state.done if (p.package, p.model) != (package, model)), "mac": ""}))

    def finish(self) -> None:
        """The suite record is written: the state has nothing left to resume."""
        self.path.unlink(missing_ok=True)

    def _set_aside(self, why: str) -> None:
        dest = self.folder / f"untrusted-{new_id()}-{secrets.token_hex(4)}.json"
        os.replace(self.path, dest)
        self.notices.append(f"the suite state {self.path} was set aside as {dest.name}: {why}; the suite starts afresh")
