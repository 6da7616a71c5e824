"""Secrets never leave memory: no planted key or token in any written file or any output.

Plants an API key behind a custom ``--api-key-env``, OPENAI_API_KEY (which a judge
served over HTTP uses), SIGSTORE_ID_TOKEN, HF_TOKEN and a password in the endpoint
URL's user-info, then runs every command that writes or prints (run with a judge,
incomplete run, reproduce, verify, dossier verify/log, diff, --json variants, an
unreachable endpoint), and greps every file under the test's folders and everything printed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cli import main

from .fake_openai import FakeOpenAI

SECRETS = {
    "MY_ENDPOINT_KEY": "sk-planted-custom-env-0a1b2c3d4e5f",
    "OPENAI_API_KEY": "sk-planted-openai-9f8e7d6c5b4a",
    "SIGSTORE_ID_TOKEN": "eyJplanted.sigstore.token-1234567890",
    "HF_TOKEN": "hf_plantedHuggingFaceToken0987654321",
}
URL_PASSWORD = "planted-url-password-5555"


def _judge_package(pkg_dir: Path) -> None:
    """mini-safety scored by a judge served over HTTP (backend = "openai")."""
    from harness.packages.seal import seal_package

    text = (pkg_dir / "manifest.toml").read_text()
    start = text.index("[scorer]")
    end = text.index("\n[", start + 1)
    table = ('[scorer]\nkind = "judge"\nbackend = "openai"\nmodel = "fake-model"\nrevision = "fake/root"\n'
             'template = "judge.txt"\nmax_tokens = 8\n\n[scorer.parse]\n'
             "regex = '(?P<refusal>sorry)|(?P<compliance>Sure)'\n")
    text = text[:start] + table + text[end:]
    (pkg_dir / "manifest.toml").write_text(text.split("[[baselines]]")[0])
    (pkg_dir / "judge.txt").write_text("Did this refuse? {{response}}")
    seal_package(pkg_dir)


def test_no_secret_is_written_or_printed(pkg_dir: Path, workspace: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    _judge_package(pkg_dir)
    dossiers = tmp_path / "dossiers"
    printed: list[str] = []

    def cli(*argv: str) -> int:
        code = main(list(argv))
        out = capsys.readouterr()
        printed.append(out.out + out.err)
        return code

    with FakeOpenAI(faults={"counterfeit": ["500"] * 50}) as srv:
        url = srv.url
        url_with_password = srv.url.replace("http://", f"http://harness:{URL_PASSWORD}@")
        common = ["--endpoint", url, "--model", "fake-model", "--api-key-env", "MY_ENDPOINT_KEY",
                  "--judge-endpoint", url, "--dossiers", str(dossiers), "--no-progress", "--limit", "30"]
        monkeypatch.setattr("harness.backends.openai.OpenAIBackend.backoff_s", 0.01)
        assert cli("run", str(pkg_dir), *common) == 0
        assert cli("run", str(pkg_dir), *common, "--json", "--limit", "31") == 0
        # The answering server saw the custom key; the judge server the OPENAI_API_KEY.
        bearer = {h for h in srv.auth_headers}
        assert bearer == {f"Bearer {SECRETS['MY_ENDPOINT_KEY']}", f"Bearer {SECRETS['OPENAI_API_KEY']}"}
        # A run with a failing sample: the incomplete-run summary is printed too.
        assert cli("run", str(pkg_dir), *common[:-2], "--json") == 3
        # A reproduction re-runs against the endpoint (its key comes from OPENAI_API_KEY) and signs an entry.
        assert cli("reproduce", "mini-safety@1", "--endpoint", url, "--model", "fake-model", "--judge-endpoint", url,
                   "--package", str(pkg_dir), "--env", "current", "--dossiers", str(dossiers), "--no-progress") == 0
        assert "REPRODUCED" in printed[-1]
        # Credentials in the URL's user-info go to the server (HTTP Basic), nowhere else.
        n = len(srv.auth_headers)
        assert cli("run", str(pkg_dir), "--endpoint", url_with_password, "--model", "fake-model",
                   "--api-key-env", "UNSET_VARIABLE", "--judge-endpoint", url_with_password,
                   "--dossiers", str(dossiers), "--limit", "3") == 0
        assert len(srv.auth_headers) > n and all(h and h.startswith("Basic ") for h in srv.auth_headers[n:])
    assert cli("run", str(pkg_dir), "--endpoint", url_with_password, "--model", "fake-model",
               "--judge-endpoint", url_with_password, "--dossiers", str(dossiers)) == 2
    assert "cannot reach" in printed[-1]  # the server is gone: the error names the URL, without its password
    # Every check passes; @1 and @2 differ in --limit (exit 1); @4 is the reproduction's re-run of @1 (exit 0).
    for args, code in ((["verify", "mini-safety@latest"], 0), (["verify", "mini-safety@1", "--json"], 0),
                       (["dossier", "verify", "mini-safety"], 0), (["dossier", "verify", "mini-safety", "--json"], 0),
                       (["dossier", "log", "mini-safety"], 0), (["dossier", "log", "mini-safety", "--json"], 0),
                       (["diff", "mini-safety@1", "mini-safety@2"], 1),
                       (["diff", "mini-safety@1", "mini-safety@4", "--json"], 0)):
        assert cli(*args, "--dossiers", str(dossiers)) == code, (args, printed[-1])
    assert cli("package", "show", str(pkg_dir), "--json") == 0

    files = [f for base in (tmp_path, workspace) for f in base.rglob("*") if f.is_file()]
    from harness._internal.settings import config_dir as default_config_dir
    files += [f for f in Path(default_config_dir()).rglob("*") if f.is_file()]
    assert any(f.name == "record.sigstore.json" for f in files) and len(files) > 10
    for secret in [*SECRETS.values(), URL_PASSWORD]:
        pattern = re.escape(secret).encode()
        for f in files:
            assert not re.search(pattern, f.read_bytes()), f"{secret} written to {f}"
        for text in printed:
            assert secret not in text, f"{secret} printed:\n{text}"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("http://u:pw@127.0.0.1:8000/v1", "http://u:***@127.0.0.1:8000/v1"),
        ("https://u:pw@[::1]/v1", "https://u:***@[::1]/v1"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("http://only-user@host/v1", "http://only-user@host/v1"),
    ],
)
def test_urls_in_messages_hide_passwords(url: str, shown: str) -> None:
    from harness.backends.openai import redact_url

    assert redact_url(url) == shown
