"""Network interfaces from /sys/class/net: kind, MAC, state, promiscuous mode, bridge/bond master, addresses.

Kinds come from ``ip -d -j link`` (the kernel's rtnl link kind) when ``ip`` exists, else from sysfs clues: the
ARPHRD ``type``, uevent ``DEVTYPE``, ``wireless/``, ``phy80211``, ``bridge/``, ``bonding/``, ``tun_flags``.
Promiscuous mode is IFF_PROMISC in ``flags`` or, with ``ip``, a non-zero promiscuity counter (a packet socket
such as tcpdump's raises the counter without setting the flag).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row
from probes.transport import CommandUnavailable

log = logging.getLogger(__name__)

NET = "/sys/class/net"
FILES = ("type", "flags", "address", "operstate", "mtu", "uevent", "ifindex", "iflink", "tun_flags")
DIRS = ("wireless", "phy80211", "bridge", "bonding", "brport", "bonding_slave")

IFF_UP = 0x1
IFF_PROMISC = 0x100
IFF_TUN = 0x1
ARPHRD_KIND = {772: "loopback", 768: "ipip", 769: "ipip", 776: "sit", 778: "gre", 823: "gre", 801: "wireless",
               803: "wireless"}
DEVTYPE_KIND = {"wlan": "wireless", "bridge": "bridge", "bond": "bond", "vlan": "vlan", "wireguard": "wireguard",
                "vxlan": "vxlan"}
LINK_KIND = {"bridge": "bridge", "bond": "bond", "vlan": "vlan", "veth": "veth", "wireguard": "wireguard",
             "ipip": "ipip", "ip6tnl": "ipip", "gre": "gre", "gretap": "gre", "ip6gre": "gre", "ip6gretap": "gre",
             "erspan": "gre", "sit": "sit", "vxlan": "vxlan", "dummy": "dummy", "ifb": "ifb"}


@dataclass(frozen=True, slots=True)
class Interface(Row):
    name: str
    kind: str  # ethernet loopback wireless bridge bond vlan tun tap veth wireguard ipip gre sit vxlan dummy ifb other
    link_kind: str | None  # the kernel's rtnl kind as `ip -d link` names it, when known
    mac: str | None
    operstate: str
    up: bool  # IFF_UP: administratively up
    mtu: int | None
    flags: int
    promiscuous: bool
    master: str | None  # the bridge or bond this interface is enslaved to
    usb: bool  # the device hangs off a USB bus (a dongle)
    virtual: bool
    addresses: tuple[str, ...]

    KEY: ClassVar[tuple[str, ...]] = ("name",)


class InterfacesProbe(Probe[Interface]):
    id = "interfaces"
    title = "Network interfaces"
    title_zh = "网络接口"
    requires = Requirements(paths_any=(NET,))

    def gather(self, ctx: GatherContext) -> Raw:
        t = ctx.transport
        sysfs: dict[str, dict[str, Any]] = {}
        for name in t.list_dir(NET):
            base = f"{NET}/{name}"
            entry: dict[str, Any] = {}
            for fname in FILES:
                try:
                    entry[fname] = t.read_text(f"{base}/{fname}", 4096)
                except OSError:  # absent, or refused (EINVAL) by a driver while the link is down
                    continue
            entry["dirs"] = [d for d in DIRS if t.exists(f"{base}/{d}")]
            entry["link"] = _readlink(ctx, base)
            entry["master"] = _readlink(ctx, f"{base}/master")
            sysfs[name] = entry
        raw: Raw = {"sys": sysfs, "ip_link": None, "ip_addr": None, "if_inet6": None}
        if t.which("ip"):
            try:
                raw["ip_link"] = _ok(t.run(["ip", "-d", "-j", "link", "show"]).stdout)
                raw["ip_addr"] = _ok(t.run(["ip", "-j", "addr", "show"]).stdout)
            except CommandUnavailable:
                pass
        if raw["ip_addr"] is None:
            ctx.limited(msg.NO_IP_COMMAND())
            with contextlib.suppress(FileNotFoundError):  # no IPv6 in this kernel
                raw["if_inet6"] = t.read_text("/proc/net/if_inet6")
        return raw

    @staticmethod
    def parse(raw: Raw) -> Sequence[Interface]:
        links = _by_name(raw.get("ip_link"))
        addrs = _addresses(raw.get("ip_addr"), raw.get("if_inet6"))
        rows = []
        for name, entry in sorted(raw.get("sys", {}).items()):
            link = links.get(name, {})
            flags = _int(entry.get("flags"), 16) or 0
            link_kind, kind = _kind(entry, link)
            dev_path = entry.get("link") or ""
            master = entry.get("master")
            rows.append(Interface(
                name=name,
                kind=kind,
                link_kind=link_kind,
                mac=(entry.get("address") or "").strip() or None,
                operstate=(entry.get("operstate") or "unknown").strip(),
                up=bool(flags & IFF_UP),
                mtu=_int(entry.get("mtu")),
                flags=flags,
                promiscuous=bool(flags & IFF_PROMISC) or int(link.get("promiscuity") or 0) > 0,
                master=master.rsplit("/", 1)[-1] if master else link.get("master"),
                usb="/usb" in dev_path,
                virtual="/virtual/" in dev_path,
                addresses=tuple(addrs.get(name, ())),
            ))
        return rows


def _readlink(ctx: GatherContext, path: str) -> str | None:
    try:
        return ctx.transport.readlink(path)
    except OSError:  # not a link, or absent: no master, no device
        return None


def _ok(text: str) -> str | None:
    return text if text.strip().startswith("[") else None


def _int(text: str | None, base: int = 10) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip(), base)
    except ValueError:
        return None


def _json_list(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _by_name(text: str | None) -> dict[str, dict[str, Any]]:
    return {str(d.get("ifname")): d for d in _json_list(text)}


def _uevent(text: str | None) -> dict[str, str]:
    out = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _kind(entry: dict[str, Any], link: dict[str, Any]) -> tuple[str | None, str]:
    dirs = set(entry.get("dirs", ()))
    devtype = _uevent(entry.get("uevent")).get("DEVTYPE", "")
    arphrd = _int(entry.get("type"))
    info = link.get("linkinfo") or {}
    link_kind = info.get("info_kind")
    if link_kind == "tun":
        tun_type = (info.get("info_data") or {}).get("type")
        return link_kind, "tap" if tun_type == "tap" else "tun"
    if link_kind:
        return link_kind, LINK_KIND.get(link_kind, "other")
    if arphrd == 772:
        return None, "loopback"
    if "wireless" in dirs or "phy80211" in dirs or devtype == "wlan":
        return None, "wireless"
    if devtype in DEVTYPE_KIND:
        return None, DEVTYPE_KIND[devtype]
    if "bridge" in dirs:
        return None, "bridge"
    if "bonding" in dirs:
        return None, "bond"
    tun_flags = _int(entry.get("tun_flags"), 16)
    if tun_flags is not None:
        return None, "tun" if tun_flags & IFF_TUN else "tap"
    if arphrd in ARPHRD_KIND:
        return None, ARPHRD_KIND[arphrd]
    if arphrd == 1:
        if "/virtual/" not in (entry.get("link") or ""):
            return None, "ethernet"
        if _int(entry.get("iflink")) not in (None, _int(entry.get("ifindex"))):
            return None, "veth"  # a virtual Ethernet whose link is another interface: a veth peer
    return None, "other"


def _addresses(ip_addr: str | None, if_inet6: str | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if ip_addr:
        for dev in _json_list(ip_addr):
            for info in dev.get("addr_info", []):
                if info.get("temporary"):
                    continue  # IPv6 privacy addresses rotate by design
                if "local" in info:
                    out.setdefault(str(dev.get("ifname")), []).append(f"{info['local']}/{info.get('prefixlen')}")
    elif if_inet6:
        for line in if_inet6.splitlines():
            parts = line.split()
            if len(parts) < 6 or len(parts[0]) != 32:
                continue
            addr = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
            out.setdefault(parts[5], []).append(f"{addr}/{int(parts[2], 16)}")
    return {name: sorted(values) for name, values in out.items()}
