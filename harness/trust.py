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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat import asn1
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from harness.errors import SignatureError, TrustPolicyError, UntrustedSignerError
from harness.sign import TrustedKey, default_config_dir, default_trust_store, load_public_keys

__all__ = [
    "GITHUB_ACTIONS_ISSUER",
    "PINNED_TRUSTED_ROOT",
    "PINNED_TRUSTED_ROOT_SHA256",
    "POLICY_ENV",
    "POLICY_FILENAME",
    "SCHEMA_VERSION",
    "CertificateIdentity",
    "IdentityRule",
    "PolicyKey",
    "TrustPolicy",
    "default_policy_path",
    "load_trust_policy",
    "load_trusted_root",
    "resolve_trust",
]

SCHEMA_VERSION = 1
"""The only trust policy schema this harness reads."""

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
"""OIDC issuer of GitHub Actions' ambient workflow tokens."""

PINNED_TRUSTED_ROOT = Path(__file__).resolve().parent / "assets" / "sigstore" / "trusted_root.json"
"""Sigstore's public-good production trust root, as pinned by this project."""

PINNED_TRUSTED_ROOT_SHA256 = "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66"
"""sha256 of :data:`PINNED_TRUSTED_ROOT`; refreshing the root means updating this too."""

POLICY_FILENAME = "trust-policy.toml"
"""Name of the default policy file in the harness config folder."""

POLICY_ENV = "HARNESS_TRUST_POLICY"
"""Environment variable naming a trust policy file (like ``--trust-policy``)."""

_DOCS = "see docs/trust-policy.md"
_REFRESH_HINT = "see 'Refreshing the trust root' in docs/trust-policy.md"

# Fulcio certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).
_OID_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OID_GH_WORKFLOW_SHA_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.3")
_OID_GH_REPOSITORY_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.5")
_OID_GH_REF_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.6")
_OID_OTHERNAME_SAN = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
_OID_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_OID_SOURCE_REPOSITORY_URI = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.12")
_OID_SOURCE_REPOSITORY_DIGEST = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.13")
_OID_SOURCE_REPOSITORY_REF = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.14")
_OID_RUN_INVOCATION_URI = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.21")

_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*)/[A-Za-z0-9._-]+$")
_HINT_BYTES = 32


# ------------------------------------------------------------ certificate identity


