"""Cooperative cancellation of a probe run. The runner gives each run a CancelToken (deadline + cancel flag)
and binds it to the worker thread; every blocking transport call bounds its wait by the token and raises
ProbeCancelled once it is cancelled, so an overrunning probe unwinds and its thread returns. Cancelling also
runs the kill callbacks registered by calls in flight (LocalTransport.run kills its process group), so a hung
command dies at once rather than at its own timeout."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator

from probes.errors import ProbeCancelled

KillFn = Callable[[], None]


class CancelToken:
    """Cancelled when ``cancel()`` is called or the monotonic ``deadline`` passes."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._kills: dict[int, KillFn] = {}
        self._next = 0

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or (self.deadline is not None and time.monotonic() >= self.deadline)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline); 0 once cancelled."""
        if self._event.is_set():
            return 0.0
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def bound(self, seconds: float) -> float:
        """``seconds`` cut to what is left of the run."""
        left = self.remaining()
        return seconds if left is None else min(seconds, left)

    def check(self) -> None:
        if self.cancelled:
            raise ProbeCancelled("probe run cancelled: its time is up")

    def cancel(self) -> None:
        """Cancel and kill whatever the run has in flight (idempotent; safe from any thread)."""
        with self._lock:
            self._event.set()
            kills = list(self._kills.values())
            self._kills.clear()
        for kill in kills:
            with contextlib.suppress(OSError):
                kill()

    @contextlib.contextmanager
    def on_cancel(self, kill: KillFn) -> Iterator[None]:
        """Run ``kill`` if the token is cancelled while the block runs (at once if it already is)."""
        with self._lock:
            handle = self._next
            self._next += 1
            self._kills[handle] = kill
            already = self._event.is_set()
        if already:
            self.cancel()
        try:
            yield
        finally:
            with self._lock:
                self._kills.pop(handle, None)


class _Never(CancelToken):
    """Shared by every call outside a probe run, so cancelling it must do nothing."""

    def cancel(self) -> None:
        return None


NEVER: CancelToken = _Never()  # unbound calls (tests, `precaution probe run`): never cancelled, no deadline
_current: contextvars.ContextVar[CancelToken] = contextvars.ContextVar("probe_cancel_token", default=NEVER)


def current() -> CancelToken:
    """The token of the probe run on this thread (NEVER outside one)."""
    return _current.get()


@contextlib.contextmanager
def bound_to(token: CancelToken) -> Iterator[CancelToken]:
    """Bind ``token`` to this thread for the block: transport calls made in it honour the token."""
    reset = _current.set(token)
    try:
        yield token
    finally:
        _current.reset(reset)
