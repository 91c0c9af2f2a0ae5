"""Scheduled jobs: system and user crontabs, anacrontab, and the scripts in /etc/cron.{hourly,daily,...}.

One row per job line (or per periodic script). The subject is the file, the user and a hash of the command,
so that editing a line above does not turn every job below it into drift.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row

log = logging.getLogger(__name__)

SYSTEM_CRONTABS = ("/etc/crontab",)
SYSTEM_CRON_DIRS = ("/etc/cron.d",)
SPOOL = "/var/spool/cron"
DEBIAN_SPOOL = "/var/spool/cron/crontabs"
ANACRONTABS = ("/etc/anacrontab",)
PERIODIC_DIRS = ("/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly")

_ENV_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_SPECIAL = frozenset({"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


@dataclass(frozen=True, slots=True)
class CronEntry(Row):
    kind: str  # job (crontab line) | anacron (anacrontab line) | script (file in /etc/cron.<period>)
    source: str  # the crontab file, or the script itself
    line: int  # 1-based line in source; 0 for scripts
    user: str  # account the job runs as
    schedule: str  # the five time fields or @keyword; anacron "period delay"; script: hourly|daily|...
    command: str  # as written (for a script: its path)
    command_sha256: str
    content_sha256: str | None  # scripts: sha256 of the file's content
    env_path: str | None  # PATH= set in the crontab above this line, if any

    KEY: ClassVar[tuple[str, ...]] = ("source", "user", "command_sha256")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"line"})


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_crontab(source: str, text: str, owner: str | None) -> list[CronEntry]:
    """A crontab: with a user field (``owner`` None: /etc/crontab, /etc/cron.d) or without (a user's spool)."""
    out: list[CronEntry] = []
    env_path: str | None = None
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        env = _ENV_RE.match(line)
        if env and not line.startswith(("*", "@")):
            if env.group(1) == "PATH":
                env_path = env.group(2).strip().strip("\"'")
            continue
        fields = line.split()
        n_time = 1 if fields[0].startswith("@") else 5
        if fields[0].startswith("@") and fields[0].lower() not in _SPECIAL:
            continue  # cron rejects an unknown @keyword
        n_user = 1 if owner is None else 0
        if len(fields) < n_time + n_user + 1:
            continue  # incomplete: cron rejects the line, nothing runs
        schedule = " ".join(fields[:n_time])
        user = fields[n_time] if owner is None else owner
        command = _rest_after(line, n_time + n_user)
        out.append(CronEntry("job", source, number, user, schedule, command, sha256_text(command), None, env_path))
    return out


def parse_anacrontab(source: str, text: str) -> list[CronEntry]:
    out: list[CronEntry] = []
    env_path: str | None = None
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        env = _ENV_RE.match(line)
        if env:
            if env.group(1) == "PATH":
                env_path = env.group(2).strip().strip("\"'")
            continue
        fields = line.split()
        if len(fields) < 4:
            continue
        command = _rest_after(line, 3)
        out.append(CronEntry("anacron", source, number, "root", f"{fields[0]} {fields[1]}", command,
                             sha256_text(command), None, env_path))
    return out


def _rest_after(line: str, n_fields: int) -> str:
    """The text after the first ``n_fields`` whitespace-separated fields, spacing inside it kept."""
    parts = re.split(r"(\s+)", line.strip(), maxsplit=n_fields)
    return parts[-1].strip() if len(parts) > 2 * n_fields else ""


class CronProbe(Probe[CronEntry]):
    id = "cron"
    title = "Scheduled jobs (cron, anacron)"
    title_zh = "定时任务（cron、anacron）"
    requires = Requirements(root=True)

    def gather(self, ctx: GatherContext) -> Raw:
        raw: Raw = {"system": {}, "user": {}, "anacron": {}, "scripts": {}}
        for path in SYSTEM_CRONTABS:
            _read_into(ctx, path, raw["system"])
        for directory in SYSTEM_CRON_DIRS:
            for name in _list(ctx, directory):
                _read_into(ctx, f"{directory}/{name}", raw["system"])
        for path in ANACRONTABS:
            _read_into(ctx, path, raw["anacron"])
        # Debian keeps user crontabs in /var/spool/cron/crontabs, RHEL directly in /var/spool/cron.
        for name in _list(ctx, SPOOL):
            path = f"{SPOOL}/{name}"
            if path == DEBIAN_SPOOL:
                for user in _list(ctx, DEBIAN_SPOOL):
                    _read_into(ctx, f"{DEBIAN_SPOOL}/{user}", raw["user"])
            elif _is_file(ctx, path):
                _read_into(ctx, path, raw["user"])
        for directory in PERIODIC_DIRS:
            for name in _list(ctx, directory):
                if name.startswith("."):
                    continue  # run-parts never runs dot files (Debian's .placeholder)
                path = f"{directory}/{name}"
                if _is_file(ctx, path):
                    _read_into(ctx, path, raw["scripts"])
        return raw

    @staticmethod
    def parse(raw: Raw) -> Sequence[CronEntry]:
        entries: list[CronEntry] = []
        for path, text in sorted(raw.get("system", {}).items()):
            entries += parse_crontab(path, text, None)
        for path, text in sorted(raw.get("user", {}).items()):
            entries += parse_crontab(path, text, posixpath.basename(path))
        for path, text in sorted(raw.get("anacron", {}).items()):
            entries += parse_anacrontab(path, text)
        for path, text in sorted(raw.get("scripts", {}).items()):
            period = posixpath.basename(posixpath.dirname(path)).removeprefix("cron.")
            entries.append(CronEntry("script", path, 0, "root", period, path, sha256_text(path), sha256_text(text),
                                     None))
        rows: dict[str, CronEntry] = {}
        for entry in entries:
            key = entry.subject()
            if key in rows:
                # The same command twice in one file for one user: one subject, both schedules kept.
                first = rows[key]
                rows[key] = replace(first, schedule=f"{first.schedule}; {entry.schedule}")
            else:
                rows[key] = entry
        return list(rows.values())


def _list(ctx: GatherContext, path: str) -> list[str]:
    try:
        return ctx.transport.list_dir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError:
        ctx.limited(msg.NOT_READABLE_BECAUSE(path=path, consequence=msg.CRONTABS_NOT_INSPECTED()))
        return []


def _is_file(ctx: GatherContext, path: str) -> bool:
    try:
        return ctx.transport.stat(path).is_file
    except FileNotFoundError:
        return False  # a dangling link
    except PermissionError:
        ctx.limited(msg.NOT_READABLE(path=path))
        return False


def _read_into(ctx: GatherContext, path: str, out: dict[str, str]) -> None:
    try:
        out[path] = ctx.transport.read_text(path)
    except (FileNotFoundError, IsADirectoryError):
        return
    except PermissionError:
        ctx.limited(msg.NOT_READABLE(path=path))
