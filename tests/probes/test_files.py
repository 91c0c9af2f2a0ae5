from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from agent.scan import select_probes
from probes.base import GatherContext, ProbeSettings
from probes.errors import ProbeInputError
from probes.host.files import FileRow, FilesOptions, FilesProbe
from probes.transport import LocalTransport
from tests.probes.golden import cases, check_case

DPKG = Path(__file__).parent / "fixtures" / "files" / "dpkg"


@pytest.mark.parametrize("raw_path", cases("files"), ids=lambda p: p.name)
def test_golden(raw_path):
    obs = {o.subject: o.attrs for o in check_case("files", raw_path)}
    # what the fixture root was made of (fixtures/files/make_fixture_root.py)
    assert obs["/usr/bin/ls"]["package_match"] is True and obs["/usr/bin/ls"]["package"] == "coreutils"
    assert obs["/usr/bin/cat"]["package_match"] is False  # one byte appended to a copy of the real cat
    assert obs["/etc/login.defs"]["conffile"] is True and obs["/etc/login.defs"]["package_match"] is False
    assert obs["/usr/bin/backdoor"]["setuid"] is True and obs["/usr/bin/backdoor"]["package"] == ""
    assert obs["/usr/bin/backdoor"]["package_match"] is None
    assert obs["/bin"]["type"] == "symlink" and obs["/bin"]["target"] == "usr/bin"
    assert obs["/home/alice/.ssh/authorized_keys"]["sha256"]
    assert obs["/usr/bin/gone"]["error"] == "vanished during scan"


def fixture_root(root: Path, with_db: bool = True) -> Path:
    """A Debian-like tree: the real /usr/bin/ls, merged-/usr /bin symlink, and this machine's real dpkg records."""
    (root / "usr" / "bin").mkdir(parents=True)
    shutil.copy2("/usr/bin/ls", root / "usr" / "bin" / "ls")
    os.symlink("usr/bin", root / "bin")
    if with_db:
        info = root / "var" / "lib" / "dpkg" / "info"
        info.mkdir(parents=True)
        shutil.copy("/var/lib/dpkg/status", info.parent / "status")
        for name in ("coreutils.list", "coreutils.md5sums"):
            shutil.copy(f"/var/lib/dpkg/info/{name}", info / name)
    return root


def rows(probe: FilesProbe, root: Path) -> dict[str, FileRow]:
    return {r.path: r for r in probe.parse(probe.gather(GatherContext(LocalTransport(root=str(root)))))}


def test_package_match_real_debian_file_then_modified(tmp_path):
    root = fixture_root(tmp_path / "root")
    probe = FilesProbe(FilesOptions(paths=["/usr/bin", "/bin"]), cache_dir=tmp_path / "cache")
    ls = rows(probe, root)["/usr/bin/ls"]
    assert ls.package == "coreutils" and ls.package_version and ls.package_match is True
    assert ls.type == "file" and not ls.setuid and ls.error is None
    again = rows(probe, root)["/usr/bin/ls"]  # from the cache: md5 kept there, verdict unchanged
    assert again.package_match is True
    with open(root / "usr" / "bin" / "ls", "ab") as fh:
        fh.write(b"\x90")
    changed = rows(probe, root)["/usr/bin/ls"]
    assert changed.package_match is False and changed.sha256 != ls.sha256


def test_no_package_database(tmp_path):
    root = fixture_root(tmp_path / "root", with_db=False)
    got = rows(FilesProbe(FilesOptions(paths=["/usr/bin"])), root)["/usr/bin/ls"]
    assert got.package == "" and got.package_match is None and got.sha256


