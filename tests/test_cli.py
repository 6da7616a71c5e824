"""The command line: help everywhere, with examples; clear errors and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.cli.parser import build_parser


def _subcommands() -> list[list[str]]:
    out = [["run"], ["verify"], ["diff"], ["key", "show"]]
    out += [["package", a] for a in ("seal", "check", "list", "show", "export", "import")]
    out += [["dossier", a] for a in ("verify", "log", "approve")]
    out += [["reproduce"], ["rescore"], ["baseline", "update"]]
    return out


def test_top_level_help_lists_commands_and_examples() -> None:
    text = build_parser().format_help()
    for cmd in ("run", "verify", "diff", "package", "dossier"):
        assert cmd in text
    assert "examples:" in text


@pytest.mark.parametrize("argv", _subcommands(), ids=lambda a: " ".join(a))
def test_every_command_has_help_with_an_example(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"harness {argv[0]}" in out


_HELP_IMPORT_PROBE = """
import sys
from harness.cli import main
try:
    main(['--help'])
except SystemExit as exc:
    code = exc.code
else:
    code = 'no SystemExit'
print('EXIT', code)
print('HEAVY', sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))
"""


def test_console_script_help_is_fast_to_import() -> None:
    # `harness --help` really runs, and imports no torch, transformers or datasets.
    proc = subprocess.run([sys.executable, "-c", _HELP_IMPORT_PROBE], capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    assert "examples:" in proc.stdout  # the help text was printed, so main really ran
    assert lines[-2] == "EXIT 0"
    assert lines[-1] == "HEAVY []"


def test_unknown_package_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "no-such-package"]) == 2
    err = capsys.readouterr().err
    assert "no package 'no-such-package'" in err and "hint:" in err


def test_package_commands(pkg_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["package", "check", str(pkg_dir)]) == 0
    assert "matches its seal" in capsys.readouterr().out
    (pkg_dir / "data" / "prompts.jsonl").write_text("{}\n")
    assert main(["package", "check", str(pkg_dir)]) == 1
    err = capsys.readouterr().err
    assert "data/prompts.jsonl" in err
    assert main(["package", "list", "--packages", str(pkg_dir.parent), "--json"]) == 0
    assert '"state": "ALTERED"' in capsys.readouterr().out


def test_module_entry_point_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("harness ")
