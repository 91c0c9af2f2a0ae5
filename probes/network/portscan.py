"""Port scans of approved targets: nmap (through python-nmap, XML parsed in full) or a built-in epoll scanner.

Both engines return the same ``PortRow``. Only ``ApprovedTarget`` objects are scanned (``check_targets``);
ports must lie within what the guard approved. A run deadline (the notice window's end) stops the scan and keeps
what was found, marked partial.
"""

from __future__ import annotations

import copy
import datetime as dt
import errno
import functools
import logging
import os
import resource
import shutil
import socket
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from probes.errors import ProbeFailedAfterSend, ProbeInputError, SentTraffic
from probes.network.port_row import PortRow as PortRow
from probes.network.ports import PortSet
from probes.network.target import ApprovedTarget, check_targets, earliest_deadline, seconds_left
from probes.network.udp_probes import UDP_DEFAULT_PORTS as UDP_DEFAULT_PORTS
from probes.network.udp_probes import udp_scan

log = logging.getLogger(__name__)

ENGINES = ("auto", "nmap", "builtin")
SCAN_KINDS = ("portscan",)
# A short default list when neither the caller nor the notice names ports: common services, remote access,
# databases, industrial protocols seen in CII networks (Modbus 502, S7 102, DNP3 20000, BACnet 47808 is UDP).
DEFAULT_TCP_PORTS = PortSet.parse(
    "21-23,25,53,80,102,110,111,135,139,143,389,443,445,465,502,587,631,993,995,1080,1433,1521,1723,1883,2049,"
    "2375-2376,3128,3306,3389,5000,5432,5900-5901,5985-5986,6379,6443,8000,8080-8081,8443,8888,9000,9090,9100,"
    "9200,10000,11211,20000,27017"
)


@dataclass(frozen=True, slots=True)
class PortScanResult:
    rows: tuple[PortRow, ...]
    hosts_up: tuple[str, ...]
    engine: str
    partial: bool = False  # the deadline passed before every port was tried
    limitations: tuple[str, ...] = ()
    command: tuple[str, ...] = ()  # the nmap command line, for the record

    def open_ports(self, proto: str = "tcp") -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for r in self.rows:
            if r.proto == proto and r.state == "open":
                out.setdefault(r.host, set()).add(r.port)
        return out


@dataclass(frozen=True, slots=True)
class ScanOptions:
    engine: str = "auto"
    ports: PortSet | None = None  # None: each target's approved ports, else DEFAULT_TCP_PORTS
    udp_ports: PortSet | None = None  # None: no UDP scan; see UDP_DEFAULT_PORTS
    service_detection: bool = False  # nmap -sV (only on request: slow and talks to services)
    timing: int = 4  # nmap -T
    max_rate: int | None = None  # packets per second (nmap --max-rate; builtin: connects per second)
    timeout: float = 1.0  # builtin: per-port connect timeout, seconds
    retries: int = 1  # builtin: extra tries after a timeout
    concurrency: int = 1024  # builtin: sockets in flight (capped by RLIMIT_NOFILE)
    states: tuple[str, ...] = ("open",)  # which port states to return as rows
    deadline: dt.datetime | None = None  # besides the targets' own deadline
    extra: tuple[str, ...] = field(default=())  # nothing yet; reserved for nmap script names

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ProbeInputError(f"unknown scan engine {self.engine!r}; use one of {', '.join(ENGINES)}")
        if not 0 <= self.timing <= 5:
            raise ProbeInputError(f"nmap timing template must be 0-5, not {self.timing}")


def nmap_path() -> str | None:
    return shutil.which("nmap")


def choose_engine(engine: str) -> str:
    if engine == "auto":
        return "nmap" if nmap_path() else "builtin"
    if engine == "nmap" and nmap_path() is None:
        raise ProbeInputError("engine nmap asked for but nmap is not installed "
                              "(apt-get install nmap, or use engine builtin)")
    return engine


def _ports_for(target: ApprovedTarget, ports: PortSet | None) -> PortSet:
    if ports is None:
        return target.ports or DEFAULT_TCP_PORTS
    if target.ports is not None and not ports.issubset(target.ports):
        raise PermissionError(f"{target.address}: ports {ports} exceed the approved ports {target.ports}")
    return ports


