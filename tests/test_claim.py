"""Procurement claim checks end to end on the embedded model, the claim parser, the report.

One run of mini-safety (all 120 samples, the package's own settings: a vendor run of
part of the benchmark cannot support a claim) is made through
``check_claim(..., run=True)``; every other check reads that dossier. The vendor's
record is that run's record re-signed with a "vendor" key, or altered and re-signed
where a test needs a record that says something else. The reviewer pins the vendor's
key (``vendor_trusted`` / ``--vendor-key``); the copy shipped in the claim folder is
never what makes a signature count.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import signing as sign
from harness.audit.claim import CheckOptions, check_claim, matches_claimed
from harness.audit.claim_file import load_claim, parse_claim
from harness.cli import main
from harness.errors import ClaimError, HarnessError
from harness.record import BUNDLE_NAME, OUTPUTS_NAME, PREDICATE_TYPE_RUN, RECORD_NAME, parse_record
from harness.report.claim_report import to_html, to_markdown, write_reports
from harness.scoring.stats import binomial_test, clopper_pearson
from harness.signing.keys import default_trust_store, load_or_create_key, load_public_keys
from harness.signing.policy import TrustPolicy

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ the shared run


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace, our dossier with one limited run made by the claim check itself, a vendor key."""
    base = tmp_path_factory.mktemp("claims")
    shutil.copytree(REPO / "packages" / "mini-safety", base / "packages" / "mini-safety")
    shutil.copytree(REPO / "lockfiles", base / "lockfiles")
    saved = {k: os.environ.get(k) for k in ("HARNESS_CONFIG_DIR", "HARNESS_DOSSIERS")}
    os.environ["HARNESS_CONFIG_DIR"] = str(base / "config")
    os.environ["HARNESS_DOSSIERS"] = str(base / "dossiers")
    try:
        load_or_create_key()  # our key, in our trust store
        claim = _write_claim(base / "bootstrap", value=0.5)
        first = check_claim(load_claim(claim), _opts(base, run=True))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert first.our_run is not None, first.as_dict()
    run_dir = base / "dossiers" / "mini-safety" / "runs" / first.our_run["run_id"]
    record = parse_record(run_dir / RECORD_NAME)
    overall = record.metric("refusal_rate")
    assert overall is not None
    vendor_key = load_or_create_key(base / "vendor-config")
    mallory_key = load_or_create_key(base / "mallory-config")
    return {"base": base, "run_dir": run_dir, "record": record, "overall": overall, "first": first,
            "vendor_key": vendor_key, "mallory_key": mallory_key}


@pytest.fixture(autouse=True)
def _our_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that use the shared run see its config (our trust store) and dossiers."""
    if "env" in request.fixturenames:
        env = request.getfixturevalue("env")
        monkeypatch.setenv("HARNESS_CONFIG_DIR", str(env["base"] / "config"))
        monkeypatch.setenv("HARNESS_DOSSIERS", str(env["base"] / "dossiers"))


def _pin(env: dict[str, Any], key: sign.SigningKey | None = None) -> TrustPolicy:
    """The vendor's key as the reviewer pins it (what --vendor-key does)."""
    return TrustPolicy.from_keys(load_public_keys([(key or env["vendor_key"]).public_key_path]))


def _opts(base: Path, **kw: Any) -> CheckOptions:
    return CheckOptions(trusted=TrustPolicy.from_keys(default_trust_store()), dossiers_dir=base / "dossiers",
                        packages_dir=base / "packages", **kw)


