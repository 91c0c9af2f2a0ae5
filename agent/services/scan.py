"""The local self-inspection (Art. 9(9), 24(1)): host probes, profile, waivers, baseline drift, recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import UserError
from agent.runner import ProgressFn
from agent.scan import ScanResult, run_scan, select_probes
from agent.services.context import AgentContext, Judging, exit_code, judging
from probes.base import ProbeSettings

if TYPE_CHECKING:
    from agent.record import Entry
    from agent.wire.scan import ScanDocument


@dataclass(frozen=True, slots=True)
class ScanRequest:
    root: str = "/"  # a mounted file tree instead of /
    probes: tuple[str, ...] = ()  # only these (default: every host probe)
    profile: str | None = None  # overrides of the configured values (recorded as such)
    waivers: str | None = None
    fail_on: str | None = None
    full: bool = False  # re-hash every file (file integrity)
    compare_baseline: bool = True


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    result: ScanResult
    judging: Judging
    entry: Entry  # the record entry written for it
    exit_code: int  # 0 clean, 1 findings at or above fail_on, 2 a probe failed

    def document(self, include_observations: bool = False) -> ScanDocument:
        from agent.documents import scan_document

        return scan_document(self.result, include_observations)


def probe_settings(ctx: AgentContext, full: bool = False) -> ProbeSettings:
    """The [probes.*] tables of the config, with --full switched on for file integrity."""
    options = dict(ctx.config.probes)
    if full:
        options["files"] = {**options.get("files", {}), "full": True}
    return ProbeSettings(cache_dir=ctx.state.cache, options=options)


def scan_exit_code(result: ScanResult, judged: Judging) -> int:
    worst = result.worst()
    return exit_code(len(result.probe_errors), worst.rank if worst else None, judged.fail_on)


def run(ctx: AgentContext, request: ScanRequest, progress: ProgressFn | None = None) -> ScanOutcome:
    """Check every input, scan, record the scan, return the result (nothing printed)."""
    from agent.baseline_files import BaselineFiles, host_scope
    from probes.transport import LocalTransport

    judged = judging(ctx, profile=request.profile, waivers=request.waivers, fail_on=request.fail_on)
    if not Path(request.root).is_dir():
        raise UserError(f"--root {request.root}: not a directory")
    probes = select_probes(request.probes, settings=probe_settings(ctx, request.full))
    transport = LocalTransport(root=request.root)
    result = run_scan(transport, judged.profile, judged.waivers, probes, progress=progress,
                      baselines=BaselineFiles(ctx.state) if request.compare_baseline else None,
                      scope=host_scope(request.root))
    overrides = dict(judged.overrides)
    if request.root != "/":
        overrides["root"] = request.root
    if request.probes:
        overrides["probe"] = ",".join(request.probes)
    if request.full:
        overrides["full"] = "true"
    if not request.compare_baseline:
        overrides["no_baseline"] = "true"
    # The wire models load after the probes ran: their memory reuses what the probes freed (scan RSS budget).
    from agent.documents import scan_document, severity_counts
    from agent.wire.contents import HostScope, ScanContent, ScanSummaryDoc

    content = ScanContent(
        scope=HostScope(host=result.host.hostname, root=request.root), tests=[r.probe for r in result.probes],
        summary=ScanSummaryDoc(findings=severity_counts(result.counts()), probe_errors=len(result.probe_errors),
                               baseline=result.baseline.status if result.baseline else None),
        applied=Judging(judged.profile, judged.waivers, judged.fail_on, overrides).applied(ctx))
    entry = ctx.recorder.write(content, results=scan_document(result).to_json())
    return ScanOutcome(result, judged, entry, scan_exit_code(result, judged))
