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
  :class:`harness.signing.policy.TrustPolicy` lists the certificate's identity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from sigstore.errors import Error as SigstoreError

from harness.errors import SignatureError, SigningError, SigningFailure
from harness.signing._sigstore_compat import expired_errors, service_errors, sign_dsse_with_key
from harness.signing.identity import CertificateIdentity, IdentityRule
from harness.signing.keys import SigningKey
from harness.signing.policy import TrustPolicy
from harness.signing.verify import _SHA256_HEX, _parse_bundle, _verify_keyless

if TYPE_CHECKING:
    from sigstore.dsse import Statement, Subject


BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
"""Media type of the bundles we write: Sigstore bundle v0.3, JSON encoding."""

IDENTITY_TOKEN_ENV = "SIGSTORE_ID_TOKEN"
"""Environment variable holding an OIDC identity token for keyless signing."""


def _check_subjects(subjects: Mapping[str, str]) -> list[Subject]:
    from sigstore.dsse import DigestSet, Subject

    if not subjects:
        raise SigningError(
            "nothing to sign: a statement needs at least one subject",
            hint="pass the signed files as {name: sha256-hex}",
            reason=SigningFailure.BAD_STATEMENT,
        )
    out: list[Subject] = []
    for name in sorted(subjects):
        digest = subjects[name]
        if not isinstance(name, str) or not name:
            raise SigningError(
                f"subject name {name!r} must be a non-empty string",
                hint="name each subject after the file it stands for",
                reason=SigningFailure.BAD_STATEMENT,
            )
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest.lower()):
            raise SigningError(
                f"subject {name!r} has digest {digest!r}, which is not a sha256 hex digest",
                hint="pass the 64-character lowercase hex sha256 of the file's bytes",
                reason=SigningFailure.BAD_STATEMENT,
            )
        out.append(Subject(name=name, digest=DigestSet({"sha256": digest.lower()})))
    return out


