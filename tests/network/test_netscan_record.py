"""A netscan whose nmap fails after sending is in the inspection record as a failed test, naming what was sent
to whom (Art. 25 ¶3: the record is truthful), and `netscan --json` validates against the generated schema."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import record
from agent.cli.main import main
from agent.wire.netscan import NetscanDocument
from agent.wire.record import NetscanEntry, parse_entry


@pytest.fixture
def failing_nmap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """nmap that really scans (loopback only: the test's target), writes partial XML output and dies."""
    from probes.network import portscan

    real = shutil.which("nmap")
    if real is None:
        pytest.skip("nmap is not installed (make deps)")
    fake_dir = tmp_path / "bin"
    fake_dir.mkdir()
    fake = fake_dir / "nmap"
    fake.write_text(f'#!/bin/sh\nif [ "$1" = "-V" ]; then exec {real} -V; fi\n'
                    f'{real} "$@" | head -c 300\n'
                    'echo "nmap: Assertion failed: libnetutil" >&2\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_dir}:/usr/bin:/bin")
    portscan._nmap_prototype.cache_clear()
    yield
    portscan._nmap_prototype.cache_clear()


def test_nmap_failing_mid_scan_is_recorded_as_failed(failing_nmap: None, _isolated_state: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["netscan", "127.0.0.1", "--engine", "nmap", "--ports", "1-200", "--no-discovery", "--json"])
    out, err = capsys.readouterr()
    assert code == 2, err  # a test that failed is an error exit, not a clean one
    doc = NetscanDocument.model_validate_json(out)  # still a valid document, with the failed stage in it
    [ports] = [p for p in doc.probes if p.id == "ports"]
    assert ports.status == "error" and "nmap failed" in (ports.message or "")
    entries = record.read_entries(_isolated_state / record.RECORD_FILE)
    assert [e.kind for e in entries] == ["netscan"]
    entry = parse_entry(entries[0].body())
    assert isinstance(entry, NetscanEntry)
    assert entry.summary.status == "failed" and entry.summary.probe_errors == 1
    [failure] = entry.summary.failures
    assert failure.test == "ports" and "nmap failed" in failure.message
    assert [s.target for s in failure.sent] == ["127.0.0.1"]
    assert "nmap" in failure.sent[0].what and "1-200" in failure.sent[0].what
    assert entry.applied is not None and entry.applied.engine == "nmap"
    assert entry.applied.overrides["ports"] == "1-200" and entry.applied.overrides["engine"] == "nmap"
    assert record.verify(_isolated_state / record.RECORD_FILE).ok


def test_netscan_json_has_ports_and_services_without_observations(_isolated_state: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        code = main(["netscan", "127.0.0.1", "--engine", "builtin", "--ports", str(port), "--no-discovery",
                     "--services", "--json"])
    finally:
        listener.close()
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    data = json.loads(out)
    assert "observations" not in data
    doc = NetscanDocument.model_validate(data)
    assert [(p.host, p.port, p.proto) for p in doc.open_ports] == [("127.0.0.1", port, "tcp")]
    assert [(s.host, s.port) for s in doc.services] == [("127.0.0.1", port)]
    assert "127.0.0.1" in {h.ip for h in doc.hosts}
    _validate_schema("netscan.schema.json", data)
    entry = parse_entry(record.read_entries(_isolated_state / record.RECORD_FILE)[-1].body())
    assert isinstance(entry, NetscanEntry) and entry.summary.status == "completed"


def _validate_schema(name: str, data: object) -> None:
    from tests.schema_check import validate

    validate(name, data)


def test_invalid_network_baseline_is_a_critical_integrity_finding(_isolated_state: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Host and network baselines are compared through one path: a tampered network baseline is not used and
    is itself a critical finding (not an error that stops the test)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = str(listener.getsockname()[1])
    try:
        argv = ["127.0.0.1", "--scope", "127.0.0.1/32", "--ports", port, "--engine", "builtin"]
        assert main(["baseline", "capture", "--network", *argv, "--no-services", "--by", "tester"]) == 0
        capsys.readouterr()
        assert main(["netscan", *argv, "--no-discovery", "--json"]) in (0, 1)
        clean = json.loads(capsys.readouterr().out)
        assert clean["baseline"]["status"] == "compared" and clean["baseline"]["drift"]["added"] == 0
        [current] = (_isolated_state / "baselines" / "network").glob("*/current*")
        data = bytearray(current.read_bytes())
        data[len(data) // 2] ^= 0x01  # one flipped bit anywhere breaks the signature or the digests
        current.write_bytes(bytes(data))
        code = main(["netscan", *argv, "--no-discovery", "--json"])
    finally:
        listener.close()
    out, err = capsys.readouterr()
    assert code == 1, err  # a critical finding, not exit 2
    doc = NetscanDocument.model_validate_json(out)
    assert doc.baseline is not None and doc.baseline.status == "invalid"
    [integrity] = [f for f in doc.findings if f.kind == "integrity"]
    assert integrity.severity == "critical" and integrity.subject.startswith("network/")
