"""On-site inspection (Art. 24(1), 25 ¶1): the local scan on behalf of at least two named inspectors."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UserError
from agent.notice import NoticeError, check_file, settings_from
from agent.record import Entry, Inspector
from agent.scan import ScanResult, run_scan, select_probes
from agent.services.context import AgentContext, Judging, judging
from agent.services.scan import probe_settings, scan_exit_code
from agent.wire.contents import HostScope, InspectionContent, InspectionSummary, RefusalContent, RefusalSummary
from agent.wire.scan import InspectionDocument, InspectionInfo, InspectorRef

MIN_INSPECTORS = 2


@dataclass(frozen=True, slots=True)
class InspectRequest:
    inspectors: tuple[str, ...]  # "NAME:ID" as given
    notice: Path | None = None
    probes: tuple[str, ...] = ()
    profile: str | None = None
    waivers: str | None = None
    fail_on: str | None = None
    unit: str | None = None
    lead_time: str | None = None


@dataclass(frozen=True, slots=True)
class InspectOutcome:
    result: ScanResult
    inspectors: tuple[Inspector, ...]
    notice_id: str | None
    started: dt.datetime
    judging: Judging
    entry: Entry
    exit_code: int

    def document(self) -> InspectionDocument:
        return inspection_document(self.result, self.inspectors, self.notice_id, self.started)


def inspection_document(result: ScanResult, inspectors: tuple[Inspector, ...], notice_id: str | None,
                        started: dt.datetime) -> InspectionDocument:
    from agent.documents import scan_fields

    return InspectionDocument.model_validate({
        **scan_fields(result, False), "schema": "precaution.scan/v2",
        "inspection": InspectionInfo(on_site=True, notice=notice_id, started=started.isoformat(),
                                     inspectors=[InspectorRef(name=i.name, id=i.id) for i in inspectors])})


def check_inspectors(texts: tuple[str, ...] | list[str]) -> list[Inspector]:
    """Parse NAME:ID pairs; UserError unless at least two distinct identifications are given."""
    inspectors = [Inspector.parse(t) for t in texts]
    distinct = list({i.id: i for i in inspectors}.values())
    if len(distinct) < MIN_INSPECTORS:
        raise UserError(f"an on-site inspection needs at least {MIN_INSPECTORS} inspectors with distinct "
                        f"identification (Art. 25 ¶1); got {len(distinct)} "
                        "(give --inspector NAME:ID for each)")
    return distinct


def run(ctx: AgentContext, request: InspectRequest) -> InspectOutcome:
    try:
        inspectors = check_inspectors(request.inspectors)
    except UserError as exc:
        named = []
        for text in request.inspectors:
            try:
                named.append(Inspector.parse(text).to_doc())
            except UserError:
                continue
        ctx.recorder.write(RefusalContent(inspectors=named, tests=["on-site"],
                                          summary=RefusalSummary(code="inspectors", message=str(exc))))
        raise
    docs = [i.to_doc() for i in inspectors]
    notice_id = None
    if request.notice is not None:
        settings = settings_from(ctx.config, request.unit, request.lead_time)
        checked = check_file(request.notice, settings, require_ack=False, state=ctx.state)
        notice_id = checked.signed.notice.id
        if not checked.ok:
            first = checked.problems[0]
            ctx.recorder.write(RefusalContent(inspectors=docs, notice_id=notice_id, tests=["on-site"],
                                              summary=RefusalSummary(code=first.code, message=first.en)))
            raise NoticeError(first.code, f"notice {notice_id}: {first.en}")
    judged = judging(ctx, profile=request.profile, waivers=request.waivers, fail_on=request.fail_on)
    probes = select_probes(request.probes, settings=probe_settings(ctx))
    from probes.transport import LocalTransport

    started = dt.datetime.now(dt.UTC)
    result = run_scan(LocalTransport(), judged.profile, judged.waivers, probes)
    from agent.documents import severity_counts

    outcome_doc = inspection_document(result, tuple(inspectors), notice_id, started)
    entry = ctx.recorder.write(InspectionContent(
        inspectors=docs, notice_id=notice_id, scope=HostScope(host=result.host.hostname, on_site=True),
        tests=[p.id for p in probes], applied=judged.applied(ctx),
        summary=InspectionSummary(host=result.host.hostname, findings=severity_counts(result.counts()),
                                  probe_errors=len(result.probe_errors))), results=outcome_doc.to_json())
    return InspectOutcome(result, tuple(inspectors), notice_id, started, judged, entry, scan_exit_code(result, judged))
