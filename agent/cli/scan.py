"""`precaution scan`: the local self-inspection (Art. 9(9), 24(1))."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from agent.errors import UserError
from agent.i18n import LANGS
from agent.state import atomic_write


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="run a local self-inspection against the profile",
                       description="Run all host probes, evaluate the profile and report every deviation with "
                                   "a remedial action. Exit 0 clean, 1 findings at or above --fail-on, "
                                   "2 error (bad input, or a probe failed).")
    p.add_argument("--json", action="store_true", help="print the result as JSON (docs/scan-json.md)")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report to FILE")
    p.add_argument("--lang", choices=LANGS, default="en", help="language of the table (default en)")
    p.add_argument("--fail-on", default=None, metavar="SEVERITY",
                   help="exit 1 when a finding is at or above this severity (default high)")
    p.add_argument("--profile", metavar="FILE", help="policy profile (default: the built-in default profile)")
    p.add_argument("--waivers", metavar="FILE",
                   help="waivers file (default: waivers.yaml in the state directory, if present)")
    p.add_argument("--probe", action="append", default=[], metavar="ID", help="run only this probe (repeatable)")
    p.add_argument("--root", default="/", metavar="DIR", help="inspect a mounted file tree instead of /")
    p.add_argument("--observations", action="store_true", help="include raw observations in --json")
    p.add_argument("--output", metavar="FILE", help="also write the JSON result to FILE (atomically)")
    p.add_argument("--full", action="store_true", help="re-hash every file (file integrity) instead of reusing "
                                                       "hashes of unchanged files")
    p.add_argument("--config", metavar="FILE", help="agent config (default: config.toml in the state directory)")
    p.add_argument("--no-baseline", action="store_true",
                   help="do not compare with the saved baseline (drift); see `precaution baseline`")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from agent.services import scan as scan_service
    from agent.services.context import AgentContext

    ctx = AgentContext.load(args.state, args.config)
    request = scan_service.ScanRequest(root=args.root, probes=tuple(args.probe), profile=args.profile,
                                       waivers=args.waivers, fail_on=args.fail_on, full=args.full,
                                       compare_baseline=not args.no_baseline)
    html_path = Path(args.html) if args.html else None
    output_path = Path(args.output) if args.output else None
    for option, path in (("--html", html_path), ("--output", output_path)):
        if path and not path.parent.is_dir():
            raise UserError(f"{option} {path}: directory {path.parent} does not exist")

    from rich.console import Console

    # piped or logged output is read in files and mail, where 80 columns fold every command: use 140
    wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
    console = Console(stderr=False, highlight=False, width=wide)
    if sys.stdout.isatty() and not args.json:
        from rich.progress import BarColumn, Progress, TextColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("probing", total=None)
            outcome = scan_service.run(ctx, request,
                                       progress=lambda run: bar.update(task, advance=1, description=run.probe))
    else:
        outcome = scan_service.run(ctx, request)
    result = outcome.result
    if html_path:
        from agent.report.html import render_html

        atomic_write(html_path, render_html(result, args.lang).encode("utf-8"), mode=0o644)
    document = outcome.document(include_observations=args.observations).to_json()
    if output_path:
        atomic_write(output_path, json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8"), mode=0o640)
    if args.json:
        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    else:
        from agent.report.table import render_table

        render_table(result, console, args.lang)
    return outcome.exit_code
