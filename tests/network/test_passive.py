"""Passive link checks: golden pcaps (offline mode) and live injection on the lab bridge."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from probes.network import passive
from probes.network.passive import LinkPolicy
from tests.golden import compare_golden
from tests.lab import Lab

FIX = Path(__file__).parent / "fixtures" / "link"
SECRETS = ("hunter2", "s3cret", "alice", "Pa55word", "letmein", "YWxpY2U6aHVudGVyMg")  # last: base64 of Basic
GEN_POLICY = LinkPolicy(dhcp_servers=frozenset({"10.231.7.1"}), dns_servers=frozenset({"10.231.7.1"}),
                        gateway_ip="10.231.7.1", gateway_mac="02:00:00:07:00:01")


golden = compare_golden  # tests/golden.py: a missing expected file fails


def _events(name: str, policy: LinkPolicy = GEN_POLICY) -> list[passive.LinkEvent]:
    return passive.analyse(passive.read_pcap(FIX / f"{name}.pcap").frames, policy)


def test_events_pcap_golden() -> None:
    events = _events("events")
    got = [o.to_json() for o in passive.observations(events)]
    golden(got, FIX / "events.expected.json")
    creds = {(e.protocol, e.src, e.dst, e.method) for e in events if e.kind == "cleartext_credentials"}
    assert creds == {
        ("telnet", "10.231.7.20", "10.231.7.30:23", "login prompt"),
        ("ftp", "10.231.7.20", "10.231.7.30:21", "USER/PASS"),
        ("pop3", "10.231.7.20", "10.231.7.30:110", "USER/PASS"),
        ("imap", "10.231.7.20", "10.231.7.30:143", "LOGIN"),
        ("smtp", "10.231.7.20", "10.231.7.30:587", "AUTH"),
        ("http-basic", "10.231.7.20", "10.231.7.30:80", "Basic"),
    }
    conflicts = {e.src: e.macs for e in events if e.kind == "arp_conflict"}
    assert conflicts == {"10.231.7.1": ("02:00:00:07:00:01", "02:00:00:07:00:66"),
                         "10.231.7.30": ("02:00:00:07:00:30", "02:00:00:07:00:66")}
    (gw,) = [e for e in events if e.kind == "gateway_mac"]
    assert gw.expected is False
    assert {(e.kind, e.src, e.expected) for e in events if e.kind in ("dhcp_server", "dns_resolver")} == {
        ("dhcp_server", "10.231.7.1", True), ("dhcp_server", "10.231.7.66", False),
        ("dns_resolver", "10.231.7.1", True), ("dns_resolver", "10.231.7.66", False)}


def test_secrets_never_reported() -> None:
    text = json.dumps([o.to_json() for o in passive.observations(_events("events"))])
    for secret in SECRETS:
        assert secret not in text


def test_quiet_segment_has_nothing_unexpected() -> None:
    events = _events("quiet")
    golden([o.to_json() for o in passive.observations(events)], FIX / "quiet.expected.json")
    assert {e.kind for e in events} == {"dhcp_server", "dns_resolver", "gateway_mac"}
    assert all(e.expected is True for e in events)


def test_without_allowed_lists_nothing_is_judged() -> None:
    events = _events("events", LinkPolicy())
    servers = [e for e in events if e.kind in ("dhcp_server", "dns_resolver")]
    assert {e.kind for e in servers} == {"dhcp_server", "dns_resolver"}  # there is something to (not) judge
    assert [e.expected for e in servers] == [None] * len(servers)
    assert not [e for e in events if e.kind == "gateway_mac"]


def test_capture_raw_round_trip_and_bad_pcap(tmp_path: Path) -> None:
    cap = passive.read_pcap(FIX / "events.pcap")
    assert len(cap.frames) == 22 and not cap.truncated
    again = passive.Capture.from_raw(json.loads(json.dumps(cap.to_raw())))
    assert again.frames == tuple((round(ts, 6), data) for ts, data in cap.frames)
    assert passive.read_pcap(FIX / "events.pcap", max_packets=5).truncated
    bad = tmp_path / "not.pcap"
    bad.write_bytes(b"this is not a capture file at all")
    with pytest.raises(ValueError, match="not a pcap"):
        passive.read_pcap(bad)


def test_capture_refuses_unknown_interface_and_bad_duration() -> None:
    with pytest.raises(passive.CaptureUnavailable, match="no such network interface"):
        passive.check_interface("pcs-nope0")
    with pytest.raises(passive.CaptureUnavailable):
        passive.check_interface("../eth0")
    with pytest.raises(ValueError, match="duration"):
        passive.capture("lo", 0)


def test_capture_without_raw_socket_rights() -> None:
    code = "from probes.network import passive; passive.check_interface('lo')"
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                         capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=60)
    assert out.returncode != 0
    assert "CaptureUnavailable: capturing on lo needs root or CAP_NET_RAW" in out.stderr


# --- live: inject from lab hosts, listen on the lab bridge ---------------------------------------------------

SENDER = ("import socket, sys\n"
          "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
          "s.bind(('eth0', 0))\n"
          "for h in sys.argv[1:]:\n"
          "    s.send(bytes.fromhex(h))\n")


def _inject(lab: Lab, host_index: int, frames: list[bytes]) -> None:
    """Send raw frames from inside a lab host's namespace (its eth0 is a port of the lab bridge)."""
    host = lab.host(lab.host_ip(host_index))
    lab.run(host, [sys.executable, "-c", SENDER, *(f.hex() for f in frames)], check=True)


