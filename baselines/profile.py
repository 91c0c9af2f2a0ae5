"""Policy profiles: YAML rules over observations, validated at load with file, line and reason."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from baselines.conditions import ConditionError, Predicate, compile_condition
from baselines.model import ActionKind, Remediation, Severity, Text


class ProfileError(Exception):
    """A profile that cannot be used; the message names file, line and reason for every problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TextSpec(_Strict):
    en: str = Field(min_length=1)
    zh: str = Field(alias="zh-CN", min_length=1)

    def text(self) -> Text:
        return Text(self.en, self.zh)


class RemediationSpec(_Strict):
    action: ActionKind
    en: str = Field(min_length=1)
    zh: str = Field(alias="zh-CN", min_length=1)
    command: str | None = None


class RuleSpec(_Strict):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
    title: TextSpec
    severity: Severity
    probe: str = Field(min_length=1)
    rationale: TextSpec
    remediation: RemediationSpec
    references: list[str] = Field(min_length=1)
    forbid: dict[str, Any] | None = None
    expect: dict[str, Any] | None = None
    where: dict[str, Any] | None = None
    subject: str | None = None
    require: dict[str, Any] | None = None
    missing: Literal["pass", "fail"] = "pass"

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return Severity.parse(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_mode(self) -> RuleSpec:
        modes = [m for m in ("forbid", "expect", "require") if getattr(self, m) is not None]
        if len(modes) != 1:
            raise ValueError("a rule needs exactly one of forbid, expect, require")
        if (self.where or self.subject) and self.expect is None:
            raise ValueError("'where' and 'subject' go with 'expect'")
        return self


class ProfileMeta(_Strict):
    id: str
    title: TextSpec
    version: int = 1


class ProfileDoc(_Strict):
    profile: ProfileMeta
    drift: list[dict[str, Any]] = Field(default_factory=list)  # baseline drift rules (baselines issue)
    ignore: list[dict[str, Any]] = Field(default_factory=list)  # drift ignore rules with a reason
    rules: list[RuleSpec]

    @model_validator(mode="after")
    def _unique(self) -> ProfileDoc:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id}")
            seen.add(rule.id)
        return self


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: Text
    severity: Severity
    probe: str
    mode: Literal["forbid", "expect", "require"]
    condition: Predicate
    selector: Predicate | None
    subject: str | None
    missing: Literal["pass", "fail"]
    rationale: Text
    remediation: Remediation
    references: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    title: Text
    version: int
    rules: tuple[Rule, ...]
    source: str


def default_profile_path() -> Path:
    return Path(str(resources.files("baselines") / "profiles" / "default.yaml"))


def load_profile(path: str | Path | None = None) -> Profile:
    path = Path(path) if path else default_profile_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror or exc}") from None
    return parse_profile(text, str(path))


def parse_profile(text: str, source: str = "<profile>") -> Profile:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ProfileError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{source}:1: a profile is a mapping with 'profile' and 'rules'")
    try:
        doc = ProfileDoc.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            err_loc = tuple(err["loc"])
            lines.append(f"{source}:{_line_of(root, err_loc)}: {_loc_text(data, err_loc)}: {err['msg']}")
        raise ProfileError("\n".join(lines)) from None
    rules: list[Rule] = []
    problems: list[str] = []
    for index, spec in enumerate(doc.rules):
        try:
            rules.append(_compile_rule(spec))
        except ConditionError as exc:
            mode = next(m for m in ("forbid", "expect", "require", "where") if getattr(spec, m) is not None)
            loc: tuple[str | int, ...] = ("rules", index, mode, *exc.path)
            problems.append(f"{source}:{_line_of(root, loc)}: rule {spec.id}: {exc.message}")
    if problems:
        raise ProfileError("\n".join(problems))
    meta = doc.profile
    return Profile(meta.id, meta.title.text(), meta.version, tuple(rules), source)


def _compile_rule(spec: RuleSpec) -> Rule:
    mode: Literal["forbid", "expect", "require"]
    if spec.forbid is not None:
        mode, cond = "forbid", compile_condition(spec.forbid)
    elif spec.expect is not None:
        mode, cond = "expect", compile_condition(spec.expect)
    else:
        mode, cond = "require", compile_condition(spec.require)
    selector = compile_condition(spec.where, ("where",)) if spec.where else None
    rem = spec.remediation
    return Rule(
        id=spec.id,
        title=spec.title.text(),
        severity=spec.severity,
        probe=spec.probe,
        mode=mode,
        condition=cond,
        selector=selector,
        subject=spec.subject,
        missing=spec.missing,
        rationale=spec.rationale.text(),
        remediation=Remediation(rem.action, Text(rem.en, rem.zh), rem.command),
        references=tuple(spec.references),
    )


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest YAML node along a pydantic/condition error location."""
    best = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for key_node, value_node in node.value:
                if key_node.value == part or (part == "zh" and key_node.value == "zh-CN"):
                    nxt = value_node
                    best = key_node.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            best = node.start_mark.line + 1
        else:
            break
        if node is None:
            break
    return best


def _loc_text(data: Any, loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    cur = data
    for part in loc:
        if isinstance(part, int) and isinstance(cur, list) and part < len(cur):
            cur = cur[part]
            rid = cur.get("id") if isinstance(cur, dict) else None
            parts.append(f"rule {rid}" if rid else f"[{part}]")
        else:
            parts.append(str(part))
            cur = cur.get(part) if isinstance(cur, dict) else None
    return ".".join(parts) or "profile"
