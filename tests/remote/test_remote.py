"""Remote host tests over SSH against real OpenSSH servers in network namespaces (tests/lab.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agent import record
from agent.cli.main import main
from probes.base import GatherContext
from probes.registry import get_probe
from probes.remote.ssh_transport import HostKeyRejected, SSHEndpoint, SSHOptions, SSHTransport
from tests.remote.conftest import UNIT, Issuer, SshHost, SshLab, ack, valid_notice, wait_open

ROOT = Path(__file__).resolve().parents[2]


def _remote(ssh_lab: SshLab, notice: Path, *hosts: str, extra: tuple[str, ...] = ()) -> list[str]:
    return ["remote", *hosts, "--notice", str(notice), "--key", str(ssh_lab.client_key), "--unit", UNIT,
            "--lead-time", "0", "--json", "--probe", "accounts", "--probe", "listeners", "--connect-timeout", "5",
            "--retries", "0", *extra]


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()  # drop what earlier steps (notice ack) printed
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def _entries(state: Path) -> list[record.Entry]:
    return record.read_entries(state / record.RECORD_FILE)


def _comparable(observations: list[dict[str, Any]], volatile: set[str]) -> dict[str, dict[str, Any]]:
    return {o["subject"]: {k: v for k, v in o["attrs"].items() if k not in volatile} for o in observations}


@pytest.mark.parametrize("sudo", [False, True], ids=["direct", "sudo"])
def test_same_observations_locally_and_over_ssh(ssh_lab: SshLab, sudo: bool) -> None:
    """The unchanged host probes give the same facts run inside the test host and over SSH to it."""
    host = ssh_lab.hosts[0]
    known = Path(tempfile.mkdtemp()) / "known_hosts"
    options = SSHOptions(key_file=str(ssh_lab.client_key), use_agent=False, known_hosts=known,
                         accept_new_host_key=True, sudo=sudo)
    with SSHTransport(SSHEndpoint(host.ip), options) as transport:
        assert transport.is_root
        for probe_id in ("accounts", "listeners"):
            probe = get_probe(probe_id)()
            observed = probe.observe(GatherContext(transport))
            remote = [o.to_json() for o in observed]
            volatile = set().union(*(o.volatile for o in observed))  # pids differ between runs
            local = ssh_lab.run_in(host, [sys.executable, "-m", "agent.cli.main", "probe", "run", probe_id])
            assert local.returncode == 0, local.stderr
            local_obs = json.loads(local.stdout)["observations"]
            assert remote, probe_id
            assert _comparable(remote, volatile) == _comparable(local_obs, volatile), probe_id
        listeners = {o["subject"] for o in [x.to_json() for x in get_probe("listeners")().observe(
            GatherContext(transport))]}
        assert f"tcp|{host.ip}|22" in listeners  # the sshd of the test host, seen from inside its namespace


def test_transport_basics(ssh_lab: SshLab) -> None:
    host = ssh_lab.hosts[0]
    known = Path(tempfile.mkdtemp()) / "known_hosts"
    options = SSHOptions(key_file=str(ssh_lab.client_key), use_agent=False, known_hosts=known,
                         accept_new_host_key=True)
    with SSHTransport(SSHEndpoint(host.ip), options) as t:
        with pytest.raises(FileNotFoundError):
            t.read_text("/nonexistent/file")
        assert t.read_bytes("/etc/passwd", 4) == b"root"
        assert not t.exists("/nonexistent") and t.exists("/etc/passwd")
        assert t.stat("/etc").is_dir and t.stat("/etc/passwd").is_file
        assert t.readlink("/proc/self").isdigit()
        assert "passwd" in t.list_dir("/etc")
        assert t.which("definitely-not-a-command") is None
        result = t.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
        with pytest.raises(subprocess.TimeoutExpired):
            t.run(["sleep", "5"], timeout=0.5)


# tcpdump runs with --immediate-mode: without it, packets wait in a TPACKET_V3 ring block and the block not
# yet handed over when SIGINT arrives is lost, so a short run could leave an empty capture that proves nothing.
@contextmanager
def _capture(bridge: str, bpf: str, out: Path, live_check: str | None = None) -> Iterator[None]:
    """tcpdump on the lab bridge. With ``live_check`` (an in-scope lab address matched by ``bpf``), one ping
    must show up in the file before the test acts: "listening on" alone was seen to come before packets land."""
    proc = subprocess.Popen(["tcpdump", "--immediate-mode", "-i", bridge, "-n", "-U", "-w", str(out), bpf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()  # "listening on ..." once the capture runs
    assert "listening" in line, line
    if live_check:
        deadline = time.monotonic() + 10
        while not _packets(out, f"icmp and host {live_check}"):
            assert time.monotonic() < deadline, "the capture never saw the liveness ping"
            subprocess.run(["ping", "-c", "1", "-W", "1", live_check], capture_output=True, check=False)
            time.sleep(0.1)
    try:
        yield
    finally:
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def _packets(pcap: Path, bpf: str) -> list[str]:
    out = subprocess.run(["tcpdump", "-r", str(pcap), "-n", bpf], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if line.strip()]


def test_target_outside_notice_gets_no_packet(ssh_lab: SshLab, issuer: Issuer, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    inside, outside = ssh_lab.hosts[0], ssh_lab.hosts[2]
    notice = valid_notice(issuer, tmp_path / "n.json", [inside.ip])
    pcap = tmp_path / "cap.pcap"
    with _capture(ssh_lab.lab.bridge, f"host {inside.ip} or host {outside.ip}", pcap, live_check=inside.ip):
        code, payload = _run(capsys, _remote(ssh_lab, notice, inside.ip, outside.ip,
                                             extra=("--accept-new-host-key",)))
    assert code == 2
    hosts = {h["target"]: h for h in payload["hosts"]}
    assert hosts[outside.ip]["status"] == "refused" and hosts[inside.ip]["status"] == "ok"
    assert _packets(pcap, f"host {inside.ip} and tcp port 22"), "the capture saw no SSH: it would prove nothing"
    # Nothing was sent towards it: no IP packet to it and no ARP request for it. (The test host's own ARP for
    # the bridge, and the bridge's reply, can appear: a neighbour entry going stale in its namespace.)
    assert _packets(pcap, f"(ip or ip6) and dst host {outside.ip}") == []
    assert _packets(pcap, f"arp[6:2] = 1 and dst host {outside.ip}") == []
    refusal = next(e for e in _entries(issuer.state) if e.kind == "refusal")
    assert refusal.summary["code"] == "out-of-scope" and outside.ip in refusal.summary["message"]


def test_remote_end_to_end_and_host_key_change(ssh_lab: SshLab, issuer: Issuer, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    host = ssh_lab.hosts[1]
    notice = valid_notice(issuer, tmp_path / "n.json", [host.ip])
    capsys.readouterr()
    # Unknown host key, not accepted: refused, nothing written to known_hosts.
    assert main(_remote(ssh_lab, notice, host.ip)) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["hosts"][0]["status"] == "refused" and "unknown" in out["hosts"][0]["message"]
    assert not (issuer.state / "known_hosts").exists()

    code = main(_remote(ssh_lab, notice, f"root@{host.ip}:22", extra=("--accept-new-host-key",)))
    payload = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    h = payload["hosts"][0]
    assert h["status"] == "ok" and h["scan"]["transport"] == "ssh" and h["scan"]["as_root"]
    assert {p["id"]: p["status"] for p in h["scan"]["probes"]} == {"accounts": "ok", "listeners": "ok"}
    entries = _entries(issuer.state)
    key_entry = next(e for e in entries if e.kind == "host-key")
    assert key_entry.summary["fingerprint"] == h["host_key"]
    run_entry = entries[-1]
    assert run_entry.kind == "remote" and run_entry.notice_id == "N-2026-001"
    assert run_entry.tests == ("accounts", "listeners")
    assert run_entry.results_sha256 == record.results_digest(payload)  # the record holds what was reported
    from agent.wire.record import RemoteEntry, parse_entry
    from agent.wire.remote import RemoteDocument
    from tests.schema_check import validate

    validate("remote.schema.json", payload)  # the generated JSON Schema, against the real sshd lab's output
    assert RemoteDocument.model_validate(payload).to_json() == payload
    typed = parse_entry(run_entry.body())
    assert isinstance(typed, RemoteEntry) and typed.summary.hosts[f"root@{host.ip}:22"].status == "ok"
    # what was applied: the unit and lead time given on the command line, recorded as overrides
    assert typed.applied is not None and typed.applied.unit == UNIT and typed.applied.lead_time_s == 0
    assert typed.applied.overrides["unit"] == UNIT and typed.applied.overrides["lead_time"] == "0"
    assert host.ip in (issuer.state / "known_hosts").read_text()

    assert main(_remote(ssh_lab, notice, host.ip)) in (0, 1)  # known now: no flag needed
    capsys.readouterr()

    host.start(new_key=True)  # the host's key changes between runs
    for extra in ((), ("--accept-new-host-key",)):
        assert main(_remote(ssh_lab, notice, host.ip, extra=extra)) == 2
        h = json.loads(capsys.readouterr().out)["hosts"][0]
        assert h["status"] == "refused" and "host key changed" in h["message"]
        refusal = [e for e in _entries(issuer.state) if e.kind == "refusal"][-1]
        assert refusal.summary["code"] == "host-key" and "changed" in refusal.summary["message"]
    assert record.verify(issuer.state / record.RECORD_FILE).ok


def test_changed_key_refused_by_transport(ssh_lab: SshLab, tmp_path: Path) -> None:
    host = ssh_lab.hosts[1]
    known = tmp_path / "known_hosts"
    known.write_text(f"{host.ip} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDNp3pRbj3ySIVkiDNRv5gAf4Mk4F0K0D1RqmlKg0tlj\n")
    options = SSHOptions(key_file=str(ssh_lab.client_key), use_agent=False, known_hosts=known,
                         accept_new_host_key=True)
    with pytest.raises(HostKeyRejected) as info:
        SSHTransport(SSHEndpoint(host.ip), options).connect()
    assert info.value.reason == "changed"


def test_only_target_outside_notice_refused_whole(ssh_lab: SshLab, issuer: Issuer, tmp_path: Path) -> None:
    notice = valid_notice(issuer, tmp_path / "n.json", [ssh_lab.hosts[0].ip])
    assert main(_remote(ssh_lab, notice, ssh_lab.hosts[2].ip)) == 2
    assert [e.kind for e in _entries(issuer.state)][-1] == "refusal"


def test_notified_endpoint_limits_user_and_port(ssh_lab: SshLab, issuer: Issuer, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    host = ssh_lab.hosts[0]
    notice = valid_notice(issuer, tmp_path / "n.json", [f"audit@{host.ip}:22"])
    code, payload = _run(capsys, _remote(ssh_lab, notice, f"root@{host.ip}"))
    assert code == 2
    h = payload["hosts"][0]
    assert h["status"] == "refused" and "not a notified SSH endpoint" in h["message"]


def test_jump_host(ssh_lab: SshLab, issuer: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jump, target = ssh_lab.hosts[0], ssh_lab.hosts[2]
    notice = valid_notice(issuer, tmp_path / "n.json", [jump.ip, target.ip])
    pcap = tmp_path / "cap.pcap"
    with _capture(ssh_lab.lab.bridge, f"host {target.ip}", pcap):
        code, payload = _run(capsys, _remote(ssh_lab, notice, target.ip,
                                             extra=("--jump", f"root@{jump.ip}", "--accept-new-host-key")))
    assert code in (0, 1)
    h = payload["hosts"][0]
    assert h["status"] == "ok"
    assert _packets(pcap, f"src host {jump.ip} and dst host {target.ip} and tcp dst port 22")
    assert _packets(pcap, f"src host {ssh_lab.lab.bridge_ip} and dst host {target.ip}") == []


def test_jump_host_outside_notice_refused(ssh_lab: SshLab, issuer: Issuer, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    jump, target = ssh_lab.hosts[0], ssh_lab.hosts[2]
    notice = valid_notice(issuer, tmp_path / "n.json", [target.ip])
    pcap = tmp_path / "cap.pcap"
    capsys.readouterr()
    with _capture(ssh_lab.lab.bridge, f"host {jump.ip} or host {target.ip}", pcap, live_check=target.ip):
        code = main(_remote(ssh_lab, notice, target.ip, extra=("--jump", f"root@{jump.ip}")))
    out = capsys.readouterr()
    assert code == 2
    assert jump.ip in out.out + out.err  # the refusal names the jump host
    assert _packets(pcap, f"host {target.ip} and icmp"), "the capture saw nothing: it would prove nothing"
    assert _packets(pcap, f"host {jump.ip}") == []  # not one packet to the jump host
    assert _packets(pcap, f"host {target.ip} and tcp") == []  # nor through it to the target
    refusal = [e for e in _entries(issuer.state) if e.kind == "refusal"][-1]
    assert jump.ip in refusal.summary["message"]


def _sshd_pids(host: SshHost) -> tuple[list[int], bool]:
    """The test host's sshd processes, and whether one of them is an authenticated session."""
    out, session = [], False
    for pid in host.pids():
        try:
            if Path(f"/proc/{pid}/comm").read_text().startswith("sshd"):
                out.append(pid)
                session = session or b"@notty" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
    return out, session


