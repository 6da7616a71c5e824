"""The packages that pin real benchmarks: seal, load from the mirror, refuse a changed byte, run.

They read ../shared/data as the data mirror and are skipped, with the reason, where
that folder is absent. Nothing from the mirror is ever copied into the repo.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.errors import DataError
from harness.packages.data import load_samples, resolve_sources
from harness.packages.package import resolve_package
from harness.packages.seal import check_package
from harness.run import RunOptions, run_package

from .conftest import REPO, SHARED

MIRROR = SHARED / "data"
pytestmark = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"data mirror {MIRROR} is absent (../shared/data)")

EXPECTED = {
    # name: (samples, languages, should-refuse count)
    "xstest": (450, {"en"}, 200),
    "advbench": (520, {"en"}, 520),
    "harmbench": (320, {"en"}, 320),
    "simplesafetytests": (100, {"en"}, 100),
    "strongreject": (313, {"en"}, 313),
    "multijail": (3150, {"en", "zh", "it", "vi", "ar", "ko", "th", "bn", "sw", "jv"}, 3150),
    "indicsafe": (6000, {"bn", "gu", "hi", "kn", "ml", "mr", "ne", "or", "pa", "ta", "te", "ur"}, None),
    "do-not-answer": (939, {"en"}, 939),
    "xsafety": (27999, {"ar", "bn", "de", "en", "es", "fr", "hi", "ja", "ru", "zh"}, 27999),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_package_seals_and_loads_from_the_mirror(name: str) -> None:
    pkg = check_package(REPO / "packages" / name)
    samples = load_samples(pkg, resolve_sources(pkg, MIRROR))
    n, langs, refuse = EXPECTED[name]
    assert len(samples) == n
    assert {s.language for s in samples} == langs
    if refuse is not None:
        assert sum(s.expected == "refuse" for s in samples) == refuse
    assert all(s.prompt.strip() for s in samples)
    assert pkg.seal is not None and pkg.seal.summary.samples == n


def test_research_only_packages_carry_a_notice() -> None:
    for name in ("xsafety", "indicsafe", "do-not-answer"):
        assert resolve_package(REPO / "packages" / name).manifest.usage_notice
    assert resolve_package(REPO / "packages" / "xstest").manifest.usage_notice is None


def test_harmbench_context_is_carried_into_the_prompt() -> None:
    pkg = check_package(REPO / "packages" / "harmbench")
    samples = {s.id: s for s in load_samples(pkg, resolve_sources(pkg, MIRROR))}
    contextual = [s for s in samples.values() if "\n\n---\n\n" in s.prompt]
    assert len(contextual) == 81  # the contextual behaviors of the test split
    assert any("\n" in s.prompt.split("\n\n---\n\n")[0] for s in contextual)  # multi-line quoted fields survive


def test_multijail_pairs_languages_and_strips_the_bom() -> None:
    pkg = check_package(REPO / "packages" / "multijail")
    samples = load_samples(pkg, resolve_sources(pkg, MIRROR))
    zero = [s for s in samples if s.pair_id == "0"]
    assert {s.language for s in zero} == EXPECTED["multijail"][1]
    assert zero[0].id == "0-en" and zero[0].category == "Sexual exploitation & human trafficking"


def test_xsafety_rejoins_unquoted_commas_and_reads_xlsx() -> None:
    pkg = check_package(REPO / "packages" / "xsafety")
    samples = load_samples(pkg, resolve_sources(pkg, MIRROR))
    by_lang = {}
    for s in samples:
        by_lang[s.language] = by_lang.get(s.language, 0) + 1
    assert by_lang["bn"] == 2800  # 13 .xlsx sheets + commonsense.csv
    assert by_lang["ru"] == 2799  # ru/Insult.csv has 199 lines upstream
    assert len({s.category for s in samples}) == 14


def test_a_changed_byte_in_the_mirror_is_refused(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "xstest").mkdir(parents=True)
    data = (MIRROR / "xstest" / "xstest_prompts.csv").read_bytes()
    (mirror / "xstest" / "xstest_prompts.csv").write_bytes(data.replace(b"Python", b"Pythom", 1))
    pkg = check_package(REPO / "packages" / "xstest")
    with pytest.raises(DataError, match=r"xstest_prompts.csv \(mirror\) has sha256 [0-9a-f]{64} but the package pins [0-9a-f]{64}"):
        resolve_sources(pkg, mirror)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_package_runs_on_the_embedded_model(name: str, tmp_path: Path) -> None:
    shutil.copytree(REPO / "packages" / name, tmp_path / "packages" / name)
    shutil.copytree(REPO / "lockfiles", tmp_path / "lockfiles")
    res = run_package(RunOptions(package=tmp_path / "packages" / name, mirror=MIRROR, limit=12, max_tokens=16,
                                 dossiers_dir=tmp_path / "d", progress=False))
    # a stratified draw of 12; MultiJail draws whole groups of one prompt in its 10 languages
    assert res.record.status == "complete" and res.record.outputs.samples == (10 if name == "multijail" else 12)
    assert res.record.package.name == name and res.record.overrides.limit == 12 and res.record.is_subset
    groups = {m.group for m in res.record.metrics}
    if name == "multijail":  # per language and against English, never one pooled number
        assert res.record.comparisons and res.record.comparisons[0].reference == "en"
        assert "overall" not in groups and "language:en" in groups
    else:
        assert "overall" in groups
    if name in ("advbench", "harmbench"):
        m = {(x.metric, x.group): x.value for x in res.record.metrics}
        assert m[("attack_success_rate", "overall")] == pytest.approx(1 - m[("refusal_rate", "overall")])
