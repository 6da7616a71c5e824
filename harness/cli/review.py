"""``harness review``: the queue of uncertain answers, human labels, adjudication, and the hand-off state.

Kept beside :mod:`harness.cli.commands` (which dispatches here) so the review options and
printing live in one place; like every command, each action calls one library function
(docs/review.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.cli.output import emit_json, key_notice, trusted
from harness.errors import HarnessError

REVIEW_EPILOG = """\
examples:
  harness review queue mini-safety@latest --language hi
  harness review label mini-safety@latest --sample hi-refuse-04 --label refusal --note "declines in Hindi"
  harness review import mini-safety@latest labels.csv        # columns: sample_id,label,note,reviewer
  harness review adjudicate mini-safety@latest               # signed metrics with the labels applied
  harness review diff mini-safety@latest                     # what the labels changed
  harness review status mini-safety@latest                   # awaiting review, or reviewed

exit codes: 0 ok, 1 the run or its dossier does not verify, 2 bad input (an unknown sample or
label, a malformed labels file: nothing is written), 8 (status) the run is awaiting review"""


def _common(p: argparse.ArgumentParser, *, package: bool = True) -> None:
    p.add_argument("ref", help="the run: record.json, run folder, or PACKAGE@N / PACKAGE@latest")
    if package:
        p.add_argument("--package", metavar="PATH", help="the package folder (default: found by the record's seal)")
        p.add_argument("--archive", type=Path, metavar="FILE", help="a package archive holding the package")
    p.add_argument("--trust-policy", type=Path, metavar="FILE",
                   help="trust policy (TOML) listing the signers you accept (or HARNESS_TRUST_POLICY)")
    p.add_argument("--trust-key", action="append", type=Path, default=None, metavar="PATH",
                   help="public key (PEM) or folder of keys to accept as signers; repeatable")
    p.add_argument("--dossiers", type=Path, help="dossiers folder (default: ./dossiers or HARNESS_DOSSIERS)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def add_review_parser(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """The ``review`` command and its actions."""
    rev = sub.add_parser("review", help="the queue of uncertain answers, signed human labels, adjudication",
                         description="Answers a scorer marked uncertain wait for people: list them, label them "
                         "(each label a signed dossier event), and recompute the run's numbers with the labels "
                         "into a signed adjudication beside the original record (docs/review.md).",
                         epilog=REVIEW_EPILOG, formatter_class=fmt)
    rsub = rev.add_subparsers(dest="review_command", metavar="<action>")
    q = rsub.add_parser("queue", help="list the run's uncertain samples: prompt, answer, why uncertain, label",
                        epilog=REVIEW_EPILOG, formatter_class=fmt)
    _common(q)
    q.add_argument("--language", metavar="L", help="only samples in this language (e.g. hi)")
    q.add_argument("--mirror", type=Path, help="folder mirroring upstream data (or set HARNESS_DATA_MIRROR)")
    lab = rsub.add_parser("label", help="record one person's label of one sample as a signed dossier event",
                          epilog=REVIEW_EPILOG, formatter_class=fmt)
    _common(lab)
    lab.add_argument("--sample", required=True, metavar="ID", help="the sample id (see `harness review queue`)")
    lab.add_argument("--label", required=True, metavar="LABEL",
                     help="one of the package's behaviours: refusal, compliance (and safe_completion where declared)")
    lab.add_argument("--note", default="", help="why (kept with the label)")
    lab.add_argument("--reviewer", metavar="NAME", help="who labels (default: HARNESS_REVIEWER, else your login name)")
    imp = rsub.add_parser("import", help="record a CSV or JSONL file of labels as one signed event (all or nothing)",
                          epilog=REVIEW_EPILOG, formatter_class=fmt)
    _common(imp)
    imp.add_argument("file", type=Path, help="labels.csv or labels.jsonl: sample_id,label[,note,reviewer]")
    imp.add_argument("--reviewer", metavar="NAME", help="reviewer of rows that name none (default: your login name)")
    adj = rsub.add_parser("adjudicate", help="recompute metrics and baselines with the labels; sign them as an entry",
                          epilog=REVIEW_EPILOG, formatter_class=fmt)
    _common(adj, package=False)
    dif = rsub.add_parser("diff", help="what adjudication changes: metric by metric, and the samples whose verdict changed",
                          epilog=REVIEW_EPILOG, formatter_class=fmt)
    _common(dif, package=False)
    sta = rsub.add_parser("status", help="the hand-off state: uncertain samples unlabelled, approval; exit 8 while "
                          "awaiting review", epilog=REVIEW_EPILOG, formatter_class=fmt)
    _common(sta, package=False)


def cmd_review(args: argparse.Namespace) -> int:
    action = getattr(args, "review_command", None)
    if action is None:
        raise HarnessError("missing action", hint="harness review {queue,label,import,adjudicate,diff,status} --help")
    return int(_ACTIONS[action](args))


def _queue(args: argparse.Namespace) -> int:
    from harness.audit.labels import review_queue

    q = review_queue(args.ref, language=args.language, trusted=trusted(args), dossiers_dir=args.dossiers,
                     package=args.package, archive=args.archive, mirror=args.mirror)
    if args.json:
        emit_json(q.as_dict())
        return 0
    r = q.record
    print(f"review queue of run {r.run_id} of {r.package.name} (entry {q.entry}), signed by {q.signer}")
    print(f"{q.uncertain} uncertain samples, {q.labelled} labelled, {q.uncertain - q.labelled} awaiting a label; "
          f"labels allowed: {', '.join(q.allowed or ('(package not found)',))}")
    if q.untrusted_label_entries:
        print(f"WARNING: label entries {', '.join(map(str, q.untrusted_label_entries))} do not verify and are not "
              "shown (`harness dossier verify`)")
    for lang, (u, n) in sorted(q.by_language.items()):
        print(f"  {lang}: {u} uncertain, {n} labelled")
    for item in q.items:
        print(f"\n[{item.id}] {item.language} {item.category}, expected {item.expected}; scorer: {item.verdict} "
              f"(uncertain: {item.uncertain_reason or '?'}); label: {item.label or 'NONE'}")
        print(f"  prompt: {item.prompt if item.prompt is not None else '(unavailable)'}")
        print(f"  answer: {item.response if item.response is not None else '(none)'}")
        for h in item.history:
            print(f"  labelled {h.label} by {h.reviewer} at {h.time} (entry {h.seq}){': ' + h.note if h.note else ''}")
    return 0


def _label(args: argparse.Namespace) -> int:
    from harness.audit.labels import LabelInput, label_samples

    result = label_samples(args.ref, [LabelInput(sample=args.sample, label=args.label, note=args.note,
                                                 reviewer=args.reviewer)],
                           trusted=trusted(args), dossiers_dir=args.dossiers, package=args.package, archive=args.archive)
    return _labelled(result, args.json)


def _import(args: argparse.Namespace) -> int:
    from harness.audit.labels import import_labels

    result = import_labels(args.ref, args.file, reviewer=args.reviewer, trusted=trusted(args),
                           dossiers_dir=args.dossiers, package=args.package, archive=args.archive)
    return _labelled(result, args.json)


def _labelled(result: Any, as_json: bool) -> int:
    key_notice(result.key_created)
    if as_json:
        emit_json(result.as_dict())
        return 0
    d = result.document.details
    print(f"recorded {len(d.labels)} label{'s' if len(d.labels) != 1 else ''} of run {d.run_id} (entry "
          f"{result.run_entry}) as signed entry {result.entry.seq}")
    for x in d.labels[:20]:
        print(f"  {x.sample}: {x.label} (scorer said {x.scorer_verdict}) by {x.reviewer}")
    print("next: `harness review adjudicate` to sign the adjudicated numbers, `harness dossier approve` to hand off")
    return 0


def _adjudicate(args: argparse.Namespace) -> int:
    from harness.audit.adjudicate import adjudicate

    result = adjudicate(args.ref, trusted=trusted(args), dossiers_dir=args.dossiers)
    key_notice(result.key_created)
    if args.json:
        emit_json(result.as_dict())
        return 0
    a = result.adjudicated
    print(f"adjudicated run {a.record.run_id}: {len(a.samples)} labelled samples, {len(a.changed)} verdicts changed; "
          f"signed entry {result.entry.seq}; gate on the adjudicated numbers: {a.gate}")
    if a.unlabelled_uncertain:
        print(f"note: {len(a.unlabelled_uncertain)} uncertain samples are still unlabelled")
    return 0


def _diff(args: argparse.Namespace) -> int:
    from harness.audit.adjudicate import review_diff

    return print_review_diff(review_diff(args.ref, trusted=trusted(args), dossiers_dir=args.dossiers), args.json)


def print_review_diff(d: Any, as_json: bool) -> int:
    """A run against its adjudication (``review diff``, and ``harness diff RUN ADJUDICATION``): 1 if anything changed."""
    if as_json:
        emit_json(d.as_dict())
        return 1 if d.changed else 0
    a = d.adjudicated
    print(f"run {a.record.run_id}: scorer verdicts against adjudicated ({len(a.samples)} labelled samples)")
    if not d.changed:
        print("no change: every label agrees with the scorer")
    for m in d.metrics:
        orig = "-" if m.original is None else f"{m.original:.4f}"
        delta = "" if m.delta is None else f" ({m.delta:+.4f})"
        print(f"  {m.metric} [{m.group}]: {orig} -> {m.adjudicated:.4f}{delta}  CI [{m.ci_low:.4f}, {m.ci_high:.4f}] "
              f"n={m.n}")
    for metric, group, old, new in d.baselines:
        print(f"  baseline {metric} [{group}]: {old} -> {new}")
    for s in a.changed:
        print(f"  sample {s.id} ({s.language}): {s.scorer_verdict} -> {s.label} (label by {s.reviewer})")
    return 1 if d.changed else 0


def _status(args: argparse.Namespace) -> int:
    from harness.audit.handoff import EXIT_AWAITING_REVIEW, review_state

    status = review_state(args.ref, trusted=trusted(args), dossiers_dir=args.dossiers)
    if args.json:
        emit_json(status.as_dict())
    else:
        print(f"run {status.run_id} (entry {status.entry}): {status.state.upper()}")
        print(f"  {len(status.uncertain)} uncertain samples, {len(status.unlabelled)} unlabelled; "
              f"{status.label_events} label entries by {', '.join(status.reviewers) or 'nobody'}")
        if status.approval:
            print(f"  approved by {status.approval.reviewer} at entry {status.approval.seq}: {status.approval.note}")
        for reason in status.reasons():
            print(f"  - {reason}")
    return EXIT_AWAITING_REVIEW if status.awaiting else 0


def awaiting_exit(result: Any, as_json: bool) -> int:
    """``harness gate`` on a run awaiting review: say so, with why, and exit 8 (nothing was decided)."""
    from harness.audit.handoff import EXIT_AWAITING_REVIEW

    if as_json:
        emit_json(result.as_dict())
    else:
        r = result.record
        print(f"gate on run {r.run_id} of {r.package.name} {r.package.version}, signed by {result.signer}")
        for reason in result.review.reasons():
            print(f"  - {reason}")
    print(f"gate AWAITING REVIEW (exit {EXIT_AWAITING_REVIEW}): the run's numbers are not used until review is "
          "complete", file=sys.stderr)
    return EXIT_AWAITING_REVIEW


_ACTIONS = {"queue": _queue, "label": _label, "import": _import, "adjudicate": _adjudicate, "diff": _diff,
            "status": _status}
