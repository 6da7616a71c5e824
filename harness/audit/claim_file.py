"""The vendor claim file (TOML, ``schema_version = 1``, docs/claims.md): its format and reading.

A claim file is written by the party being checked, so every field is validated and a
path in it may only point beside the claim file, never elsewhere on the machine.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from pydantic import ValidationError, field_validator, model_validator

from harness._internal.files import OutsideRootError, confine
from harness._internal.frozen import Frozen
from harness._internal.hashing import sha256_file
from harness.errors import ClaimError
from harness.signing.identity import IdentityRule
from harness.signing.keys import check_key_hint

SCHEMA_VERSION: Final[Literal[1]] = 1
"""The only claim file schema this harness reads."""

_DOCS = "see docs/claims.md"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be empty")
    return value


def _relative(value: str | None) -> str | None:
    """Paths in a claim are relative to the claim file, so the claim folder can travel."""
    if value is None:
        return None
    if not value.strip() or "\x00" in value:
        raise ValueError("must be a non-empty path")
    p = PurePosixPath(value.replace("\\", "/"))
    if p.is_absolute() or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"{value!r} is absolute; write it relative to the claim file")
    if ".." in p.parts:
        raise ValueError(f"{value!r} climbs out of the claim folder with '..'; the claim's files stay inside it")
    return value


class Vendor(Frozen):
    name: str
    contact: str | None = None

    @field_validator("name", "contact")
    @classmethod
    def _nb(cls, value: str | None) -> str | None:
        return _not_blank(value)


class ModelRef(Frozen):
    """The model the claim is about: its name and, ideally, its weights digest.

    ``digest`` is the harness's model digest (``record.json`` ``model.digest``: sha256
    over the weight and config files); without it a run is matched by name only.
    """

    name: str
    digest: str | None = None

    @field_validator("name")
    @classmethod
    def _nb(cls, value: str) -> str | None:
        return _not_blank(value)

    @field_validator("digest")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not _HEX64.match(value):
            raise ValueError(f"{value!r} is not a sha256 hex digest (64 lowercase hex digits)")
        return value


class PackageRef(Frozen):
    """The benchmark package: name plus version, seal digest, or both."""

    name: str
    version: str | None = None
    seal: str | None = None

    @field_validator("name", "version")
    @classmethod
    def _nb(cls, value: str | None) -> str | None:
        return _not_blank(value)

    @field_validator("seal")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not _HEX64.match(value):
            raise ValueError(f"{value!r} is not a seal digest (64 lowercase hex digits)")
        return value

    @model_validator(mode="after")
    def _some(self) -> PackageRef:
        if self.version is None and self.seal is None:
            raise ValueError("give 'version' and/or 'seal', so the package is pinned")
        return self


class MetricClaim(Frozen):
    """What is claimed: a metric of the package, optionally for one language or category."""

    name: str
    value: float
    language: str | None = None
    category: str | None = None

    @field_validator("name")
    @classmethod
    def _metric(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a metric name (e.g. 'refusal_rate')")
        return value

    @field_validator("language", "category")
    @classmethod
    def _slice(cls, value: str | None) -> str | None:
        return _not_blank(value)

    @field_validator("value")
    @classmethod
    def _proportion(cls, value: float) -> float:
        if not (0.0 <= value <= 1.0):  # also rejects nan
            raise ValueError(f"{value!r} is not a proportion between 0 and 1")
        return value

    @model_validator(mode="after")
    def _one_slice(self) -> MetricClaim:
        if self.language is not None and self.category is not None:
            raise ValueError("give at most one of 'language' or 'category'")
        return self

    @property
    def group(self) -> str:
        """The record's group name for this slice (``overall``, ``language:hi``, ...)."""
        if self.language is not None:
            return f"language:{self.language}"
        if self.category is not None:
            return f"category:{self.category}"
        return "overall"


