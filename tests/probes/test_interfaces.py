from __future__ import annotations

import json
import os

import pytest

from probes.base import GatherContext
from probes.host.interfaces import InterfacesProbe
from probes.transport import LocalTransport
from tests.probes.golden import cases, check_case
from tests.probes.hostb_util import in_ns, netns, probe_json


@pytest.mark.parametrize("raw_path", cases("interfaces"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("interfaces", raw_path)


def _by_name(observations):
    return {o["subject"]: o["attrs"] for o in observations}


def test_golden_kinds_cover_the_lab_and_handmade_cases():
    obs = {p.name: _by_name(o.to_json() for o in check_case("interfaces", p)) for p in cases("interfaces")}
    lab = obs["netns-lab.raw.json"]
    assert {n: a["kind"] for n, a in lab.items()} == {
        "br0": "bridge", "ifb9": "ifb", "lo": "loopback", "tap0": "tap", "tun0": "tun", "veth0": "veth",
        "veth1": "veth", "vx0": "vxlan"}
    assert lab["veth0"]["master"] == "br0" and lab["veth0"]["promiscuous"]  # a bridge port is promiscuous
    assert lab["veth1"]["promiscuous"] and lab["veth1"]["master"] is None
    laptop = obs["laptop-no-ip.raw.json"]
    assert laptop["wlp2s0"]["kind"] == "wireless" and not laptop["wlp2s0"]["usb"]
    assert laptop["wlx00c0ca123456"]["kind"] == "wireless" and laptop["wlx00c0ca123456"]["usb"]
    assert laptop["wg0"]["kind"] == "wireguard" and laptop["tun0"]["kind"] == "tun" and laptop["sit0"]["kind"] == "sit"
    assert laptop["wg0"]["addresses"] == ["2001:db8:0:1::a01/64"]
    server = obs["server-bond.raw.json"]
    assert server["eno1"]["master"] == "bond0" and server["bond0.100"]["kind"] == "vlan"
    assert server["bond0"]["addresses"] == ["10.231.40.10/24", "2001:db8:40::10/64"]  # temporary address dropped


def test_live_netns_lab():
    """Real interfaces in a throw-away namespace: veth pair, bridge, tun, tap, one port set promiscuous."""
    with netns() as ns:
        for cmd in (
            "ip link add pcxbr0 type bridge", "ip link add pcxv0 type veth peer name pcxv1",
            "ip link set pcxv0 master pcxbr0", "ip link set pcxbr0 up", "ip link set pcxv0 up",
            "ip link set pcxv1 up", "ip link set pcxv1 promisc on", "ip addr add 10.231.77.1/24 dev pcxv1",
            "ip tuntap add dev pcxtun0 mode tun", "ip tuntap add dev pcxtap0 mode tap",
        ):
            in_ns(ns, *cmd.split())
        out = probe_json(["ip", "netns", "exec", ns], "interfaces")
        rows = _by_name(out["observations"])
        assert set(rows) == {"lo", "pcxbr0", "pcxv0", "pcxv1", "pcxtun0", "pcxtap0"}
        assert rows["pcxbr0"]["kind"] == "bridge" and rows["pcxv0"]["master"] == "pcxbr0"
        assert rows["pcxv1"]["kind"] == "veth" and rows["pcxv1"]["promiscuous"]
        assert "10.231.77.1/24" in rows["pcxv1"]["addresses"]
        assert rows["pcxtun0"]["kind"] == "tun" and rows["pcxtap0"]["kind"] == "tap"
        assert rows["lo"]["kind"] == "loopback" and not rows["lo"]["up"]
        in_ns(ns, "ip", "link", "set", "pcxv1", "promisc", "off")
        rows = _by_name(probe_json(["ip", "netns", "exec", ns], "interfaces")["observations"])
        assert not rows["pcxv1"]["promiscuous"]


def test_live_host_matches_sysfs():
    probe = InterfacesProbe()
    before = set(os.listdir("/sys/class/net"))
    rows = {r.name: r for r in probe.parse(probe.gather(GatherContext(LocalTransport())))}
    after = set(os.listdir("/sys/class/net"))
    # other tests may add or remove lab interfaces meanwhile: judge only what existed throughout
    assert before & after <= set(rows) <= before | after
    assert rows["lo"].kind == "loopback" and "127.0.0.1/8" in rows["lo"].addresses


def test_sysfs_tree_without_ip(tmp_path):
    """A fixture sysfs tree (a USB Wi-Fi dongle) read with commands off: kinds from sysfs, IPv6 from procfs."""
    net = tmp_path / "sys" / "class" / "net"
    dev = tmp_path / "sys" / "devices" / "pci0000:00" / "0000:00:14.0" / "usb1" / "1-2" / "1-2:1.0" / "net" / "wlx1"
    dev.mkdir(parents=True)
    (dev / "wireless").mkdir()
    files = {"type": "1\n", "flags": "0x1103\n", "address": "00:c0:ca:12:34:56\n", "operstate": "up\n",
             "mtu": "1500\n", "uevent": "DEVTYPE=wlan\nINTERFACE=wlx1\nIFINDEX=3\n", "ifindex": "3\n", "iflink": "3\n"}
    for name, text in files.items():
        (dev / name).write_text(text)
    net.mkdir(parents=True)
    os.symlink(os.path.relpath(dev, net), net / "wlx1")
    proc = tmp_path / "proc" / "net"
    proc.mkdir(parents=True)
    (proc / "if_inet6").write_text("fe8000000000000002c0cafffe123456 03 40 20 80     wlx1\n")
    probe = InterfacesProbe()
    ctx = GatherContext(LocalTransport(root=str(tmp_path)))
    raw = probe.gather(ctx)
    json.dumps(raw)  # raw data must stay JSON-serialisable for golden files
    (row,) = probe.parse(raw)
    assert (row.name, row.kind, row.usb, row.promiscuous, row.up) == ("wlx1", "wireless", True, True, True)
    assert row.addresses == ("fe80::2c0:caff:fe12:3456/64",)
    assert any("IPv4 addresses unknown" in lim.en for lim in ctx.limitations)
