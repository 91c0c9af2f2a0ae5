"""The record cannot be quietly wiped, restarted or bent, and the state directory holds against links, loose
modes, full disks and torn writes. Every case through the real console script."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.integrity.common import PROBES, make_root, one_error_line, record_entries, run


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path)


def scan(root: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = run("scan", "--root", str(root), *PROBES, "--json", "--no-baseline", **kw)  # type: ignore[arg-type]
    return proc


def verify() -> subprocess.CompletedProcess[str]:
    return run("record", "verify")


def acknowledge() -> subprocess.CompletedProcess[str]:
    return run("record", "acknowledge", "--by", "Zhang Wei", "--reason", "checked the host, restored from backup")


def test_deleted_record_and_head_with_key_kept_is_not_intact(root: Path, _isolated_state: Path) -> None:
    scan(root)
    (_isolated_state / "record.jsonl").unlink()
    (_isolated_state / "record.head").unlink()
    proc = verify()
    assert proc.returncode == 2 and "agent key exists" in proc.stderr


def test_key_made_by_a_baseline_has_a_record_entry(root: Path, _isolated_state: Path) -> None:
    """A first baseline creates the key: the record says so, so "key but no record" always means deletion."""
    run("baseline", "capture", "--root", str(root), *PROBES, check=0)
    kinds = [e["kind"] for e in record_entries(_isolated_state)]
    assert kinds[:2] == ["agent-key", "baseline-capture"]
    run("record", "verify", check=0)


@pytest.mark.parametrize("damage", ["record-deleted", "last-entry-removed", "head-garbage", "head-deleted"])
def test_record_breaks_are_tampering_until_acknowledged(root: Path, _isolated_state: Path, damage: str) -> None:
    for _ in range(3):
        scan(root)
    record_file, head = _isolated_state / "record.jsonl", _isolated_state / "record.head"
    if damage == "record-deleted":
        record_file.unlink()
    elif damage == "last-entry-removed":
        record_file.write_bytes(b"".join(record_file.read_bytes().splitlines(keepends=True)[:-1]))
    elif damage == "head-garbage":
        head.write_bytes(b"\x00garbage{")
    else:
        head.unlink()
    proc = scan(root)  # the next run carries on, and writes down what it found
    assert proc.returncode in (0, 1), proc.stderr
    assert "precaution: warning: inspection record:" in proc.stderr
    kinds = [e["kind"] for e in record_entries(_isolated_state)]
    assert "record-break" in kinds and kinds[-1] == "scan"
    proc = verify()
    assert proc.returncode == 2 and "break found and recorded" in proc.stderr, proc.stderr
    scan(root)
    assert verify().returncode == 2  # still, after more runs: never silently accepted
    ack = acknowledge()
    assert ack.returncode == 0 and "acknowledged" in ack.stdout, ack.stderr
    ok = verify()
    assert ok.returncode == 0 and "acknowledged by an operator" in ok.stdout, ok.stderr
    last = record_entries(_isolated_state)[-1]
    assert last["kind"] == "record-acknowledgement" and last["summary"]["by"] == "Zhang Wei"
    scan(root)
    run("record", "verify", check=0)


def test_deleted_record_continues_the_chain_from_the_head(root: Path, _isolated_state: Path) -> None:
    for _ in range(4):
        scan(root)
    head = json.loads((_isolated_state / "record.head").read_text())
    (_isolated_state / "record.jsonl").unlink()
    scan(root)
    first = record_entries(_isolated_state)[0]
    assert first["kind"] == "record-break" and first["seq"] == head["seq"] + 1 and first["prev"] == head["link"]


def test_torn_tail_beyond_the_head_is_set_aside_and_recorded(root: Path, _isolated_state: Path) -> None:
    scan(root)
    record_file = _isolated_state / "record.jsonl"
    with record_file.open("ab") as fh:
        fh.write(b'{"entry":{"seq":2,"time":"2026')  # a write cut short: never acknowledged by the head
    assert verify().returncode == 0  # a crash artefact, not tampering
    proc = scan(root)
    assert proc.returncode in (0, 1), proc.stderr
    entries = record_entries(_isolated_state)
    assert [e["kind"] for e in entries] == ["scan", "record-recovery", "scan"]
    aside = _isolated_state / entries[1]["summary"]["set_aside"]
    assert aside.read_bytes() == b'{"entry":{"seq":2,"time":"2026'
    run("record", "verify", check=0)


def test_deleted_agent_key_is_an_event_not_a_silent_reset(root: Path, _isolated_state: Path) -> None:
    scan(root)
    old = record_entries(_isolated_state)[0]["key"]
    (_isolated_state / "agent.key").unlink()
    proc = scan(root)
    assert proc.returncode in (0, 1)
    assert "agent.key was missing; a new key was created" in proc.stderr
    event = next(e for e in record_entries(_isolated_state) if e["kind"] == "agent-key")
    assert event["summary"]["event"] == "replaced" and event["summary"]["previous"] == old
    proc = verify()
    assert proc.returncode == 2 and "agent key replaced" in proc.stderr
    assert acknowledge().returncode == 0
    run("record", "verify", check=0)


def test_acknowledge_with_nothing_to_acknowledge(root: Path, _isolated_state: Path) -> None:
    scan(root)
    proc = acknowledge()
    assert proc.returncode == 0 and "nothing to acknowledge" in proc.stdout
    assert [e["kind"] for e in record_entries(_isolated_state)] == ["scan"]


# --- the state directory -------------------------------------------------------------------------------------

def _modes(state: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(state):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(state))] = stat.S_IMODE(p.lstat().st_mode)
    out["."] = stat.S_IMODE(state.stat().st_mode)
    return out


def test_every_directory_0700_and_file_0600_under_umask_000(root: Path, _isolated_state: Path) -> None:
    env_cmd = ["sh", "-c", 'umask 000 && exec "$0" "$@"']
    from tests.integrity.common import PRECAUTION

    for args in (["baseline", "capture", "--root", str(root), *PROBES], ["scan", "--root", str(root), *PROBES]):
        proc = subprocess.run([*env_cmd, PRECAUTION, *args], capture_output=True, text=True, timeout=120,
                              check=False)
        assert proc.returncode in (0, 1), proc.stderr
    modes = _modes(_isolated_state)
    assert any(k.startswith("baselines/") and k.endswith("history") for k in modes)
    for name, mode in modes.items():
        path = _isolated_state / name if name != "." else _isolated_state
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, (name, oct(mode))


def test_group_writable_state_dir_is_tightened(root: Path, _isolated_state: Path) -> None:
    _isolated_state.mkdir()
    os.chmod(_isolated_state, 0o777)
    assert scan(root).returncode in (0, 1)
    assert stat.S_IMODE(_isolated_state.stat().st_mode) == 0o700


def test_state_dir_of_another_user_open_to_others_is_refused(root: Path, _isolated_state: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the directory to another user")
    _isolated_state.mkdir()
    os.chown(_isolated_state, 65534, 65534)
    os.chmod(_isolated_state, 0o777)
    line = one_error_line(scan(root))
    assert "owned by uid 65534" in line and "refusing" in line


LINK_CASES = ["record.jsonl", "record.lock", "cache", "baselines", "history", "notices", "record.head"]


@pytest.mark.parametrize("name", LINK_CASES)
def test_links_planted_in_the_state_dir_are_never_followed(root: Path, _isolated_state: Path, tmp_path: Path,
                                                            name: str) -> None:
    """Another user plants a link where the root agent writes: nothing is written through it."""
    scan(root)
    run("baseline", "capture", "--root", str(root), *PROBES, check=0)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("do not touch\n")
    before = sorted(p.name for p in victim.iterdir())
    if name == "history":
        (history,) = (_isolated_state / "baselines" / "host").glob("root-*/history")
        target = history
    else:
        target = _isolated_state / name
    if target.is_dir():
        os.rename(target, tmp_path / f"moved-{name}")
    elif target.exists():
        target.unlink()
    os.symlink(victim if name in ("cache", "baselines", "history", "notices") else victim / "precious", target)
    if name == "notices":
        from tests.remote.conftest import UNIT

        (_isolated_state / "config.toml").write_text(f'[notice]\nunit = "{UNIT}"\nlead_time = "0s"\n')
        key = tmp_path / "issuer.key"
        run("notice", "keygen", str(key), check=0)
        run("notice", "trust", "add", f"{key}.pub", "--name", "Bureau", check=0)
        run("notice", "issue", "--key", str(key), "--id", "N-1", "--issuer", "Bureau", "--unit", UNIT,
            "--target", "127.0.0.1", "--kind", "host", "--start", "+1h", "--end", "+2h", "-o",
            str(tmp_path / "n.json"), check=0)
        proc = run("notice", "ack", str(tmp_path / "n.json"))
    elif name == "history":
        (root / "proc/sys/net/ipv4/ip_forward").write_text("1\n")
        proc = run("baseline", "accept", "--root", str(root), "--all")
    elif name in ("baselines",):
        proc = run("baseline", "capture", "--root", str(root), *PROBES, "--force")
    else:
        proc = run("scan", "--root", str(root), *PROBES, "--json")
    if name != "record.head":  # the head is replaced by rename (the link itself goes, nothing is followed)
        line = one_error_line(proc)
        assert "symbolic link" in line or "not a directory" in line, line
    assert (victim / "precious").read_text() == "do not touch\n"
    assert sorted(p.name for p in victim.iterdir()) == before


def test_full_disk_is_one_clear_line_and_recovers(root: Path, tmp_path: Path) -> None:
    """A small tmpfs as the state dir, filled up: "no space left in STATE_DIR", then a clean recovery."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    state = tmp_path / "tiny"
    state.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(state)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {mounted.stderr.strip()}")
    try:
        env = {"PRECAUTION_HOME": str(state)}
        assert run("scan", "--root", str(root), *PROBES, "--json", env=env).returncode in (0, 1)
        filler = state / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"x" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        proc = run("scan", "--root", str(root), *PROBES, "--json", env=env)
        line = one_error_line(proc)
        assert line == f"precaution: error: no space left in {state}", line
        proc = run("record", "verify", env=env)
        assert proc.returncode == 0, proc.stderr  # nothing torn that the head acknowledged
        filler.unlink()
        assert run("scan", "--root", str(root), *PROBES, "--json", env=env).returncode in (0, 1)
        proc = run("record", "verify", env=env)
        assert proc.returncode == 0, proc.stderr
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def test_notice_trust_remove(tmp_path: Path, _isolated_state: Path) -> None:
    key = tmp_path / "issuer.key"
    run("notice", "keygen", str(key), check=0)
    run("notice", "trust", "add", f"{key}.pub", "--name", "Bureau", check=0)
    run("notice", "trust", "add", f"{key}.pub", "--name", "Bureau", check=0)
    fingerprint = run("notice", "trust", "list", check=0).stdout.split("\t")[1]
    assert "no trusted issuer named 'Nobody'" in one_error_line(run("notice", "trust", "remove", "Nobody"))
    out = run("notice", "trust", "remove", fingerprint, check=0).stdout
    assert out.startswith("no longer trusting Bureau: SHA256:")
    assert run("notice", "trust", "list", check=0).stdout == ""
    run("notice", "issue", "--key", str(key), "--id", "N-1", "--issuer", "Bureau", "--unit", "U",
        "--target", "127.0.0.1", "--kind", "host", "--start", "+1h", "--end", "+2h", "-o", str(tmp_path / "n.json"),
        check=0)
    proc = run("notice", "verify", str(tmp_path / "n.json"), "--unit", "U")
    assert proc.returncode == 2 and "does not trust" in proc.stderr


