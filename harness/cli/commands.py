"""The ``harness`` commands: each parses nothing, calls one library function, and prints.

Library modules are imported inside each command, so ``harness --help`` and a command
pay only for what they use (no torch, transformers or datasets for ``--help``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness._internal.hashing import sha256_file
from harness.cli.output import emit_json as _emit_json
from harness.cli.output import key_notice
from harness.cli.output import trusted as _trusted
from harness.cli.review import awaiting_exit, cmd_review, print_review_diff
from harness.cli.suite import cmd_suite
from harness.cli.view import cmd_view
from harness.errors import HarnessError


def cmd_run(args: argparse.Namespace) -> int:
    from harness.cli.run_args import run_options
    from harness.report import terminal as render
    from harness.run import run_package

    show_progress = not args.no_progress and not args.json and sys.stderr.isatty()
    result = run_package(run_options(args, show_progress))
    for n in result.notices:
        print(f"NOTICE: {n}", file=sys.stderr)
    key_notice(result.key_created)
    if args.json:
        _emit_json(render.run_summary(result))
    else:
        render.print_run(result)
    if result.record.status != "complete":
        print(_incomplete_summary(result), file=sys.stderr)
        return 3
    return _gate_exit(result.record.baselines, args.no_gate)


def _gate_exit(verdicts: Any, no_gate: bool) -> int:
    """7 when a baseline fails the gate (unless ``--no-gate``), with the failures on stderr."""
    from harness.audit.gate import EXIT_GATE_FAILED
    from harness.scoring.metrics import gate_failed

    if not gate_failed(verdicts):
        return 0
    failed = [v for v in verdicts if not v.passed]
    names = ", ".join(f"{v.metric} [{v.group}] {v.word}" for v in failed)
    if no_gate:
        print(f"gate: {len(failed)} baseline(s) failed ({names}); exit 0 because of --no-gate", file=sys.stderr)
        return 0
    print(f"gate FAILED: {names} (exit {EXIT_GATE_FAILED}; --no-gate for exploratory runs)", file=sys.stderr)
    return EXIT_GATE_FAILED


def cmd_show(args: argparse.Namespace) -> int:
    from harness.audit.show import Filters, show_run
    from harness.report import terminal as render

    result = show_run(args.ref, Filters(sample=args.sample, language=args.language, category=args.category,
                                        verdict=args.verdict, flipped_against=args.flipped_against),
                      trusted=_trusted(args), dossiers_dir=args.dossiers, package=args.package, archive=args.archive,
                      mirror=args.mirror)
    if args.json:
        _emit_json(result.as_dict())
    else:
        render.print_show(result, page=not args.no_pager)
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from harness.audit.gate import gate_run
    from harness.report import terminal as render

    result = gate_run(args.ref, _trusted(args), dossiers_dir=args.dossiers, strict=args.strict,
                      require_review=args.require_review)
    if result.awaiting_review:  # exit 8, nothing decided (docs/review.md)
        return awaiting_exit(result, args.json)
    if args.json:
        _emit_json(result.as_dict())
    else:
        render.print_gate(result)
    return _gate_exit(result.verdicts, False)


def _incomplete_summary(result: Any) -> str:
    """Why a run is incomplete, on stderr: how many samples failed and the commonest reasons."""
    from collections import Counter

    from harness.record import OUTPUTS_NAME, read_outputs

    r = result.record
    reasons = Counter(str(x.get("error")) for x in read_outputs(result.run_dir / OUTPUTS_NAME) if x.get("verdict") == "error")
    top = "; ".join(f"{n} x {why}" for why, n in reasons.most_common(5))
    return (f"run incomplete: {r.outputs.errors} of {r.outputs.samples} samples got no answer ({top}). "
            f"The run is recorded, signed and in the dossier with status 'incomplete'; "
            f"failed samples are never scored. Check the model server, then run again.")


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.dossier.runs import PACKAGE_STATUS_WORDS, verify_record
    from harness.suite.verify import is_suite_ref

    if is_suite_ref(args.ref):  # a suite record: its signature and every run it lists
        from harness.cli.suite import verify_suite_record

        return verify_suite_record(args, _trusted(args))
    res = verify_record(args.ref, _trusted(args), dossiers_dir=args.dossiers)
    out = {"ok": True, "record": str(res.record_path), "run_id": res.record.run_id, "signer": res.signer,
           "policy_entry": res.policy_entry, "signer_details": res.signer_details,
           "package": res.record.package.name, "seal": res.record.package.seal,
           "package_status": str(res.package_status), "subjects": res.subjects}
    if args.json:
        _emit_json(out)
    else:
        print(f"OK  {res.record_path}")
        print(f"    run {res.record.run_id} of {res.record.package.name} {res.record.package.version}")
        entry = f" [{res.policy_entry}]" if res.policy_entry else ""
        print(f"    signed by {res.signer}{entry}; record and outputs digests match the signature")
        print(f"    package: {PACKAGE_STATUS_WORDS[res.package_status]}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from harness.audit.adjudicate import adjudication_diff
    from harness.diff import diff_refs
    from harness.report import terminal as render

    if (adj := adjudication_diff(args.run_a, args.run_b, dossiers_dir=args.dossiers)) is not None:
        return print_review_diff(adj, args.json)  # a run against its signed adjudication (docs/review.md)
    report = diff_refs(args.run_a, args.run_b, dossiers_dir=args.dossiers)
    if args.json:
        _emit_json(report.as_dict())
    else:
        render.print_diff(report)
    return 0 if report.no_change else 1


def cmd_package(args: argparse.Namespace) -> int:
    from harness import packages as pk

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
            from harness.report import terminal as render

            render.print_packages(rows)
        return 0
    if action == "export":
        from harness.packages.archive import export_package

        path, p = export_package(args.package, args.output, mirror=args.mirror)
        out = {"archive": str(path), "package": p.name, "version": p.version, "seal": p.seal.seal,  # type: ignore[union-attr]
               "sha256": sha256_file(path)}
        _emit_json(out) if args.json else print(f"exported {p.name} {p.version} (seal {out['seal']}) to {path}")
        return 0
    if action == "import":
        from harness.packages.archive import import_archive

        p = import_archive(args.archive)
        out = {"package": p.name, "version": p.version, "seal": p.seal.seal, "path": str(p.root)}  # type: ignore[union-attr]
        _emit_json(out) if args.json else print(f"imported {p.name} {p.version}: seal {out['seal']} verified, kept at {p.root}")
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
        from harness.scoring.refusal import spec_validation

        info = {"path": str(p.root), "manifest": p.manifest.canonical(), "scorer_validation": spec_validation(p.manifest.scorer),
                "seal": p.seal.model_dump(mode="json") if p.seal else None}
        if args.json:
            _emit_json(info)
        else:
            from harness.report import terminal as render

            render.print_package(p)
        return 0
    raise HarnessError("missing action", hint="harness package {seal,check,list,show} --help")


def cmd_dossier(args: argparse.Namespace) -> int:
    from harness.dossier import Dossier, verify_dossier
    from harness.dossier.refs import dossier_named
    from harness.report import terminal as render

    d = dossier_named(args.entry.partition("@")[0] if args.dossier_command == "approve" else args.package,
                      args.dossiers, what="a dossier")
    if args.dossier_command == "verify":
        report = verify_dossier(d, [] if args.chain_only else _trusted(args), expect_head=args.expect_head,
                                chain_only=args.chain_only, checkpoint=args.checkpoint)
        if args.json:
            _emit_json(report.as_dict())
        else:
            render.print_dossier_report(report)
        return 0 if report.ok else 1
    if args.dossier_command == "checkpoint":
        return _dossier_checkpoint(d, args)
    if args.dossier_command == "log":
        entries = d.timeline()
        if args.json:
            _emit_json(entries)
        else:
            render.print_log(d, entries)
        return 0
    if args.dossier_command == "approve":
        from harness.audit.review import approve

        name, _, which = args.entry.partition("@")
        d = Dossier.for_package(name, args.dossiers)
        result = approve(d, which or "latest", args.note, _trusted(args), reviewer=args.reviewer,
                         checked=tuple(args.checked))
        review = result.document
        out = {"entry": result.entry.seq, "id": review.id, "approves": review.summary.model_dump(mode="json"),
               "checked": list(review.details.checked), "time": review.time}
        if args.json:
            _emit_json(out)
        else:
            s = review.summary
            print(f"approved entry {s.entry} ({s.entry_kind} {s.entry_id}) "
                  f"of {name} as {s.reviewer}; review recorded as entry {result.entry.seq}")
            for c in review.details.checked:
                print(f"  checked: {c}")
        return 0
    raise HarnessError("missing action", hint="harness dossier {verify,checkpoint,log,approve} --help")


def _dossier_checkpoint(d: Any, args: argparse.Namespace) -> int:
    """Print the stored checkpoint if it covers the whole log; with --sign, sign one first."""
    from harness.dossier.checkpoint import CHECKPOINT_NAME, head_of, log_lines, read_stored
    from harness.dossier.log import parse_entry
    from harness.errors import CheckpointError, CheckpointFailure
    from harness.signing.signers import KeySigner, SigstoreSigner

    if args.sign:
        d.sign_checkpoint(SigstoreSigner() if args.sign == "sigstore" else KeySigner())
    cp, bundle = read_stored(d.root)
    lines = log_lines(d.log)
    if cp is None or not lines or cp.head != head_of(lines, parse_entry(lines[0]).package):
        what = "no checkpoint" if cp is None else f"a checkpoint of {cp.head.size} of its {len(lines)} entries"
        raise CheckpointError(f"{d.root.name} has {what}", reason=CheckpointFailure.INCONSISTENT,
                              hint=f"check it (`harness dossier verify {d.root.name}`), then sign the log as it is: "
                              f"`harness dossier checkpoint {d.root.name} --sign`")
    if args.json:
        _emit_json({**cp.head.as_dict(), "path": str(d.root / CHECKPOINT_NAME), "signed": bool(args.sign),
                    "sigstore_bundle": bundle is not None, "note": cp.to_bytes().decode("utf-8")})
    else:
        sys.stdout.write(cp.to_bytes().decode("utf-8"))
        if bundle is not None:
            print(f"(signed by a Sigstore bundle: {d.root / 'checkpoint.sigstore.json'})", file=sys.stderr)
    return 0


def _original(args: argparse.Namespace) -> Any:
    from harness.audit.original import verify_original
    from harness.dossier.refs import locate

    dossier, entry = locate(args.ref if hasattr(args, "ref") else args.from_run, args.dossiers)
    return verify_original(dossier, entry, _trusted(args))


def cmd_reproduce(args: argparse.Namespace) -> int:
    from harness.audit import environment as envs
    from harness.audit import reproduce as rp
    from harness.packages.archive import find_package
    from harness.report import terminal as render
    from harness.suite.verify import is_suite_ref

    if is_suite_ref(args.ref):  # a suite record: reproduce every run it lists; exit code the worst
        from harness.cli.suite import reproduce_suite_record

        return reproduce_suite_record(args, _trusted(args))
    original = _original(args)
    rec = original.record
    pkg = find_package(rec.package.seal, rec.package.name, package=args.package, archive=args.archive)
    plan = envs.environment_plan(pkg, args.env)
    if plan.rebuild:
        print(f"environment: {plan.mismatch_count} installed packages differ from {plan.lockfile.name}; "
              f"rebuilding it with uv (cached by lockfile digest)" if not plan.matches else
              "environment: rebuilding from the lockfile as asked (--env rebuild)", file=sys.stderr)
        python = envs.build_environment(plan.lockfile, log=lambda m: print(m, file=sys.stderr))
        argv = _without_option(args._argv, "--archive") + (["--package", str(pkg.root)] if args.archive else [])
        return envs.reexec(python, argv, plan.sha256)
    show_progress = not args.no_progress and not args.json and sys.stderr.isatty()
    opts = rp.ReproduceOptions(
        model=args.model, allow_model_mismatch=args.allow_model_mismatch,
        seed=args.seed, endpoint=args.endpoint, serve=args.serve, vllm_python=args.vllm_python,
        engine_args=tuple(args.engine_arg), mirror=args.mirror, threads=args.threads, judge_model=args.judge_model,
        judge_endpoint=args.judge_endpoint, progress=show_progress, environment=plan,
    )
    result = rp.reproduce(opts, original, pkg)
    from harness.dossier.runs import PACKAGE_STATUS_WORDS

    if args.json:
        _emit_json({**render.reproduction_summary(result, args.show),
                    "package_status": str(original.package_status)})
    else:
        print(render.reproduction_text(result, args.show))
        print(f"package of the original run: {PACKAGE_STATUS_WORDS[original.package_status]}")
    return result.exit_code


def _without_option(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == name:
            skip = True
            continue
        if a.startswith(name + "="):
            continue
        out.append(a)
    return out


def cmd_rescore(args: argparse.Namespace) -> int:
    from harness.audit.rescore import rescore
    from harness.packages.archive import find_package

    original = _original(args)
    rec = original.record
    pkg = find_package(rec.package.seal, rec.package.name, package=args.package, archive=args.archive)
    result = rescore(original, pkg, args.scorer, judge_model=args.judge_model, judge_endpoint=args.judge_endpoint,
                     threads=args.threads, mirror=args.mirror)
    doc = result.document
    s = doc.summary
    if args.json:
        _emit_json({"entry": result.entry.seq, "id": doc.id, **s.model_dump(mode="json"),
                    "scorer_details": doc.details.scorer.model_dump(mode="json"),
                    "metrics": [m.model_dump(mode="json") for m in result.metrics],
                    "first_changed": [c.model_dump(mode="json") for c in result.changed[:10]]})
        return 0
    print(f"rescored run {rec.run_id} ({s.samples} recorded answers, none generated again) "
          f"with {s.scorer}: {s.changed_verdicts} verdicts changed, "
          f"{s.unparsed} unparsed; recorded as entry {result.entry.seq}")
    for m in result.metrics:
        if m.group == "overall" or m.delta:
            old = "n/a" if m.original is None else f"{m.original:.3f}"
            print(f"  {m.metric:<20} {m.group:<22} {old} -> {m.value:.3f}")
    for c in result.changed[:5]:
        print(f"  {c.id} [{c.language}]: {c.original} -> {c.rescored}")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness import packages as pk
    from harness.audit.review import update_baselines

    if args.baseline_command != "update":
        raise HarnessError("missing action", hint="harness baseline update --help")
    pkg = pk.resolve_package(args.package)
    original = _original(args)
    up = update_baselines(pkg, original, tolerance=args.tolerance, mirror=args.mirror, dry_run=args.dry_run)
    if args.json:
        _emit_json({"entry": up.result.entry.seq if up.result else None, "dry_run": up.dry_run,
                    "from_run": original.record.run_id, "changed": len(up.changes), "old_seal": up.old_seal,
                    "new_seal": up.new_seal, "changes": [c.model_dump(mode="json") for c in up.changes]})
        return 0
    run_id = original.record.run_id
    if not up.changes:
        print(f"baselines of {pkg.name} already match run {run_id}: nothing changed, the seal stays {up.old_seal[:12]}")
        return 0
    if up.dry_run:
        print(f"dry run: {len(up.changes)} baseline(s) of {pkg.name} would change from run {run_id}; the seal would "
              f"change {up.old_seal[:12]} -> {up.new_seal[:12]} (nothing written)")
    else:
        assert up.result is not None
        print(f"baselines of {pkg.name} updated from run {run_id}: {len(up.changes)} changed; resealed "
              f"{up.old_seal[:12]} -> {up.new_seal[:12]}; recorded as entry {up.result.entry.seq}")
    for c in up.changes:
        print(f"  {c.model} {c.metric} [{c.group}]: {c.old} -> {c.new}")
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from harness.signing.keys import key_hint, load_or_create_key

    key = load_or_create_key()
    pub = key.private_key.public_key()
    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    info = {"path": str(key.path), "hint": key_hint(pub), "public_key_pem": pem, "created": key.created}
    if args.json:
        _emit_json(info)
    else:
        print(f"signing key: {key.path}{' (created now)' if key.created else ''}")
        print(f"key hint:    {info['hint']}")
        print(pem, end="")
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from harness.scoring import validation as judge
    from harness.scoring.behaviours import BINARY, THREE_WAY
    from harness.scoring.factory import resolve_scorer

    if args.judge_command != "validate":
        raise HarnessError("missing action", hint="harness judge validate --help")
    if args.limit is not None and args.limit < 1:
        raise HarnessError(f"--limit must be at least 1 (got {args.limit})", hint="omit --limit to score every row")
    from harness.audit.labelled import dossier_labelled_set

    labelled = (dossier_labelled_set(str(args.labelled_set)) if str(args.labelled_set).startswith("dossier:")  # review.md
                else judge.load_labelled_set(args.labelled_set, three_way=args.three_way))
    scorer = resolve_scorer(args.scorer, judge_model=args.judge_model, judge_endpoint=args.judge_endpoint,
                            threads=args.threads, behaviours=THREE_WAY if labelled.kind == "three_way" else BINARY)
    total = min(len(labelled.rows), args.limit or len(labelled.rows))
    bar, tick = None, None
    if scorer.kind == "judge" and not args.no_progress and not args.json and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        bar = Progress(TextColumn("judging"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                       console=Console(stderr=True), transient=True)
        task = bar.add_task("judge", total=total)
        bar.start()

        def tick() -> None:
            bar.advance(task)

    try:
        report = judge.validate(scorer, labelled, limit=args.limit, progress=tick)
    finally:
        if bar is not None:
            bar.stop()
        if scorer.kind == "judge":
            scorer.close()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            for s in report.samples:
                fh.write(json.dumps(s.as_dict(), ensure_ascii=False) + "\n")
    kappa = report.overall.kappa
    failed = args.min_kappa is not None and (kappa is None or kappa < args.min_kappa)
    if args.json:
        _emit_json({**report.as_dict(), "min_kappa": args.min_kappa, "passed": not failed})
    else:
        print(judge.format_report(report))
        if args.output:
            print(f"per-sample verdicts written to {args.output}")
        if args.min_kappa is not None:
            print(f"{'FAIL' if failed else 'OK'}  pooled kappa {kappa if kappa is None else round(kappa, 4)} "
                  f"{'<' if failed else '>='} {args.min_kappa}")
    return 1 if failed else 0


def cmd_claim(args: argparse.Namespace) -> int:
    from harness.audit import claim
    from harness.audit.claim_file import load_claim
    from harness.report import claim_report as report

    if args.claim_command != "check":
        raise HarnessError("missing action", hint="harness claim check --help")
    if not args.run and any(v is not None for v in (args.model, args.endpoint, args.limit, args.mirror)):
        raise HarnessError("--model, --endpoint, --limit and --mirror only apply with --run",
                           hint="add --run to make a new run, or drop them to use the dossier's runs")
    if args.limit is not None and args.limit < 1:
        raise HarnessError(f"--limit must be at least 1 (got {args.limit})", hint="omit --limit to run every sample")
    loaded = load_claim(args.claim_file)
    run_options = {k: v for k, v in (("model", args.model), ("endpoint", args.endpoint), ("limit", args.limit),
                                     ("mirror", args.mirror), ("threads", args.threads)) if v is not None}
    from harness.audit.claim_vendor import vendor_policy

    result = claim.check_claim(loaded, claim.CheckOptions(
        trusted=_trusted(args), dossiers_dir=args.dossiers, packages_dir=args.packages, run=args.run,
        run_options=run_options, vendor_trusted=vendor_policy(args.vendor_key, args.vendor_identity),
        mirror=args.mirror, require_review=args.require_review))
    out_dir = args.report_dir or Path("claim-reports") / args.claim_file.stem
    paths = report.write_reports(result, out_dir)
    if args.json:
        _emit_json({**result.as_dict(), "reports": {k: str(v) for k, v in paths.items()}})
    else:
        print(f"{result.verdict.upper()}  {loaded.claim.vendor.name}: {loaded.claim.model.name} "
              f"{loaded.claim.metric.name} ({loaded.claim.metric.group}) = {loaded.claim.metric.value:g} "
              f"on {loaded.claim.package.name}")
        cmp = result.comparison
        if cmp is not None:
            print(f"    ours {cmp.estimate:.4f} ({cmp.successes}/{cmp.n}), {int(cmp.confidence * 100)}% CI "
                  f"[{cmp.ci_low:.4f}, {cmp.ci_high:.4f}], p = {cmp.p_value:.3g} if the claim were true")
        for s in result.steps:
            print(f"    {s.outcome.upper():<15} {s.title}: {s.detail}")
        for r in result.reasons() if result.verdict != "consistent" else []:
            print(f"  because: {r}")
        print(f"report: {paths['html']} and {paths['markdown']}")
    return result.exit_code


def cmd_diagnose(args: argparse.Namespace) -> int:
    from harness.diagnose.diagnosis import DiagnoseOptions, diagnose
    from harness.report.diagnosis import print_diagnosis

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    result = diagnose(DiagnoseOptions(
        package=args.package, model=args.model, endpoint=args.endpoint, layers=args.layers, reference=args.reference,
        mirror=args.mirror, seed=args.seed, limit=args.limit, sample_ids=args.sample_ids, filters=tuple(args.filter),
        threads=args.threads, max_tokens=args.max_tokens, scale=args.scale, dossiers_dir=args.dossiers,
        sign=args.sign, trusted=None if args.endpoint else _trusted(args), save_activations=args.save_activations,
        log=log,
    ))
    key_notice(result.key_created)
    if args.json:
        _emit_json(result.as_dict())
    else:
        print_diagnosis(result)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from harness.interop.export import export
    from harness.signing.signers import KeySigner, SigstoreSigner
    from harness.suite.verify import is_suite_ref

    signer = SigstoreSigner() if args.sign == "sigstore" else KeySigner()
    if is_suite_ref(str(args.ref)):
        from harness.suite.export import export_suite

        done = export_suite(str(args.ref), args.format, args.out, trusted=_trusted(args), signer=signer,
                            dossiers_dir=args.dossiers, table=args.table, mirror=args.mirror)
        if args.json:
            _emit_json(done.as_dict())
        else:
            print(f"exported the {len(done.results)} runs of suite {done.suite} (verified first) as {args.format} "
                  f"into {args.out}; index {done.index}")
        return 0
    result = export(args.ref, args.format, args.out, trusted=_trusted(args), signer=signer,
                    dossiers_dir=args.dossiers, table=args.table, mirror=args.mirror)
    key_notice(result.key_created)
    if args.json:
        _emit_json(result.as_dict())
    else:
        print(f"wrote {', '.join(str(f) for f in result.files)} ({result.format}) from run {result.run_id} of "
              f"{result.package}, verified first (signed by {result.record_signer})")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from harness.interop.imported import import_inspect
    from harness.interop.lm_eval_import import import_lm_eval
    from harness.signing.signers import KeySigner, SigstoreSigner

    signer = SigstoreSigner() if args.sign == "sigstore" else KeySigner()
    reader = import_lm_eval if args.source_format == "lm-eval" else import_inspect
    result = reader(args.file, args.package, signer=signer, dossiers_dir=args.dossiers)
    key_notice(result.key_created)
    if args.json:
        _emit_json(result.as_dict())
        return 0
    s, d = result.document.summary, result.document.details
    print(f"IMPORTED, NOT REPRODUCED: {s.task} on {s.model} by {s.producer}: {s.scored} of {s.samples} samples scored")
    for m in d.metrics:
        print(f"  {m.metric} [{m.group}] {m.value:.3f} ({m.ci_low:.3f}-{m.ci_high:.3f}, n={m.n})")
    print("cannot prove: " + "; ".join(d.not_proven))
    print(f"dossier: {result.dossier / 'log.jsonl'} entry {result.entry.seq}")
    return 0


COMMANDS = {"export": cmd_export, "import": cmd_import, "run": cmd_run, "verify": cmd_verify, "diff": cmd_diff, "package": cmd_package,
            "dossier": cmd_dossier, "key": cmd_key, "judge": cmd_judge, "reproduce": cmd_reproduce,
            "rescore": cmd_rescore, "baseline": cmd_baseline, "claim": cmd_claim,
            "gate": cmd_gate, "diagnose": cmd_diagnose, "show": cmd_show, "view": cmd_view, "suite": cmd_suite,
            "review": cmd_review}
