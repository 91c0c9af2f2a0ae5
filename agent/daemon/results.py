"""What goes into the spool: run reports (the collector's RunReport shape) and inspection-record lines.

A run is one spool item holding every finding of that run, so the collector always receives a run together with
all its findings (a finding missing from a complete run would read as resolved). Each run says what it covered
(``RunReport.coverage``): its own host for host runs, the answering targets and scanned ports for network runs;
the collector resolves only findings inside it. Under spool pressure ``shrink_run`` drops the run's info
findings, marks their probes ``limited`` and takes them out of the coverage: an incomplete probe never resolves
anything at the collector, so summarising never produces a false "fixed".
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent.daemon.spool import Priority, Spool, SpoolItem, priority_for

if TYPE_CHECKING:
    from agent.scan import ScanResult
    from agent.services.netscan import NetScanOutcome
    from agent.wire.collector_api import RunReport
    from agent.wire.coverage import RunCoverage

log = logging.getLogger(__name__)

RECORD_FILE = "record.jsonl"
_OFFSET_META = "record_offset"
RunKind = Literal["scan", "netscan", "remote", "inspection"]


def run_report(run_id: str, kind: RunKind, result: ScanResult, task_id: str | None = None,
               notice_id: str | None = None, coverage: RunCoverage | None = None) -> RunReport:
    """The collector's RunReport for a scan-like result: every probe's status and every finding, and what the
    run covered: ``coverage`` (a network run's, from ``netscan_coverage``), else the host it ran on (a host
    run; a network run without coverage covers nothing)."""
    from agent.documents import finding, probe_run
    from agent.wire.collector_api import RunReport
    from agent.wire.coverage import RunCoverage

    if coverage is None:
        coverage = RunCoverage(host=kind != "netscan")
    return RunReport(run_id=run_id, kind=kind, host=result.host.hostname, started=_iso(result.started),
                     finished=_iso(result.finished), task_id=task_id, notice_id=notice_id, login_failed=False,
                     probes=[probe_run(r) for r in result.probes], findings=[finding(f) for f in result.findings],
                     coverage=coverage)


def netscan_coverage(outcome: NetScanOutcome) -> RunCoverage:
    """What a network run covered, never more: only a port scan that ran to the end (status ok, not cut by
    the notice window or a host timeout) covers anything; then the addresses that answered (a target that was
    down or unreachable covers nothing, so its findings stay as they are) with the TCP ports tried on each,
    for host and port findings, and for service findings when every open port's service was checked. A
    passive listen that ran to the end covers its link."""
    from agent.wire.coverage import NetworkCoverage, RunCoverage
    from baselines.netdrift import SERVICE_PROBES, Coverage

    status = {r.probe: r.status for r in outcome.result.probes}
    networks: list[NetworkCoverage] = []
    cov = outcome.coverage
    if cov is not None and cov.complete and status.get("ports") == "ok":
        probes = ["hosts", "ports"]
        if cov.services and status.get("services") == "ok":
            probes += SERVICE_PROBES
        by_ports: dict[tuple[tuple[int, int], ...], list[str]] = {}
        for address in outcome.hosts_up:
            ranges = outcome.scanned_ports.get(address)
            if ranges:
                by_ports.setdefault(ranges, []).append(address)
        for ranges, addresses in sorted(by_ports.items()):
            blocks = Coverage.of(addresses, ranges, False, False, False, "").targets
            networks.append(NetworkCoverage(probes=list(dict.fromkeys(probes)), targets=list(blocks),
                                            tcp_ports=[f"{lo}-{hi}" for lo, hi in ranges]))
    if outcome.passive_iface and status.get("link") == "ok":
        networks.append(NetworkCoverage(probes=["link"], targets=[f"link:{outcome.passive_iface}"]))
    return RunCoverage(host=False, networks=networks)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def run_item(report: RunReport) -> SpoolItem:
    body = report.model_dump(mode="json", by_alias=True)
    severities = [f.severity for f in report.findings if not f.waived]
    return SpoolItem(f"run:{report.run_id}", "run", body, priority_for("run", severities),
                     shrinkable=any(f.severity == "info" for f in report.findings))


def shrink_run(body: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, int] = {}
    kept = []
    for finding in body["findings"]:
        if finding["severity"] == "info":
            info[finding["probe"]] = info.get(finding["probe"], 0) + 1
        else:
            kept.append(finding)
    probes = []
    for probe in body["probes"]:
        count = info.get(probe["id"], 0)
        if count:
            probe = {**probe, "status": "limited" if probe["status"] == "ok" else probe["status"],
                     "limitations": [*probe["limitations"],
                                     f"{count} info finding(s) summarised by the agent under spool pressure "
                                     "(not sent)"]}
        probes.append(probe)
    coverage = body.get("coverage")
    if coverage and info:  # the summarised findings' probes no longer speak for their absent findings
        coverage = {**coverage, "networks": [
            {**n, "probes": [p for p in n["probes"] if p not in info]} for n in coverage.get("networks", [])]}
    return {**body, "findings": kept, "probes": probes, "coverage": coverage}


SHRINKERS = {"run": shrink_run}


def spool_run(spool: Spool, report: RunReport) -> str | None:
    """Commit one run; the refusal message when the spool would not take it (disk full), else None."""
    from agent.daemon.spool import SpoolRefused

    try:
        spool.put(run_item(report))
    except SpoolRefused as exc:
        return str(exc)
    return None


def ship_record(spool: Spool, state: Path) -> int:
    """Copy new inspection-record lines into the spool (KEEP items keyed by seq). Idempotent: after a crash the
    same lines are offered again and ignored by key; a record shorter than the saved offset starts over."""
    path = state / RECORD_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return 0
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        offset = int(spool.get_meta(_OFFSET_META) or 0)
        if offset > size:
            log.warning("inspection record %s is shorter than what was already spooled: re-reading it", path)
            offset = 0
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1  # only complete lines: a writer may be mid-append
    items = []
    for raw in data[:end].split(b"\n")[:-1]:
        seq = _seq_of(raw)
        if seq is None:
            log.error("inspection record %s: unreadable line at byte %d not spooled", path, offset)
            continue
        items.append(SpoolItem(f"record:{seq}", "record", {"seq": seq, "line": raw.decode("utf-8")},
                               Priority.KEEP))
    if items:
        spool.put_many(items)
    if end:
        spool.set_meta(_OFFSET_META, str(offset + end))
    return len(items)


def _seq_of(raw: bytes) -> int | None:
    try:
        seq = json.loads(raw)["entry"]["seq"]
    except (ValueError, KeyError, TypeError):
        return None
    return seq if isinstance(seq, int) else None


def reset_record_offset(spool: Spool) -> None:
    """Offer the whole record again (the collector reported a gap): lines it holds come back duplicate."""
    spool.set_meta(_OFFSET_META, "0")
