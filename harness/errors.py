"""One error hierarchy for the whole harness.

Every error carries a ``hint``: the next thing the user should do. The CLI prints
both and maps the class to an exit code, so library callers and the command line
see the same failure in the same words.
"""

from __future__ import annotations


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


class SignatureError(HarnessError):
    """A bundle is malformed, or its signature does not verify."""

    exit_code = 1


class UntrustedSignerError(SignatureError):
    """The signature is valid but the signer is not in the trust store."""


class SigningError(SignatureError):
    """Signing could not happen: the key is unusable or the statement is invalid."""

    exit_code = 2


class TransparencyLogError(SignatureError):
    """A keyless bundle's transparency-log entry is invalid or records other content."""


class TrustPolicyError(HarnessError):
    """The trust policy file (or the Sigstore trust root it names) is unusable."""


class DossierError(HarnessError):
    """The dossier is malformed, its chain is broken, or an entry is unknown."""

    exit_code = 1


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
