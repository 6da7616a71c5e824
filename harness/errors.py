"""One error hierarchy for the whole harness.

Every error carries a ``hint``: the next thing the user should do. The CLI prints
both and maps the class to an exit code, so library callers and the command line
see the same failure in the same words.
"""

from __future__ import annotations

import enum


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ManifestError(HarnessError):
    """The package manifest is missing, malformed or inconsistent."""


class PackageError(HarnessError):
    """The package folder is unusable (missing files, paths escaping it, ...)."""


class SealError(HarnessError):
    """The package is unsealed, or a sealed byte changed."""

    exit_code = 1


class DataError(HarnessError):
    """A data source cannot be found, fetched, verified or parsed."""


class LockfileError(HarnessError):
    """The dependency lockfile is missing or does not match its digest."""


class BackendError(HarnessError):
    """The model backend could not be loaded or did not answer."""


class ScorerError(HarnessError):
    """The scorer is unknown or misconfigured."""


class RecordError(HarnessError):
    """A run record or outputs file is malformed or inconsistent."""

    exit_code = 1


class SignatureFailure(enum.StrEnum):
    """Why a bundle was refused, as a value callers can test instead of matching message text.

    Messages are written for people and may be reworded; a reason is a stable name for
    what the verifier found, so ``err.reason is SignatureFailure.TLOG_MISMATCH`` keeps
    working when the sentence around it changes.
    """

    UNSPECIFIED = "unspecified"
    """Raised without a reason (code outside :mod:`harness.signing`)."""
    MALFORMED_BUNDLE = "malformed-bundle"
    """Not a Sigstore bundle: invalid JSON, or not the bundle schema."""
    NON_CANONICAL_BASE64 = "non-canonical-base64"
    """A base64 field of the envelope decodes only leniently: it was edited."""
    WRONG_BUNDLE_KIND = "wrong-bundle-kind"
    """A message-signature bundle where a DSSE statement was expected, or the reverse."""
    KEYLESS_NEEDS_POLICY = "keyless-needs-policy"
    """A keyless (certificate) bundle checked against trusted keys only."""
    WRONG_PAYLOAD_TYPE = "wrong-payload-type"
    """The DSSE payload is not an in-toto statement."""
    SIGNATURE_COUNT = "signature-count"
    """The DSSE envelope does not carry exactly one signature."""
    NOT_A_STATEMENT = "not-a-statement"
    """The signed payload is not a valid in-toto Statement v1 (JSON, subjects, digests)."""
    UNSUPPORTED_DIGEST = "unsupported-digest"
    """A message digest in a hash algorithm this harness does not check."""
    MESSAGE_DIGEST_MISMATCH = "message-digest-mismatch"
    """A message-signature bundle records the digest of another file."""
    BAD_SIGNATURE = "bad-signature"
    """The signature does not verify with the (trusted or certified) key."""
    UNTRUSTED_SIGNER = "untrusted-signer"
    """The signature may be valid, but no trusted key or policy identity accepts the signer."""
    CERT_CHAIN = "cert-chain"
    """The signing certificate does not chain to a Fulcio CA of the trust root."""
    SCT_INVALID = "sct-invalid"
    """The signing certificate's certificate-transparency proof does not verify."""
    NO_VERIFIED_TIME = "no-verified-time"
    """A keyless bundle proves no signing time (no log entry promise, no timestamp)."""
    TLOG_MISMATCH = "tlog-mismatch"
    """The transparency-log entry records other content than the bundle."""
    TLOG_INVALID = "tlog-invalid"
    """The transparency-log entry's proof or signed timestamp does not verify."""
    KEYLESS_REJECTED = "keyless-rejected"
    """sigstore-python refused the keyless bundle for a reason not classified above."""
    WRONG_PREDICATE = "wrong-predicate"
    """The statement verifies but signs another kind of document (predicate type)."""
    BAD_TRUSTED_KEY = "bad-trusted-key"
    """A trusted-key file is missing, unreadable, private, or not a usable public key."""


class SigningFailure(enum.StrEnum):
    """Why signing could not happen, as a value callers can test instead of matching text."""

    UNSPECIFIED = "unspecified"
    """Raised without a reason (code outside :mod:`harness.signing`)."""
    BAD_KEY = "bad-key"
    """The local signing key is unreadable, encrypted, or not ECDSA P-256."""
    KEY_STORAGE = "key-storage"
    """The config folder, the key or its public half cannot be written."""
    BAD_STATEMENT = "bad-statement"
    """The subjects or predicate cannot be signed as given."""
    NO_IDENTITY = "no-identity"
    """Keyless signing found no OIDC identity token (none given, none ambient)."""
    INVALID_TOKEN = "invalid-token"
    """The OIDC identity token is not usable for Sigstore (malformed, wrong audience)."""
    TOKEN_EXPIRED = "token-expired"
    """The identity token (or the certificate bound to it) expired before signing."""
    SIGSTORE_UNREACHABLE = "sigstore-unreachable"
    """The exchange with Sigstore's services (TUF, Fulcio, Rekor) failed."""
    SIGSTORE_RESPONSE = "sigstore-response"
    """Sigstore answered with something unusable (a certificate naming no identity)."""
    SELF_CHECK_FAILED = "self-check-failed"
    """The new keyless bundle does not verify against the pinned trust root."""


