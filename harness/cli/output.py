"""What every command prints the same way: JSON on stdout, the user's trust, a new key.

Shared by the command modules (commands, suite, view) so a flag or a message means the
same thing in each; imports nothing else of the CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def emit_json(obj: Any) -> None:
    """One JSON document on stdout (``--json``)."""
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str), flush=True)


def trusted(args: argparse.Namespace) -> Any:
    """The signers the user trusts: ``--trust-policy`` / ``--trust-key``, else their own trust store."""
    from harness.signing.policy import resolve_trust

    return resolve_trust(args.trust_policy, args.trust_key)


def key_notice(created: Path | None) -> None:
    """Tell the user, once, that signing made them a key (and trusted it)."""
    if created:
        print(f"created a signing key at {created} (its public key was added to your trust store)", file=sys.stderr)
