from __future__ import annotations

import subprocess

import pytest

from probes.base import GatherContext
from probes.host.packages import PackagesProbe, filter_status, parse_dpkg_status
from probes.transport import LocalTransport
from tests.probes.golden import FIXTURES, cases, check_case


@pytest.mark.parametrize("raw_path", cases("packages"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("packages", raw_path)


def test_dpkg_states_and_multiarch():
    rows = {o.subject: o.attrs for o in check_case("packages", FIXTURES / "packages" / "debian-remote-access.raw.json")}
    assert "nis" not in rows  # "deinstall ok config-files": removed, only configuration left
    assert rows["libc6:amd64"]["source"] == "glibc" and rows["libc6:i386"]["architecture"] == "i386"
    assert rows["telnetd"]["source"] == "netkit-telnet" and rows["tzdata"]["architecture"] == "all"


def test_rpm_multilib_and_keys():
    rows = {o.subject: o.attrs for o in check_case("packages", FIXTURES / "packages" / "rocky9-rpm.raw.json")}
    assert "glibc.i686" in rows and "glibc.x86_64" in rows and "gpg-pubkey" not in rows
    assert rows["telnet-server"]["version"] == "1:0.17-85.el9" and rows["telnet-server"]["source"] == "telnet"


def test_filter_keeps_what_parse_needs():
    text = (FIXTURES / "packages" / "debian-remote-access.raw.json").read_text()
    import json

    status = json.loads(text)["dpkg_status"]
    assert parse_dpkg_status(filter_status(status)) == parse_dpkg_status(status)


def test_live_matches_dpkg_query():
    probe = PackagesProbe()
    rows = probe.parse(probe.gather(GatherContext(LocalTransport())))
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${binary:Package}\t${Version}\n"],
        capture_output=True, text=True, check=True).stdout
    expected = {}
    for line in out.splitlines():
        status, name, version = line.split("\t")
        if status.strip() == "ii":
            expected[name] = version
    assert {r.package: r.version for r in rows} == expected
