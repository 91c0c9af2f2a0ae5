"""Accounts and their home directories, read from /etc/passwd, for probes that look into homes (user
crontabs, user systemd units, shell start-up files). Not a probe itself."""

from __future__ import annotations

from dataclasses import dataclass

from probes import messages as msg
from probes.base import GatherContext

# Homes that are not places a person keeps files: many daemons have "/" or a system directory as home.
NO_HOME = frozenset({"", "/", "/nonexistent", "/dev/null"})
REGULAR_UID_MIN = 1000
NOBODY_UID = 65534


@dataclass(frozen=True, slots=True)
class AccountHome:
    name: str
    uid: int
    home: str

    @property
    def regular(self) -> bool:
        """root or an account in the usual range for people (not a daemon)."""
        return self.uid == 0 or REGULAR_UID_MIN <= self.uid < NOBODY_UID


def parse_homes(passwd_text: str) -> list[AccountHome]:
    out: dict[str, AccountHome] = {}
    for line in passwd_text.splitlines():
        parts = line.split(":")
        if len(parts) < 7 or not parts[0] or parts[0].startswith(("#", "+", "-")):
            continue
        try:
            uid = int(parts[2])
        except ValueError:
            continue
        home = parts[5].rstrip("/") or "/"
        if home in NO_HOME or not home.startswith("/"):
            continue
        out.setdefault(parts[0], AccountHome(parts[0], uid, home))
    return list(out.values())


def read_homes(ctx: GatherContext) -> list[AccountHome]:
    """Accounts whose home exists on the target (several accounts may share one home)."""
    try:
        text = ctx.transport.read_text("/etc/passwd")
    except FileNotFoundError:
        return []
    except PermissionError:
        ctx.limited(msg.NOT_READABLE_BECAUSE(path="/etc/passwd", consequence=msg.HOMES_NOT_INSPECTED()))
        return []
    accounts = parse_homes(text)
    # exists() is lexists(): any answer from lstat means present.
    found = ctx.transport.stat_many((a.home for a in accounts), follow=False)
    return [a for a in accounts if not isinstance(found[a.home], OSError)]


def home_owner(path: str, homes: list[tuple[str, str]]) -> str | None:
    """The account whose home directory contains ``path`` (longest home wins), else None."""
    best: tuple[int, str] | None = None
    for name, home in homes:
        if path.startswith(home.rstrip("/") + "/") and (best is None or len(home) > best[0]):
            best = (len(home), name)
    return best[1] if best else None
