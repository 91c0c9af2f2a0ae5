"""SMBv1 detection: golden replies recorded from Samba 4.17, and live smbd in a lab host namespace."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent.scope import Scope, ScopeGuard
from probes.network import services, svc_smb
from probes.network.ports import PortSet
from probes.observation import Observation
from tests.lab import Lab, LabHost, _wait_tcp

FIX = Path(__file__).parent / "fixtures" / "smb"


# --- pure: request and recorded replies ----------------------------------------------------------------------

def test_negotiate_request_offers_only_smb1() -> None:
    req = svc_smb.negotiate_request(pid=0x1234, mid=7)
    assert req[0] == 0 and int.from_bytes(req[1:4], "big") == len(req) - 4
    smb = req[4:]
    assert smb[:4] == b"\xffSMB" and smb[4] == 0x72 and smb[32] == 0  # NEGOTIATE, WordCount 0
    assert int.from_bytes(smb[26:28], "little") == 0x1234 and int.from_bytes(smb[30:32], "little") == 7
    byte_count = int.from_bytes(smb[33:35], "little")
    assert smb[35:] == b"\x02NT LM 0.12\x00" and byte_count == len(smb) - 35
    assert b"SMB 2" not in req  # no SMB2 dialect: an SMB2-only server must refuse


# name → (recorded reply file, smb1 accepted). Replies recorded from smbd 4.17.12-Debian with our request.
CASES = {
    "samba-nt1": True,  # server min protocol = NT1
    "samba-default": False,  # Samba's default (SMB2_02 minimum): an SMB1 reply with dialect index 0xFFFF
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_replies(name: str) -> None:
    reply = bytes.fromhex(json.loads((FIX / f"{name}.json").read_text())["reply_hex"])
    assert svc_smb.smb1_accepted(reply) is CASES[name]
    smb = reply[4:]
    assert smb[:4] == b"\xffSMB" and smb[4] == 0x72  # both are SMB1 NEGOTIATE responses; only the index differs
    assert int.from_bytes(smb[33:35], "little") == (0 if CASES[name] else 0xFFFF)


def test_parser_edge_cases() -> None:
    nt1 = bytes.fromhex(json.loads((FIX / "samba-nt1.json").read_text())["reply_hex"])
    assert svc_smb.smb1_accepted(b"") is False  # closed / reset
    assert svc_smb.smb1_accepted(nt1[:20]) is False  # truncated
    smb2 = nt1[:4] + b"\xfeSMB" + nt1[8:]
    assert svc_smb.smb1_accepted(smb2) is False  # an SMB2 reply
    no_dialect = nt1[:37] + b"\xff\xff" + nt1[39:]
    assert svc_smb.smb1_accepted(no_dialect) is False  # dialect index 0xFFFF
    error = nt1[:9] + (0xC0000002).to_bytes(4, "little") + nt1[13:]
    assert svc_smb.smb1_accepted(error) is False  # error status


def test_check_smb1_takes_only_approved_targets() -> None:
    with pytest.raises(TypeError):
        svc_smb.check_smb1("127.0.0.1")  # type: ignore[arg-type]
    (portscan,) = ScopeGuard(Scope.parse("127.0.0.1/32")).approve(["127.0.0.1"], "portscan")
    with pytest.raises(PermissionError):
        svc_smb.check_smb1(portscan)
    (only_80,) = ScopeGuard(Scope.parse("127.0.0.1/32")).approve(["127.0.0.1"], "service", PortSet.of([80]))
    with pytest.raises(PermissionError):
        svc_smb.check_smb1(only_80, 445)


# --- live: smbd in a lab host ----------------------------------------------------------------------------------

SMB_CONF = """[global]
    server role = standalone server
    workgroup = LAB
    netbios name = LABSMB
    interfaces = {ip}/24
    bind interfaces only = yes
    smb ports = 445
    disable netbios = yes
    private dir = {d}/private
    lock directory = {d}/lock
    state directory = {d}/state
    cache directory = {d}/cache
    pid directory = {d}/pid
    ncalrpc dir = {d}/ncalrpc
    binddns dir = {d}/binddns
    log file = {d}/log.%m
    logging = file
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    {extra}
[tmp]
    path = {d}/share
    read only = yes
"""


@contextmanager
def smbd(lab: Lab, host: LabHost, extra: str) -> Iterator[None]:
    if shutil.which("smbd") is None:
        pytest.fail("smbd missing: apt-get install -y samba (Makefile DEB_PACKAGES)")
    d = Path(tempfile.mkdtemp(prefix="precaution-smb-"))
    for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "binddns", "share"):
        (d / sub).mkdir()
    conf = d / "smb.conf"
    conf.write_text(SMB_CONF.format(ip=host.ip, d=d, extra=extra))
    out = (d / "smbd.out").open("wb")  # a file, not a pipe: smbd's forked children would hold a pipe open
    proc = subprocess.Popen(["ip", "netns", "exec", host.netns, "smbd", "--foreground", "--no-process-group",
                             "-s", str(conf)], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        try:
            _wait_tcp(host, 445, timeout=20.0)
        except Exception:
            proc.kill()
            proc.wait(5)
            logs = "".join(p.read_text(errors="replace") for p in sorted(d.glob("*.out")) + sorted(d.glob("log.*")))
            pytest.fail(f"smbd did not listen on 445: {logs[-3000:]}")
        yield
    finally:
        # smbd's SIGTERM shutdown waits on its helper processes (notifyd, cleanupd); the host runs nothing
        # else, so kill every process in its namespace, then reap ours.
        lab._kill_ns_pids(host.netns)
        proc.kill()
        proc.wait(10)
        out.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def smb_host(lab: Lab) -> Iterator[LabHost]:
    host = lab.add_host(services=())
    try:
        yield host
    finally:
        lab.remove_host(host)


def _fired(observations: list[Observation]) -> set[str]:
    from baselines.evaluate import evaluate
    from baselines.profile import load_profile

    return {f.rule_id for f in evaluate(load_profile(), observations, "lab", {"services"}).findings}


@pytest.mark.parametrize(("extra", "want"), [("server min protocol = NT1", True), ("", False)],
                         ids=["nt1", "default"])
def test_live_smbd(lab: Lab, smb_host: LabHost, extra: str, want: bool) -> None:
    targets = ScopeGuard(Scope.parse(str(lab.network))).approve([smb_host.ip], "service")
    with smbd(lab, smb_host, extra):
        raw = svc_smb.exchange(smb_host.ip, 445, 3.0)
        assert svc_smb.check_smb1(targets[0]) is want
        res = services.check_services(targets, {smb_host.ip: [445]})
    assert svc_smb.smb1_accepted(raw) is want
    (row,) = res.services
    assert (row.host, row.port, row.smb1) == (smb_host.ip, 445, want)
    obs = [Observation.from_row(services.PROBE_SERVICES, row)]
    assert obs[0].attrs["smb1"] is want
    assert ("PC-NSVC-017" in _fired(obs)) is want
