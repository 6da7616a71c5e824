"""`harness package import` of a hostile archive (issue 14): paths out of the archive, links,
devices, too many files, decompression bombs, and an index that names paths.

Each archive is the real export of mini-safety, rewritten with one hostile change. A
refused import must leave nothing outside the store and must not touch a copy already
imported under the same seal.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from harness.errors import HarnessError, PackageError
from harness.packages.archive import INDEX_NAME, TOP, export_package, import_archive

Member = tuple[tarfile.TarInfo, bytes]


@pytest.fixture
def exported(pkg_dir: Path, tmp_path: Path) -> Path:
    out, _ = export_package(pkg_dir, tmp_path / "good.harness.tar.gz")
    return out


def _members(archive: Path) -> list[Member]:
    out = []
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m)
            out.append((m, f.read() if f else b""))
    return out


def _write(path: Path, members: list[Member]) -> Path:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _file(name: str, data: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _with_index(members: list[Member], **changes: object) -> list[Member]:
    out = []
    for info, data in members:
        if info.name == f"{TOP}/{INDEX_NAME}":
            data = json.dumps({**json.loads(data), **changes}).encode()
        out.append((info, data))
    return out


def _refused(archive: Path, store: Path, match: str, **limits: int) -> None:
    before = sorted(p.relative_to(store) for p in store.rglob("*")) if store.exists() else []
    with pytest.raises(PackageError, match=match):
        import_archive(archive, store, **limits)  # type: ignore[arg-type]
    after = sorted(p.relative_to(store) for p in store.rglob("*")) if store.exists() else []
    assert after == before  # nothing added, nothing replaced, no temporary folder left


def test_the_real_archive_imports(exported: Path, tmp_path: Path) -> None:
    pkg = import_archive(exported, tmp_path / "store")
    assert pkg.name == "mini-safety"


@pytest.mark.parametrize("name", [f"{TOP}/../evil.txt", "/tmp/evil.txt", f"{TOP}/packages/../../evil.txt",
                                  "elsewhere/evil.txt", f"{TOP}\\..\\evil.txt"])
def test_a_member_outside_the_archive_is_refused(exported: Path, tmp_path: Path, name: str) -> None:
    bad = _write(tmp_path / "bad.tar.gz", [*_members(exported), _file(name, b"x")])
    _refused(bad, tmp_path / "store", "not a plain path")
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
                                  tarfile.FIFOTYPE, tarfile.DIRTYPE])
def test_links_devices_and_folders_are_refused(exported: Path, tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo(f"{TOP}/packages/mini-safety/data/odd")
    info.type = kind
    info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    bad = _write(tmp_path / "bad.tar.gz", [(info, b""), *_members(exported)])
    _refused(bad, tmp_path / "store", "only regular files")


@pytest.mark.parametrize("changes", [{"package": "../../outside"}, {"package": "/etc"}, {"seal": "../../x"},
                                     {"lockfile": "../x.txt"}, {"blobs": {"src": "../../etc/passwd"}}])
def test_an_index_naming_paths_is_refused(exported: Path, tmp_path: Path, changes: dict[str, object]) -> None:
    store = tmp_path / "store"
    import_archive(exported, store)  # a good copy is already stored: it must survive
    bad = _write(tmp_path / "bad.tar.gz", _with_index(_members(exported), **changes))
    _refused(bad, store, f"no valid {INDEX_NAME}")


def test_an_index_with_duplicate_keys_is_refused(exported: Path, tmp_path: Path) -> None:
    members = []
    for info, data in _members(exported):
        if info.name == f"{TOP}/{INDEX_NAME}":
            data = b'{"package":"other",' + data.lstrip()[1:]
        members.append((info, data))
    _refused(_write(tmp_path / "bad.tar.gz", members), tmp_path / "store", "duplicate")


def test_too_many_files(exported: Path, tmp_path: Path) -> None:
    members = _members(exported)
    extra = [_file(f"{TOP}/packages/mini-safety/junk/{i}", b"") for i in range(30)]
    bad = _write(tmp_path / "bad.tar.gz", [*members, *extra])
    _refused(bad, tmp_path / "store", "more than 20 files", max_files=20)


def test_a_decompression_bomb_stops_at_the_limit(exported: Path, tmp_path: Path) -> None:
    """5 MB of zeros compress to a few KB; with the limit lowered to 1 MB the import stops
    as soon as it crosses it, before writing the member."""
    bomb = _write(tmp_path / "bomb.tar.gz", [*_members(exported), _file(f"{TOP}/blobs/zeros", bytes(5 << 20))])
    assert bomb.stat().st_size < 100_000
    store = tmp_path / "store"
    _refused(bomb, store, "more than 1048576 bytes", max_bytes=1 << 20)


def test_a_bomb_in_many_small_members(exported: Path, tmp_path: Path) -> None:
    members = [*_members(exported), *(_file(f"{TOP}/blobs/z{i}", bytes(200_000)) for i in range(10))]
    _refused(_write(tmp_path / "bomb.tar.gz", members), tmp_path / "store", "bytes", max_bytes=1 << 20)


def test_a_refused_import_does_not_replace_the_stored_copy(exported: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    pkg = import_archive(exported, store)
    manifest = pkg.root / "manifest.toml"
    original = manifest.read_bytes()
    members = []
    for info, data in _members(exported):
        if info.name.endswith("manifest.toml"):
            data = data.replace(b"mini-safety", b"mini-safetx", 1)  # breaks the seal
        members.append((info, data))
    with pytest.raises(HarnessError):  # the package no longer matches its seal
        import_archive(_write(tmp_path / "altered.tar.gz", members), store)
    assert manifest.read_bytes() == original
    assert not [p for p in store.iterdir() if p.name.startswith(".import-")]
