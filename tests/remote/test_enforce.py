"""Enforcement helpers: the window watchdog, local targets, the scope a notice grants."""

from __future__ import annotations

import datetime as dt
import threading

from agent.enforce import Watchdog, is_local
from agent.notice import Notice, RateLimits


def test_watchdog_fires_at_deadline() -> None:
    fired = threading.Event()
    dog = Watchdog(dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=200), fired.set)
    assert fired.wait(5)
    assert dog.fired
    dog.cancel()


def test_watchdog_cancelled_does_not_fire() -> None:
    fired = threading.Event()
    dog = Watchdog(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), fired.set)
    dog.cancel()
    assert not fired.is_set() and not dog.fired


def test_is_local() -> None:
    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost") and is_local("root@127.0.0.2:22")
    assert not is_local("10.231.1.11") and not is_local("root@10.231.1.11") and not is_local("example.org")


def test_notice_scope_and_deadline() -> None:
    from agent.scope import ScopeGuard

    now = dt.datetime.now(dt.UTC)
    notice = Notice("N", "B", "U", "", ("10.231.1.0/28", "root@10.231.2.5:2222"), ("host", "portscan"),
                    now - dt.timedelta(minutes=1), now + dt.timedelta(hours=1), RateLimits(), dt.timedelta(0), now)
    scope = notice.to_scope()
    assert scope.kinds == frozenset({"host", "portscan"})
    guard = ScopeGuard(scope, deadline=notice.deadline)
    approved = guard.approve(["10.231.1.3", "10.231.2.5"], "host")
    assert {t.address for t in approved} == {"10.231.1.3", "10.231.2.5"}
    assert all(t.deadline == notice.window_end for t in approved)
