"""Waivers: accept a known deviation for a while, with a justification and who approved it (like InSpec
waivers).

An expired waiver stops applying by itself and is reported as expired. A waiver must name who approved it and
may not run further ahead than ``max_days`` (default one year, ``waiver_max_days`` in the agent config): a
waiver "until 2099" is a permanent silencing of a finding, which nobody reviews. Errors give file:line: reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from baselines import messages as msg
from baselines.input_file import InputFileError, read_input_text
from baselines.model import Finding

if TYPE_CHECKING:
    import yaml

DEFAULT_MAX_DAYS = 365


class WaiverError(Exception):
    def __init__(self, message: str, zh: str | None = None) -> None:
        super().__init__(message)
        self.zh = zh


class WaiverSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str | None = None
    finding: str | None = None
    subject: str | None = None  # glob over the finding subject
    justification: str = Field(min_length=3)
    expires: dt.date
    approved_by: str = Field(min_length=1)

    @field_validator("approved_by", "justification")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @model_validator(mode="after")
    def _target(self) -> WaiverSpec:
        if not (self.rule or self.finding):
            raise ValueError("a waiver names a rule or a finding id")
        return self


@dataclass(frozen=True, slots=True)
class WaiverOutcome:
    findings: tuple[Finding, ...]
    expired: tuple[WaiverSpec, ...]


def load_waivers(path: str | Path, max_days: int = DEFAULT_MAX_DAYS, today: dt.date | None = None) -> list[WaiverSpec]:
    """Every waiver of the file, or WaiverError listing each bad one as ``file:line: reason``."""
    path = Path(path)
    try:
        text = read_input_text(path, "waivers", 4 * 1024 * 1024)
    except InputFileError as exc:
        raise WaiverError(exc.message, exc.zh) from None
    import yaml  # here: the idle agent and `agent.config` (which reads DEFAULT_MAX_DAYS) stay without PyYAML

    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)
        data = yaml.load(text, Loader=loader) if root is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise WaiverError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
                          f"{where}：不是有效的 YAML") from None
    if not isinstance(data, dict) or set(data) - {"waivers"}:
        raise WaiverError(f"{path}:1: a waivers file is a mapping with a 'waivers:' list (and nothing else)",
                          f"{path}:1：豁免文件应为只含 'waivers:' 列表的映射")
    items = data.get("waivers") or []
    if not isinstance(items, list):
        raise WaiverError(f"{path}:{_line(root, ('waivers',))}: 'waivers' is a list",
                          f"{path}:{_line(root, ('waivers',))}：'waivers' 应为列表")
    today = today or dt.date.today()
    limit = today + dt.timedelta(days=max_days)
    out: list[WaiverSpec] = []
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        try:
            spec = WaiverSpec.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                at = f"{path}:{_line(root, ('waivers', index, *loc))}"
                field = ".".join(map(str, loc)) or "waiver"
                if err["type"] == "missing" and loc == ("approved_by",):
                    problems.append((f"{at}: waiver {index + 1}: approved_by is required (who approved this "
                                     "waiver)", f"{at}：第 {index + 1} 条豁免：必须填写 approved_by（审批人）"))
                else:
                    problems.append((f"{at}: waiver {index + 1}: {field}: {err['msg']}",
                                     f"{at}：第 {index + 1} 条豁免：{field}：{err['msg']}"))
            continue
        if spec.expires > limit:
            at = f"{path}:{_line(root, ('waivers', index, 'expires'))}"
            problems.append((f"{at}: waiver {index + 1}: expires {spec.expires}, more than {max_days} days ahead "
                             f"(latest allowed {limit}: review and renew waivers instead)",
                             f"{at}：第 {index + 1} 条豁免：到期日 {spec.expires} 超过 {max_days} 天"
                             f"（最晚 {limit}，请定期复核续期）"))
            continue
        out.append(spec)
    if problems:
        raise WaiverError("; ".join(en for en, _ in problems), "；".join(zh for _, zh in problems))
    return out


def _line(node: yaml.Node | None, loc: tuple[object, ...]) -> int:
    import yaml

    """The 1-based line of the deepest node along ``loc`` (mapping keys and list indexes)."""
    best = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    nxt, best = value_node, key_node.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
            best = nxt.start_mark.line + 1
        if nxt is None:
            break
        node = nxt
    return best


def apply_waivers(findings: Iterable[Finding], waivers: list[WaiverSpec], today: dt.date) -> WaiverOutcome:
    active = [w for w in waivers if w.expires >= today]
    expired = tuple(w for w in waivers if w.expires < today)
    out: list[Finding] = []
    for f in findings:
        waiver = next((w for w in active if _matches(w, f)), None)
        out.append(dataclasses.replace(f, waived_by=msg.WAIVED(justification=waiver.justification,
                                                               until=waiver.expires.isoformat()))
                   if waiver else f)
    return WaiverOutcome(tuple(out), expired)


def _matches(w: WaiverSpec, f: Finding) -> bool:
    if w.finding and w.finding != f.id:
        return False
    if w.rule and w.rule != f.rule_id:
        return False
    return not (w.subject and not fnmatch.fnmatchcase(f.subject, w.subject))
