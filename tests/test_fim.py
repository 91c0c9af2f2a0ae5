"""The file-integrity engine on real temp trees: what each kind of tampering changes, the incremental cache,
errors mid-scan, fixture roots and the command (find/sha256sum) fallback."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import probes.fim.engine as fim
from probes.fim.cache import HashCache, cache_path
from probes.fim.engine import FileEntry, FimOptions, parse_pseudo_mounts, scan
from probes.transport import LocalTransport
from tests.conftest import needs_root

REPO = Path(__file__).resolve().parent.parent


def make_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "etc" / "sub").mkdir(parents=True)
    (tree / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    (tree / "bin" / "big").write_bytes(os.urandom(3 * fim.INLINE_MAX + 17))  # hashed in the pool, several reads
    (tree / "etc" / "conf").write_text("a=1\n")
    (tree / "etc" / "sub" / "deep").write_text("deep\n")
    (tree / "etc" / "link").symlink_to("conf")
    os.chmod(tree / "bin" / "tool", 0o755)
    return tree


def by_path(entries: tuple[FileEntry, ...] | list[FileEntry]) -> dict[str, FileEntry]:
    return {e.path: e for e in entries}


def run(tree: Path, cache: Path | None, **kw: object) -> fim.FimResult:
    return scan(LocalTransport(), FimOptions(paths=(str(tree),), **kw), cache)  # type: ignore[arg-type]


def test_first_scan_records_everything(tmp_path):
    tree = make_tree(tmp_path)
    res = run(tree, tmp_path / "cache")
    e = by_path(res.entries)
    assert e[str(tree)].type == "dir"
    tool = e[f"{tree}/bin/tool"]
    assert tool.type == "file" and tool.mode == 0o755 and tool.size == 20
    assert tool.sha256 == hashlib.sha256(b"#!/bin/sh\necho tool\n").hexdigest()
    big = tree / "bin" / "big"
    assert e[str(big)].sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    st = os.lstat(tree / "etc" / "conf")
    conf = e[f"{tree}/etc/conf"]
    assert (conf.inode, conf.mtime_ns, conf.ctime_ns, conf.uid, conf.gid) == (
        st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_uid, st.st_gid)
    link = e[f"{tree}/etc/link"]
    assert link.type == "symlink" and link.target == "conf" and link.sha256 is None
    assert conf.immutable is False  # ext4 answers FS_IOC_GETFLAGS
    assert res.stats.full and res.stats.hashed == 4 and res.stats.cache_hits == 0 and res.stats.errors == 0


def test_incremental_reuses_and_detects_each_change(tmp_path):
    tree = make_tree(tmp_path)
    cache = tmp_path / "cache"
    first = by_path(run(tree, cache).entries)
    again = run(tree, cache)
    assert again.stats.hashed == 0 and again.stats.cache_hits == 4 and not again.stats.full
    assert by_path(again.entries) == first

    tool, conf, deep = tree / "bin" / "tool", tree / "etc" / "conf", tree / "etc" / "sub" / "deep"
    tool.write_bytes(b"#!/bin/sh\necho evil\n")  # content
    os.chmod(conf, 0o666)  # mode only
    old = os.lstat(deep)
    deep.unlink()  # replaced, with the old mtime put back: ctime, inode and digest still tell
    deep.write_text("DEEP\n")
    os.utime(deep, ns=(old.st_atime_ns, old.st_mtime_ns))
    (tree / "etc" / "link").unlink()
    (tree / "etc" / "link").symlink_to("sub/deep")  # retargeted
    (tree / "bin" / "su2").write_bytes(b"\x7fELF")
    os.chmod(tree / "bin" / "su2", 0o4755)  # a setuid file appears

    res = run(tree, cache)
    now = by_path(res.entries)
    assert res.stats.hashed == 4  # tool, deep, su2 and conf (a chmod moves ctime): only those are read again
    assert res.stats.cache_hits == 1  # big
    t = now[str(tool)]
    assert t.sha256 != first[str(tool)].sha256 and t.sha256 == hashlib.sha256(tool.read_bytes()).hexdigest()
    c = now[str(conf)]
    assert c.mode == 0o666 and c.sha256 == first[str(conf)].sha256 and c.ctime_ns != first[str(conf)].ctime_ns
    d = now[str(deep)]
    assert d.mtime_ns == first[str(deep)].mtime_ns
    assert d.sha256 != first[str(deep)].sha256
    assert d.ctime_ns != first[str(deep)].ctime_ns or d.inode != first[str(deep)].inode
    assert now[f"{tree}/etc/link"].target == "sub/deep"
    su = now[f"{tree}/bin/su2"]
    assert su.mode & 0o4000 and su.sha256 == hashlib.sha256(b"\x7fELF").hexdigest()


def test_replaced_in_place_same_size_and_mtime_caught_by_ctime(tmp_path):
    """Same inode, same size, mtime set back: only ctime moved, and that is enough to re-hash."""
    tree = make_tree(tmp_path)
    cache = tmp_path / "cache"
    conf = tree / "etc" / "conf"
    before = by_path(run(tree, cache).entries)[str(conf)]
    old = os.lstat(conf)
    conf.write_text("a=2\n")
    os.utime(conf, ns=(old.st_atime_ns, old.st_mtime_ns))
    after = by_path(run(tree, cache).entries)[str(conf)]
    assert (after.inode, after.size, after.mtime_ns) == (before.inode, before.size, before.mtime_ns)
    assert after.sha256 == hashlib.sha256(b"a=2\n").hexdigest() != before.sha256


@needs_root()
def test_owner_change_and_immutable_flag(tmp_path):
    tree = make_tree(tmp_path)
    cache = tmp_path / "cache"
    conf = tree / "etc" / "conf"
    run(tree, cache)
    os.chown(conf, 65534, 65534)
    subprocess.run(["chattr", "+i", str(conf)], check=True)
    try:
        e = by_path(run(tree, cache).entries)[str(conf)]
        assert (e.uid, e.gid) == (65534, 65534)
        assert e.immutable is True
        # the flag is served from the cache on the next unchanged scan, not lost
        assert by_path(run(tree, cache).entries)[str(conf)].immutable is True
    finally:
        subprocess.run(["chattr", "-i", str(conf)], check=True)
    assert by_path(run(tree, cache).entries)[str(conf)].immutable is False  # chattr changes ctime: re-read


def test_full_rehash_and_periodic_full(tmp_path):
    tree = make_tree(tmp_path)
    cache = tmp_path / "cache"
    run(tree, cache)
    full = run(tree, cache, full=True)
    assert full.stats.full and full.stats.hashed == 4 and full.stats.cache_hits == 0
    t0 = 1_000_000_000.0
    assert scan(LocalTransport(), FimOptions(paths=(str(tree),), full=True), cache, now=t0).stats.full
    opts = FimOptions(paths=(str(tree),), full_rehash_days=1)
    assert not scan(LocalTransport(), opts, cache, now=t0 + 3600).stats.full
    late = scan(LocalTransport(), opts, cache, now=t0 + 2 * 86400)
    assert late.stats.full and late.stats.hashed == 4


def test_corrupt_or_foreign_cache_means_full_rehash(tmp_path):
    tree = make_tree(tmp_path)
    cache = tmp_path / "cache"
    run(tree, cache)
    (file,) = cache.glob("fim-*.json")
    assert file == cache_path(cache, "local", "/")
    for garbage in (b"\x00\xffnot json", b'{"version": 99}', b'{"version":1,"entries":{"x":[1,2]}}', b"[]"):
        file.write_bytes(garbage)
        res = run(tree, cache)
        assert res.stats.full and res.stats.hashed == 4
    # a damaged entry costs that one file a re-hash, never a wrong digest
    doc = json.loads(file.read_bytes())
    doc["entries"][f"{tree}/etc/conf"] = doc["entries"][f"{tree}/etc/conf"][:-20] + "zz::"
    doc["entries"][f"{tree}/bin/tool"] = 42
    file.write_text(json.dumps(doc))
    res = run(tree, cache)
    assert res.stats.hashed == 2 and res.stats.cache_hits == 2 and not res.stats.full
    assert by_path(res.entries)[f"{tree}/etc/conf"].sha256 == hashlib.sha256(b"a=1\n").hexdigest()


def test_unchanged_scan_does_not_rewrite_cache(tmp_path):
    tree = make_tree(tmp_path)
    cache = tmp_path / "cache"
    run(tree, cache)
    (file,) = cache.glob("fim-*.json")
    stamp = file.stat().st_mtime_ns, file.stat().st_ino
    run(tree, cache)
    assert (file.stat().st_mtime_ns, file.stat().st_ino) == stamp


def test_file_vanishing_mid_scan_is_an_entry_with_error(tmp_path, monkeypatch):
    tree = make_tree(tmp_path)
    victim = f"{tree}/etc/conf"
    original = fim._Hasher.hash_one

    def delete_then_hash(self, host, walked, want_md5):  # the file goes between the walk and the read
        if walked.path == victim:
            os.unlink(host)
        return original(self, host, walked, want_md5)

    monkeypatch.setattr(fim._Hasher, "hash_one", delete_then_hash)
    res = run(tree, tmp_path / "cache")
    e = by_path(res.entries)
    assert e[victim].error == "vanished during scan" and e[victim].sha256 is None
    assert e[f"{tree}/bin/tool"].sha256 and res.stats.errors == 1


@needs_root()
def test_unreadable_as_unprivileged_user():
    """Run the engine as nobody: a 0600 root file and a 0700 root directory become error entries."""
    base = Path(tempfile.mkdtemp(prefix="fim-nobody-"))  # pytest's tmp dirs are 0700 root: nobody cannot enter
    try:
        _unreadable_as_nobody(base)
    finally:
        shutil.rmtree(base)


def _unreadable_as_nobody(base: Path) -> None:
    tree = make_tree(base)
    os.chmod(base, 0o755)
    for p in (tree, *tree.rglob("*")):
        if not p.is_symlink():
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(tree / "etc" / "conf", 0o600)
    os.chmod(tree / "etc" / "sub", 0o700)
    # find complains (permission denied) as nobody: its rows are undone and os.scandir names each error
    out = _as_nobody(lambda: [[e.path, e.error, e.sha256] for e in run(tree, None).entries])
    listed = json.loads(out)
    got = {path: [error, sha] for path, error, sha in listed}
    assert len(got) == len(listed)  # nothing listed twice
    assert got[f"{tree}/etc/conf"] == ["permission denied", None]
    assert got[f"{tree}/etc/sub"][0] == "cannot list: permission denied"
    assert got[f"{tree}/bin/tool"][0] is None and got[f"{tree}/bin/tool"][1]


def _as_nobody(fn):  # type: ignore[no-untyped-def]
    """Run fn in a forked child that dropped to nobody; its JSON result comes back through a pipe.
    (The venv's interpreter lives under /root, which nobody cannot execute, so no subprocess.)"""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        status = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(w, json.dumps(fn()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0, "unprivileged scan failed"
    return data


def test_fixture_root_paths_excludes_and_pruning(tmp_path):
    root = tmp_path / "root"
    (root / "etc" / "ssl").mkdir(parents=True)
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc" / "ssl" / "key.pem").write_text("k")
    (root / "etc" / "skip.cache").write_text("c")
    (root / "proc" / "1").mkdir(parents=True)
    (root / "proc" / "1" / "status").write_text("x")
    t = LocalTransport(root=str(root))
    res = scan(t, FimOptions(paths=("/etc", "/etc/ssl", "/proc", "/missing"), excludes=("*.cache",)),
               tmp_path / "cache")
    paths = [e.path for e in res.entries]
    assert paths == ["/etc", "/etc/hosts", "/etc/ssl", "/etc/ssl/key.pem"]
    assert by_path(res.entries)["/etc/hosts"].sha256 == hashlib.sha256(b"127.0.0.1 localhost\n").hexdigest()
    # the host's own /etc cache is a different file: a fixture root never reuses the host's digests
    assert cache_path(tmp_path / "cache", "local", str(root)).exists()


def test_max_file_size_and_md5_on_request(tmp_path):
    tree = make_tree(tmp_path)
    tool = f"{tree}/bin/tool"
    res = run(tree, None, max_file_size=1000, md5_paths=frozenset({tool}))
    e = by_path(res.entries)
    assert e[f"{tree}/bin/big"].sha256 is None and "max_file_size" in (e[f"{tree}/bin/big"].error or "")
    assert e[tool].md5 == hashlib.md5(b"#!/bin/sh\necho tool\n").hexdigest()
    assert e[f"{tree}/etc/conf"].md5 is None


def test_md5_wanted_later_is_not_served_from_a_cache_without_it(tmp_path):
    tree = make_tree(tmp_path)
    cache = tmp_path / "cache"
    tool = f"{tree}/bin/tool"
    run(tree, cache)
    res = run(tree, cache, md5_paths=frozenset({tool}))
    assert res.stats.hashed == 1 and by_path(res.entries)[tool].md5


def test_command_fallback_matches_local_engine(tmp_path):
    """find -printf + sha256sum through transport.run give the same facts as the local engine."""
    tree = make_tree(tmp_path)
    (tree / "etc" / "name with space\nand newline").write_text("odd\n")
    os.chmod(tree / "bin" / "tool", 0o4755)
    t = LocalTransport()
    tool = f"{tree}/bin/tool"
    local = by_path(scan(t, FimOptions(paths=(str(tree),)), None).entries)
    cache = tmp_path / "cache"
    remote_res = scan(t, FimOptions(paths=(str(tree),), md5_paths=frozenset({tool})), cache, via_commands=True)
    remote = by_path(remote_res.entries)
    assert remote.keys() == local.keys()
    for path, e in local.items():
        r = remote[path]
        assert (r.type, r.mode, r.uid, r.gid, r.size, r.inode, r.mtime_ns, r.ctime_ns, r.target, r.sha256) == (
            e.type, e.mode, e.uid, e.gid, e.size, e.inode, e.mtime_ns, e.ctime_ns, e.target, e.sha256), path
    assert remote[tool].mode == 0o4755 and remote[tool].md5 == hashlib.md5((tree / "bin/tool").read_bytes()).hexdigest()
    assert remote_res.stats.hashed == 5
    again = scan(t, FimOptions(paths=(str(tree),)), cache, via_commands=True)
    assert again.stats.hashed == 0 and again.stats.cache_hits == 5


def test_command_fallback_reports_unreadable(tmp_path):
    tree = make_tree(tmp_path)
    res = scan(LocalTransport(), FimOptions(paths=(str(tree), f"{tmp_path}/absent")), None, via_commands=True)
    assert res.stats.errors == 0 and len(res.entries) == 9
    from probes.fim.remote import parse_find_errors, parse_sum_errors
    from probes.find_stamp import stamp_ns

    assert parse_find_errors("find: '/root/x': Permission denied\n") == {"/root/x": "permission denied"}
    assert parse_sum_errors("sha256sum", "sha256sum: /a: b: No such file or directory\n") == {
        "/a: b": "no such file or directory"}
    assert stamp_ns("1715000000.1234567890") == 1715000000123456789
    assert stamp_ns("12.5") == 12_500_000_000


def test_pseudo_mounts_parsed():
    text = ("22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
            "23 1 0:22 / /sys rw - sysfs sysfs rw\n"
            "24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
            "25 23 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
            "26 1 0:24 / /mnt/my\\040disk rw - autofs systemd-1 rw\n")
    assert parse_pseudo_mounts(text) == frozenset({"/proc", "/sys", "/sys/fs/cgroup", "/mnt/my disk"})


def test_cache_round_trip():
    c = HashCache()
    from probes.fim.cache import Cached

    c.put("/a", Cached((1, 2, 3, 4), "a" * 64, None, True))
    c.put("/b", Cached((5, 6, 7, 8), None, None, None))
    back = HashCache.from_bytes(c.to_bytes())
    assert back.lookup("/a", (1, 2, 3, 4), False) == Cached((1, 2, 3, 4), "a" * 64, None, True)
    assert back.lookup("/a", (1, 2, 3, 5), False) is None
    assert back.lookup("/a", (1, 2, 3, 4), True) is None  # md5 wanted, none cached
    assert back.lookup("/b", (5, 6, 7, 8), False) == Cached((5, 6, 7, 8), None, None, None)
    with pytest.raises(ValueError):
        HashCache.from_bytes(b'{"version": 2, "entries": {}}')


def odd_tree(root: Path) -> Path:
    """Names find and os.scandir must agree on: spaces, a newline, invalid UTF-8, a fifo, an empty dir."""
    tree = make_tree(root)
    odd = tree / "odd dir"
    odd.mkdir()
    (odd / "name with space").write_text("s\n")
    (odd / "new\nline").write_text("n\n")
    (odd / "empty").mkdir()
    os.mkfifo(odd / "fifo")
    raw = os.fsencode(odd) + b"/caf\xe9-\xff\xfe"  # not UTF-8: decoded with surrogateescape by both walks
    with open(raw, "wb") as fh:
        fh.write(b"latin-1 name\n")
    os.symlink(b"target-\xff", os.fsencode(odd) + b"/link-\xfe")
    (tree / "skip").mkdir()
    (tree / "skip" / "inside").write_text("x")
    return tree


def test_find_walk_equals_python_walk_on_odd_names(tmp_path):
    from probes.fim import walk as fim_walk

    tree = odd_tree(tmp_path)
    find = fim_walk.find_available()
    assert find, "GNU find is part of the test image"
    rows: list[fim_walk.WalkRow] = []
    assert fim_walk.walk_find(find, str(tree), str(tree), [], rows.extend)  # find walked it, no fallback
    names = {r[0] for r in rows}
    assert f"{tree}/odd dir/new\nline" in names
    assert os.fsdecode(os.fsencode(tree) + b"/odd dir/caf\xe9-\xff\xfe") in names
    link = next(r for r in rows if r[0].endswith("-\udcfe"))
    assert link[1] == "symlink" and link[9] == "target-\udcff"
    for kw in ({}, {"excludes": ("*/skip",)}, {"md5_paths": frozenset({f"{tree}/odd dir/name with space"})}):
        via_find = run(tree, None, find_walk=True, **kw)
        via_python = run(tree, None, find_walk=False, **kw)
        assert via_find.entries == via_python.entries, kw
    fifo = by_path(via_find.entries)[f"{tree}/odd dir/fifo"]
    assert fifo.type == "other" and fifo.sha256 is None and fifo.target is None
    assert f"{tree}/skip" not in by_path(run(tree, None, excludes=("*/skip",)).entries)


def test_find_that_complains_is_undone_and_the_tree_walked_in_python(tmp_path, monkeypatch):
    """find printing its records and then an error: everything it gave is dropped, os.scandir walks again."""
    tree = odd_tree(tmp_path)
    cache = tmp_path / "cache"
    expected = run(tree, None, find_walk=False).entries
    run(tree, cache)  # so that the next scans also have cache hits to undo
    script = tmp_path / "find"
    script.write_text('#!/bin/sh\n/usr/bin/find "$@"\necho "find: simulated trouble" >&2\n')
    script.chmod(0o755)
    monkeypatch.setattr(fim, "find_available", lambda: str(script))
    for cached in (None, cache):
        res = run(tree, cached)
        assert res.entries == expected
        assert res.stats.hashed + res.stats.cache_hits == 8  # no file counted twice
    assert run(tree, cache).stats.cache_hits == 8


def test_find_walk_under_fixture_root_maps_paths_and_prunes(tmp_path):
    root = tmp_path / "root"
    odd_tree(root / "srv")
    (root / "proc" / "1").mkdir(parents=True)
    (root / "proc" / "1" / "status").write_text("x")
    t = LocalTransport(root=str(root))
    via_find = scan(t, FimOptions(paths=("/",), find_walk=True), None)
    via_python = scan(t, FimOptions(paths=("/",), find_walk=False), None)
    assert via_find.entries == via_python.entries
    paths = {e.path for e in via_find.entries}
    assert "/" in paths and "/srv/tree/etc/conf" in paths and not any(p.startswith("/proc") for p in paths)


def test_find_output_parsing():
    from probes.fim.walk import find_argv, parse_find_output
    from probes.find_stamp import stamp_ns

    data = (b"d 5 4096 755 0 0 1700000000.1234567890 1700000001.0000000000\0/r/x\0\0"
            b"f 6 3 4755 1 2 -1.5000000000 12.5\0/r/x/a\nb\0\0"
            b"l 7 9 777 0 0 1.0000000000 1.0000000000\0/r/x/l\xff\0t\xfe\0"
            b"p 8 0 644 0 0 1.0000000000 1.0000000000\0/r/x/fifo\0\0")
    rows = parse_find_output(data, "/", "/r")
    assert rows == [
        ("/x", "dir", 0o755, 0, 0, 4096, 5, 1700000000123456789, 1700000001000000000, None),
        ("/x/a\nb", "file", 0o4755, 1, 2, 3, 6, -1_500_000_000, 12_500_000_000, None),
        ("/x/l\udcff", "symlink", 0o777, 0, 0, 9, 7, 1_000_000_000, 1_000_000_000, "t\udcfe"),
        ("/x/fifo", "other", 0o644, 0, 0, 0, 8, 1_000_000_000, 1_000_000_000, None),
    ]
    assert stamp_ns(b"12.5") == 12_500_000_000 == stamp_ns(b"12.5000000000")
    with pytest.raises(ValueError):
        parse_find_output(data[:-3], "/", "/r")  # a truncated last record
    assert find_argv("/", ["/proc", "/a*b"]) == [
        "find", "/", "(", "-type", "d", "(", "-path", "/a\\*b", "-o", "-path", "/proc", ")", ")", "-prune", "-o",
        "-printf", "%y %i %s %m %U %G %T@ %C@\\0%p\\0%l\\0"]


def many_files(root: Path) -> Path:
    tree = make_tree(root)
    for d in range(8):
        sub = tree / "many" / f"d{d}"
        sub.mkdir(parents=True)
        for i in range(40):
            (sub / f"f{i}").write_bytes(os.urandom(i * 97 % 5000))
    (tree / "many" / "huge").write_bytes(os.urandom(5 * fim.READ_SIZE + 3))
    return tree


def test_process_pool_gives_the_same_entries_as_threads(tmp_path, monkeypatch):
    from probes.fim import pool as fim_pool

    tree = many_files(tmp_path)
    md5 = frozenset({f"{tree}/many/huge", f"{tree}/many/d3/f7", f"{tree}/bin/tool"})
    batches_done = []
    real = fim_pool.hash_batches

    def counting(*a, **kw):  # a spy: the real pool runs, we only count what it returned
        for item in real(*a, **kw):
            batches_done.append(item[0])
            yield item

    monkeypatch.setattr(fim, "hash_batches", counting)
    pooled = run(tree, tmp_path / "c1", processes=True, workers=2, md5_paths=md5)
    threaded = run(tree, tmp_path / "c2", processes=False, workers=2, md5_paths=md5)
    assert len(batches_done) > 2 and sorted(batches_done) == list(range(len(batches_done)))
    assert pooled.entries == threaded.entries
    assert pooled.stats.hashed == threaded.stats.hashed == 4 + 320 + 1
    e = by_path(pooled.entries)
    huge = tree / "many" / "huge"
    assert e[str(huge)].sha256 == hashlib.sha256(huge.read_bytes()).hexdigest()
    assert e[str(huge)].md5 == hashlib.md5(huge.read_bytes()).hexdigest() and e[f"{tree}/many/d0/f1"].md5 is None
    # the pool's digests are cached like any others
    assert run(tree, tmp_path / "c1", processes=True, workers=2, md5_paths=md5).stats.cache_hits == 325


def test_process_pool_that_cannot_start_falls_back(tmp_path, monkeypatch):
    from probes.fim import pool as fim_pool

    tree = many_files(tmp_path)
    expected = run(tree, None, processes=False).entries
    monkeypatch.setattr(fim_pool.sys, "executable", str(tmp_path / "no-such-python"))
    assert run(tree, None, processes=True, workers=2).entries == expected


def test_process_pool_worker_dying_midway_falls_back(tmp_path, monkeypatch, caplog):
    """Real workers that exit after their first batch: the batches never answered are hashed in-process."""
    from probes.fim import pool as fim_pool

    tree = many_files(tmp_path)
    expected = run(tree, None, processes=False).entries
    code = ("import sys, pickle; sys.path.insert(0, {p!r}); from probes.fim.hashing import hash_batch; "
            "jobs = pickle.load(sys.stdin.buffer); pickle.dump(hash_batch(jobs, False), sys.stdout.buffer); "
            "sys.stdout.flush()")
    monkeypatch.setattr(fim_pool, "_start", lambda root_user: subprocess.Popen(
        [fim_pool.sys.executable, "-I", "-S", "-c", code.format(p=str(REPO))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    monkeypatch.setattr(fim, "BATCH_FILES", 16)
    with caplog.at_level("WARNING", logger="probes.fim.engine"):
        assert run(tree, None, processes=True, workers=2).entries == expected
    assert "hashing the rest in this process" in caplog.text
