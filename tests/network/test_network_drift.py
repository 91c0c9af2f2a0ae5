"""Network drift on the lab that compares like with like: an unchanged segment stays quiet whatever subset is
scanned, and every planted change is one finding with its own rule (baselines/netdrift.py, drift rules SEG-*)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import main
from tests.lab import Lab
from tests.remote.conftest import UNIT

# Every port a lab host listens on (tests/lab.py DEFAULT_LAYOUT) besides a few closed ones, and 2222 for the
# SSH server that sends its KEXINIT with the identification line.
PORTS = "21-25,53,80,443,2222,3306,5432,6379,8080,8443,9100,31337"
EAGER_PORT = 2222


@pytest.fixture(autouse=True)
def _lab_is_own_network(lab: Lab, _isolated_state: Path) -> None:
    _isolated_state.mkdir(parents=True, exist_ok=True)
    (_isolated_state / "config.toml").write_text(
        f'[netscan]\nown_networks = ["{lab.network}"]\n[notice]\nunit = "{UNIT}"\nlead_time = "0"\n')


@pytest.fixture
def eager_ssh(lab: Lab) -> Iterator[str]:
    """An SSH server on host 7 that sends KEXINIT (a new random cookie each time) right after its banner."""
    listener = lab.open_port(lab.host_ip(7), EAGER_PORT, kind="ssh-eager", banner="SSH-2.0-LabSSH_1.0")
    try:
        yield lab.host_ip(7)
    finally:
        listener.close()


def _hosts(lab: Lab) -> str:
    """The lab hosts as a range: the scanner's own address (the bridge) is left out, because other test
    sessions on this machine open and close ports there."""
    return f"{lab.host_ip(1)}-{lab.host_ip(12)}"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _netscan(capsys: pytest.CaptureFixture[str], lab: Lab, *argv: str) -> dict[str, Any]:
    code, out, err = _cli(capsys, "netscan", *argv, "--scope", str(lab.network), "--json", "--fail-on", "critical")
    assert code == 0, err
    assert err == ""  # nothing leaks to stderr (scapy warnings, progress)
    data: dict[str, Any] = json.loads(out)
    return data


def _drift(data: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((f["rule_id"], f["subject"]) for f in data["findings"] if f["kind"] == "drift")


def _capture(capsys: pytest.CaptureFixture[str], lab: Lab, *argv: str) -> None:
    code, out, err = _cli(capsys, "baseline", "capture", "--network", *argv, "--scope", str(lab.network),
                          "--force", "--by", "test")
    assert code == 0, err
    assert "captured" in out


def test_quiet_network(lab: Lab, eager_ssh: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Capture, rescan twice unchanged, scan subsets of hosts and ports: 0 drift findings."""
    same = ("--ports", PORTS, "--iface", lab.bridge, "--engine", "nmap")
    _capture(capsys, lab, _hosts(lab), *same)
    for _ in range(2):
        data = _netscan(capsys, lab, _hosts(lab), *same, "--services", "--observations")
        assert data["baseline"]["drift"] == {"added": 0, "removed": 0, "changed": 0}, \
            data["baseline"]
        assert _drift(data) == []
        assert len(data["netscan"]["hosts_up"]) == 12
        banners = {o["subject"]: o["attrs"]["banner"] for o in data["observations"] if o["probe"] == "services"}
        assert banners[f"{eager_ssh}|{EAGER_PORT}"] == "SSH-2.0-LabSSH_1.0"  # checked, and compared
    # subsets: one host and one port (the 63 "gone" findings), some hosts and ports, without ARP (no MAC
    # addresses), with the other engine (other service names), without discovery
    subsets = [
        (lab.host_ip(1), "--ports", "22"),
        (lab.host_ip(1), lab.host_ip(3), lab.host_ip(7), "--ports", f"22,80,443,{EAGER_PORT}", "--services",
         "--iface", lab.bridge),
        (_hosts(lab), "--ports", "80,8080"),
        (lab.host_ip(2), lab.host_ip(6), "--ports", "3306,6379,8080,9999", "--engine", "builtin"),
        (lab.host_ip(4), "--no-discovery", "--ports", "21,23", "--services"),
    ]
    for argv in subsets:
        data = _netscan(capsys, lab, *argv)
        assert _drift(data) == [], argv
        base = data["baseline"]
        assert base["status"] == "compared" and base["drift"] == {"added": 0, "removed": 0, "changed": 0}, \
            (argv, base)
    # what was compared is stated: one host, one port
    data = _netscan(capsys, lab, lab.host_ip(1), "--ports", "22")
    assert data["netscan"]["compared"] == {"targets": [f"{lab.host_ip(1)}/32"], "ports": "22", "hosts": True,
                                           "mac": False, "services": False, "engine_names": True,
                                           "complete": True}


