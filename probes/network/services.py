"""Service checks on open TCP ports of approved targets (Art. 24(2)): what each port says about itself.

For every port: a bounded banner read, then a protocol-appropriate, pre-authentication question (FTP FEAT,
SMTP EHLO, POP3 CAPA, IMAP CAPABILITY, the VNC version handshake, telnet option refusals, an HTTP GET), TLS
facts when the port speaks TLS, SSH algorithms when it speaks SSH. Never a login attempt, never a credential.

Gathering records a *transcript* (bytes as latin-1 text, so it is JSON and round-trips exactly); the pure
``parse_transcript`` turns it into a row, which is what the golden tests exercise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import selectors
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from probes.network import svc_smb, svc_ssh, svc_tls
from probes.network.target import ApprovedTarget, check_targets, earliest_deadline, seconds_left
from probes.observation import AttrValue, Observation, Row

log = logging.getLogger(__name__)

MAX_READ = 4096  # bytes kept per read; a banner is a line or two, never a download
BANNER_CHARS = 200

# Observation probe ids of the rows this module emits (profile rules refer to these).
PROBE_SERVICES = "services"
PROBE_TLS = "tls"
PROBE_SSH = "ssh_algos"

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
TELNET_OPTIONS = {0: "BINARY", 1: "ECHO", 3: "SGA", 5: "STATUS", 6: "TIMING-MARK", 24: "TTYPE", 31: "NAWS",
                  32: "TSPEED", 33: "LFLOW", 34: "LINEMODE", 35: "XDISPLOC", 36: "ENVIRON", 37: "AUTHENTICATION",
                  38: "ENCRYPT", 39: "NEW-ENVIRON"}
LOGIN_PROMPT = re.compile(r"(login|username|user name)\s*:\s*$|password\s*:\s*$", re.I | re.M)
VNC_SECURITY = {0: "invalid", 1: "none", 2: "vnc", 5: "ra2", 6: "ra2ne", 16: "tight", 18: "tls", 19: "vencrypt",
                30: "apple-dh", 113: "mslogon2"}


@dataclass(frozen=True, slots=True)
class Service(Row):
    """Facts about one open TCP port. ``starttls``: STARTTLS/STLS/AUTH TLS offered (None: not asked or no
    answer). ``auth`` lists HTTP WWW-Authenticate schemes or SASL mechanisms, lower-case."""

    host: str
    port: int
    service: str  # ssh telnet ftp smtp pop3 imap http https tls vnc mysql unknown unreachable
    banner: str
    tls: bool
    starttls: bool | None
    login_prompt: bool
    telnet_options: tuple[str, ...]
    http_status: int | None
    auth: tuple[str, ...]
    vnc_security: tuple[str, ...]
    note: str  # why a check stopped early ("" when it completed)
    smb1: bool | None = None  # SMB1 NEGOTIATE accepted (SMB ports only; None: not asked or no answer)

    KEY: ClassVar[tuple[str, ...]] = ("host", "port")
    # Why a check stopped early (a timeout, a reset) says how this one connection went, not what the service is.
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"note"})

    def attrs(self) -> dict[str, AttrValue]:
        # smb1 only where it was asked: non-SMB rows (and their golden files) stay as they were.
        out = Row.attrs(self)
        if self.smb1 is None:
            del out["smb1"]
        return out


@dataclass(frozen=True, slots=True)
class ServiceResults:
    services: tuple[Service, ...] = ()
    tls: tuple[svc_tls.TlsService, ...] = ()
    ssh: tuple[svc_ssh.SshAlgos, ...] = ()
    skipped: int = 0  # ports not checked because the deadline (notice window) passed

    def observations(self) -> list[Observation]:
        return ([Observation.from_row(PROBE_SERVICES, r) for r in self.services]
                + [Observation.from_row(PROBE_TLS, r) for r in self.tls]
                + [Observation.from_row(PROBE_SSH, r) for r in self.ssh])


# --- pure parsing ----------------------------------------------------------------------------------------

def _text(data: bytes) -> str:
    """Printable text of a reply: telnet commands dropped, control characters shown as spaces."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == IAC and i + 1 < len(data):
            cmd = data[i + 1]
            if cmd in (DO, DONT, WILL, WONT):
                i += 3
                continue
            if cmd == SB:
                end = data.find(bytes([IAC, SE]), i)
                i = len(data) if end < 0 else end + 2
                continue
            i += 2
            continue
        out.append(b)
        i += 1
    return out.decode("utf-8", errors="replace")


