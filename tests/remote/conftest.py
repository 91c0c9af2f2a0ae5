"""Fixtures for remote tests: the namespace lab (tests/lab.py) with a real OpenSSH server on port 22 of every
host, each with its own host key and our own client key in its authorized_keys; plus a notice issuer."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.cli.main import main
from agent.notice import Notice, RateLimits, add_trusted, load_issuer_key, sign_notice
from agent.state import StateDir
from tests.lab import Lab, LabHost, _pdeathsig, _stop, _wait_tcp

UNIT = "Unit A"


@dataclass
class SshHost:
    host: LabHost
    dir: Path
    client_pub: str
    proc: subprocess.Popen[bytes] | None = None
    generation: int = 0

    @property
    def ip(self) -> str:
        return self.host.ip

    @property
    def netns(self) -> str:
        return self.host.netns

    def start(self, new_key: bool = False) -> None:
        """(Re)start sshd; ``new_key`` gives the host a fresh host key (a replaced or spoofed host)."""
        self.stop()
        key = self.dir / "ssh_host_ed25519_key"
        if new_key or not key.exists():
            for p in (key, Path(f"{key}.pub")):
                p.unlink(missing_ok=True)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
            self.generation += 1
        auth = self.dir / "authorized_keys"
        auth.write_text(self.client_pub + "\n")
        auth.chmod(0o600)
        conf = self.dir / "sshd_config"
        conf.write_text(
            f"Port 22\nListenAddress {self.ip}\nHostKey {key}\nPidFile none\nAuthorizedKeysFile {auth}\n"
            "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nLogLevel ERROR\nMaxSessions 64\nMaxStartups 100\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "/usr/sbin/sshd", "-D", "-e", "-f", str(conf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_pdeathsig,
        )
        _wait_tcp(self.host, 22)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def signal_all(self, sig: signal.Signals) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


@dataclass
class SshLab:
    lab: Lab
    hosts: list[SshHost]
    client_key: Path
    dir: Path
    extra: list[SshHost] = field(default_factory=list)

    def run_in(self, host: SshHost, argv: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return self.lab.run(host.host, argv, timeout=timeout)


def build_ssh_lab(n_hosts: int) -> SshLab:
    if os.geteuid() != 0:
        pytest.skip("the SSH lab needs root (network namespaces, sshd)")
    lab = Lab(n_hosts=n_hosts, ssh=False)
    tmp = Path(tempfile.mkdtemp(prefix="precaution-ssh-"))
    try:
        client_key = tmp / "client_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(client_key)], check=True)
        pub = Path(f"{client_key}.pub").read_text().strip()
        hosts = []
        for h in lab.hosts:
            d = tmp / h.name
            d.mkdir()
            s = SshHost(h, d, pub)
            s.start()
            hosts.append(s)
        return SshLab(lab, hosts, client_key, tmp)
    except BaseException:
        close_ssh_lab_parts(lab, [], tmp)
        raise


def close_ssh_lab_parts(lab: Lab, hosts: Sequence[SshHost], tmp: Path) -> None:
    for h in hosts:
        with contextlib.suppress(Exception):
            h.signal_all(signal.SIGCONT)
        h.stop()
    lab.close()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def ssh_lab() -> Iterator[SshLab]:
    the_lab = build_ssh_lab(3)
    try:
        yield the_lab
    finally:
        close_ssh_lab_parts(the_lab.lab, the_lab.hosts, the_lab.dir)


# --- notices ------------------------------------------------------------------------------------------------


@dataclass
class Issuer:
    key_path: Path
    state: Path

    def notice(self, path: Path, targets: Sequence[str], kinds: Sequence[str] = ("host",), *,
               start: dt.timedelta = dt.timedelta(seconds=0.5), end: dt.timedelta = dt.timedelta(hours=1),
               unit: str = UNIT, issued_at: dt.datetime | None = None, lead_time: dt.timedelta = dt.timedelta(0),
               notice_id: str = "N-2026-001", max_parallel: int | None = None, sign: bool = True) -> Path:
        now = dt.datetime.now(dt.UTC)
        notice = Notice(notice_id, "State Security Bureau (test)", unit, "+86 10 0000 0000", tuple(targets),
                        tuple(kinds), now + start, now + end, RateLimits(None, max_parallel), lead_time,
                        issued_at or now)
        signed = sign_notice(notice, load_issuer_key(self.key_path))
        data = signed.to_document()
        if not sign:
            doc = json.loads(data)
            doc["signature"] = None
            data = json.dumps(doc).encode()
        path.write_bytes(data)
        return path


@pytest.fixture
def issuer(tmp_path: Path, _isolated_state: Path) -> Issuer:
    """An issuing body whose key this agent trusts."""
    key = tmp_path / "issuer.key"
    assert main(["notice", "keygen", str(key)]) == 0
    add_trusted("State Security Bureau (test)", load_issuer_key(key).public_key(), StateDir(_isolated_state))
    return Issuer(key, _isolated_state)


def ack(path: Path) -> int:
    return main(["notice", "ack", str(path), "--unit", UNIT, "--lead-time", "0"])


def wait_open(path: Path) -> None:
    """Sleep until the notice window opens (notices in tests open a second after they are issued)."""
    start = json.loads(path.read_bytes())["notice"]["window"]["start"]
    opens = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    left = (opens - dt.datetime.now(dt.UTC)).total_seconds()
    if left > 0:
        time.sleep(left + 0.05)


def valid_notice(issuer: Issuer, path: Path, targets: Sequence[str], **kw: object) -> Path:
    """Issued, acknowledged, and open."""
    issuer.notice(path, targets, **kw)  # type: ignore[arg-type]
    assert ack(path) == 0
    wait_open(path)
    return path
