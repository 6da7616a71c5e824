"""Trust policy: which signing keys and which Sigstore identities an auditor accepts.

A signature only means something once the verifier has decided *whose* signatures
count. For key-signed bundles that is a set of public keys; for keyless (Sigstore)
bundles it is a set of OIDC identities, each pinned to the issuer that vouched for it:

* an exact identity: the certificate's subject alternative name (an e-mail address,
  or a CI workflow URL) plus the OIDC issuer;
* a CI workflow identity: a GitHub Actions workflow of repository ``owner/repo``,
  optionally only on one ref and only from one workflow file.

The policy is a TOML file (``schema_version = 1``, see ``docs/trust-policy.md``).
Keyless bundles are checked entirely offline against Sigstore's trust root (Fulcio CAs,
Rekor and CT log keys, timestamp authorities) from a file: by default the copy this
project pins in ``harness/assets/sigstore/trusted_root.json``, never whatever a TUF
cache happens to hold, so two auditors with the same policy reach the same verdict.

A policy may also pin **official packages**: ``[[official_packages]]`` entries, each a
package name and the seal digest its maintainer published. A package with the right
name but another seal (data edited and re-sealed) is then "not official" wherever a
run's package is judged (``verify``, ``reproduce``, ``claim check``), not only in claim checks.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import tomllib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography import x509
from pydantic import ConfigDict, ValidationError, field_validator, model_validator

from harness._internal.frozen import Frozen
from harness._internal.settings import TRUST_POLICY_ENV, trust_policy_file
from harness.errors import SignatureError, SignatureFailure, TrustPolicyError, UntrustedSignerError
from harness.signing.identity import CertificateIdentity, IdentityRule
from harness.signing.keys import (
    TrustedKey,
    check_key_hint,
    default_config_dir,
    default_trust_store,
    load_public_keys,
)

SCHEMA_VERSION = 1
"""The only trust policy schema this harness reads."""

PINNED_TRUSTED_ROOT = Path(__file__).resolve().parent.parent / "assets" / "sigstore" / "trusted_root.json"
"""Sigstore's public-good production trust root, as pinned by this project."""

PINNED_TRUSTED_ROOT_SHA256 = "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66"
"""sha256 of :data:`PINNED_TRUSTED_ROOT`; refreshing the root means updating this too."""

POLICY_ENV = TRUST_POLICY_ENV
"""Environment variable naming a trust policy file (like ``--trust-policy``)."""

POLICY_FILENAME = "trust-policy.toml"
"""Name of the default policy file in the harness config folder."""

_DOCS = "see docs/trust-policy.md"
_REFRESH_HINT = "see 'Refreshing the trust root' in docs/trust-policy.md"


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class PackageStatus(enum.StrEnum):
    """Whether a run's package is the official one, as a trust policy decides it."""

    OFFICIAL = "official"
    """The policy pins this package name, and this seal is one of the pinned seals."""
    NOT_OFFICIAL = "not-official"
    """The policy pins seals for this package name, and this seal is none of them."""
    UNPINNED = "unpinned"
    """The policy pins no seal for this package name: nothing says which copy is official."""


