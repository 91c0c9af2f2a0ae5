"""`precaution agent run|status`: the long-running agent (issue 11) and a person's view of it."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from agent.i18n import LANGS


def register(sub: Any) -> None:
    p = sub.add_parser("agent", help="run the agent daemon, enrol it with a collector, or show its status",
                       description="The long-running agent: scheduled self-inspection (Art. 9(9)), a durable "
                                   "spool, collector tasks under notice (Art. 25), metrics.")
    ps = p.add_subparsers(dest="agent_command", metavar="ACTION")
    ps.required = True
    r = ps.add_parser("run", help="run in the foreground (systemd: precaution-agent.service)")
    r.add_argument("--config", type=Path, metavar="FILE", help="agent.toml (default /etc/precaution/agent.toml)")
    r.set_defaults(handler=_run)
    s = ps.add_parser("status", help="what the running agent reports: runs, findings, spool, collector, budget")
    s.add_argument("--config", type=Path, metavar="FILE")
    s.add_argument("--lang", choices=LANGS, default="en")
    s.set_defaults(handler=_status)


def _run(args: argparse.Namespace) -> int:
    from agent.daemon.config import load_config
    from agent.daemon.service import AgentService
    from agent.state import state_dir

    config = load_config(args.config)
    logging.getLogger().setLevel(logging.DEBUG if args.debug else logging.INFO)
    service = AgentService(config, state_dir(), args.config)

    def _stop(signum: int, frame: FrameType | None) -> None:
        service.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return service.run()


def _status(args: argparse.Namespace) -> int:
    from agent.daemon.config import load_config
    from agent.daemon.status import offline_figures, render, scrape
    from agent.state import state_dir

    config = load_config(args.config)
    figures = scrape(config.metrics.listen)
    running = figures is not None
    if figures is None:
        figures = offline_figures(config, state_dir())
    sys.stdout.write(render(figures, running, config, state_dir(), args.lang))
    return 0 if running else 1
