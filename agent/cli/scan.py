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
from agent.state import check_output, state_dir, state_subdir, write_output
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


def waivers_from_option(path: str | None, max_days: int = 365) -> list[WaiverSpec]:
    candidate = Path(path) if path else state_dir() / "waivers.yaml"
    if not path and not candidate.exists():
        return []
    try:
        return load_waivers(candidate, max_days)
    except WaiverError as exc:
        raise UserError(str(exc), exc.zh) from None


def check_root(root: str) -> None:
    """--root must be a directory this user can read."""
    import os

    path = Path(root)
    if not path.exists():
        raise UserError(f"--root {root}: no such directory", f"--root {root}：目录不存在")
    if not path.is_dir():
        raise UserError(f"--root {root}: not a directory", f"--root {root}：不是目录")
    if not os.access(path, os.R_OK | os.X_OK):
        raise UserError(f"--root {root}: not readable by this user", f"--root {root}：当前用户无读取权限")


def load_profile_or_refuse(path: str | None) -> Profile:
    try:
        return load_profile(path)
    except ProfileError as exc:
        raise UserError(str(exc), exc.zh) from None


def cache_dir() -> Path:
    """The probes' cache in the state dir (created 0700, never through a link)."""
    from agent.state import ensure_state_dir

    return state_subdir(ensure_state_dir(), "cache")


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
    profile = load_profile_or_refuse(args.profile or config.profile)
    return fail_on, profile, waivers_from_option(args.waivers or config.waivers, config.waiver_max_days)


def handle(args: argparse.Namespace) -> int:
    if args.observations and not (args.json or args.output):
        raise UserError("--observations goes with --json or --output (the table does not show observations)",
                        "--observations 须与 --json 或 --output 一起使用（表格不显示观测项）")
    config = load_config(args.config)
    fail_on, profile, waivers = judging_inputs(args, config)
    check_root(args.root)
    transport = LocalTransport(root=args.root)
    options = probe_options(config.probes, full=args.full)
    probes = select_probes(args.probe, settings=ProbeSettings(cache_dir=cache_dir(), options=options))
    baselines = None if args.no_baseline else BaselineFiles()
    scope = host_scope(args.root)
    html_path = Path(args.html) if args.html else None
    output_path = Path(args.output) if args.output else None
    for option, path in (("--html", html_path), ("--output", output_path)):
        if path:
            check_output(path, option)

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

        write_output(html_path, render_html(result, args.lang).encode("utf-8"), "--html", mode=0o644)
    from agent import record

    record.append("scan", record.local_actor(), scope={"host": result.host.hostname, "root": args.root},
                  tests=tuple(r.probe for r in result.probes),
                  summary={"findings": result.counts(), "probe_errors": len(result.probe_errors),
                           "baseline": result.baseline.status if result.baseline else None},
                  results=result.to_json())
    if output_path:
        write_output(output_path, json.dumps(result.to_json(include_observations=args.observations),
                                             ensure_ascii=False, indent=2).encode("utf-8"), "--output", mode=0o640)
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(include_observations=args.observations), ensure_ascii=False,
                                    indent=2) + "\n")
    else:
        from agent.report.table import render_table

        render_table(result, console, args.lang)
    return exit_code(result, fail_on)
