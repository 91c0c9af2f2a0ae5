"""The lab itself: hosts answer, services speak, extra listeners and rogue hosts appear and go."""

from __future__ import annotations

import socket
import ssl
import subprocess

from tests.lab import Lab, Service


def _connect(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=2):
            return True
    except OSError:
        return False


def test_hosts_and_services_answer(lab: Lab) -> None:
    assert len(lab.hosts) >= 12
    for host in lab.hosts:
        for port in host.tcp_ports():
            assert _connect(host.ip, port), f"{host.name}:{port}"
    closed = lab.host(lab.host_ip(9))
    assert not _connect(closed.ip, 80)


def test_banners_tls_dns(lab: Lab) -> None:
    telnet = lab.host(lab.host_ip(4))
    with socket.create_connection((telnet.ip, 23), timeout=2) as s:
        assert b"login:" in s.recv(200)
    tls_host = lab.host(lab.host_ip(3))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((tls_host.ip, 443), timeout=2) as raw, ctx.wrap_socket(raw) as s:
        assert s.getpeercert(binary_form=True)
    dns = lab.host(lab.host_ip(5))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(2)
        u.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03lab\x04test\x00\x00\x01\x00\x01", (dns.ip, 53))
        reply = u.recv(512)
    assert reply[:2] == b"\x12\x34" and reply[3] & 0x0F == 0


def test_ssh_server(lab: Lab) -> None:
    assert lab.ssh is not None
    with socket.create_connection((lab.ssh.ip, lab.ssh.port), timeout=2) as s:
        assert s.recv(100).startswith(b"SSH-2.0-OpenSSH")
    assert lab.ssh.host_key_pub.startswith("ssh-ed25519 ")


def test_open_port_and_rogue_host(lab: Lab) -> None:
    host = lab.host(lab.host_ip(7))
    assert not _connect(host.ip, 4444)
    listener = lab.open_port(host, 4444)
    try:
        assert _connect(host.ip, 4444)
    finally:
        listener.close()
    assert not _connect(host.ip, 4444)
    rogue = lab.add_host([Service("tcp", 2323, "telnet")])
    try:
        assert _connect(rogue.ip, 2323)
        assert lab.run(rogue, ["ip", "-br", "addr"]).stdout.count(rogue.ip) == 1
    finally:
        lab.remove_host(rogue)
    assert rogue.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
