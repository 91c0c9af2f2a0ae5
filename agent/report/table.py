"""Terminal table of findings, grouped by severity (rich)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text as RichText

from agent.i18n import t
from agent.scan import ScanResult
from baselines.model import Severity

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
    console.print(f"[bold]{t(heading, lang)}[/bold]  {t('host', lang)}: {host}  "
                  f"{t('profile', lang)}: {result.profile_id}  {t('as_root', lang)}: "
                  f"{t('yes' if result.as_root else 'no', lang)}")
    if no_findings is not None:
        console.print(f"[bold red]{no_findings}[/bold red]")
    elif not result.findings:
        console.print(f"[green]{t('no_findings', lang)}[/green]")
    for sev in sorted(Severity, key=lambda s: -s.rank):
        group = [f for f in result.findings if f.severity is sev]
        if not group:
            continue
        table = Table(title=f"{t(sev.value, lang).upper()} ({len(group)})", title_style=SEVERITY_STYLE[sev],
                      show_lines=True, expand=True)
        table.add_column(t("rule", lang), no_wrap=True)
        table.add_column(t("finding", lang), ratio=3)
        table.add_column(t("subject", lang), ratio=2, overflow="fold")
        # fold, never truncate: a command cut with "…" would be wrong to copy
        table.add_column(t("remediation", lang), ratio=4, overflow="fold")
        for f in group:
            title = RichText(f.title.get(lang))
            if f.waived_by:
                title.append(f"\n[{t('waived', lang)}: {f.waived_by}]", style="dim")
            rem = RichText(f"{t(f.remediation.action.value, lang)}: ", style="bold")
            rem.append(f.remediation.steps.get(lang), style="")
            if f.remediation.command:
                rem.append(f"\n$ {f.remediation.command}", style="green")
            table.add_row(f.rule_id, title, f.subject or "-", rem)
        console.print(table)
    notes: list[str] = [f"{t('note', lang)}: {n}" for n in result.notes]
    limited = [r for r in result.probes if r.status == "limited"]
    if limited:
        notes.append(t("limited", lang))
        notes += [f"  {r.probe}: {'; '.join(r.limitations)}" for r in limited]
    if result.probe_errors:
        notes.append(t("probe_errors", lang))
        notes += [f"  {r.probe} ({r.status}): {r.message}" for r in result.probe_errors]
    if result.expired_waivers:
        notes.append(t("expired_waivers", lang))
        notes += [f"  {w.rule or w.finding} {w.subject or ''} expired {w.expires}" for w in result.expired_waivers]
    counts = result.counts()
    summary = "  ".join(f"{t(s.value, lang)}: {counts[s.value]}" for s in sorted(Severity, key=lambda s: -s.rank))
    ran = sum(1 for r in result.probes if r.ran)
    took = (result.finished - result.started).total_seconds()
    body = [RichText(f"{t('findings', lang)}: {summary}"),
            RichText(f"{t('probes', lang)}: {ran}/{len(result.probes)}  {took:.2f} s")]
    body += [RichText(n) for n in notes]
    console.print(Panel(Group(*body), title=t("summary", lang)))