def _notice(tmp_path: Path, unit: str = "Unit A", start: str = "+2h", end: str = "+3h") -> Path:
    key = tmp_path / "issuer.key"
    if not key.exists():
        run("notice", "keygen", str(key), check=0)
        run("notice", "trust", "add", f"{key}.pub", "--name", "Bureau", check=0)
    out = tmp_path / "n.json"
    run("notice", "issue", "--key", str(key), "--id", "N-7", "--issuer", "Bureau", "--unit", unit,
        "--target", "127.0.0.1", "--kind", "host", "--start", start, "--end", end, "--lead-time", "1h",
        "-o", str(out), check=0)
    return out


def test_acknowledgement_time_comes_from_the_signed_record(tmp_path: Path, _isolated_state: Path) -> None:
    """Moving acknowledged_at one hour earlier in notices/*.ack.json made a late notice pass."""
    _isolated_state.mkdir(parents=True, exist_ok=True)
    (_isolated_state / "config.toml").write_text('[notice]\nunit = "Unit A"\nlead_time = "1h"\n')
    notice = _notice(tmp_path, start="+30m")  # acknowledged now: 30 min before the window, lead time 1 h: late
    assert run("notice", "ack", str(notice)).returncode == 2  # acknowledged, but late
    (ack_file,) = (_isolated_state / "notices").glob("*.ack.json")
    doc = json.loads(ack_file.read_text())
    import datetime as dt

    earlier = dt.datetime.fromisoformat(doc["acknowledged_at"].replace("Z", "+00:00")) - dt.timedelta(hours=1)
    doc["acknowledged_at"] = earlier.isoformat()
    ack_file.write_text(json.dumps(doc))
    proc = run("notice", "verify", str(notice))
    assert proc.returncode == 2
    assert "differs from the signed record" in proc.stderr and "late" not in proc.stdout.lower().split("signed")[0]
    ack_file.unlink()  # the record still knows: the notice stays acknowledged (late), not "not acknowledged"
    proc = run("notice", "verify", str(notice))
    assert proc.returncode == 2 and "acknowledged" in proc.stderr and "less than the lead time" in proc.stderr


