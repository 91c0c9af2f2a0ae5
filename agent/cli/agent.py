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
    r.add_argument("--lang", choices=LANGS, help="language of its messages (default: `lang` in agent.toml)")
    r.set_defaults(handler=_run)
    e = ps.add_parser("enroll", help="enrol this agent with a collector (one-time token, pinned CA)",
                      description="Spend a one-time enrolment token: the agent gets a client certificate from the "
                                  "collector's CA and trusts the collector's notice issuer. Re-enrolling keeps the "
                                  "spool and the record.")
    e.add_argument("url", metavar="URL", help="the collector, https://HOST:PORT")
    e.add_argument("--token", required=True, help="one-time token (precaution-collector token create --unit U)")
    pin = e.add_mutually_exclusive_group(required=True)
    pin.add_argument("--ca", type=Path, metavar="FILE", help="the collector CA certificate (PEM) to pin")
    pin.add_argument("--ca-fingerprint", metavar="SHA256",
                     help="SHA-256 of the collector's CA (or server) certificate, as `openssl x509 -noout "
                          "-fingerprint -sha256` prints it")
    e.add_argument("--unit", help="the unit to enrol in (default: [notice] unit in config.toml)")
    e.add_argument("--config", type=Path, metavar="FILE")
    e.add_argument("--lang", choices=LANGS, default="en")
    e.set_defaults(handler=_enroll)
    s = ps.add_parser("status", help="what the running agent reports: runs, findings, spool, collector, budget")
    s.add_argument("--config", type=Path, metavar="FILE")
    s.add_argument("--lang", choices=LANGS, help="default: `lang` in agent.toml")
    s.set_defaults(handler=_status)


def _run(args: argparse.Namespace) -> int:
    from agent.daemon.config import load_config
    from agent.daemon.service import AgentService

    config = load_config(args.config)
    if args.lang:
        config = config.model_copy(update={"lang": args.lang})
    args.lang = config.lang  # an error from here on is said in the daemon's language
    logging.getLogger().setLevel(logging.DEBUG if args.debug else logging.INFO)
    service = AgentService(config, args.state.path, args.config)

    def _stop(signum: int, frame: FrameType | None) -> None:
        service.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return service.run()


def _status(args: argparse.Namespace) -> int:
    from agent.daemon.config import load_config
    from agent.daemon.status import offline_figures, render, scrape

    config = load_config(args.config)
    args.lang = args.lang or config.lang
    figures = scrape(config.metrics.listen)
    running = figures is not None
    if figures is None:
        figures = offline_figures(config, args.state.path)
    sys.stdout.write(render(figures, running, config, args.state.path, args.lang))
    return 0 if running else 1


def _enroll(args: argparse.Namespace) -> int:
    from agent.config import load_config as load_agent_config
    from agent.daemon import messages as msg
    from agent.daemon.config import load_config
    from agent.daemon.identity import Identity, enroll
    from agent.errors import UserError

    config = load_config(args.config)
    state = args.state
    state.ensure()
    unit = args.unit or load_agent_config(None, state).notice.unit
    if not unit:
        raise UserError(msg.WHICH_UNIT())
    identity = Identity(config.identity_dir(state.path))
    done = enroll(state, identity, args.url, args.token, unit, ca_file=args.ca, ca_fingerprint=args.ca_fingerprint,
                  timeout=config.collector.timeout)
    sys.stdout.write(msg.ENROLLED(url=done.url, agent_id=done.agent_id, unit=done.unit, until=done.not_after,
                                  dir=identity.dir).get(args.lang) + "\n")
    return 0
