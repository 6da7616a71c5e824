"""Signed checkpoints of a dossier: the C2SP tlog-checkpoint format, signed as a C2SP signed note.

The hash chain of ``log.jsonl`` names an edited line, but anyone who can write the file
can recompute the chain after deleting, reordering or replacing entries. A checkpoint
fixes the whole log at once: the RFC 9162 Merkle root of every entry line, and the
number of entries, signed. It is the format transparency logs use
(https://c2sp.org/tlog-checkpoint), so witnesses and other tools can read it::

    llm-safety-harness/dossier/mini-safety/<sha256 of entry 1's line>
    7
    <base64 Merkle root of the 7 lines>

    — llm-safety-harness/dossier/mini-safety/<…> <base64(key ID || ECDSA signature)>

The signature lines follow https://c2sp.org/signed-note: signature type 0x02, ECDSA
P-256 with SHA-256 as implemented by transparency-dev (the same scheme Sigstore's Rekor
signs its checkpoints with): the signature is ASN.1 DER over SHA-256 of the note text,
and the key ID is the first four bytes of SHA-256 of the key's DER SubjectPublicKeyInfo
(so it is the first four bytes of the key's Sigstore hint). The key name is the origin.
A keyless (Sigstore) signer cannot make such a line; its signature is a Sigstore bundle
beside the note (``checkpoint.sigstore.json``), an in-toto statement whose one subject
``checkpoint`` is the sha256 of the note text.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._internal import merkle
from harness._internal.files import atomic_write, read_regular
from harness.errors import CheckpointError, CheckpointFailure, HarnessError

CHECKPOINT_NAME = "checkpoint"
"""The newest signed checkpoint, beside ``log.jsonl``."""
CHECKPOINT_BUNDLE_NAME = "checkpoint.sigstore.json"
"""Its Sigstore bundle, when a keyless signer signed it."""
ORIGIN_PREFIX = "llm-safety-harness/dossier"
PREDICATE_TYPE_CHECKPOINT = "https://github.com/llm-safety-harness/harness/checkpoint/v1"
SIGNATURE_TYPE_ECDSA = 0x02
"""The signed-note signature type of ECDSA over SHA-256 (c2sp.org/signed-note, "Signature types")."""
MAX_NOTE_BYTES = 1 << 16
MAX_SIGNATURES = 64

_NAME = re.compile(r"^[^\s+]+$")
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,18})$")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DASH = "\u2014 "


def origin_of(package: str, first_line: bytes) -> str:
    """The origin line of a dossier: its package and the digest of its first entry.

    Two dossiers of the same package differ in their first entry, so a checkpoint of one
    never verifies for the other; two logs that share their first entry are the same log,
    and a consistency proof then tells growth from a fork.
    """
    if not _SLUG.match(package):
        raise CheckpointError(f"package name {package!r} cannot be part of a checkpoint origin",
                              hint="package names are letters, digits, '.', '_' and '-'",
                              reason=CheckpointFailure.MALFORMED)
    return f"{ORIGIN_PREFIX}/{package}/{hashlib.sha256(first_line).hexdigest()}"


def _b64(data: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or base64.b64encode(raw).decode("ascii") != data:
        raise CheckpointError(f"the checkpoint's {what} is not standard base64",
                              hint="the checkpoint was damaged or edited", reason=CheckpointFailure.MALFORMED)
    return raw


@dataclass(frozen=True)
class TreeHead:
    """What a checkpoint says: which log (origin), how many entries, and their Merkle root."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> bytes:
        """The note text: the bytes every signature covers (ends in a newline)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"), *self.extensions]
        return ("\n".join(lines) + "\n").encode("utf-8")

    def describe(self) -> str:
        """One line for people: size and the root in hex (as ``dossier verify`` prints heads)."""
        return f"{self.size} {'entry' if self.size == 1 else 'entries'}, root {self.root.hex()}"

    def as_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "size": self.size, "root": self.root.hex()}


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: ``— <name> base64(key ID || signature)``."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> bytes:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.signature).decode('ascii')}\n".encode()


@dataclass(frozen=True)
class Checkpoint:
    """A parsed checkpoint file: the tree head, and the signature lines under it."""

    head: TreeHead
    signatures: tuple[NoteSignature, ...] = ()

    def to_bytes(self) -> bytes:
        """The file: note text, a blank line, then one line per signature (none for keyless)."""
        return self.head.body() + b"\n" + b"".join(s.line() for s in self.signatures)


def parse_checkpoint(data: bytes) -> Checkpoint:
    """Parse a checkpoint file; raise :class:`CheckpointError` (MALFORMED) for anything off-format.

    The text is untrusted until a signature is checked, so everything is validated here:
    UTF-8, no control characters but newline, the three mandatory lines, a canonical
    tree size and a 32-byte base64 root, and well-formed signature lines.
    """
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"not a checkpoint: {why}", hint="the checkpoint was damaged or edited; "
                               "`harness dossier checkpoint PKG --sign` writes a new one over the current log",
                               reason=CheckpointFailure.MALFORMED)

    if len(data) > MAX_NOTE_BYTES:
        raise bad(f"larger than {MAX_NOTE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("not UTF-8") from None
    if any(c < " " and c != "\n" for c in text):
        raise bad("control characters")
    split = text.rfind("\n\n")
    if split < 0:
        raise bad("no blank line after the note text")
    body, sig_text = text[:split + 1], text[split + 2:]
    lines = body[:-1].split("\n")
    if len(lines) < 3 or any(not x for x in lines):
        raise bad("the note text needs an origin, a tree size and a root hash, each on its own line")
    origin, size, root = lines[:3]
    if not _SIZE.match(size):
        raise bad(f"tree size {size!r} is not a decimal number without leading zeros")
    root_bytes = _b64(root, "root hash")
    if len(root_bytes) != 32:
        raise bad("the root hash is not 32 bytes")
    sigs = []
    if sig_text:
        if not sig_text.endswith("\n"):
            raise bad("the last signature line does not end in a newline")
        for raw in sig_text[:-1].split("\n"):
            parts = raw.split(" ")
            if not raw.startswith(_DASH) or len(parts) != 3 or not parts[1] or not _NAME.match(parts[1]):
                raise bad(f"{raw[:60]!r} is not a signature line")
            blob = _b64(parts[2], "signature")
            if len(blob) < 5:
                raise bad("a signature is shorter than its key ID")
            sigs.append(NoteSignature(parts[1], blob[:4], blob[4:]))
    if len(sigs) > MAX_SIGNATURES:
        raise bad(f"more than {MAX_SIGNATURES} signatures")
    head = TreeHead(origin, int(size), root_bytes, tuple(lines[3:]))
    if head.body() != body.encode("utf-8"):  # pragma: no cover - the checks above make this exact
        raise bad("the note text is not in canonical form")
    return Checkpoint(head, tuple(sigs))


# ------------------------------------------------------------------------------- signing


def ecdsa_key_id(public_key: Any) -> bytes:
    """The signed-note key ID of an ECDSA key (type 0x02): SHA-256(DER SPKI)[:4]."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()[:4]


