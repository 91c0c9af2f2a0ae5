"""Local accounts (argon2id), roles per unit, sessions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from collector.core.errors import CollectorUserError
from collector.core.security import hash_password, new_secret, password_ok, secret_digest
from collector.models import User, UserRole, UserSession
from collector.models.people import ROLES

MIN_PASSWORD = 12


def add_user(session: Session, username: str, password: str, now: dt.datetime) -> User:
    if not username or len(username) > 100:
        raise CollectorUserError("a user name is 1 to 100 characters")
    if len(password) < MIN_PASSWORD:
        raise CollectorUserError(f"a password has at least {MIN_PASSWORD} characters")
    if session.scalars(select(User).where(User.username == username)).first() is not None:
        raise CollectorUserError(f"user {username!r} exists already")
    user = User(username=username, password_hash=hash_password(password), created_at=now, disabled=False)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise CollectorUserError(f"no user {username!r}")
    return user


def set_password(session: Session, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise CollectorUserError(f"a password has at least {MIN_PASSWORD} characters")
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))  # log out everywhere


def set_role(session: Session, username: str, unit: str, role: str | None) -> None:
    """Give ``role`` on ``unit`` ("*": every unit); None removes it."""
    if role is not None and role not in ROLES:
        raise CollectorUserError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    user = get_user(session, username)
    session.execute(delete(UserRole).where(UserRole.user_id == user.id, UserRole.unit == unit))
    if role is not None:
        session.add(UserRole(user_id=user.id, unit=unit, role=role))


def login(session: Session, username: str, password: str, now: dt.datetime, hours: float) -> tuple[str, dt.datetime]:
    user = session.scalars(select(User).where(User.username == username)).first()
    # hash anyway when the user is unknown, so timing does not tell which names exist
    if user is None or user.disabled:
        password_ok(hash_password("x" * MIN_PASSWORD), password)
        raise PermissionError
    if not password_ok(user.password_hash, password):
        raise PermissionError
    token = new_secret(32)
    expires = now + dt.timedelta(hours=hours)
    session.add(UserSession(token_hash=secret_digest(token), user_id=user.id, created_at=now, expires_at=expires))
    session.execute(delete(UserSession).where(UserSession.expires_at < now))
    return token, expires


def logout(session: Session, token: str) -> None:
    """End one session (the dashboard's logout): its token no longer authenticates anywhere."""
    session.execute(delete(UserSession).where(UserSession.token_hash == secret_digest(token)))
