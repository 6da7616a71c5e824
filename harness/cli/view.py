"""``harness view``: build the static site (and serve it on loopback with ``--serve``).

Kept beside :mod:`harness.cli.commands` (which dispatches here); like every command it
calls one library function (:func:`harness.report.site.build_site`) and prints.
"""

from __future__ import annotations

import argparse
import sys
import threading

from harness.cli.output import emit_json, trusted


def cmd_view(args: argparse.Namespace) -> int:
    """Exit 0 when every dossier verified, 1 when the site shows a failure (it is written either way)."""
    from harness.report.site import ViewOptions, build_site, start_server

    result = build_site(ViewOptions(
        out=args.out, packages=tuple(args.packages), dossiers_dir=args.dossiers,
        trusted=trusted(args), claims=args.claims,
        pairs=tuple((a, b) for a, b in args.diff), package=args.package, archive=args.archive, mirror=args.mirror))
    if args.json:
        emit_json(result.as_dict())
    else:
        for p in result.packages:
            state = "verified" if p["verified"] else f"FAILED verification ({p['problems']} problems)"
            entries = f"{p['entries']} {'entry' if p['entries'] == 1 else 'entries'}"
            runs = f"{p['runs']} {'run' if p['runs'] == 1 else 'runs'}"
            print(f"{p['name']}: {entries}, {runs}, {state}")
        print(f"wrote {result.pages} pages to {result.out} in {result.seconds:.1f} s "
              f"(largest {result.largest_page[0] / 1e6:.2f} MB); open {result.out / 'index.html'}", flush=True)
    if args.serve:
        server, url = start_server(args.out, args.port)
        print(f"serving {args.out} at {url} (127.0.0.1 only); Ctrl-C stops", file=sys.stderr, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped serving", file=sys.stderr)
        finally:
            server.shutdown()
            server.server_close()
    return 0 if result.ok else 1
