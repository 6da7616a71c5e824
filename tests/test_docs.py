"""The commands the README and docs show must work as written, so the docs cannot drift.

Two checks: every `harness ...` line in a shell block of README.md and docs/*.md parses
with today's parser (every documented command and flag exists), and every block marked
``<!-- runnable -->`` runs as written, line by line, in a scratch copy of the project.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.parser import UsageError, build_parser

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- runnable -->\s*\n)?```(sh|bash|console|python)\n(.*?)```", re.DOTALL)
ALLOWED_EXIT = {"diff": {0, 1}}
"""`harness diff` exits 1 when the runs differ, which is what a tour shows."""


def _blocks(lang: str = "sh") -> list[tuple[Path, bool, str]]:
    """(document, marked runnable, text) of every shell block (``lang="python"``: Python blocks)."""
    out = []
    for doc in DOCS:
        for m in BLOCK.finditer(doc.read_text(encoding="utf-8")):
            if (m.group(2) == "python") == (lang == "python"):
                out.append((doc, bool(m.group(1)), m.group(3)))
    return out


def _commands(block: str) -> list[str]:
    """The block's command lines, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = []
    for raw in joined.splitlines():
        line = raw.strip()  # a trailing comment is bash's (and shlex's) to skip
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _harness_lines() -> list[tuple[str, str]]:
    out = []
    for doc, _, block in _blocks():
        for line in _commands(block):
            if line.startswith("harness ") and not re.search(r"<[^>]*>|\.\.\.|…", line):
                out.append((doc.name, line))
    return out


@pytest.mark.parametrize(("doc", "line"), _harness_lines())
def test_every_documented_command_parses(doc: str, line: str) -> None:
    argv = shlex.split(line.split("|")[0].split(">")[0], comments=True)[1:]
    try:
        build_parser().parse_args(argv)
    except UsageError as e:
        pytest.fail(f"{doc}: `{line}` does not parse: {e.message}")
    except SystemExit as e:  # --help and --version exit 0
        assert e.code == 0, f"{doc}: `{line}`"


def test_there_are_runnable_blocks() -> None:
    runnable = [(doc.name, block) for doc, marked, block in _blocks() if marked]
    assert {doc for doc, _ in runnable} >= {"README.md", "claims.md"}, runnable


@pytest.mark.slow
@pytest.mark.parametrize("index", range(sum(1 for _, marked, _ in _blocks() if marked)))
def test_runnable_blocks_run_as_written(index: int, tmp_path: Path) -> None:
    doc, _, block = [b for b in _blocks() if b[1]][index]
    work = tmp_path / "project"
    for part in ("packages/mini-safety", "lockfiles", "docs/examples"):
        shutil.copytree(REPO / part, work / part)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HARNESS_DOSSIERS": str(work / "dossiers"), "COLUMNS": "100"}
    for line in _commands(block):
        if line.startswith("source "):
            continue  # the test's PATH already has the project's environment
        line = line.replace("/tmp/", f"{tmp_path}/")
        proc = subprocess.run(["bash", "-c", f"set -o pipefail; {line}"], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)
        words = line.split()
        allowed = ALLOWED_EXIT.get(words[1], {0}) if words[0] == "harness" and len(words) > 1 else {0}
        assert proc.returncode in allowed, f"{doc.name}: `{line}` exited {proc.returncode}\n{proc.stderr[-2000:]}"


@pytest.mark.slow
def test_runnable_python_blocks_run_as_written(tmp_path: Path) -> None:
    """The README's notebook example, as a user would paste it, from the project folder."""
    blocks = [(doc, block) for doc, marked, block in _blocks("python") if marked]
    assert blocks, "the README's Python example should be marked runnable"
    work = tmp_path / "project"
    for part in ("packages/mini-safety", "lockfiles"):
        shutil.copytree(REPO / part, work / part)
    env = {**os.environ, "HARNESS_DOSSIERS": str(work / "dossiers")}
    for doc, block in blocks:
        proc = subprocess.run([sys.executable, "-c", block], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{doc.name}: the Python example failed\n{proc.stderr[-3000:]}"
