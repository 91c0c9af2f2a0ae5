from __future__ import annotations

from pathlib import Path

import pytest

from probes.base import GatherContext
from probes.host.sysctl import KEYS, SysctlProbe, key_path, parse_value
from probes.transport import LocalTransport
from tests.probes.golden import cases, check_case


@pytest.mark.parametrize("raw_path", cases("sysctl"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("sysctl", raw_path)


def test_values_int_or_text():
    assert parse_value("1\n") == 1
    assert parse_value("-1\n") == -1
    assert parse_value("4\t4\t1\t7\n") == "4\t4\t1\t7"


def test_live_matches_proc_sys():
    probe = SysctlProbe()
    rows = probe.parse(probe.gather(GatherContext(LocalTransport())))
    got = {r.key: r.value for r in rows}
    assert "kernel.randomize_va_space" in got
    for key in KEYS:
        path = Path(key_path(key))
        if path.exists():
            assert got[key] == parse_value(path.read_text())
        else:
            assert key not in got


def test_fixture_root_missing_keys_give_no_row(tmp_path):
    sysdir = tmp_path / "proc" / "sys"
    (sysdir / "kernel").mkdir(parents=True)
    (sysdir / "kernel" / "kptr_restrict").write_text("2\n")
    (sysdir / "net" / "ipv4").mkdir(parents=True)
    (sysdir / "net" / "ipv4" / "ip_forward").write_text("1\n")
    probe = SysctlProbe()
    ctx = GatherContext(LocalTransport(root=str(tmp_path)))
    rows = probe.parse(probe.gather(ctx))
    assert [(r.key, r.value) for r in rows] == [("net.ipv4.ip_forward", 1), ("kernel.kptr_restrict", 2)]
    assert ctx.limitations == []