def test_account_ssh_dirs_scanned(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("bob:x:1001:1001::/home/bob:/bin/bash\nsvc:x:5:5::/nonexistent:/bin/false\n")
    (root / "home" / "bob" / ".ssh").mkdir(parents=True)
    (root / "home" / "bob" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA bob\n")
    got = rows(FilesProbe(FilesOptions(paths=[], packages=False)), root)
    assert set(got) == {"/home/bob/.ssh", "/home/bob/.ssh/authorized_keys"}
    assert not rows(FilesProbe(FilesOptions(paths=[], ssh_dirs=False)), root)


def test_configured_validates_every_field():
    with pytest.raises(ProbeInputError) as err:
        FilesProbe.configured(ProbeSettings(None, {"paths": ["etc", "/ok"], "full": "maybe", "workers": -1,
                                                   "max_file_size": 0, "colour": "red"}))
    msg = str(err.value)
    for field in ("paths", "full", "workers", "max_file_size", "colour"):
        assert field in msg, field
    probe = FilesProbe.configured(ProbeSettings(Path("/x"), {"paths": ["/srv"], "full_rehash_days": 0}))
    assert probe.options.paths == ["/srv"] and probe.cache_dir == Path("/x")


def test_scan_selection_passes_config_and_cache(tmp_path):
    (probe,) = select_probes(["files"], settings=ProbeSettings(tmp_path, {"files": {"excludes": ["*.swp"]}}))
    assert isinstance(probe, FilesProbe) and probe.options.excludes == ["*.swp"] and probe.cache_dir == tmp_path


def test_live_host_binary_matches_its_package(tmp_path):
    probe = FilesProbe(FilesOptions(paths=["/usr/bin/ls", "/bin"], ssh_dirs=False), cache_dir=tmp_path)
    ctx = GatherContext(LocalTransport())
    got = {r.path: r for r in probe.parse(probe.gather(ctx))}
    assert got["/usr/bin/ls"].package == "coreutils" and got["/usr/bin/ls"].package_match is True
    assert got["/bin"].type == "symlink" and got["/bin"].target == "usr/bin"


def test_ownership_cache_reused_then_invalidated_by_dpkg_changes(tmp_path, monkeypatch):
    import probes.host.files as files

    root = fixture_root(tmp_path / "root")
    info = root / "var" / "lib" / "dpkg" / "info"
    cache = tmp_path / "cache"
    probe = FilesProbe(FilesOptions(paths=["/usr/bin", "/bin"], ssh_dirs=False), cache_dir=cache)
    first = rows(probe, root)
    assert first["/usr/bin/ls"].package == "coreutils" and first["/usr/bin/ls"].package_match is True
    assert len(list(cache.glob("dpkg-owners-*.json"))) == 1

    parsed: list[str] = []
    real_parse_list = files.parse_list

    def spy(text: str) -> list[str]:  # counts parses; the real parser does the work
        parsed.append(text)
        return real_parse_list(text)

    monkeypatch.setattr(files, "parse_list", spy)
    assert rows(probe, root) == first and parsed == []  # unchanged database: served from the cache

    # "install" a package: a new .list in info/ and a new status (dpkg writes both on every run)
    (root / "usr" / "bin" / "newtool").write_bytes(b"\x7fELF new")
    (info / "newpkg.list").write_text("/usr\n/usr/bin\n/usr/bin/newtool\n")
    (info / "newpkg.md5sums").write_text(hashlib.md5(b"\x7fELF new").hexdigest() + "  usr/bin/newtool\n")
    status = info.parent / "status"
    status.write_text(status.read_text() + "\nPackage: newpkg\nStatus: install ok installed\nArchitecture: all\n"
                      "Version: 2.0\n")
    got = rows(probe, root)
    assert parsed and got["/usr/bin/newtool"].package == "newpkg" and got["/usr/bin/newtool"].package_match is True
    assert got["/usr/bin/newtool"].package_version == "2.0" and got["/usr/bin/ls"] == first["/usr/bin/ls"]

    # removing it again (only the listing changes; same-tick mtimes cannot hide that)
    (info / "newpkg.list").unlink()
    (info / "newpkg.md5sums").unlink()
    assert rows(probe, root)["/usr/bin/newtool"].package == ""

    # a damaged cache is parsed again, never trusted or fatal
    parsed.clear()
    (cached,) = cache.glob("dpkg-owners-*.json")
    cached.write_bytes(b'{"version":1,"key":"x"')
    assert rows(probe, root)["/usr/bin/ls"].package_match is True and parsed


def test_ownership_cache_decode_rejects_anything_unexpected():
    from probes.fim.dpkg import Owned
    from probes.fim.owners import decode, encode

    owners = {"/usr/bin/ls": Owned("coreutils", "9.1-1", "7987cf330ff5bb94015dfbb9eae5a99f", False),
              "/usr/bin": Owned("coreutils", "9.1-1", None, False),
              "/etc/login.defs": Owned("login", "1:4.13", "f43a7b1eb7e082f1d4e2cb8f8376e71b", True)}
    data = encode("k", owners)
    back = decode(data, "k")
    assert back == owners
    assert back["/usr/bin"].package is back["/usr/bin/ls"].package  # one string per package, shared
    assert decode(data, "other key") is None
    for bad in (b"", b"[]", b"\xff", b'{"version":1,"key":"k","packages":[["a","1"]],"owners":["/x",5,"",0]}',
                b'{"version":1,"key":"k","packages":[["a","1"]],"owners":["/x",0,"",2]}',
                b'{"version":1,"key":"k","packages":[["a","1"]],"owners":["/x",true,"",0]}',
                b'{"version":1,"key":"k","packages":[["a","1"]],"owners":["/x",0,""]}',
                b'{"version":2,"key":"k","packages":[],"owners":[]}'):
        assert decode(bad, "k") is None, bad
