"""Enforcement of Art. 25 ¶2: a remote test, or a network test of a non-local target, runs only under a valid,
acknowledged notice whose window contains now and whose scope contains the target and the test kind.

Every refusal goes into the inspection record before the error reaches the user.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import UserError
from agent.notice import NoticeError, NoticeSettings, SignedNotice, check_file, parse_target
from agent.wire.contents import NoticeScope, RefusalContent, RefusalSummary

if TYPE_CHECKING:
    from agent.record import Recorder
    from agent.scope import ApprovedTarget, Refusal, Scope

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Authorization:
    """A notice that passed every check, with the scope and deadline it grants."""

    signed: SignedNotice
    scope: Scope
    deadline: dt.datetime  # the window's end: nothing runs past it

    @property
    def notice_id(self) -> str:
        return self.signed.notice.id

    def scope_doc(self) -> NoticeScope:
        n = self.signed.notice
        return NoticeScope(targets=list(n.targets), kinds=list(n.kinds),
                           window=[n.window_start.isoformat(), n.window_end.isoformat()])

    def seconds_left(self, now: dt.datetime | None = None) -> float:
        return (self.deadline - (now or dt.datetime.now(dt.UTC))).total_seconds()


def is_local(target: str) -> bool:
    """Loopback targets are this machine: testing them needs no notice."""
    try:
        host = parse_target(target).host
    except ValueError:
        return False
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse(recorder: Recorder, code: str, message: str, *, notice_id: str | None = None,
           targets: Sequence[str] = (), kind: str | None = None) -> NoticeError:
    """Record a refusal and return the error to raise."""
    recorder.write(RefusalContent(notice_id=notice_id, tests=[kind] if kind else [],
                                  summary=RefusalSummary(code=code, message=message, targets=list(targets))))
    return NoticeError(code, message)


def authorize(
    notice_path: Path,
    settings: NoticeSettings,
    *,
    kind: str,
    recorder: Recorder,
    targets: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> Authorization:
    """Check the notice for a test of ``kind`` now; refuse (recorded, exit 2) with the first reason."""
    try:
        result = check_file(notice_path, settings, now=now, require_ack=True, require_open=True,
                            state=recorder.state)
    except NoticeError as exc:
        message = str(exc) if str(notice_path) in str(exc) else f"{notice_path}: {exc}"
        raise refuse(recorder, exc.code, message, targets=targets, kind=kind) from None
    notice = result.signed.notice
    if result.problems:
        first = result.problems[0]
        more = f" (and {len(result.problems) - 1} more problem(s))" if len(result.problems) > 1 else ""
        raise refuse(recorder, first.code, f"notice {notice.id}: {first.en}{more}", notice_id=notice.id,
                     targets=targets, kind=kind)
    if kind not in notice.kinds:
        raise refuse(recorder, "out-of-scope", f"notice {notice.id} does not allow {kind!r} tests (allows: "
                     f"{', '.join(notice.kinds)})", notice_id=notice.id, targets=targets, kind=kind)
    return Authorization(result.signed, notice.to_scope(), notice.deadline)


def approve(
    auth: Authorization,
    targets: Sequence[str],
    kind: str,
    *,
    recorder: Recorder,
) -> tuple[list[ApprovedTarget], list[Refusal]]:
    """Targets inside the notice's scope; those outside are refused (and recorded), the rest go ahead."""
    from agent.scope import ScopeGuard, ScopeRefused

    refusals: list[Refusal] = []
    guard = ScopeGuard(auth.scope, on_refusal=refusals.append, deadline=auth.deadline)
    try:
        approved = guard.approve(list(targets), kind, partial=True)
    except ScopeRefused as exc:
        record_refusals(auth, exc.refusals or tuple(refusals), recorder)
        raise NoticeError("out-of-scope", f"notice {auth.notice_id}: {exc}") from None
    except UserError as exc:
        raise refuse(recorder, "bad-target", str(exc), notice_id=auth.notice_id, targets=targets,
                     kind=kind) from None
    if refusals:
        record_refusals(auth, refusals, recorder)
    return approved, refusals


def record_refusals(auth: Authorization, refusals: Sequence[Refusal], recorder: Recorder) -> None:
    for r in refusals:
        recorder.write(RefusalContent(notice_id=auth.notice_id, scope=auth.scope_doc(), tests=[r.kind],
                                      summary=RefusalSummary(code="out-of-scope", message=r.describe(),
                                                             targets=[r.target])))


def endpoint_allowed(auth: Authorization, host: str, port: int, user: str) -> str | None:
    """Why an SSH endpoint is not allowed (None if it is). A notice target written as user@host:port limits the
    user and port for that host; a plain host or network allows any."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    specific = []
    for text in auth.signed.notice.targets:
        t = parse_target(text)
        matches = (t.host == host) or (ip is not None and t.network is not None and ip.version == t.network.version
                                       and ip in t.network)
        if not matches:
            continue
        if t.user is None and t.port is None:
            return None
        specific.append(t)
    if not specific:
        return None  # the scope guard decides about the host itself
    for t in specific:
        if (t.user is None or t.user == user) and (t.port is None or t.port == port):
            return None
    allowed = ", ".join(t.text for t in specific)
    return f"{user}@{host}:{port} is not a notified SSH endpoint (notice names {allowed})"


class Watchdog:
    """Calls ``stop`` once ``deadline`` passes, unless cancelled first: a test still running when the notice
    window closes is stopped, not allowed to finish."""

    def __init__(self, deadline: dt.datetime, stop: Callable[[], None]) -> None:
        self.deadline = deadline
        self._stop = stop
        self._done = threading.Event()
        self.fired = False
        self._thread = threading.Thread(target=self._run, name="window-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            left = (self.deadline - dt.datetime.now(dt.UTC)).total_seconds()
            if left <= 0:
                self.fired = True
                log.warning("notice window closed at %s: stopping", self.deadline.isoformat())
                self._stop()
                return
            self._done.wait(min(left, 1.0))

    def cancel(self) -> None:
        self._done.set()
        self._thread.join(timeout=2.0)


def monotonic_deadline(deadline: dt.datetime, timeout: float) -> float:
    """Per-target deadline on the monotonic clock: min(timeout, window end)."""
    left = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
    return time.monotonic() + max(0.0, min(timeout, left))