def _banner(data: bytes) -> str:
    # Binary greetings (databases) keep their printable runs only: the banner is for people and rules.
    text = "".join(c if c.isprintable() and c != "\ufffd" else " " for c in _text(data))
    return " ".join(text.split())[:BANNER_CHARS]


def ssh_identification(greeting: bytes) -> str:
    """The SSH identification line of a greeting (RFC 4253 4.2: text lines may come before it; the server's
    KEXINIT, with its random cookie, may follow it in the same segment). Only this line identifies the server:
    the bytes after it differ on every connection."""
    start = 0 if greeting.startswith(b"SSH-") else greeting.find(b"\nSSH-") + 1
    line = greeting[start:].split(b"\n", 1)[0].rstrip(b"\r")
    return _banner(line[:255])  # RFC 4253: at most 255 characters with CR LF


def _text_head(greeting: bytes) -> bytes:
    """The text before the first binary byte: what a protocol we do not know says of itself, without the
    binary part (nonces, counters) that would differ on every connection."""
    for i, b in enumerate(greeting):
        if (b < 32 and b not in (9, 10, 13)) or b == 127:
            return greeting[:i]
    return greeting


def telnet_commands(data: bytes) -> list[tuple[int, int]]:
    """(command, option) pairs of DO/DONT/WILL/WONT in ``data``."""
    out = []
    i = 0
    while i + 2 < len(data):
        if data[i] == IAC and data[i + 1] in (DO, DONT, WILL, WONT):
            out.append((data[i + 1], data[i + 2]))
            i += 3
        else:
            i += 1
    return out


def telnet_refusal(data: bytes) -> bytes:
    """Our answer to the server's negotiation: refuse every option (WONT to DO, DONT to WILL)."""
    reply = bytearray()
    for cmd, opt in telnet_commands(data):
        if cmd == DO:
            reply += bytes([IAC, WONT, opt])
        elif cmd == WILL:
            reply += bytes([IAC, DONT, opt])
    return bytes(reply)


def classify(port: int, greeting: bytes) -> str:
    """Which dialogue to run after the greeting (pure; the same function decides in gather and parse)."""
    if greeting.startswith(b"SSH-") or b"\nSSH-" in greeting:
        return "ssh"
    if greeting[:1] == bytes([IAC]):
        return "telnet"
    if greeting.startswith(b"RFB "):
        return "vnc"
    if greeting.startswith(b"+OK"):
        return "pop3"
    if greeting.startswith(b"* OK") or greeting.startswith(b"* PREAUTH"):
        return "imap"
    if greeting.startswith(b"220"):
        head = greeting[:200].upper()
        if b"FTP" in head or port in (21, 2121):
            return "ftp"
        if b"SMTP" in head or port in (25, 465, 587):
            return "smtp"
        return "ftp" if b"FILEZILLA" in head else "smtp"
    if (greeting and port == 23) or LOGIN_PROMPT.search(_text(greeting)):
        return "telnet"
    if len(greeting) > 5 and greeting[4] == 10 and int.from_bytes(greeting[:3], "little") + 4 == len(greeting):
        return "mysql"  # MySQL/MariaDB initial handshake packet, protocol version 10
    if not greeting:
        return "silent"
    return "unknown"


def _b(text: str) -> bytes:
    return text.encode("latin-1")