def test_window_closing_stops_the_run(ssh_lab: SshLab, issuer: Issuer, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The target hangs mid-run; the window closes; the run is stopped and the host not yet started is
    cancelled."""
    import datetime as dt
    import os

    slow, later = ssh_lab.hosts[2], ssh_lab.hosts[1]
    notice = issuer.notice(tmp_path / "n.json", [slow.ip, later.ip], start=dt.timedelta(seconds=1),
                           end=dt.timedelta(seconds=5))
    assert ack(notice) == 0
    wait_open(notice)
    capsys.readouterr()
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(main(_remote(
        ssh_lab, notice, slow.ip, later.ip, extra=("--accept-new-host-key", "--parallel", "1")))))
    runner.start()
    stopped: list[int] = []
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and runner.is_alive():
            pids, session = _sshd_pids(slow)
            if session:  # the run has logged in and is probing: freeze the host mid-run
                for pid in pids:
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
                break
            time.sleep(0.01)
        runner.join(30)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    captured = capsys.readouterr()
    assert not runner.is_alive() and codes == [2], captured.err
    assert stopped, "the run finished before the host could be frozen"
    hosts = {h["target"]: h for h in json.loads(captured.out)["hosts"]}
    assert hosts[slow.ip]["status"] == "stopped" and "window closed" in hosts[slow.ip]["message"]
    assert hosts[slow.ip]["scan"] is not None  # mid-run: the partial results are kept
    assert hosts[later.ip]["status"] == "cancelled"
    run = _entries(issuer.state)[-1]
    assert run.kind == "remote" and run.summary["hosts"][slow.ip]["status"] == "stopped"
