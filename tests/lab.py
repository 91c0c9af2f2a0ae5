"""A throw-away network lab in Linux network namespaces, for network tests and benchmarks.

Layout (slot 0): a bridge ``pcbr0`` in the root namespace with 10.231.1.1/24, and hosts ``pc-h1``..``pc-hN``
(10.231.1.11, .12, ...) each in its own namespace with a veth on the bridge, no default route and real
listeners: TCP banners and HTTP, an OpenSSH server, a TLS service (self-signed), a telnet-like login prompt,
a UDP DNS and NTP responder. The scanner under test runs in the root namespace and reaches the hosts over the
bridge; nothing in the lab can reach any other network (no default route in the hosts).

Several labs may run at once (other test sessions): each takes a *slot* guarded by an flock, slot k uses bridge
``pcbr{k}``, namespaces ``pc-hN`` (k = 0) or ``pc{k}-hN``, and 10.231.{k+1}.0/24. Leftovers of a crashed run in
a slot are removed when the slot is next taken (only under the slot's lock, so never a live lab). Processes get
PR_SET_PDEATHSIG so they die with the session even when it is killed; ``close()`` runs from try/finally and
atexit.

Run as a script (``python tests/lab.py serve SPEC_JSON``) this file is the service runner started inside a
host's namespace: one asyncio process per host serving every listener of that host.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import fcntl
import functools
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_DIR = Path("/run/precaution-lab")
MAX_SLOTS = 16
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Service:
    """One listener of a lab host. kind: http, tls, telnet, banner, plain, dns, ntp, ssh, ssh-eager (an SSH
    identification line, ``banner``, and KEXINIT in one write)."""

    proto: str  # tcp | udp
    port: int
    kind: str
    banner: str = ""


# The default hosts: index -> (services, MAC). A few MACs carry real vendor OUIs so that vendor lookup is tested;
# the rest are locally administered (02:...), which no vendor table knows.
DEFAULT_LAYOUT: dict[int, tuple[tuple[Service, ...], str | None]] = {
    1: ((Service("tcp", 22, "ssh"), Service("tcp", 80, "http")), None),
    2: ((Service("tcp", 80, "http"), Service("tcp", 8080, "http")), "00:1b:21:31:00:02"),  # Intel
    3: ((Service("tcp", 443, "tls"), Service("tcp", 8443, "tls")), None),
    4: ((Service("tcp", 23, "telnet"), Service("tcp", 21, "banner", "220 lab FTP server ready\r\n")), None),
    5: ((Service("udp", 53, "dns"), Service("tcp", 53, "plain"), Service("udp", 123, "ntp")), None),
    6: ((Service("tcp", 3306, "plain"), Service("tcp", 6379, "plain")), "00:50:56:31:00:06"),  # VMware
    7: ((Service("tcp", 80, "http"),), None),
    8: ((Service("tcp", 25, "banner", "220 lab.test ESMTP Postfix\r\n"),), "b8:27:eb:31:00:08"),  # Raspberry Pi
    9: ((), None),  # up, every port closed
    10: ((Service("tcp", 80, "http"), Service("tcp", 31337, "plain")), None),
    11: ((Service("tcp", 5432, "plain"),), None),
    12: ((Service("tcp", 9100, "plain"), Service("tcp", 65000, "plain")), None),
}


@dataclass
class LabHost:
    name: str  # also the namespace name
    ip: str
    mac: str
    services: tuple[Service, ...]
    veth: str  # bridge-side interface in the root namespace
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    @property
    def netns(self) -> str:
        return self.name

    def tcp_ports(self) -> set[int]:
        return {s.port for s in self.services if s.proto == "tcp"}

    def udp_ports(self) -> set[int]:
        return {s.port for s in self.services if s.proto == "udp"}


@dataclass
class SshServer:
    """The lab's OpenSSH server (for SSH probe tests): log in as ``user`` with a key added here."""

    host: LabHost
    port: int
    host_key_path: Path  # private host key (the sshd's)
    host_key_pub_path: Path
    authorized_keys_path: Path
    user: str = "root"

    @property
    def ip(self) -> str:
        return self.host.ip

    @property
    def host_key_pub(self) -> str:
        return self.host_key_pub_path.read_text().strip()

    def add_authorized_key(self, pubkey_line: str) -> None:
        with self.authorized_keys_path.open("a") as fh:
            fh.write(pubkey_line.strip() + "\n")


