"""Option blocks that several commands share, defined once so that their names, defaults and help agree."""

from __future__ import annotations

import argparse


def add_inspection_options(p: argparse.ArgumentParser) -> None:
    """What an inspection is judged by: the profile, waivers, the probes to run and the exit threshold
    (`inspect`, `remote`)."""
    p.add_argument("--fail-on", default=None, metavar="SEVERITY",
                   help="exit 1 when a finding is at or above this severity (default high)")
    p.add_argument("--profile", metavar="FILE", help="policy profile (default: the built-in default profile)")
    p.add_argument("--waivers", metavar="FILE", help="waivers file (default: waivers.yaml in the state directory)")
    p.add_argument("--probe", action="append", default=[], metavar="ID", help="run only this probe (repeatable)")
