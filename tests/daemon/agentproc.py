"""Start a real `precaution agent run` process for a test, and read its metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from agent.daemon.status import Figures, parse_metrics

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AgentProcess:
    def __init__(self, tmp: Path, toml: str = "", env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        tmp.mkdir(parents=True, exist_ok=True)
        self.state = tmp / "state"
        self.config = tmp / "agent.toml"
        self.config.write_text(f'[metrics]\nlisten = "127.0.0.1:{self.port}"\n' + toml)
        self.log = tmp / f"agent-{self.port}.log"
        self.env = {**os.environ, "PRECAUTION_HOME": str(self.state), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "agent.cli.main", "agent", "run", "--config",
                                          str(self.config)], cwd=ROOT, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def text(self) -> str | None:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as resp:
                return str(resp.read().decode())
        except OSError:
            return None

    def figures(self) -> Figures | None:
        text = self.text()
        return parse_metrics(text) if text is not None else None

    def wait_for(self, what: Callable[[Figures], bool], timeout: float = 120.0) -> Figures:
        """Poll the metrics until ``what`` holds (a generous deadline guards against hangs only)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log.read_text()}")
            figures = self.figures()
            if figures is not None and what(figures):
                return figures
            time.sleep(0.2)
        raise AssertionError(f"condition not reached; agent log:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


def ran_ok(kind: str) -> Callable[[Figures], bool]:
    return lambda f: (f.get("precaution_agent_runs_total", kind=kind, outcome="ok") or 0) >= 1