def verifier_key(name: str, public_key: Any) -> str:
    """The signed-note verifier key (vkey) of an ECDSA key: ``<name>+<hex key ID>+base64(0x02 || DER SPKI)``,
    as transparency-dev's tools and Go's ``note`` verifiers read it."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"{name}+{ecdsa_key_id(public_key).hex()}+{base64.b64encode(bytes([SIGNATURE_TYPE_ECDSA]) + der).decode()}"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A newly signed checkpoint: the note file, and the Sigstore bundle when the signer is keyless."""

    checkpoint: Checkpoint
    bundle: bytes | None = None
    key_created: Any = None


def sign_checkpoint(head: TreeHead, signer: Any) -> SignedCheckpoint:
    """Sign ``head`` with ``signer`` (a :class:`harness.signing.signers.Signer`).

    The local key (:class:`KeySigner`) signs the note itself (signature type 0x02, the key
    name is the origin). Any other signer, Sigstore keyless among them, signs an in-toto
    statement over the note text, kept beside it as ``checkpoint.sigstore.json``.
    """
    from harness.signing.signers import KeySigner

    body = head.body()
    if isinstance(signer, KeySigner):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        from harness.signing.keys import load_or_create_key

        key = load_or_create_key(signer.config_dir)
        sig = key.private_key.sign(body, ec.ECDSA(hashes.SHA256()))
        note = NoteSignature(head.origin, ecdsa_key_id(key.public_key), sig)
        return SignedCheckpoint(Checkpoint(head, (note,)), None, key.path if key.created else None)
    signed = signer.sign({CHECKPOINT_NAME: hashlib.sha256(body).hexdigest()}, PREDICATE_TYPE_CHECKPOINT,
                         {"origin": head.origin, "tree_size": head.size,
                          "root_hash": base64.b64encode(head.root).decode("ascii")})
    return SignedCheckpoint(Checkpoint(head), signed.bundle, signed.key_created)