def test_one_host_after_a_whole_segment(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """The report's case: baseline the whole /24 (the scanner's own address too), then `netscan <one host>
    --ports 22`: nothing is "gone", neither the hosts and ports not scanned nor the scanner itself."""
    _capture(capsys, lab, str(lab.network), "--ports", "22,80", "--engine", "builtin", "--no-services",
             "--iface", lab.bridge)
    data = _netscan(capsys, lab, lab.host_ip(1), "--ports", "22", "--engine", "builtin", "--iface", lab.bridge)
    assert _drift(data) == [] and data["baseline"]["drift"] == {"added": 0, "removed": 0, "changed": 0}
    assert data["netscan"]["compared"]["targets"] == [f"{lab.host_ip(1)}/32"]


def test_a_gone_host_and_a_new_host_are_one_finding_each(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """A host that leaves the segment is one finding (its ports and services are in it), still found when only
    part of the segment is scanned."""
    from tests.lab import Service

    rogue = lab.add_host((Service("tcp", 80, "http"), Service("tcp", 21, "banner", "220 lab FTP server ready\r\n")))
    try:
        _capture(capsys, lab, f"{lab.host_ip(1)}-{rogue.ip}", "--ports", "21,80", "--engine", "builtin",
                 "--iface", lab.bridge)
    finally:
        lab.remove_host(rogue)
    data = _netscan(capsys, lab, f"{lab.host_ip(10)}-{rogue.ip}", "--ports", "21,80", "--engine", "builtin",
                    "--iface", lab.bridge, "--services")
    assert _drift(data) == [("PC-DRIFT-SEG-002", rogue.ip)]
    (gone,) = (f for f in data["findings"] if f["kind"] == "drift")
    assert gone["severity"] == "low" and gone["remediation"]["action"] == "investigate"
    assert {(r["probe"], r["subject"]) for r in gone["evidence"]["related"]} == {
        ("ports", f"{rogue.ip}|tcp|21"), ("ports", f"{rogue.ip}|tcp|80"), ("services", f"{rogue.ip}|21"),
        ("services", f"{rogue.ip}|80")}
    # and a device that appears afterwards where the baseline looked is one "new host" finding, its port in it
    newcomer = lab.add_host((Service("tcp", 80, "http"),), index=50)
    try:
        data = _netscan(capsys, lab, f"{lab.host_ip(10)}-{rogue.ip}", "--ports", "21,80", "--engine", "builtin",
                        "--iface", lab.bridge)
    finally:
        lab.remove_host(newcomer)
    assert sorted(_drift(data)) == [("PC-DRIFT-SEG-001", newcomer.ip), ("PC-DRIFT-SEG-002", rogue.ip)]
    (new_host,) = (f for f in data["findings"] if f["rule_id"] == "PC-DRIFT-SEG-001")
    assert new_host["severity"] == "high"
    assert [(r["probe"], r["subject"]) for r in new_host["evidence"]["related"]] == [("ports", f"{newcomer.ip}|tcp|80")]


def test_baseline_without_arp_gives_no_mac_changes(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """A baseline captured without --iface holds no MAC addresses; netscan --iface is not "changed"."""
    _capture(capsys, lab, _hosts(lab), "--ports", "22,80", "--engine", "builtin", "--no-services")
    data = _netscan(capsys, lab, _hosts(lab), "--ports", "22,80", "--engine", "builtin", "--iface", lab.bridge)
    assert _drift(data) == [] and data["netscan"]["compared"]["mac"] is False
    # captured with --iface, the MAC addresses are in the baseline and compared
    _capture(capsys, lab, _hosts(lab), "--ports", "22,80", "--engine", "builtin", "--no-services",
             "--iface", lab.bridge)
    data = _netscan(capsys, lab, _hosts(lab), "--ports", "22,80", "--engine", "builtin", "--iface", lab.bridge)
    assert _drift(data) == [] and data["netscan"]["compared"]["mac"] is True


def test_a_new_port_is_reported_exactly_once(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    ip = lab.host_ip(10)
    same = (ip, "--ports", "80,8471,31337", "--engine", "nmap", "--services")
    _capture(capsys, lab, *same)
    code, out, _ = _cli(capsys, "baseline", "show", "--network-scope", str(lab.network), "--json")
    # every probe that ran is in the baseline, also one that saw nothing here (no SSH, no TLS on this host)
    assert code == 0 and json.loads(out)["meta"]["probes"] == ["coverage", "hosts", "ports", "services",
                                                               "ssh_algos", "tls"]
    listener = lab.open_port(ip, 8471, kind="banner", banner="220 lab FTP server ready\r\n")
    try:
        data = _netscan(capsys, lab, *same)
    finally:
        listener.close()
    assert _drift(data) == [("PC-DRIFT-SEG-003", f"{ip}|tcp|8471")]
    (finding,) = (f for f in data["findings"] if f["kind"] == "drift")
    assert finding["severity"] == "high"
    assert {r["probe"] for r in finding["evidence"]["related"]} == {"services"}  # its service row, folded in
    assert data["baseline"]["drift"] == {"added": 2, "removed": 0, "changed": 0}  # the port and its service row
    assert not any("not in baseline" in n or "not compared" in n for n in data["notes"]), data["notes"]


def test_a_changed_service_version_is_one_finding(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    ip = lab.host_ip(9)
    same = (ip, "--ports", str(EAGER_PORT), "--engine", "builtin", "--services")
    old = lab.open_port(ip, EAGER_PORT, kind="ssh-eager", banner="SSH-2.0-LabSSH_1.0")
    try:
        _capture(capsys, lab, *same)
        assert _drift(_netscan(capsys, lab, *same)) == []  # the random KEXINIT cookie is not a change
    finally:
        old.close()
    new = lab.open_port(ip, EAGER_PORT, kind="ssh-eager", banner="SSH-2.0-LabSSH_2.1")
    try:
        data = _netscan(capsys, lab, *same)
        code, out, _ = _cli(capsys, "netscan", *same, "--scope", str(lab.network), "--lang", "zh-CN",
                            "--fail-on", "critical")
    finally:
        new.close()
    assert _drift(data) == [("PC-DRIFT-SEG-008", f"{ip}|{EAGER_PORT}")]
    (finding,) = (f for f in data["findings"] if f["kind"] == "drift")
    assert finding["severity"] == "medium" and finding["remediation"]["action"] == "investigate"
    assert "LabSSH_2.1" in finding["remediation"]["steps"]["en"]
    assert {r["probe"] for r in finding["evidence"]["related"]} == {"ssh_algos"}
    assert code == 0 and "上的服务发生变化" in out


def test_nothing_answered_is_an_error(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """No host reached (an unused address, everything down): say so and exit 2, unless --allow-empty."""
    nobody = str(lab.network.network_address + 200)
    argv = ("netscan", nobody, "--scope", str(lab.network), "--ports", "22,80", "--engine", "builtin",
            "--iface", lab.bridge)
    code, out, err = _cli(capsys, *argv)
    assert code == 2
    assert out.count("Nothing answered") == 1 and "No findings" not in out
    assert err == "precaution: error: no host answered: nothing was tested (use --allow-empty if an empty " \
                  "segment is expected)\n"
    code, out, err = _cli(capsys, *argv, "--lang", "zh-CN")
    assert code == 2 and "无任何应答" in out and "未发现问题" not in out
    code, out, err = _cli(capsys, *argv, "--json")
    assert code == 2 and json.loads(out)["netscan"]["nothing_answered"] is True
    code, out, err = _cli(capsys, *argv, "--allow-empty")
    assert code == 0 and err == "" and "Nothing answered" in out
    code, _, err = _cli(capsys, "baseline", "capture", "--network", nobody, "--scope", str(lab.network),
                        "--ports", "22", "--engine", "builtin")
    assert code == 2 and "no host answered" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "baseline", "capture", "--network", nobody, "--scope", str(lab.network),
                        "--ports", "22", "--engine", "builtin", "--allow-empty")
    assert code == 0, err


def test_passive_stage_says_what_it_heard(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("netscan", lab.host_ip(1), "--scope", str(lab.network), "--ports", "22", "--engine", "builtin",
            "--passive", lab.bridge, "--duration", "1", "--fail-on", "critical")
    code, out, err = _cli(capsys, *argv)
    assert code == 0 and err == ""
    assert f"link {lab.bridge} (1 s): heard " in out and " ARP, " in out and " DNS, " in out
    code, out, _ = _cli(capsys, *argv, "--lang", "zh-CN")
    assert code == 0 and f"链路 {lab.bridge}（1 秒）：收到 " in out


def test_no_route_is_nothing_answered(lab: Lab, _isolated_state: Path) -> None:
    """Run inside a lab host, which has no route beyond its own /24: a target off that segment cannot be
    reached (nothing leaves the namespace) and netscan says that nothing answered, exit 2."""
    import sys

    off_link = ipaddress_of(lab, 250)
    (_isolated_state / "config.toml").write_text(f'[netscan]\nown_networks = ["{off_link}.0/24"]\n')
    exe = str(Path(sys.executable).with_name("precaution"))
    out = lab.run(lab.host_ip(9), [exe, "netscan", f"{off_link}.7", "--scope", f"{off_link}.0/24", "--ports",
                                   "22,80", "--engine", "builtin"], timeout=120)
    assert out.returncode == 2, out.stderr
    assert "Nothing answered" in out.stdout and "No findings" not in out.stdout
    assert out.stderr.endswith("precaution: error: no host answered: nothing was tested (use --allow-empty if an "
                               "empty segment is expected)\n")


def ipaddress_of(lab: Lab, third: int) -> str:
    """The first three octets of a /24 next to the lab's own (inside 10.231.0.0/16, never routed anywhere)."""
    a, b, _, _ = str(lab.network.network_address).split(".")
    return f"{a}.{b}.{third}"
