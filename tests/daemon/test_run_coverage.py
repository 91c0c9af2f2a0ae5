"""What a network run says it covered (agent.daemon.results.netscan_coverage) and how the collector reads it
(agent.wire.coverage): never more than was tested. Pure, no traffic."""

from __future__ import annotations

import datetime as dt

from agent.daemon.results import netscan_coverage, run_item, run_report, shrink_run
from agent.runner import ProbeRun
from agent.scan import HostIdentity, ScanResult
from agent.services.netscan import NetScanOutcome
from agent.wire.coverage import HOST_ONLY, NetworkCoverage, RunCoverage, covers_network, finding_target
from baselines.netdrift import Coverage

NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


def _outcome(statuses: dict[str, str], hosts_up: list[str], complete: bool = True, services: bool = False,
             passive: str | None = None) -> NetScanOutcome:
    result = ScanResult(host=HostIdentity("db01", "m"), transport="network", as_root=True, started=NOW, finished=NOW,
                        profile_id="default", probes=[ProbeRun(p, p, s) for p, s in statuses.items()], findings=[])
    cov = Coverage.of(["10.231.0.5", "10.231.0.6", "10.231.0.7"], [(1, 1024)], True, False, services, "nmap",
                      complete)
    return NetScanOutcome(result=result, targets=["10.231.0.0/29"], scope=["10.231.0.0/29"], engine="nmap",
                          hosts_up=hosts_up, coverage=cov if "ports" in statuses else None,
                          scanned_ports={"10.231.0.5": ((1, 1024),), "10.231.0.6": ((1, 1024),),
                                         "10.231.0.7": ((22, 22), (80, 80))},
                          passive_iface=passive)


def test_only_answering_targets_with_their_own_ports_are_covered() -> None:
    got = netscan_coverage(_outcome({"discovery": "ok", "ports": "ok"}, ["10.231.0.5", "10.231.0.7"]))
    assert got == RunCoverage(host=False, networks=[
        NetworkCoverage(probes=["hosts", "ports"], targets=["10.231.0.5/32"], tcp_ports=["1-1024"]),
        NetworkCoverage(probes=["hosts", "ports"], targets=["10.231.0.7/32"], tcp_ports=["22-22", "80-80"])])
    assert not covers_network(got, "ports", "10.231.0.6", "10.231.0.6|tcp|22")  # down: covers nothing
    assert covers_network(got, "ports", "10.231.0.7", "10.231.0.7|tcp|80")
    assert not covers_network(got, "ports", "10.231.0.7", "10.231.0.7|tcp|443")  # not scanned there
    assert not covers_network(got, "ports", "10.231.0.5", "10.231.0.5|udp|53")  # UDP is not in the TCP ranges
    assert not covers_network(got, "services", "10.231.0.5", "10.231.0.5|443")  # services were not checked


def test_a_cut_short_or_limited_scan_covers_nothing() -> None:
    for outcome in (_outcome({"ports": "ok"}, ["10.231.0.5"], complete=False),
                    _outcome({"ports": "limited"}, ["10.231.0.5"]),
                    _outcome({"ports": "error"}, ["10.231.0.5"]),
                    _outcome({"ports": "ok"}, [])):  # nothing answered
        assert netscan_coverage(outcome) == RunCoverage(host=False, networks=[])


def test_services_and_link_are_covered_only_when_their_stage_completed() -> None:
    full = netscan_coverage(_outcome({"ports": "ok", "services": "ok", "link": "ok"}, ["10.231.0.5"],
                                     services=True, passive="br0"))
    assert covers_network(full, "tls", "10.231.0.5", "10.231.0.5|443")
    assert covers_network(full, "link", "link:br0", "dhcp|10.231.0.9")
    assert not covers_network(full, "link", "link:eth1", "dhcp|10.231.0.9")
    partial = netscan_coverage(_outcome({"ports": "ok", "services": "limited", "link": "limited"}, ["10.231.0.5"],
                                        services=True, passive="br0"))
    assert not covers_network(partial, "tls", "10.231.0.5", "10.231.0.5|443")
    assert not covers_network(partial, "link", "link:br0", "dhcp|10.231.0.9")


def test_host_runs_cover_their_host_and_a_network_run_without_coverage_nothing() -> None:
    scan = _outcome({"sysctl": "ok"}, []).result
    assert run_report("r1", "scan", scan).coverage == HOST_ONLY
    assert run_report("r2", "remote", scan).coverage == HOST_ONLY
    assert run_report("r3", "netscan", scan).coverage == RunCoverage(host=False)


def test_finding_targets() -> None:
    assert finding_target("scan", "db01", "db01", "sshd:PermitRootLogin") is None
    assert finding_target("remote", "web02", "web02", "sysctl:net.ipv4.ip_forward") is None
    assert finding_target("netscan", "db01", "10.231.0.5", "10.231.0.5|tcp|22") == "10.231.0.5"
    assert finding_target("netscan", "db01", "db01", "10.231.0.5|tcp|22") == "10.231.0.5"  # a drift item
    assert finding_target("netscan", "db01", "10.231.0.5", "") == "10.231.0.5"
    assert finding_target("netscan", "db01", "link:br0", "10.231.0.9") == "link:br0"
    grouped = finding_target("netscan", "db01", "db01", "service=telnet")
    assert grouped == "group:service=telnet"
    assert not covers_network(RunCoverage(networks=[NetworkCoverage(probes=["ports"], targets=[grouped])]),
                              "ports", grouped, "service=telnet")


def test_shrinking_a_run_takes_the_summarised_probes_out_of_its_coverage() -> None:
    outcome = _outcome({"ports": "ok", "services": "ok"}, ["10.231.0.5"], services=True)
    body = run_item(run_report("r1", "netscan", outcome.result, coverage=netscan_coverage(outcome))).body
    info = {"id": "i1", "severity": "info", "probe": "tls", "subject": "10.231.0.5|443"}
    shrunk = shrink_run({**body, "findings": [info]})
    assert shrunk["findings"] == []
    (entry,) = shrunk["coverage"]["networks"]
    assert "tls" not in entry["probes"] and "ports" in entry["probes"]
