"""Sealed evaluation packages: the manifest and seal formats, loading, data, sealing, archives.

A package is a folder with ``manifest.toml`` and ``seal.json``; its data is read only
after each file's sha256 matches its pin. Modules, bottom up: :mod:`.manifest` (the two
file formats), :mod:`.package` (a loaded folder; where packages and lockfiles are found),
:mod:`.data` (sources, mirror, cache, readers), :mod:`.seal` (computing and checking the
seal), :mod:`.archive` (export and import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.packages.data import Sample, VerifiedSource, load_samples, resolve_sources
    from harness.packages.manifest import (
        Baseline,
        Bootstrap,
        DataSource,
        Generation,
        JudgeSpec,
        Manifest,
        RefusalSpec,
        Reproduction,
        ScorerSpec,
        Seal,
        parse_manifest,
    )
    from harness.packages.package import Package, list_packages, load_package, resolve_package
    from harness.packages.seal import check_package, seal_package

__all__ = [
    "Baseline",
    "Bootstrap",
    "DataSource",
    "Generation",
    "JudgeSpec",
    "Manifest",
    "Package",
    "RefusalSpec",
    "Reproduction",
    "Sample",
    "ScorerSpec",
    "Seal",
    "VerifiedSource",
    "check_package",
    "list_packages",
    "load_package",
    "load_samples",
    "parse_manifest",
    "resolve_package",
    "resolve_sources",
    "seal_package",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Baseline": "harness.packages.manifest",
    "Bootstrap": "harness.packages.manifest",
    "DataSource": "harness.packages.manifest",
    "Generation": "harness.packages.manifest",
    "JudgeSpec": "harness.packages.manifest",
    "Manifest": "harness.packages.manifest",
    "Package": "harness.packages.package",
    "RefusalSpec": "harness.packages.manifest",
    "Reproduction": "harness.packages.manifest",
    "Sample": "harness.packages.data",
    "ScorerSpec": "harness.packages.manifest",
    "Seal": "harness.packages.manifest",
    "VerifiedSource": "harness.packages.data",
    "check_package": "harness.packages.seal",
    "list_packages": "harness.packages.package",
    "load_package": "harness.packages.package",
    "load_samples": "harness.packages.data",
    "parse_manifest": "harness.packages.manifest",
    "resolve_package": "harness.packages.package",
    "resolve_sources": "harness.packages.data",
    "seal_package": "harness.packages.seal",
})