def _write_claim(folder: Path, *, value: float, vendor: str = "Example Corp", extra: str = "",
                 model_digest: str | None = None, language: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    digest = f'digest = "{model_digest}"\n' if model_digest else ""
    lang = f'language = "{language}"\n' if language else ""
    text = (f'schema_version = 1\n[vendor]\nname = {json.dumps(vendor)}\n[model]\nname = "tiny-chat"\n{digest}'
            f'[package]\nname = "mini-safety"\nversion = "1.0.0"\n'
            f'[metric]\nname = "refusal_rate"\n{lang}value = {value!r}\n{extra}')
    path = folder / "claim.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _vendor_record(env: dict[str, Any], folder: Path, *, key: sign.SigningKey, seal: str | None = None,
                   tamper_after_signing: bool = False) -> None:
    """Our run's record as the vendor's, signed with ``key`` (its package seal replaced if asked)."""
    folder.mkdir(parents=True, exist_ok=True)
    record = env["record"]
    if seal is not None:
        record = record.model_copy(update={"package": record.package.model_copy(update={"seal": seal})})
    raw = record.to_bytes()
    shutil.copy(env["run_dir"] / OUTPUTS_NAME, folder / OUTPUTS_NAME)
    subjects = {RECORD_NAME: _sha(raw),
                OUTPUTS_NAME: record.outputs.sha256}
    bundle = sign.sign_statement(subjects, PREDICATE_TYPE_RUN, {"run_id": record.run_id}, key)
    (folder / BUNDLE_NAME).write_bytes(bundle)
    if tamper_after_signing:
        raw = raw.replace(b'"status":"complete"', b'"status":"incomplete"')
    (folder / RECORD_NAME).write_bytes(raw)


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _pub(key: sign.SigningKey) -> Path:
    return key.public_key_path


def _with_vendor(env: dict[str, Any], name: str, *, value: float | None = None, signer_key: sign.SigningKey | None = None,
                 sign_with: sign.SigningKey | None = None, seal: str | None = None,
                 tamper_after_signing: bool = False) -> Path:
    folder = env["base"] / name
    _vendor_record(env, folder / "vendor-run", key=sign_with or env["vendor_key"], seal=seal,
                   tamper_after_signing=tamper_after_signing)
    pub = folder / "vendor.pub.pem"
    shutil.copy(_pub(signer_key or env["vendor_key"]), pub)
    extra = ('[vendor_record]\nrecord = "vendor-run/record.json"\noutputs = "vendor-run/outputs.jsonl"\n'
             f'[vendor_record.signer]\nkey = "vendor.pub.pem"\nkey_hint = "{(signer_key or env["vendor_key"]).hint}"\n')
    return _write_claim(folder, value=env["overall"].value if value is None else value, extra=extra,
                        model_digest=env["record"].model.digest)


def _steps(result: Any) -> dict[str, str]:
    return {s.id: s.outcome for s in result.steps}


# ------------------------------------------------------------------ verdicts


def test_run_made_by_the_check_is_in_the_dossier_and_compared(env: dict[str, Any]) -> None:
    first = env["first"]
    assert _steps(first)["our-new-run"] == "passed" and _steps(first)["our-dossier"] == "passed"
    assert first.our_run["overrides"] == {}
    assert not any("overrides" in x for x in first.limitations)
    k, n = env["overall"].successes, env["overall"].n
    assert first.comparison is not None and (first.comparison.successes, first.comparison.n) == (k, n) == (k, 60)
    assert {r.group for r in first.languages} == {f"language:{x}" for x in ("bn", "en", "es", "fr", "hi", "ta")}