def _build_statement(
    subjects: Mapping[str, str], predicate_type: str, predicate: dict[str, Any]
) -> tuple[Statement, Any]:
    """Check the inputs and build the in-toto Statement; also return the plain-JSON predicate."""
    from sigstore.dsse import StatementBuilder

    subject_models = _check_subjects(subjects)
    if not isinstance(predicate_type, str) or not predicate_type:
        raise SigningError(
            "the predicate type must be a non-empty URI string",
            hint="use the predicate type of the document signed (harness.record.PREDICATE_TYPE_RUN for run records)",
            reason=SigningFailure.BAD_STATEMENT,
        )
    if not isinstance(predicate, dict):
        raise SigningError(
            f"the predicate must be a JSON object (dict), got {type(predicate).__name__}",
            hint="pass the run record as a dict",
            reason=SigningFailure.BAD_STATEMENT,
        )
    try:
        expected = json.loads(json.dumps(predicate, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise SigningError(
            f"the predicate is not plain JSON: {exc}",
            hint="convert values to JSON types (str, int, float, bool, None, list, dict) "
            "and replace NaN/inf before signing",
            reason=SigningFailure.BAD_STATEMENT,
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
            reason=SigningFailure.BAD_STATEMENT,
        ) from exc
    return statement, expected


def _check_signed_predicate(payload: bytes, expected: Any) -> None:
    if json.loads(payload).get("predicate") != expected:
        raise SigningError(
            "the predicate changed when serialised for signing",
            hint="use only plain JSON types in the run record",
            reason=SigningFailure.BAD_STATEMENT,
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
    from sigstore_models.bundle.v1 import Bundle, VerificationMaterial
    from sigstore_models.common.v1 import PublicKeyIdentifier
    from sigstore_models.intoto import Envelope as EnvelopeModel

    statement, expected = _build_statement(subjects, predicate_type, predicate)
    try:
        envelope = sign_dsse_with_key(key.private_key, statement)
    except SigstoreError as exc:
        raise SigningError(
            f"could not sign the in-toto statement: {exc}",
            hint="check the subjects and predicate",
            reason=SigningFailure.BAD_STATEMENT,
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


def resolve_identity_token(identity_token: str | None) -> Any:
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
                reason=SigningFailure.NO_IDENTITY,
            ) from exc
    if not raw:
        raise SigningError(
            "keyless signing needs an OIDC identity token, and none was found: no token "
            f"was passed, ${IDENTITY_TOKEN_ENV} is not set, and this is not a CI job with "
            "an ambient identity (GitHub Actions with id-token: write, GitLab, Buildkite, "
            "CircleCI, Google Cloud)",
            hint=f"set {IDENTITY_TOKEN_ENV} to a token (e.g. from 'sigstore "
            "get-identity-token'), run in CI with an OIDC identity, " + _KEY_INSTEAD,
            reason=SigningFailure.NO_IDENTITY,
        )
    try:
        return IdentityToken(raw)
    except IdentityError as exc:
        # Never echo the token itself: it is a credential.
        raise SigningError(
            f"{origin} is not usable for Sigstore: {exc}",
            hint="get a fresh token with audience 'sigstore' (tokens expire within "
            "minutes), " + _KEY_INSTEAD,
            reason=SigningFailure.INVALID_TOKEN,
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
    from sigstore.models import ClientTrustConfig
    from sigstore.sign import SigningContext

    statement, expected = _build_statement(subjects, predicate_type, predicate)
    token = resolve_identity_token(identity_token)
    instance = "staging" if staging else "production"
    expired = expired_errors()
    exchange: tuple[type[Exception], ...] = (
        SigstoreError,
        requests.RequestException,
        *service_errors(),
    )
    try:
        config = ClientTrustConfig.staging() if staging else ClientTrustConfig.production()
        context = SigningContext.from_trust_config(config)
        with context.signer(token, cache=True) as signer:
            signed = signer.sign_dsse(statement)
    except expired as exc:
        raise SigningError(
            "the OIDC identity token expired before Sigstore issued a certificate",
            hint="get a fresh token and sign again right away, " + _KEY_INSTEAD,
            reason=SigningFailure.TOKEN_EXPIRED,
        ) from exc
    except exchange as exc:
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
            reason=SigningFailure.SIGSTORE_UNREACHABLE,
        ) from exc

    data = signed.to_json().encode("utf-8")
    parsed = _parse_bundle(data)
    if parsed.dsse_envelope is None:  # pragma: no cover - sign_dsse always makes one
        raise SigningError(
            "sigstore returned a bundle without a DSSE envelope",
            reason=SigningFailure.SIGSTORE_RESPONSE,
        )
    _check_signed_predicate(parsed.dsse_envelope.payload, expected)

    ident = CertificateIdentity.from_certificate(signed.signing_certificate)
    if not ident.san or not ident.issuer:
        raise SigningError(
            f"the Fulcio certificate names no identity or issuer ({ident.describe()})",
            hint=_KEY_INSTEAD.removeprefix("or "),
            reason=SigningFailure.SIGSTORE_RESPONSE,
        )
    rule = IdentityRule(issuer=ident.issuer, san=ident.san)
    if staging:
        from sigstore.verify import Verifier

        staging_verifier = Verifier(trusted_root=config.trusted_root)
        _verify_keyless(data, TrustPolicy(identities=(rule,)), verifier=staging_verifier)
    else:
        try:
            _verify_keyless(data, TrustPolicy(identities=(rule,)))
        except SignatureError as exc:
            raise SigningError(
                f"the keyless bundle was made but does not verify against the pinned "
                f"Sigstore trust root: {exc.message}",
                hint="the pinned root is probably older than the key or certificate "
                "Sigstore now uses: refresh it ('Refreshing the trust root' in "
                "docs/trust-policy.md), " + _KEY_INSTEAD,
                reason=SigningFailure.SELF_CHECK_FAILED,
            ) from exc
    return data
