"""What a run's child process reports to the daemon on stdout (its results are already in the spool)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProbeTiming(BaseModel):
    model_config = ConfigDict(extra="forbid")

    probe: str
    status: str
    duration_s: float


class RunOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    run_id: str
    ok: bool
    started: float
    finished: float
    probes: list[ProbeTiming] = Field(default_factory=list)
    findings: dict[str, int] = Field(default_factory=dict)  # active findings by severity
    drift: dict[str, int] = Field(default_factory=dict)  # added / removed / changed
    spooled: bool = False
    spool_refused: str | None = None
    nice: int = 0
    ionice_class: int = 0
    peak_rss_bytes: int = 0  # of the run's process and the helpers it waited for
    error: str | None = None
    task_outcome: str | None = None  # completed | refused | failed, for collector tasks
