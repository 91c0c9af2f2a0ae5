"""`precaution netscan` end to end on the lab: exit codes, JSON, table, passive checks, baseline, bad input."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import main
from agent.scope import Scope
from agent.services.context import AgentContext
from agent.services.netscan import BASELINE_PROBES, baseline_observations, network_scope_id, observations_for_baseline
from agent.state import StateDir
from tests.lab import Lab
from tests.remote.conftest import UNIT, Issuer, valid_notice


@pytest.fixture(autouse=True)
def _lab_is_own_network(request: pytest.FixtureRequest, _isolated_state: Path) -> None:
    """The unit declares the lab as its own network: its self-inspection may test it without a notice."""
    if "no_own_networks" in request.keywords:
        return
    lab: Lab = request.getfixturevalue("lab")
    _isolated_state.mkdir(parents=True, exist_ok=True)
    (_isolated_state / "config.toml").write_text(
        f'[netscan]\nown_networks = ["{lab.network}"]\n[notice]\nunit = "{UNIT}"\nlead_time = "0"\n')


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["netscan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = _run(capsys, *argv, "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


def _rules(data: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["rule_id"], f["host"]) for f in data["findings"]}


def test_lab_end_to_end_json(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    ip3, ip4, ip6, ip9 = (lab.host_ip(i) for i in (3, 4, 6, 9))
    code, data = _json(capsys, ip3, ip4, ip6, ip9, "--scope", str(lab.network), "--ports", "21,23,443,3306",
                       "--services", "--engine", "builtin", "--iface", lab.bridge, "--observations")
    assert code == 1  # telnet and FTP are high
    assert data["schema"] == "precaution.netscan/v2"
    assert data["netscan"]["hosts_up"] == sorted([ip3, ip4, ip6, ip9])  # ip9 answers ARP, every port closed
    assert data["netscan"]["engine"] == "builtin"
    assert {p["id"]: p["status"] for p in data["probes"]} == {"discovery": "ok", "ports": "ok", "services": "ok"}
    rules = _rules(data)
    assert {("PC-NSVC-001", ip4), ("PC-NSVC-002", ip4), ("PC-NSVC-009", ip3), ("PC-NSVC-016", ip6)} <= rules
    assert not any(r.startswith("PC-LINK") for r, _ in rules)
    assert set(data["summary"]["unevaluated_rules"]) == {f"PC-LINK-00{i}" for i in range(1, 6)}
    telnet = next(f for f in data["findings"] if f["rule_id"] == "PC-NSVC-001")
    assert telnet["subject"] == f"{ip4}|23" and telnet["remediation"]["action"] == "stop_use"
    assert f"{ip4} (port 23)" in telnet["remediation"]["steps"]["en"]
    probes = {o["probe"] for o in data["observations"]}
    assert probes == {"hosts", "ports", "services", "tls"}
    open_ports = {(o["attrs"]["host"], o["attrs"]["port"]) for o in data["observations"] if o["probe"] == "ports"}
    assert open_ports == {(ip3, 443), (ip4, 21), (ip4, 23), (ip6, 3306)}

    # the same scan through nmap finds the same ports; nothing is critical, so --fail-on critical passes
    code, nm = _json(capsys, ip3, ip4, ip6, "--scope", str(lab.network), "--ports", "21,23,443,3306",
                     "--engine", "nmap", "--fail-on", "critical", "--observations")
    assert code == 0 and nm["netscan"]["engine"] == "nmap"
    assert {(o["attrs"]["host"], o["attrs"]["port"]) for o in nm["observations"] if o["probe"] == "ports"} == open_ports


def test_lab_table_output(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    ip4 = lab.host_ip(4)
    code, out, err = _run(capsys, ip4, "--scope", str(lab.network), "--ports", "21,23", "--services",
                          "--engine", "builtin")
    assert code == 1, err
    assert "Open ports" in out and f"{ip4}" in out and "telnet" in out
    assert "PC-NSVC-001" in out and "PC-NSVC-002" in out
    code, out, _ = _run(capsys, ip4, "--scope", str(lab.network), "--ports", "21,23", "--services",
                        "--engine", "builtin", "--lang", "zh-CN")
    assert code == 1 and "开放端口" in out and "停止" in out


def test_passive_through_cli(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    dns_host = lab.host_ip(5)
    stop = threading.Event()

    def keep_asking() -> None:
        # The capture starts after the (short) port scan; ask repeatedly so an answer falls inside it.
        while not stop.is_set():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.settimeout(0.3)
                u.sendto(b"\x11\x22\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03lab\x04test\x00\x00\x01\x00\x01",
                         (dns_host, 53))
                with contextlib.suppress(TimeoutError):
                    u.recv(512)
            time.sleep(0.2)

    thread = threading.Thread(target=keep_asking)
    thread.start()
    try:
        code, data = _json(capsys, lab.bridge_ip, "--scope", str(lab.network), "--ports", "1", "--no-discovery",
                           "--engine", "builtin",
                           "--passive", lab.bridge, "--duration", "2", "--dns-server", lab.bridge_ip,
                           "--fail-on", "medium")
    finally:
        stop.set()
        thread.join(5)
    assert code == 1
    link = [f for f in data["findings"] if f["rule_id"] == "PC-LINK-005"]
    assert link and link[0]["subject"].startswith(f"dns_resolver|dns|{dns_host}")
    assert link[0]["host"] == f"link:{lab.bridge}"
    assert "link" in {p["id"] for p in data["probes"]}


def _drift(data: dict[str, Any], change: str) -> set[tuple[str, str]]:
    return {(f["probe"], f["subject"]) for f in data["findings"]
            if f["kind"] == "drift" and f["evidence"].get("change") == change}


def test_compared_with_network_baseline(lab: Lab, capsys: pytest.CaptureFixture[str], _isolated_state: Path) -> None:
    from agent.baseline_files import BaselineFiles, now_iso
    from baselines.diff import index, volatile_of
    from baselines.store import BaselineMeta
    from baselines.store import Scope as BaselineScope

    ip4 = lab.host_ip(4)
    scope = str(lab.network)
    argv = (ip4, "--scope", scope, "--ports", "21,23", "--engine", "builtin", "--services", "--observations")
    _, first = _json(capsys, *argv)
    assert first["baseline"]["status"] == "missing"
    assert any("no network baseline" in n for n in first["notes"])
    from probes.observation import Observation

    observed = [Observation(o["probe"], o["subject"], {k: tuple(v) if isinstance(v, list) else v
                                                       for k, v in o["attrs"].items()})
                for o in first["observations"]]
    # The accepted baseline knew only FTP on this host: telnet on 23 is new since then.
    kept = [o for o in baseline_observations(observed) if not o.subject.endswith("|23")]
    bscope = BaselineScope("network", network_scope_id(Scope.parse(scope)))
    meta = BaselineMeta(scope=bscope, version=1, created_at=now_iso(), created_by="test", accepted_at=now_iso(),
                        accepted_by="test", action="capture", accepted_items=0, tool_version="test",
                        hostname="", machine_id="", profile_id="default",
                        probes=("hosts", "ports", "services", "tls", "ssh_algos"))
    BaselineFiles(StateDir(_isolated_state)).save(meta, index(kept), volatile_of(kept))

    code, second = _json(capsys, *argv)
    assert code == 1
    base = second["baseline"]
    assert base["scope"] == bscope.label and base["version"] == 1 and base["status"] == "compared"
    assert _drift(second, "added") == {("ports", f"{ip4}|tcp|23"), ("services", f"{ip4}|23")}
    assert base["drift"] == {"added": 2, "removed": 0, "changed": 0}
    drift = [f for f in second["findings"] if f["kind"] == "drift"]
    assert {f["subject"] for f in drift} >= {f"{ip4}|tcp|23"}


def test_baseline_capture_hook(lab: Lab, _isolated_state: Path) -> None:
    ip4 = lab.host_ip(4)
    ctx = AgentContext.load(StateDir(_isolated_state))
    scope, observations, _ = observations_for_baseline(ctx, [ip4], str(lab.network), "21,23", engine="builtin")
    assert scope.entries() == [str(lab.network)]
    assert {o.probe for o in observations} <= set(BASELINE_PROBES)
    assert {o.subject for o in observations if o.probe == "services"} == {f"{ip4}|21", f"{ip4}|23"}


BAD_INPUT = [
    (["10.231.1.11"], "outside the notified scope"),  # default scope is loopback only
    (["127.0.0.1", "--scope", "10.0.0.0/33"], "bad network"),
    (["127.0.0.1", "--scope", "10.1.2.3/8"], "bad network"),
    (["127.0.0.1", "--ports", "0"], "out of range"),
    (["127.0.0.1", "--ports", "70000"], "out of range"),
    (["127.0.0.1", "--ports", "90-80"], "bad port range"),
    (["127.0.0.1", "--ports", "http"], "not a number"),
    (["10.0.0.1", "--scope", "10.0.0.0/8"], "scope too large"),
    (["127.0.0.1", "--passive", "pcs-nope0"], "no such network interface"),
    (["127.0.0.1", "--passive", "lo", "--duration", "0"], "--duration"),
    (["127.0.0.1", "--gateway", "10.231.9.1=zz:zz"], "not a MAC address"),
    (["127.0.0.1", "--dns-server", "resolver"], "not an IP address"),
    (["127.0.0.1", "--fail-on", "severe"], "unknown severity"),
    (["127.0.0.1", "--iface", "pcs-nope0"], "no network interface"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_one_line_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("precaution: error: ") and err.count("\n") == 1, err
    assert message in err


def test_unresolvable_name(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # The resolver is replaced: a real lookup would send a DNS query to the machine's resolver, which is not a
    # test host (network safety rule). What is tested is how netscan reports the failure.
    asked: list[str] = []

    def no_such_name(host: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    code, out, err = _run(capsys, "no-such-host.invalid", "--scope", "127.0.0.1/32")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "cannot resolve host name 'no-such-host.invalid'" in err and asked == ["no-such-host.invalid"]


def test_missing_nmap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nmap anywhere on PATH
    code, _, err = _run(capsys, "127.0.0.1", "--engine", "nmap")
    assert code == 2 and "nmap is not installed" in err and err.count("\n") == 1


@pytest.mark.no_own_networks
def test_no_raw_socket_rights() -> None:
    import tempfile

    exe = Path(sys.executable).with_name("precaution")
    with tempfile.TemporaryDirectory(prefix="precaution-nobody-") as home:  # a state dir nobody can reach
        os.chmod(home, 0o777)
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(exe), "netscan",
                              "127.0.0.1", "--passive", "lo", "--duration", "1"],
                             capture_output=True, text=True, timeout=60, env={"PRECAUTION_HOME": home,
                                                                              "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    assert out.stderr == "precaution: error: capturing on lo needs root or CAP_NET_RAW\n"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_capture_network_baseline_then_drift(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """`baseline capture --network` through the CLI; a port that opens afterwards is drift in netscan."""
    ip4 = lab.host_ip(4)
    scope = str(lab.network)
    ports = "21,23,8471"
    code, out, err = _cli(capsys, "baseline", "capture", "--network", ip4, "--scope", scope, "--ports", ports,
                          "--engine", "builtin", "--by", "Wang Fang")
    assert code == 0, err
    assert "version 1 captured" in out and "Wang Fang" in out
    code, out, _ = _cli(capsys, "baseline", "show", "--network-scope", scope, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["meta"]["scope"]["kind"] == "network"
    argv = (ip4, "--scope", scope, "--ports", ports, "--engine", "builtin")
    code, clean = _json(capsys, *argv)
    assert code == 0 and clean["baseline"]["drift"] == {"added": 0, "removed": 0, "changed": 0}
    assert clean["baseline"]["status"] == "compared"
    listener = lab.open_port(ip4, 8471)
    try:
        code, drifted = _json(capsys, *argv)
    finally:
        listener.close()
    assert code == 1
    assert ("ports", f"{ip4}|tcp|8471") in _drift(drifted, "added")
    assert any(f["kind"] == "drift" and f["subject"] == f"{ip4}|tcp|8471" and f["severity"] == "high"
               for f in drifted["findings"])
    code, _, err = _cli(capsys, "baseline", "capture", "--scope", scope)
    assert code == 2 and "go with --network" in err


def _record_kinds(state: Path) -> list[tuple[str, str]]:
    from agent import record

    return [(e.kind, str(e.summary.get("code", "")) if isinstance(e.summary, dict) else "")
            for e in record.read_entries(state / record.RECORD_FILE)]


@pytest.mark.no_own_networks
def test_foreign_network_needs_a_notice(lab: Lab, capsys: pytest.CaptureFixture[str], _isolated_state: Path) -> None:
    """No own_networks declared: testing the lab is refused (exit 2, recorded), and nothing is sent."""
    code, _, err = _run(capsys, lab.host_ip(4), "--scope", str(lab.network), "--ports", "22", "--json")
    assert code == 2 and "needs an advance notice" in err and err.count("\n") == 1
    assert ("refusal", "no-notice") in _record_kinds(_isolated_state)
    code, _, _ = _run(capsys, "127.0.0.1", "--ports", "1", "--engine", "builtin", "--no-discovery", "--json")
    assert code in (0, 1)  # loopback needs no notice
    assert _record_kinds(_isolated_state)[-1] == ("netscan", "")


def test_scan_under_a_notice(lab: Lab, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                             _isolated_state: Path) -> None:
    """A valid, acknowledged, open notice sets the scope: its target is tested, another lab host is refused."""
    key = tmp_path / "issuer.key"
    assert main(["notice", "keygen", str(key)]) == 0
    from agent.notice import add_trusted, load_issuer_key

    add_trusted("State Security Bureau (test)", load_issuer_key(key).public_key(), StateDir(_isolated_state))
    capsys.readouterr()
    issuer = Issuer(key, _isolated_state)
    ip4, ip5 = lab.host_ip(4), lab.host_ip(5)
    notice = valid_notice(issuer, tmp_path / "n.json", [ip4], kinds=("portscan", "service"))
    capsys.readouterr()
    code, data = _json(capsys, ip4, "--notice", str(notice), "--ports", "21,23", "--engine", "builtin",
                       "--no-discovery", "--services")
    assert {o["attrs"]["port"] for o in data.get("observations", [])} <= {21, 23}
    assert any(f["rule_id"].startswith("PC-NSVC") for f in data["findings"])
    code, _, err = _run(capsys, ip5, "--notice", str(notice), "--ports", "23", "--engine", "builtin",
                        "--no-discovery", "--json")
    assert code == 2 and ip5 in err
    code, _, err = _run(capsys, ip4, "--notice", str(notice), "--ports", "23", "--json")  # discovery not allowed
    assert code == 2 and "discovery" in err
    kinds = _record_kinds(_isolated_state)
    assert ("netscan", "") in kinds and kinds.count(("refusal", "out-of-scope")) >= 1
