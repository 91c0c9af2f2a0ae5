"""Terminal table of findings, grouped by severity (rich)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from agent import messages as msg
from agent.i18n import t
from agent.report.wrap import WrappedText
from agent.scan import ScanResult
from baselines.model import Severity
from probes.i18n import Duration, Joined

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def render_table(result: ScanResult, console: Console, lang: str = "en", heading: str = "title",
                 no_findings: str | None = None) -> None:
    """``heading`` is an i18n key: "title" (self-inspection), "title_netscan", "title_remote", "title_onsite".
    ``no_findings`` replaces "No findings: the host matches the profile" when that would not be true (a
    network test that reached nobody)."""
    host = result.host.hostname
    sep = "：" if lang == "zh-CN" else ": "
    console.print(f"[bold]{t(heading, lang)}[/bold]  {t('host', lang)}{sep}{host}  "
                  f"{t('profile', lang)}{sep}{result.profile_id}  {t('as_root', lang)}{sep}"
                  f"{t('yes' if result.as_root else 'no', lang)}")
    if no_findings is not None:
        console.print(f"[bold red]{no_findings}[/bold red]")
    elif not result.findings:
        console.print(f"[green]{t('no_findings', lang)}[/green]")
    for sev in sorted(Severity, key=lambda s: -s.rank):
        group = [f for f in result.findings if f.severity is sev]
        if not group:
            continue
        count = f"（{len(group)}）" if lang == "zh-CN" else f" ({len(group)})"
        table = Table(title=f"{t(sev.value, lang).upper()}{count}", title_style=SEVERITY_STYLE[sev],
                      show_lines=True, expand=True)
        table.add_column(t("rule", lang), no_wrap=True)
        # WrappedText breaks Chinese by display width; fold, never truncate: a command cut with "…" would be
        # wrong to copy
        table.add_column(t("finding", lang), ratio=3, overflow="fold")
        table.add_column(t("subject", lang), ratio=2, overflow="fold")
        table.add_column(t("remediation", lang), ratio=4, overflow="fold")
        for f in group:
            title = WrappedText(f.title.get(lang))
            if f.waived_by:
                title.append("\n" + msg.WAIVED_TAG(justification=f.waived_by).get(lang), style="dim")
            rem = WrappedText(msg.REMEDIATION_ACTION(action=t(f.remediation.action.value, lang)).get(lang),
                              style="bold")
            rem.append(f.remediation.steps.get(lang), style="")
            if f.remediation.command:
                rem.append(f"\n$ {f.remediation.command}", style="green")
            table.add_row(f.rule_id, title, WrappedText(f.subject or "-"), rem)
        console.print(table)
    console.print(Panel(Group(*summary_lines(result, lang)), title=t("summary", lang)))


def summary_lines(result: ScanResult, lang: str) -> list[WrappedText]:
    """The summary panel: counts, probes and time taken, notes, limitations, probe errors, expired waivers."""
    notes: list[str] = [msg.NOTE_LINE(text=n).get(lang) for n in result.notes]
    limited = [r for r in result.probes if r.status == "limited"]
    if limited:
        notes.append(t("limited", lang))
        notes += [msg.LIMITED_LINE(probe=r.probe, reasons=Joined(r.limitations, "; ", "；")).get(lang)
                  for r in limited]
    if result.probe_errors:
        notes.append(t("probe_errors", lang))
        notes += [msg.PROBE_ERROR_LINE(probe=r.probe, status=msg.STATUS[r.status](),
                                       message=r.message or "-").get(lang) for r in result.probe_errors]
    if result.expired_waivers:
        notes.append(t("expired_waivers", lang))
        notes += [msg.EXPIRED_WAIVER_LINE(target=w.rule or w.finding or "", subject=w.subject or "",
                                          date=w.expires.isoformat()).get(lang) for w in result.expired_waivers]
    counts = result.counts()
    summary = Joined([msg.COUNT_LINE(label=t(s.value, lang), count=counts[s.value])
                      for s in sorted(Severity, key=lambda s: -s.rank)], "  ", "  ")
    ran = sum(1 for r in result.probes if r.ran)
    took = Duration((result.finished - result.started).total_seconds())
    body = [WrappedText(msg.FINDINGS_LINE(label=t("findings", lang), summary=summary).get(lang)),
            WrappedText(msg.COUNT_LINE(label=t("probes", lang),
                                       count=msg.PROBES_RAN(ran=ran, total=len(result.probes), took=took)).get(lang))]
    return body + [WrappedText(n) for n in notes]