class SignerSpec(Frozen):
    """Who should have signed the vendor's record: a key, or a Sigstore identity.

    ``key`` is a PEM public key file; ``key_hint`` (base64 sha256 of the key, as
    ``harness key show`` prints it) pins it, or alone names a key in your trust
    store. ``sigstore`` is a trust-policy identity rule (docs/trust-policy.md).
    """

    key: str | None = None
    key_hint: str | None = None
    sigstore: IdentityRule | None = None

    @field_validator("key")
    @classmethod
    def _rel(cls, value: str | None) -> str | None:
        return _relative(value)

    @field_validator("key_hint")
    @classmethod
    def _hint(cls, value: str | None) -> str | None:
        return check_key_hint(value)

    @model_validator(mode="after")
    def _one_kind(self) -> SignerSpec:
        has_key = self.key is not None or self.key_hint is not None
        if has_key == (self.sigstore is not None):
            raise ValueError("give a key ('key' and/or 'key_hint') or a [sigstore] identity, not both or neither")
        return self

    def describe(self) -> str:
        if self.sigstore is not None:
            return f"Sigstore identity {self.sigstore.describe()}"
        parts = [f"key file {self.key}" if self.key else None, f"key {self.key_hint}" if self.key_hint else None]
        return " pinned to ".join(p for p in parts if p)


class VendorRecord(Frozen):
    """The vendor's signed run record, as ``harness run`` writes one."""

    record: str
    bundle: str | None = None
    outputs: str | None = None
    signer: SignerSpec | None = None

    @field_validator("record", "bundle", "outputs")
    @classmethod
    def _rel(cls, value: str | None) -> str | None:
        return _relative(value)


class Claim(Frozen):
    """A vendor claim file, schema version 1 (docs/claims.md)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    vendor: Vendor
    model: ModelRef
    package: PackageRef
    metric: MetricClaim
    vendor_record: VendorRecord | None = None
    source: str | None = None
    """Where the vendor published the claim (URL, document and page); shown in the report."""


@dataclass(frozen=True)
class LoadedClaim:
    """A parsed claim and the folder its relative paths are resolved against."""

    claim: Claim
    path: Path
    sha256: str

    @property
    def base(self) -> Path:
        return self.path.parent

    def resolve(self, rel: str) -> Path:
        """``rel`` inside the claim folder, symlinks resolved; a path that leads outside (through a
        link) is refused, so a claim cannot make a file of the reviewer's machine count as the vendor's."""
        try:
            return confine(self.base, rel)
        except OutsideRootError:
            raise ClaimError(f"{self.path}: {rel!r} leads outside the claim folder (through a symbolic link)",
                             hint="a claim's files must sit inside its folder; do not trust this claim") from None


def parse_claim(text: str, where: str = "claim") -> Claim:
    """Parse claim TOML; every problem is a :class:`ClaimError` naming the field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ClaimError(f"{where}: not valid TOML: {e}", hint=f"fix the file ({_DOCS})") from None
    except RecursionError:
        raise ClaimError(f"{where}: nested too deeply to be a claim file", hint=_DOCS) from None
    version = doc.get("schema_version")
    if version is None:
        raise ClaimError(f"{where}: missing 'schema_version = {SCHEMA_VERSION}'", hint=f"add it ({_DOCS})")
    if version != SCHEMA_VERSION:
        raise ClaimError(
            f"{where}: schema_version {version!r} is not supported (this harness reads {SCHEMA_VERSION})",
            hint="upgrade the harness, or write the claim in schema version 1",
        )
    try:
        return Claim.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        msg = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "unknown key (a typo? the allowed keys are listed in docs/claims.md)"
        raise ClaimError(
            f"{where}: {loc}: {msg} ({e.error_count()} problem{'s' if e.error_count() > 1 else ''})",
            hint=f"fix the claim file ({_DOCS}; docs/examples/claim.toml is a complete example)",
        ) from None
    except RecursionError:
        raise ClaimError(f"{where}: nested too deeply to be a claim file", hint=_DOCS) from None


def load_claim(path: Path | str) -> LoadedClaim:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ClaimError(f"cannot read claim file {path}: {e.strerror or e}", hint="give the path of a claim .toml file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ClaimError(f"{path}: not UTF-8 text ({e.reason})", hint="save the claim file as UTF-8") from None
    return LoadedClaim(claim=parse_claim(text, str(path)), path=path, sha256=sha256_file(path))