class SignatureError(HarnessError):
    """A bundle is malformed, or its signature does not verify.

    ``reason`` says why, as a :class:`SignatureFailure`; a caught ``SignatureError``
    may also be a :class:`SigningError`, whose reason is a :class:`SigningFailure`.
    """

    exit_code = 1
    reason: SignatureFailure | SigningFailure

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        reason: SignatureFailure = SignatureFailure.UNSPECIFIED,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class UntrustedSignerError(SignatureError):
    """The signature is valid but the signer is not in the trust store."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        reason: SignatureFailure = SignatureFailure.UNTRUSTED_SIGNER,
    ) -> None:
        super().__init__(message, hint=hint, reason=reason)


class SigningError(SignatureError):
    """Signing could not happen: the key is unusable or the statement is invalid."""

    exit_code = 2
    reason: SigningFailure

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        reason: SigningFailure = SigningFailure.UNSPECIFIED,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class TransparencyLogError(SignatureError):
    """A keyless bundle's transparency-log entry is invalid or records other content."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        reason: SignatureFailure = SignatureFailure.TLOG_INVALID,
    ) -> None:
        super().__init__(message, hint=hint, reason=reason)


class TrustPolicyError(HarnessError):
    """The trust policy file (or the Sigstore trust root it names) is unusable."""


class DossierError(HarnessError):
    """The dossier is malformed, its chain is broken, or an entry is unknown."""

    exit_code = 1


class CheckpointFailure(enum.StrEnum):
    """Why a dossier checkpoint was refused, as a value callers can test instead of matching text."""

    UNSPECIFIED = "unspecified"
    MALFORMED = "malformed"
    """Not a C2SP checkpoint (lines, tree size, root hash, signature lines)."""
    BAD_SIGNATURE = "bad-signature"
    """A signature by a trusted key (or its Sigstore bundle) does not verify: the note was altered."""
    UNTRUSTED_SIGNER = "untrusted-signer"
    """No signature on it is by a signer the verifier trusts."""
    WRONG_ORIGIN = "wrong-origin"
    """The checkpoint names another dossier (origin line)."""
    INCONSISTENT = "inconsistent"
    """The log is not an extension of the checkpoint: shorter, forked or rewritten."""


class CheckpointError(DossierError):
    """A dossier checkpoint is malformed, unsigned, or does not match the log; ``reason`` says which."""

    def __init__(self, message: str, *, hint: str | None = None,
                 reason: CheckpointFailure = CheckpointFailure.UNSPECIFIED) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class BadReferenceError(DossierError):
    """A ``PACKAGE@N`` that names no entry (or an entry of the wrong kind): bad input, not a
    failed verification, so scripts can tell a typo from a tampered dossier."""

    exit_code = 2


class DiagnoseError(HarnessError):
    """Bad input to a diagnosis (exit 2): an endpoint model, unknown layers or reference language."""


class RunIncompleteError(HarnessError):
    """Some samples could not be generated; the run is recorded as incomplete."""

    exit_code = 3


class JournalError(HarnessError):
    """The journal of an unfinished run cannot be used."""


class ClaimError(HarnessError):
    """The claim file is missing, malformed, or asks for something impossible."""


class RunInterruptedError(HarnessError):
    """The run was stopped (Ctrl-C); what it finished is kept in its journal for resuming."""

    exit_code = 130


class LabelRefusal(enum.StrEnum):
    """Why human labels were refused (nothing of them was written)."""

    UNKNOWN_SAMPLE = "unknown-sample"
    """The run has no sample of that id."""
    UNKNOWN_LABEL = "unknown-label"
    """The label is not one of the package's behaviours."""
    DUPLICATE_SAMPLE = "duplicate-sample"
    """One file labels the same sample twice."""
    MALFORMED = "malformed"
    """The labels file is not strict CSV or JSONL of the documented columns."""
    TOO_LARGE = "too-large"
    EMPTY = "empty"
    NO_PACKAGE = "no-package"
    """The run's package (by seal) was not found, so its labels are unknown."""


class LabelError(HarnessError):
    """Human labels were refused, all of them: a typed ``reason`` (:class:`LabelRefusal`)."""

    def __init__(self, message: str, reason: LabelRefusal, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
