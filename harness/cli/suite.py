"""``harness suite run`` and the suite-record forms of ``harness verify`` and ``harness reproduce``.

Kept beside :mod:`harness.cli.commands` (which dispatches here) so the suite's options
and printing live in one place; like every command, each calls one library function.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.cli.output import emit_json, key_notice
from harness.errors import HarnessError

SUITE_EPILOG = """\
examples:
  harness suite run docs/examples/suite.toml --mirror ../shared/data
  harness suite run release.toml --jobs 4 --json > suite.json
  harness suite run release.toml --executor ray --jobs 4                 # a local Ray instance with 4 CPUs
  harness suite run release.toml --executor ray --ray-address HOST:6379  # an existing Ray cluster
  harness verify suite:example-release            # the latest record of that suite, and every run in it
  harness suite gate release.toml                 # decide again after its runs were reviewed (docs/review.md)
  harness reproduce dossiers/_suites/example-release/<id>/suite.json

exit codes: 0 the suite's gate passes, 7 it fails (a required baseline or an acceptance
criterion FAILed), 8 awaiting review (the suite or a package requires review: label and
approve the runs, then `harness suite gate FILE`), 3 a pair could not finish (run the same
command again to continue; finished pairs are not repeated), 2 bad input, 130 interrupted
(finished pairs are kept)"""


def add_suite_parser(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """The ``suite`` command and its ``run`` action."""
    sui = sub.add_parser("suite", help="run many packages x models in one command, gate them as one, sign a suite record",
                         description="A suite file (TOML, docs/suite-format.md) lists packages (with overrides such "
                         "as a subset), models (in-process, a vLLM server the suite launches, or an endpoint) and "
                         "the gate (required baselines, per-language acceptance criteria).",
                         epilog=SUITE_EPILOG, formatter_class=fmt)
    ssub = sui.add_subparsers(dest="suite_command", metavar="<action>")
    run = ssub.add_parser(
        "run", help="run every package x model pair (resuming an interrupted suite) and sign the suite record",
        description="Run every package x model pair of the suite file: each pair is an ordinary signed run in its "
        "package's dossier; when all have finished, the suite's gate is decided and a signed suite record listing "
        "every run by record digest is written under dossiers/_suites/<suite>/<id>/. Running the same command "
        "again after an interruption continues: finished pairs are not repeated.",
        epilog=SUITE_EPILOG, formatter_class=fmt)
    run.add_argument("file", type=Path, help="the suite file (TOML)")
    run.add_argument("--mirror", type=Path, help="folder mirroring upstream data, for packages whose entry names no "
                     "mirror (or set HARNESS_DATA_MIRROR)")
    run.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="pairs run at once (default 1); in-process models still generate one request at a time, "
                     "servers answer concurrently")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="where pairs generate: threads of this process (default), or Ray workers that stream "
                     "answers back while this process journals, signs and appends (needs `uv sync --extra ray`; "
                     "docs/scale-out.md)")
    run.add_argument("--ray-address", metavar="ADDRESS",
                     help="with --executor ray: the cluster to use (e.g. HOST:6379 or ray://HOST:10001); "
                     "without it a local Ray instance with --jobs CPUs is started and stopped")
    run.add_argument("--vllm-python", metavar="PATH", help="python of the environment with vLLM (or HARNESS_VLLM_PYTHON)")
    run.add_argument("--sign", choices=["key", "sigstore"], default="key",
                     help="who signs the runs and the suite record: the local key (default) or Sigstore keyless")
    run.add_argument("--sigstore-staging", action="store_true", help="sign with Sigstore's staging instance (tests)")
    run.add_argument("--dossiers", type=Path, help="dossiers folder (default: ./dossiers or HARNESS_DOSSIERS)")
    run.add_argument("--quiet", action="store_true", help="no per-pair progress lines on stderr")
    run.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    gat = ssub.add_parser(
        "gate", help="decide a finished suite's gate again from its signed record, after its runs were reviewed",
        description="Verify the suite's latest record (or --suite-id) and every run and dossier it lists, check the "
        "suite file is the one it ran with, then decide the gate with each reviewed run's adjudicated numbers. "
        "AWAITING REVIEW (exit 8) while a run that must be reviewed has unlabelled uncertain answers or no "
        "approval after its last label (docs/review.md). Writes nothing.",
        epilog=SUITE_EPILOG, formatter_class=fmt)
    gat.add_argument("file", type=Path, help="the suite file (TOML) the suite ran with")
    gat.add_argument("--suite-id", metavar="ID", help="a suite record's id (prefix); default: the latest")
    gat.add_argument("--trust-policy", type=Path, metavar="FILE", help="trust policy (TOML) of accepted signers")
    gat.add_argument("--trust-key", action="append", type=Path, default=None, metavar="PATH",
                     help="public key (PEM) or folder of keys to accept as signers; repeatable")
    gat.add_argument("--dossiers", type=Path, help="dossiers folder (default: ./dossiers or HARNESS_DOSSIERS)")
    gat.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _log(quiet: bool) -> Any:
    def log(message: str) -> None:
        if not quiet:
            print(f"suite: {message}", file=sys.stderr, flush=True)

    return log


def cmd_suite(args: argparse.Namespace) -> int:
    from harness.report.suite_summary import print_suite, suite_summary
    from harness.suite.run import SuiteOptions, run_suite

    if args.suite_command == "gate":
        return _cmd_suite_gate(args)
    if args.suite_command != "run":
        raise HarnessError("missing action", hint="harness suite run FILE or harness suite gate FILE "
                           "(see harness suite --help)")
    if args.ray_address and args.executor != "ray":
        raise HarnessError("--ray-address applies to --executor ray", hint="add --executor ray")
    result = run_suite(SuiteOptions(suite=args.file, mirror=args.mirror, jobs=args.jobs, dossiers_dir=args.dossiers,
                                    sign=args.sign, sigstore_staging=args.sigstore_staging,
                                    vllm_python=args.vllm_python, executor=args.executor,
                                    ray_address=args.ray_address, log=_log(args.quiet or args.json)))
    for n in dict.fromkeys(result.notices):
        print(f"NOTICE: {n}", file=sys.stderr)
    key_notice(result.key_created)
    if args.json:
        emit_json(suite_summary(result))
    else:
        print_suite(result)
    if result.exit_code == 7:
        print("suite gate FAILED (exit 7)", file=sys.stderr)
    elif result.exit_code == 3:
        print(f"suite incomplete: {len(result.unfinished)} pair(s) could not finish (exit 3)", file=sys.stderr)
    elif result.exit_code == 8 and result.review is not None:
        _print_awaiting(result.review)
    return result.exit_code


def _print_awaiting(review: Any) -> None:
    for (package, model), status in review.awaiting.items():
        print(f"  {package} x {model}: " + "; ".join(status.reasons()), file=sys.stderr)
    print("suite AWAITING REVIEW (exit 8): label (`harness review queue/label/import`) and approve "
          "(`harness dossier approve`) those runs, then `harness suite gate FILE`", file=sys.stderr)


def _cmd_suite_gate(args: argparse.Namespace) -> int:
    """``harness suite gate FILE``: the gate decided again after review; 0, 7 or 8."""
    from harness.cli.output import trusted
    from harness.suite.review_gate import gate_suite

    result = gate_suite(args.file, trusted(args), suite_id=args.suite_id, dossiers_dir=args.dossiers)
    if args.json:
        emit_json(result.as_dict())
    else:
        r = result.verification.record
        print(f"suite {r.name} ({r.suite_id}), signed by {result.verification.signer}; "
              f"gate as recorded: {r.gate.verdict}")
        for (package, model), word in result.per_pair.items():
            status = result.review.statuses.get((package, model))
            state = "" if status is None else (" (awaiting review)" if status.awaiting else " (reviewed)")
            print(f"  {package} x {model}: {word}{state}")
        for note in result.review.notes:
            print(f"  note: {note}")
        for line in result.gate.notes:
            print(f"  gate: {line}")
        if result.exit_code == 8:
            _print_awaiting(result.review)
        else:
            print(f"suite gate {result.gate.verdict}" + (" (exit 7)" if result.exit_code == 7 else ""))
    return result.exit_code


def verify_suite_record(args: argparse.Namespace, trusted: Any) -> int:
    """``harness verify SUITE_RECORD``: 0 when the suite and every run it lists verify, else 1."""
    from harness.report.suite_summary import print_suite_verification
    from harness.suite.verify import verify_suite

    result = verify_suite(args.ref, trusted, dossiers_dir=args.dossiers)
    if args.json:
        emit_json(result.as_dict())
    else:
        print_suite_verification(result)
    return 0 if result.ok else 1


def reproduce_suite_record(args: argparse.Namespace, trusted: Any) -> int:
    """``harness reproduce SUITE_RECORD``: every listed run; exit code the worst of theirs."""
    from harness.audit import environment as envs
    from harness.report.suite_summary import print_suite_reproduction
    from harness.suite.reproduce import SuiteReproduceOptions, reproduce_suite

    if (args.model or args.endpoint or args.serve or args.seed is not None or args.allow_model_mismatch
            or args.package or args.archive):
        raise HarnessError("--model, --endpoint, --serve, --seed, --allow-model-mismatch, --package and --archive "
                           "apply to one run",
                           hint="a suite's runs are reproduced with the models the suite record names; "
                           "reproduce one run with `harness reproduce PACKAGE@N` to change them")
    log = _log(args.json)

    def rebuild(run: Any, original: Any, pkg: Any, env: Any) -> int:
        log(f"environment differs from {env.lockfile.name}: re-running {run.package}@{run.seq} in the rebuilt one")
        python = envs.build_environment(env.lockfile, log=log)
        argv = ["reproduce", str(original.dossier.root / original.entry.record.path), "--package", str(pkg.root)]
        for flag, values in (("--trust-policy", [args.trust_policy] if args.trust_policy else []),
                             ("--trust-key", args.trust_key or []), ("--mirror", [args.mirror] if args.mirror else [])):
            for v in values:
                argv += [flag, str(v)]
        return envs.reexec(python, argv, env.sha256)

    show_progress = not args.no_progress and not args.json and sys.stderr.isatty()
    result = reproduce_suite(args.ref, trusted, dossiers_dir=args.dossiers, rebuild=rebuild, opts=SuiteReproduceOptions(
        env=args.env, mirror=args.mirror, threads=args.threads, vllm_python=args.vllm_python, progress=show_progress,
        log=log))
    if args.json:
        emit_json(result.as_dict())
    else:
        print_suite_reproduction(result)
    return result.exit_code
