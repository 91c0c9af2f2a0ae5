from __future__ import annotations

import json
import random
from pathlib import Path

from agent.daemon.scheduler import KindState, Plan, Scheduler, latest_slot, next_due

HOUR = 3600.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: FakeClock, seed: int = 1, **plans: Plan) -> Scheduler:
    return Scheduler(plans or {"self_inspection": Plan(HOUR, 0.1)}, tmp_path / "scheduler.json", clock,
                     rng=random.Random(seed))


def test_first_run_is_immediate_then_on_splayed_slots(tmp_path: Path) -> None:
    clock = FakeClock(1_000_000.0)
    sched = make(tmp_path, clock)
    assert sched.due() == ["self_inspection"]
    sched.started("self_inspection")
    sched.finished("self_inspection", ok=True)
    assert sched.due() == []
    u = sched.states["self_inspection"].u
    offset = 0.1 * HOUR * u
    wait = sched.seconds_until_next()
    clock.now += wait
    assert (clock.now - offset) % HOUR < 1e-6 or HOUR - (clock.now - offset) % HOUR < 1e-6
    assert sched.due() == ["self_inspection"]
    clock.now -= 1
    assert sched.due() == []


def test_splay_is_kept_across_restarts(tmp_path: Path) -> None:
    clock = FakeClock(5_000_000.0)
    first = make(tmp_path, clock, seed=1).states["self_inspection"].u
    again = make(tmp_path, clock, seed=999).states["self_inspection"].u  # another draw would differ
    assert first == again
    assert json.loads((tmp_path / "scheduler.json").read_text())["self_inspection"]["u"] == first
    assert (tmp_path / "scheduler.json").stat().st_mode & 0o777 == 0o600


def test_splay_spreads_a_fleet(tmp_path: Path) -> None:
    draws = {Scheduler({"k": Plan(HOUR, 0.1)}, tmp_path / f"s{i}.json", FakeClock(0.0),
                       rng=random.Random(i)).states["k"].u for i in range(20)}
    assert len(draws) == 20 and all(0.0 <= u < 1.0 for u in draws)


def test_missed_schedule_runs_once_not_n_times(tmp_path: Path) -> None:
    clock = FakeClock(10_000_000.0)
    sched = make(tmp_path, clock)
    sched.started("self_inspection")
    sched.finished("self_inspection", ok=True)
    clock.now += 30 * HOUR  # the agent was down for 30 slots
    restarted = make(tmp_path, clock)
    runs = 0
    for _ in range(100):  # the loop polls many times within the same minute
        for kind in restarted.due():
            runs += 1
            restarted.started(kind)
            restarted.finished(kind, ok=True)
        clock.now += 0.5
    assert runs == 1


def test_one_run_at_a_time_per_kind(tmp_path: Path) -> None:
    clock = FakeClock(20_000_000.0)
    sched = make(tmp_path, clock, self_inspection=Plan(HOUR, 0.0), file_integrity=Plan(HOUR, 0.0))
    assert sorted(sched.due()) == ["file_integrity", "self_inspection"]
    sched.started("self_inspection")
    sched.started("file_integrity")
    sched.finished("file_integrity", ok=True)
    clock.now += 2.5 * HOUR  # self-inspection is stuck for two slots
    assert sched.due() == ["file_integrity"]
    assert sched.due() == ["file_integrity"]  # asking again does not count the same slot twice
    assert sched.states["self_inspection"].skipped == 1
    sched.finished("self_inspection", ok=False)
    assert "self_inspection" in sched.due()  # then it runs once
    assert sched.states["self_inspection"].last_ok is None


def test_next_due_pure() -> None:
    plan = Plan(100.0, 0.5)
    state = KindState(u=0.5, last_started=None)
    assert next_due(plan, state, 1000.0) == 1000.0
    assert latest_slot(plan, 0.5, 1000.0) == 925.0
    state.last_started, state.last_finished = 930.0, 931.0
    assert next_due(plan, state, 1000.0) == 1025.0
    state.last_started, state.last_finished = 900.0, 901.0
    assert next_due(plan, state, 1000.0) == 925.0
    state.last_started, state.last_finished = 990.0, 901.0  # started, never finished
    assert next_due(plan, state, 1000.0) == 1000.0


def test_interrupted_run_runs_again_once(tmp_path: Path) -> None:
    clock = FakeClock(30_000_000.0)
    sched = make(tmp_path, clock)
    sched.started("self_inspection")  # then the agent is killed
    clock.now += 60
    restarted = make(tmp_path, clock)
    assert restarted.due() == ["self_inspection"]
    restarted.started("self_inspection")
    assert restarted.due() == []  # running: not started twice, and no slot was skipped
    assert restarted.states["self_inspection"].skipped == 0
    restarted.finished("self_inspection", ok=True)
    assert restarted.due() == []


def test_unreadable_state_starts_fresh(tmp_path: Path) -> None:
    (tmp_path / "scheduler.json").write_text("{not json")
    sched = make(tmp_path, FakeClock(0.0))
    assert sched.due() == ["self_inspection"]
