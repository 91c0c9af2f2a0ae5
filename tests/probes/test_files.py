from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agent.errors import UserError
from agent.scan import select_probes
from probes.base import GatherContext, ProbeSettings
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
    with pytest.raises(UserError) as err:
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
