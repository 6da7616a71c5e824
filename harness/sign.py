"""Offline signing and verification of run records as standard Sigstore bundles.

A run record is only worth something to an auditor if they can tell who produced it
and that nothing changed since. We express that the way the software supply chain
already does, so that tools the auditor trusts more than this harness can check it:

* the claim is an in-toto Statement v1 whose subjects are the signed files (name and
  sha256) and whose predicate is the run record itself;
* the Statement is signed inside a DSSE envelope (the signature covers the DSSE
  pre-authentication encoding, so the payload type is bound too);
* the envelope sits in a Sigstore bundle v0.3 whose verification material is a
  public-key *hint* (base64 sha256 of the key's DER SubjectPublicKeyInfo).

Every structure is built with Sigstore's own models (``sigstore.dsse`` for the
statement and DSSE signing, ``sigstore_models`` for the bundle), never by hand, so the
JSON is exactly what other Sigstore clients expect.

Two ways to sign, one statement and one envelope format:

* with a local ECDSA P-256 key (:func:`sign_statement`): offline, with no OIDC
  identity and no transparency log (``tlogEntries`` is empty). The hint in a bundle
  is only a label chosen by whoever made the bundle; verification therefore looks the
  key up in a trust store the *verifier* controls and checks the signature with it;
* keyless with Sigstore (:func:`sign_statement_keyless`): sigstore-python's own
  ``Signer`` gets a short-lived Fulcio certificate for an OIDC identity (a CI
  workflow's ambient token, or one passed in) and logs the envelope in Rekor. Such
  bundles are verified offline against a pinned trust root and accepted only when a
  :class:`harness.trust.TrustPolicy` lists the certificate's identity.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from pydantic import ValidationError
from sigstore.dsse import DigestSet, Statement, StatementBuilder, Subject, _sign
from sigstore.errors import Error as SigstoreError
from sigstore_models.bundle.v1 import Bundle, VerificationMaterial
from sigstore_models.common.v1 import HashAlgorithm, PublicKeyIdentifier
from sigstore_models.intoto import Envelope as EnvelopeModel

from harness.errors import (
    SignatureError,
    SigningError,
    TransparencyLogError,
    UntrustedSignerError,
)

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "IDENTITY_TOKEN_ENV",
    "INTOTO_PAYLOAD_TYPE",
    "PREDICATE_TYPE_RUN",
    "SigningError",
    "SigningKey",
    "TrustedKey",
    "VerifiedStatement",
    "default_config_dir",
    "default_trust_store",
    "key_hint",
    "load_or_create_key",
    "load_public_keys",
    "sign_statement",
    "sign_statement_keyless",
    "verify_bundle",
    "verify_message_bundle",
]

if TYPE_CHECKING:
    from harness.trust import TrustPolicy

_logger = logging.getLogger(__name__)

PREDICATE_TYPE_RUN = "https://github.com/llm-safety-harness/harness/run-record/v1"
"""The in-toto predicate type of a harness run record (the predicate is the record)."""

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
"""Media type of the bundles we write: Sigstore bundle v0.3, JSON encoding."""

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""DSSE payload type of an in-toto Statement; anything else is not a statement."""

IDENTITY_TOKEN_ENV = "SIGSTORE_ID_TOKEN"
"""Environment variable holding an OIDC identity token for keyless signing."""

KEY_FILENAME = "signing-key.pem"
PUBLIC_KEY_FILENAME = "signing-key.pub.pem"
TRUST_DIRNAME = "trusted-keys"
CONFIG_ENV = "HARNESS_CONFIG_DIR"

_TRUST_SUFFIXES = (".pem", ".pub")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_TRUST_HINT = "pass --trust-key PATH with the signer's public key (a PEM file or a folder of them)"

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
"""Public key kinds Sigstore clients sign with and that we can check."""


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class SigningKey:
    """The local signing key and where it lives.

    ``created`` tells the caller whether this call made the key, so the CLI can say
    "created a new signing key at ..." once instead of silently changing identity.
    """

    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    path: Path
    created: bool

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half, which verifiers need and which is safe to share."""
        return self.private_key.public_key()

    @property
    def hint(self) -> str:
        """The Sigstore key hint of this key (see :func:`key_hint`)."""
        return key_hint(self.public_key)

    @property
    def public_key_path(self) -> Path:
        """Where the public half is written, next to the private key."""
        return self.path.with_name(PUBLIC_KEY_FILENAME)


@dataclass(frozen=True)
class TrustedKey:
    """A public key the verifier has chosen to trust, and the file it came from.

    ``source`` is kept so error messages can say which trust entry was used.
    """

    hint: str
    public_key: PublicKey = field(repr=False)
    source: Path


@dataclass(frozen=True)
class VerifiedStatement:
    """What a verified bundle vouches for; only ever built after the signature checked.

    ``signer`` is ``key:<hint>`` for key-signed bundles and
    ``sigstore:<identity> (issuer <issuer>)`` for keyless ones. ``policy_entry`` is
    the name (or description) of the trust policy entry that accepted the signer, when
    a policy was used; ``signer_details`` holds a keyless signer's certificate fields
    (san, issuer, repository, ref, commit, run_url) for ``--json`` output.
    ``statement_bytes`` are the exact signed payload bytes, so callers can hash or
    store them without re-serialising (which could change bytes).
    """

    subjects: dict[str, str]
    predicate_type: str
    predicate: dict[str, Any]
    signer: str
    statement_bytes: bytes = field(repr=False)
    policy_entry: str | None = None
    signer_details: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------ key management


def default_config_dir() -> Path:
    """Where the signing key and trust store live.

    ``$HARNESS_CONFIG_DIR`` wins so CI and tests can isolate their keys; otherwise the
    platform's per-user config folder, so the key survives across checkouts.
    """
    env = os.environ.get(CONFIG_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir("harness"))


def key_hint(public_key: PublicKey) -> str:
    """Return base64(sha256(DER SubjectPublicKeyInfo)) of ``public_key``.

    This is the value Sigstore clients put in ``verificationMaterial.publicKey.hint``
    for key-signed bundles, so our bundles name keys the same way theirs do.
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


