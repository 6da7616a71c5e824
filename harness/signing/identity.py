"""Who a keyless (Fulcio) certificate was issued to, and the rules that accept such a signer.

An identity rule is an OIDC issuer plus an exact identity (SAN) or a CI workflow of a
repository, optionally narrowed to one ref and one workflow file.

A rule decides with sigstore-python's own ``sigstore.verify.policy`` objects (the same
checks ``sigstore verify identity|github`` makes), composed per rule; small policies of
our own cover only what sigstore has none for. :class:`CertificateIdentity` reads the
certificate for people: what ``harness verify`` prints, and why a rule did not match.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat import asn1
from pydantic import field_validator, model_validator
from sigstore.errors import VerificationError

from harness._internal.frozen import Frozen

if TYPE_CHECKING:
    from sigstore.verify.policy import VerificationPolicy

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


class IdentityRule(Frozen):
    """One accepted keyless signer: an OIDC issuer plus an exact SAN or a CI workflow.

    Exactly one of ``san`` or ``repository`` is given. ``ref`` and ``workflow`` narrow
    a repository rule to one git ref (``refs/heads/main``, ``refs/tags/v1``) and one
    workflow file of that repository (``.github/workflows/eval.yml``).
    """

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

    def _checks(self) -> list[_Check]:
        """The rule as sigstore policies, in the order a mismatch is explained.

        Both Fulcio extension generations are accepted: the v1 ones (raw UTF-8 values)
        and their v2 replacements (DER UTF8String), because certificates in the wild
        carry either or both. Each policy is paired with how a rejection reads.
        """
        from sigstore.verify import policy as sp

        checks = [
            _Check(
                sp.AnyOf([_Strict(sp.OIDCIssuerV2(self.issuer)), _Strict(sp.OIDCIssuer(self.issuer))]),
                lambda i: f"issuer is {i.issuer!r}, not {self.issuer!r}",
            )
        ]
        if self.san is not None:
            # sigstore's Identity compares otherName SANs undecoded (DER tag included),
            # so the Fulcio username form is checked by _OtherNameSAN as well.
            identity = sp.AnyOf([_Strict(sp.Identity(identity=self.san)), _OtherNameSAN(self.san)])
            return [*checks, _Check(identity, lambda i: f"identity is {i.san!r}, not {self.san!r}")]
        repository = self.repository or ""
        urls = self._repository_urls()
        repositories: list[VerificationPolicy] = [
            _Strict(sp.OIDCSourceRepositoryURI(url)) for url in urls
        ]
        repositories.append(_Strict(sp.GitHubWorkflowRepository(repository)))

        def wrong_repository(i: CertificateIdentity) -> str:
            if i.repository == repository:  # the same path on another host
                hosts = " or ".join(url.removesuffix(f"/{repository}") for url in urls)
                return f"repository {repository!r} is not on {hosts}"
            return f"repository is {i.repository!r}, not {repository!r}"

        checks.append(_Check(sp.AnyOf(repositories), wrong_repository))
        if self.ref is not None:
            ref = self.ref
            checks.append(
                _Check(
                    sp.AnyOf(
                        [_Strict(sp.OIDCSourceRepositoryRef(ref)), _Strict(sp.GitHubWorkflowRef(ref))]
                    ),
                    lambda i: f"ref is {i.ref!r}, not {ref!r}",
                )
            )
        if self.workflow is not None:
            checks.append(_Check(_WorkflowSAN(repository, self.workflow, self.ref), None))
        return checks

    def _repository_urls(self) -> list[str]:
        """Source repository URIs (Fulcio ``1.3.6.1.4.1.57264.1.12``) that name ``repository``.

        GitHub's, for any issuer (Buildkite, CircleCI and others build GitHub
        repositories too), and the issuer's own host for forges that are their own
        OIDC issuer (``https://gitlab.com``).
        """
        urls = [f"https://github.com/{self.repository}"]
        host = urlsplit(self.issuer).netloc
        if host not in ("github.com", urlsplit(GITHUB_ACTIONS_ISSUER).netloc):
            urls.append(f"https://{host}/{self.repository}")
        return urls

    def policy(self) -> VerificationPolicy:
        """This rule as one sigstore ``VerificationPolicy`` (an ``AllOf`` of its checks)."""
        from sigstore.verify.policy import AllOf

        return AllOf([check.policy for check in self._checks()])

    def mismatch(self, cert: x509.Certificate) -> str | None:
        """Why ``cert`` is not accepted by this rule, or ``None`` when it is.

        The decision is sigstore's policies' (:meth:`policy`, check by check); the
        words come from the certificate's :class:`CertificateIdentity`.
        """
        for check in self._checks():
            try:
                check.policy.verify(cert)
            except VerificationError as exc:
                if check.explain is None:
                    return str(exc)
                return check.explain(CertificateIdentity.from_certificate(cert))
        return None

    def verify(self, cert: x509.Certificate) -> None:
        """sigstore's ``VerificationPolicy`` protocol: raise if ``cert`` is not accepted.

        sigstore's verifier calls this only after the certificate chained to the trust
        root, so the rule is enforced on a proven certificate; the refusal is an
        :class:`IdentityRejectedError` so it is told apart from a broken bundle by type.
        """
        try:
            self.policy().verify(cert)
        except VerificationError as exc:
            raise IdentityRejectedError(self.mismatch(cert) or str(exc)) from exc


class IdentityRejectedError(VerificationError):
    """An identity rule refused a certificate (raised inside sigstore's verifier).

    A distinct class, so the verifier's caller tells "not a signer we accept" from
    "the bundle does not verify" by type rather than by message.
    """

    def __init__(self, why: str) -> None:
        super().__init__(f"certificate identity rejected by the trust policy: {why}")
        self.why = why


@dataclass(frozen=True)
class _Check:
    """One part of an identity rule: a sigstore policy, and how its rejection reads."""

    policy: VerificationPolicy
    explain: Callable[[CertificateIdentity], str] | None


class _Strict:
    """A sigstore policy whose every refusal is a ``VerificationError``.

    sigstore's single-extension and SAN policies let a certificate without a SAN, or
    with an extension that is not valid UTF-8 / DER, escape as ``ExtensionNotFound``
    or ``ValueError``; inside ``AnyOf`` that would end the search early, and inside the
    verifier it would not be a verification failure at all.
    """

    def __init__(self, inner: VerificationPolicy) -> None:
        self._inner = inner

    def verify(self, cert: x509.Certificate) -> None:
        try:
            self._inner.verify(cert)
        except (x509.ExtensionNotFound, ValueError) as exc:
            raise VerificationError(f"{type(self._inner).__name__}: {exc}") from exc


class _OtherNameSAN:
    """The Fulcio ``otherName`` SAN (``1.3.6.1.4.1.57264.1.7``, a DER UTF8String) equals ``san``."""

    def __init__(self, san: str) -> None:
        self._san = san

    def verify(self, cert: x509.Certificate) -> None:
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            names = None
        found = [
            _der_utf8(other.value)
            for other in (names.get_values_for_type(x509.OtherName) if names else [])
            if other.type_id == _OID_OTHERNAME_SAN
        ]
        if self._san not in found:
            raise VerificationError(f"no otherName SAN {self._san!r} (found {found})")


class _WorkflowSAN:
    """The SAN is the workflow file ``workflow`` of ``repository`` (and, given, at ``ref``).

    sigstore has no policy for part of a SAN. A GitHub workflow SAN is
    ``https://<host>/<owner>/<repo>/<path>@<ref>``; a reusable workflow of another
    repository names that repository, so it is refused.
    """

    def __init__(self, repository: str, workflow: str, ref: str | None) -> None:
        self._prefix = f"{repository}/{workflow}@"
        self._workflow = workflow
        self._ref = ref

    def verify(self, cert: x509.Certificate) -> None:
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            uris = names.get_values_for_type(x509.UniformResourceIdentifier)
        except x509.ExtensionNotFound:
            uris = []
        paths = [urlsplit(uri).path.lstrip("/") for uri in uris]
        shown = uris[0] if uris else None
        if not any(p.startswith(self._prefix) for p in paths):
            raise VerificationError(f"workflow identity is {shown!r}, not from {self._workflow}")
        if self._ref is not None and self._prefix + self._ref not in paths:
            raise VerificationError(f"workflow identity is {shown!r}, not at {self._ref}")