def scan(targets: Sequence[ApprovedTarget], options: ScanOptions | None = None) -> PortScanResult:
    """Scan approved targets; TCP always, UDP when ``options.udp_ports`` is set."""
    opts = options or ScanOptions()
    check_targets(targets, SCAN_KINDS)
    if not targets:
        return PortScanResult((), (), choose_engine(opts.engine))
    engine = choose_engine(opts.engine)
    deadline = earliest_deadline(targets, opts.deadline)
    tcp_ports = {t.address: _ports_for(t, opts.ports) for t in targets}
    udp_ports = {t.address: _ports_for(t, opts.udp_ports) for t in targets} if opts.udp_ports else {}
    left = seconds_left(deadline)
    if left is not None and left <= 0:
        return PortScanResult((), (), engine, partial=True, limitations=("deadline passed before the scan began",))
    if engine == "nmap":
        return _nmap_scan(targets, tcp_ports, udp_ports, opts, deadline)
    return _builtin(targets, tcp_ports, udp_ports, opts, deadline)


# ==== nmap ===================================================================================================

def nmap_arguments(opts: ScanOptions, root: bool, udp: bool, host_timeout: float | None) -> list[str]:
    """Explicit nmap arguments (python-nmap would add -sV otherwise). -n: no reverse DNS, so nmap sends
    nothing to resolvers outside the approved targets. No --open: it would drop hosts without open ports from
    the XML, and hosts_up with them."""
    args = ["-n", "-sS" if root else "-sT", f"-T{opts.timing}", "--reason"]
    if udp and root:
        args.append("-sU")
    if opts.service_detection:
        args.append("-sV")
    if opts.max_rate:
        args += ["--max-rate", str(opts.max_rate)]
    if host_timeout is not None:
        args += ["--host-timeout", f"{max(1, int(host_timeout * 1000))}ms"]
    return args


def _nmap_ports(tcp: PortSet, udp: PortSet | None) -> str:
    return f"T:{tcp},U:{udp}" if udp else str(tcp)


def _nmap_scan(targets: Sequence[ApprovedTarget], tcp_ports: dict[str, PortSet], udp_ports: dict[str, PortSet],
               opts: ScanOptions, deadline: dt.datetime | None) -> PortScanResult:
    import nmap  # lazy: python-nmap spawns `nmap -V` on construction

    root = os.geteuid() == 0
    limitations: list[str] = []
    if udp_ports and not root:
        limitations.append("UDP scan needs root with nmap; used the built-in UDP probes")
    # One nmap run per distinct port set (usually one), so each host gets exactly its approved ports.
    groups: dict[tuple[str, str], list[str]] = {}
    for t in targets:
        udp = udp_ports.get(t.address) if root else None
        key = (str(tcp_ports[t.address]), str(udp) if udp else "")
        groups.setdefault(key, []).append(t.address)
    rows: list[PortRow] = []
    up: list[str] = []
    partial = False
    command: tuple[str, ...] = ()
    scanner = copy.copy(_nmap_prototype())
    for (tcp_s, udp_s), hosts in groups.items():
        left = seconds_left(deadline)
        if left is not None and left <= 0:
            partial = True
            break
        args = nmap_arguments(opts, root, bool(udp_s), left)
        ports = _nmap_ports(PortSet.parse(tcp_s), PortSet.parse(udp_s) if udp_s else None)
        command = ("nmap", "-oX", "-", *hosts, "-p", ports, *args)
        log.debug("running %s", " ".join(command))
        sent = SentTraffic("nmap", tuple(hosts), command, ports)
        try:
            scanner.scan(hosts=" ".join(hosts), ports=ports, arguments=" ".join(args))
        except nmap.PortScannerError as exc:
            # nmap had started: packets may have gone out, so this is a failed test, not a bad input.
            text = str(getattr(exc, "value", exc)).strip()  # str(exc) is the repr of nmap's stderr
            reason = text.splitlines()[0] if text else type(exc).__name__
            raise ProbeFailedAfterSend(f"nmap failed: {reason}", sent) from None
        xml = scanner.get_nmap_last_output()
        try:
            parsed = parse_nmap_xml(xml.decode() if isinstance(xml, bytes) else xml)
        except ValueError as exc:
            raise ProbeFailedAfterSend(str(exc), sent) from None
        rows.extend(r for r in parsed.rows if r.state in opts.states)
        up.extend(parsed.hosts_up)
        partial = partial or bool(parsed.timed_out)
    if udp_ports and not root:
        udp_rows, udp_partial = udp_scan(targets, udp_ports, opts.timeout, opts.retries, deadline)
        rows.extend(r for r in udp_rows if r.state in opts.states)
        partial = partial or udp_partial
    if partial:
        limitations.append("deadline reached: results are partial")
    return PortScanResult(tuple(sorted(rows, key=_row_key)), tuple(sorted(set(up), key=_ip_key)), "nmap",
                          partial, tuple(limitations), command)


