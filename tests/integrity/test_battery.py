"""A battery of bad inputs against the real CLI: never an internal error, always exit 2 with one clear line,
and the state is never corrupted (the record verifies, the baseline still diffs, devices stay devices)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integrity.common import PROBES, make_root, one_error_line, run

Case = Callable[[Path, Path], tuple[list[str], dict[str, str]]]  # (tmp, root) -> argv, extra env


def _file(tmp: Path, name: str, content: bytes | str) -> str:
    path = tmp / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def _fifo(tmp: Path, name: str) -> str:
    path = tmp / name
    if not path.exists():
        os.mkfifo(path)
    return str(path)


def _dir(tmp: Path, name: str) -> str:
    path = tmp / name
    path.mkdir(exist_ok=True)
    return str(path)


ROOTED = ("--root", "{root}", *PROBES)
BAD_PATHS: dict[str, Callable[[Path], str]] = {
    "directory": lambda t: _dir(t, "a-dir"),
    "device": lambda t: "/dev/null",
    "zero-device": lambda t: "/dev/zero",
    "fifo": lambda t: _fifo(t, "a-fifo"),
    "bad-utf8": lambda t: _file(t, "bad.txt", b"\xff\xfe\x00garbage\xc3\x28"),
    "missing": lambda t: str(t / "nope" / "missing.yaml"),
}
PATH_OPTIONS = {
    "--profile": ("scan", *ROOTED, "--profile"),
    "--waivers": ("scan", *ROOTED, "--waivers"),
    "--config": ("scan", *ROOTED, "--config"),
    "--notice": ("notice", "verify"),
    "--root": ("scan", *PROBES, "--root"),
    "--html": ("scan", *ROOTED, "--html"),
    "--output": ("scan", *ROOTED, "--output"),
    "trust-key": ("notice", "trust", "add", "--name", "X"),
}


def _path_case(option: str, kind: str) -> Case:
    def case(tmp: Path, root: Path) -> tuple[list[str], dict[str, str]]:
        path = BAD_PATHS[kind](tmp)
        argv = [a.replace("{root}", str(root)) for a in PATH_OPTIONS[option]]
        if option in ("--html", "--output") and kind in ("bad-utf8",):
            path = _dir(tmp, "out-dir")  # any file is a fine output; a directory is not
        return [*argv, path], {}
    return case


def _home_case(kind: str) -> Case:
    def case(tmp: Path, root: Path) -> tuple[list[str], dict[str, str]]:
        home = {"file": lambda: _file(tmp, "home-file", "x"), "device": lambda: "/dev/null",
                "fifo": lambda: _fifo(tmp, "home-fifo")}[kind]()
        return ["scan", "--root", str(root), *PROBES], {"PRECAUTION_HOME": home}
    return case


def _argv(*argv: str) -> Case:
    return lambda tmp, root: ([a.replace("{root}", str(root)).replace("{tmp}", str(tmp)) for a in argv], {})


def _config_case(text: str) -> Case:
    def case(tmp: Path, root: Path) -> tuple[list[str], dict[str, str]]:
        return ["netscan", "127.0.0.1", "--config", _file(tmp, "c.toml", text)], {}
    return case


def _profile_case(text: str) -> Case:
    return lambda tmp, root: (["scan", "--root", str(root), *PROBES, "--profile", _file(tmp, "p.yaml", text)], {})


def _waiver_case(text: str) -> Case:
    return lambda tmp, root: (["scan", "--root", str(root), *PROBES, "--waivers", _file(tmp, "w.yaml", text)], {})


def _notice_case(body: str) -> Case:
    return lambda tmp, root: (["notice", "verify", _file(tmp, "n.json", body), "--unit", "U"], {})


_NOTICE = ('{{"notice": {{"schema": "precaution.notice/v1", "id": "N", "issuer": "B", "subject_unit": "U", '
           '"targets": {targets}, "kinds": ["host"], "window": {{"start": "2030-01-01T00:00:00Z", '
           '"end": "2030-01-02T00:00:00Z"}}, "lead_time_s": {lead}, "issued_at": "2029-12-01T00:00:00Z"}}, '
           '"signature": null}}')
_BOMB = ("profile: {id: bomb, title: {en: b, zh-CN: b}}\nx0: &a0 [" + ", ".join(["{any: [{name: y}]}"] * 9) + "]\n"
         + "".join(f"x{i}: &a{i} [" + ", ".join([f"{{any: *a{i - 1}}}"] * 9) + "]\n" for i in range(1, 10))
         + "rules: []\n")

CASES: dict[str, Case] = {
    **{f"path {o} {k}": _path_case(o, k) for o in PATH_OPTIONS for k in BAD_PATHS
       if not (o in ("--html", "--output") and k in ("missing",)) and not (o == "--root" and k == "directory")},
    **{f"PRECAUTION_HOME {k}": _home_case(k) for k in ("file", "device", "fifo")},
    "ports -1": _argv("netscan", "127.0.0.1", "--ports", "-1"),
    "ports 0": _argv("netscan", "127.0.0.1", "--ports", "0"),
    "ports 70000": _argv("netscan", "127.0.0.1", "--ports", "70000"),
    "ports text": _argv("netscan", "127.0.0.1", "--ports", "ssh"),
    "ports huge": _argv("netscan", "127.0.0.1", "--ports", "9" * 400),
    "scope world": _argv("netscan", "8.8.8.8", "--scope", "0.0.0.0/0"),
    "scope garbage": _argv("netscan", "127.0.0.1", "--scope", "300.1.1.1/99"),
    "netscan no notice": _argv("netscan", "10.231.250.1"),
    "duration 0": _argv("netscan", "127.0.0.1", "--duration", "0"),
    "duration huge": _argv("netscan", "127.0.0.1", "--duration", "1e308"),
    "duration nan": _argv("netscan", "127.0.0.1", "--duration", "nan"),
    "gateway bad": _argv("netscan", "127.0.0.1", "--gateway", "1.2.3.4=zz"),
    "fail-on bogus": _argv("scan", *ROOTED, "--fail-on", "bogus"),
    "probe unknown": _argv("scan", "--root", "{root}", "--probe", "nonesuch"),
    "observations alone": _argv("scan", *ROOTED, "--observations"),
    "record last -2": _argv("record", "show", "--last", "-2"),
    "record last 0": _argv("record", "show", "--last", "0"),
    "record last text": _argv("record", "show", "--last", "many"),
    "issue end huge": _argv("notice", "issue", "--key", "{tmp}/k", "--id", "N", "--issuer", "B", "--unit", "U",
                            "--target", "127.0.0.1", "--kind", "host", "--start", "+1h", "--end", "+99999999999d",
                            "-o", "{tmp}/n.json"),
    "issue lead huge": _argv("notice", "issue", "--key", "{tmp}/k", "--id", "N", "--issuer", "B", "--unit", "U",
                             "--target", "127.0.0.1", "--kind", "host", "--start", "+1h", "--end", "+2h",
                             "--lead-time", "1e400", "-o", "{tmp}/n.json"),
    "issue onto a device": _argv("notice", "issue", "--key", "{tmp}/k", "--id", "N", "--issuer", "B", "--unit", "U",
                                 "--target", "127.0.0.1", "--kind", "host", "--start", "+1h", "--end", "+2h",
                                 "-o", "/dev/null"),
    "lead-time shorter": _argv("notice", "verify", "{tmp}/n.json", "--lead-time", "1s"),
    "remote parallel 0": _argv("remote", "127.0.0.1", "--notice", "{tmp}/n.json", "--parallel", "0"),
    "remote port 0": _argv("remote", "127.0.0.1", "--notice", "{tmp}/n.json", "--port", "0"),
    "inspector bad": _argv("inspect", "--on-site", "--inspector", "nobody", "--inspector", "x:"),
    "accept unknown id": _argv("baseline", "accept", "--root", "{root}", "nonesuch-id"),
    "config world": _config_case('[netscan]\nown_networks = ["0.0.0.0/0"]\n'),
    "config v6 world": _config_case('[netscan]\nown_networks = ["::/0"]\n'),
    "config garbage cidr": _config_case('[netscan]\nown_networks = ["garbage"]\n'),
    "config bad toml": _config_case("[notice\nunit = 1\n"),
    "config lead huge": _config_case('[notice]\nlead_time = "99999999999d"\n'),
    "config waiver days": _config_case("waiver_max_days = 100000\n"),
    "profile bomb": _profile_case(_BOMB),
    "profile deep not": _profile_case("profile: {id: d, title: {en: b, zh-CN: b}}\nrules:\n- forbid: "
                                      + "{not: " * 990 + "{a: 1}" + "}" * 990 + "\n"),
    "profile not yaml": _profile_case("profile: [unclosed\n"),
    "waiver forever": _waiver_case("waivers:\n- {rule: PC-X-1, justification: forever, approved_by: me, "
                                   "expires: 2099-01-01}\n"),
    "waiver no approver": _waiver_case("waivers:\n- {rule: PC-X-1, justification: because, expires: 2027-01-01}\n"),
    "notice targets string": _notice_case(_NOTICE.format(targets='"127.0.0.1"', lead=0)),
    "notice lead huge": _notice_case(_NOTICE.format(targets='["127.0.0.1"]', lead=10**20)),
    "notice lead negative": _notice_case(_NOTICE.format(targets='["127.0.0.1"]', lead=-1)),
    "notice deep json": _notice_case("[" * 100000 + "]" * 100000),
    "notice not json": _notice_case("{not json"),
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("battery")
    state = base / "state"
    root = make_root(base)
    env = {"PRECAUTION_HOME": str(state)}
    run("baseline", "capture", "--root", str(root), *PROBES, check=0, env=env)
    run("scan", "--root", str(root), *PROBES, "--json", env=env)
    (state / "config.toml").write_text('[notice]\nunit = "U"\nlead_time = "1h"\n')
    run("notice", "keygen", str(base / "k"), check=0, env=env)
    run("notice", "issue", "--key", str(base / "k"), "--id", "N-OK", "--issuer", "B", "--unit", "U",
        "--target", "127.0.0.1", "--kind", "host", "--start", "+3h", "--end", "+4h", "-o", str(base / "n.json"),
        check=0, env=env)
    return base, state, root


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_clear_line(name: str, prepared: tuple[Path, Path, Path]) -> None:
    base, state, root = prepared
    tmp = base / "cases" / name.replace(" ", "_").replace("/", "_")
    tmp.mkdir(parents=True, exist_ok=True)
    for link in ("k", "n.json"):
        if not (tmp / link).exists():
            os.symlink(base / link, tmp / link)
    argv, env = CASES[name](tmp, root)
    proc = run(*argv, env={"PRECAUTION_HOME": str(state), **env}, timeout=60)
    line = one_error_line(proc)
    assert line.startswith(("precaution: error: ", "usage:")) or ": error: " in line, line
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and stat.S_ISCHR(os.stat("/dev/zero").st_mode)


def test_state_not_corrupted_by_the_battery(prepared: tuple[Path, Path, Path]) -> None:
    """Runs after every case above (same module, defined after them)."""
    _base, state, root = prepared
    env = {"PRECAUTION_HOME": str(state)}
    proc = run("record", "verify", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "entries" in proc.stdout
    assert run("baseline", "diff", "--root", str(root), env=env).returncode == 0
