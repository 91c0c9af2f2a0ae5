"""`precaution remote HOST... --notice FILE`: host probes on agentless targets over SSH (Art. 24(3)), only under a
valid, acknowledged notice whose window contains now and whose scope holds each host (Art. 25 ¶2)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import record
from agent.cli.notice import add_notice_options, notice_settings
from agent.cli.scan import exit_code, judging_inputs
from agent.config import load_config
from agent.enforce import Authorization, Watchdog, approve, authorize, endpoint_allowed
from agent.errors import UserError
from agent.i18n import LANGS
from agent.scan import ScanResult, run_scan, select_probes
from agent.state import ensure_state_dir
from baselines.model import Severity
from baselines.profile import Profile
from baselines.waivers import WaiverSpec
from probes.base import Probe, ProbeSettings
from probes.remote.ssh_transport import (
    HostKeyRejected,
    NewHostKey,
    SSHConnectError,
    SSHEndpoint,
    SSHOptions,
    SSHTransport,
)

KNOWN_HOSTS = "known_hosts"


@dataclass
class HostOutcome:
    target: str  # as given
    address: str  # the approved address we connected to
    status: str  # ok | refused | error | stopped | cancelled
    message: str = ""
    result: ScanResult | None = None
    new_keys: list[NewHostKey] = field(default_factory=list)
    host_key: str | None = None

    def to_json(self, include_observations: bool = False) -> dict[str, Any]:
        return {"target": self.target, "address": self.address, "status": self.status, "message": self.message,
                "host_key": self.host_key,
                "scan": self.result.to_json(include_observations=include_observations) if self.result else None}


def register(sub: Any) -> None:
    p = sub.add_parser("remote", help="inspect agentless hosts over SSH under a notice",
                       description="Run the host probes on remote hosts over SSH. Needs a signed, acknowledged "
                                   "notice whose window is open and whose scope names each host. Exit 0 clean, "
                                   "1 findings at or above --fail-on, 2 refusal or error.")
    p.add_argument("hosts", nargs="+", metavar="HOST", help="HOST, USER@HOST or USER@HOST:PORT")
    p.add_argument("--notice", required=True, metavar="FILE")
    p.add_argument("--user", default="root", help="SSH user (default root)")
    p.add_argument("--key", metavar="FILE", help="private key file (default: ssh-agent)")
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--jump", metavar="HOST", help="jump host (USER@HOST:PORT), like ssh -J")
    p.add_argument("--sudo", action="store_true", help="run reads and commands through sudo -n")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="record an unknown host key (it is written to the record); changed keys are still refused")
    p.add_argument("--parallel", type=int, default=8, metavar="N", help="hosts at once (default 8)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="per-host limit (default 300 s)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="S")
    p.add_argument("--retries", type=int, default=2)
    p.add_argument("--json", action="store_true")
    p.add_argument("--observations", action="store_true", help="include observations in --json")
    p.add_argument("--lang", choices=LANGS, default="en")
    p.add_argument("--fail-on", default=None, metavar="SEVERITY")
    p.add_argument("--profile", metavar="FILE")
    p.add_argument("--waivers", metavar="FILE")
    p.add_argument("--probe", action="append", default=[], metavar="ID", help="run only this probe (repeatable)")
    add_notice_options(p)
    p.set_defaults(handler=handle)


def _endpoints(args: argparse.Namespace) -> list[SSHEndpoint]:
    out = []
    for text in args.hosts:
        try:
            out.append(SSHEndpoint.parse(text, default_user=args.user, default_port=args.port))
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return out


def _approved_address(endpoint: SSHEndpoint, approved: list[Any]) -> str | None:
    for target in approved:
        if target.address == endpoint.host or target.hostname == endpoint.host.rstrip("."):
            return str(target.address)
    try:
        import ipaddress

        ip = ipaddress.ip_address(endpoint.host)
    except ValueError:
        return None
    return next((str(t.address) for t in approved if t.ip == ip), None)


def handle(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    settings = notice_settings(args)
    fail_on, profile, waivers = judging_inputs(args, config)
    probes = select_probes(args.probe, settings=ProbeSettings(cache_dir=None, options=config.probes))
    if args.parallel < 1:
        raise UserError("--parallel must be at least 1")
    endpoints = _endpoints(args)
    jump = None
    if args.jump:
        try:
            jump = SSHEndpoint.parse(args.jump, default_user=args.user)
        except ValueError as exc:
            raise UserError(f"--jump: {exc}") from None
    state = ensure_state_dir()
    actor = record.local_actor()

    auth = authorize(Path(args.notice), settings, kind="host", actor=actor, targets=args.hosts, state=state)
    hosts = [e.host for e in endpoints] + ([jump.host] if jump else [])
    approved, _refusals = approve(auth, list(dict.fromkeys(hosts)), "host", actor=actor, state=state)
    outcomes: list[HostOutcome] = []
    runnable: list[tuple[SSHEndpoint, str]] = []
    jump_address = None
    if jump is not None:
        jump_address = _approved_address(jump, approved)
        if jump_address is None:
            raise UserError(f"jump host {jump.host} is outside the notice's scope; nothing was run")
    for endpoint, text in zip(endpoints, args.hosts, strict=True):
        address = _approved_address(endpoint, approved)
        if address is None:
            outcomes.append(HostOutcome(text, endpoint.host, "refused", "outside the notified scope"))
            continue
        why = endpoint_allowed(auth, endpoint.host, endpoint.port, endpoint.user or args.user)
        if why:
            record.append("refusal", actor, notice_id=auth.notice_id, scope=auth.scope_json(), tests=("host",),
                          summary={"code": "out-of-scope", "message": why, "targets": [text]}, state=state)
            outcomes.append(HostOutcome(text, address, "refused", why))
            continue
        runnable.append((SSHEndpoint(address, endpoint.port, endpoint.user), text))

    options = SSHOptions(
        user=args.user, key_file=args.key, use_agent=args.key is None, known_hosts=state / KNOWN_HOSTS,
        accept_new_host_key=args.accept_new_host_key,
        jump=SSHEndpoint(jump_address, jump.port, jump.user) if jump and jump_address else None, sudo=args.sudo,
        connect_timeout=args.connect_timeout, retries=args.retries,
    )
    limit = args.parallel
    if auth.signed.notice.rate.max_parallel:
        limit = min(limit, auth.signed.notice.rate.max_parallel)
    if runnable:
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="remote") as pool:
            futures = [pool.submit(_run_host, ep, text, options, auth, profile, waivers, probes, args.timeout)
                       for ep, text in runnable]
            outcomes.extend(f.result() for f in futures)

    for o in outcomes:
        for key in o.new_keys:
            record.append("host-key", actor, notice_id=auth.notice_id, summary={
                "host": key.host, "key_type": key.key_type, "fingerprint": key.fingerprint,
                "accepted_by": "--accept-new-host-key"}, state=state)
        if o.status == "refused" and o.message.startswith("host key"):
            record.append("refusal", actor, notice_id=auth.notice_id, scope=auth.scope_json(), tests=("host",),
                          summary={"code": "host-key", "message": o.message, "targets": [o.target]}, state=state)
    payload = {"notice": auth.notice_id, "hosts": [o.to_json(args.observations) for o in outcomes]}
    record.append("remote", actor, notice_id=auth.notice_id, scope=auth.scope_json(),
                  tests=tuple(p.id for p in probes),
                  summary={"hosts": {o.target: _brief(o) for o in outcomes}}, results=payload, state=state)
    _render(args, outcomes, payload)
    return _exit(outcomes, fail_on)


def _brief(o: HostOutcome) -> dict[str, Any]:
    out: dict[str, Any] = {"status": o.status}
    if o.message:
        out["message"] = o.message
    if o.result is not None:
        out["findings"] = o.result.counts()
        out["probe_errors"] = len(o.result.probe_errors)
        out["host"] = o.result.host.hostname
    if o.host_key:
        out["host_key"] = o.host_key
    return out


def _run_host(endpoint: SSHEndpoint, text: str, options: SSHOptions, auth: Authorization, profile: Profile,
              waivers: list[WaiverSpec], probes: list[Probe], timeout: float) -> HostOutcome:  # type: ignore[type-arg]
    now = dt.datetime.now(dt.UTC)
    if now >= auth.deadline:
        return HostOutcome(text, endpoint.host, "cancelled", "not started: the notice window closed")
    # Per-target deadline: min(timeout, window end). The watchdog closes the connection, which ends every
    # read in flight; the probes then fail fast and the scan returns what it had.
    deadline = min(now + dt.timedelta(seconds=timeout), auth.deadline)
    new_keys: list[NewHostKey] = []
    transport = SSHTransport(endpoint, options, on_new_host_key=new_keys.append)
    watchdog = Watchdog(deadline, transport.close)
    try:
        try:
            transport.connect()
        except HostKeyRejected as exc:
            return HostOutcome(text, endpoint.host, "refused", f"host key {exc.reason}: {exc}", new_keys=new_keys)
        except SSHConnectError as exc:
            if watchdog.fired:
                why = _why(deadline, auth, timeout)
                return HostOutcome(text, endpoint.host, "stopped", f"stopped while connecting: {why}",
                                   new_keys=new_keys)
            return HostOutcome(text, endpoint.host, "error", str(exc), new_keys=new_keys)
        result = run_scan(transport, profile, waivers, probes)
    finally:
        watchdog.cancel()
        transport.close()
    if watchdog.fired:
        why = _why(deadline, auth, timeout)
        return HostOutcome(text, endpoint.host, "stopped", f"stopped: {why}; results are partial", result,
                           new_keys, transport.host_key_fingerprint)
    return HostOutcome(text, endpoint.host, "ok", "", result, new_keys, transport.host_key_fingerprint)


def _why(deadline: dt.datetime, auth: Authorization, timeout: float) -> str:
    if deadline == auth.deadline:
        return f"the notice window closed at {auth.deadline.isoformat()}"
    return f"the per-host limit of {timeout:g} s passed"


def _render(args: argparse.Namespace, outcomes: list[HostOutcome], payload: dict[str, Any]) -> None:
    if args.json:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    from rich.console import Console

    from agent.report.table import render_table

    console = Console(highlight=False)
    for o in outcomes:
        console.rule(f"{o.target} ({o.address}): {o.status}")
        if o.message:
            console.print(o.message)
        if o.result is not None:
            render_table(o.result, console, args.lang, heading="title_remote")


def _exit(outcomes: list[HostOutcome], fail_on: Severity) -> int:
    if any(o.status != "ok" for o in outcomes):
        return 2
    codes = [exit_code(o.result, fail_on) for o in outcomes if o.result is not None]
    return max(codes, default=0)
