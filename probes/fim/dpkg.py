"""Package ownership for file integrity, from the dpkg database: pure parsers of /var/lib/dpkg/info/*.list,
*.md5sums, /var/lib/dpkg/status (versions, conffile digests) and /var/lib/dpkg/diversions.

Paths are canonicalised for merged-/usr systems: packages still list /bin/ls while the file lives at
/usr/bin/ls behind the /bin -> usr/bin symlink, so ``aliases`` ({"/bin": "/usr/bin"}) rewrite listed paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Owned:
    package: str  # as dpkg -S names it: "coreutils", "libc6:amd64"
    version: str
    md5: str | None  # what the package database says the content should be (None: no digest recorded)
    conffile: bool


@dataclass(frozen=True, slots=True)
class StatusEntry:
    package: str
    arch: str
    version: str
    conffiles: Mapping[str, str]  # path -> md5 (obsolete conffiles left out)


def canonical(path: str, aliases: Mapping[str, str]) -> str:
    for alias, real in aliases.items():
        if path == alias or path.startswith(alias + "/"):
            return real + path[len(alias):]
    return path


def canonicaliser(aliases: Mapping[str, str]) -> Callable[[str], str]:
    """``canonical`` as one compiled regex, for the ~100k paths of a package database."""
    if not aliases:
        return lambda path: path
    rx = re.compile("^(" + "|".join(re.escape(a) for a in sorted(aliases, key=len, reverse=True)) + ")(?=/|$)")
    return lambda path: rx.sub(lambda m: aliases[m.group(1)], path, count=1)


def parse_list(text: str) -> list[str]:
    """A package's .list file: one absolute path per line (``/.`` is the root entry, skipped)."""
    return [line for line in text.splitlines() if line.startswith("/") and line != "/."]


def parse_md5sums(text: str) -> dict[str, str]:
    """``<md5>  <path relative to />`` lines -> absolute path -> md5."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        digest, sep, rel = line.partition("  ")
        if sep and len(digest) == 32 and rel:
            out["/" + rel.lstrip("/")] = digest.lower()
    return out


def parse_status(text: str) -> list[StatusEntry]:
    """Installed packages from the status file (stanzas separated by blank lines, continuation lines indented)."""
    out: list[StatusEntry] = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        conffiles: dict[str, str] = {}
        current = ""
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")):
                if current == "Conffiles":
                    parts = line.split()
                    if len(parts) >= 2 and len(parts[1]) == 32 and "obsolete" not in parts[2:]:
                        conffiles[parts[0]] = parts[1]
                continue
            name, sep, value = line.partition(":")
            if sep:
                current = name
                fields[name] = value.strip()
        if "Package" in fields and fields.get("Status", "").endswith(" installed"):
            out.append(StatusEntry(fields["Package"], fields.get("Architecture", ""), fields.get("Version", ""),
                                   conffiles))
    return out


def parse_diversions(text: str) -> list[tuple[str, str, str]]:
    """(diverted path, where the package's file went, diverting package or ":" for a local diversion)."""
    lines = text.splitlines()
    return [(lines[i], lines[i + 1], lines[i + 2]) for i in range(0, len(lines) - 2, 3)]


def list_name_package(filename: str) -> str | None:
    """``libc6:amd64.list`` -> ``libc6:amd64``; other files in dpkg/info -> None."""
    return filename[:-len(".list")] if filename.endswith(".list") else None


def version_index(status: Iterable[StatusEntry]) -> dict[str, StatusEntry]:
    """Both "name" and "name:arch" -> entry (the first installed one for a bare name)."""
    out: dict[str, StatusEntry] = {}
    for entry in status:
        out.setdefault(entry.package, entry)
        out.setdefault(f"{entry.package}:{entry.arch}", entry)
    return out


def build_ownership(
    lists: Mapping[str, list[str]],  # package -> listed paths
    md5sums: Mapping[str, Mapping[str, str]],  # package -> path -> md5 (as listed, not canonicalised)
    status: list[StatusEntry],
    diversions: list[tuple[str, str, str]],
    aliases: Mapping[str, str],
    wanted: Iterable[str] | None = None,
) -> dict[str, Owned]:
    """Canonical path -> owner. ``wanted`` limits the result to those canonical paths (None: all).

    A diverted file: the package's copy lives at the divert-to path (and is checked against the package's
    digest for the original path); the diverted path belongs to the diverting package, or to no package for
    a local diversion.
    """
    index = version_index(status)
    versions = {pkg: (index[pkg].version, index[pkg].conffiles) if pkg in index else ("", {}) for pkg in lists}
    canon = canonicaliser(aliases)
    owner_of: dict[str, tuple[str, str]] = {}  # canonical path -> (package, path as the package lists it)
    diverted_paths = {d for d, _, _ in diversions}
    listed_by: dict[str, list[str]] = {}  # diverted path -> packages listing it, in ``lists`` order
    for pkg, paths in lists.items():
        for path in diverted_paths.intersection(paths):
            listed_by.setdefault(path, []).append(pkg)
    for pkg in sorted(lists):
        for path in lists[pkg]:
            owner_of.setdefault(canon(path), (pkg, path))
    for diverted, to, by in diversions:
        c_from, c_to = canon(diverted), canon(to)
        listing = listed_by.get(diverted, [])
        original = [pkg for pkg in listing if pkg.split(":")[0] != by]
        if original:
            owner_of[c_to] = (original[0], diverted)
        by_pkg = next((pkg for pkg in listing if pkg.split(":")[0] == by), None)
        if by_pkg:
            owner_of[c_from] = (by_pkg, diverted)
        else:
            owner_of.pop(c_from, None)
    keep = set(wanted) if wanted is not None else None
    out: dict[str, Owned] = {}
    for cpath, (pkg, listed) in owner_of.items():
        if keep is not None and cpath not in keep:
            continue
        version, conffiles = versions.get(pkg, ("", {}))
        if listed in conffiles:
            out[cpath] = Owned(pkg, version, conffiles[listed], True)
        else:
            out[cpath] = Owned(pkg, version, md5sums.get(pkg, {}).get(listed), False)
    return out
