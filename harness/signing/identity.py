"""Who a keyless (Fulcio) certificate was issued to, and the rules that accept such a signer.

An identity rule is an OIDC issuer plus an exact identity (SAN) or a CI workflow of a
repository, optionally narrowed to one ref and one workflow file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat import asn1
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
"""OIDC issuer of GitHub Actions' ambient workflow tokens."""

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
    :func:`harness.signing.verify.verify_bundle` checks the chain before it reports a signer.
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
