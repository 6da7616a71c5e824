"""Signing keys and the trust store: the local ECDSA P-256 key, and the public keys a verifier trusts.

A signature only means something once the verifier has decided whose signatures count.
For key-signed bundles that is a set of public keys in a folder the *verifier*
controls (``<config>/trusted-keys``), never the key a bundle names for itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from harness._internal.files import atomic_write, create_exclusive
from harness._internal.settings import CONFIG_DIR_ENV as CONFIG_ENV
from harness._internal.settings import config_dir as _config_dir
from harness.errors import SignatureError, SignatureFailure, SigningError, SigningFailure

_logger = logging.getLogger(__name__)

KEY_FILENAME = "signing-key.pem"
PUBLIC_KEY_FILENAME = "signing-key.pub.pem"
TRUST_DIRNAME = "trusted-keys"

_TRUST_SUFFIXES = (".pem", ".pub")
_HINT_BYTES = 32

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
"""Public key kinds Sigstore clients sign with and that we can check."""

default_config_dir = _config_dir
"""The harness config folder (``$HARNESS_CONFIG_DIR`` or the platform default)."""


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


def _load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Read and check the signing key, turning every failure into a SigningError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(
            f"cannot read the signing key {path}: {exc.strerror or exc}",
            hint=f"check the file's permissions, or set ${CONFIG_ENV} to another folder",
            reason=SigningFailure.BAD_KEY,
        ) from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted key, no password given
        raise SigningError(
            f"the signing key {path} is encrypted; the harness needs an unencrypted key "
            "so it can sign unattended",
            hint=f"decrypt it (openssl pkey -in {path} -out {path}.plain) or move it away "
            "to let the harness create a new one",
            reason=SigningFailure.BAD_KEY,
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningError(
            f"the signing key {path} is not a readable PEM private key ({exc})",
            hint="restore the file from a backup, or move it away to let the harness "
            "create a new key (records signed with the old key stay verifiable with its "
            "public key)",
            reason=SigningFailure.BAD_KEY,
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningError(
            f"the signing key {path} is not an ECDSA P-256 key (got "
            f"{type(key).__name__}{'/' + key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey) else ''})",
            hint="the harness signs with ECDSA P-256 only; move the file away to let it "
            "create one, or convert your key (openssl ecparam -name prime256v1 -genkey)",
            reason=SigningFailure.BAD_KEY,
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
            reason=SigningFailure.KEY_STORAGE,
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
            created = create_exclusive(path, pem)
        except OSError as exc:
            raise SigningError(
                f"cannot write the signing key {path}: {exc.strerror or exc}",
                hint=f"set ${CONFIG_ENV} to a writable folder",
                reason=SigningFailure.KEY_STORAGE,
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
            atomic_write(pub_path, public_pem, mode=0o644)
        if created:
            trust_dir = config / TRUST_DIRNAME
            trust_dir.mkdir(parents=True, exist_ok=True)
            entry = trust_dir / _hint_filename(signing_key.hint)
            if not entry.exists():
                atomic_write(entry, public_pem, mode=0o644)
    except OSError as exc:
        raise SigningError(
            f"cannot write the public key next to {path}: {exc.strerror or exc}",
            hint=f"check that {config} is writable",
            reason=SigningFailure.KEY_STORAGE,
        ) from exc
    return signing_key


def _load_public_key_file(path: Path) -> TrustedKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(
            f"cannot read the trusted key {path}: {exc.strerror or exc}",
            hint="check the path given to --trust-key",
            reason=SignatureFailure.BAD_TRUSTED_KEY,
        ) from exc
    if b"PRIVATE KEY-----" in data:
        raise SignatureError(
            f"{path} holds a private key, not a public key; a trust store must only "
            "hold public keys",
            hint=f"trust {PUBLIC_KEY_FILENAME} instead (the public half), and keep the "
            "private key out of shared folders",
            reason=SignatureFailure.BAD_TRUSTED_KEY,
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureError(
            f"{path} is not a PEM public key (expected '-----BEGIN PUBLIC KEY-----')",
            hint="export the signer's public key as PEM, e.g. "
            "'openssl pkey -in KEY -pubout', or remove the file from the trust folder",
            reason=SignatureFailure.BAD_TRUSTED_KEY,
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise SignatureError(
            f"{path} holds a {type(key).__name__}, which Sigstore does not sign with",
            hint="trust an ECDSA (P-256/P-384/P-521), Ed25519 or RSA public key",
            reason=SignatureFailure.BAD_TRUSTED_KEY,
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
                reason=SignatureFailure.BAD_TRUSTED_KEY,
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


def check_key_hint(value: str | None) -> str | None:
    """A pydantic validator body for key hints (base64 of a key's 32-byte sha256), shared
    by every file format that can name a key without carrying it."""
    if value is None:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{value!r} is not base64") from exc
    if len(raw) != _HINT_BYTES:
        raise ValueError(f"{value!r} is not a key hint (base64 of a 32-byte sha256; 'harness key' prints yours)")
    return value