@functools.cache
def _nmap_prototype() -> Any:
    """python-nmap runs `nmap -V` in every constructor (50 ms); build one and copy it for each scan."""
    import nmap

    try:
        return nmap.PortScanner()
    except nmap.PortScannerError as exc:
        raise ProbeInputError(f"nmap unusable: {exc}") from None


@dataclass(frozen=True, slots=True)
class NmapParsed:
    rows: tuple[PortRow, ...]
    hosts_up: tuple[str, ...]
    timed_out: tuple[str, ...]  # hosts skipped or cut by --host-timeout
    hosts_down: tuple[str, ...] = ()


def parse_nmap_xml(xml: str) -> NmapParsed:
    """Pure: nmap -oX output to rows (every port element: state, reason, service name/product/version/cpe)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"nmap produced unreadable XML: {exc}") from None
    rows: list[PortRow] = []
    up: list[str] = []
    down: list[str] = []
    timed_out: list[str] = []
    for host in root.iter("host"):
        addr = next((a.get("addr", "") for a in host.iter("address") if a.get("addrtype") in ("ipv4", "ipv6")), "")
        status = host.find("status")
        state = status.get("state", "") if status is not None else ""
        if state == "up":
            up.append(addr)
        else:
            down.append(addr)
        if host.get("timedout") == "true":  # cut by --host-timeout: its ports are missing, not closed
            timed_out.append(addr)
        for port in host.iter("port"):
            st = port.find("state")
            svc = port.find("service")
            rows.append(PortRow(
                host=addr,
                proto=port.get("protocol", ""),
                port=int(port.get("portid", "0")),
                state=st.get("state", "") if st is not None else "",
                service=svc.get("name", "") if svc is not None else "",
                product=svc.get("product", "") if svc is not None else "",
                version=svc.get("version", "") if svc is not None else "",
                reason=st.get("reason", "") if st is not None else "",
                cpe=tuple(c.text or "" for c in svc.iter("cpe")) if svc is not None else (),
                extrainfo=svc.get("extrainfo", "") if svc is not None else "",
            ))
    return NmapParsed(tuple(rows), tuple(up), tuple(timed_out), tuple(down))


# ==== built-in connect scanner ===============================================================================

def _fd_budget(wanted: int) -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(wanted, soft - 64))


def _service_name(port: int, proto: str) -> str:
    try:
        return socket.getservbyport(port, proto)
    except OSError:
        return ""


def _builtin(targets: Sequence[ApprovedTarget], tcp_ports: dict[str, PortSet], udp_ports: dict[str, PortSet],
             opts: ScanOptions, deadline: dt.datetime | None) -> PortScanResult:
    states, partial = connect_scan(targets, tcp_ports, opts, deadline)
    rows: list[PortRow] = []
    up: set[str] = set()
    for (host, port), (state, reason) in states.items():
        if state in ("open", "closed"):
            up.add(host)  # an answer (SYN-ACK or RST) means the host is there
        if state in opts.states:
            rows.append(PortRow(host, "tcp", port, state, _service_name(port, "tcp"), reason=reason))
    limitations: list[str] = []
    if udp_ports:
        udp_rows, udp_partial = udp_scan(targets, udp_ports, opts.timeout, opts.retries, deadline)
        rows.extend(r for r in udp_rows if r.state in opts.states)
        up.update(r.host for r in udp_rows if r.state in ("open", "closed"))
        partial = partial or udp_partial
    if partial:
        limitations.append("deadline reached: results are partial")
    return PortScanResult(tuple(sorted(rows, key=_row_key)), tuple(sorted(up, key=_ip_key)), "builtin", partial,
                          tuple(limitations))


_REFUSED = {errno.ECONNREFUSED}
_UNREACH = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ETIMEDOUT}


def connect_scan(targets: Sequence[ApprovedTarget], ports: dict[str, PortSet], opts: ScanOptions,
                 deadline: dt.datetime | None) -> tuple[dict[tuple[str, int], tuple[str, str]], bool]:
    """Non-blocking connects with epoll, at most ``concurrency`` in flight; returns (host, port) ->
    (state, reason) and whether the deadline cut the scan."""
    import select  # stdlib; epoll is Linux only, which the agent requires

    check_targets(targets, SCAN_KINDS)
    budget = _fd_budget(opts.concurrency)
    # Interleave hosts so one slow host does not hold every slot.
    work: deque[tuple[str, int, int, int]] = deque()  # (ip, port, family, tries)
    iters: list[tuple[str, int, Iterator[int]]] = [
        (t.address, socket.AF_INET6 if t.version == 6 else socket.AF_INET, iter(ports[t.address]))
             for t in targets]
    while iters:
        alive = []
        for ip, fam, it in iters:
            port = next(it, None)
            if port is not None:
                work.append((ip, port, fam, 0))
                alive.append((ip, fam, it))
        iters = alive
    results: dict[tuple[str, int], tuple[str, str]] = {}
    ep = select.epoll()
    # fd -> (sock, ip, port, family, tries, start, seq); ``order`` holds (seq, fd) in start order, which is also
    # timeout order; the seq tells a live entry from an fd number the kernel has since reused.
    inflight: dict[int, tuple[socket.socket, str, int, int, int, float, int]] = {}
    order: deque[tuple[int, int]] = deque()
    seq = 0
    linger = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close sends RST, no TIME_WAIT pile-up
    min_gap = 1.0 / opts.max_rate if opts.max_rate else 0.0
    next_start = 0.0
    end_mono = None
    left = seconds_left(deadline)
    if left is not None:
        end_mono = time.monotonic() + left
    partial = False
    timeout = opts.timeout
    limit = budget
    try:
        while work or inflight:
            now = time.monotonic()
            if end_mono is not None and now >= end_mono:
                partial = bool(work or inflight)
                break
            while work and len(inflight) < limit:
                if min_gap:
                    if now < next_start:
                        break
                    next_start = max(next_start, now) + min_gap
                ip, port, fam, tries = work.popleft()
                s = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                rc = s.connect_ex((ip, port))
                if rc == errno.EINPROGRESS:
                    fd = s.fileno()
                    seq += 1
                    inflight[fd] = (s, ip, port, fam, tries, now, seq)
                    order.append((seq, fd))
                    ep.register(fd, select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP)
                    continue
                s.close()
                if rc == 0:
                    results[(ip, port)] = ("open", "syn-ack")
                elif rc in _REFUSED:
                    results[(ip, port)] = ("closed", "conn-refused")
                elif rc in (errno.EAGAIN, errno.EADDRNOTAVAIL, errno.ENOBUFS, errno.EMFILE, errno.ENFILE):
                    # Out of local ports/buffers/fds: retry later with fewer sockets in flight.
                    work.appendleft((ip, port, fam, tries))
                    limit = max(16, len(inflight) * 3 // 4)
                    break
                elif rc in _UNREACH:
                    results[(ip, port)] = ("filtered", "host-unreach")
                else:
                    results[(ip, port)] = ("filtered", errno.errorcode.get(rc, str(rc)).lower())
            wait = 0.05
            if order:
                head = inflight.get(order[0][1])
                wait = max(0.0, min(wait, head[5] + timeout - now)) if head and head[6] == order[0][0] else 0.0
            if end_mono is not None:
                wait = max(0.0, min(wait, end_mono - now))
            for fd, _ev in ep.poll(wait, 4096):
                s, ip, port, fam, tries, _t0, _seq = inflight.pop(fd)
                ep.unregister(fd)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                s.close()
                if err == 0:
                    results[(ip, port)] = ("open", "syn-ack")
                elif err in _REFUSED:
                    results[(ip, port)] = ("closed", "conn-refused")
                elif err in _UNREACH:
                    results[(ip, port)] = ("filtered", "host-unreach")
                else:
                    results[(ip, port)] = ("filtered", errno.errorcode.get(err, str(err)).lower())
            # Expire timed-out connects (order is start order; skip fds already answered).
            now = time.monotonic()
            while order:
                sq, fd = order[0]
                entry = inflight.get(fd)
                if entry is None or entry[6] != sq:
                    order.popleft()
                    continue
                if entry[5] + timeout > now:
                    break
                order.popleft()
                s, ip, port, fam, tries, _t0, _seq = inflight.pop(fd)
                ep.unregister(fd)
                s.close()
                if tries < opts.retries:
                    work.append((ip, port, fam, tries + 1))
                else:
                    results[(ip, port)] = ("filtered", "no-response")
            if limit < budget and not order:
                limit = min(budget, limit * 2)
    finally:
        for s, *_ in inflight.values():
            s.close()
        ep.close()
    return results, partial


def _row_key(r: PortRow) -> tuple[tuple[int, int], str, int]:
    return (_ip_key(r.host), r.proto, r.port)


def _ip_key(ip: str) -> tuple[int, int]:
    import ipaddress

    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return (9, 0)
    return (a.version, int(a))
