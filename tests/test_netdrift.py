"""Network drift that compares like with like (baselines/netdrift.py) and one finding per change (drift.py)."""

from __future__ import annotations

from collections import Counter

from baselines.diff import diff
from baselines.drift import drift_findings
from baselines.netdrift import Coverage, network_parents
from baselines.profile import load_profile
from probes.observation import Observation

NET = "10.231.9.0/24"
H1, H2, SCANNER = "10.231.9.11", "10.231.9.12", "10.231.9.1"
RULES = load_profile().drift


def host(ip: str, mac: str = "02:00:00:00:00:01") -> Observation:
    return Observation("hosts", ip, {"ip": ip, "mac": mac, "vendor": "", "method": "arp", "rtt_ms": 0.3},
                       frozenset({"rtt_ms", "method"}))


def port(ip: str, number: int, service: str = "ssh", version: str = "") -> Observation:
    return Observation("ports", f"{ip}|tcp|{number}", {"host": ip, "proto": "tcp", "port": number, "state": "open",
                                                       "service": service, "product": "", "version": version,
                                                       "reason": "syn-ack", "cpe": (), "extrainfo": ""},
                       frozenset({"reason"}))


def service(ip: str, number: int, banner: str = "SSH-2.0-OpenSSH_9.2p1", name: str = "ssh") -> Observation:
    return Observation("services", f"{ip}|{number}", {"host": ip, "port": number, "service": name, "banner": banner,
                                                      "tls": False, "note": ""}, frozenset({"note"}))


def ssh(ip: str, number: int, software: str = "OpenSSH_9.2p1") -> Observation:
    return Observation("ssh_algos", f"{ip}|{number}", {"host": ip, "port": number, "ident": f"SSH-2.0-{software}",
                                                       "software": software, "kex": ("curve25519-sha256",)})


def tls(ip: str, number: int, sha256: str = "aa" * 32) -> Observation:
    return Observation("tls", f"{ip}|{number}", {"host": ip, "port": number, "version": "TLSv1.3",
                                                 "sha256": sha256, "cert_subject": "CN=a", "days_left": 30},
                       frozenset({"days_left"}))


def findings(old: list[Observation], new: list[Observation]) -> list[tuple[str, str, int]]:
    d = diff(old, new)
    return sorted((f.finding.rule_id, f.finding.subject, len(f.items))
                  for f in drift_findings(d, RULES, "net", parents=network_parents))


def test_a_new_port_is_one_finding_with_its_service_rows() -> None:
    old = [host(H1), port(H1, 22), service(H1, 22), ssh(H1, 22)]
    new = [*old, port(H1, 443, "https"), service(H1, 443, "", "https"), tls(H1, 443)]
    assert findings(old, new) == [("PC-DRIFT-SEG-003", f"{H1}|tcp|443", 3)]


def test_a_gone_host_is_one_finding_with_its_ports() -> None:
    old = [host(H1), port(H1, 22), service(H1, 22), ssh(H1, 22), host(H2), port(H2, 80, "http")]
    assert findings(old, [host(H2), port(H2, 80, "http")]) == [("PC-DRIFT-SEG-002", H1, 4)]
    new_host = [host(H1), port(H1, 22), service(H1, 22), ssh(H1, 22)]
    assert findings([], new_host) == [("PC-DRIFT-SEG-001", H1, 4)]


def test_a_changed_service_version_has_its_own_rule_once() -> None:
    old = [host(H1), port(H1, 22), service(H1, 22), ssh(H1, 22)]
    new = [host(H1), port(H1, 22), service(H1, 22, "SSH-2.0-OpenSSH_9.6p1"), ssh(H1, 22, "OpenSSH_9.6p1")]
    d = diff(old, new)
    (only,) = drift_findings(d, RULES, "net", parents=network_parents)
    assert only.finding.rule_id == "PC-DRIFT-SEG-008" and len(only.items) == 2
    assert only.finding.remediation.action.value == "investigate"
    steps = only.finding.remediation.steps
    assert "OpenSSH_9.6p1" in steps.en and "OpenSSH_9.6p1" in steps.zh
    assert {r["probe"] for r in only.finding.evidence["related"]} == {"ssh_algos"}
    # nmap -sV saw the version change too: still one finding, the port's service rule
    new_v = [host(H1), port(H1, 22, version="9.6p1"), *new[2:]]
    assert findings([*old[:1], port(H1, 22, version="9.2p1"), *old[2:]], new_v) == \
        [("PC-DRIFT-SEG-004", f"{H1}|tcp|22", 3)]


def test_a_new_certificate_and_a_new_mac_have_their_own_rules() -> None:
    old = [host(H1), port(H1, 443, "https"), tls(H1, 443)]
    assert findings(old, [host(H1), port(H1, 443, "https"), tls(H1, 443, "bb" * 32)]) == \
        [("PC-DRIFT-SEG-007", f"{H1}|443", 1)]
    assert findings(old, [host(H1, "02:00:00:00:00:99"), *old[1:]]) == [("PC-DRIFT-SEG-006", H1, 1)]
    # a port that closed on a host whose MAC changed: two changes, two findings
    assert findings(old, [host(H1, "02:00:00:00:00:99")]) == \
        [("PC-DRIFT-SEG-005", f"{H1}|tcp|443", 2), ("PC-DRIFT-SEG-006", H1, 1)]


