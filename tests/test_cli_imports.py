"""What the CLI's light paths import (issue 8 "Keep": `precaution --version` < 0.1 s; bench/bench_startup.py
times it). No timing here: each command runs in a fresh interpreter and reports sys.modules, so a heavy import
that creeps into these paths fails the test whatever the machine's load."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Libraries and layers that cost tens of milliseconds or megabytes each (scapy 1.5 s / 80 MB, pydantic ~20 MB,
# cryptography ~12 MB): none of them is needed to print a version or a usage text.
HEAVY = ("pydantic", "pydantic_core", "yaml", "rich", "jinja2", "cryptography", "bcrypt", "nacl", "scapy", "nmap",
         "paramiko", "psutil", "prometheus_client", "orjson", "sqlalchemy", "httpx", "fastapi",
         "probes.host", "probes.network", "probes.remote", "probes.fim", "agent.services", "agent.scan",
         "agent.runner", "agent.config", "agent.documents", "agent.wire.contents", "agent.wire.record")

_PROBE = """
import json, sys
before = set(sys.modules)
from agent.cli.main import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    code = exc.code
sys.stderr.write("\\n" + json.dumps({"code": code, "modules": sorted(set(sys.modules) - before)}))
"""


def imported_by(argv: list[str]) -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv)], capture_output=True, text=True,
                          check=False, timeout=60)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], report["modules"]


def heavy_among(modules: list[str]) -> list[str]:
    return [m for m in modules if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY))]


def test_version_imports_only_the_entry_point() -> None:
    code, modules = imported_by(["--version"])
    assert code == 0
    ours = sorted(m for m in modules if m.split(".")[0] in ("agent", "probes", "baselines", "collector"))
    assert ours == ["agent", "agent.cli", "agent.cli.main", "agent.errors"]
    assert heavy_among(modules) == []
    assert "dataclasses" not in modules and "typing" not in modules  # even these are not needed


# (baseline, remote, inspect and notice --help still load pydantic through their services' imports)
@pytest.mark.parametrize("argv", [["--help"], ["scan", "--help"], ["netscan", "--help"], ["probe", "--help"],
                                  ["record", "--help"]])
def test_usage_texts_import_nothing_heavy(argv: list[str]) -> None:
    code, modules = imported_by(argv)
    assert code == 0
    assert heavy_among(modules) == []


def test_the_check_sees_a_heavy_import() -> None:
    """The check above would notice: listing the probes imports every probe module (and pydantic)."""
    _, modules = imported_by(["probe", "list"])
    assert {"probes.host.files", "pydantic"} <= set(heavy_among(modules))