def _hint_filename(hint: str) -> str:
    """A file name derived from a hint: standard base64 has ``/`` which paths cannot."""
    return base64.urlsafe_b64encode(base64.b64decode(hint)).decode("ascii").rstrip("=") + ".pem"


def _public_pem(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; public files may be wider
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` with mode 0600 only if it does not exist; return whether we did.

    The private key is written to a 0600 temporary file and hard-linked into place, so
    two processes racing to create the first key cannot both win, and no one can read
    a half-written key. Where hard links are unsupported we fall back to O_EXCL.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:  # mkstemp already creates the file 0600
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            try:
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return False
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Read and check the signing key, turning every failure into a SigningError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(
            f"cannot read the signing key {path}: {exc.strerror or exc}",
            hint=f"check the file's permissions, or set ${CONFIG_ENV} to another folder",
        ) from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted key, no password given
        raise SigningError(
            f"the signing key {path} is encrypted; the harness needs an unencrypted key "
            "so it can sign unattended",
            hint=f"decrypt it (openssl pkey -in {path} -out {path}.plain) or move it away "
            "to let the harness create a new one",
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningError(
            f"the signing key {path} is not a readable PEM private key ({exc})",
            hint="restore the file from a backup, or move it away to let the harness "
            "create a new key (records signed with the old key stay verifiable with its "
            "public key)",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningError(
            f"the signing key {path} is not an ECDSA P-256 key (got "
            f"{type(key).__name__}{'/' + key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey) else ''})",
            hint="the harness signs with ECDSA P-256 only; move the file away to let it "
            "create one, or convert your key (openssl ecparam -name prime256v1 -genkey)",
        )
    return key


def load_or_create_key(config_dir: Path | None = None) -> SigningKey:
    """Load ``<config>/signing-key.pem``, creating it (and its trust entry) on first use.

    Signing must work on a fresh machine without a setup step, yet the key must be
    stable so a dossier's records share one signer. On creation we also write the
    public half to ``signing-key.pub.pem`` (to hand to auditors) and add it to the
    local trust store, so the same user can verify their own records out of the box.
    The trust entry is only added on creation: if a user removes it later, that
    deliberate choice is respected.
    """
    config = Path(config_dir) if config_dir is not None else default_config_dir()
    path = config / KEY_FILENAME
    try:
        config.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise SigningError(
            f"cannot create the harness config folder {config}: {exc.strerror or exc}",
            hint=f"set ${CONFIG_ENV} to a writable folder",
        ) from exc

    created = False
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            created = _create_exclusive(path, pem)
        except OSError as exc:
            raise SigningError(
                f"cannot write the signing key {path}: {exc.strerror or exc}",
                hint=f"set ${CONFIG_ENV} to a writable folder",
            ) from exc

    key = _load_private_key(path)
    if os.name == "posix":
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            _logger.warning(
                "the signing key %s can be read by other users (mode %o); run: chmod 600 %s",
                path,
                mode,
                path,
            )

    signing_key = SigningKey(private_key=key, path=path, created=created)
    public_pem = _public_pem(signing_key.public_key)
    try:
        pub_path = signing_key.public_key_path
        if not pub_path.exists() or pub_path.read_bytes() != public_pem:
            _write_atomic(pub_path, public_pem, 0o644)
        if created:
            trust_dir = config / TRUST_DIRNAME
            trust_dir.mkdir(parents=True, exist_ok=True)
            entry = trust_dir / _hint_filename(signing_key.hint)
            if not entry.exists():
                _write_atomic(entry, public_pem, 0o644)
    except OSError as exc:
        raise SigningError(
            f"cannot write the public key next to {path}: {exc.strerror or exc}",
            hint=f"check that {config} is writable",
        ) from exc
    return signing_key


# -------------------------------------------------------------------- trust store


def _load_public_key_file(path: Path) -> TrustedKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(
            f"cannot read the trusted key {path}: {exc.strerror or exc}",
            hint="check the path given to --trust-key",
        ) from exc
    if b"PRIVATE KEY-----" in data:
        raise SignatureError(
            f"{path} holds a private key, not a public key; a trust store must only "
            "hold public keys",
            hint=f"trust {PUBLIC_KEY_FILENAME} instead (the public half), and keep the "
            "private key out of shared folders",
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureError(
            f"{path} is not a PEM public key (expected '-----BEGIN PUBLIC KEY-----')",
            hint="export the signer's public key as PEM, e.g. "
            "'openssl pkey -in KEY -pubout', or remove the file from the trust folder",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise SignatureError(
            f"{path} holds a {type(key).__name__}, which Sigstore does not sign with",
            hint="trust an ECDSA (P-256/P-384/P-521), Ed25519 or RSA public key",
        )
    return TrustedKey(hint=key_hint(key), public_key=key, source=path)


def load_public_keys(paths: Sequence[Path]) -> list[TrustedKey]:
    """Load trusted public keys from PEM files and folders of ``*.pem`` / ``*.pub``.

    Trust is an explicit decision of the verifier, so a path that does not exist or
    a file that is not a public key is an error rather than silently skipped. Keys
    are returned in a stable order (paths as given, folder entries sorted), with
    duplicates (same key, several files) kept once.
    """
    found: list[TrustedKey] = []
    seen: set[str] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _TRUST_SUFFIXES)
        elif path.is_file():
            files = [path]
        else:
            raise SignatureError(
                f"trusted key path {path} does not exist",
                hint="pass --trust-key with an existing PEM public key file or a folder "
                "of *.pem / *.pub files",
            )
        for file in files:
            trusted = _load_public_key_file(file)
            if trusted.hint not in seen:
                seen.add(trusted.hint)
                found.append(trusted)
    return found


def default_trust_store(config_dir: Path | None = None) -> list[TrustedKey]:
    """The keys in ``<config>/trusted-keys``, or none if that folder does not exist.

    The folder starts with the user's own key (added by :func:`load_or_create_key`);
    auditors add colleagues' public keys by copying PEM files into it.
    """
    config = Path(config_dir) if config_dir is not None else default_config_dir()
    store = config / TRUST_DIRNAME
    if not store.is_dir():
        return []
    return load_public_keys([store])


# ------------------------------------------------------------------------ signing


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers.

    Kept here (rather than importing sigstore's private helper) because verification
    must not depend on private API; the tests check it matches sigstore's bytes.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


def _check_subjects(subjects: Mapping[str, str]) -> list[Subject]:
    if not subjects:
        raise SigningError(
            "nothing to sign: a statement needs at least one subject",
            hint="pass the signed files as {name: sha256-hex}",
        )
    out: list[Subject] = []
    for name in sorted(subjects):
        digest = subjects[name]
        if not isinstance(name, str) or not name:
            raise SigningError(
                f"subject name {name!r} must be a non-empty string",
                hint="name each subject after the file it stands for",
            )
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest.lower()):
            raise SigningError(
                f"subject {name!r} has digest {digest!r}, which is not a sha256 hex digest",
                hint="pass the 64-character lowercase hex sha256 of the file's bytes",
            )
        out.append(Subject(name=name, digest=DigestSet({"sha256": digest.lower()})))
    return out


def _build_statement(
    subjects: Mapping[str, str], predicate_type: str, predicate: dict[str, Any]
) -> tuple[Statement, Any]:
    """Check the inputs and build the in-toto Statement; also return the plain-JSON predicate."""
    subject_models = _check_subjects(subjects)
    if not isinstance(predicate_type, str) or not predicate_type:
        raise SigningError(
            "the predicate type must be a non-empty URI string",
            hint=f"use {PREDICATE_TYPE_RUN!r} for run records",
        )
    if not isinstance(predicate, dict):
        raise SigningError(
            f"the predicate must be a JSON object (dict), got {type(predicate).__name__}",
            hint="pass the run record as a dict",
        )
    try:
        expected = json.loads(json.dumps(predicate, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise SigningError(
            f"the predicate is not plain JSON: {exc}",
            hint="convert values to JSON types (str, int, float, bool, None, list, dict) "
            "and replace NaN/inf before signing",
        ) from exc
    try:
        statement = (
            StatementBuilder()
            .subjects(subject_models)
            .predicate_type(predicate_type)
            .predicate(predicate)
            .build()
        )
    except SigstoreError as exc:
        raise SigningError(
            f"could not build the in-toto statement: {exc}",
            hint="check the subjects and predicate",
        ) from exc
    return statement, expected


def _check_signed_predicate(payload: bytes, expected: Any) -> None:
    if json.loads(payload).get("predicate") != expected:
        raise SigningError(
            "the predicate changed when serialised for signing",
            hint="use only plain JSON types in the run record",
        )


def sign_statement(
    subjects: Mapping[str, str],
    predicate_type: str,
    predicate: dict[str, Any],
    key: SigningKey,
) -> bytes:
    """Sign an in-toto Statement with ``key`` and return the Sigstore bundle JSON bytes.

    ``subjects`` maps each file name to its sha256 hex digest; ``predicate`` must be
    plain JSON (no NaN, no non-JSON types) because what is signed must read back
    exactly as given. Subjects are sorted by name so signing the same inputs twice
    yields the same statement bytes (the ECDSA signature itself is randomised).
    """
    statement, expected = _build_statement(subjects, predicate_type, predicate)
    try:
        envelope = _sign(key.private_key, statement)
    except SigstoreError as exc:
        raise SigningError(
            f"could not sign the in-toto statement: {exc}",
            hint="check the subjects and predicate",
        ) from exc

    # The public JSON form of sigstore's envelope, re-read into the sigstore_models type
    # the bundle model embeds; this avoids reaching into sigstore's private fields.
    envelope_model = EnvelopeModel.from_json(envelope.to_json())
    _check_signed_predicate(envelope_model.payload, expected)

    bundle = Bundle(
        media_type=BUNDLE_MEDIA_TYPE,
        verification_material=VerificationMaterial(
            public_key=PublicKeyIdentifier(hint=key.hint),
            tlog_entries=[],
        ),
        dsse_envelope=envelope_model,
    )
    return bundle.to_json().encode("utf-8")


_KEY_INSTEAD = (
    "or sign offline with a local key instead ('harness run --sign key'; see docs/signing.md)"
)


def _identity_token(identity_token: str | None) -> Any:
    """The OIDC token to sign with: the argument, else $SIGSTORE_ID_TOKEN, else ambient."""
    from sigstore.oidc import IdentityError, IdentityToken, detect_credential

    raw = identity_token
    origin = "the identity token passed in"
    if not raw:
        raw = os.environ.get(IDENTITY_TOKEN_ENV, "").strip() or None
        origin = f"${IDENTITY_TOKEN_ENV}"
    if not raw:
        origin = "the ambient CI credential"
        try:
            raw = detect_credential()
        except IdentityError as exc:
            # e.g. GitHub Actions without 'permissions: id-token: write'
            raise SigningError(
                f"keyless signing needs an OIDC identity, and the CI credential could not "
                f"be obtained: {exc}",
                hint="in GitHub Actions, grant the job 'permissions: id-token: write'; "
                + _KEY_INSTEAD,
            ) from exc
    if not raw:
        raise SigningError(
            "keyless signing needs an OIDC identity token, and none was found: no token "
            f"was passed, ${IDENTITY_TOKEN_ENV} is not set, and this is not a CI job with "
            "an ambient identity (GitHub Actions with id-token: write, GitLab, Buildkite, "
            "CircleCI, Google Cloud)",
            hint=f"set {IDENTITY_TOKEN_ENV} to a token (e.g. from 'sigstore "
            "get-identity-token'), run in CI with an OIDC identity, " + _KEY_INSTEAD,
        )
    try:
        return IdentityToken(raw)
    except IdentityError as exc:
        # Never echo the token itself: it is a credential.
        raise SigningError(
            f"{origin} is not usable for Sigstore: {exc}",
            hint="get a fresh token with audience 'sigstore' (tokens expire within "
            "minutes), " + _KEY_INSTEAD,
        ) from exc


def sign_statement_keyless(
    subjects: Mapping[str, str],
    predicate_type: str,
    predicate: dict[str, Any],
    *,
    identity_token: str | None = None,
    staging: bool = False,
) -> bytes:
    """Sign an in-toto Statement keylessly with Sigstore; return the bundle JSON bytes.

    The statement and DSSE envelope are the same as :func:`sign_statement`'s; the
    signature is made by sigstore-python's ``Signer.sign_dsse`` with an ephemeral key
    whose Fulcio certificate binds the OIDC identity, and the envelope is entered in
    Rekor. The token is ``identity_token``, else ``$SIGSTORE_ID_TOKEN``, else the
    ambient credential of a CI job (``sigstore.oidc.detect_credential``). It is never
    written anywhere. ``staging`` uses Sigstore's staging instance (for tests).

    Before returning, the bundle is verified offline like an auditor would: against
    the pinned production trust root (staging: the staging root just fetched), for
    the certificate's own identity. So every bundle this returns verifies with
    ``harness verify``. Needs network access to Sigstore; every failure is a
    :class:`SigningError` saying what to do, including how to sign with a key instead.
    """
    import requests
    from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError
    from sigstore._internal.rekor import RekorClientError
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import ExpiredIdentity
    from sigstore.sign import SigningContext

    from harness import trust

    statement, expected = _build_statement(subjects, predicate_type, predicate)
    token = _identity_token(identity_token)
    instance = "staging" if staging else "production"
    try:
        config = ClientTrustConfig.staging() if staging else ClientTrustConfig.production()
        context = SigningContext.from_trust_config(config)
        with context.signer(token, cache=True) as signer:
            signed = signer.sign_dsse(statement)
    except (ExpiredIdentity, ExpiredCertificate) as exc:
        raise SigningError(
            "the OIDC identity token expired before Sigstore issued a certificate",
            hint="get a fresh token and sign again right away, " + _KEY_INSTEAD,
        ) from exc
    except (SigstoreError, requests.RequestException, FulcioClientError, RekorClientError) as exc:
        detail = str(exc) or type(exc).__name__
        cause = exc.__cause__ or exc.__context__
        if cause is not None and str(cause):
            detail += f" ({cause})"
        raise SigningError(
            f"keyless signing failed: could not complete the exchange with Sigstore's "
            f"{instance} services (TUF trust metadata, Fulcio certificate, Rekor log): "
            f"{detail}",
            hint="check network access to *.sigstore.dev (no network means no keyless "
            "signing), " + _KEY_INSTEAD,
        ) from exc

    data = signed.to_json().encode("utf-8")
    parsed = _parse_bundle(data)
    if parsed.dsse_envelope is None:  # pragma: no cover - sign_dsse always makes one
        raise SigningError("sigstore returned a bundle without a DSSE envelope")
    _check_signed_predicate(parsed.dsse_envelope.payload, expected)

    ident = trust.CertificateIdentity.from_certificate(signed.signing_certificate)
    if not ident.san or not ident.issuer:
        raise SigningError(
            f"the Fulcio certificate names no identity or issuer ({ident.describe()})",
            hint=_KEY_INSTEAD.removeprefix("or "),
        )
    rule = trust.IdentityRule(issuer=ident.issuer, san=ident.san)
    if staging:
        from sigstore.verify import Verifier

        staging_verifier = Verifier(trusted_root=config.trusted_root)
        _verify_keyless(data, trust.TrustPolicy(identities=(rule,)), verifier=staging_verifier)
    else:
        try:
            _verify_keyless(data, trust.TrustPolicy(identities=(rule,)))
        except SignatureError as exc:
            raise SigningError(
                f"the keyless bundle was made but does not verify against the pinned "
                f"Sigstore trust root: {exc.message}",
                hint="the pinned root is probably older than the key or certificate "
                "Sigstore now uses: refresh it ('Refreshing the trust root' in "
                "docs/trust-policy.md), " + _KEY_INSTEAD,
            ) from exc
    return data


# ------------------------------------------------------------------- verification


def _check_canonical_base64(data: bytes | str) -> None:
    """Refuse base64 that decodes leniently (stray characters, other padding).

    A lenient decoder skips characters outside the alphabet, so an edited bundle could
    still decode to the signed bytes; every signer we know writes standard, padded
    base64, so anything else is an alteration and is named as one.
    """
    try:
        env = json.loads(data).get("dsseEnvelope") or {}
    except (ValueError, AttributeError):
        return  # _parse_bundle has already said what is wrong with the JSON
    fields = [("dsseEnvelope.payload", env.get("payload"))]
    sigs = env.get("signatures")
    if isinstance(sigs, list):
        fields += [(f"dsseEnvelope.signatures[{i}].sig", sig.get("sig")) for i, sig in enumerate(sigs) if isinstance(sig, dict)]
    for name, value in fields:
        if not isinstance(value, str):
            continue
        try:
            canonical = base64.b64encode(base64.b64decode(value, validate=True)).decode("ascii") == value
        except (binascii.Error, ValueError):
            canonical = False
        if not canonical:
            raise SignatureError(
                f"{name} is not standard base64 (characters outside the alphabet, or other padding)",
                hint="the bundle was altered after signing; restore it from the dossier's copy",
            )


def _parse_bundle(data: bytes | str) -> Bundle:
    try:
        return Bundle.from_json(data)
    except (ValidationError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else None
        where = (
            f" at {'.'.join(str(p) for p in first['loc'])}: {first['msg']}" if first else f": {exc}"
        )
        raise SignatureError(
            f"not a valid Sigstore bundle{where}",
            hint="pass the .sigstore.json bundle file written when the record was signed",
        ) from exc


def _key_hint_of(bundle: Bundle) -> str | None:
    """The bundle's key hint; raise if the bundle is keyless (certificate-based)."""
    material = bundle.verification_material
    if material.public_key is None:
        raise SignatureError(
            "this bundle is signed keyless (with a Fulcio certificate), not with a key, "
            "so it cannot be checked against trusted keys",
            hint="verify it with a trust policy that lists the signer's OIDC identity "
            "('--trust-policy FILE', see docs/trust-policy.md)",
        )
    return material.public_key.hint or None


def _verify_raw(public_key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Check ``signature`` over ``data`` with the scheme Sigstore pairs with the key."""
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            digest: hashes.HashAlgorithm = {
                "secp256r1": hashes.SHA256(),
                "secp384r1": hashes.SHA384(),
                "secp521r1": hashes.SHA512(),
            }.get(public_key.curve.name, hashes.SHA256())
            public_key.verify(signature, data, ec.ECDSA(digest))
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:  # pragma: no cover - load_public_keys only yields the kinds above
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _lookup(
    hint: str | None, trusted: Sequence[TrustedKey], what: str, where: str = "the trust store"
) -> list[TrustedKey]:
    """Trusted keys to try: the one whose *recomputed* hint matches, or all if no hint.

    The hint is recomputed from each trusted key rather than read from
    ``TrustedKey.hint`` so a mislabelled entry can never stand in for another key.
    """
    if hint is None:
        if not trusted:
            raise UntrustedSignerError(
                f"this {what} names no signing key and no keys are trusted",
                hint=_TRUST_HINT,
            )
        return list(trusted)
    matches = [t for t in trusted if key_hint(t.public_key) == hint]
    if not matches:
        known = ", ".join(sorted({key_hint(t.public_key) for t in trusted})) or "none"
        raise UntrustedSignerError(
            f"this {what} was signed by key {hint}, which is not in {where} "
            f"(trusted keys: {known})",
            hint=f"if you trust that signer, {_TRUST_HINT}; its hint must be {hint}",
        )
    return matches[:1]


def _bad_signature(hint: str | None, candidates: Sequence[TrustedKey], what: str) -> SignatureError:
    if hint is None:
        return SignatureError(
            f"the {what} signature does not verify with any of the {len(candidates)} "
            "trusted keys: it was altered, or signed by a key you do not trust",
            hint="get an unaltered copy of the bundle, or " + _TRUST_HINT,
        )
    return SignatureError(
        f"the {what} signature does not verify with trusted key {hint} "
        f"(from {candidates[0].source}): the signed content or the signature was "
        "altered after signing",
        hint="get an unaltered copy of the bundle from its source; do not trust its contents",
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"duplicate JSON keys {dupes}")
    return dict(pairs)


def _read_statement(payload: bytes) -> tuple[dict[str, str], str, dict[str, Any]]:
    """Validate the signed payload as an in-toto Statement v1 and extract its parts.

    Duplicate JSON keys are refused: two parsers could pick different values, and a
    signed statement must mean one thing.
    """
    hint = "the signer produced a malformed statement; ask them to re-sign the record"
    try:
        Statement(payload)
        doc = json.loads(payload, object_pairs_hook=_no_duplicate_keys)
    except SigstoreError as exc:
        raise SignatureError(
            f"the signed payload is not an in-toto Statement v1: {exc}", hint=hint
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureError(f"the signed payload is not valid JSON: {exc}", hint=hint) from exc

    subjects: dict[str, str] = {}
    for subject in doc["subject"]:
        name = subject.get("name")
        digest = subject.get("digest", {}).get("sha256")
        if not isinstance(name, str) or not name:
            raise SignatureError("a statement subject has no name", hint=hint)
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest.lower()):
            raise SignatureError(f"statement subject {name!r} has no sha256 digest", hint=hint)
        if name in subjects:
            raise SignatureError(f"statement subject {name!r} appears twice", hint=hint)
        subjects[name] = digest.lower()
    predicate = doc.get("predicate")
    if predicate is None:
        predicate = {}
    return subjects, doc["predicateType"], predicate


def _as_policy(trusted: Sequence[TrustedKey] | TrustPolicy) -> TrustPolicy | None:
    from harness.trust import TrustPolicy

    return trusted if isinstance(trusted, TrustPolicy) else None


def _check_envelope_shape(payload_type: str, signatures: int) -> None:
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise SignatureError(
            f"the DSSE payload type is {payload_type!r}, expected "
            f"{INTOTO_PAYLOAD_TYPE!r}: the envelope does not hold an in-toto statement",
            hint="pass a bundle made by 'harness' or another in-toto attestation signer",
        )
    if signatures != 1:
        raise SignatureError(
            f"the DSSE envelope has {signatures} signatures; exactly one is expected",
            hint="re-sign the record so the envelope carries a single signature",
        )


_UNALTERED = "get an unaltered copy of the bundle from its source; do not trust its contents"

# sigstore-python's verification failures, by message prefix, as errors a user can act
# on. Anything not listed is reported with sigstore's own words.
_KEYLESS_FAILURES: tuple[tuple[str, type[SignatureError], str, str], ...] = (
    (
        "DSSE: invalid signature",
        SignatureError,
        "the DSSE signature does not verify with the key in the bundle's Fulcio "
        "certificate: the statement, its payload type or the signature was altered",
        _UNALTERED,
    ),
    (
        "Signature is invalid for input",
        SignatureError,
        "the message signature does not verify with the key in the bundle's Fulcio "
        "certificate: the file or the signature was altered after signing",
        "pass the exact file that was signed; " + _UNALTERED,
    ),
    (
        "Bundle message digest mismatch",
        SignatureError,
        "the bundle signs a different file: its message digest does not match the artifact",
        "pass the exact file that was signed, unmodified",
    ),
    (
        "log entry payload hash does not match bundle",
        TransparencyLogError,
        "the transparency log (Rekor) entry records a different statement than the "
        "bundle's DSSE envelope: the envelope was changed after it was logged",
        _UNALTERED,
    ),
    (
        "log entry signatures do not match bundle",
        TransparencyLogError,
        "the transparency log (Rekor) entry records a different signature than the "
        "bundle's DSSE envelope: the signature was replaced after the entry was logged",
        _UNALTERED,
    ),
    (
        "transparency log entry is inconsistent with other materials",
        TransparencyLogError,
        "the transparency log (Rekor) entry does not match the bundle's signed content "
        "and certificate: the bundle was changed after it was logged",
        _UNALTERED,
    ),
    (
        "invalid log entry",
        TransparencyLogError,
        "the transparency log (Rekor) entry's inclusion proof or signed timestamp does "
        "not verify against the log keys in the trust root",
        _UNALTERED,
    ),
    (
        "failed to build timestamp certificate chain",
        SignatureError,
        "the signing certificate does not chain to a Fulcio CA of the trust root at "
        "the time of signing",
        "if the bundle is genuine and newer than the pinned trust root, refresh the root "
        "('Refreshing the trust root' in docs/trust-policy.md); otherwise do not trust it",
    ),
    (
        "failed to verify SCT",
        SignatureError,
        "the signing certificate's certificate-transparency proof (SCT) does not verify "
        "against the CT log keys of the trust root",
        _UNALTERED,
    ),
    (
        "not enough sources of verified time",
        SignatureError,
        "the bundle proves no signing time: it has no transparency log entry with a "
        "signed promise and no trusted timestamp",
        "keyless bundles need their Rekor entry; " + _UNALTERED,
    ),
)


def _keyless_failure(exc: Exception, policy: TrustPolicy) -> SignatureError:
    text = str(exc)
    if text.startswith("certificate identity rejected by the trust policy"):
        return UntrustedSignerError(
            text.replace("the trust policy", policy.where, 1),
            hint="add an [[identities]] entry for the signer to the trust policy "
            "(docs/trust-policy.md) if you trust it",
        )
    for prefix, cls, message, hint in _KEYLESS_FAILURES:
        if text.startswith(prefix):
            return cls(f"{message} (sigstore: {text})", hint=hint)
    return SignatureError(
        f"the keyless bundle does not verify against the Sigstore trust root "
        f"{policy.trusted_root}: {text}",
        hint=_UNALTERED,
    )


def _load_keyless(data: bytes | str, policy: TrustPolicy) -> tuple[Any, Any, Any]:
    """Parse a keyless bundle with sigstore and pick the policy rule for its identity."""
    from sigstore.errors import Error as SigstoreBaseError
    from sigstore.models import Bundle as SigstoreBundle

    from harness import trust

    try:
        parsed = SigstoreBundle.from_json(data)
        cert = parsed.signing_certificate
    except (SigstoreBaseError, ValidationError, ValueError, binascii.Error) as exc:
        raise SignatureError(
            f"not a valid Sigstore bundle: {exc}",
            hint="pass the .sigstore.json bundle file written when the record was signed",
        ) from exc
    ident = trust.CertificateIdentity.from_certificate(cert)
    rule = policy.match_identity(ident)
    return parsed, ident, rule


def _verify_keyless(
    data: bytes | str, policy: TrustPolicy, *, verifier: Any | None = None
) -> VerifiedStatement:
    """Verify a keyless DSSE bundle offline with sigstore-python against ``policy``.

    sigstore-python's ``Verifier`` does the cryptography (certificate chain to the
    trust root at the signing time, SCT, Rekor inclusion proof and signed entry
    timestamp, DSSE signature, log entry consistency); the matching policy rule is
    passed to it as its identity policy, so the identity is checked on the proven
    certificate. The rule is also looked up beforehand, so a signer the policy does
    not list is reported as such, naming who it was.
    """
    from sigstore.errors import Error as SigstoreBaseError

    parsed, ident, rule = _load_keyless(data, policy)
    verifier = verifier if verifier is not None else policy.verifier()
    try:
        payload_type, payload = verifier.verify_dsse(parsed, rule)
    except SigstoreBaseError as exc:
        raise _keyless_failure(exc, policy) from exc
    envelope = Bundle.from_json(data).dsse_envelope
    _check_envelope_shape(payload_type, len(envelope.signatures) if envelope else 0)
    subjects, predicate_type, predicate = _read_statement(payload)
    return VerifiedStatement(
        subjects=subjects,
        predicate_type=predicate_type,
        predicate=predicate,
        signer=f"sigstore:{ident.describe()}",
        statement_bytes=payload,
        policy_entry=rule.label,
        signer_details=ident.details(),
    )


def verify_bundle(
    bundle: bytes | str, trusted: Sequence[TrustedKey] | TrustPolicy
) -> VerifiedStatement:
    """Verify a DSSE bundle and return its statement, if ``trusted`` accepts the signer.

    ``trusted`` is either a list of trusted keys or a :class:`harness.trust.TrustPolicy`.

    * Key-signed bundles: the bundle's key hint is only used to *find* a trusted key;
      the signature over the DSSE PAE is then checked with that key. Transparency-log
      entries, if any, are not checked. ``signer`` is ``key:<hint>``.
    * Keyless (Fulcio certificate) bundles: only through a policy listing a matching
      identity; verified fully offline by sigstore-python against the policy's trust
      root. ``signer`` is ``sigstore:<identity> (issuer <issuer>)``.

    Raises :class:`UntrustedSignerError` when the signer is not trusted,
    :class:`TransparencyLogError` when a keyless bundle's log entry is wrong, and
    :class:`SignatureError` for everything else that is wrong.
    """
    parsed = _parse_bundle(bundle)
    envelope = parsed.dsse_envelope
    if envelope is not None:
        _check_canonical_base64(bundle)
    if envelope is None:
        raise SignatureError(
            "this bundle holds a plain message signature, not a DSSE envelope, so it "
            "does not carry a signed statement",
            hint="check you passed the run record's bundle (<record>.sigstore.json); "
            "message-signature bundles are checked against the signed file instead",
        )
    policy = _as_policy(trusted)
    if parsed.verification_material.public_key is None and policy is not None:
        return _verify_keyless(bundle, policy)
    hint = _key_hint_of(parsed)
    _check_envelope_shape(envelope.payload_type, len(envelope.signatures))
    signature = envelope.signatures[0].sig
    pae = _pae(envelope.payload_type, envelope.payload)

    keys = policy.trusted_keys if policy is not None else trusted
    where = policy.where if policy is not None else "the trust store"
    candidates = _lookup(hint, keys, "bundle", where)  # type: ignore[arg-type]
    signer = next((t for t in candidates if _verify_raw(t.public_key, signature, pae)), None)
    if signer is None:
        raise _bad_signature(hint, candidates, "DSSE")

    subjects, predicate_type, predicate = _read_statement(envelope.payload)
    signer_hint = key_hint(signer.public_key)
    return VerifiedStatement(
        subjects=subjects,
        predicate_type=predicate_type,
        predicate=predicate,
        signer=f"key:{signer_hint}",
        statement_bytes=envelope.payload,
        policy_entry=(policy.key_name(signer_hint) if policy is not None else None),
    )


_DIGESTS = {
    HashAlgorithm.SHA2_256: hashlib.sha256,
    HashAlgorithm.SHA2_384: hashlib.sha384,
    HashAlgorithm.SHA2_512: hashlib.sha512,
    HashAlgorithm.SHA3_256: hashlib.sha3_256,
    HashAlgorithm.SHA3_384: hashlib.sha3_384,
}


def verify_message_bundle(
    bundle: bytes | str, artifact: bytes, trusted: Sequence[TrustedKey] | TrustPolicy
) -> str:
    """Verify a ``messageSignature`` bundle over ``artifact``; return the signer.

    Other Sigstore clients (cosign, sigstore-go, sigstore-js, sigstore-python) sign a
    file directly instead of a statement; auditors may hand us such bundles. For a
    key-signed bundle the recorded message digest must match ``artifact`` and the
    signature over the artifact must verify with the trusted key the hint names
    (transparency-log entries and timestamps are not checked). A keyless bundle needs
    a :class:`harness.trust.TrustPolicy` listing its identity and is verified offline
    by sigstore-python against the policy's trust root.
    """
    parsed = _parse_bundle(bundle)
    message = parsed.message_signature
    if message is None:
        raise SignatureError(
            "this bundle holds a DSSE envelope, not a message signature",
            hint="verify it as a statement bundle (verify_bundle / 'harness verify')",
        )
    policy = _as_policy(trusted)
    if parsed.verification_material.public_key is None and policy is not None:
        from sigstore.errors import Error as SigstoreBaseError

        sig_bundle, ident, rule = _load_keyless(bundle, policy)
        try:
            policy.verifier().verify_artifact(artifact, sig_bundle, rule)
        except SigstoreBaseError as exc:
            raise _keyless_failure(exc, policy) from exc
        return f"sigstore:{ident.describe()}"
    hint = _key_hint_of(parsed)
    if message.message_digest is not None:
        algorithm = message.message_digest.algorithm
        hasher = _DIGESTS.get(algorithm)
        if hasher is None:
            raise SignatureError(
                f"the bundle's message digest uses {algorithm.value}, which is not supported",
                hint="re-sign with SHA2_256",
            )
        if hasher(artifact).digest() != message.message_digest.digest:
            raise SignatureError(
                "the bundle signs a different file: its message digest does not match "
                f"the artifact ({algorithm.value} {hasher(artifact).hexdigest()})",
                hint="pass the exact file that was signed, unmodified",
            )
    keys = policy.trusted_keys if policy is not None else trusted
    where = policy.where if policy is not None else "the trust store"
    candidates = _lookup(hint, keys, "bundle", where)  # type: ignore[arg-type]
    signer = next(
        (t for t in candidates if _verify_raw(t.public_key, message.signature, artifact)), None
    )
    if signer is None:
        raise _bad_signature(hint, candidates, "message")
    return f"key:{key_hint(signer.public_key)}"