# ------------------------------------------------------------------------------ verifying


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose signature a trusted signer made; ``signer`` as records name theirs."""

    head: TreeHead
    signer: str
    other_signatures: tuple[str, ...] = field(default=())
    """Names on signature lines from keys the verifier does not know (witnesses, rotated keys): ignored."""


def _trusted_keys(trusted: Any) -> Sequence[Any]:
    from harness.signing.policy import TrustPolicy

    return trusted.trusted_keys if isinstance(trusted, TrustPolicy) else list(trusted)


def verify_checkpoint(cp: Checkpoint, bundle: bytes | None, trusted: Any) -> VerifiedCheckpoint:
    """Accept ``cp`` only if a trusted signer signed it; raise :class:`CheckpointError` otherwise.

    Per the signed-note rules: a line whose key name (the origin) and key ID match a
    trusted ECDSA key must verify, or the whole note is refused; lines of unknown keys
    are ignored; at least one trusted signature must verify. Without one, a Sigstore
    bundle beside the note may sign it instead (the same trust decides its signer).
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from harness.signing.keys import key_hint

    body = cp.head.body()
    keys = [k for k in _trusted_keys(trusted) if isinstance(k.public_key, ec.EllipticCurvePublicKey)]
    by_id: dict[bytes, list[Any]] = {}
    for k in keys:
        by_id.setdefault(ecdsa_key_id(k.public_key), []).append(k)
    signer: str | None = None
    unknown = []
    for s in cp.signatures:
        candidates = by_id.get(s.key_id, []) if s.name == cp.head.origin else []
        if not candidates:
            unknown.append(s.name)
            continue
        ok = None
        for k in candidates:
            try:
                k.public_key.verify(s.signature, body, ec.ECDSA(hashes.SHA256()))
                ok = k
                break
            except InvalidSignature:
                continue
        if ok is None:
            raise CheckpointError("the checkpoint's signature by a trusted key does not verify (the checkpoint "
                                  "was altered after signing)", hint="get an unaltered copy of the dossier",
                                  reason=CheckpointFailure.BAD_SIGNATURE)
        signer = signer or f"key:{key_hint(ok.public_key)}"
    if signer is None and bundle is not None:
        signer = _verify_bundle(cp, bundle, trusted)
    if signer is None:
        raise CheckpointError(
            "the checkpoint is not signed by a signer you trust" + (
                f" (it carries signatures by {', '.join(sorted(set(unknown)))} with keys you do not trust)"
                if unknown else " (it carries no signature)"),
            hint="pass --trust-key/--trust-policy with the dossier keeper's key, or sign the log yourself after "
                 "checking it: `harness dossier checkpoint PKG --sign`", reason=CheckpointFailure.UNTRUSTED_SIGNER)
    return VerifiedCheckpoint(cp.head, signer, tuple(unknown))


def _verify_bundle(cp: Checkpoint, bundle: bytes, trusted: Any) -> str | None:
    """The signer of a keyless checkpoint bundle, if it signs exactly this note."""
    from harness.errors import UntrustedSignerError
    from harness.signing.verify import verify_bundle

    try:
        st = verify_bundle(bundle, trusted)
    except UntrustedSignerError:
        return None
    except HarnessError as e:
        raise CheckpointError(f"the checkpoint's Sigstore bundle does not verify: {e.message}",
                              hint=e.hint, reason=CheckpointFailure.BAD_SIGNATURE) from None
    want = {"origin": cp.head.origin, "tree_size": cp.head.size,
            "root_hash": base64.b64encode(cp.head.root).decode("ascii")}
    if st.predicate_type != PREDICATE_TYPE_CHECKPOINT or st.subjects.get(CHECKPOINT_NAME) != \
            hashlib.sha256(cp.head.body()).hexdigest() or st.predicate != want:
        raise CheckpointError("the checkpoint's Sigstore bundle signs another checkpoint",
                              hint="the checkpoint or its bundle was replaced", reason=CheckpointFailure.BAD_SIGNATURE)
    return st.signer


