"""Set-up and running of the collector: ``init``, loading what ``serve`` needs, the maintenance loop, backup.

Orchestration lives here; collector.cli only parses arguments and prints.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from collector.api.context import AppContext
from collector.core import ca as ca_mod
from collector.core import migrate
from collector.core.clock import utcnow
from collector.core.db import Database, open_database
from collector.core.errors import CollectorUserError
from collector.core.paths import CONFIG_FILE, ISSUER_KEY, ensure_home, read_private, write_private
from collector.core.security import new_secret
from collector.core.settings import CollectorSettings, load_settings, parse_listen
from collector.crud import identity, lifecycle, people, retention, work
from collector.models.people import ALL_UNITS

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InitResult:
    home: Path
    admin: str
    password: str
    metrics_token: str
    database_url: str


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init(home: Path, *, database_url: str | None, listen: str, server_names: list[str], admin: str,
         progress: Callable[[str], None] = lambda _m: None) -> InitResult:
    """State directory, CA, server certificate, issuer key, config, schema, first admin (password shown once)."""
    ensure_home(home)
    if (home / CONFIG_FILE).exists():
        raise CollectorUserError(f"{home / CONFIG_FILE} exists: this collector is already set up")
    parse_listen(listen)
    authority = ca_mod.create_ca(home)
    names = list(dict.fromkeys(["localhost", "127.0.0.1", "::1", *server_names]))
    ca_mod.issue_server_cert(home, authority, names)
    progress(f"CA and server certificate for {', '.join(names)}")
    key = Ed25519PrivateKey.generate()
    write_private(home / ISSUER_KEY, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    token = new_secret(24)
    lines = ["[collector]", f"listen = {_toml_str(listen)}", f"metrics_token = {_toml_str(token)}",
             "server_names = [" + ", ".join(_toml_str(n) for n in names) + "]"]
    if database_url:
        lines.append(f"database_url = {_toml_str(database_url)}")
    write_private(home / CONFIG_FILE, ("\n".join(lines) + "\n").encode("utf-8"))
    settings = load_settings(home=home)
    db = open_database(settings.db_url)
    try:
        migrate.upgrade(db.write_engine, lambda step: progress(f"migration {step.up_revision_id}: "
                                                              f"{step.up_revision.doc} applied"))
        password = new_secret(15)
        with db.write() as session:
            people.add_user(session, admin, password, utcnow())
            people.set_role(session, admin, ALL_UNITS, "admin")
    finally:
        db.dispose()
    return InitResult(home, admin, password, token, settings.db_url)


def load_issuer_key(home: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(read_private(home / ISSUER_KEY), password=None)
    except ValueError as exc:
        raise CollectorUserError(f"{home / ISSUER_KEY}: cannot load the issuer key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CollectorUserError(f"{home / ISSUER_KEY}: not an Ed25519 key")
    return key


def load_context(settings: CollectorSettings, *, require_current: bool = True) -> AppContext:
    if not (settings.home / CONFIG_FILE).exists():
        raise CollectorUserError(f"{settings.home}: not set up; run `precaution-collector init` first")
    db = open_database(settings.db_url, settings.db_pool_size)
    if require_current:
        try:
            current, head = migrate.current_revision(db.write_engine), migrate.head_revision()
        except SQLAlchemyError as exc:
            db.dispose()
            raise CollectorUserError(f"database {settings.db_url.split('@')[-1]}: cannot connect: "
                                     f"{exc.__class__.__name__}") from None
        if current != head:
            db.dispose()
            raise CollectorUserError(f"the database schema is at {current or 'nothing'}, this release needs {head}: "
                                     "run `precaution-collector migrate`")
    return AppContext(settings, db, ca_mod.load_ca(settings.home), load_issuer_key(settings.home),
                      settings.issuer_name)


def maintain(ctx: AppContext, now: dt.datetime | None = None) -> None:
    """Housekeeping every replica may run at once (each step is idempotent): expired risk acceptances and tasks,
    old nonces and rate windows, scheduled notices. Retention is ``purge`` (less often)."""
    now = now or utcnow()
    with ctx.db.write() as session:
        lifecycle.expire_acceptances(session, now)
        work.expire_tasks(session, now)
        identity.prune(session, now, ctx.settings.retention_nonces_s)
    from collector.crud import schedules  # croniter and dateutil: only the serving process needs them

    with ctx.db.write() as session:
        schedules.run_schedules(session, ctx.issuer_key, ctx.issuer_name, now)


def purge(ctx: AppContext, now: dt.datetime | None = None,
          progress: Callable[[retention.PurgeCounts], None] = lambda _c: None) -> retention.PurgeCounts:
    """Retention (docs/collector.md): runs, their item keys and batch acknowledgements older than
    ``retention_runs_days``, in chunks of ``retention_chunk_rows``; findings, audit and record are kept."""
    return retention.purge(ctx.db.write, now=now or utcnow(), runs_days=ctx.settings.retention_runs_days,
                           chunk=ctx.settings.retention_chunk_rows, progress=progress)


class Maintenance(threading.Thread):
    def __init__(self, ctx: AppContext) -> None:
        super().__init__(name="collector-maintenance", daemon=True)
        self.ctx = ctx
        self.stopping = threading.Event()

    def run(self) -> None:
        next_purge = time.monotonic()  # the first round purges too: a collector restarted often still purges
        while not self.stopping.wait(self.ctx.settings.maintenance_interval_s):
            try:
                maintain(self.ctx)
                if time.monotonic() >= next_purge:
                    counts = purge(self.ctx)
                    next_purge = time.monotonic() + self.ctx.settings.retention_interval_s
                    if counts.runs or counts.batches:
                        log.info("retention: purged %d runs (%d item keys), %d batches", counts.runs,
                                 counts.item_keys, counts.batches)
            except SQLAlchemyError as exc:  # the database is away: try again next round
                log.warning("maintenance skipped: %s", exc.__class__.__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _database_answers(ctx: AppContext) -> bool:
    try:
        with ctx.db.read() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


def serve(ctx: AppContext, listen: str, *, insecure_dev: bool, log_level: str = "info", workers: int = 1) -> None:
    """Serve the API, run the maintenance thread, and speak sd_notify to systemd (collector.core.systemd).

    With ``workers`` > 1, uvicorn runs that many worker processes on one socket, each building its own
    application from the settings (``worker_app``); this process supervises them, runs the maintenance loop and
    feeds systemd's watchdog. Nothing a request needs is kept in a process: nonces, rate windows, leases and the
    record heads are in the database, as for replicas on several machines."""
    from collector.core.paths import SERVER_CERT, SERVER_KEY

    host, port = parse_listen(listen)
    if insecure_dev and not is_loopback(host):
        raise CollectorUserError(f"--insecure-dev serves plain HTTP and is allowed on loopback only, not {host}")
    if workers < 1:
        raise CollectorUserError(f"--workers must be 1 or more, not {workers}")
    tls = {} if insecure_dev else {"ssl_certfile": str(ctx.settings.home / SERVER_CERT),
                                   "ssl_keyfile": str(ctx.settings.home / SERVER_KEY)}
    options = {"host": host, "port": port, "log_level": log_level, "access_log": False, "timeout_keep_alive": 30,
               "timeout_graceful_shutdown": 3, "server_header": False, **tls}
    worker = Maintenance(ctx)
    worker.start()
    try:
        started = (_serve_in_process(ctx, options, worker, listen) if workers == 1
                   else _serve_workers(ctx, options, worker, listen, workers))
    finally:
        worker.stopping.set()
        ctx.db.dispose()
    if not started:
        raise SystemExit(3)  # uvicorn logged why (address in use, certificate unreadable); as uvicorn.run does


def _serve_in_process(ctx: AppContext, options: dict[str, object], worker: Maintenance, listen: str) -> bool:
    """One uvicorn server in this process; the watchdog is fed from its own event loop (a blocked loop feeds
    nothing). True when it got as far as listening."""
    import asyncio

    import uvicorn

    from collector.api.app import create_app
    from collector.core import systemd

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # here, not in the supervisor: uvicorn re-raises the SIGTERM it caught as soon as serve() returns
            systemd.notify("STOPPING=1")
            await super().shutdown(sockets=sockets)

    server = Server(uvicorn.Config(create_app(ctx), **options))  # type: ignore[arg-type]
    state = systemd.ServerState(started=lambda: server.started, exiting=lambda: server.should_exit,
                                database_ok=lambda: _database_answers(ctx), housekeeping_alive=worker.is_alive,
                                where=listen)

    async def run() -> None:
        supervisor = asyncio.create_task(systemd.supervise(state))
        try:
            await server.serve()
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor

    asyncio.run(run())
    return bool(server.started)


def _serve_workers(ctx: AppContext, options: dict[str, object], worker: Maintenance, listen: str,
                   workers: int) -> bool:
    """uvicorn's multiprocess supervisor (it pings its workers and replaces one that stops answering); the
    watchdog is fed here, from the main process (NotifyAccess=main), while the database answers and the
    maintenance thread lives."""
    import asyncio

    from uvicorn.supervisors import Multiprocess

    from collector.api.workers import TcpConfig
    from collector.core import systemd

    config = TcpConfig(f"{__name__}:worker_app", factory=True, workers=workers, **options)  # type: ignore[arg-type]
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    state = systemd.ServerState(started=lambda: True, exiting=supervisor.should_exit.is_set,
                                database_ok=lambda: _database_answers(ctx), housekeeping_alive=worker.is_alive,
                                where=listen)
    threading.Thread(target=asyncio.run, args=(systemd.supervise(state),), name="sd-notify", daemon=True).start()
    try:
        supervisor.run()
    finally:
        systemd.notify("STOPPING=1")
    return True


def worker_app() -> FastAPI:
    """The application of one ``serve --workers N`` worker process: built from the settings (environment and
    config.toml, as the supervising process read them), with its own database pool."""
    from collector.api.app import create_app

    return create_app(load_context(load_settings()))


def backup(settings: CollectorSettings, dest: Path) -> str:
    """A consistent copy of the SQLite database (online backup API); PostgreSQL: say to use pg_dump."""
    url = settings.db_url
    if not url.startswith("sqlite"):
        raise CollectorUserError("the database is PostgreSQL: back it up with pg_dump (e.g. `pg_dump -Fc -f "
                                 "collector.dump DBNAME`) or your provider's snapshots")
    source = Path(url.split("///", 1)[1])
    if dest.exists():
        raise CollectorUserError(f"{dest} exists; choose a new file")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(dest)
        with dst:
            src.backup(dst)
        dst.close()
    finally:
        src.close()
    dest.chmod(0o600)
    return str(dest)


def open_db(settings: CollectorSettings) -> Database:
    return open_database(settings.db_url, settings.db_pool_size)
