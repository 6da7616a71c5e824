"""Who signs: a local key, or Sigstore keyless, as objects a run or an event is given.

The run and the dossier events only need "sign these subjects under this predicate";
which key or identity does it is the caller's choice (``--sign key|sigstore``), made
once and passed in, as sigstore-python passes signing contexts around. The signing stack
(cryptography, sigstore) is imported when a signer first signs, not when a run starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Signed:
    """A Sigstore bundle, and the local key's path if signing created that key just now."""

    bundle: bytes
    key_created: Path | None = None


class Signer(Protocol):
    """Signs an in-toto statement over ``subjects`` ({file name: sha256}) into a Sigstore bundle."""

    def sign(self, subjects: Mapping[str, str], predicate_type: str, predicate: dict[str, Any]) -> Signed: ...


@dataclass(frozen=True)
class KeySigner:
    """The local ECDSA P-256 key in ``config_dir`` (default: the harness config folder),
    created on first use; offline, no identity provider needed."""

    config_dir: Path | None = None

    def sign(self, subjects: Mapping[str, str], predicate_type: str, predicate: dict[str, Any]) -> Signed:
        from harness.signing.keys import load_or_create_key
        from harness.signing.sign import sign_statement

        key = load_or_create_key(self.config_dir)
        bundle = sign_statement(subjects, predicate_type, predicate, key)
        return Signed(bundle, key.path if key.created else None)

    def preflight(self) -> None:
        """Fail now, not after the run, if the key cannot be read (or made)."""
        from harness.signing.keys import load_or_create_key

        load_or_create_key(self.config_dir)


@dataclass(frozen=True)
class SigstoreSigner:
    """Sigstore keyless: a Fulcio certificate for an OIDC identity, logged in Rekor."""

    staging: bool = False
    identity_token: str | None = field(default=None, repr=False)

    def sign(self, subjects: Mapping[str, str], predicate_type: str, predicate: dict[str, Any]) -> Signed:
        from harness.signing.sign import sign_statement_keyless

        return Signed(sign_statement_keyless(subjects, predicate_type, predicate, identity_token=self.identity_token,
                                             staging=self.staging))

    def preflight(self) -> None:
        """Fail now, not after hours of generation, if there is no identity token or it has
        expired (the token is checked again when signing: a long run may outlive it)."""
        from harness.signing.sign import resolve_identity_token

        resolve_identity_token(self.identity_token)


def preflight(signer: Signer) -> None:
    """Check that ``signer`` can sign, before a run spends anything; signers without a
    ``preflight`` (a caller's own) are trusted to know."""
    check = getattr(signer, "preflight", None)
    if callable(check):
        check()
