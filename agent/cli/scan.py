"""`precaution scan`: the local self-inspection (Art. 9(9), 24(1))."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from agent.baseline_files import BaselineFiles, host_scope
from agent.config import AgentConfig, load_config
from agent.errors import UserError
from agent.i18n import LANGS
from agent.scan import ScanResult, run_scan, select_probes
from agent.state import atomic_write, state_dir
from baselines.model import Severity
from baselines.profile import Profile, ProfileError, load_profile
from baselines.waivers import WaiverError, WaiverSpec, load_waivers
from probes.base import ProbeSettings
from probes.transport import LocalTransport


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


def parse_fail_on(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def waivers_from_option(path: str | None) -> list[WaiverSpec]:
    candidate = Path(path) if path else state_dir() / "waivers.yaml"
    if not path and not candidate.exists():
        return []
    try:
        return load_waivers(candidate)
    except WaiverError as exc:
        raise UserError(str(exc)) from None


def probe_options(configured: dict[str, dict[str, Any]], full: bool) -> dict[str, dict[str, Any]]:
    """The [probes.*] tables of the config, with --full switched on for file integrity."""
    options = dict(configured)
    if full:
        options["files"] = {**options.get("files", {}), "full": True}
    return options


def exit_code(result: ScanResult, fail_on: Severity) -> int:
    if result.probe_errors:
        return 2
    return 1 if any(f.severity.rank >= fail_on.rank for f in result.active_findings) else 0


def judging_inputs(args: argparse.Namespace, config: AgentConfig) -> tuple[Severity, Profile, list[WaiverSpec]]:
    """--fail-on, the profile and the waivers, from the options or the config: shared by every command that
    runs host probes (scan, remote, inspect), each checked before anything runs."""
    fail_on = parse_fail_on(args.fail_on or config.fail_on)
    try:
        profile = load_profile(args.profile or config.profile)
    except ProfileError as exc:
        raise UserError(str(exc)) from None
    return fail_on, profile, waivers_from_option(args.waivers or config.waivers)


def handle(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    fail_on, profile, waivers = judging_inputs(args, config)
    if not Path(args.root).is_dir():
        raise UserError(f"--root {args.root}: not a directory")
    transport = LocalTransport(root=args.root)
    options = probe_options(config.probes, full=args.full)
    probes = select_probes(args.probe, settings=ProbeSettings(cache_dir=state_dir() / "cache", options=options))
    baselines = None if args.no_baseline else BaselineFiles()
    scope = host_scope(args.root)
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
            task = bar.add_task("probing", total=len(probes))
            result = run_scan(transport, profile, waivers, probes,
                              progress=lambda run: bar.update(task, advance=1, description=run.probe),
                              baselines=baselines, scope=scope)
    else:
        result = run_scan(transport, profile, waivers, probes, baselines=baselines, scope=scope)

    if html_path:
        from agent.report.html import render_html

        atomic_write(html_path, render_html(result, args.lang).encode("utf-8"), mode=0o644)
    from agent import record

    record.append("scan", record.local_actor(), scope={"host": result.host.hostname, "root": args.root},
                  tests=tuple(r.probe for r in result.probes),
                  summary={"findings": result.counts(), "probe_errors": len(result.probe_errors),
                           "baseline": result.baseline.status if result.baseline else None},
                  results=result.to_json())
    if output_path:
        atomic_write(output_path, json.dumps(result.to_json(include_observations=args.observations),
                                             ensure_ascii=False, indent=2).encode("utf-8"), mode=0o640)
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(include_observations=args.observations), ensure_ascii=False,
                                    indent=2) + "\n")
    else:
        from agent.report.table import render_table

        render_table(result, console, args.lang)
    return exit_code(result, fail_on)
