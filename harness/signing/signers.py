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


@dataclass(frozen=True)
class SigstoreSigner:
    """Sigstore keyless: a Fulcio certificate for an OIDC identity, logged in Rekor."""

    staging: bool = False
    identity_token: str | None = field(default=None, repr=False)

    def sign(self, subjects: Mapping[str, str], predicate_type: str, predicate: dict[str, Any]) -> Signed:
        from harness.signing.sign import sign_statement_keyless

        return Signed(sign_statement_keyless(subjects, predicate_type, predicate, identity_token=self.identity_token,
                                             staging=self.staging))