def test_matching_claim_with_a_verified_vendor_record_is_consistent(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    claim = _with_vendor(env, "match")
    out = env["base"] / "match" / "report"
    rc = main(["claim", "check", str(claim), "--packages", str(env["base"] / "packages"), "--report-dir", str(out), "--json",
               "--vendor-key", str(env["vendor_key"].public_key_path)])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["verdict"] == "consistent", doc["reasons"]
    outcomes = {s["id"]: s["outcome"] for s in doc["steps"]}
    for step in ("claim-file", "package", "vendor-signature", "vendor-signer", "vendor-protocol", "vendor-outputs",
                 "vendor-seal", "vendor-model", "vendor-metric", "our-dossier", "our-run", "comparison"):
        assert outcomes[step] == "passed", (step, doc["steps"])
    cmp = doc["comparison"]
    assert cmp["p_value"] > 0.5 and cmp["ci_low"] <= env["overall"].value <= cmp["ci_high"]
    assert {r["group"] for r in doc["languages"]} >= {"language:bn", "language:en"}
    assert all(r["vendor_value"] is not None for r in doc["languages"])
    assert doc["vendor_shipped_key"] == {"path": "vendor.pub.pem", "hint": env["vendor_key"].hint, "verified": False}
    md = (out / "claim-report.md").read_text(encoding="utf-8")
    assert "**Verdict: CONSISTENT**" in md and "## Per-language results" in md and "| bn |" in md


def test_claim_far_outside_the_ci_is_inconsistent(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    ours = env["overall"].value
    far = 0.05 if ours > 0.5 else 0.95
    claim = _write_claim(env["base"] / "far", value=far, model_digest=env["record"].model.digest)
    rc = main(["claim", "check", str(claim), "--packages", str(env["base"] / "packages"),
               "--report-dir", str(env["base"] / "far" / "report")])
    text = capsys.readouterr().out
    assert rc == 1 and text.startswith("INCONSISTENT")
    res = check_claim(load_claim(claim), _opts(env["base"]))
    assert res.verdict == "inconsistent" and _steps(res)["comparison"] == "failed"
    assert res.comparison is not None and not (res.comparison.ci_low <= far <= res.comparison.ci_high)
    assert res.comparison.p_value < 1e-6
    assert _steps(res)["vendor-record"] == "not applicable"


def test_vendor_record_signed_by_an_untrusted_key(env: dict[str, Any]) -> None:
    claim = _with_vendor(env, "mallory", sign_with=env["mallory_key"])  # the claim names the vendor's key
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    steps = {s.id: s for s in res.steps}
    assert steps["vendor-signer"].outcome == "failed"
    assert env["mallory_key"].hint in steps["vendor-signer"].detail
    assert steps["vendor-metric"].outcome == "not checked"  # an unauthenticated record is not read
    assert res.verdict == "inconsistent" and res.exit_code == 1
    html_text, md = to_html(res), to_markdown(res)
    assert "Vendor record signer identity" in html_text and "FAILED" in html_text
    assert "the record was not signed by the vendor signer you pinned" in md


def test_signer_named_by_sigstore_identity_rejects_a_key_signed_record(env: dict[str, Any]) -> None:
    claim = _with_vendor(env, "keyless")
    text = claim.read_text(encoding="utf-8").split("[vendor_record.signer]")[0]
    claim.write_text(text + '[vendor_record.signer.sigstore]\nissuer = "https://token.actions.githubusercontent.com"\n'
                     'repository = "example-corp/evals"\n', encoding="utf-8")
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    steps = {s.id: s for s in res.steps}
    assert steps["vendor-signer"].outcome == "failed" and "example-corp/evals" in steps["vendor-signer"].detail
    assert res.verdict == "inconsistent"


def test_signer_pinned_by_hint_alone_needs_the_key(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    claim = _with_vendor(env, "hint-only")
    text = claim.read_text(encoding="utf-8").replace('key = "vendor.pub.pem"\n', "")
    claim.write_text(text, encoding="utf-8")
    res = check_claim(load_claim(claim), _opts(env["base"]))
    assert _steps(res)["vendor-signer"] == "not checked" and res.verdict == "unverifiable"
    assert any("no public key with that hint" in x for x in res.limitations)
    # Given the vendor's public key (--trust-key), the hint finds it and everything checks.
    rc = main(["claim", "check", str(claim), "--packages", str(env["base"] / "packages"),
               "--trust-key", str(env["vendor_key"].public_key_path),
               "--trust-key", str(env["base"] / "config" / "trusted-keys"),
               "--report-dir", str(env["base"] / "hint-only" / "r"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["verdict"] == "consistent", doc["reasons"]


def test_vendor_record_with_another_package_seal(env: dict[str, Any]) -> None:
    claim = _with_vendor(env, "reseal", seal="f" * 64)
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    steps = {s.id: s for s in res.steps}
    assert steps["vendor-signature"].outcome == "passed" and steps["vendor-signer"].outcome == "passed"
    assert steps["vendor-seal"].outcome == "failed" and "f" * 64 in steps["vendor-seal"].detail
    assert res.verdict == "inconsistent"
    assert "different or altered package" in to_markdown(res)


def test_vendor_record_altered_after_signing(env: dict[str, Any]) -> None:
    claim = _with_vendor(env, "altered", tamper_after_signing=True)
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    assert _steps(res)["vendor-signature"] == "failed" and res.verdict == "inconsistent"


def test_vendor_record_stating_another_value(env: dict[str, Any]) -> None:
    claim = _with_vendor(env, "other-value", value=round(env["overall"].value - 0.1, 2))
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    assert _steps(res)["vendor-metric"] == "failed" and res.verdict == "inconsistent"


def test_no_run_of_ours_is_unverifiable(env: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claim = _write_claim(tmp_path / "c", value=0.8)
    rc = main(["claim", "check", str(claim), "--packages", str(env["base"] / "packages"),
               "--dossiers", str(tmp_path / "empty"), "--report-dir", str(tmp_path / "r")])
    assert rc == 6 and capsys.readouterr().out.startswith("UNVERIFIABLE")
    assert "No verified run of ours" in (tmp_path / "r" / "claim-report.md").read_text(encoding="utf-8")


def test_run_options_without_run_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claim = _write_claim(tmp_path / "c", value=0.8)
    assert main(["claim", "check", str(claim), "--limit", "5"]) == 2
    assert "only apply with --run" in capsys.readouterr().err
    assert main(["claim", "check", str(tmp_path / "missing.toml")]) == 2


def test_a_tampered_dossier_is_not_used(env: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "dossiers"
    shutil.copytree(env["base"] / "dossiers", copy)
    rec = next((copy / "mini-safety" / "runs").glob("*/record.json"))
    rec.write_bytes(rec.read_bytes().replace(b'"status":"complete"', b'"status":"incomplete"'))
    claim = _write_claim(tmp_path / "c", value=env["overall"].value)
    res = check_claim(load_claim(claim), CheckOptions(trusted=TrustPolicy.from_keys(default_trust_store()),
                                                      dossiers_dir=copy, packages_dir=env["base"] / "packages"))
    assert _steps(res)["our-dossier"] == "failed" and res.comparison is None and res.verdict == "unverifiable"


def test_claim_naming_another_seal_or_version(env: dict[str, Any], tmp_path: Path) -> None:
    claim = _write_claim(tmp_path / "seal", value=env["overall"].value)
    claim.write_text(claim.read_text(encoding="utf-8").replace('version = "1.0.0"', f'version = "1.0.0"\nseal = "{"e" * 64}"'),
                     encoding="utf-8")
    res = check_claim(load_claim(claim), _opts(env["base"]))
    assert _steps(res)["package"] == "failed" and res.verdict == "inconsistent"
    claim.write_text(claim.read_text(encoding="utf-8").replace(f'seal = "{"e" * 64}"', "").replace("1.0.0", "9.9.9"),
                     encoding="utf-8")
    res = check_claim(load_claim(claim), _opts(env["base"]))
    assert _steps(res)["package"] == "not checked" and res.verdict == "unverifiable"


def test_other_model_digest_finds_no_run(env: dict[str, Any], tmp_path: Path) -> None:
    claim = _write_claim(tmp_path / "c", value=0.8, model_digest="0" * 64)
    res = check_claim(load_claim(claim), _opts(env["base"]))
    assert _steps(res)["our-run"] == "not checked" and res.verdict == "unverifiable"


def test_report_escapes_everything_and_loads_nothing(env: dict[str, Any], tmp_path: Path) -> None:
    evil = '<script>alert("x")</script><img src="http://example.com/x.png">'
    claim = _write_claim(tmp_path / "c", value=env["overall"].value, vendor=evil)
    res = check_claim(load_claim(claim), _opts(env["base"]))
    page = to_html(res)
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    # Nothing to fetch: no element attribute points anywhere, no stylesheet link, no CSS url().
    assert ' src="' not in page and ' href="' not in page and "<link" not in page and "url(" not in page
    paths = write_reports(res, tmp_path / "out")
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["claim"]["vendor"]["name"] == evil


# ------------------------------------------------------------------ statistics


def test_binomial_test_and_interval_match_reference_values() -> None:
    # R: binom.test(7, 20, 0.5)$p.value = 0.2632; binom.test(3, 15, 0.1) = 0.1841;
    # binom.test(682, 925, 0.75) = 0.3825; Clopper-Pearson 7/20: [0.1539, 0.5922].
    assert binomial_test(7, 20, 0.5) == pytest.approx(0.26318, abs=1e-4)
    assert binomial_test(3, 15, 0.1) == pytest.approx(0.18406, abs=1e-4)
    assert binomial_test(682, 925, 0.75) == pytest.approx(0.38249, abs=1e-4)
    assert binomial_test(0, 10, 0.0) == 1.0 and binomial_test(1, 10, 0.0) == 0.0
    lo, hi = clopper_pearson(7, 20)
    assert lo == pytest.approx(0.15391, abs=1e-4) and hi == pytest.approx(0.59219, abs=1e-4)
    assert clopper_pearson(0, 10)[0] == 0.0 and clopper_pearson(10, 10)[1] == 1.0
    assert matches_claimed(0.8166, 0.82) and not matches_claimed(0.83, 0.82) and matches_claimed(0.883333, 0.883)


# ------------------------------------------------------------------ the claim format


def test_examples_parse() -> None:
    for path in sorted((REPO / "docs" / "examples").glob("claim*.toml")):
        c = load_claim(path).claim
        assert c.schema_version == 1 and c.package.name == "mini-safety"


@pytest.mark.parametrize("text, words", [
    ("schema_version = 2", "schema_version 2"),
    ("", "schema_version"),
    ("schema_version = 1\n[vendor]\nname='x'", "model"),
    ((REPO / "docs/examples/claim.toml").read_text().replace("value = 0.88", "value = 1.5"), "proportion"),
    ((REPO / "docs/examples/claim.toml").read_text().replace('version = "1.0.0"', 'versoin = "1.0.0"'), "unknown key"),
    ((REPO / "docs/examples/claim.toml").read_text() + '[vendor_record]\nrecord = "/etc/passwd"\n', "relative"),
])
def test_bad_claims_are_refused_with_the_field_named(text: str, words: str) -> None:
    with pytest.raises(ClaimError) as e:
        parse_claim(text)
    assert words in str(e.value)


_EXAMPLE = (REPO / "docs" / "examples" / "claim-with-record.toml").read_text(encoding="utf-8")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=400),
    st.builds(lambda i, j, s: _EXAMPLE[:i] + s + _EXAMPLE[j:], st.integers(0, len(_EXAMPLE)),
              st.integers(0, len(_EXAMPLE)), st.text(max_size=20)),
    st.builds(lambda a, b: "\n".join(x for i, x in enumerate(_EXAMPLE.splitlines()) if i % 7 != a) + b,
              st.integers(0, 6), st.sampled_from(["", "\n[metric]\n", "\nvalue = nan\n", "\nx = [[[[[[1]]]]]]\n"])),
))
def test_claim_parser_fuzz_raises_only_harness_errors(text: str) -> None:
    try:
        parse_claim(text)
    except HarnessError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300) | st.builds(lambda b: _EXAMPLE.encode() + b, st.binary(max_size=20)))
def test_claim_file_fuzz_raises_only_harness_errors(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "claim.toml"
        path.write_bytes(data)
        try:
            load_claim(path)
        except HarnessError:
            pass


# ------------------------------------------------------------------ rendering in Chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium from Debian's packages (tools/get_chromium.sh fetches it once into a cache)."""
    script = REPO / "tools" / "get_chromium.sh"
    try:
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"Chromium could not be obtained: {e}")
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.skip("Chromium could not be obtained from Debian's packages: "
                    + " | ".join(proc.stderr.strip().splitlines()[-3:]))
    return proc.stdout.strip().splitlines()[-1]


def _png_pixels(path: Path) -> tuple[int, int, set[bytes]]:
    """Width, height and the set of distinct pixel values of an 8-bit RGB(A) PNG (no Pillow needed)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    w = h = ctype = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    prev, colours = bytearray(stride), set()
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp * 2))
        prev = line
    return w, h, colours


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(env: dict[str, Any], chromium: str, tmp_path: Path) -> None:
    claim = _with_vendor(env, "render")
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    assert res.verdict == "consistent"
    page = write_reports(res, tmp_path / "report")["html"]
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    proc = subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    w, h, colours = _png_pixels(shot)
    assert (w, h) == (1200, 900)
    assert len(colours) > 20, "the screenshot is blank"
    assert bytes((0xDA, 0xFB, 0xE1)) in colours  # the green "consistent" banner was painted
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "Verdict: CONSISTENT" in dom
    assert '<table id="per-language">' in dom
    table = dom.split('<table id="per-language">', 1)[1].split("</table>", 1)[0]
    assert "<td>bn</td>" in table and "<td>en</td>" in table


# ------------------------------------------------------------------ a hostile claimant (issue 14)


def _signed_vendor(env: dict[str, Any], name: str, raw: bytes, *, predicate: dict[str, Any] | None = None,
                   outputs: bytes | None = None) -> Path:
    """A claim folder whose vendor record is ``raw``, signed by the vendor key over exactly those bytes."""
    folder = env["base"] / name
    run = folder / "vendor-run"
    run.mkdir(parents=True, exist_ok=True)
    out = outputs if outputs is not None else (env["run_dir"] / OUTPUTS_NAME).read_bytes()
    (run / OUTPUTS_NAME).write_bytes(out)
    (run / RECORD_NAME).write_bytes(raw)
    bundle = sign.sign_statement({RECORD_NAME: _sha(raw), OUTPUTS_NAME: _sha(out)}, PREDICATE_TYPE_RUN,
                                 predicate if predicate is not None else {"run_id": env["record"].run_id},
                                 env["vendor_key"])
    (run / BUNDLE_NAME).write_bytes(bundle)
    extra = '[vendor_record]\nrecord = "vendor-run/record.json"\noutputs = "vendor-run/outputs.jsonl"\n'
    return _write_claim(folder, value=env["overall"].value, extra=extra, model_digest=env["record"].model.digest)


def test_a_key_shipped_in_the_claim_folder_authenticates_nothing(env: dict[str, Any]) -> None:
    claim = _with_vendor(env, "shipped-key")  # the claim names vendor.pub.pem, which it ships itself
    res = check_claim(load_claim(claim), _opts(env["base"]))  # the reviewer pinned no vendor key
    steps = {s.id: s for s in res.steps}
    assert steps["vendor-signer"].outcome != "passed" and res.verdict == "unverifiable"
    assert steps["vendor-metric"].outcome == "not checked"
    assert res.vendor_shipped_key == {"path": "vendor.pub.pem", "hint": env["vendor_key"].hint, "verified": False}
    assert "UNVERIFIED" in to_markdown(res)


@pytest.mark.parametrize("path", ["../claims/record.json", "vendor-run/../../x/record.json", "/etc/passwd"])
def test_a_claim_path_outside_its_folder_is_refused(tmp_path: Path, path: str) -> None:
    claim = _write_claim(tmp_path / "c", value=0.5, extra=f'[vendor_record]\nrecord = "{path}"\n')
    with pytest.raises(ClaimError, match="claim folder|absolute"):
        load_claim(claim)


def test_a_claim_path_through_a_symlink_out_of_its_folder_is_refused(env: dict[str, Any], tmp_path: Path) -> None:
    claim = _with_vendor(env, "symlinked")
    run = claim.parent / "vendor-run"
    shutil.rmtree(run)
    run.symlink_to(env["run_dir"])  # our own run, outside the claim folder, passed off as the vendor's
    with pytest.raises(ClaimError, match="outside the claim folder"):
        check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))


def test_a_subset_vendor_run_cannot_make_a_claim_consistent(env: dict[str, Any]) -> None:
    from harness.record import Overrides

    rec = env["record"].model_copy(update={"overrides": Overrides(limit=40)})
    claim = _signed_vendor(env, "subset", rec.to_bytes())
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    steps = {s.id: s.outcome for s in res.steps}
    assert steps["vendor-signer"] == "passed" and steps["vendor-protocol"] == "failed"
    assert res.verdict != "consistent"
    assert res.vendor_run is not None and res.vendor_run["subset"] is True


def test_vendor_totals_that_its_outputs_do_not_give(env: dict[str, Any]) -> None:
    rec = env["record"]
    m0 = rec.metrics[0]
    bumped = [m.model_copy(update={"successes": m.successes + 1}) if m is m0 else m for m in rec.metrics]
    claim = _signed_vendor(env, "recount", rec.model_copy(update={"metrics": bumped}).to_bytes())
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    steps = {s.id: s for s in res.steps}
    assert steps["vendor-outputs"].outcome == "failed" and m0.metric in steps["vendor-outputs"].detail
    assert res.verdict == "inconsistent"


def test_vendor_outputs_missing_samples_of_the_package(env: dict[str, Any]) -> None:
    lines = (env["run_dir"] / OUTPUTS_NAME).read_bytes().splitlines(keepends=True)
    claim = _signed_vendor(env, "fewer", env["record"].to_bytes(), outputs=b"".join(lines[:-1]))
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    assert {s.id: s.outcome for s in res.steps}["vendor-outputs"] == "failed" and res.verdict == "inconsistent"


def test_a_signed_predicate_contradicting_the_record(env: dict[str, Any]) -> None:
    rec = env["record"]
    claim = _signed_vendor(env, "predicate", rec.to_bytes(),
                           predicate={"run_id": rec.run_id, "seal": "f" * 64, "model_digest": rec.model.digest})
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    steps = {s.id: s for s in res.steps}
    assert steps["vendor-signature"].outcome == "failed" and "predicate" in steps["vendor-signature"].detail
    assert res.verdict == "inconsistent"


def test_a_record_with_duplicate_keys_is_refused(env: dict[str, Any]) -> None:
    raw = env["record"].to_bytes()
    twice = b'{"status":"incomplete",' + raw[1:]  # Python would keep the last "status", others the first
    claim = _signed_vendor(env, "dupes", twice)
    res = check_claim(load_claim(claim), _opts(env["base"], vendor_trusted=_pin(env)))
    steps = {s.id: s for s in res.steps}
    assert steps["vendor-signature"].outcome == "failed" and "duplicate" in steps["vendor-signature"].detail
    assert res.verdict == "inconsistent"


def test_vendor_key_on_the_command_line(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    claim = _with_vendor(env, "cli-pin")
    base = ["claim", "check", str(claim), "--packages", str(env["base"] / "packages"), "--json",
            "--report-dir", str(env["base"] / "cli-pin" / "r")]
    assert main(base) == 6  # not pinned: unverifiable
    capsys.readouterr()
    assert main([*base, "--vendor-key", str(env["mallory_key"].public_key_path)]) == 1  # pinned, another signer
    doc = json.loads(capsys.readouterr().out)
    assert {s["id"]: s["outcome"] for s in doc["steps"]}["vendor-signer"] == "failed"
    assert main([*base, "--vendor-identity", "issuer=https://token.actions.githubusercontent.com"]) == 2
    assert "vendor-identity" in capsys.readouterr().err


@pytest.mark.parametrize("pin", ["real", "other"])
def test_official_package_pinned_in_the_trust_policy(env: dict[str, Any], tmp_path: Path, pin: str) -> None:
    from harness.signing.policy import OfficialPackage, PackageStatus

    seal = env["record"].package.seal if pin == "real" else "e" * 64
    policy = TrustPolicy.from_keys(default_trust_store()).model_copy(
        update={"official_packages": (OfficialPackage(name="mini-safety", seal=seal),)})
    claim = _write_claim(tmp_path / "c", value=env["overall"].value, model_digest=env["record"].model.digest)
    res = check_claim(load_claim(claim), CheckOptions(trusted=policy, dossiers_dir=env["base"] / "dossiers",
                                                      packages_dir=env["base"] / "packages"))
    if pin == "real":
        assert res.package_status is PackageStatus.OFFICIAL and _steps(res)["package"] == "passed"
        assert res.our_run is not None and res.our_run["package_status"] == "official"
    else:
        assert res.package_status is PackageStatus.NOT_OFFICIAL and _steps(res)["package"] == "failed"
        assert res.verdict == "unverifiable" and res.as_dict()["package_status"] == "not-official"
