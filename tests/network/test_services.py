"""Service checks: golden transcripts, SSH KEXINIT and certificate parsing, and live checks on the lab."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.scope import Scope, ScopeGuard
from probes.network import services, svc_ssh, svc_tls
from probes.network.ports import PortSet
from probes.observation import Observation
from tests.golden import compare_golden
from tests.lab import Lab

FIX = Path(__file__).parent / "fixtures"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)  # fixed, so days_left in golden files never moves


golden = compare_golden  # tests/golden.py: a missing expected file fails


def _expected(raw: Path) -> Path:
    return raw.with_name(raw.name.replace(".raw.json", ".expected.json"))


# --- golden transcripts ------------------------------------------------------------------------------------

TRANSCRIPTS = sorted((FIX / "services").glob("*.raw.json"))

# What each transcript must say, independent of the golden file (so a regenerated golden cannot hide a bug).
KEY_FACTS: dict[str, dict[str, Any]] = {
    "inetutils-telnetd": {"service": "telnet", "login_prompt": True},
    "lab-telnet-prompt": {"service": "telnet", "login_prompt": True, "telnet_options": ()},
    "lab-ftp-banner": {"service": "ftp", "starttls": None, "banner": "220 lab FTP server ready"},
    "vsftpd-auth-tls": {"service": "ftp", "starttls": True},
    "vsftpd-plain": {"service": "ftp", "starttls": False},
    "postfix-ehlo": {"service": "smtp", "starttls": True, "auth": ("plain", "login")},
    "lab-smtp-banner": {"service": "smtp", "starttls": None},
    "dovecot-pop3": {"service": "pop3", "starttls": True, "auth": ("plain",)},
    "dovecot-imap": {"service": "imap", "starttls": True, "auth": ("plain", "login")},
    "imap-no-starttls": {"service": "imap", "starttls": False, "auth": ("plain", "login")},
    "nginx-401-basic": {"service": "http", "http_status": 401, "auth": ("basic",), "banner": "nginx/1.22.1"},
    "lab-http": {"service": "http", "http_status": 200, "auth": ()},
    "lab-https": {"service": "https", "tls": True, "http_status": 200},
    "lab-silent": {"service": "unknown", "banner": ""},
    "mariadb-10.11": {"service": "mysql", "banner": "5.5.5-10.11.19-MariaDB-0+deb12u1"},
    "vnc-38-none": {"service": "vnc", "vnc_security": ("none",)},
    "vnc-38-vncauth": {"service": "vnc", "vnc_security": ("vnc", "tight")},
    "vnc-33-vncauth": {"service": "vnc", "vnc_security": ("vnc",)},
}


@pytest.mark.parametrize("raw_path", TRANSCRIPTS, ids=lambda p: p.name.removesuffix(".raw.json"))
def test_transcript_golden(raw_path: Path) -> None:
    raw = json.loads(raw_path.read_text(encoding="utf-8"))
    row = services.parse_transcript(raw)
    golden(Observation.from_row(services.PROBE_SERVICES, row).to_json(), _expected(raw_path))
    name = raw_path.name.removesuffix(".raw.json")
    assert name in KEY_FACTS, f"add the key facts of {name} to KEY_FACTS"
    for attr, value in KEY_FACTS[name].items():
        assert getattr(row, attr) == value, f"{name}: {attr} = {getattr(row, attr)!r}, want {value!r}"


def test_real_telnetd_negotiation_is_decoded() -> None:
    raw = json.loads((FIX / "services" / "inetutils-telnetd.raw.json").read_text())
    row = services.parse_transcript(raw)
    # inetutils telnetd asks for the terminal type and offers to echo; our replies refused every option.
    assert "DO TTYPE" in row.telnet_options and "WILL ECHO" in row.telnet_options
    for sent, _ in raw["exchanges"]:
        cmds = services.telnet_commands(sent.encode("latin-1"))
        assert cmds and all(c in (services.WONT, services.DONT) for c, _ in cmds)
    assert row.banner.endswith("login:")


def test_classify_and_refusal() -> None:
    assert services.classify(2222, b"SSH-2.0-OpenSSH_9.2\r\n") == "ssh"
    assert services.classify(21, b"220 ready\r\n") == "ftp"
    assert services.classify(2525, b"220 mx ESMTP\r\n") == "smtp"
    assert services.classify(9999, b"") == "silent"
    assert services.classify(9999, b"\x00\x01garbage") == "unknown"
    assert services.telnet_refusal(bytes([255, 253, 24, 255, 251, 1])) == bytes([255, 252, 24, 255, 254, 1])


# --- SSH ---------------------------------------------------------------------------------------------------

SSH_CASES = sorted((FIX / "ssh").glob("*.raw.json"))


@pytest.mark.parametrize("raw_path", SSH_CASES, ids=lambda p: p.name.removesuffix(".raw.json"))
def test_ssh_kexinit_golden(raw_path: Path) -> None:
    raw = json.loads(raw_path.read_text(encoding="utf-8"))
    row = svc_ssh.to_row(raw["host"], raw["port"], raw["ident"].encode(), bytes.fromhex(raw["packet"]))
    golden(Observation.from_row(services.PROBE_SSH, row).to_json(), _expected(raw_path))
    assert row.software == "OpenSSH_9.2p1" and row.protocol == "2.0"
    assert "curve25519-sha256" in row.kex and not any(k.startswith("kex-strict") for k in row.kex)
    legacy = "legacy" in raw_path.name
    assert ("diffie-hellman-group1-sha1" in row.kex) is legacy
    assert ("3des-cbc" in row.ciphers) is legacy
    assert ("hmac-md5" in row.macs) is legacy


def _kexinit_payload(lists: list[str]) -> bytes:
    body = bytes([svc_ssh.SSH_MSG_KEXINIT]) + bytes(16)
    for text in lists:
        body += len(text).to_bytes(4, "big") + text.encode()
    return body + b"\x00" + bytes(4)


def _packet(payload: bytes) -> bytes:
    padding = 8 - (len(payload) + 5) % 8 + 8
    length = 1 + len(payload) + padding
    return length.to_bytes(4, "big") + bytes([padding]) + payload + bytes(padding)


def test_kexinit_parser_round_trip_and_errors() -> None:
    lists = ["curve25519-sha256,ext-info-s", "ssh-ed25519", "aes128-ctr", "aes256-ctr", "hmac-sha2-256",
             "hmac-sha2-256", "none", "none", "", ""]
    kex = svc_ssh.parse_kexinit_packet(_packet(_kexinit_payload(lists)))
    assert kex.kex == ("curve25519-sha256", "ext-info-s") and kex.ciphers_s2c == ("aes256-ctr",)
    assert kex.compression_c2s == ("none",) and not kex.first_kex_follows
    row = svc_ssh.to_row("h", 22, b"SSH-2.0-x y\r\n", _packet(_kexinit_payload(lists)))
    assert row.kex == ("curve25519-sha256",) and row.ciphers == ("aes128-ctr", "aes256-ctr")
    with pytest.raises(svc_ssh.SshParseError, match="not KEXINIT"):
        svc_ssh.parse_kexinit_payload(b"\x15" + bytes(40))
    with pytest.raises(svc_ssh.SshParseError, match="overruns"):
        svc_ssh.parse_kexinit_payload(bytes([20]) + bytes(16) + (1000).to_bytes(4, "big") + b"abc")
    with pytest.raises(svc_ssh.SshParseError, match="bad packet length"):
        svc_ssh.parse_kexinit_packet((10**6).to_bytes(4, "big") + bytes(10))
    with pytest.raises(svc_ssh.SshParseError, match="not an SSH identification"):
        svc_ssh.parse_ident(b"HTTP/1.0 400\r\n")


# --- certificates ------------------------------------------------------------------------------------------

CERTS = sorted((FIX / "tls").glob("*.pem"))
CERT_FACTS = {
    "expired-rsa1024": {"expired": True, "self_signed": True, "key_type": "rsa", "key_bits": 1024},
    "selfsigned-p256": {"expired": False, "self_signed": True, "key_type": "ec", "key_bits": 256,
                        "signature_algorithm": "ecdsa-with-SHA256"},
    "lookalike-ed25519": {"self_signed": False, "key_type": "ed25519"},  # same names, another signer
    "ca-issued-rsa3072": {"self_signed": False, "key_bits": 3072, "signature_algorithm": "sha384WithRSAEncryption"},
    "selfsigned-rsa2048-sha1": {"self_signed": True, "signature_algorithm": "sha1WithRSAEncryption"},
}


@pytest.mark.parametrize("pem", CERTS, ids=lambda p: p.stem)
def test_certificate_facts_golden(pem: Path) -> None:
    der = ssl.PEM_cert_to_DER_cert(pem.read_text())
    row = svc_tls.to_row("10.231.7.30", 443, "TLSv1.3", "TLS_AES_256_GCM_SHA384", der, False, False, NOW)
    got = Observation.from_row(services.PROBE_TLS, row).to_json()
    if pem.stem == "selfsigned-rsa2048-sha1":  # made by openssl at generation time: dates are not fixed
        got["attrs"].pop("days_left")
    golden(got, pem.with_suffix(".expected.json"))
    for attr, value in CERT_FACTS[pem.stem].items():
        assert getattr(row, attr) == value, f"{pem.stem}: {attr}"


# --- live: the lab and loopback servers ----------------------------------------------------------------------

def _service_targets(ips: list[str], scope: str, ports: PortSet | None = None) -> list[Any]:
    return ScopeGuard(Scope.parse(scope)).approve(ips, "service", ports)


def test_lab_services(lab: Lab) -> None:
    hosts = [lab.host(lab.host_ip(i)) for i in (1, 3, 4, 8, 6)]
    open_ports = {h.ip: sorted(h.tcp_ports()) for h in hosts}
    res = services.check_services(_service_targets([h.ip for h in hosts], str(lab.network)), open_ports)
    by = {(s.host, s.port): s for s in res.services}
    assert len(by) == sum(len(p) for p in open_ports.values())
    ip = lab.host_ip
    assert by[(ip(1), 22)].service == "ssh" and by[(ip(1), 22)].banner.startswith("SSH-2.0-OpenSSH_")
    assert by[(ip(1), 80)].service == "http" and by[(ip(1), 80)].http_status == 200
    assert by[(ip(3), 443)].service == "https" and by[(ip(3), 443)].tls
    telnet = by[(ip(4), 23)]
    assert telnet.service == "telnet" and telnet.login_prompt
    assert by[(ip(4), 21)].service == "ftp" and by[(ip(4), 21)].starttls is not True
    assert by[(ip(8), 25)].service == "smtp"
    assert by[(ip(6), 3306)].service == "unknown"  # the lab's "plain" listener says nothing

    tls = {(t.host, t.port): t for t in res.tls}
    assert set(tls) == {(ip(3), 443), (ip(3), 8443)}
    t = tls[(ip(3), 443)]
    pem = lab.tls_cert.read_text()
    cert_pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S)
    assert cert_pem is not None
    import hashlib

    assert t.sha256 == hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem.group(0))).hexdigest()
    assert (t.cert_subject, t.cert_issuer) == ("CN=lab-tls.test", "CN=lab-tls.test")
    assert t.self_signed and not t.expired and 0 <= t.days_left <= 2
    assert (t.key_type, t.key_bits, t.signature_algorithm) == ("ec", 256, "ecdsa-with-SHA256")
    # Python's default server context refuses anything below TLS 1.2.
    assert t.version in ("TLSv1.2", "TLSv1.3") and t.accepts_tls10 is False and t.accepts_tls11 is False


def test_lab_sshd_algorithms_match_sshd_T(lab: Lab, tmp_path: Path) -> None:
    assert lab.ssh is not None
    res = services.check_services(_service_targets([lab.ssh.ip], str(lab.network)), {lab.ssh.ip: [22]})
    (row,) = res.ssh
    # The lab's sshd sets no algorithm options: its offer is OpenSSH's defaults, which sshd -T prints.
    conf = tmp_path / "sshd_config"
    conf.write_text(f"HostKey {lab.ssh.host_key_path}\n")
    out = subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(conf)], capture_output=True, text=True, check=True)
    cfg = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert ",".join(row.kex) == cfg["kexalgorithms"]
    assert ",".join(row.ciphers) == cfg["ciphers"]
    assert ",".join(row.macs) == cfg["macs"]
    assert row.host_key == ("ssh-ed25519",)  # only the algorithms of keys the server has


@pytest.fixture
def tls10_server(tmp_path: Path) -> Iterator[int]:
    """openssl s_server on loopback that still accepts TLS 1.0 (security level 0)."""
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=old-tls.test", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key",
                             str(key), "-www", "-quiet", "-cipher", "ALL:@SECLEVEL=0", "-tls1"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def test_tls10_accepted_is_reported(tls10_server: int) -> None:
    targets = _service_targets(["127.0.0.1"], "127.0.0.1/32")
    res = services.check_services(targets, {"127.0.0.1": [tls10_server]})
    (t,) = res.tls
    assert t.version == "TLSv1" and t.accepts_tls10 is True
    assert t.cert_subject == "CN=old-tls.test" and t.self_signed and t.key_bits == 2048


class _BasicAuthHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="lab admin"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_http_basic_over_plain_http() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BasicAuthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        res = services.check_services(_service_targets(["127.0.0.1"], "127.0.0.1/32"), {"127.0.0.1": [port]})
    finally:
        server.shutdown()
        server.server_close()
    (row,) = res.services
    assert (row.service, row.http_status, row.auth, row.tls) == ("http", 401, ("basic",), False)


def test_only_approved_targets_and_ports(lab: Lab) -> None:
    ip = lab.host_ip(4)
    with pytest.raises(TypeError):
        services.check_services([ip], {ip: [23]})  # type: ignore[list-item]
    portscan_kind = ScopeGuard(Scope.parse(str(lab.network))).approve([ip], "portscan")
    with pytest.raises(PermissionError):
        services.check_services(portscan_kind, {ip: [23]})
    only_21 = _service_targets([ip], str(lab.network), PortSet.of([21]))
    res = services.check_services(only_21, {ip: [21, 23]})
    assert [(s.host, s.port) for s in res.services] == [(ip, 21)]


# --- the profile's network rules over golden observations --------------------------------------------------

@functools.cache
def _profile() -> Any:
    from baselines.profile import load_profile

    return load_profile()  # the built-in default profile, loaded once (it is large)


def _fired(observations: list[Observation]) -> set[str]:
    from baselines.evaluate import evaluate

    ran = {"services", "tls", "ssh_algos", "link", "ports", "hosts"}
    return {f.rule_id for f in evaluate(_profile(), observations, "10.231.7.30", ran).findings}


def _svc(name: str) -> list[Observation]:
    raw = json.loads((FIX / "services" / f"{name}.raw.json").read_text())
    return [Observation.from_row(services.PROBE_SERVICES, services.parse_transcript(raw))]


def _tls(stem: str, tls10: bool = False) -> list[Observation]:
    der = ssl.PEM_cert_to_DER_cert((FIX / "tls" / f"{stem}.pem").read_text())
    row = svc_tls.to_row("10.231.7.30", 443, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", der, tls10, False, NOW)
    return [Observation.from_row(services.PROBE_TLS, row)]


def _ssh(name: str) -> list[Observation]:
    raw = json.loads((FIX / "ssh" / f"{name}.raw.json").read_text())
    row = svc_ssh.to_row(raw["host"], raw["port"], raw["ident"].encode(), bytes.fromhex(raw["packet"]))
    return [Observation.from_row(services.PROBE_SSH, row)]


RULE_CASES: list[tuple[str, Any, set[str]]] = [
    ("telnet", lambda: _svc("inetutils-telnetd"), {"PC-NSVC-001"}),
    ("ftp plain", lambda: _svc("vsftpd-plain"), {"PC-NSVC-002"}),
    ("ftp auth tls", lambda: _svc("vsftpd-auth-tls"), set()),
    ("pop3 stls", lambda: _svc("dovecot-pop3"), set()),
    ("imap no starttls", lambda: _svc("imap-no-starttls"), {"PC-NSVC-003"}),
    ("http basic", lambda: _svc("nginx-401-basic"), {"PC-NSVC-004"}),
    ("http plain 200", lambda: _svc("lab-http"), set()),
    ("vnc none", lambda: _svc("vnc-38-none"), {"PC-NSVC-005", "PC-NSVC-006"}),
    ("vnc auth", lambda: _svc("vnc-38-vncauth"), {"PC-NSVC-006"}),
    ("expired weak", lambda: _tls("expired-rsa1024"), {"PC-NSVC-008", "PC-NSVC-009", "PC-NSVC-011"}),
    ("sha1 self-signed", lambda: _tls("selfsigned-rsa2048-sha1"), {"PC-NSVC-009", "PC-NSVC-011"}),
    ("ca issued", lambda: _tls("ca-issued-rsa3072"), set()),
    ("look-alike", lambda: _tls("lookalike-ed25519"), set()),
    ("tls 1.0", lambda: _tls("ca-issued-rsa3072", tls10=True), {"PC-NSVC-007"}),
    ("ssh legacy", lambda: _ssh("openssh92-legacy-algos"), {"PC-NSVC-012", "PC-NSVC-013", "PC-NSVC-014"}),
    ("ssh default", lambda: _ssh("openssh92-debian12-default"), {"PC-NSVC-014"}),  # hmac-sha1, umac-64 (CIS)
]


@pytest.mark.parametrize(("case", "make", "rules"), RULE_CASES, ids=[c for c, _, _ in RULE_CASES])
def test_profile_network_rules(case: str, make: Any, rules: set[str]) -> None:
    assert _fired(make()) == rules


def test_profile_port_and_link_rules() -> None:
    from probes.network import passive
    from probes.network.portscan import PortRow

    ports = [Observation.from_row("ports", PortRow("10.231.7.30", "tcp", 3306, "open")),
             Observation.from_row("ports", PortRow("127.0.0.1", "tcp", 5432, "open")),
             Observation.from_row("ports", PortRow("10.231.7.30", "tcp", 443, "open"))]
    from baselines.evaluate import evaluate

    found = evaluate(_profile(), ports, "x", {"ports"}).findings
    assert [(f.rule_id, f.subject) for f in found] == [("PC-NSVC-016", "10.231.7.30|tcp|3306")]
    policy = passive.LinkPolicy(dhcp_servers=frozenset({"10.231.7.1"}), dns_servers=frozenset({"10.231.7.1"}),
                                gateway_ip="10.231.7.1", gateway_mac="02:00:00:07:00:01")
    for name, want in (("events", {f"PC-LINK-00{i}" for i in range(1, 6)}), ("quiet", set())):
        events = passive.analyse(passive.read_pcap(FIX / "link" / f"{name}.pcap").frames, policy)
        assert _fired(passive.observations(events)) == want
