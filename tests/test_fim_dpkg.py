"""Golden test of the dpkg database parsers on excerpts of this Debian 12 machine's real files
(tests/probes/fixtures/files/dpkg/, two hand-made diversions added in the real format)."""

from __future__ import annotations

from pathlib import Path

from probes.fim.dpkg import (
    Owned,
    build_ownership,
    canonical,
    canonicaliser,
    list_name_package,
    parse_diversions,
    parse_list,
    parse_md5sums,
    parse_status,
)

DPKG = Path(__file__).parent / "probes" / "fixtures" / "files" / "dpkg"
ALIASES = {"/bin": "/usr/bin", "/lib": "/usr/lib", "/sbin": "/usr/sbin"}


def read(name: str) -> str:
    return (DPKG / name).read_text(encoding="utf-8")


def test_parse_list_and_md5sums():
    assert parse_list(read("coreutils.list")) == ["/bin", "/bin/cat", "/bin/ls", "/usr", "/usr/bin", "/usr/bin/["]
    assert parse_md5sums(read("coreutils.md5sums")) == {
        "/bin/cat": "7a4179e324c784b99e98fedee05260f7",
        "/bin/ls": "7987cf330ff5bb94015dfbb9eae5a99f",
        "/usr/bin/[": "3820701e433d98542a3ffbc8cdcc5b14",
    }
    assert parse_md5sums("garbage line\nabc  short\n") == {}
    assert list_name_package("libc6:amd64.list") == "libc6:amd64"
    assert list_name_package("libc6:amd64.md5sums") is None


def test_parse_status_versions_and_conffiles():
    status = {e.package: e for e in parse_status(read("status"))}
    assert sorted(status) == ["coreutils", "libc6", "login"]
    assert status["coreutils"].version == "9.1-1" and status["coreutils"].arch == "amd64"
    assert status["login"].version == "1:4.13+dfsg1-1+deb12u1"
    assert status["login"].conffiles == {"/etc/login.defs": "f43a7b1eb7e082f1d4e2cb8f8376e71b",
                                         "/etc/pam.d/login": "5afbc06eb5f71fef25170cf3c936a442"}
    removed = "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"
    assert parse_status(removed) == []


def test_parse_diversions():
    assert parse_diversions(read("diversions"))[-2:] == [
        ("/bin/cat", "/bin/cat.real", "cat-wrapper"), ("/etc/login.defs", "/etc/login.defs.orig", ":")]


def test_canonical_usr_merge():
    assert canonical("/bin/ls", ALIASES) == "/usr/bin/ls"
    assert canonical("/binary", ALIASES) == "/binary"
    canon = canonicaliser(ALIASES)
    got = [canon(p) for p in ("/bin", "/lib/x/y", "/binx", "/etc/a")]
    assert got == ["/usr/bin", "/usr/lib/x/y", "/binx", "/etc/a"]


def test_build_ownership():
    lists = {name[:-5]: parse_list(read(name)) for name in ("coreutils.list", "login.list", "libc6:amd64.list")}
    md5s = {pkg: parse_md5sums(read(f"{pkg}.md5sums")) for pkg in lists}
    owned = build_ownership(lists, md5s, parse_status(read("status")), parse_diversions(read("diversions")), ALIASES)
    assert owned["/usr/bin/ls"] == Owned("coreutils", "9.1-1", "7987cf330ff5bb94015dfbb9eae5a99f", False)
    assert owned["/usr/bin/["].md5 == "3820701e433d98542a3ffbc8cdcc5b14"
    assert owned["/usr/bin/login"] == Owned("login", "1:4.13+dfsg1-1+deb12u1", "66e1b2f69d114838f0ef642888d81ab0",
                                            False)
    assert owned["/etc/pam.d/login"] == Owned("login", "1:4.13+dfsg1-1+deb12u1", "5afbc06eb5f71fef25170cf3c936a442",
                                              True)
    assert owned["/usr/lib/x86_64-linux-gnu/libc.so.6"] == Owned("libc6:amd64", "2.36-9+deb12u14",
                                                                 "33f1cb6525f26614bd3a334d63632484", False)
    # diverted by a package that does not list it: coreutils' cat now lives at cat.real, /bin/cat is no one's
    assert "/usr/bin/cat" not in owned
    assert owned["/usr/bin/cat.real"] == Owned("coreutils", "9.1-1", "7a4179e324c784b99e98fedee05260f7", False)
    # a local diversion (":"): the conffile moved to .orig and keeps login's digest there
    assert "/etc/login.defs" not in owned
    assert owned["/etc/login.defs.orig"].conffile and owned["/etc/login.defs.orig"].package == "login"
    assert owned["/usr/bin"].md5 is None  # directories have no digest
