"""Mounted filesystems from /proc/self/mountinfo (else /proc/mounts): options, nodev/nosuid/noexec, and whether
the backing block device is removable or on a USB bus.

Pseudo filesystems are left out, except the tmpfs mounts that hardening guides judge (/tmp, /var/tmp, /dev/shm,
/run/user/*). When a mount point is mounted over, the last (visible) mount is reported.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row

log = logging.getLogger(__name__)

PSEUDO_FS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs", "tracefs", "pstore",
    "bpf", "mqueue", "hugetlbfs", "configfs", "fusectl", "autofs", "binfmt_misc", "efivarfs", "rpc_pipefs", "nsfs",
    "selinuxfs", "ramfs", "tmpfs", "fuse.gvfsd-fuse", "fuse.portal", "nfsd", "overlay", "squashfs", "devfs",
})
KEEP_TMPFS = ("/tmp", "/var/tmp", "/dev/shm")
_ESCAPE_RE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class Mount(Row):
    mount_point: str
    source: str
    fstype: str
    options: tuple[str, ...]  # per-mount options (ro, nodev, nosuid, noexec, relatime...)
    fs_options: tuple[str, ...]  # filesystem (superblock) options
    nodev: bool
    nosuid: bool
    noexec: bool
    read_only: bool
    device: str | None  # major:minor of the backing block device
    removable: bool
    usb: bool

    KEY: ClassVar[tuple[str, ...]] = ("mount_point",)


@dataclass(frozen=True, slots=True)
class MountEntry:
    mount_point: str
    source: str
    fstype: str
    options: tuple[str, ...]
    fs_options: tuple[str, ...]
    device: str | None


class MountsProbe(Probe[Mount]):
    id = "mounts"
    title = "Mounted filesystems"
    title_zh = "已挂载的文件系统"
    requires = Requirements(paths_any=("/proc/self/mountinfo", "/proc/mounts"))

    def gather(self, ctx: GatherContext) -> Raw:
        t = ctx.transport
        raw: Raw = {"block": {}}
        try:
            raw["mountinfo"] = t.read_text("/proc/self/mountinfo")
            entries = parse_mountinfo(raw["mountinfo"])
        except FileNotFoundError:
            raw["mounts"] = t.read_text("/proc/mounts")
            entries = parse_proc_mounts(raw["mounts"])
        for e in entries:
            if not kept(e) or not e.device or e.device.startswith("0:") or e.device in raw["block"]:
                continue
            raw["block"][e.device] = _block_info(ctx, e.device)
        return raw

    @staticmethod
    def parse(raw: Raw) -> Sequence[Mount]:
        if raw.get("mountinfo") is not None:
            entries = parse_mountinfo(raw["mountinfo"])
        else:
            entries = parse_proc_mounts(raw.get("mounts") or "")
        block: dict[str, dict[str, Any]] = raw.get("block", {})
        visible: dict[str, MountEntry] = {}
        for e in entries:
            if kept(e):
                visible[e.mount_point] = e  # later lines mount over earlier ones
        rows = []
        for e in visible.values():
            info = block.get(e.device or "", {}) if e.device else {}
            link = str(info.get("link") or "")
            usb = "/usb" in link
            rows.append(Mount(
                mount_point=e.mount_point, source=e.source, fstype=e.fstype, options=e.options,
                fs_options=e.fs_options, nodev="nodev" in e.options, nosuid="nosuid" in e.options,
                noexec="noexec" in e.options, read_only="ro" in e.options, device=e.device,
                removable=usb or (info.get("removable") or "").strip() == "1", usb=usb,
            ))
        return sorted(rows, key=lambda r: r.mount_point)


def kept(e: MountEntry) -> bool:
    if e.fstype == "tmpfs":
        return e.mount_point in KEEP_TMPFS or e.mount_point.startswith("/run/user/")
    if e.fstype == "overlay":
        return e.mount_point == "/"  # a container's root; the rest are container layers
    return e.fstype not in PSEUDO_FS


def unescape(text: str) -> str:
    return _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """``36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`` (proc(5))."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        out.append(MountEntry(
            mount_point=unescape(fields[4]), source=unescape(tail[1]), fstype=tail[0],
            options=tuple(fields[5].split(",")), fs_options=tuple(tail[2].split(",")) if len(tail) > 2 else (),
            device=fields[2],
        ))
    return out


def parse_proc_mounts(text: str) -> list[MountEntry]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            out.append(MountEntry(unescape(parts[1]), unescape(parts[0]), parts[2], tuple(parts[3].split(",")), (),
                                  None))
    return out


def _block_info(ctx: GatherContext, device: str) -> dict[str, str | None]:
    """The sysfs device path of major:minor and the removable flag of its disk (the parent, for a partition)."""
    t = ctx.transport
    base = f"/sys/dev/block/{device}"
    info: dict[str, str | None] = {"link": None, "removable": None}
    try:
        info["link"] = t.readlink(base)
    except OSError:  # device gone, or /sys not mounted
        return info
    for candidate in (f"{base}/removable", f"{base}/../removable"):
        try:
            info["removable"] = t.read_text(candidate, 16)
            break
        except (FileNotFoundError, NotADirectoryError):
            continue
    return info
