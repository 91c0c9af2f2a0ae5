from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from agent.runner import run_probes
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row
from probes.transport import LocalTransport


@dataclass(frozen=True, slots=True)
class Item(Row):
    name: str
    KEY: ClassVar[tuple[str, ...]] = ("name",)


class Good(Probe[Item]):
    id = "good"
    title = "good"

    def gather(self, ctx: GatherContext) -> Raw:
        return {"names": ["a", "b"]}

    @staticmethod
    def parse(raw: Raw) -> Sequence[Item]:
        return [Item(n) for n in raw["names"]]


class Broken(Good):
    id = "broken"

    def gather(self, ctx: GatherContext) -> Raw:
        raise RuntimeError("odd /proc entry")


class Limited(Good):
    id = "limited"

    def gather(self, ctx: GatherContext) -> Raw:
        ctx.limited("shadow not readable")
        return super().gather(ctx)


release = threading.Event()


class Slow(Good):
    id = "slow"
    timeout = 0.3

    def gather(self, ctx: GatherContext) -> Raw:
        release.wait(5)
        return super().gather(ctx)


class Elsewhere(Good):
    id = "elsewhere"
    requires = Requirements(paths_any=("/nonexistent/precaution-test",))


def test_one_probe_failing_never_aborts_the_run():
    runs = run_probes([Good(), Broken(), Limited(), Elsewhere()], LocalTransport())
    by_id = {r.probe: r for r in runs}
    assert [r.probe for r in runs] == ["good", "broken", "limited", "elsewhere"]
    assert by_id["good"].status == "ok" and [o.subject for o in by_id["good"].observations] == ["a", "b"]
    assert by_id["broken"].status == "error" and by_id["broken"].message == "RuntimeError: odd /proc entry"
    assert by_id["limited"].status == "limited" and by_id["limited"].limitations == ["shadow not readable"]
    assert by_id["limited"].ran and not by_id["broken"].ran
    assert by_id["elsewhere"].status == "skipped" and "none of" in (by_id["elsewhere"].message or "")


def test_a_probe_that_hangs_is_reported_as_timeout():
    seen: list[str] = []
    try:
        runs = run_probes([Slow(), Good()], LocalTransport(), progress=lambda r: seen.append(r.probe))
    finally:
        release.set()
    assert {r.probe: r.status for r in runs} == {"slow": "timeout", "good": "ok"}
    assert sorted(seen) == ["good", "slow"]


def test_root_requirement_limits_when_not_root():
    class NeedsRoot(Good):
        id = "needsroot"
        requires = Requirements(root=True)

    [run] = run_probes([NeedsRoot()], LocalTransport(euid=1000))
    assert run.status == "limited" and "not root" in run.limitations[0]


class NeedsMissingTool(Good):
    id = "needs_missing_tool"
    requires = Requirements(binaries_any=("precaution-no-such-tool", "precaution-nor-this"))


class NeedsShell(Good):
    id = "needs_shell"
    requires = Requirements(binaries_any=("precaution-no-such-tool", "sh"))


def test_binaries_any_is_checked():
    runs = {r.probe: r for r in run_probes([NeedsMissingTool(), NeedsShell()], LocalTransport())}
    missing = runs["needs_missing_tool"]
    assert missing.status == "limited" and missing.observations  # it still ran, and says what it lacked
    assert missing.limitations == ["none of precaution-no-such-tool, precaution-nor-this installed: "
                                   "results limited to what can be read without them"]
    assert runs["needs_shell"].status == "ok" and runs["needs_shell"].limitations == []
