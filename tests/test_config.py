"""config.toml validated at load: every problem at once, each as file:line: reason, exit 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ConfigError, key_lines, load_config, parse_config
from agent.state import StateDir

ROOT = Path(__file__).resolve().parents[1]

BAD = """\
fail_on = "high"
profile = 3

[notice]
unit = "Unit A"
lead_time = "banana"

[netscan]
own_networks = [
  "10.0.0.0/8",
  "10.300.0.0/16",
]

[probes.flies]
paths = ["/etc"]

[probes.files]
paths = ["/etc"]
colour = "red"
workers = "3"

[extra]
x = 1
"""


def test_every_problem_with_its_line(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text(BAD)
    with pytest.raises(ConfigError) as err:
        load_config(file, StateDir(tmp_path))
    assert err.value.problems == [
        f"{file}:2: profile: Input should be a valid string",
        f"{file}:6: notice.lead_time: not a duration: 'banana' (use e.g. 90s, 30m, 24h, 2d)",
        f"{file}:9: netscan.own_networks: not a network (CIDR): '10.300.0.0/16'",
        f"{file}:14: probes.flies: unknown table",
        f"{file}:19: probes.files.colour: unknown key",
        f"{file}:20: probes.files.workers: Input should be a valid integer",
        f"{file}:22: extra: unknown table",
    ]


def test_cli_prints_them_all_and_exits_2(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text(BAD)
    proc = subprocess.run([sys.executable, "-m", "agent.cli.main", "scan", "--config", str(file), "--probe", "cron"],
                          capture_output=True, text=True, cwd=ROOT, env={"PRECAUTION_HOME": str(tmp_path / "s"),
                                                                          "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    where = re.compile(rf"(precaution: error: )?{re.escape(str(file))}:\d+: ")
    lines = [line for line in proc.stderr.splitlines() if where.match(line)]
    assert len(lines) == 7, proc.stderr
    assert "Traceback" not in proc.stderr


def test_valid_config_and_probe_options(tmp_path: Path) -> None:
    config = parse_config('fail_on = "medium"\n[notice]\nlead_time = "2d"\n[probes.files]\npaths = ["/etc"]\n'
                          'full = true\n[netscan]\nown_networks = ["10.231.0.0/16"]\n', tmp_path / "c.toml")
    assert config.fail_on == "medium" and config.notice.lead_time_seconds() == 172800
    assert config.probes == {"files": {"paths": ["/etc"], "full": True}}
    assert config.netscan.own_networks == ["10.231.0.0/16"]


def test_toml_syntax_error_has_a_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config('fail_on = "high"\n[notice\n', tmp_path / "c.toml")
    assert err.value.problems[0].startswith(f"{tmp_path / 'c.toml'}:2: not valid TOML")


def test_missing_default_config_is_defaults_but_a_named_one_is_an_error(tmp_path: Path) -> None:
    from agent.errors import UserError

    assert load_config(None, StateDir(tmp_path)).fail_on == "high"
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.toml", StateDir(tmp_path))


def test_key_lines() -> None:
    text = 'a = 1\n[t]\nb = """\nc = 2\n"""\nd = [\n  "x = y",\n]\n[t.u]\n"e.f" = 1\ng.h = 2\n'
    lines = key_lines(text)
    assert lines[("a",)] == 1 and lines[("t",)] == 2 and lines[("t", "b")] == 3
    assert ("t", "c") not in lines and ("t", "x") not in lines  # inside a string or an array: not keys
    assert lines[("t", "d")] == 6 and lines[("t", "u")] == 9
    assert lines[("t", "u", "e.f")] == 10  # a quoted key may hold a dot
    assert lines[("t", "u", "g", "h")] == 11 and lines[("t", "u", "g")] == 11


def test_state_dir_is_read_only_at_the_entry_point() -> None:
    """The environment decides where state lives in one place (agent/state.py, called by the CLI entry point)."""
    offenders = []
    for path in (ROOT / "agent").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("agent/state.py", "agent/cli/main.py"):
            continue
        if "PRECAUTION_HOME" in text or re.search(r"\bstate_dir\(", text) or "from_environment(" in text:
            offenders.append(rel)
    assert offenders == []