def _capabilities(reply: bytes) -> list[str]:
    return [line.strip() for line in _text(reply).splitlines() if line.strip()]


def parse_transcript(raw: dict[str, Any]) -> Service:
    """Pure: one port's transcript → row. ``raw``: host, port, greeting, dialogue, exchanges [[sent, recv]],
    tls (bool), note. Bytes are latin-1 text."""
    host, port = str(raw["host"]), int(raw["port"])
    greeting = _b(raw.get("greeting", ""))
    dialogue = str(raw.get("dialogue") or classify(port, greeting))
    exchanges = [(_b(s), _b(r)) for s, r in raw.get("exchanges", [])]
    replies = b"".join(r for _, r in exchanges)
    service = "unknown" if dialogue == "silent" else dialogue
    banner = _banner(greeting)
    starttls: bool | None = None
    login_prompt = False
    telnet_opts: tuple[str, ...] = ()
    http_status: int | None = None
    auth: tuple[str, ...] = ()
    vnc: tuple[str, ...] = ()
    if dialogue == "ssh":
        banner = ssh_identification(greeting)
    elif dialogue == "unknown":
        banner = _banner(_text_head(greeting))
    elif dialogue == "telnet":
        seen = telnet_commands(greeting + replies)
        names = {0xFB: "WILL", 0xFC: "WONT", 0xFD: "DO", 0xFE: "DONT"}
        telnet_opts = tuple(dict.fromkeys(f"{names[c]} {TELNET_OPTIONS.get(o, str(o))}" for c, o in seen))
        login_prompt = bool(LOGIN_PROMPT.search(_text(greeting + replies)))
        banner = _banner(greeting + replies)
    elif dialogue == "ftp" and exchanges:
        feats = [c.upper() for c in _capabilities(replies)]
        if feats:  # any answer to FEAT (even "500 unknown command") says whether AUTH TLS is advertised
            starttls = any(re.match(r"^(211-)?\s*AUTH\b.*\bTLS\b", c) for c in feats)
    elif dialogue == "smtp" and exchanges:
        caps = [c.upper() for c in _capabilities(replies) if c.startswith("250")]
        if caps:
            starttls = any(c[4:].startswith("STARTTLS") for c in caps)
            for c in caps:
                if c[4:].startswith("AUTH"):
                    auth = tuple(m.lower() for m in c[4:].replace("=", " ").split()[1:])
    elif dialogue == "pop3" and exchanges:
        caps = [c.upper() for c in _capabilities(replies)]
        if caps and caps[0].startswith("+OK"):
            starttls = "STLS" in caps
            for c in caps:
                if c.startswith("SASL "):
                    auth = tuple(m.lower() for m in c.split()[1:])
    elif dialogue == "imap":
        caps_text = " ".join(c for c in _capabilities(greeting + replies) if "CAPABILITY" in c.upper()).upper()
        if caps_text:
            words = caps_text.replace("[", " ").replace("]", " ").split()
            starttls = "STARTTLS" in words
            auth = tuple(dict.fromkeys(w[5:].lower() for w in words if w.startswith("AUTH=")))
            if "LOGINDISABLED" not in words and "login" not in auth:
                auth = (*auth, "login")  # the plain LOGIN command is allowed
    elif dialogue == "vnc":
        vnc = _vnc_security(greeting, replies)
    elif dialogue == "mysql":
        banner = _banner(greeting[5:].split(b"\0", 1)[0])  # the server version string
    elif dialogue in ("http", "silent") and exchanges:
        http_status, auth, server = _http(replies)
        if http_status is not None:
            service = "http"
            banner = server
    if raw.get("tls"):
        service = "https" if http_status is not None else "tls"
    return Service(host=host, port=port, service=service, banner=banner, tls=bool(raw.get("tls")),
                   starttls=starttls, login_prompt=login_prompt, telnet_options=telnet_opts, http_status=http_status,
                   auth=auth, vnc_security=vnc, note=str(raw.get("note", "")))


