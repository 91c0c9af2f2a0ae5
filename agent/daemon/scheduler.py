"""When each kind of periodic run is due: fixed slots with a random splay that is chosen once and kept.

Slots of a kind are ``k * interval + offset`` (epoch seconds), ``offset = splay_fraction * interval *
u`` where ``u`` in [0, 1) is drawn once per kind and stored in ``scheduler.json``: a restart keeps the agent
on the same slots, so a fleet stays spread out (osquery draws its splay afresh each start). A run is due when
the latest slot at or before now is later than the last start, so a schedule missed during downtime runs once,
not once per missed slot. A kind already running is never started twice; the slot is counted as skipped.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.state import atomic_write

log = logging.getLogger(__name__)

STATE_FILE = "scheduler.json"


@dataclass(slots=True)
class KindState:
    u: float  # the splay draw in [0, 1), kept across restarts
    last_started: float | None = None
    last_finished: float | None = None
    last_ok: float | None = None
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    interval: float
    splay: float  # fraction of the interval


def latest_slot(plan: Plan, u: float, now: float) -> float:
    offset = plan.splay * plan.interval * u
    return math.floor((now - offset) / plan.interval) * plan.interval + offset


def next_due(plan: Plan, state: KindState, now: float) -> float:
    """The time the next run of this kind should start (``<= now`` means now)."""
    if state.last_started is None:
        return now  # never ran here: inspect at once rather than leave a new host unchecked for a day
    if state.last_finished is None or state.last_finished < state.last_started:
        return now  # interrupted (agent stopped or killed mid-run): run it again, once
    slot = latest_slot(plan, state.u, now)
    return slot if state.last_started < slot else slot + plan.interval


@dataclass(slots=True)
class Scheduler:
    plans: Mapping[str, Plan]
    path: Path
    clock: Callable[[], float]
    rng: random.Random = field(default_factory=random.SystemRandom)
    states: dict[str, KindState] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    skipped_slots: set[str] = field(default_factory=set)
    on_skip: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        self.states = self._load()
        changed = False
        for kind in self.plans:
            if kind not in self.states:
                self.states[kind] = KindState(u=self.rng.random())
                changed = True
        if changed:
            self.save()

    def _load(self) -> dict[str, KindState]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {kind: KindState(**value) for kind, value in raw.items()
                    if isinstance(value, dict) and 0.0 <= float(value.get("u", -1)) < 1.0}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError) as exc:
            log.warning("scheduler state %s unreadable (%s): starting fresh", self.path, exc)
            return {}

    def save(self) -> None:
        data = json.dumps({k: asdict(v) for k, v in sorted(self.states.items())}, indent=1).encode()
        atomic_write(self.path, data)

    def due(self) -> list[str]:
        """Kinds to start now. A kind still running at its next slot is skipped (counted once), not queued."""
        now = self.clock()
        out = []
        for kind, plan in self.plans.items():
            state = self.states[kind]
            if kind in self.running:
                slot = latest_slot(plan, state.u, now)
                marker = f"{kind}:{slot}"
                if state.last_started is not None and slot > state.last_started and marker not in self.skipped_slots:
                    self.skipped_slots.add(marker)
                    state.skipped += 1
                    if self.on_skip is not None:
                        self.on_skip(kind)
                    log.warning("%s still running at its next slot: not started twice", kind)
                continue
            if next_due(plan, state, now) <= now:
                out.append(kind)
        return out

    def started(self, kind: str) -> None:
        self.running.add(kind)
        self.states[kind].last_started = self.clock()
        self.save()

    def finished(self, kind: str, ok: bool) -> None:
        self.running.discard(kind)
        state = self.states[kind]
        state.last_finished = self.clock()
        if ok:
            state.last_ok = state.last_finished
        self.save()

    def seconds_until_next(self) -> float:
        now = self.clock()
        waits = [next_due(plan, self.states[k], now) - now for k, plan in self.plans.items() if k not in self.running]
        return max(0.0, min(waits)) if waits else 60.0