def _ext_value(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    raw = getattr(value, "value", None)
    return raw if isinstance(raw, bytes) else None


def _ext_raw(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    """A Fulcio v1 extension: the value bytes are the UTF-8 string itself."""
    raw = _ext_value(cert, oid)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _ext_der(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    """A Fulcio v2 extension: the value bytes are a DER-encoded UTF8String."""
    raw = _ext_value(cert, oid)
    if raw is None:
        return None
    return _der_utf8(raw)


def _der_utf8(raw: bytes) -> str | None:
    try:
        value = asn1.decode_der(str, raw)
    except Exception:  # noqa: BLE001 - any malformed DER just means "no value"
        return None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class CertificateIdentity:
    """Who a Fulcio certificate was issued to, read from its SAN and Fulcio extensions.

    Until the certificate has been chained to the trust root this is only a *claim*;
    :func:`harness.sign.verify_bundle` checks the chain before it reports a signer.
    """

    sans: tuple[str, ...]
    issuer: str | None
    repository: str | None = None
    ref: str | None = None
    commit: str | None = None
    run_url: str | None = None

    @property
    def san(self) -> str | None:
        """The certificate's identity (Fulcio issues exactly one SAN)."""
        return self.sans[0] if self.sans else None

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> CertificateIdentity:
        sans: list[str] = []
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            ext = None
        if ext is not None:
            sans.extend(ext.get_values_for_type(x509.UniformResourceIdentifier))
            sans.extend(ext.get_values_for_type(x509.RFC822Name))
            for other in ext.get_values_for_type(x509.OtherName):
                if other.type_id == _OID_OTHERNAME_SAN:
                    text = _der_utf8(other.value)
                    if text is not None:
                        sans.append(text)
        issuer = _ext_der(cert, _OID_ISSUER_V2) or _ext_raw(cert, _OID_ISSUER_V1)
        repository = None
        source_uri = _ext_der(cert, _OID_SOURCE_REPOSITORY_URI)
        if source_uri:
            repository = urlsplit(source_uri).path.strip("/") or None
        repository = repository or _ext_raw(cert, _OID_GH_REPOSITORY_V1)
        ref = _ext_der(cert, _OID_SOURCE_REPOSITORY_REF) or _ext_raw(cert, _OID_GH_REF_V1)
        commit = _ext_der(cert, _OID_SOURCE_REPOSITORY_DIGEST) or _ext_raw(
            cert, _OID_GH_WORKFLOW_SHA_V1
        )
        run_url = _ext_der(cert, _OID_RUN_INVOCATION_URI)
        return cls(
            sans=tuple(sans),
            issuer=issuer,
            repository=repository,
            ref=ref,
            commit=commit,
            run_url=run_url,
        )

    def describe(self) -> str:
        """``<SAN> (issuer <issuer>)``: the signer as printed by ``harness verify``."""
        return f"{self.san or '<no identity>'} (issuer {self.issuer or '<none>'})"

    def details(self) -> dict[str, str]:
        """The identity's fields that are present, for ``--json`` output."""
        out = {
            "san": self.san,
            "issuer": self.issuer,
            "repository": self.repository,
            "ref": self.ref,
            "commit": self.commit,
            "run_url": self.run_url,
        }
        return {k: v for k, v in out.items() if v}


# ----------------------------------------------------------------- policy entries


class IdentityRule(BaseModel):
    """One accepted keyless signer: an OIDC issuer plus an exact SAN or a CI workflow.

    Exactly one of ``san`` or ``repository`` is given. ``ref`` and ``workflow`` narrow
    a repository rule to one git ref (``refs/heads/main``, ``refs/tags/v1``) and one
    workflow file of that repository (``.github/workflows/eval.yml``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    issuer: str
    san: str | None = None
    repository: str | None = None
    ref: str | None = None
    workflow: str | None = None

    @field_validator("name", "san", "ref", "workflow")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.netloc:
            raise ValueError(
                f"{value!r} is not an https URL; the issuer is the OIDC issuer URL, e.g. "
                f"{GITHUB_ACTIONS_ISSUER!r}"
            )
        return value

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        if value is not None and not _REPOSITORY.match(value):
            raise ValueError(f"{value!r} is not 'owner/name' (e.g. 'my-org/evals')")
        return value

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("refs/"):
            raise ValueError(
                f"{value!r} is not a full git ref; write e.g. 'refs/heads/{value}' or "
                f"'refs/tags/{value}'"
            )
        return value

    @field_validator("workflow")
    @classmethod
    def _workflow(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("/") or "@" in value or ".." in value.split("/"):
            raise ValueError(
                f"{value!r} is not a workflow path inside the repository "
                "(e.g. '.github/workflows/eval.yml', without '@ref')"
            )
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> IdentityRule:
        if (self.san is None) == (self.repository is None):
            raise ValueError(
                "give exactly one of 'san' (an exact identity) or 'repository' "
                "(a CI workflow identity)"
            )
        if self.san is not None and (self.ref is not None or self.workflow is not None):
            raise ValueError("'ref' and 'workflow' only go with 'repository', not with 'san'")
        return self

    @property
    def label(self) -> str:
        """The rule's name, or a description of it."""
        return self.name or self.describe()

    def describe(self) -> str:
        if self.san is not None:
            return f"{self.san} (issuer {self.issuer})"
        text = f"workflows of {self.repository}"
        if self.workflow:
            text = f"workflow {self.workflow} of {self.repository}"
        if self.ref:
            text += f" on {self.ref}"
        return f"{text} (issuer {self.issuer})"

    def mismatch(self, ident: CertificateIdentity) -> str | None:
        """Why ``ident`` is not accepted by this rule, or ``None`` when it is."""
        if ident.issuer != self.issuer:
            return f"issuer is {ident.issuer!r}, not {self.issuer!r}"
        if self.san is not None:
            if self.san not in ident.sans:
                return f"identity is {ident.san!r}, not {self.san!r}"
            return None
        if ident.repository != self.repository:
            return f"repository is {ident.repository!r}, not {self.repository!r}"
        if self.ref is not None and ident.ref != self.ref:
            return f"ref is {ident.ref!r}, not {self.ref!r}"
        if self.workflow is not None:
            # A GitHub workflow SAN is https://<host>/<owner>/<repo>/<path>@<ref>.
            san_path = urlsplit(ident.san or "").path.lstrip("/")
            prefix = f"{self.repository}/{self.workflow}@"
            if not san_path.startswith(prefix):
                return f"workflow identity is {ident.san!r}, not from {self.workflow}"
            if self.ref is not None and san_path != prefix + self.ref:
                return f"workflow identity is {ident.san!r}, not at {self.ref}"
        return None

    # sigstore's VerificationPolicy protocol: the verifier calls this only after the
    # certificate chained to the trust root, so the rule is enforced on a proven cert.
    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError

        reason = self.mismatch(CertificateIdentity.from_certificate(cert))
        if reason is not None:
            raise VerificationError(f"certificate identity rejected by the trust policy: {reason}")


class PolicyKey(BaseModel):
    """One accepted signing key, with the name the policy gives it."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str | None = None
    key: TrustedKey


class TrustPolicy(BaseModel):
    """What an auditor accepts: signing keys, Sigstore identities and the trust root.

    Pass it as ``trusted`` to :func:`harness.sign.verify_bundle`. Build it with
    :func:`load_trust_policy` (from a file) or :meth:`from_keys`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    keys: tuple[PolicyKey, ...] = ()
    identities: tuple[IdentityRule, ...] = ()
    trusted_root: Path = PINNED_TRUSTED_ROOT
    source: Path | None = None

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

    def key_name(self, hint: str) -> str | None:
        return next((e.name for e in self.keys if e.key.hint == hint and e.name), None)

    def match_identity(self, ident: CertificateIdentity) -> IdentityRule:
        """The first rule accepting ``ident``; :class:`UntrustedSignerError` if none."""
        reasons: list[str] = []
        for rule in self.identities:
            reason = rule.mismatch(ident)
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


# ------------------------------------------------------------------ policy file


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


class _KeyEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

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


class _PolicyFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int
    trusted_root: str | None = None
    keys: tuple[_KeyEntry, ...] = ()
    identities: tuple[IdentityRule, ...] = ()


_ALLOWED = {
    "": "schema_version, trusted_root, keys, identities",
    "keys": "name, path, hint",
    "identities": "name, issuer, san, repository, ref, workflow",
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
    env = os.environ.get(POLICY_ENV, "").strip()
    explicit = policy if policy is not None else (Path(env) if env else None)
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
