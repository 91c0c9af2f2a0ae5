"""Installed packages: /var/lib/dpkg/status parsed directly (no dpkg-query process), else `rpm -qa`.

gather() keeps only the fields parse() uses, so raw data and golden files stay small; the stanza format is
unchanged. Subjects follow dpkg's ``${binary:Package}``: the name, qualified with ``:arch`` for
``Multi-Arch: same`` packages and for foreign architectures; for rpm, ``name.arch`` when a name is installed
for more than one architecture.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from probes.base import GatherContext, Probe, Raw
from probes.observation import Row
from probes.transport import CommandUnavailable

log = logging.getLogger(__name__)

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_FIELDS = ("Package:", "Status:", "Version:", "Architecture:", "Source:", "Multi-Arch:")
RPM_QUERY = ["rpm", "-qa", "--qf", "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"]


@dataclass(frozen=True, slots=True)
class Package(Row):
    package: str  # name, or name:arch where the package manager qualifies it
    name: str
    version: str
    architecture: str
    source: str  # source package (dpkg Source, rpm source RPM name), else the name
    manager: str  # dpkg | rpm

    KEY: ClassVar[tuple[str, ...]] = ("package",)


class PackagesProbe(Probe[Package]):
    id = "packages"
    title = "Installed packages"
    # No binaries_any: the dpkg database is read as a file; rpm is only the fallback where there is none.

    def gather(self, ctx: GatherContext) -> Raw:
        t = ctx.transport
        try:
            text = t.read_text(DPKG_STATUS, 64 * 1024 * 1024)
        except FileNotFoundError:
            text = None
        if text is not None:
            return {"dpkg_status": filter_status(text)}
        try:
            result = t.run(RPM_QUERY, timeout=60.0)
        except CommandUnavailable:
            ctx.limited("neither /var/lib/dpkg/status nor rpm: package list unknown")
            return {}
        if result.returncode != 0:
            ctx.limited(f"rpm -qa failed: {result.stderr.strip()[:200]}")
        return {"rpm": result.stdout}

    @staticmethod
    def parse(raw: Raw) -> Sequence[Package]:
        if raw.get("dpkg_status") is not None:
            return parse_dpkg_status(raw["dpkg_status"])
        if raw.get("rpm") is not None:
            return parse_rpm(raw["rpm"])
        return []


def filter_status(text: str) -> str:
    """Keep the fields parse() needs and the blank lines between stanzas."""
    return "\n".join(line for line in text.split("\n") if not line or line.startswith(DPKG_FIELDS)) + "\n"


def parse_dpkg_status(text: str) -> list[Package]:
    stanzas: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            key, sep, value = line.partition(":")
            if sep and not line.startswith((" ", "\t")):
                fields[key] = value.strip()
        if fields.get("Status") == "install ok installed" and "Package" in fields:
            stanzas.append(fields)
    # dpkg's native architecture is that of dpkg itself; "all" and native packages go unqualified.
    native = next((f.get("Architecture", "") for f in stanzas if f["Package"] == "dpkg"), "")
    rows = []
    for f in stanzas:
        name, arch = f["Package"], f.get("Architecture", "")
        qualify = f.get("Multi-Arch") == "same" or (arch not in ("all", native) and bool(native))
        source = f.get("Source", "").split(" ", 1)[0] or name  # "Source: glibc (2.36-9)" names the version too
        rows.append(Package(f"{name}:{arch}" if qualify else name, name, f.get("Version", ""), arch, source,
                            "dpkg"))
    return sorted(rows, key=lambda r: r.package)


def parse_rpm(text: str) -> list[Package]:
    entries = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or parts[0] == "gpg-pubkey":
            continue  # imported signing keys are not software
        entries.append(parts)
    counts: dict[str, int] = {}
    for name, *_ in entries:
        counts[name] = counts.get(name, 0) + 1
    rows = []
    for name, version, arch, srpm in entries:
        source = _srpm_name(srpm) or name
        rows.append(Package(f"{name}.{arch}" if counts[name] > 1 else name, name, version, arch, source, "rpm"))
    return sorted(rows, key=lambda r: r.package)


def _srpm_name(srpm: str) -> str:
    """``openssh-8.7p1-38.el9.src.rpm`` -> ``openssh`` (strip release, version and suffix)."""
    if not srpm or srpm == "(none)":
        return ""
    base = srpm.removesuffix(".src.rpm").removesuffix(".nosrc.rpm")
    parts = base.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else base
