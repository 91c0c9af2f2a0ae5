"""`precaution-collector`: set-up and administration of the central collector (docs/collector.md).

Parsing and printing only; the work is done in collector.service and collector.crud. A user error prints one
line (English, then Simplified Chinese) and exits 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from collector import __version__
from collector.core.errors import ApiError, CollectorUserError

_ZH = {
    "setup": "采集端已初始化",
    "password": "初始管理员密码（仅显示一次）",
    "error": "错误",
}


def _duration(text: str) -> dt.timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1] in units:
            return dt.timedelta(seconds=float(text[:-1]) * units[text[-1]])
        return dt.timedelta(seconds=float(text))
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration like 24h, 30m, 7d") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="precaution-collector", description="precaution central collector / 采集端")
    p.add_argument("--version", action="version", version=f"precaution-collector {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="state directory, CA, issuer key, config, first admin")
    s.add_argument("--database-url", help="postgresql+psycopg://... (default: SQLite in the state directory)")
    s.add_argument("--listen", default="127.0.0.1:8443")
    s.add_argument("--server-name", action="append", default=[], help="DNS name or address for the certificate")
    s.add_argument("--admin", default="admin")

    s = sub.add_parser("serve", help="serve the API over TLS")
    s.add_argument("--listen", help="HOST:PORT (default from config)")
    s.add_argument("--insecure-dev", action="store_true", help="plain HTTP, loopback only, for development")
    s.add_argument("--log-level", default="info")
    s.add_argument("--workers", type=int, help="worker processes on one socket (default from config: 1; use the "
                   "number of cores)")

    sub.add_parser("migrate", help="bring the database schema to this release (with progress)")

    s = sub.add_parser("purge", help="retention: delete old runs and batch acknowledgements now (with progress)")
    s.add_argument("--days", type=int, help="keep this many days (default: retention_runs_days)")

    tokens = sub.add_parser("token", help="enrolment tokens").add_subparsers(dest="action", required=True)
    t = tokens.add_parser("create")
    t.add_argument("--unit", required=True)
    t.add_argument("--expires", type=_duration, default=dt.timedelta(hours=24))

    users = sub.add_parser("user", help="local accounts").add_subparsers(dest="action", required=True)
    t = users.add_parser("add")
    t.add_argument("name")
    t.add_argument("--role", choices=("viewer", "operator", "admin"))
    t.add_argument("--unit", default="*", help='unit the role applies to ("*": every unit)')
    t = users.add_parser("passwd")
    t.add_argument("name")
    t = users.add_parser("role")
    t.add_argument("name")
    t.add_argument("--unit", required=True)
    g = t.add_mutually_exclusive_group(required=True)
    g.add_argument("--role", choices=("viewer", "operator", "admin"))
    g.add_argument("--remove", action="store_true")
    for t in (users.choices["add"], users.choices["passwd"]):
        t.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    agents = sub.add_parser("agent", help="enrolled agents").add_subparsers(dest="action", required=True)
    t = agents.add_parser("list")
    t.add_argument("--unit")
    t.add_argument("--json", action="store_true")
    t = agents.add_parser("revoke")
    t.add_argument("agent_id")

    s = sub.add_parser("backup", help="consistent copy of the SQLite database")
    s.add_argument("dest", type=Path)

    notices = sub.add_parser("notice", help="notices of remote testing").add_subparsers(dest="action", required=True)
    t = notices.add_parser("issue")
    t.add_argument("--unit", required=True)
    t.add_argument("--id")
    t.add_argument("--target", action="append", required=True)
    t.add_argument("--kind", action="append", required=True,
                   choices=("host", "discovery", "portscan", "service", "passive"))
    t.add_argument("--start", required=True, help="ISO 8601 with zone, e.g. 2026-03-02T08:00Z")
    t.add_argument("--end", required=True)
    t.add_argument("--lead-time", type=_duration, default=dt.timedelta(hours=24))
    t.add_argument("--contact", default="")
    t.add_argument("-o", "--output", type=Path, help="also write the signed notice document here")
    return p


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    from collector.core.security import new_secret

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return new_secret(15), True


def _run(args: argparse.Namespace) -> int:
    from collector import service
    from collector.core.clock import iso, parse_iso, utcnow
    from collector.core.paths import home_dir
    from collector.core.settings import load_settings

    if args.command == "init":
        home = home_dir()
        result = service.init(home, database_url=args.database_url, listen=args.listen,
                              server_names=args.server_name, admin=args.admin,
                              progress=lambda m: print(f"  {m}"))
        print(f"collector set up in {result.home} / {_ZH['setup']}")
        print(f"  database: {result.database_url.split('@')[-1]}")
        print(f"  CA certificate (give it to agents): {result.home / 'ca.crt'}")
        print(f"  metrics bearer token: in {result.home / 'config.toml'}")
        print(f"  first admin: {result.admin}")
        print(f"  password (shown once) / {_ZH['password']}: {result.password}")
        return 0
    settings = load_settings()
    if args.command == "serve":
        ctx = service.load_context(settings)
        service.serve(ctx, args.listen or settings.listen, insecure_dev=args.insecure_dev, log_level=args.log_level,
                      workers=settings.workers if args.workers is None else args.workers)
        return 0
    if args.command == "migrate":
        from collector.core import migrate

        db = service.open_db(settings)
        try:
            before = migrate.current_revision(db.write_engine)
            print(f"schema at {before or 'nothing'}, head {migrate.head_revision()}", flush=True)
            migrate.upgrade(db.write_engine, lambda step: print(
                f"  applied {step.up_revision_id}: {step.up_revision.doc}", flush=True))
            print(f"schema at {migrate.current_revision(db.write_engine)}")
        finally:
            db.dispose()
        return 0
    if args.command == "backup":
        print(f"database copied to {service.backup(settings, args.dest)}")
        return 0
    if args.command == "purge":
        if args.days is not None:
            settings = load_settings(retention_runs_days=args.days)
        ctx = service.load_context(settings)
        try:
            print(f"purging runs and batches older than {settings.retention_runs_days} days "
                  f"(findings, their audit trail and record entries are kept)", flush=True)
            counts = service.purge(ctx, progress=lambda c: print(
                f"  {c.runs} runs ({c.item_keys} item keys), {c.batches} batches so far", flush=True))
            print(f"purged {counts.runs} runs ({counts.item_keys} item keys) and {counts.batches} batches")
        finally:
            ctx.db.dispose()
        return 0

    from collector.crud import identity, people

    ctx = service.load_context(settings)
    db, now = ctx.db, utcnow()
    try:
        if args.command == "token":
            with db.write() as session:
                token = identity.create_token(session, args.unit, args.expires, getpass.getuser(), now)
            print(token)
            print(f"unit {args.unit}, one use, expires {iso(now + args.expires)}", file=sys.stderr)
        elif args.command == "user" and args.action == "add":
            password, generated = _password(args)
            with db.write() as session:
                people.add_user(session, args.name, password, now)
                if args.role:
                    people.set_role(session, args.name, args.unit, args.role)
            print(f"user {args.name} added" + (f"; password (shown once): {password}" if generated else ""))
        elif args.command == "user" and args.action == "passwd":
            password, generated = _password(args)
            with db.write() as session:
                people.set_password(session, args.name, password)
            print(f"password of {args.name} changed" + (f": {password}" if generated else ""))
        elif args.command == "user" and args.action == "role":
            with db.write() as session:
                people.set_role(session, args.name, args.unit, None if args.remove else args.role)
            print(f"{args.name}: {'no role' if args.remove else args.role} on unit {args.unit}")
        elif args.command == "agent" and args.action == "list":
            _agent_list(ctx, args.unit, args.json)
        elif args.command == "agent" and args.action == "revoke":
            with db.write() as session:
                if not identity.revoke(session, args.agent_id, getpass.getuser(), now):
                    raise CollectorUserError(f"no active agent {args.agent_id}")
            print(f"agent {args.agent_id} revoked: its next request is refused")
        elif args.command == "notice":
            from collector.crud import work

            try:
                start, end = parse_iso(args.start), parse_iso(args.end)
            except ValueError as exc:
                raise CollectorUserError(f"--start/--end: {exc}") from None
            with db.write() as session:
                row = work.issue_notice(session, ctx.issuer_key, issuer=ctx.issuer_name, notice_id=args.id,
                                        unit=args.unit, targets=args.target, kinds=args.kind, start=start, end=end,
                                        lead_time=args.lead_time, contact=args.contact, by=getpass.getuser(),
                                        now=now)
                document = json.dumps(row.document, indent=2, ensure_ascii=False) + "\n"
            if args.output:
                args.output.write_text(document, encoding="utf-8")
            print(document, end="")
    finally:
        db.dispose()
    return 0


def _agent_list(ctx: object, unit: str | None, as_json: bool) -> None:
    from sqlalchemy import select

    from collector.api.context import AppContext
    from collector.core.clock import iso, utcnow
    from collector.models import Agent

    assert isinstance(ctx, AppContext)
    now = utcnow()
    with ctx.db.read() as session:
        query = select(Agent).order_by(Agent.unit, Agent.hostname)
        if unit:
            query = query.where(Agent.unit == unit)
        rows = list(session.scalars(query))
    items = [{"id": a.id, "unit": a.unit, "hostname": a.hostname, "last_seen": iso(a.last_seen),
              "state": "revoked" if a.revoked_at else ("online" if (now - a.last_seen).total_seconds() < 900
                                                       else "offline"),
              "record_seq": a.record_seq, "record_broken": a.record_broken} for a in rows]
    if as_json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
        return
    for i in items:
        print(f"{i['id']}  {i['unit']:<20} {i['hostname']:<30} {i['state']:<8} last seen {i['last_seen']}"
              + (f"  RECORD BROKEN: {i['record_broken']}" if i["record_broken"] else ""))
    if not items:
        print("no agents enrolled")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    os.umask(0o077)  # state files 0600, directories 0700, whatever the caller's umask
    try:
        return _run(args)
    except (CollectorUserError, ApiError) as exc:
        zh = f" / {exc.zh}" if isinstance(exc, ApiError) else ""
        print(f"precaution-collector: error / {_ZH['error']}: {exc}{zh}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
