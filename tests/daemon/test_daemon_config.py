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


REMOTE = """\
[remote]
user = "audit"
key = "{key}"
port = 2222

[remote.targets."10.231.0.5"]
user = "root"
host_keys = ["SHA256:{fp}"]

[passive]
interface = "eth1"
duration = "2m"
gateway = "10.231.0.1"
"""


def test_remote_and_passive(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("k")
    key.chmod(0o600)
    config = parse_config(REMOTE.format(key=key, fp="A" * 43), "agent.toml")
    one = config.remote.for_target("10.231.0.5")
    assert (one.user, one.key, one.port, one.host_keys) == ("root", key, 2222, ["SHA256:" + "A" * 43])
    other = config.remote.for_target("db01.example")  # the [remote] defaults
    assert (other.user, other.key, other.port, other.host_keys) == ("audit", key, 2222, [])
    assert DaemonConfig().remote.key is None  # no credentials unless configured: remote tasks are refused
    assert (config.passive.interface, config.passive.duration) == ("eth1", 120.0)


@pytest.mark.parametrize(("mode", "toml", "expected"), [
    (0o644, '\n[remote]\nkey = "{key}"\n', "agent.toml:3: remote.key: {key} is readable by others (mode 0644): "
                                             "chmod 600 it"),
    (0o600, '[remote]\nkey = "{key}.missing"\n', "agent.toml:2: remote.key: {key}.missing: no such file"),
    (0o600, '[remote]\nkey = "id_rsa"\n', "agent.toml:2: remote.key: id_rsa is not an absolute path"),
    (0o600, '[remote.targets."10.231.0.5"]\nport = 1\nhost_keys = ["MD5:aa"]\n',
     "agent.toml:3: remote.targets.10.231.0.5.host_keys: not an OpenSSH SHA256 fingerprint"),
    (0o600, '[remote.targets."10.231.0.5"]\npassword = "x"\n', "agent.toml:2: remote.targets.10.231.0.5.password: "
                                                              "unknown key"),
    (0o600, '[passive]\nduration = "2h"\n', "agent.toml:2: passive.duration: Input should be less than or equal "
                                            "to 3600"),
    (0o600, '[passive]\ndns_servers = ["dns"]\n', "agent.toml:1: passive: "),
    (0o600, '[limits]\nrun_timeout = "10m"\n[passive]\nduration = "20m"\n', "agent.toml:3: passive: duration "
                                                                         "(1200 s) must be shorter than limits."),
])
def test_remote_errors_name_key_and_line(tmp_path: Path, mode: int, toml: str, expected: str) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("k")
    key.chmod(mode)
    with pytest.raises(UserError) as err:
        parse_config(toml.format(key=key), "agent.toml")
    assert expected.format(key=key) in str(err.value), str(err.value)


def test_a_symlinked_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("k")
    key.chmod(0o600)
    (tmp_path / "link").symlink_to(key)
    with pytest.raises(UserError, match="not a regular file"):
        parse_config(f'[remote]\nkey = "{tmp_path / "link"}"\n', "agent.toml")
