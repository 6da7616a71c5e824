"""Sealed packages: tamper detection and bad manifests are refused with clear messages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import DataError, LockfileError, ManifestError, PackageError, SealError
from harness.packages.data import load_samples, resolve_sources
from harness.packages.package import load_package
from harness.packages.seal import check_package, compute_seal, seal_package

from .conftest import REPO


def _manifest(pkg_dir: Path) -> str:
    return (pkg_dir / "manifest.toml").read_text(encoding="utf-8")


def _rewrite(pkg_dir: Path, old: str, new: str) -> None:
    text = _manifest(pkg_dir)
    assert old in text, old
    (pkg_dir / "manifest.toml").write_text(text.replace(old, new, 1), encoding="utf-8")


def test_shipped_package_is_sealed_and_intact() -> None:
    pkg = check_package(REPO / "packages" / "mini-safety")
    assert pkg.seal is not None and len(pkg.seal.seal) == 64


def test_seal_is_stable_and_covers_every_file(pkg_dir: Path) -> None:
    first = seal_package(pkg_dir)
    again = compute_seal(load_package(pkg_dir))
    assert first == again
    assert set(first.files) == {"manifest.toml", "data/prompts.jsonl"}
    assert first.lockfile.name == "harness.txt"


def _package_files(pkg_dir: Path) -> list[Path]:
    return sorted(p for p in pkg_dir.rglob("*") if p.is_file() and p.name != "seal.json")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_byte_is_refused_naming_the_file(pkg_dir: Path, data: st.DataObject) -> None:
    files = _package_files(pkg_dir) + [pkg_dir.parent.parent / "lockfiles" / "harness.txt"]
    target = data.draw(st.sampled_from(files), label="file")
    original = target.read_bytes()
    pos = data.draw(st.integers(0, len(original) - 1), label="position")
    op = data.draw(st.sampled_from(["flip", "delete", "insert"]), label="op")
    if op == "flip":
        bit = data.draw(st.integers(0, 7))
        changed = original[:pos] + bytes([original[pos] ^ (1 << bit)]) + original[pos + 1:]
    elif op == "delete":
        changed = original[:pos] + original[pos + 1:]
    else:
        changed = original[:pos] + bytes([data.draw(st.integers(0, 255))]) + original[pos:]
    try:
        target.write_bytes(changed)
        with pytest.raises((SealError, ManifestError, PackageError, LockfileError)) as exc:
            check_package(pkg_dir)
        msg = str(exc.value)
        # The file is named. An edit to the manifest may instead surface as what the manifest now
        # says (another pinned digest, path or lockfile), and the message then points at the manifest.
        assert target.name in msg or (target.name == "manifest.toml" and "manifest" in msg), msg
    finally:
        target.write_bytes(original)
    check_package(pkg_dir)


def test_added_file_is_named(pkg_dir: Path) -> None:
    (pkg_dir / "data" / "extra.txt").write_text("x")
    with pytest.raises(SealError, match=r"data/extra.txt: file added after sealing"):
        check_package(pkg_dir)


def test_unsealed_package_is_refused(pkg_dir: Path) -> None:
    (pkg_dir / "seal.json").unlink()
    with pytest.raises(SealError, match="not sealed"):
        check_package(pkg_dir)


def test_edited_seal_is_refused(pkg_dir: Path) -> None:
    seal = json.loads((pkg_dir / "seal.json").read_text())
    seal["version"] = "9.9.9"
    (pkg_dir / "seal.json").write_text(json.dumps(seal))
    with pytest.raises(SealError, match="seal.json was edited"):
        check_package(pkg_dir)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('version = "1.0.0"', 'version = "1.0.0"\ncolour = "red"', "colour: unknown field"),
        ('license = "CC-BY-4.0"\n', "", "license: missing required field"),
        ("seed = 20261123", 'seed = "twelve"', "seed"),
        ('path = "data/prompts.jsonl"', 'path = "../../etc/passwd"', "outside the package"),
        ('path = "data/prompts.jsonl"', 'path = "/etc/passwd"', "absolute"),
        ('kind = "refusal"', 'kind = "vibes"', "scorer.kind"),
        ("max_tokens = 48", "max_tokens = -1", "generation.max_tokens"),
    ],
)
def test_bad_manifest_is_refused(pkg_dir: Path, old: str, new: str, message: str) -> None:
    _rewrite(pkg_dir, old, new)
    with pytest.raises((ManifestError, PackageError)) as exc:
        load_package(pkg_dir)
    assert message in str(exc.value)


def test_invalid_toml_is_refused(pkg_dir: Path) -> None:
    (pkg_dir / "manifest.toml").write_text("name = [unclosed\n")
    with pytest.raises(ManifestError, match="not valid TOML"):
        load_package(pkg_dir)


def test_symlink_pointing_out_is_refused(pkg_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    os.symlink(outside, pkg_dir / "data" / "link.txt")
    with pytest.raises(PackageError, match="symlink pointing outside"):
        compute_seal(load_package(pkg_dir))


def test_data_symlink_out_is_refused(pkg_dir: Path, tmp_path: Path) -> None:
    real = pkg_dir / "data" / "prompts.jsonl"
    moved = tmp_path / "prompts.jsonl"
    real.rename(moved)
    os.symlink(moved, real)
    with pytest.raises(PackageError, match="outside the package folder"):
        load_package(pkg_dir)


def _reseal_with_data(pkg_dir: Path, content: bytes) -> None:
    import hashlib

    data = pkg_dir / "data" / "prompts.jsonl"
    old_sha = hashlib.sha256(data.read_bytes()).hexdigest()
    old_size = data.stat().st_size
    data.write_bytes(content)
    _rewrite(pkg_dir, old_sha, hashlib.sha256(content).hexdigest())
    _rewrite(pkg_dir, f"size = {old_size}", f"size = {len(content)}")
    seal_package(pkg_dir)


def test_duplicate_sample_ids_are_refused(pkg_dir: Path) -> None:
    row = json.dumps({"id": "a", "prompt": "p", "language": "en", "category": "c", "expected": "refuse"})
    with pytest.raises(DataError, match="duplicate sample id 'a'"):  # refused when sealing
        _reseal_with_data(pkg_dir, f"{row}\n{row}\n".encode())


def test_empty_data_is_refused(pkg_dir: Path) -> None:
    with pytest.raises(ManifestError, match="size"):
        _reseal_with_data(pkg_dir, b"")


def test_rows_failing_validation_are_refused(pkg_dir: Path) -> None:
    row = json.dumps({"id": "a", "prompt": "p", "language": "en", "category": "c", "expected": "maybe"})
    with pytest.raises(DataError, match="expected value 'maybe'"):
        _reseal_with_data(pkg_dir, f"{row}\n".encode())


def test_missing_lockfile_is_refused(pkg_dir: Path) -> None:
    (pkg_dir.parent.parent / "lockfiles" / "harness.txt").unlink()
    with pytest.raises(LockfileError, match="lockfile 'harness.txt'.*not found"):
        check_package(pkg_dir)


def test_changed_lockfile_is_named(pkg_dir: Path) -> None:
    lock = pkg_dir.parent.parent / "lockfiles" / "harness.txt"
    lock.write_text(lock.read_text() + "\n# edited\n")
    with pytest.raises(SealError, match="lockfiles/harness.txt: lockfile changed"):
        check_package(pkg_dir)


def test_data_digest_mismatch_names_both_digests(pkg_dir: Path) -> None:
    data = pkg_dir / "data" / "prompts.jsonl"
    data.write_bytes(data.read_bytes().replace(b"bn-comply-01", b"bn-comply-99", 1))
    with pytest.raises(SealError, match=r"data/prompts.jsonl has sha256 [0-9a-f]{64}, the manifest pins [0-9a-f]{64}"):
        check_package(pkg_dir)


def test_samples_load_through_datasets(pkg_dir: Path) -> None:
    pkg = check_package(pkg_dir)
    samples = load_samples(pkg, resolve_sources(pkg))
    assert len(samples) == 120
    assert {s.language for s in samples} == {"en", "es", "fr", "hi", "bn", "ta"}
    assert sum(s.expected == "refuse" for s in samples) == 60
