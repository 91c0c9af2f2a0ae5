"""Self-contained HTML report (inline CSS, no scripts, prints cleanly), both languages side by side."""

from __future__ import annotations

from importlib import resources

import jinja2

from agent.i18n import t
from agent.scan import ScanResult
from baselines.model import Severity


def render_html(result: ScanResult, lang: str = "en") -> str:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files("agent").joinpath("templates", name).read_text(
            encoding="utf-8")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("report.html.j2")
    severities = sorted(Severity, key=lambda s: -s.rank)
    return template.render(
        r=result, lang=lang, t=lambda key: t(key, lang), t_en=lambda key: t(key, "en"),
        t_zh=lambda key: t(key, "zh-CN"), severities=severities, counts=result.counts(),
        took=(result.finished - result.started).total_seconds(),
    )