@dataclass
class Listener:
    """An extra listener started after setup (a port that opens); ``close()`` stops it."""

    host: LabHost
    service: Service
    proc: subprocess.Popen[bytes]

    def close(self) -> None:
        _stop(self.proc)
        with contextlib.suppress(ValueError):
            self.host.procs.remove(self.proc)


class LabUnavailable(Exception):
    """The lab cannot be built here (not root, no ip/netns support)."""


def _pdeathsig() -> None:
    # Children die with the session even on SIGKILL, so a crashed run leaves no listener behind.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 2.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream:
            with contextlib.suppress(OSError):
                stream.close()


def _ip(args: Sequence[str], batch: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *args]
    if batch is not None:
        argv += ["-batch", "-"]
    return subprocess.run(argv, input=batch, capture_output=True, text=True, check=check)


class Lab:
    """Build with ``Lab()`` (or ``with Lab() as lab``); ``close()`` removes everything."""

    def __init__(self, n_hosts: int = 12, ssh: bool = True, lock_timeout: float = 900.0) -> None:
        if os.geteuid() != 0:
            raise LabUnavailable("the network lab needs root (network namespaces, veth, bridge)")
        if shutil.which("ip") is None:
            raise LabUnavailable("the network lab needs iproute2 (ip)")
        self.n_hosts = n_hosts
        self.hosts: list[LabHost] = []
        self.ssh: SshServer | None = None
        self._closed = False
        self._lock_fd = -1
        self._tmp = Path(tempfile.mkdtemp(prefix="precaution-lab-"))
        self._lock_slot(lock_timeout)
        atexit.register(self.close)
        try:
            self._cleanup_slot()
            self._build(ssh)
        except BaseException:
            self.close()
            raise

    # --- naming -------------------------------------------------------------------------------------------
    def _lock_slot(self, timeout: float) -> None:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            for slot in range(MAX_SLOTS):
                fd = os.open(LOCK_DIR / f"slot{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                self._lock_fd = fd
                self.slot = slot
                self.prefix = "pc" if slot == 0 else f"pc{slot}"
                self.bridge = f"pcbr{slot}"
                self.network = ipaddress.IPv4Network(f"10.231.{slot + 1}.0/24")
                self.bridge_ip = str(self.network.network_address + 1)
                return
            if time.monotonic() > deadline:
                raise LabUnavailable(f"no free lab slot after {timeout:.0f}s ({MAX_SLOTS} labs in use)")
            time.sleep(0.5)

    def host_ip(self, index: int) -> str:
        return str(self.network.network_address + 10 + index)

    def _mac(self, index: int) -> str:
        return f"02:31:{self.slot:02x}:00:{index >> 8:02x}:{index & 0xFF:02x}"

    def _ns_pattern(self) -> re.Pattern[str]:
        return re.compile(rf"^{re.escape(self.prefix)}-h\d+$")

    # --- build / teardown ---------------------------------------------------------------------------------
    def _cleanup_slot(self) -> None:
        """Remove what a crashed run of this slot left (we hold the slot lock, so nothing here is live)."""
        out = _ip(["netns", "list"], check=False).stdout
        pattern = self._ns_pattern()
        stale = [line.split()[0] for line in out.splitlines() if line.split() and pattern.match(line.split()[0])]
        for ns in stale:
            self._kill_ns_pids(ns)
            _ip(["netns", "del", ns], check=False)
        if Path(f"/sys/class/net/{self.bridge}").exists():
            _ip(["link", "del", self.bridge], check=False)
        # A host veth can outlive its namespace (the namespace is freed asynchronously): remove it too, or
        # the next lab of this slot cannot create it.
        veth = re.compile(rf"^pcv{self.slot}-h\d+$")
        for name in os.listdir("/sys/class/net"):
            if veth.match(name):
                _ip(["link", "del", name], check=False)

    @staticmethod
    def _kill_ns_pids(ns: str) -> None:
        pids = _ip(["netns", "pids", ns], check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)

    def _build(self, ssh: bool) -> None:
        keygen: subprocess.Popen[bytes] | None = None
        if ssh:
            keygen = subprocess.Popen(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self._tmp / "ssh_host_ed25519_key")],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
        self.tls_cert = self._tmp / "tls.pem"
        certgen = subprocess.Popen(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", "/CN=lab-tls.test", "-days", "2", "-keyout", str(self.tls_cert), "-out", str(self.tls_cert)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        hosts = []
        for i in range(1, self.n_hosts + 1):
            services, mac = DEFAULT_LAYOUT.get(i, ((Service("tcp", 80, "http"),), None))
            if not ssh:
                services = tuple(s for s in services if s.kind != "ssh")
            hosts.append(self._new_host(i, services, mac))
        lines = [f"link add {self.bridge} type bridge stp_state 0 forward_delay 0",
                 f"addr add {self.bridge_ip}/24 dev {self.bridge}",
                 f"link set {self.bridge} up"]
        self._create_netns(hosts, lines)
        for p in (certgen, keygen):
            if p is not None and p.wait() != 0:
                raise LabUnavailable(f"lab key generation failed: {p.stderr.read().decode() if p.stderr else ''}")
        self.hosts = hosts
        self._start_services(hosts)

    def _new_host(self, index: int, services: tuple[Service, ...], mac: str | None) -> LabHost:
        name = f"{self.prefix}-h{index}"
        veth = f"pcv{self.slot}-h{index}"
        return LabHost(name=name, ip=self.host_ip(index), mac=mac or self._mac(index), services=services, veth=veth)

    def _create_netns(self, hosts: Sequence[LabHost], prelude: Sequence[str] = ()) -> None:
        # One `ip -batch` for the root namespace side, then one per host namespace, run in parallel.
        for h in hosts:
            _ip(["netns", "add", h.netns])
        root = list(prelude)
        for h in hosts:
            root += [f"link add {h.veth} type veth peer name eth0 netns {h.netns}",
                     f"link set {h.veth} master {self.bridge}",
                     f"link set {h.veth} up"]
        _ip([], batch="\n".join(root) + "\n")

        def inside(h: LabHost) -> None:
            batch = (f"link set lo up\nlink set eth0 address {h.mac}\n"
                     f"addr add {h.ip}/24 dev eth0\nlink set eth0 up\n")
            _ip(["-n", h.netns], batch=batch)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(inside, hosts))

    def _start_services(self, hosts: Sequence[LabHost]) -> None:
        # Popen from this thread only: PDEATHSIG fires when the *thread* that forked exits.
        waits: list[subprocess.Popen[bytes]] = []
        for h in hosts:
            plain = [s for s in h.services if s.kind != "ssh"]
            if plain:
                waits.append(self._spawn_runner(h, plain))
            if any(s.kind == "ssh" for s in h.services):
                self._start_sshd(h)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(_wait_ready, waits))
        if self.ssh is not None:
            _wait_tcp(self.ssh.host, self.ssh.port)

    def _spawn_runner(self, host: LabHost, services: Sequence[Service]) -> subprocess.Popen[bytes]:
        spec = json.dumps({"cert": str(self.tls_cert), "services": [vars(s) for s in services]})
        proc = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, sys.executable, str(Path(__file__).resolve()), "serve", spec],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=_pdeathsig,
        )
        host.procs.append(proc)
        return proc

    def _start_sshd(self, host: LabHost) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        key = self._tmp / "ssh_host_ed25519_key"
        auth = self._tmp / "authorized_keys"
        auth.touch(mode=0o600)
        conf = self._tmp / "sshd_config"
        conf.write_text(
            f"Port 22\nListenAddress 0.0.0.0\nHostKey {key}\nPidFile {self._tmp / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {auth}\nStrictModes no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nLogLevel ERROR\n"
        )
        proc = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "/usr/sbin/sshd", "-D", "-e", "-f", str(conf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_pdeathsig,
        )
        host.procs.append(proc)
        self.ssh = SshServer(host, 22, key, Path(f"{key}.pub"), auth)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for h in self.hosts:
            for p in h.procs:
                _stop(p, timeout=1.0)
        if self._lock_fd >= 0:
            self._cleanup_slot()
            os.close(self._lock_fd)
            self._lock_fd = -1
        shutil.rmtree(self._tmp, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- use ----------------------------------------------------------------------------------------------
    def host(self, name_or_ip: str) -> LabHost:
        for h in self.hosts:
            if name_or_ip in (h.name, h.ip):
                return h
        raise KeyError(name_or_ip)

    def ips(self) -> list[str]:
        return [h.ip for h in self.hosts]

    def run(self, host: LabHost | str, argv: Sequence[str], timeout: float = 30.0,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a command inside a host's namespace."""
        h = host if isinstance(host, LabHost) else self.host(host)
        return subprocess.run(["ip", "netns", "exec", h.netns, *argv], capture_output=True, text=True,
                              timeout=timeout, check=check)

    def open_port(self, host: LabHost | str, port: int, proto: str = "tcp", kind: str = "plain",
                  banner: str = "") -> Listener:
        """Start an extra listener (a port that opens); returns once it is bound."""
        h = host if isinstance(host, LabHost) else self.host(host)
        service = Service(proto, port, kind, banner)
        proc = self._spawn_runner(h, [service])
        _wait_ready(proc)
        return Listener(h, service, proc)

    def add_host(self, services: Sequence[Service] = (Service("tcp", 80, "http"),),
                 index: int | None = None, mac: str | None = None) -> LabHost:
        """Add a host after setup (a rogue device appearing on the segment)."""
        used = {int(h.name.rsplit("-h", 1)[1]) for h in self.hosts}
        if index is None:
            index = max([*used, 90]) + 1
        if index in used or not 1 <= index <= 240:
            raise ValueError(f"host index {index} is taken or out of range")
        h = self._new_host(index, tuple(services), mac)
        self._create_netns([h])
        self.hosts.append(h)
        self._start_services([h])
        return h

    def remove_host(self, host: LabHost | str) -> None:
        h = host if isinstance(host, LabHost) else self.host(host)
        for p in h.procs:
            _stop(p, timeout=1.0)
        self._kill_ns_pids(h.netns)
        # `ip netns del` frees the namespace asynchronously, and until then the host still answers ARP:
        # delete its link on the bridge now (both veth ends go) and wait until it is gone.
        _ip(["link", "del", h.veth], check=False)
        _ip(["netns", "del", h.netns], check=False)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/sys/class/net/{h.veth}") and time.monotonic() < deadline:
            time.sleep(0.02)
        self.hosts.remove(h)


def _wait_ready(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    assert proc.stdout is not None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        line = proc.stdout.readline()
    finally:
        timer.cancel()
    if line.strip() != b"READY":
        raise LabUnavailable(f"lab service did not start (exit {proc.poll()}): {line!r}")


def _wait_tcp(host: LabHost, port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection((host.ip, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise LabUnavailable(f"{host.name}: nothing listening on {port} after {timeout}s")


# ======================================================================================================
# Service runner: runs inside a host namespace (python tests/lab.py serve SPEC).

HTTP_REPLY = (b"HTTP/1.0 200 OK\r\nServer: lab-http/1.0\r\nContent-Type: text/html\r\nContent-Length: 17\r\n\r\n"
              b"<html>lab</html>\n")


async def _read_until(reader: asyncio.StreamReader, sep: bytes, limit: float = 5.0) -> bytes:
    try:
        return await asyncio.wait_for(reader.readuntil(sep), limit)
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return b""


def _tcp_handler(service: dict[str, Any]) -> Any:
    kind = service["kind"]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if kind in ("http", "tls"):
                if await _read_until(reader, b"\r\n\r\n"):
                    writer.write(HTTP_REPLY)
            elif kind == "telnet":
                writer.write(b"\r\nDebian GNU/Linux 12\r\nlab login: ")
                await writer.drain()
                if await _read_until(reader, b"\n", 10.0):
                    writer.write(b"Password: ")
                    await writer.drain()
                    if await _read_until(reader, b"\n", 10.0):
                        writer.write(b"\r\nLogin incorrect\r\n")
            elif kind == "ssh-eager":
                # Like servers that send KEXINIT right after their identification line (RFC 4253 allows it),
                # in the same segment: a new random cookie on every connection.
                writer.write((service["banner"] or "SSH-2.0-LabSSH_1.0").encode() + b"\r\n" + _ssh_kexinit())
                await writer.drain()
                await _read_until(reader, b"\n", 10.0)
            elif kind == "banner":
                writer.write(service["banner"].encode())
                await writer.drain()
                await _read_until(reader, b"\n", 10.0)
            else:  # plain: accept and wait for the peer to go
                await asyncio.wait_for(reader.read(1024), 10.0)
            await writer.drain()
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            writer.close()

    return handle


def _ssh_kexinit() -> bytes:
    """An SSH_MSG_KEXINIT binary packet (RFC 4253 7.1) with a random cookie."""
    lists = ["curve25519-sha256", "ssh-ed25519", "aes128-ctr", "aes128-ctr", "hmac-sha2-256", "hmac-sha2-256",
             "none", "none", "", ""]
    payload = bytes([20]) + os.urandom(16)
    payload += b"".join(struct.pack(">I", len(x)) + x.encode() for x in lists) + b"\x00" + b"\x00" * 4
    padding = 8 - (len(payload) + 5) % 8
    padding += 8 if padding < 4 else 0
    return struct.pack(">IB", len(payload) + padding + 1, padding) + payload + os.urandom(padding)


def _dns_reply(query: bytes, answer_ip: str) -> bytes | None:
    if len(query) < 12:
        return None
    qid, _flags, qdcount = struct.unpack("!HHH", query[:6])
    if qdcount != 1:
        return None
    end = 12
    while end < len(query) and query[end] != 0:
        end += query[end] + 1
    question = query[12:end + 5]
    header = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(answer_ip)
    return header + question + answer


def _ntp_reply(query: bytes) -> bytes | None:
    if len(query) < 48:
        return None
    now = time.time() + 2208988800
    stamp = struct.pack("!II", int(now), int((now % 1) * 2**32))
    # LI 0, version 4, mode 4 (server), stratum 2; origin = client's transmit timestamp.
    return b"\x24\x02\x06\xec" + b"\x00" * 8 + b"LAB\x00" + stamp + query[40:48] + stamp + stamp


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = _dns_reply(data, "10.231.255.1") if self.kind == "dns" else _ntp_reply(data)
        if reply and self.transport:
            self.transport.sendto(reply, addr)


async def _serve(spec: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, _ctx: None)  # handshake failures from scanners are expected
    tls: ssl.SSLContext | None = None
    for service in spec["services"]:
        if service["proto"] == "udp":
            kind = str(service["kind"])
            await loop.create_datagram_endpoint(functools.partial(_Udp, kind), local_addr=("0.0.0.0", service["port"]))
            continue
        if service["kind"] == "tls" and tls is None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(spec["cert"])
        await asyncio.start_server(_tcp_handler(service), "0.0.0.0", service["port"], backlog=1024,
                                   ssl=tls if service["kind"] == "tls" else None, reuse_address=True)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    # Stop when the lab closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.buffer.read)


def _serve_main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(spec))
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        sys.exit(_serve_main(sys.argv[2:]))
    # Manual use: build a lab, show it, wait for Enter, tear down.
    with Lab() as lab_:
        for h in lab_.hosts:
            sys.stdout.write(f"{h.name} {h.ip} {h.mac} {[(s.proto, s.port, s.kind) for s in h.services]}\n")
        input("lab up; Enter to tear down ")
