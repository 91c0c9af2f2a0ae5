"""The default profile's KRN, IF, USB, AV, PKG, FW, TIME and MNT rules over the golden observations of the host
probes they judge: exactly these (rule, subject) pairs fire, nothing else of these areas."""

from __future__ import annotations

import json

import pytest

from baselines.evaluate import evaluate
from baselines.profile import load_profile
from probes.observation import Observation
from probes.registry import get_probe
from tests.probes.golden import FIXTURES

AREAS = ("PC-KRN-", "PC-IF-", "PC-USB-", "PC-AV-", "PC-PKG-", "PC-FW-", "PC-TIME-", "PC-MNT-")

VM_SYSCTL = {
    ("PC-KRN-002", "net.ipv4.conf.all.accept_redirects"), ("PC-KRN-002", "net.ipv4.conf.all.secure_redirects"),
    ("PC-KRN-002", "net.ipv4.conf.default.accept_redirects"),
    ("PC-KRN-002", "net.ipv4.conf.default.secure_redirects"), ("PC-KRN-002", "net.ipv6.conf.all.accept_redirects"),
    ("PC-KRN-002", "net.ipv6.conf.default.accept_redirects"), ("PC-KRN-003", "net.ipv4.conf.all.send_redirects"),
    ("PC-KRN-003", "net.ipv4.conf.default.send_redirects"),
    ("PC-KRN-004", "net.ipv4.conf.default.accept_source_route"), ("PC-KRN-005", "net.ipv4.conf.all.rp_filter"),
    ("PC-KRN-005", "net.ipv4.conf.default.rp_filter"), ("PC-KRN-008", "kernel.kptr_restrict"),
    ("PC-KRN-013", "fs.protected_symlinks"),
}

EXPECTED: dict[tuple[str, str], set[tuple[str, str]]] = {
    ("sysctl", "cis-hardened"): set(),
    ("sysctl", "debian12-vm"): VM_SYSCTL,
    ("sysctl", "legacy-router"): VM_SYSCTL | {
        ("PC-KRN-001", "net.ipv4.ip_forward"), ("PC-KRN-006", "net.ipv4.tcp_syncookies"),
        ("PC-KRN-007", "kernel.yama.ptrace_scope"), ("PC-KRN-009", "kernel.dmesg_restrict"),
        ("PC-KRN-010", "kernel.randomize_va_space"), ("PC-KRN-011", "fs.suid_dumpable"),
        ("PC-KRN-012", "kernel.unprivileged_bpf_disabled"), ("PC-KRN-013", "fs.protected_hardlinks"),
    },
    ("interfaces", "debian12-vm"): set(),
    # veth0 is promiscuous too, as every bridge port is: only the unbridged veth1 counts
    ("interfaces", "netns-lab"): {("PC-IF-001", "veth1")},
    ("interfaces", "laptop-no-ip"): {
        ("PC-IF-001", "eth9"), ("PC-IF-002", "wlp2s0"), ("PC-IF-002", "wlx00c0ca123456"), ("PC-IF-003", "tun0"),
        ("PC-IF-003", "wg0"),  # sit0 is the kernel's fallback device, down: not judged
    },
    ("interfaces", "server-bond"): {("PC-IF-003", "gre1")},
    ("usb", "debian12-vm"): set(),
    ("usb", "workstation"): {
        ("PC-USB-001", "0781:5567:4C530001230823117203"), ("PC-USB-002", "0bda:8179:00E04C0001"),
        ("PC-USB-002", "8087:0026:"), ("PC-USB-003", "12d1:1506:"),
    },
    ("av_devices", "debian12-vm"): set(),
    ("av_devices", "laptop-webcam"): {
        ("PC-AV-001", "/dev/video0"), ("PC-AV-002", "/dev/snd/pcmC0D0c"), ("PC-AV-002", "/dev/snd/pcmC1D0c"),
    },
    ("av_devices", "server-onboard-audio"): {("PC-AV-002", "/dev/snd/pcmC0D0c"), ("PC-AV-002", "/dev/snd/pcmC0D2c")},
    ("packages", "debian12-vm"): set(),
    ("packages", "debian-remote-access"): {
        ("PC-PKG-001", "telnetd"), ("PC-PKG-003", "anydesk"), ("PC-PKG-003", "x11vnc"),
    },
    ("packages", "rocky9-rpm"): {
        ("PC-PKG-002", "rsh-server"), ("PC-PKG-002", "telnet-server"), ("PC-PKG-004", "tigervnc-server"),
    },
    ("firewall", "debian12-vm"): {("PC-FW-001", "ruleset")},
    ("firewall", "iptables-accept-empty"): {("PC-FW-001", "ruleset")},
    ("firewall", "iptables-accept-with-rules"): {("PC-FW-002", "ruleset")},
    ("firewall", "iptables-hardened"): set(),
    ("firewall", "netns-nft"): set(),
    ("firewall", "nonroot"): set(),  # unreadable is a limitation, not an empty ruleset
    ("firewall", "no-tools"): set(),  # neither nft nor iptables could run (--root DIR): state unknown, no finding
    ("timesync", "debian12-vm"): {("PC-TIME-001", "timesync")},
    ("timesync", "chrony-synchronised"): set(),
    ("timesync", "chrony-container-chronyc"): set(),
    ("timesync", "timesyncd-unsynchronised"): {("PC-TIME-002", "timesync")},
    ("mounts", "debian12-vm"): {("PC-MNT-002", "/dev/shm"), ("PC-MNT-004", "/tmp")},
    ("mounts", "desktop-usb-media"): {
        ("PC-MNT-003", "/media/alice/Backup Disk"), ("PC-MNT-003", "/media/alice/KINGSTON"),
    },
    ("mounts", "proc-mounts-only"): {("PC-MNT-001", "/tmp"), ("PC-MNT-002", "/dev/shm")},
}