def _telnet_login(ip: str, user: bytes, password: bytes) -> None:
    with socket.create_connection((ip, 23), timeout=5) as s:
        buf = b""
        while b"login:" not in buf:
            buf += s.recv(200)
        s.sendall(user + b"\r\n")
        while b"Password:" not in buf:
            buf += s.recv(200)
        s.sendall(password + b"\r\n")
        s.recv(200)


def _dns_query(ip: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(2)
        u.sendto(b"\x43\x21\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03lab\x04test\x00\x00\x01\x00\x01", (ip, 53))
        u.recv(512)


def test_live_injection_on_lab_bridge(lab: Lab) -> None:
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import ARP, Ether

    net = lab.network
    spoofed = str(net.network_address + 200)  # an unused address: claiming it poisons nobody's cache
    fake_gw, fake_gw_mac = str(net.network_address + 254), "02:00:00:00:00:fe"
    h3, h4, h5, h6 = (lab.host(lab.host_ip(i)) for i in (3, 4, 5, 6))
    bcast = "ff:ff:ff:ff:ff:ff"
    claim = [bytes(Ether(src=h.mac, dst=bcast) / ARP(op=2, hwsrc=h.mac, psrc=spoofed, hwdst=bcast, pdst=spoofed))
             for h in (h3, h6)]
    gw_claim = bytes(Ether(src=h3.mac, dst=bcast) / ARP(op=2, hwsrc=h3.mac, psrc=fake_gw, hwdst=bcast, pdst=fake_gw))
    offer = bytes(Ether(src=h6.mac, dst=bcast) / IP(src=h6.ip, dst="255.255.255.255") / UDP(sport=67, dport=68)
                  / BOOTP(op=2, yiaddr=str(net.network_address + 99), chaddr=bytes(6))
                  / DHCP(options=[("message-type", "offer"), ("server_id", h6.ip), ("router", h6.ip), "end"]))

    started = threading.Event()
    result: dict[str, Any] = {}

    def listen() -> None:
        try:
            result["cap"] = passive.capture(lab.bridge, 4.0, on_started=started.set)
        except Exception as exc:  # handed to the test thread below
            result["error"] = exc
            started.set()

    thread = threading.Thread(target=listen)
    thread.start()
    try:
        assert started.wait(15), "sniffer did not start"
        assert "error" not in result, result.get("error")
        time.sleep(0.2)
        _telnet_login(h4.ip, b"labuser", b"hunter2-lab")
        _inject(lab, 3, [claim[0], gw_claim])
        _inject(lab, 6, [claim[1], offer])
        _dns_query(h5.ip)
    finally:
        thread.join(30)
    cap = result["cap"]
    policy = LinkPolicy(dhcp_servers=frozenset({lab.bridge_ip}), dns_servers=frozenset({lab.bridge_ip}),
                        gateway_ip=fake_gw, gateway_mac=fake_gw_mac)
    events = passive.analyse(cap.frames, policy)
    kinds = {(e.kind, e.protocol, e.src, e.dst) for e in events}
    assert ("cleartext_credentials", "telnet", lab.bridge_ip, f"{h4.ip}:23") in kinds
    conflict = next(e for e in events if e.kind == "arp_conflict" and e.src == spoofed)
    assert set(conflict.macs) == {h3.mac, h6.mac}
    gw = next(e for e in events if e.kind == "gateway_mac")
    assert gw.src == fake_gw and gw.expected is False and gw.macs == (h3.mac,)
    dhcp = next(e for e in events if e.kind == "dhcp_server")
    assert dhcp.src == h6.ip and dhcp.expected is False and dhcp.method == "offer"
    dns = next(e for e in events if e.kind == "dns_resolver")
    assert dns.src == h5.ip and dns.expected is False
    text = json.dumps([o.to_json() for o in passive.observations(events)])
    assert "hunter2" not in text and "labuser" not in text


def test_decoder_vlan_fragments_and_truncation() -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Dot1Q, Ether

    tagged = bytes(Ether(src="02:00:00:07:00:20", dst="02:00:00:07:00:30") / Dot1Q(vlan=42)
                   / IP(src="10.231.7.20", dst="10.231.7.30") / TCP(sport=40100, dport=21) / b"USER bob\r\n")
    (event,) = passive.analyse([(1.0, tagged)])
    assert (event.kind, event.protocol, event.dst, event.method) == ("cleartext_credentials", "ftp",
                                                                     "10.231.7.30:21", "USER")
    later_fragment = bytes(Ether() / IP(src="10.231.7.20", dst="10.231.7.30", frag=100, proto=6)
                           / (b"USER bob\r\n" + bytes(20)))
    assert passive.decode_frame(later_fragment) is None
    assert passive.decode_frame(tagged[:20]) is None
    assert passive.decode_frame(b"") is None
    assert passive.dhcp_server_reply(b"\x02" + bytes(300)) is None  # no DHCP magic cookie
