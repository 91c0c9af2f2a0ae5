"""The probe contract: declare needs, gather raw data through a transport, parse it purely into rows."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

from probes.cancel import NEVER, CancelToken
from probes.observation import Observation, Row
from probes.transport import Transport

RowT = TypeVar("RowT", bound=Row)

# Raw data is what gather() read, JSON-serialisable so that it can be kept as a golden file next to the
# rows parse() must produce from it.
Raw = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a probe needs to give complete results. Missing root limits, missing everything else skips."""

    root: bool = False
    platforms: tuple[str, ...] = ("Linux",)
    binaries_any: tuple[str, ...] = ()  # at least one of these, else the probe falls back or is limited
    paths_any: tuple[str, ...] = ()  # at least one of these must exist, else the probe is skipped


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """What the agent hands a probe at construction: a directory for caches (local runs only) and the
    probe's own table from the agent config (``[probes.<id>]``), which the probe validates itself."""

    cache_dir: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class GatherContext:
    """Given to gather(): the transport, a place to note what could not be read, and the run's cancel token
    (transport calls honour it by themselves; a probe that loops long without one checks ``cancel.check()``)."""

    transport: Transport
    limitations: list[str] = field(default_factory=list)
    cancel: CancelToken = NEVER

    def limited(self, reason: str) -> None:
        if reason not in self.limitations:
            self.limitations.append(reason)


class Probe(Generic[RowT]):
    """One probe: ``id`` names it, ``gather`` reads, ``parse`` is pure and golden-file tested."""

    id: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[str] = "host"  # host | network | remote
    requires: ClassVar[Requirements] = Requirements()
    timeout: ClassVar[float] = 20.0

    @classmethod
    def configured(cls, settings: ProbeSettings) -> Self:
        """Build the probe from agent settings; probes with options or caches override this."""
        return cls()

    def gather(self, ctx: GatherContext) -> Raw:
        raise NotImplementedError

    @staticmethod
    def parse(raw: Raw) -> Sequence[RowT]:
        raise NotImplementedError

    def observe(self, ctx: GatherContext) -> list[Observation]:
        return [Observation.from_row(self.id, row) for row in self.parse(self.gather(ctx))]

    def unmet(self, transport: Transport, system: str | None = None) -> str | None:
        """Why this probe cannot run on the target at all (None when it can)."""
        req = self.requires
        system = system or platform.system()
        if req.platforms and system not in req.platforms:
            return f"needs {'/'.join(req.platforms)}"
        if req.paths_any and not any(transport.exists(p) for p in req.paths_any):
            return f"none of {', '.join(req.paths_any)} present"
        return None

    def missing_binaries(self, transport: Transport) -> str | None:
        """The limitation to note when none of ``requires.binaries_any`` is on the target (None: one is, or
        none is needed). The probe still runs: it falls back to files, or reports what it could not see."""
        names = self.requires.binaries_any
        if not names or any(transport.which(n) for n in names):
            return None
        return f"none of {', '.join(names)} installed: results limited to what can be read without them"