def test_no_network_change_falls_to_the_catch_all() -> None:
    base = [host(H1), port(H1, 22), service(H1, 22), ssh(H1, 22), port(H1, 443, "https"),
            service(H1, 443, "", "https"), tls(H1, 443)]
    variants = [
        [],
        [host(H1, "02:00:00:00:00:99"), *base[1:]],
        [o for o in base if o.probe != "tls"],
        [o for o in base if o.probe != "services"],
        [*base[:2], service(H1, 22, "SSH-2.0-dropbear"), *base[3:]],
        [*base, port(H2, 5432, "postgresql"), service(H2, 5432, "", "unknown"), host(H2)],
    ]
    for new in variants:
        for old, cur in ((base, new), (new, base)):
            rules = Counter(r for r, _, _ in findings(old, cur))
            assert "PC-DRIFT-999" not in rules and "PC-DRIFT-000" not in rules, rules


def coverage(targets: list[str], ports: list[tuple[int, int]], arp: bool = True, services: bool = True,
             engine: str = "nmap", discovery: bool = True) -> Coverage:
    return Coverage.of(targets, ports, discovery, arp, services, engine)


def test_only_what_both_runs_covered_is_compared() -> None:
    """A /24 baseline, then one host on port 22: nothing else is "gone", not even the scanner's own address."""
    lab = [host(SCANNER), host(H1), port(H1, 22), port(H1, 80, "http"), service(H1, 22), ssh(H1, 22),
           service(H1, 80, "", "http"), host(H2), port(H2, 443, "https"), tls(H2, 443)]
    baseline = coverage([NET], [(1, 1024)])
    run = coverage([H1], [(22, 22)])
    common = run.common(baseline)
    assert common.targets == (f"{H1}/32",) and common.ports == ((22, 22),)
    now = [host(H1), port(H1, 22), service(H1, 22), ssh(H1, 22)]
    assert diff(common.comparable(lab), common.comparable(now)).empty
    # a port outside the baseline's ports is not "new": the baseline never looked there
    wider = coverage([H1], [(22, 22), (8000, 9000)]).common(baseline)
    assert diff(wider.comparable(lab), wider.comparable([*now, port(H1, 8080, "http")])).empty
    # but a port the baseline did cover and did not see is new
    assert diff(baseline.comparable(lab), baseline.comparable([*lab, port(H1, 23, "telnet")])).added


def test_mac_and_engine_names_only_when_both_runs_had_them() -> None:
    with_arp = [host(H1, "02:00:00:00:00:01"), port(H1, 8080, "http-proxy")]
    without = [host(H1, ""), port(H1, 8080, "http-alt")]
    common = coverage([NET], [(1, 65535)], arp=False, engine="builtin").common(coverage([NET], [(1, 65535)]))
    assert not common.arp and common.engine == ""
    assert diff(common.comparable(with_arp), common.comparable(without)).empty
    both = coverage([NET], [(1, 65535)])
    assert both.common(both) == both
    changed = diff(both.comparable(with_arp), both.comparable([host(H1, "02:00:00:00:00:02"), with_arp[1]]))
    assert [i.subject for i in changed.changed] == [H1]


def test_service_rows_only_when_both_runs_checked_services() -> None:
    lab = [host(H1), port(H1, 22), service(H1, 22)]
    common = coverage([NET], [(22, 22)], services=False).common(coverage([NET], [(22, 22)]))
    assert "services" not in common.probes()
    assert diff(common.comparable(lab), common.comparable(lab[:2])).empty
    no_discovery = coverage([NET], [(22, 22)], discovery=False).common(coverage([NET], [(22, 22)]))
    assert "hosts" not in no_discovery.probes()


def test_coverage_round_trips_through_a_baseline_row() -> None:
    cov = coverage([NET, "10.231.8.5", "::1"], [(22, 22), (80, 90), (91, 100)], arp=False)
    assert cov.ports == ((22, 22), (80, 100))
    assert Coverage.from_observations([host(H1), cov.to_observation()]) == cov
    assert Coverage.from_observations([host(H1)]) is None
    assert cov.common(None) == cov


def test_a_run_cut_short_reports_nothing_as_gone() -> None:
    """The notice window ended mid-scan: hosts and ports not seen may never have been tried."""
    from baselines.netdrift import seen_only

    cut = Coverage.of([NET], [(1, 1024)], True, True, True, "nmap", complete=False)
    full = coverage([NET], [(1, 1024)])
    common = cut.common(full)
    assert not common.complete and not full.common(full.common(cut)).complete
    assert Coverage.from_observations([cut.to_observation()]) == cut
    lab = [host(H1), port(H1, 22), host(H2), port(H2, 80, "http")]
    seen = [host(H1), port(H1, 22), port(H1, 23, "telnet")]
    d = seen_only(diff(common.comparable(lab), common.comparable(seen)))
    assert [i.subject for i in d.added] == [f"{H1}|tcp|23"] and not d.removed