def test_ack_file_the_record_never_saw_is_refused(tmp_path: Path, _isolated_state: Path) -> None:
    _isolated_state.mkdir(parents=True, exist_ok=True)
    (_isolated_state / "config.toml").write_text('[notice]\nunit = "Unit A"\nlead_time = "1h"\n')
    notice = _notice(tmp_path)
    run("notice", "ack", str(notice), check=0)
    (ack_file,) = (_isolated_state / "notices").glob("*.ack.json")
    forged = ack_file.read_text()
    # a fresh state (no record of that acknowledgement) with the file copied in
    other = tmp_path / "other-state"
    (other / "notices").mkdir(parents=True)
    (other / "config.toml").write_text('[notice]\nunit = "Unit A"\nlead_time = "1h"\n')
    (other / "notices" / ack_file.name).write_text(forged)
    (other / "trusted-issuers.json").write_text((_isolated_state / "trusted-issuers.json").read_text())
    proc = run("notice", "verify", str(notice), env={"PRECAUTION_HOME": str(other)})
    assert proc.returncode == 2 and "is not in the signed inspection record" in proc.stderr


def test_overrides_may_only_be_stricter(tmp_path: Path, _isolated_state: Path) -> None:
    _isolated_state.mkdir(parents=True, exist_ok=True)
    (_isolated_state / "config.toml").write_text('[notice]\nunit = "Unit A"\nlead_time = "24h"\n'
                                                 '[netscan]\nown_networks = ["10.20.0.0/16"]\n')
    notice = _notice(tmp_path, start="+30h", end="+31h")
    line = one_error_line(run("notice", "verify", str(notice), "--lead-time", "0"))
    assert "shorter than the configured minimum lead time of 1 d" in line
    line = one_error_line(run("notice", "verify", str(notice), "--unit", "Unit B"))
    assert "differs from the configured unit 'Unit A'" in line
    lax = tmp_path / "lax.toml"
    lax.write_text('[notice]\nunit = "Unit A"\nlead_time = "0s"\n[netscan]\nown_networks = ["10.0.0.0/8"]\n')
    line = one_error_line(run("netscan", "10.20.0.1", "--config", str(lax)))
    assert "is laxer than" in line and "lead_time 0s" in line and "adds 10.0.0.0/8" in line
    strict = tmp_path / "strict.toml"
    strict.write_text('[notice]\nunit = "Unit A"\nlead_time = "48h"\n')
    run("scan", "--probe", "sysctl", "--no-baseline", "--json", "--config", str(strict))
    last = record_entries(_isolated_state)[-1]
    assert last["kind"] == "scan" and str(strict) in last["applied"]["overrides"]["config"]
    run("notice", "verify", str(notice), "--lead-time", "48h")  # longer is fine (recorded as an override)
    entry = record_entries(_isolated_state)[-1]
    assert entry["applied"]["overrides"]["lead_time"] == "48h" and entry["applied"]["lead_time_s"] == 48 * 3600


def test_netscan_without_notice_says_it_needs_one_and_loopback_scope_is_accepted(_isolated_state: Path) -> None:
    line = one_error_line(run("netscan", "10.231.250.1", "--ports", "22"))
    assert "needs an advance notice (--notice FILE" in line and "outside the notified scope" not in line
    proc = run("netscan", "127.0.0.1", "--scope", "127.0.0.0/8", "--ports", "1", "--json")
    assert proc.returncode in (0, 1), proc.stderr