# ------------------------------------------------------------------- the dossier's own files


def log_lines(log: Path) -> list[bytes]:
    """The complete lines of a log (a last piece without its newline is not an entry yet)."""
    try:
        data = read_regular(log)
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    lines.pop()  # the piece after the last newline: empty, or not yet a committed line
    return lines


def head_of(lines: Sequence[bytes], package: str, leaves: Sequence[bytes] | None = None) -> TreeHead:
    """The tree head of a non-empty log of ``package``: origin, size, Merkle root."""
    hashes = leaves if leaves is not None else [merkle.leaf_hash(x) for x in lines]
    return TreeHead(origin_of(package, lines[0]), len(lines), merkle.root_of(hashes))


def read_stored(root: Path) -> tuple[Checkpoint | None, bytes | None]:
    """The checkpoint beside ``root``'s log (parsed) and its Sigstore bundle, if any.

    Only regular files are read (a FIFO planted there is refused at once)."""
    try:
        raw = read_regular(root / CHECKPOINT_NAME, limit=MAX_NOTE_BYTES)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        raise CheckpointError(f"cannot read {root / CHECKPOINT_NAME}: {e}", hint="replace it with a regular file",
                              reason=CheckpointFailure.MALFORMED) from None
    cp = parse_checkpoint(raw)
    try:
        bundle: bytes | None = read_regular(root / CHECKPOINT_BUNDLE_NAME, limit=MAX_NOTE_BYTES * 4)
    except FileNotFoundError:
        bundle = None
    except OSError as e:
        raise CheckpointError(f"cannot read {root / CHECKPOINT_BUNDLE_NAME}: {e}",
                              hint="replace it with a regular file", reason=CheckpointFailure.MALFORMED) from None
    return cp, bundle


def resign(root: Path, log: Path, package: str, signer: Any) -> SignedCheckpoint:
    """Sign a checkpoint over every line of ``log`` and store it beside it; the caller holds the lock.

    The log must extend the checkpoint stored there (same origin, a prefix with the same
    root): otherwise the log was rewritten since it was last signed, and a new signature
    would launder the rewrite, so nothing is signed.
    """
    lines = log_lines(log)
    if not lines:
        raise CheckpointError(f"{log} has no entries to sign", hint="a checkpoint is made after the first entry",
                              reason=CheckpointFailure.MALFORMED)
    leaves = [merkle.leaf_hash(x) for x in lines]
    head = head_of(lines, package, leaves)
    try:
        old, _ = read_stored(root)
    except CheckpointError:
        old = None  # a damaged note vouches for nothing; the new one replaces it
    if old is not None:
        if old.head.origin != head.origin:
            raise CheckpointError(
                f"the checkpoint beside {log} belongs to another log (origin {old.head.origin}); this log's first "
                "entry is not the one that was signed", hint="restore the log from a copy; or, if this is really a "
                f"new dossier, move {root / CHECKPOINT_NAME} away first", reason=CheckpointFailure.WRONG_ORIGIN)
        if old.head.size > head.size or merkle.root_of(leaves[:old.head.size]) != old.head.root:
            raise CheckpointError(
                f"{log} does not extend its last signed checkpoint (then {old.head.describe()}; now "
                f"{head.describe()}): entries were removed, changed or reordered since", hint="restore the log from "
                f"a copy that matches {root / CHECKPOINT_NAME}; nothing was signed",
                reason=CheckpointFailure.INCONSISTENT)
    signed = sign_checkpoint(head, signer)
    if signed.bundle is not None:
        atomic_write(root / CHECKPOINT_BUNDLE_NAME, signed.bundle)
    atomic_write(root / CHECKPOINT_NAME, signed.checkpoint.to_bytes())
    if signed.bundle is None:
        with contextlib.suppress(FileNotFoundError):
            (root / CHECKPOINT_BUNDLE_NAME).unlink()  # a key signature replaces a keyless one
    return signed
