"""Self-contained HTML report (inline CSS, no scripts, prints cleanly), both languages side by side."""

from __future__ import annotations

from importlib import resources

import jinja2

from agent import messages as msg
from agent.i18n import t
from agent.scan import ScanResult
from baselines.model import Severity
from probes.i18n import Duration, LocalTime


def render_html(result: ScanResult, lang: str = "en") -> str:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files("agent").joinpath("templates", name).read_text(
            encoding="utf-8")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("report.html.j2")
    severities = sorted(Severity, key=lambda s: -s.rank)
    baseline = result.baseline
    return template.render(
        r=result, lang=lang, t=lambda key: t(key, lang), t_en=lambda key: t(key, "en"),
        t_zh=lambda key: t(key, "zh-CN"), tr=lambda text: text.get(lang), severities=severities,
        counts=result.counts(),
        finished=msg.TIME_TAKEN(time=LocalTime(result.finished),
                                took=Duration((result.finished - result.started).total_seconds())),
        local=lambda when: LocalTime(when).get(lang), subject_meta=msg.SUBJECT_META, duration=Duration,
        status={k: v() for k, v in msg.STATUS.items()},
        baseline_status=msg.BASELINE_STATUS[baseline.status]() if baseline else None,
        baseline_version=msg.BASELINE_VERSION(version=baseline.version, by=baseline.accepted_by or "-")
        if baseline else None,
    )
