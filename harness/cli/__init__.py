"""The ``harness`` command: a thin parser over the library (``harness.cli:main``).

:mod:`.parser` builds the argument parser; :mod:`.commands` holds one function per
command, each calling the library and printing; :func:`main` maps errors to exit codes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from harness.cli.commands import COMMANDS
from harness.cli.parser import UsageError, build_parser
from harness.errors import HarnessError

__all__ = ["build_parser", "main"]


def _json_error(message: str, hint: str | None, exit_code: int) -> None:
    """With ``--json``, every failure is also one JSON object on stdout (scripts parse stdout)."""
    print(json.dumps({"error": message, "hint": hint, "exit_code": exit_code}, ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    wants_json = "--json" in argv
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print(e.usage.rstrip(), file=sys.stderr)
        print(f"{e.prog}: error: {e.message}", file=sys.stderr)
        if wants_json:
            _json_error(e.message, f"{e.prog} --help", 2)
        return 2
    if not args.command:
        parser.print_help()
        return 2
    args._argv = argv
    sub_action = {"package": "package_command", "dossier": "dossier_command", "key": "key_command",
                  "judge": "judge_command", "baseline": "baseline_command",
                  "claim": "claim_command"}.get(args.command)
    if sub_action and not getattr(args, sub_action):
        parser.parse_args([args.command, "--help"])
    try:
        return COMMANDS[args.command](args)
    except HarnessError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        if getattr(args, "json", False):
            _json_error(e.message, e.hint, e.exit_code)
        return e.exit_code
    except KeyboardInterrupt:
        message = ("interrupted; nothing was appended to the dossier (a run's finished samples are kept: "
                   "the same command resumes it)")
        print(message, file=sys.stderr)
        if getattr(args, "json", False):
            _json_error(message, "run the same command again to resume", 130)
        return 130
