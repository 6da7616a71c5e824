"""One way to name a run: a ``record.json`` path, a run folder, or ``PACKAGE@N``.

``N`` is a sequence number, ``latest`` (the default) or a run id prefix. Every command
that takes a run (verify, diff, reproduce, rescore, baseline update, approve) resolves
it here, so a reference means the same thing and fails the same way everywhere.

Paths read from a log are confined to the dossier after resolving symlinks
(:func:`entry_file`): a link inside a received dossier must not make the harness read
a file of the auditor's machine as if it were part of the run.
"""

from __future__ import annotations

from pathlib import Path

from harness._internal.files import OutsideRootError, confine
from harness._internal.hashing import sha256_file
from harness.dossier.log import Dossier, Entry
from harness.errors import DossierError, HarnessError
from harness.record import BUNDLE_NAME, OUTPUTS_NAME, RECORD_NAME

_REF_HINT = "give a record.json path, or PACKAGE@N (N: sequence number, 'latest' or a run id prefix)"


def run_files(record_or_dir: Path) -> tuple[Path, Path, Path]:
    """record.json, its bundle and outputs, given the record or the run folder."""
    d = record_or_dir if record_or_dir.is_dir() else record_or_dir.parent
    record = record_or_dir if record_or_dir.is_file() else d / RECORD_NAME
    return record, d / BUNDLE_NAME, d / OUTPUTS_NAME


def entry_file(root: Path, rel: str) -> Path:
    """The file ``rel`` of the dossier at ``root``, symlinks resolved; refused (DossierError)
    when it lies outside the dossier."""
    try:
        return confine(root, rel)
    except OutsideRootError:
        raise DossierError(f"{rel} leads outside the dossier {root} (through a symbolic link)",
                           hint="a received dossier may only name its own files; do not trust it") from None


def split_ref(ref: str) -> tuple[str, str]:
    """``PACKAGE@N`` as (package, N); N is ``latest`` when not given."""
    name, _, which = ref.partition("@")
    return name, which or "latest"


def known_names(dossiers: Path | None = None) -> list[str]:
    """Names a user may mean: the dossiers that exist and the packages in the packages folder."""
    from harness._internal.settings import packages_dir

    root = Dossier.for_package("x", dossiers).root.parent
    names = {p.name for p in root.iterdir() if (p / "log.jsonl").is_file()} if root.is_dir() else set()
    pkgs = packages_dir()
    if pkgs.is_dir():
        names |= {p.name for p in pkgs.iterdir() if (p / "manifest.toml").is_file()}
    return sorted(names)


def did_you_mean(name: str, dossiers: Path | None = None) -> str | None:
    """``did you mean mini-safety?`` for a misspelt package or dossier name, or None."""
    import difflib

    close = difflib.get_close_matches(name, known_names(dossiers), n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else None


def dossier_named(ref: str, dossiers: Path | None = None, *, what: str = "a dossier entry") -> Dossier:
    """The dossier of ``PACKAGE[@N]``; refused (bad input, exit 2) when it has no log, with
    the closest existing name when there is one."""
    name, _ = split_ref(ref)
    dossier = Dossier.for_package(name, dossiers)
    if not dossier.log.exists():
        guess = did_you_mean(name, dossiers)
        entry = what == "a dossier entry"
        subject = f"{ref!r} is neither a record file nor {what}" if entry else f"there is no dossier {name!r}"
        rest = _REF_HINT if entry else f"run the package first (`harness run {name}`), or pass --dossiers DIR"
        raise HarnessError(f"{subject} (no dossier at {dossier.root})",
                           hint=f"{guess} ({rest})" if guess else rest)
    return dossier


def locate(ref: str, dossiers: Path | None = None) -> tuple[Dossier, Entry]:
    """The dossier and run entry of ``ref``; a record path must be one of its dossier's entries."""
    p = Path(ref)
    if p.exists():
        record = p / RECORD_NAME if p.is_dir() else p
        root = record.resolve().parent.parent.parent  # <dossier>/runs/<run_id>/record.json
        dossier = Dossier(root)
        if not dossier.log.exists():
            raise DossierError(
                f"{record} does not sit in a dossier (no {dossier.log})",
                hint="use a run from its dossier (dossiers/<package>/runs/<run_id>/record.json or PACKAGE@N)",
            )
        digest = sha256_file(record)
        hits = [e for e in dossier.runs() if e.record.sha256 == digest]
        if not hits:
            raise DossierError(
                f"{record} is not the record of any entry of the dossier {dossier.root}",
                hint="the record was altered, or copied in from elsewhere; use the dossier's own copy",
            )
        return dossier, hits[-1]
    dossier = dossier_named(ref, dossiers)
    return dossier, dossier.resolve(split_ref(ref)[1])


def run_files_of(ref: str, dossiers: Path | None = None) -> tuple[Path, Path, Path]:
    """(record, bundle, outputs) of ``ref``; a record path need not sit in a dossier."""
    p = Path(ref)
    if p.exists():
        return run_files(p)
    dossier = dossier_named(ref, dossiers)
    entry = dossier.resolve(split_ref(ref)[1])
    return (entry_file(dossier.root, entry.record.path), entry_file(dossier.root, entry.bundle.path),
            entry_file(dossier.root, entry.outputs.path))
