"""No secrets from command lines in any output: table, JSON, HTML, record, baseline."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probes.host.processes import join_cmdline
from probes.redact import redact_args
from tests.integrity.common import run


@pytest.mark.parametrize(("args", "expected"), [
    (["app", "--password", "hunter2", "--user", "bob"], ["app", "--password", "***", "--user", "bob"]),
    (["app", "--token=abc123"], ["app", "--token=***"]),
    (["app", "--db-passwd", "x", "--secret-file", "/etc/s"], ["app", "--db-passwd", "***", "--secret-file", "***"]),
    (["env", "PGPASSWORD=s3cr3t", "psql"], ["env", "PGPASSWORD=***", "psql"]),
    (["curl", "-H", "Authorization: Bearer abcdefghijk", "https://u:pw@host/x?token=zzz&a=1"],
     ["curl", "-H", "Authorization: ***", "https://u:***@host/x?token=***&a=1"]),
    (["runner", "--env", '{"AWS_SECRET_ACCESS_KEY":"x","HOME":"/root"}'], ["runner", "--env", "***"]),
    (["x", '{"DB_PASS":"y","A":1}'], ["x", "{2 keys redacted: DB_PASS, A}"]),
    (["java", "-Dspring.datasource.password=abc", "-jar", "a.jar"], ["java", "-Dspring.datasource.password=***",
                                                                     "-jar", "a.jar"]),
    (["x", "--api-key", "K", "--verbose"], ["x", "--api-key", "***", "--verbose"]),
    (["nginx", "-g", "daemon off;"], ["nginx", "-g", "daemon off;"]),
    (["sshd: root@pts/0"], ["sshd: root@pts/0"]),
    (["svc", "--listen", "0.0.0.0:8080", "--key-file", "/etc/k.pem"], ["svc", "--listen", "0.0.0.0:8080",
                                                                       "--key-file", "/etc/k.pem"]),
    (["t", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"],
     ["t", "***"]),
])
def test_secret_values_are_replaced_names_kept(args: list[str], expected: list[str]) -> None:
    assert redact_args(args) == expected
    assert redact_args(expected) == expected  # stable: a redacted line redacts to itself


def test_join_cmdline_redacts_and_stays_bounded() -> None:
    raw = "\0".join(["srv", "--password", "hunter2", "--env", '{"K":"v"}', *["x" * 50] * 20]) + "\0"
    line = join_cmdline(raw)
    assert "hunter2" not in line and '"v"' not in line and len(line) <= 512


SECRETS = ("hunter2-sekrit", "env-blob-value-9f3", "tok-7c1e-abc", "bearer-value-123456")


def test_no_secret_reaches_any_output(tmp_path: Path, _isolated_state: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(120)", "--password", SECRETS[0], "--env",
            json.dumps({"AWS_SECRET_ACCESS_KEY": SECRETS[1], "HOME": "/root"}), f"api_token={SECRETS[2]}",
            f"Authorization: Bearer {SECRETS[3]}"]
    proc = subprocess.Popen(argv)
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        deadline = time.monotonic() + 10
        while SECRETS[0].encode() not in cmdline.read_bytes():  # exec done, argv in place
            assert time.monotonic() < deadline
            time.sleep(0.05)
        html = tmp_path / "r.html"
        outputs = [run("scan", "--probe", "processes", "--json", "--observations", "--html", str(html)).stdout,
                   run("scan", "--probe", "processes", "--lang", "zh-CN").stdout,
                   run("baseline", "capture", "--probe", "processes", "--json").stdout,
                   run("probe", "processes").stdout]
        observed = outputs[0]
        assert "--password ***" in observed and "api_token=***" in observed  # the process was seen
        files = [p for p in _isolated_state.rglob("*") if p.is_file()] + [html]
        blobs = outputs + [p.read_bytes().decode("utf-8", "replace") for p in files]
        for secret in SECRETS:
            assert not any(secret in b for b in blobs), secret
    finally:
        proc.kill()
        proc.wait()