def _http(reply: bytes) -> tuple[int | None, tuple[str, ...], str]:
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n") if "\r\n" in head else head.split("\n")
    m = re.match(r"^HTTP/\d(?:\.\d)?\s+(\d{3})", lines[0] if lines else "")
    if not m:
        return None, (), ""
    schemes: list[str] = []
    server = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "www-authenticate" and value.strip():
            schemes.append(value.strip().split()[0].rstrip(",").lower())
        elif name.strip().lower() == "server":
            server = value.strip()[:BANNER_CHARS]
    return int(m.group(1)), tuple(dict.fromkeys(schemes)), server


def _vnc_security(greeting: bytes, reply: bytes) -> tuple[str, ...]:
    m = re.match(rb"RFB (\d{3})\.(\d{3})", greeting)
    if not m or not reply:
        return ()
    minor = int(m.group(2)) if int(m.group(1)) == 3 else 8
    if minor < 7:  # RFB 3.3: the server decides, one uint32 security type
        if len(reply) < 4:
            return ()
        code = int.from_bytes(reply[:4], "big")
        return (VNC_SECURITY.get(code, str(code)),)
    count = reply[0]
    types = reply[1 : 1 + count]
    return tuple(VNC_SECURITY.get(t, str(t)) for t in types)


UNIDENTIFIED = ("unknown", "unreachable", "")


def service_name(checked: str, port_scan_name: str) -> str:
    """The name to show for a port: what the service check identified, else the port scanner's name (nmap's
    service table, -sV, or /etc/services), so that checking a port never loses a name it had. A bare "tls" is
    the transport, not the service: the scanner's name goes first."""
    if checked in UNIDENTIFIED:
        return port_scan_name or checked
    if checked == "tls" and port_scan_name and port_scan_name not in ("ssl", "tls"):
        return f"{port_scan_name} (tls)"
    return checked


# --- gathering -------------------------------------------------------------------------------------------

def _read(sock: socket.socket, wait: float, idle: float = 0.25, until: Callable[[bytes], bool] | None = None) -> bytes:
    """Read what arrives within ``wait`` seconds, stopping ``idle`` s after the last data, at MAX_READ bytes,
    at EOF, or as soon as ``until(data)`` holds."""
    data = b""
    deadline = time.monotonic() + wait
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        while len(data) < MAX_READ:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                break
            if not sel.select(min(remaining, idle) if data else remaining):
                if data:
                    break
                continue
            try:
                chunk = sock.recv(MAX_READ - len(data))
            except (BlockingIOError, InterruptedError):
                continue
            except (ConnectionError, TimeoutError, OSError):
                break
            if not chunk:
                break
            data += chunk
            if until and until(data):
                break
    return data


def _line_done(data: bytes) -> bool:
    # A greeting is complete at the end of a non-blank line (telnet servers often start with a bare CRLF).
    return data.endswith(b"\n") and bool(data.strip())


@dataclass(slots=True)
class _Transcript:
    host: str
    port: int
    greeting: bytes = b""
    dialogue: str = ""
    exchanges: list[tuple[bytes, bytes]] = field(default_factory=list)
    tls: bool = False
    note: str = ""

    def to_raw(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "greeting": self.greeting.decode("latin-1"),
                "dialogue": self.dialogue, "tls": self.tls, "note": self.note,
                "exchanges": [[s.decode("latin-1"), r.decode("latin-1")] for s, r in self.exchanges]}


def _ask(sock: socket.socket, t: _Transcript, send: bytes, wait: float,
         until: Callable[[bytes], bool] | None = None) -> bytes:
    try:
        sock.sendall(send)
    except OSError as exc:
        t.note = f"send failed: {exc.strerror or exc}"
        t.exchanges.append((send, b""))
        return b""
    reply = _read(sock, wait, until=until)
    t.exchanges.append((send, reply))
    return reply


