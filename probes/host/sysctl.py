"""Security-relevant kernel parameters read from /proc/sys (the values `sysctl` would print)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row
from probes.transport import text_of

log = logging.getLogger(__name__)

_CONF4 = ("accept_redirects", "send_redirects", "secure_redirects", "accept_source_route", "rp_filter",
          "log_martians")
_CONF6 = ("accept_redirects", "accept_source_route")

KEYS: tuple[str, ...] = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    *(f"net.ipv4.conf.{scope}.{name}" for scope in ("all", "default") for name in _CONF4),
    *(f"net.ipv6.conf.{scope}.{name}" for scope in ("all", "default") for name in _CONF6),
    "net.ipv4.icmp_echo_ignore_broadcasts",
    "net.ipv4.icmp_ignore_bogus_error_responses",
    "net.ipv4.tcp_syncookies",
    "kernel.yama.ptrace_scope",
    "kernel.kptr_restrict",
    "kernel.dmesg_restrict",
    "kernel.randomize_va_space",
    "kernel.unprivileged_bpf_disabled",
    "kernel.sysrq",
    "fs.suid_dumpable",
    "fs.protected_hardlinks",
    "fs.protected_symlinks",
    "fs.protected_fifos",
    "fs.protected_regular",
    "kernel.modules_disabled",
    "kernel.perf_event_paranoid",
    "net.core.bpf_jit_harden",
    "dev.tty.ldisc_autoload",
    "user.max_user_namespaces",
)

_INT_RE = re.compile(r"^-?\d+$")


def key_path(key: str) -> str:
    # Only the fixed keys above are read: none has an interface name with a dot in it.
    return "/proc/sys/" + key.replace(".", "/")


@dataclass(frozen=True, slots=True)
class SysctlSetting(Row):
    key: str
    value: int | str

    KEY: ClassVar[tuple[str, ...]] = ("key",)


def parse_value(text: str) -> int | str:
    value = text.strip()
    return int(value) if _INT_RE.match(value) else value


class SysctlProbe(Probe[SysctlSetting]):
    id = "sysctl"
    title = "Security-relevant kernel parameters"
    title_zh = "安全相关内核参数"
    requires = Requirements(paths_any=("/proc/sys/kernel",))

    def gather(self, ctx: GatherContext) -> Raw:
        values: dict[str, str] = {}
        denied: list[str] = []
        read = ctx.transport.read_many((key_path(key) for key in KEYS), 4096)  # one round trip over SSH
        for key in KEYS:
            try:
                values[key] = text_of(read[key_path(key)])
            except FileNotFoundError:
                continue  # not in this kernel (no Yama, no IPv6): no row
            except PermissionError:
                denied.append(key)
        if denied:
            ctx.limited(msg.NOT_READABLE_LIST(paths=list(denied)))
        return {"values": values}

    @staticmethod
    def parse(raw: Raw) -> Sequence[SysctlSetting]:
        values = raw.get("values", {})
        return [SysctlSetting(key, parse_value(values[key])) for key in KEYS if key in values]
