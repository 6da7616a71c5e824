"""The ``harness`` command: a thin layer of argument parsing and printing over the library.

Heavy imports (torch, transformers, datasets) happen inside the commands that need
them, so ``harness --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import HarnessError

DEFAULT_PACKAGE = "mini-safety"

_EPILOG = """\
examples:
  harness run                                  # the default package on the embedded model
  harness run mini-safety --seed 7 --json      # another seed, summary as JSON
  harness verify mini-safety@latest            # signature, signer and digests of one run
  harness diff mini-safety@1 mini-safety@2     # what changed between two runs
  harness dossier verify mini-safety           # the whole hash chain and every signature
  harness package check packages/mini-safety   # is the package exactly as sealed?

exit codes: 0 ok, 1 verification failed / changed, 2 bad input, 3 run incomplete
"""


def _add_trust(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-key", action="append", type=Path, default=None, metavar="PATH",
        help="public key (PEM) or folder of keys to accept as signers; repeatable "
        "(default: the trust store in your harness config folder)",
    )


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Run sealed LLM safety benchmarks and keep signed, hash-chained records of every run.",
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")

    run = sub.add_parser(
        "run", help="run a sealed package against a model and record the result",
        description="Check the package seal, verify its data, generate an answer per sample, score, "
        "sign the run record and append it to the package's dossier.",
        epilog="examples:\n  harness run\n  harness run packages/mini-safety --model path/to/hf-model\n"
        "  harness run mini-safety --seed 7 --max-tokens 32 --json\n"
        "  harness run xstest --mirror ../shared/data",
        formatter_class=fmt,
    )
    run.add_argument("package", nargs="?", default=DEFAULT_PACKAGE, help=f"package folder or name (default: {DEFAULT_PACKAGE})")
    run.add_argument("--model", help="local model folder (default: the embedded tiny-chat model)")
    run.add_argument("--backend", default="transformers", choices=["transformers"], help="model backend")
    run.add_argument("--mirror", type=Path, help="folder mirroring upstream data files (or set HARNESS_DATA_MIRROR)")
    run.add_argument("--seed", type=int, help="override the package's run seed (recorded as an override)")
    run.add_argument("--max-tokens", type=int, help="override max tokens (recorded)")
    run.add_argument("--temperature", type=float, help="override temperature (recorded)")
    run.add_argument("--top-p", type=float, help="override top_p (recorded)")
    run.add_argument("--threads", type=int, default=1, help="CPU threads for the transformers backend (default 1: reproducible)")
    run.add_argument("--limit", type=int, help="run only the first N samples by id (recorded)")
    run.add_argument("--dossiers", type=Path, help="dossiers folder (default: ./dossiers or HARNESS_DOSSIERS)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_json(run)

    ver = sub.add_parser(
        "verify", help="verify one run: signature, signer, record and outputs digests",
        epilog="examples:\n  harness verify mini-safety@latest\n  harness verify dossiers/mini-safety/runs/<run-id>/record.json --trust-key alice.pub",
        formatter_class=fmt,
    )
    ver.add_argument("ref", help="record.json, run folder, or PACKAGE@N / PACKAGE@latest / PACKAGE@<run-id-prefix>")
    _add_trust(ver)
    ver.add_argument("--dossiers", type=Path, help="dossiers folder")
    _add_json(ver)

    dif = sub.add_parser(
        "diff", help="what differs between two runs (inputs, metrics with CIs, verdict flips)",
        epilog="examples:\n  harness diff mini-safety@1 mini-safety@latest\n  harness diff runA/record.json runB/record.json --json",
        formatter_class=fmt,
    )
    dif.add_argument("run_a")
    dif.add_argument("run_b")
    dif.add_argument("--dossiers", type=Path, help="dossiers folder")
    _add_json(dif)

    pkg = sub.add_parser("package", help="seal, check, list and show packages",
                         epilog="examples:\n  harness package list\n  harness package check mini-safety\n"
                         "  harness package seal packages/my-bench", formatter_class=fmt)
    psub = pkg.add_subparsers(dest="package_command", metavar="<action>")
    for name, helptext in (("seal", "compute and write seal.json"), ("check", "verify a package against its seal"),
                           ("show", "print a package's manifest summary and seal")):
        p = psub.add_parser(name, help=helptext, epilog=f"example:\n  harness package {name} mini-safety", formatter_class=fmt)
        p.add_argument("package", help="package folder or name")
        if name == "seal":
            p.add_argument("--mirror", type=Path, help="folder mirroring upstream data (or set HARNESS_DATA_MIRROR)")
        _add_json(p)
    pl = psub.add_parser("list", help="list packages with version, license and seal state",
                         epilog="example:\n  harness package list --json", formatter_class=fmt)
    pl.add_argument("--packages", type=Path, help="packages folder (default: ./packages or HARNESS_PACKAGES)")
    _add_json(pl)

    dos = sub.add_parser("dossier", help="verify or list a package's dossier",
                         epilog="examples:\n  harness dossier verify mini-safety\n  harness dossier log mini-safety",
                         formatter_class=fmt)
    dsub = dos.add_subparsers(dest="dossier_command", metavar="<action>")
    dv = dsub.add_parser("verify", help="check the hash chain, every signature and every digest",
                         epilog="example:\n  harness dossier verify mini-safety --trust-key team.pub", formatter_class=fmt)
    dv.add_argument("package")
    _add_trust(dv)
    dv.add_argument("--expect-head", help="the head digest you trust (detects entries removed from the end)")
    dv.add_argument("--dossiers", type=Path)
    _add_json(dv)
    dl = dsub.add_parser("log", help="list the entries", epilog="example:\n  harness dossier log mini-safety", formatter_class=fmt)
    dl.add_argument("package")
    dl.add_argument("--dossiers", type=Path)
    _add_json(dl)

    key = sub.add_parser("key", help="show (creating if needed) the local signing key",
                         epilog="example:\n  harness key show", formatter_class=fmt)
    ksub = key.add_subparsers(dest="key_command", metavar="<action>")
    ks = ksub.add_parser("show", help="print the key's path, public key and Sigstore key hint",
                         epilog="example:\n  harness key show --json", formatter_class=fmt)
    _add_json(ks)
    return parser


# ---------------------------------------------------------------------------- helpers


def _emit_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _trusted(paths: Sequence[Path] | None) -> list[Any]:
    from harness import sign

    return sign.load_public_keys(paths) if paths else sign.default_trust_store()


def _resolve_run(ref: str, dossiers: Path | None) -> tuple[Path, Path]:
    """(record path, outputs path) for a path or a PACKAGE@N reference."""
    from harness.dossier import Dossier
    from harness.verify import run_files

    p = Path(ref)
    if p.exists():
        record, _, outputs = run_files(p)
        return record, outputs
    name, _, which = ref.partition("@")
    d = Dossier.for_package(name, dossiers)
    if not d.log.exists():
        raise HarnessError(
            f"{ref!r} is neither a file nor a known dossier entry (no dossier at {d.root})",
            hint="give a record.json path, or PACKAGE@N with the package's name",
        )
    entry = d.resolve(which or "latest")
    return d.root / entry.record.path, d.root / entry.outputs.path


# ---------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    from harness import render
    from harness.run import RunOptions, run_package

    show_progress = not args.no_progress and not args.json and sys.stderr.isatty()
    result = run_package(
        RunOptions(
            package=args.package, model=args.model, backend=args.backend, mirror=args.mirror, seed=args.seed,
            max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p, threads=args.threads,
            dossiers_dir=args.dossiers, limit=args.limit, progress=show_progress,
        )
    )
    for n in result.notices:
        print(f"NOTICE: {n}", file=sys.stderr)
    if result.key_created:
        print(f"created a signing key at {result.key_created} (its public key was added to your trust store)", file=sys.stderr)
    if args.json:
        _emit_json(render.run_summary(result))
    else:
        render.print_run(result)
    return 3 if result.record.status != "complete" else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.verify import verify_record

    record, _ = _resolve_run(args.ref, args.dossiers)
    res = verify_record(record, _trusted(args.trust_key))
    out = {"ok": True, "record": str(res.record_path), "run_id": res.record.run_id, "signer": res.signer,
           "package": res.record.package.name, "seal": res.record.package.seal, "subjects": res.subjects}
    if args.json:
        _emit_json(out)
    else:
        print(f"OK  {res.record_path}")
        print(f"    run {res.record.run_id} of {res.record.package.name} {res.record.package.version}")
        print(f"    signed by {res.signer}; record and outputs digests match the signature")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from harness import render
    from harness.diff import diff_runs
    from harness.record import parse_record

    ra, oa = _resolve_run(args.run_a, args.dossiers)
    rb, ob = _resolve_run(args.run_b, args.dossiers)
    report = diff_runs(parse_record(ra), parse_record(rb), oa, ob)
    if args.json:
        _emit_json(report.as_dict())
    else:
        render.print_diff(report)
    return 0 if report.no_change else 1


def cmd_package(args: argparse.Namespace) -> int:
    from harness import package as pk

    action = args.package_command
    if action == "list":
        pkgs = pk.list_packages(args.packages)
        rows = []
        for p in pkgs:
            state = "unsealed"
            if p.seal is not None:
                try:
                    pk.check_package(p)
                    state = "sealed"
                except HarnessError:
                    state = "ALTERED"
            summary = p.seal.summary if p.seal else None
            rows.append({"name": p.name, "version": p.version, "license": p.manifest.license,
                         "samples": summary.samples if summary else None,
                         "languages": list(summary.languages) if summary else [],
                         "notice": p.manifest.usage_notice, "state": state, "path": str(p.root)})
        if args.json:
            _emit_json(rows)
        elif not rows:
            print("no packages found (looked in ./packages; set HARNESS_PACKAGES or pass --packages)")
        else:
            from harness import render

            render.print_packages(rows)
        return 0
    p = pk.resolve_package(args.package, read_seal=action != "seal")
    if action == "seal":
        seal = pk.seal_package(p.root, mirror=args.mirror)
        out = {"package": seal.package, "version": seal.version, "seal": seal.seal, "files": len(seal.files)}
        _emit_json(out) if args.json else print(f"sealed {seal.package} {seal.version}: {seal.seal} ({len(seal.files)} files)")
        return 0
    if action == "check":
        pk.check_package(p)
        out = {"ok": True, "package": p.name, "seal": p.seal.seal}  # type: ignore[union-attr]
        _emit_json(out) if args.json else print(f"OK  {p.name} {p.version} matches its seal {p.seal.seal}")  # type: ignore[union-attr]
        return 0
    if action == "show":
        info = {"path": str(p.root), "manifest": p.manifest.canonical(),
                "seal": p.seal.model_dump(mode="json") if p.seal else None}
        if args.json:
            _emit_json(info)
        else:
            from harness import render

            render.print_package(p)
        return 0
    raise HarnessError("missing action", hint="harness package {seal,check,list,show} --help")


def cmd_dossier(args: argparse.Namespace) -> int:
    from harness import render
    from harness.dossier import Dossier

    d = Dossier.for_package(args.package, args.dossiers)
    if args.dossier_command == "verify":
        report = d.verify(_trusted(args.trust_key), expect_head=args.expect_head)
        if args.json:
            _emit_json(report.as_dict())
        else:
            render.print_dossier_report(report)
        return 0 if report.ok else 1
    if args.dossier_command == "log":
        entries = [e.model_dump(mode="json") for e in d.entries()]
        if args.json:
            _emit_json(entries)
        else:
            render.print_log(d, entries)
        return 0
    raise HarnessError("missing action", hint="harness dossier {verify,log} --help")


def cmd_key(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from harness import sign

    key = sign.load_or_create_key()
    pub = key.private_key.public_key()
    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    info = {"path": str(key.path), "hint": sign.key_hint(pub), "public_key_pem": pem, "created": key.created}
    if args.json:
        _emit_json(info)
    else:
        print(f"signing key: {key.path}{' (created now)' if key.created else ''}")
        print(f"key hint:    {info['hint']}")
        print(pem, end="")
    return 0


COMMANDS = {"run": cmd_run, "verify": cmd_verify, "diff": cmd_diff, "package": cmd_package,
            "dossier": cmd_dossier, "key": cmd_key}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    sub_action = {"package": "package_command", "dossier": "dossier_command", "key": "key_command"}.get(args.command)
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
        print("interrupted; nothing was appended to the dossier", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