class OfficialPackage(Frozen):
    """``[[official_packages]]``: a package seal published by the package's maintainer."""

    name: str
    seal: str
    version: str | None = None
    source: str | None = None
    """Where the maintainer published the seal (a release page, a signed index); shown, not fetched."""

    @field_validator("seal")
    @classmethod
    def _seal(cls, value: str) -> str:
        if not _HEX64.match(value):
            raise ValueError(f"{value!r} is not a seal digest (64 lowercase hex digits)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class PolicyKey(Frozen):
    """One accepted signing key, with the name the policy gives it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)  # keys are cryptography objects

    name: str | None = None
    key: TrustedKey


class TrustPolicy(Frozen):
    """What an auditor accepts: signing keys, Sigstore identities and the trust root.

    Pass it as ``trusted`` to :func:`harness.signing.verify.verify_bundle`. Build it with
    :func:`load_trust_policy` (from a file) or :meth:`from_keys`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)  # keys are cryptography objects

    keys: tuple[PolicyKey, ...] = ()
    identities: tuple[IdentityRule, ...] = ()
    trusted_root: Path = PINNED_TRUSTED_ROOT
    source: Path | None = None
    official_packages: tuple[OfficialPackage, ...] = ()

    @classmethod
    def from_keys(
        cls,
        keys: Sequence[TrustedKey],
        identities: Sequence[IdentityRule] = (),
        *,
        trusted_root: Path | None = None,
    ) -> TrustPolicy:
        return cls(
            keys=tuple(PolicyKey(key=k) for k in keys),
            identities=tuple(identities),
            trusted_root=trusted_root or PINNED_TRUSTED_ROOT,
        )

    @property
    def trusted_keys(self) -> list[TrustedKey]:
        return [entry.key for entry in self.keys]

    @property
    def where(self) -> str:
        """How messages name this policy."""
        return f"the trust policy {self.source}" if self.source else "the trust policy"

    def package_status(self, name: str, seal: str) -> PackageStatus:
        """Whether the package ``name`` sealed as ``seal`` is the official one under this policy."""
        pinned = {p.seal for p in self.official_packages if p.name == name}
        if not pinned:
            return PackageStatus.UNPINNED
        return PackageStatus.OFFICIAL if seal in pinned else PackageStatus.NOT_OFFICIAL

    def official_seals(self, name: str) -> list[OfficialPackage]:
        """The official packages pinned for ``name`` (empty when none)."""
        return [p for p in self.official_packages if p.name == name]

    def key_name(self, hint: str) -> str | None:
        return next((e.name for e in self.keys if e.key.hint == hint and e.name), None)

    def match_identity(self, cert: x509.Certificate) -> IdentityRule:
        """The first rule accepting ``cert``; :class:`UntrustedSignerError` if none.

        Each rule decides with sigstore's own policies; the error names the signer and,
        per rule, why it did not match.
        """
        ident = CertificateIdentity.from_certificate(cert)
        reasons: list[str] = []
        for rule in self.identities:
            reason = rule.mismatch(cert)
            if reason is None:
                return rule
            reasons.append(f"{rule.label}: {reason}")
        if not self.identities:
            detail = "it lists no Sigstore identities"
        else:
            detail = "; ".join(reasons)
        raise UntrustedSignerError(
            f"this bundle was signed keylessly by {ident.describe()}, which {self.where} "
            f"does not accept ({detail})",
            hint="if you trust that signer, add an [[identities]] entry for it to the trust "
            f"policy ({_DOCS}); otherwise do not trust the record",
            reason=SignatureFailure.UNTRUSTED_SIGNER,
        )

    def sigstore_trusted_root(self) -> Any:
        """The sigstore ``TrustedRoot`` to verify keyless bundles against (cached)."""
        return load_trusted_root(self.trusted_root)

    def verifier(self) -> Any:
        """A sigstore ``Verifier`` on this policy's trust root (cached per root file)."""
        path, digest = _root_file(self.trusted_root)
        return _verifier(str(path), digest)

    def describe(self) -> list[str]:
        """One line per accepted signer, for ``harness verify`` to show what it trusts."""
        lines = [f"key {e.key.hint}" + (f" ({e.name})" if e.name else "") for e in self.keys]
        lines += [f"sigstore {rule.label}" for rule in self.identities]
        return lines


# -------------------------------------------------------------------- trust root


