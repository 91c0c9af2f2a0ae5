"""Time synchronisation: which daemon runs (from /proc/*/comm), its configured servers, and whether the clock
is synchronised (``timedatectl show``, else ``chronyc -n tracking`` when chronyd runs).

Inspection records and logs are only evidence when their timestamps are right (Art. 25 ¶3), hence the probe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row
from probes.procfs import list_pids
from probes.transport import CommandUnavailable

log = logging.getLogger(__name__)

# comm is cut at 15 characters: systemd-timesyncd shows as "systemd-timesyn".
DAEMONS = {"chronyd": "chronyd", "ntpd": "ntpd", "systemd-timesyn": "systemd-timesyncd", "openntpd": "openntpd"}
CONFIG_FILES = {
    "chronyd": ("/etc/chrony/chrony.conf", "/etc/chrony.conf"),
    "ntpd": ("/etc/ntpsec/ntp.conf", "/etc/ntp.conf"),
    "systemd-timesyncd": ("/etc/systemd/timesyncd.conf",),
    "openntpd": ("/etc/openntpd/ntpd.conf",),
}
CONFIG_DIRS = {
    "chronyd": (("/etc/chrony/sources.d", ".sources"), ("/etc/chrony/conf.d", ".conf")),
    "systemd-timesyncd": (("/usr/lib/systemd/timesyncd.conf.d", ".conf"), ("/etc/systemd/timesyncd.conf.d", ".conf"),
                          ("/run/systemd/timesyncd.conf.d", ".conf")),
}
SERVER_WORDS = frozenset({"server", "pool", "peer", "servers"})


@dataclass(frozen=True, slots=True)
class TimeSync(Row):
    name: str  # always "timesync"
    daemon: str  # chronyd | ntpd | systemd-timesyncd | openntpd | none | unknown (other users' processes hidden)
    daemons: tuple[str, ...]  # every time daemon found running (more than one fight over the clock)
    servers: tuple[str, ...]
    synchronized: bool | None  # None when no tool could tell
    ntp_enabled: bool | None  # timedatectl's NTP= (systemd's view of whether a sync service is enabled)
    sync_source: str | None  # timedatectl | chronyc: where `synchronized` came from

    KEY: ClassVar[tuple[str, ...]] = ("name",)


class TimeSyncProbe(Probe[TimeSync]):
    id = "timesync"
    title = "Time synchronisation"
    title_zh = "时间同步"
    requires = Requirements(paths_any=("/proc",))

    def gather(self, ctx: GatherContext) -> Raw:
        t = ctx.transport
        running: set[str] = set()
        pids = list_pids(ctx)
        # pid 1 always exists; when it is not listed, /proc hides other users' processes (hidepid=) and a
        # daemon running as another user cannot be seen: whether one runs is unknown
        hidden = "1" not in pids
        if hidden:
            ctx.limited(msg.HIDEPID())
        for pid in pids:
            try:
                comm = t.read_text(f"/proc/{pid}/comm", 64).strip()
            except OSError:  # the process exited
                continue
            if comm in DAEMONS:
                running.add(DAEMONS[comm])
        if "ntpd" in running and t.exists("/etc/openntpd/ntpd.conf") and not any(
                t.exists(p) for p in CONFIG_FILES["ntpd"]):
            running.discard("ntpd")  # OpenNTPD's binary is also called ntpd
            running.add("openntpd")
        configs: dict[str, str] = {}
        for daemon in sorted(running):
            for path in CONFIG_FILES[daemon]:
                _read_into(ctx, path, configs)
            for directory, suffix in CONFIG_DIRS.get(daemon, ()):
                try:
                    names = t.list_dir(directory)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                for name in names:
                    if name.endswith(suffix):
                        _read_into(ctx, f"{directory}/{name}", configs)
        raw: Raw = {"running": sorted(running), "configs": configs, "timedatectl": None, "chronyc": None,
                    "processes_hidden": hidden}
        raw["timedatectl"] = _run(ctx, ["timedatectl", "show"])
        if raw["timedatectl"] is None and "chronyd" in running:
            raw["chronyc"] = _run(ctx, ["chronyc", "-n", "tracking"])
        return raw

    @staticmethod
    def parse(raw: Raw) -> Sequence[TimeSync]:
        running = tuple(raw.get("running", ()))
        order = ("chronyd", "systemd-timesyncd", "ntpd", "openntpd")
        daemon = next((d for d in order if d in running), "unknown" if raw.get("processes_hidden") else "none")
        configs: dict[str, str] = raw.get("configs", {})
        servers = servers_for(daemon, configs) if daemon not in ("none", "unknown") else ()
        synchronized: bool | None = None
        ntp_enabled: bool | None = None
        source: str | None = None
        tdc = _keyvalues(raw.get("timedatectl"))
        if "NTPSynchronized" in tdc:
            synchronized, source = tdc["NTPSynchronized"] == "yes", "timedatectl"
            ntp_enabled = tdc.get("NTP") == "yes" if "NTP" in tdc else None
        elif raw.get("chronyc"):
            leap = _chronyc_field(raw["chronyc"], "Leap status")
            if leap is not None:
                synchronized, source = leap != "Not synchronised", "chronyc"
        return [TimeSync("timesync", daemon, running, servers, synchronized, ntp_enabled, source)]


def servers_for(daemon: str, configs: dict[str, str]) -> tuple[str, ...]:
    found: list[str] = []
    if daemon == "systemd-timesyncd":
        # Later files override earlier ones: the last NTP= wins; an empty NTP= resets the list.
        ntp: list[str] = []
        fallback: list[str] = []
        for text in configs.values():
            for line in text.splitlines():
                key, sep, value = line.strip().partition("=")
                if not sep or line.lstrip().startswith(("#", ";")):
                    continue
                if key.strip() == "NTP":
                    ntp = value.split()
                elif key.strip() == "FallbackNTP":
                    fallback = value.split()
        found = ntp or fallback
    else:
        for text in configs.values():
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 2 and words[0] in SERVER_WORDS:
                    found.append(words[1])
    return tuple(dict.fromkeys(found))


def _read_into(ctx: GatherContext, path: str, out: dict[str, str]) -> None:
    try:
        out[path] = ctx.transport.read_text(path, 1024 * 1024)
    except (FileNotFoundError, NotADirectoryError):
        return
    except PermissionError:
        ctx.limited(msg.NOT_READABLE(path=path))


def _run(ctx: GatherContext, argv: list[str]) -> str | None:
    try:
        result = ctx.transport.run(argv, timeout=5.0)
    except CommandUnavailable:
        return None
    return result.stdout if result.returncode == 0 else None  # no systemd as PID 1, no chronyd socket


def _keyvalues(text: Any) -> dict[str, str]:
    out = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value.strip()
    return out


def _chronyc_field(text: str, name: str) -> str | None:
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            return value.strip()
    return None
