from __future__ import annotations

from pathlib import Path

import pytest

from agent.daemon.config import DEFAULT_METRICS_LISTEN, DaemonConfig, load_config, parse_config
from agent.errors import UserError

GOOD = """\
lang = "zh-CN"

[collector]
url = "https://collector.example:8443/"
ca = "/etc/precaution/collector-ca.pem"

[schedule.self_inspection]
interval = "30m"
splay = 0.2

[self_inspection]
own_networks = ["10.1.2.0/24", "127.0.0.0/8"]
file_integrity_paths = ["/etc", "/opt/app"]

[limits]
daemon_memory = "80MiB"
run_memory = 300000000

[spool]
max_bytes = "32MiB"
"""


def test_defaults_are_safe() -> None:
    config = DaemonConfig()
    assert config.self_inspection.own_networks == ["127.0.0.0/8", "::1/128"]  # loopback only
    assert config.metrics.listen == DEFAULT_METRICS_LISTEN == "127.0.0.1:9847"
    assert config.collector.url is None
    assert config.limits.daemon_memory == 100 * 2**20


def test_good_file() -> None:
    config = parse_config(GOOD, "agent.toml")
    assert config.collector.url == "https://collector.example:8443"
    assert config.schedule.self_inspection.interval == 1800.0
    assert config.schedule.self_inspection.splay == 0.2
    assert config.schedule.file_integrity.interval == 6 * 3600.0
    assert config.self_inspection.own_networks == ["10.1.2.0/24", "127.0.0.0/8"]
    assert config.limits.daemon_memory == 80 * 2**20
    assert config.limits.run_memory == 300_000_000
    assert config.spool.max_bytes == 32 * 2**20
    assert config.lang == "zh-CN"


@pytest.mark.parametrize(("text", "expected"), [
    ('[collector]\nurl = "http://plain.example"\n', "agent.toml:2: collector.url: the collector URL must be https"),
    ('[schedule.self_inspection]\ninterval = "soon"\n', "agent.toml:2: schedule.self_inspection.interval: not a "
                                                          "duration"),
    ('\n\n[metrics]\nlisten = "127.0.0.1"\n', "agent.toml:4: metrics.listen: not HOST:PORT"),
    ('[self_inspection]\nown_networks = ["10.0.0.0/33"]\n', "agent.toml:2: self_inspection.own_networks: "
                                                            "not a network"),
    ('[spool]\nmax_bytes = "lots"\n', "agent.toml:2: spool.max_bytes: not a size"),
    ('[spool]\nmax_byte = 1\n', "agent.toml:2: spool.max_byte: unknown key"),
    ('[limits]\n\ndaemon_cpu_percent = 0\n', "agent.toml:3: limits.daemon_cpu_percent: Input should be greater"),
    ('lang = "fr"\n', "agent.toml:1: lang: Input should be 'en' or 'zh-CN'"),
    ('[self_inspection]\nfile_integrity_paths = ["etc"]\n', "agent.toml:1: self_inspection: "),
    ('[schedules]\n', "agent.toml:1: schedules: unknown key"),
    ('[collector\n', "agent.toml:1: not valid TOML"),
])
def test_errors_name_key_and_line(text: str, expected: str) -> None:
    with pytest.raises(UserError) as err:
        parse_config(text, "agent.toml")
    assert expected in str(err.value), str(err.value)


def test_every_bad_key_is_listed() -> None:
    with pytest.raises(UserError) as err:
        parse_config('[spool]\nmax_bytes = "x"\n[metrics]\nlisten = "x"\n', "a.toml")
    assert "a.toml:2: spool.max_bytes" in str(err.value) and "a.toml:4: metrics.listen" in str(err.value)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_cli_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.daemon.agentproc import ROOT

    bad = tmp_path / "agent.toml"
    bad.write_text('[limits]\nrun_memory = "-5"\n')
    out = subprocess.run([sys.executable, "-m", "agent.cli.main", "agent", "run", "--config", str(bad)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert f"{bad}:2: limits.run_memory" in out.stderr
