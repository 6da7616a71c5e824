"""Official packages (issue 14): a seal the maintainer published, pinned in a trust policy.

``verify``, ``reproduce`` (through :class:`~harness.audit.original.Original`) and ``claim
check`` say whether a run's package is the official one; a package whose data was
edited and re-sealed is "not official" everywhere, not only in claim checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.audit.original import verify_original
from harness.cli import main
from harness.dossier.log import Dossier
from harness.errors import TrustPolicyError
from harness.packages.package import load_package
from harness.signing.keys import load_or_create_key
from harness.signing.policy import PackageStatus, load_trust_policy

from .test_hostile_state import Scripted, _run


def _policy(tmp_path: Path, seal: str | None) -> Path:
    key = load_or_create_key()
    text = f'schema_version = 1\n[[keys]]\npath = "{key.public_key_path}"\n'
    if seal is not None:
        text += f'[[official_packages]]\nname = "mini-safety"\nversion = "1.0.0"\nseal = "{seal}"\n' \
                'source = "https://example.org/mini-safety/releases"\n'
    path = tmp_path / f"policy-{seal[:4] if seal else 'none'}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("pinned, status", [("real", PackageStatus.OFFICIAL), ("other", PackageStatus.NOT_OFFICIAL),
                                            (None, PackageStatus.UNPINNED)])
def test_verify_and_reproduce_say_whether_the_package_is_official(
        pkg_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], pinned: str | None,
        status: PackageStatus) -> None:
    res = _run(pkg_dir, tmp_path / "d", Scripted())
    real = load_package(pkg_dir).seal
    assert real is not None
    seal = {"real": real.seal, "other": "e" * 64, None: None}[pinned]
    policy_path = _policy(tmp_path, seal)
    policy = load_trust_policy(policy_path)
    assert policy.package_status("mini-safety", real.seal) is status
    rc = main(["verify", "mini-safety@latest", "--dossiers", str(tmp_path / "d"), "--trust-policy", str(policy_path),
               "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["package_status"] == str(status)
    main(["verify", "mini-safety@latest", "--dossiers", str(tmp_path / "d"), "--trust-policy", str(policy_path)])
    text = capsys.readouterr().out
    assert ("NOT the official package" in text) == (status is PackageStatus.NOT_OFFICIAL)
    d = Dossier(tmp_path / "d" / "mini-safety")
    assert verify_original(d, res.entry, policy).package_status is status


def test_an_official_package_entry_must_be_a_seal(tmp_path: Path) -> None:
    path = _policy(tmp_path, "not-a-seal" + "0" * 54)
    with pytest.raises(TrustPolicyError, match="seal digest"):
        load_trust_policy(path)
