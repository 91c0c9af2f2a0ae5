"""A real collector for tests: `precaution-collector init` then `serve` as a subprocess on 127.0.0.1 (TLS with
its own CA), on SQLite and on PostgreSQL (a database created for the run and dropped after)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.collector.client import AgentSim

BIN = Path(sys.executable).parent / "precaution-collector"
PG_BASE = os.environ.get("PRECAUTION_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
BACKENDS = ("sqlite", "postgresql")


class _Client(httpx.Client):
    """An httpx client that may be used in ``with`` after it has made its first request (the login)."""

    def __enter__(self) -> _Client:
        return self


def tls(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_admin() -> str:
    return PG_BASE.replace("postgresql+psycopg://", "postgresql://") + "/postgres"


def _ensure_pg() -> None:
    import psycopg

    try:
        psycopg.connect(_pg_admin(), connect_timeout=3).close()
        return
    except psycopg.OperationalError:
        pass
    versions = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
    if versions:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "start"], check=False)
    psycopg.connect(_pg_admin(), connect_timeout=10).close()


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of its own, dropped afterwards."""
    import psycopg

    _ensure_pg()
    name = f"precaution_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_pg_admin(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_BASE}/{name}"
    finally:
        with psycopg.connect(_pg_admin(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Collector:
    home: Path
    db_url: str
    backend: str
    admin_password: str
    metrics_token: str
    env: dict[str, str]
    port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.home / "ca.crt")

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN), *args], env=self.env, capture_output=True, text=True, input=input,
                              timeout=120)

    def start(self, port: int | None = None, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        port = port or free_port()
        env = {**self.env, **(extra_env or {})}
        log = open(self.home / f"serve-{port}.log", "wb")  # noqa: SIM115 - kept open for the process
        proc = subprocess.Popen([str(BIN), "serve", "--listen", f"127.0.0.1:{port}", "--log-level", "warning"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.ports.append(port)
        wait_ready(f"https://127.0.0.1:{port}", self.ca, proc)
        if not self.port:
            self.port = port
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        self.ports.clear()

    def http(self, base: str | None = None) -> httpx.Client:
        return _Client(base_url=base or self.url, verify=tls(self.ca), timeout=60)

    def login(self, username: str = "admin", password: str | None = None, base: str | None = None) -> httpx.Client:
        client = self.http(base)
        r = client.post("/api/v1/auth/login", json={"username": username, "password": password or self.admin_password})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return client

    def token(self, unit: str, hours: float = 24) -> str:
        with self.login() as admin:
            r = admin.post("/api/v1/tokens", json={"unit": unit, "expires_hours": hours})
            assert r.status_code == 200, r.text
            return str(r.json()["token"])

    def agent(self, unit: str, base: str | None = None, **kw: object) -> AgentSim:
        sim = AgentSim(base or self.url, self.ca, **kw)  # type: ignore[arg-type]
        r = sim.enrol(self.token(unit), unit)
        assert r.status_code == 200, r.text
        return sim


def wait_ready(url: str, ca: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"collector exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", verify=tls(ca), timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("collector did not become ready")


def init_collector(home: Path, db_url: str | None, backend: str, extra_env: dict[str, str] | None = None) -> Collector:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRECAUTION_COLLECTOR_")}
    env.update({"PRECAUTION_COLLECTOR_HOME": str(home), **(extra_env or {})})
    args = [str(BIN), "init"] + (["--database-url", db_url] if db_url else [])
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    password = re.search(r"password \(shown once\)[^:]*: (\S+)", done.stdout)
    token = re.search(r'metrics_token = "([^"]+)"', (home / "config.toml").read_text())
    assert password and token
    return Collector(home, db_url or f"sqlite:///{home}/collector.db", backend, password.group(1), token.group(1),
                     env)


@contextlib.contextmanager
def running_collector(tmp: Path, backend: str, extra_env: dict[str, str] | None = None,
                      start: bool = True) -> Iterator[Collector]:
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(pg_database()) if backend == "postgresql" else None
        c = init_collector(tmp / f"home-{uuid.uuid4().hex[:6]}", db_url, backend, extra_env)
        stack.callback(c.stop)
        if start:
            c.start()
        yield c


FAST_ENV = {"PRECAUTION_COLLECTOR_RATE_LIMIT_PER_MINUTE": "100000", "PRECAUTION_COLLECTOR_MAINTENANCE_INTERVAL_S": "1"}


@pytest.fixture(scope="session", params=BACKENDS)
def collector(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """One collector per database backend for the whole run (tests keep apart by using units of their own)."""
    tmp = tmp_path_factory.mktemp(f"collector-{request.param}")
    with running_collector(tmp, request.param, FAST_ENV) as c:
        yield c
    if not request.session.testsfailed:
        shutil.rmtree(tmp, ignore_errors=True)


def unit_name() -> str:
    return f"unit-{uuid.uuid4().hex[:8]}"