def _multiline_done(code: bytes) -> Callable[[bytes], bool]:
    # FTP/SMTP multi-line replies end with "NNN " (code, space) on the last line.
    return lambda d: bool(re.search(rb"(^|\n)" + code + rb" [^\n]*\r?\n$", d))


def _dialogue(sock: socket.socket, t: _Transcript, wait: float) -> None:
    d = t.dialogue
    if d == "telnet":
        data = t.greeting
        for _ in range(3):  # a few rounds of option refusal until a login prompt appears
            if LOGIN_PROMPT.search(_text(b"".join([t.greeting, *(r for _, r in t.exchanges)]))):
                return
            refusal = telnet_refusal(data)
            if not refusal:
                data = _read(sock, wait)
                if not data:
                    return
                t.exchanges.append((b"", data))
                continue
            data = _ask(sock, t, refusal, wait)
            if not data:
                return
    elif d == "ftp":
        _ask(sock, t, b"FEAT\r\n", wait, until=_multiline_done(b"211"))
        _quiet_send(sock, b"QUIT\r\n")
    elif d == "smtp":
        _ask(sock, t, b"EHLO precaution.invalid\r\n", wait, until=_multiline_done(b"250"))
        _quiet_send(sock, b"QUIT\r\n")
    elif d == "pop3":
        _ask(sock, t, b"CAPA\r\n", wait, until=lambda x: x.endswith(b"\r\n.\r\n") or x.startswith(b"-ERR"))
        _quiet_send(sock, b"QUIT\r\n")
    elif d == "imap":
        if b"CAPABILITY" not in t.greeting.upper():
            _ask(sock, t, b"pc1 CAPABILITY\r\n", wait, until=lambda x: b"pc1 " in x and x.endswith(b"\n"))
        _quiet_send(sock, b"pc2 LOGOUT\r\n")
    elif d == "vnc":
        m = re.match(rb"RFB (\d{3})\.(\d{3})", t.greeting)
        version = b"RFB 003.008\n"
        if m and int(m.group(1)) == 3 and int(m.group(2)) < 7:
            version = b"RFB 003.003\n"
        elif m and int(m.group(1)) == 3 and int(m.group(2)) == 7:
            version = b"RFB 003.007\n"
        _ask(sock, t, version, wait)


def _quiet_send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError as exc:
        log.debug("polite close failed: %s", exc)


def _http_request(host: str) -> bytes:
    hostname = f"[{host}]" if ":" in host else host
    return (f"GET / HTTP/1.0\r\nHost: {hostname}\r\nUser-Agent: precaution-inspect\r\n"
            "Connection: close\r\n\r\n").encode()


def _http_done(d: bytes) -> bool:
    return b"\r\n\r\n" in d or b"\n\n" in d


def gather_port(host: str, port: int, timeout: float = 3.0, wait: float = 1.0,
                now: dt.datetime | None = None) -> tuple[dict[str, Any], svc_tls.TlsService | None,
                                                         tuple[bytes, bytes] | None]:
    """Talk to one port. Returns the transcript, TLS facts (if TLS) and the SSH ident + KEXINIT (if SSH)."""
    t = _Transcript(host, port)
    tls_row: svc_tls.TlsService | None = None
    ssh_raw: tuple[bytes, bytes] | None = None
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)  # sends may block at most this long; reads go through a selector
            t.greeting = _read(sock, wait, until=_line_done)
            t.dialogue = classify(port, t.greeting)
            if t.dialogue not in ("ssh", "silent", "unknown"):
                _dialogue(sock, t, wait)
    except (ConnectionError, TimeoutError, OSError) as exc:
        if not t.greeting:
            t.dialogue = "unreachable"
        t.note = f"connect failed: {exc.strerror or exc}" if not t.greeting else f"read failed: {exc}"
        return t.to_raw(), None, None
    if t.dialogue == "ssh":
        try:
            ssh_raw = svc_ssh.grab(host, port, timeout)
        except (OSError, svc_ssh.SshParseError) as exc:
            t.note = f"ssh: {exc}"
    elif t.dialogue == "silent":
        tls_row = svc_tls.check(host, port, timeout, now=now)
        if tls_row is not None:
            t.tls = True
            _http_over_tls(host, port, timeout, wait, t)
        else:
            _http_plain(host, port, timeout, wait, t)
    return t.to_raw(), tls_row, ssh_raw