def _observations(probe_id: str, case: str) -> list[Observation]:
    raw = json.loads((FIXTURES / probe_id / f"{case}.raw.json").read_text(encoding="utf-8"))
    return [Observation.from_row(probe_id, row) for row in get_probe(probe_id).parse(raw)]


@pytest.fixture(scope="module")
def profile():
    return load_profile()


@pytest.mark.parametrize(("probe_id", "case"), sorted(EXPECTED), ids=lambda v: v)
def test_rules_fire_exactly(profile, probe_id, case):
    ev = evaluate(profile, _observations(probe_id, case), "host-b", {probe_id})
    got = {(f.rule_id, f.subject) for f in ev.findings if f.rule_id.startswith(AREAS)}
    assert got == EXPECTED[(probe_id, case)]


def test_every_fixture_is_covered():
    probes = {p for p, _ in EXPECTED}
    on_disk = {(p, path.name.removesuffix(".raw.json")) for p in probes for path in (FIXTURES / p).glob("*.raw.json")}
    assert on_disk == set(EXPECTED)


def test_every_rule_of_these_areas_fires_somewhere(profile):
    ours = {r.id for r in profile.rules if r.id.startswith(AREAS)}
    fired = {rule for pairs in EXPECTED.values() for rule, _ in pairs}
    assert len(ours) >= 18 and ours == fired


def test_findings_carry_filled_remediation(profile):
    ev = evaluate(profile, _observations("usb", "workstation"), "host-b", {"usb"})
    stick = next(f for f in ev.findings if f.rule_id == "PC-USB-001")
    assert stick.remediation.command is not None and "/sys/bus/usb/devices/2-1/authorized" in stick.remediation.command
    assert "Cruzer Blade" in stick.remediation.steps.en and "Cruzer Blade" in stick.remediation.steps.zh
    assert stick.severity.value == "high" and stick.remediation.action.value == "dismantle"
    ev = evaluate(profile, _observations("packages", "debian-remote-access"), "host-b", {"packages"})
    telnetd = next(f for f in ev.findings if f.rule_id == "PC-PKG-001")
    assert telnetd.remediation.command == "apt-get purge -y telnetd"
    for rule in profile.rules:
        if rule.id.startswith(AREAS):
            assert "Art. 26" in rule.references and rule.title.zh and rule.remediation.steps.zh