def _root_file(path: Path | None) -> tuple[Path, str]:
    path = Path(path) if path is not None else PINNED_TRUSTED_ROOT
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustPolicyError(
            f"cannot read the Sigstore trust root {path}: {exc.strerror or exc}",
            hint=_REFRESH_HINT
            if path == PINNED_TRUSTED_ROOT
            else "check the policy's trusted_root",
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if path == PINNED_TRUSTED_ROOT and digest != PINNED_TRUSTED_ROOT_SHA256:
        raise TrustPolicyError(
            f"the pinned Sigstore trust root {path} has sha256 {digest}, not the pinned "
            f"{PINNED_TRUSTED_ROOT_SHA256}: it was changed",
            hint="restore it from the repository (git checkout -- harness/assets/sigstore), "
            f"or, when refreshing it on purpose, {_REFRESH_HINT}",
        )
    return path, digest


@lru_cache(maxsize=8)
def _load_root(path: str, digest: str) -> Any:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TrustedRoot

    try:
        return TrustedRoot.from_file(path)
    except (SigstoreError, ValidationError, ValueError) as exc:
        raise TrustPolicyError(
            f"{path} is not a Sigstore trusted root "
            f"(application/vnd.dev.sigstore.trustedroot+json): {exc}",
            hint=_REFRESH_HINT,
        ) from exc


@lru_cache(maxsize=8)
def _verifier(path: str, digest: str) -> Any:
    from sigstore.errors import Error as SigstoreError
    from sigstore.verify import Verifier

    try:
        return Verifier(trusted_root=_load_root(path, digest))
    except SigstoreError as exc:
        raise TrustPolicyError(
            f"cannot use the Sigstore trust root {path}: {exc}", hint=_REFRESH_HINT
        ) from exc


def load_trusted_root(path: Path | None = None) -> Any:
    """Load a Sigstore trusted root JSON file (default: the project's pinned copy).

    The pinned copy is checked against :data:`PINNED_TRUSTED_ROOT_SHA256` so an edited
    file is refused rather than silently trusted. Nothing is read from a TUF cache and
    nothing is fetched.
    """
    resolved, digest = _root_file(path)
    return _load_root(str(resolved), digest)


class _KeyEntry(Frozen):
    name: str | None = None
    path: str | None = None
    hint: str | None = None

    @field_validator("hint")
    @classmethod
    def _hint(cls, value: str | None) -> str | None:
        return check_key_hint(value)

    @model_validator(mode="after")
    def _some(self) -> _KeyEntry:
        if self.path is None and self.hint is None:
            raise ValueError("give 'path' (a PEM public key file) and/or 'hint'")
        return self


class _PolicyFile(Frozen):
    schema_version: int
    trusted_root: str | None = None
    keys: tuple[_KeyEntry, ...] = ()
    identities: tuple[IdentityRule, ...] = ()
    official_packages: tuple[OfficialPackage, ...] = ()


_ALLOWED = {
    "": "schema_version, trusted_root, keys, identities, official_packages",
    "keys": "name, path, hint",
    "identities": "name, issuer, san, repository, ref, workflow",
    "official_packages": "name, seal, version, source",
}


def _where(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _policy_error(path: Path, message: str, hint: str | None = None) -> TrustPolicyError:
    return TrustPolicyError(
        f"trust policy {path}: {message}", hint=hint or f"fix the file ({_DOCS})"
    )


def _resolve_path(base: Path, raw: str) -> Path:
    path = Path(os.path.expanduser(raw))
    return path if path.is_absolute() else base / path


def load_trust_policy(
    path: Path | str,
    *,
    keys: Sequence[TrustedKey] | None = None,
) -> TrustPolicy:
    """Read and check a trust policy TOML file (``docs/trust-policy.md``).

    Key files and ``trusted_root`` are relative to the policy file's folder. A key
    entry with only a ``hint`` is looked up among ``keys`` (e.g. ``--trust-key``
    files), then in the harness trust store folder. Every problem is a :class:`TrustPolicyError` that
    names the file and the entry; nothing is skipped silently.
    """
    path = Path(path).expanduser()
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise TrustPolicyError(
            f"cannot read the trust policy {path}: {exc.strerror or exc}",
            hint=f"pass an existing policy file ({_DOCS}); docs/examples/trust-policy.toml "
            "is a starting point",
        ) from exc
    except UnicodeDecodeError as exc:
        raise _policy_error(path, f"not UTF-8 text ({exc})") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _policy_error(path, f"not valid TOML: {exc}") from exc

    version = doc.get("schema_version")
    if version is None:
        raise _policy_error(path, f"missing 'schema_version = {SCHEMA_VERSION}'")
    if version != SCHEMA_VERSION:
        raise _policy_error(
            path,
            f"schema_version {version!r} is not supported (this harness reads {SCHEMA_VERSION})",
            hint="upgrade the harness, or write the policy in schema version 1",
        )
    try:
        parsed = _PolicyFile.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            section = str(loc[0]) if len(loc) > 1 else ""
            message = f"unknown key {loc[-1]!r} (allowed: {_ALLOWED.get(section, '?')})"
            loc = loc[:-1]
        raise _policy_error(path, f"{_where(loc)}: {message}") from exc

    base = path.parent
    policy_keys: list[PolicyKey] = []
    seen: set[str] = set()
    store: list[TrustedKey] | None = None
    for index, entry in enumerate(parsed.keys):
        where = f"keys[{index}]" + (f" ({entry.name})" if entry.name else "")
        if entry.path is not None:
            key_path = _resolve_path(base, entry.path)
            if key_path.is_dir():
                raise _policy_error(
                    path, f"{where}: {key_path} is a folder; name one PEM public key file"
                )
            try:
                (trusted,) = load_public_keys([key_path])
            except SignatureError as exc:
                raise _policy_error(path, f"{where}: {exc.message}", exc.hint) from exc
            if entry.hint is not None and entry.hint != trusted.hint:
                raise _policy_error(
                    path,
                    f"{where}: {key_path} holds the key with hint {trusted.hint}, but the "
                    f"policy pins {entry.hint}: the key file was replaced, or the hint is wrong",
                    hint="get the signer's public key again and compare hints "
                    "('harness key' prints a key's hint)",
                )
        else:
            found = [k for k in keys or () if k.hint == entry.hint]
            if not found:
                if store is None:
                    try:
                        store = default_trust_store()
                    except SignatureError as exc:
                        raise _policy_error(path, f"{where}: {exc.message}", exc.hint) from exc
                found = [k for k in store if k.hint == entry.hint]
            if not found:
                raise _policy_error(
                    path,
                    f"{where}: pins key {entry.hint}, but no public key with that hint is "
                    "available",
                    hint="add 'path = \"<signer>.pub.pem\"' to the entry, or put the public "
                    f"key in {default_config_dir() / 'trusted-keys'} (or pass --trust-key)",
                )
            trusted = found[0]
        if trusted.hint not in seen:
            seen.add(trusted.hint)
            policy_keys.append(PolicyKey(name=entry.name, key=trusted))

    if not policy_keys and not parsed.identities:
        raise _policy_error(
            path,
            "accepts no signer: add [[keys]] and/or [[identities]] entries",
        )

    root = PINNED_TRUSTED_ROOT
    if parsed.trusted_root is not None:
        root = _resolve_path(base, parsed.trusted_root)
    if parsed.identities:
        try:
            load_trusted_root(root)  # fail now, naming the policy, not at the first bundle
        except TrustPolicyError as exc:
            raise _policy_error(path, f"trusted_root: {exc.message}", exc.hint) from exc

    return TrustPolicy(
        keys=tuple(policy_keys),
        identities=parsed.identities,
        trusted_root=root,
        source=path,
        official_packages=parsed.official_packages,
    )


def default_policy_path(config_dir: Path | None = None) -> Path:
    """``<config>/trust-policy.toml``: used when no policy or key is given explicitly."""
    config = Path(config_dir) if config_dir is not None else default_config_dir()
    return config / POLICY_FILENAME


def resolve_trust(
    policy: Path | None = None,
    trust_keys: Sequence[Path] | None = None,
    *,
    config_dir: Path | None = None,
) -> TrustPolicy:
    """What ``harness verify`` / ``harness dossier verify`` trust, as one policy.

    In order: an explicit policy file (``--trust-policy`` or ``$HARNESS_TRUST_POLICY``),
    with any ``--trust-key`` keys added to it; else the ``--trust-key`` keys alone;
    else ``<config>/trust-policy.toml`` when it exists; else the keys in the trust
    store folder ``<config>/trusted-keys``.
    """
    extra = load_public_keys(list(trust_keys)) if trust_keys else []
    explicit = policy if policy is not None else trust_policy_file()
    if explicit is not None:
        loaded = load_trust_policy(explicit, keys=extra)
        known = {e.key.hint for e in loaded.keys}
        added = tuple(PolicyKey(key=k) for k in extra if k.hint not in known)
        return loaded.model_copy(update={"keys": loaded.keys + added}) if added else loaded
    if extra:
        return TrustPolicy.from_keys(extra)
    default = default_policy_path(config_dir)
    if default.is_file():
        return load_trust_policy(default)
    return TrustPolicy.from_keys(default_trust_store(config_dir))