def _http_plain(host: str, port: int, timeout: float, wait: float, t: _Transcript) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            _ask(sock, t, _http_request(host), wait + 1.0, until=_http_done)
    except (ConnectionError, TimeoutError, OSError) as exc:
        t.note = f"http: {exc.strerror or exc}"


def _http_over_tls(host: str, port: int, timeout: float, wait: float, t: _Transcript) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    request = _http_request(host)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, ctx.wrap_socket(raw) as tls:
            tls.settimeout(wait + 1.0)
            tls.sendall(request)
            reply = b""
            while len(reply) < MAX_READ and not _http_done(reply):
                chunk = tls.recv(MAX_READ - len(reply))
                if not chunk:
                    break
                reply += chunk
            t.exchanges.append((request, reply))
    except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
        t.exchanges.append((request, b""))
        t.note = f"http over tls: {exc}"


@dataclass(frozen=True, slots=True)
class PortResult:
    transcript: dict[str, Any]
    service: Service
    tls: svc_tls.TlsService | None
    ssh: svc_ssh.SshAlgos | None


def check_port(host: str, port: int, timeout: float = 3.0, wait: float = 1.0,
               now: dt.datetime | None = None) -> PortResult:
    transcript, tls_row, ssh_raw = gather_port(host, port, timeout, wait, now)
    if ssh_raw is not None:
        transcript["ssh"] = {"ident": ssh_raw[0].decode("latin-1"), "packet": ssh_raw[1].hex()}
    ssh_row = None
    if ssh_raw is not None:
        try:
            ssh_row = svc_ssh.to_row(host, port, *ssh_raw)
        except svc_ssh.SshParseError as exc:
            transcript["note"] = f"ssh: {exc}"
    return PortResult(transcript, parse_transcript(transcript), tls_row, ssh_row)


def check_services(targets: Sequence[ApprovedTarget], open_ports: Mapping[str, Iterable[int]], timeout: float = 3.0,
                   wait: float = 1.0, workers: int = 32,
                   progress: Callable[[str, int], None] | None = None) -> ServiceResults:
    """Check the open ports of approved targets (kind "service") concurrently. ``open_ports`` maps an address
    to the ports a port scan found open; ports outside a target's approved ports are not touched, and nothing
    starts after the earliest deadline."""
    check_targets(targets, ("service",))
    items: list[tuple[str, int]] = []
    for target in targets:
        for port in sorted(set(open_ports.get(target.address, ()))):
            if target.ports is None or port in target.ports:
                items.append((target.address, port))
    if not items:
        return ServiceResults()
    deadline = earliest_deadline(targets)
    now = dt.datetime.now(dt.UTC)
    by_address = {t.address: t for t in targets}

    def one(item: tuple[str, int]) -> PortResult | None:
        left = seconds_left(deadline)
        if left is not None and left <= 0:
            return None
        result = check_port(item[0], item[1], timeout, wait, now)
        if item[1] in svc_smb.SMB_PORTS:
            smb1 = svc_smb.check_smb1(by_address[item[0]], item[1], timeout)
            result = dataclasses.replace(result, service=dataclasses.replace(result.service, smb1=smb1))
        if progress:
            progress(*item)
        return result

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))), thread_name_prefix="svc") as pool:
        results = [r for r in pool.map(one, items) if r is not None]
    return ServiceResults(
        services=tuple(r.service for r in results),
        tls=tuple(r.tls for r in results if r.tls is not None),
        ssh=tuple(r.ssh for r in results if r.ssh is not None),
        skipped=len(items) - len(results),
    )
