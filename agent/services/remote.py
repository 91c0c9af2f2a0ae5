"""Host probes on agentless targets over SSH (Art. 24(3)), only under a valid, acknowledged notice whose window
contains now and whose scope holds each host (Art. 25 ¶2). Refusals, host-key events and the run are recorded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import messages as msg
from agent.enforce import Authorization, Watchdog, approve, authorize, endpoint_allowed
from agent.errors import UserError
from agent.notice import settings_from
from agent.record import Entry
from agent.scan import ScanResult, run_scan, select_probes
from agent.services.context import AgentContext, Judging, judging
from agent.services.scan import scan_exit_code
from agent.wire.contents import (
    HostKeyContent,
    HostKeySummary,
    RefusalContent,
    RefusalSummary,
    RemoteContent,
    RemoteHostBrief,
    RemoteSummary,
)
from baselines.profile import Profile
from baselines.waivers import WaiverSpec
from probes.base import Probe, ProbeSettings
from probes.i18n import Duration, LocalTime, Message

if TYPE_CHECKING:
    from agent.wire.remote import RemoteDocument, RemoteHostDoc
    from probes.remote.ssh_transport import NewHostKey, SSHEndpoint, SSHOptions


@dataclass(frozen=True, slots=True)
class HostLogin:
    """How to log in to one target (the daemon's ``[remote]`` settings for it), instead of the request's."""

    user: str
    port: int
    key: str | None
    known_hosts: Path | None = None  # None: the agent's own known_hosts
    host_keys: tuple[str, ...] = ()  # pinned host-key fingerprints
    sudo: bool = False


@dataclass(frozen=True, slots=True)
class RemoteRequest:
    hosts: tuple[str, ...]  # HOST, USER@HOST or USER@HOST:PORT
    notice: Path
    user: str = "root"
    key: str | None = None  # private key file (default: ssh-agent)
    port: int = 22
    jump: str | None = None
    sudo: bool = False
    accept_new_host_key: bool = False
    parallel: int = 8
    timeout: float = 300.0
    connect_timeout: float = 10.0
    retries: int = 2
    probes: tuple[str, ...] = ()
    profile: str | None = None
    waivers: str | None = None
    fail_on: str | None = None
    unit: str | None = None
    lead_time: str | None = None
    logins: Mapping[str, HostLogin] = field(default_factory=dict)  # per target as given


@dataclass
class HostOutcome:
    target: str  # as given
    address: str  # the approved address we connected to
    status: str  # ok | refused | error | stopped | cancelled
    message: str | Message = ""  # machine output and the record read its English
    result: ScanResult | None = None
    new_keys: list[NewHostKey] = field(default_factory=list)
    host_key: str | None = None

    def document(self, include_observations: bool = False) -> RemoteHostDoc:
        from agent.documents import scan_document
        from agent.wire.remote import RemoteHostDoc

        return RemoteHostDoc.model_validate({
            "target": self.target, "address": self.address, "status": self.status, "message": str(self.message),
            "host_key": self.host_key,
            "scan": scan_document(self.result, include_observations) if self.result else None})

    def brief(self) -> RemoteHostBrief:
        from agent.documents import severity_counts

        r = self.result
        return RemoteHostBrief.model_validate({
            "status": self.status, "message": str(self.message) or None,
            "findings": severity_counts(r.counts()) if r else None,
            "probe_errors": len(r.probe_errors) if r else None, "host": r.host.hostname if r else None,
            "host_key": self.host_key})


@dataclass
class RemoteOutcome:
    notice_id: str
    hosts: list[HostOutcome]
    judging: Judging
    entry: Entry
    exit_code: int

    def document(self, include_observations: bool = False) -> RemoteDocument:
        return remote_document(self.notice_id, self.hosts, include_observations)


def remote_document(notice_id: str, hosts: list[HostOutcome], include_observations: bool = False) -> RemoteDocument:
    from agent import __version__
    from agent.wire.remote import RemoteDocument

    return RemoteDocument.model_validate({
        "schema": "precaution.remote/v2", "tool_version": __version__, "notice": notice_id,
        "hosts": [o.document(include_observations) for o in hosts]})


def _approved_address(endpoint: SSHEndpoint, approved: list[Any]) -> str | None:
    for target in approved:
        if target.address == endpoint.host or target.hostname == endpoint.host.rstrip("."):
            return str(target.address)
    try:
        ip = ipaddress.ip_address(endpoint.host)
    except ValueError:
        return None
    return next((str(t.address) for t in approved if t.ip == ip), None)


def run(ctx: AgentContext, req: RemoteRequest) -> RemoteOutcome:
    from probes.remote.ssh_transport import SSHEndpoint, SSHOptions

    settings = settings_from(ctx.config, req.unit, req.lead_time)
    judged = judging(ctx, profile=req.profile, waivers=req.waivers, fail_on=req.fail_on)
    probes = select_probes(req.probes, settings=ProbeSettings(cache_dir=None, options=ctx.config.probes))
    if req.parallel < 1:
        raise UserError(msg.PARALLEL_AT_LEAST_ONE())
    endpoints = []
    for text in req.hosts:
        login = req.logins.get(text)
        try:
            endpoints.append(SSHEndpoint.parse(text, default_user=login.user if login else req.user,
                                               default_port=login.port if login else req.port))
        except ValueError as exc:
            raise UserError(str(exc)) from None
    jump = None
    if req.jump:
        try:
            jump = SSHEndpoint.parse(req.jump, default_user=req.user)
        except ValueError as exc:
            raise UserError(f"--jump: {exc}") from None
    state = ctx.state
    state.ensure()
    recorder = ctx.recorder
    auth = authorize(req.notice, settings, kind="host", recorder=recorder, targets=req.hosts)
    hosts = [e.host for e in endpoints] + ([jump.host] if jump else [])
    approved, _refusals = approve(auth, list(dict.fromkeys(hosts)), "host", recorder=recorder)
    outcomes: list[HostOutcome] = []
    runnable: list[tuple[SSHEndpoint, str]] = []
    jump_address = None
    if jump is not None:
        jump_address = _approved_address(jump, approved)
        if jump_address is None:
            raise UserError(msg.JUMP_OUTSIDE(host=jump.host))
    for endpoint, text in zip(endpoints, req.hosts, strict=True):
        address = _approved_address(endpoint, approved)
        if address is None:
            outcomes.append(HostOutcome(text, endpoint.host, "refused", msg.OUTSIDE_NOTICE()))
            continue
        why = endpoint_allowed(auth, endpoint.host, endpoint.port, endpoint.user or req.user)
        if why:
            recorder.write(RefusalContent(notice_id=auth.notice_id, scope=auth.scope_doc(), tests=["host"],
                                          summary=RefusalSummary(code="out-of-scope", message=why.en, targets=[text])))
            outcomes.append(HostOutcome(text, address, "refused", why))
            continue
        runnable.append((SSHEndpoint(address, endpoint.port, endpoint.user), text))

    options = SSHOptions(
        user=req.user, key_file=req.key, use_agent=req.key is None, known_hosts=state.known_hosts,
        accept_new_host_key=req.accept_new_host_key,
        jump=SSHEndpoint(jump_address, jump.port, jump.user) if jump and jump_address else None, sudo=req.sudo,
        connect_timeout=req.connect_timeout, retries=req.retries,
    )

    def options_for(text: str) -> SSHOptions:
        login = req.logins.get(text)
        if login is None:
            return options
        return dataclasses.replace(options, user=login.user, key_file=login.key, use_agent=login.key is None,
                                   known_hosts=login.known_hosts or state.known_hosts, host_keys=login.host_keys,
                                   sudo=login.sudo, accept_new_host_key=False)
    limit = req.parallel
    if auth.signed.notice.rate.max_parallel:
        limit = min(limit, auth.signed.notice.rate.max_parallel)
    if runnable:
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="remote") as pool:
            futures = [pool.submit(_run_host, ep, text, options_for(text), auth, judged.profile, judged.waivers, probes,
                                   req.timeout) for ep, text in runnable]
            outcomes.extend(f.result() for f in futures)

    for o in outcomes:
        for key in o.new_keys:
            recorder.write(HostKeyContent(notice_id=auth.notice_id, summary=HostKeySummary(
                host=key.host, key_type=key.key_type, fingerprint=key.fingerprint, event="accepted-new",
                accepted_by="--accept-new-host-key")))
        if o.status == "refused" and str(o.message).startswith("host key"):
            recorder.write(RefusalContent(notice_id=auth.notice_id, scope=auth.scope_doc(), tests=["host"],
                                          summary=RefusalSummary(code="host-key", message=str(o.message),
                                                                 targets=[o.target])))
    overrides = dict(judged.overrides)
    for name, value in (("unit", req.unit), ("lead_time", req.lead_time), ("jump", req.jump),
                        ("probe", ",".join(req.probes) or None)):
        if value is not None:
            overrides[name] = value
    if req.sudo:
        overrides["sudo"] = "true"
    applied = Judging(judged.profile, judged.waivers, judged.fail_on, overrides).applied(
        ctx, unit=settings.unit, lead_time_s=int(settings.lead_time.total_seconds()))
    exit_code = 2 if any(o.status != "ok" for o in outcomes) else max(
        (scan_exit_code(o.result, judged) for o in outcomes if o.result is not None), default=0)
    results = remote_document(auth.notice_id, outcomes).to_json()
    entry = recorder.write(RemoteContent(
        notice_id=auth.notice_id, scope=auth.scope_doc(), tests=[p.id for p in probes], applied=applied,
        summary=RemoteSummary(hosts={o.target: o.brief() for o in outcomes})), results=results)
    return RemoteOutcome(auth.notice_id, outcomes, judged, entry, exit_code)


def _run_host(endpoint: SSHEndpoint, text: str, options: SSHOptions, auth: Authorization, profile: Profile,
              waivers: list[WaiverSpec], probes: list[Probe], timeout: float) -> HostOutcome:  # type: ignore[type-arg]
    from probes.remote.ssh_transport import HostKeyRejected, SSHConnectError, SSHTransport

    now = dt.datetime.now(dt.UTC)
    if now >= auth.deadline:
        return HostOutcome(text, endpoint.host, "cancelled", msg.NOT_STARTED())
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
            return HostOutcome(text, endpoint.host, "refused", host_key_message(exc), new_keys=new_keys)
        except SSHConnectError as exc:
            if watchdog.fired:
                why = _why(deadline, auth, timeout)
                return HostOutcome(text, endpoint.host, "stopped", msg.STOPPED_CONNECTING(why=why),
                                   new_keys=new_keys)
            return HostOutcome(text, endpoint.host, "error", str(exc), new_keys=new_keys)
        result = run_scan(transport, profile, waivers, probes)
    finally:
        watchdog.cancel()
        transport.close()
    if watchdog.fired:
        why = _why(deadline, auth, timeout)
        return HostOutcome(text, endpoint.host, "stopped", msg.STOPPED_PARTIAL(why=why), result,
                           new_keys, transport.host_key_fingerprint)
    return HostOutcome(text, endpoint.host, "ok", "", result, new_keys, transport.host_key_fingerprint)


def _why(deadline: dt.datetime, auth: Authorization, timeout: float) -> Message:
    if deadline == auth.deadline:
        return msg.WINDOW_CLOSED(time=LocalTime(auth.deadline))
    return msg.HOST_LIMIT(limit=Duration(timeout))


def host_key_message(exc: Any) -> Message:
    """One sentence that says what was refused and what the operator can do about it."""
    if exc.reason == "unknown":
        return msg.HOST_KEY_UNKNOWN(host=exc.host, fingerprint=exc.fingerprint)
    return msg.HOST_KEY_CHANGED(host=exc.host, fingerprint=exc.fingerprint, expected=exc.expected or "-")
