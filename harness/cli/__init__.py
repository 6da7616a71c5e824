"""The ``harness`` command: a thin parser over the library (``harness.cli:main``).

:mod:`.parser` builds the argument parser; :mod:`.commands` holds one function per
command, each calling the library and printing; :func:`main` maps errors to exit codes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from harness.cli.commands import COMMANDS
from harness.cli.parser import build_parser
from harness.errors import HarnessError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    args._argv = list(sys.argv[1:] if argv is None else argv)
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
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was appended to the dossier (a run's finished samples are kept: "
              "the same command resumes it)", file=sys.stderr)
        return 130
