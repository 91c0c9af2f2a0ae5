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


# The long-running daemon (issue 11: idle <= 40 MB): its collector link builds batches from the spooled JSON and
# reads the collector's answers with agent.wire.collector_answers; the wire models, httpx, scapy and config.toml's
# models (agent.config) stay in the run children and the one-shot commands.
DAEMON_HEAVY = ("agent.wire.findings", "agent.wire.collector_api", "agent.wire.scan", "agent.wire.notice",
                "agent.wire.coverage", "agent.wire.record", "agent.wire.contents", "httpx", "scapy", "agent.services",
                "agent.scan", "agent.config", "probes.host", "probes.network")

_DAEMON_PROBE = """
import json, sys, tempfile
from pathlib import Path
before = set(sys.modules)
import agent.cli.agent, agent.daemon.service, agent.daemon.inbox
from agent.daemon.collector_client import RawNotices, RawTaskLease, IngestResult, _parse
from agent.daemon.identity import host_identity
from agent.daemon.push import build_batch, settle
from agent.daemon.spool import Priority, Spool, SpoolItem
with tempfile.TemporaryDirectory() as tmp:
    spool = Spool(Path(tmp) / "spool.db", min_free_bytes=1)
    spool.put(SpoolItem("run:r1", "run", json.loads(sys.argv[1]), Priority.KEEP))
    spool.put(SpoolItem("record:1", "record", {"seq": 1, "line": "{}"}, Priority.KEEP))
    spool.put(SpoolItem("ack:n1", "acknowledgement", {"notice_id": "n1"}, Priority.KEEP))
    spool.put(SpoolItem("spool-dropped:t", "spool_event", {"event": "spool_dropped", "items": 3}, Priority.KEEP))
    batch, owners = build_batch(spool.batch(), host_identity())
    result = _parse(IngestResult, json.dumps({"batch_id": batch.batch_id, "replayed_batch": False, "counts": {
        "accepted": 1, "duplicate": 0, "rejected": 0}, "items": [{"kind": "run", "key": "r1", "status": "accepted"}],
        "record_head": 0}).encode())
    settle(spool, result, owners, Path(tmp))
    spool.close()
_parse(RawTaskLease, b'{"tasks": [{"task_id": "t1", "notice": {"notice": {"id": "n1"}}}], "poll_interval_s": 30}')
_parse(RawNotices, b'{"notices": [{"notice": {"id": "n1"}, "signature": null}]}')
sys.stderr.write("\\n" + json.dumps({"batch": batch.body.decode(), "modules": sorted(set(sys.modules) - before)}))
"""


def test_the_daemon_pushes_and_polls_without_the_wire_models() -> None:
    from agent.wire.collector_api import IngestBatch
    from tests.collector.client import finding, run

    proc = subprocess.run([sys.executable, "-c", _DAEMON_PROBE, json.dumps(run("r1", [finding("f1")]))],
                          capture_output=True, text=True, check=False, timeout=60)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    heavy = [m for m in report["modules"] if m in DAEMON_HEAVY or m.startswith(tuple(h + "." for h in DAEMON_HEAVY))]
    assert heavy == []
    assert "agent.wire.collector_answers" in report["modules"] and "pydantic" in report["modules"]
    # the batch it built is a whole IngestBatch for the collector (the acknowledgement here is a stub: its
    # fields are the notice child's business, so only the run, record and event are checked)
    sent = json.loads(report["batch"])
    sent["acknowledgements"] = []
    batch = IngestBatch.model_validate_json(json.dumps(sent))
    assert [r.run_id for r in batch.runs] == ["r1", "agent-spool-dropped-t"] and batch.record_lines == ["{}"]
