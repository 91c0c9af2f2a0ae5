"""Policy profiles: YAML rules over observations, validated at load with file, line and reason."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from baselines.conditions import ConditionError, Predicate, compile_condition
from baselines.input_file import InputFileError, read_input_text
from baselines.model import ActionKind, Remediation, Severity, Text
from probes.observation import AttrValue, Observation

Change = Literal["added", "removed", "changed"]
CHANGES: tuple[Change, ...] = ("added", "removed", "changed")
RULE_ID = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$"


# libyaml's loader when PyYAML was built with it: 5x faster on the default profile (0.45 s -> 0.09 s)
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ProfileError(Exception):
    """A profile that cannot be used; the message names file, line and reason for every problem."""

    def __init__(self, message: str, zh: str | None = None) -> None:
        super().__init__(message)
        self.zh = zh


# What a profile may contain. The default profile is 130 KB, 6k YAML nodes, 8 levels deep; the limits leave
# room for far larger ones while refusing a document that expands (through YAML aliases) or nests without
# bound: a 716-byte profile of nested aliases would otherwise take minutes and gigabytes to compile.
MAX_PROFILE_BYTES = 4 * 1024 * 1024
MAX_PROFILE_NODES = 200_000  # YAML nodes with every alias expanded
MAX_PROFILE_DEPTH = 48  # nesting of mappings and sequences


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    id: str = Field(pattern=RULE_ID)
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


class DriftRuleSpec(_Strict):
    """How to judge one kind of baseline drift; the first matching rule of the ``drift:`` list wins."""

    id: str = Field(pattern=RULE_ID)
    probe: list[str] = Field(default_factory=lambda: ["*"], min_length=1)  # probe ids, or "*" for any
    change: list[Change] | None = None  # None: any change
    subject: str | None = None  # glob over the subject
    attrs_any: list[str] | None = None  # changed items only: at least one of these attributes changed
    attrs_only: list[str] | None = Field(default=None, min_length=1)  # changed items only: nothing else changed
    where: dict[str, Any] | None = None  # over the new observation (the old one for removed items)
    where_old: dict[str, Any] | None = None  # changed items only: over the old observation
    group_by: str | None = None  # one finding per value of this attribute (e.g. package)
    severity: Severity
    title: TextSpec
    rationale: TextSpec | None = None
    remediation: RemediationSpec
    references: list[str] = Field(default_factory=list)

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return Severity.parse(value) if isinstance(value, str) else value

    @field_validator("change", "probe", mode="before")
    @classmethod
    def _one_or_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class IgnoreSpec(_Strict):
    """Drift not to report, with the reason (like a Greenbone override): a whole subject or some attributes."""

    probe: str = Field(min_length=1)
    subject: str | None = None  # glob
    subject_regex: str | None = None
    change: list[Change] | None = None
    where: dict[str, Any] | None = None  # over the new observation (the old one for removed items)
    attributes: list[str] | None = Field(default=None, min_length=1)  # changed items: ignore only these
    attrs_only: list[str] | None = Field(default=None, min_length=1)  # changed items where nothing else changed
    reason: str = Field(min_length=3)

    @field_validator("change", mode="before")
    @classmethod
    def _change(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("subject_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regular expression: {exc}") from None
        return value


class ProfileMeta(_Strict):
    id: str
    title: TextSpec
    version: int = 1


class ProfileDoc(_Strict):
    profile: ProfileMeta
    drift: list[DriftRuleSpec] = Field(default_factory=list)  # baseline drift judgement (docs/baselines.md)
    ignore: list[IgnoreSpec] = Field(default_factory=list)  # drift not to report, each with a reason
    rules: list[RuleSpec]

    @model_validator(mode="after")
    def _unique(self) -> ProfileDoc:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id}")
            seen.add(rule.id)
        drift_seen: set[str] = set()
        for drift in self.drift:
            if drift.id in drift_seen:
                raise ValueError(f"duplicate drift rule id {drift.id}")
            drift_seen.add(drift.id)
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
class DriftRule:
    id: str
    probes: frozenset[str]  # contains "*": any probe
    changes: frozenset[str]  # empty: any change
    subject: str | None
    attrs_any: frozenset[str]
    where: Predicate | None
    where_old: Predicate | None
    group_by: str | None
    severity: Severity
    title: Text
    rationale: Text
    remediation: Remediation
    references: tuple[str, ...]
    attrs_only: frozenset[str] = frozenset()  # non-empty: changed items whose changes are all among these

    def matches(self, change: str, probe: str, subject: str, old: Observation | None, new: Observation | None,
                changed_attrs: frozenset[str] = frozenset()) -> bool:
        if probe not in self.probes and "*" not in self.probes:
            return False
        if self.changes and change not in self.changes:
            return False
        if self.subject is not None and not fnmatch.fnmatchcase(subject, self.subject):
            return False
        if self.attrs_any and not (change == "changed" and self.attrs_any & changed_attrs):
            return False
        if self.attrs_only and not (change == "changed" and changed_attrs and changed_attrs <= self.attrs_only):
            return False
        if self.where is not None:
            target = old if change == "removed" else new
            if target is None or not self.where(target):
                return False
        return self.where_old is None or (change == "changed" and old is not None and self.where_old(old))


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    probe: str
    subject: str | None
    subject_regex: re.Pattern[str] | None
    changes: frozenset[str]  # empty: any change
    attributes: frozenset[str] | None  # None: the whole item
    reason: str
    where: Predicate | None = None
    attrs_only: frozenset[str] | None = None  # a changed item whose changes are all among these, whole

    def covers(self, change: str, probe: str, subject: str, attrs: Mapping[str, AttrValue] | None = None) -> bool:
        """``attrs``: the new observation's attributes (the old one's for removed items)."""
        if self.probe != "*" and self.probe != probe:
            return False
        if self.changes and change not in self.changes:
            return False
        if self.subject is not None and not fnmatch.fnmatchcase(subject, self.subject):
            return False
        if self.subject_regex is not None and not self.subject_regex.search(subject):
            return False
        return self.where is None or (attrs is not None and self.where(Observation(probe, subject, attrs)))


DEFAULT_DRIFT_RULE = DriftRule(
    id="PC-DRIFT-000",
    probes=frozenset({"*"}),
    changes=frozenset(),
    subject=None,
    attrs_any=frozenset(),
    where=None,
    where_old=None,
    group_by=None,
    severity=Severity.MEDIUM,
    title=Text("Difference from the accepted baseline", "与已确认基线不一致"),
    rationale=Text("The host no longer matches the state that was captured and accepted as known-good.",
                   "主机状态与已采集并确认的可信基线不一致。"),
    remediation=Remediation(ActionKind.INVESTIGATE,
                            Text("Find out who made the change to {probe} {subject} and why; accept it into the "
                                 "baseline if it was authorised, else revert it.",
                                 "核实 {probe} {subject} 的变更由谁、因何作出；经授权的变更纳入基线，否则予以恢复。")),
    references=("Art. 9(9)", "Art. 23"),
)


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    title: Text
    version: int
    rules: tuple[Rule, ...]
    source: str
    drift: tuple[DriftRule, ...] = ()
    ignore: tuple[IgnoreRule, ...] = ()


def default_profile_path() -> Path:
    return Path(str(resources.files("baselines") / "profiles" / "default.yaml"))


def load_profile(path: str | Path | None = None) -> Profile:
    path = Path(path) if path else default_profile_path()
    try:
        text = read_input_text(path, "profile", MAX_PROFILE_BYTES)
    except InputFileError as exc:
        raise ProfileError(exc.message, exc.zh) from None
    return parse_profile(text, str(path))


def check_bounds(text: str, source: str = "<profile>") -> None:
    """Refuse a profile that is too large, too deep or expands to too many nodes, before it is loaded.

    One pass over the YAML event stream (iterative, so no recursion limit): the expanded size and depth of
    every anchored node are remembered, so an alias costs what it would expand to."""
    if len(text) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{source}: profile refused: larger than {MAX_PROFILE_BYTES // 1024} KiB",
                           f"{source}：检查策略被拒绝：超过 {MAX_PROFILE_BYTES // 1024} KiB")
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, depth)
    stack: list[list[Any]] = []  # [anchor, nodes, depth below]
    total = 0

    def refuse(event: yaml.Event, en: str, zh: str) -> ProfileError:
        line = event.start_mark.line + 1 if event.start_mark else 1
        return ProfileError(f"{source}:{line}: profile refused: {en}", f"{source}:{line}：检查策略被拒绝：{zh}")

    def add(nodes: int, depth: int, event: yaml.Event) -> None:
        nonlocal total
        total += nodes
        if total > MAX_PROFILE_NODES:
            raise refuse(event, f"it expands to more than {MAX_PROFILE_NODES} nodes (nested aliases?)",
                         f"展开后超过 {MAX_PROFILE_NODES} 个节点（是否嵌套引用别名？）")
        if len(stack) + depth > MAX_PROFILE_DEPTH:
            raise refuse(event, f"nested more than {MAX_PROFILE_DEPTH} levels deep",
                         f"嵌套超过 {MAX_PROFILE_DEPTH} 层")
        if stack:
            stack[-1][1] += nodes
            stack[-1][2] = max(stack[-1][2], depth)

    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                add(1, 1, event)
                stack.append([event.anchor, 0, 0])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                anchor, nodes, depth = stack.pop()
                if stack:
                    stack[-1][1] += nodes
                    stack[-1][2] = max(stack[-1][2], depth + 1)
                if anchor:
                    sizes[anchor] = (nodes + 1, depth + 1)
            elif isinstance(event, yaml.ScalarEvent):
                add(1, 0, event)
                if event.anchor:
                    sizes[event.anchor] = (1, 0)
            elif isinstance(event, yaml.AliasEvent):
                nodes, depth = sizes.get(event.anchor or "", (1, 0))
                add(nodes, depth, event)
    except yaml.YAMLError:
        return  # the loader names the syntax error with its line


def parse_profile(text: str, source: str = "<profile>") -> Profile:
    check_bounds(text, source)
    try:
        data = yaml.load(text, Loader=_LOADER)  # a safe loader (CSafeLoader or SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ProfileError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{source}:1: a profile is a mapping with 'profile' and 'rules'")
    # The node tree (for line numbers) is composed only when there is a problem to place: on the default
    # profile it costs as much as the load itself, on every scan.
    nodes = _Nodes(text)
    try:
        doc = ProfileDoc.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            err_loc = tuple(err["loc"])
            lines.append(f"{source}:{_line_of(nodes.root, err_loc)}: {_loc_text(data, err_loc)}: {err['msg']}")
        raise ProfileError("\n".join(lines)) from None
    rules: list[Rule] = []
    problems: list[str] = []
    for index, spec in enumerate(doc.rules):
        try:
            rules.append(_compile_rule(spec))
        except ConditionError as exc:
            mode = next(m for m in ("forbid", "expect", "require", "where") if getattr(spec, m) is not None)
            loc: tuple[str | int, ...] = ("rules", index, mode, *exc.path)
            problems.append(f"{source}:{_line_of(nodes.root, loc)}: rule {spec.id}: {exc.message}")
    drift: list[DriftRule] = []
    for index, dspec in enumerate(doc.drift):
        try:
            drift.append(_compile_drift(dspec))
        except ConditionError as exc:
            loc = ("drift", index, *exc.path)  # exc.path starts with "where" or "where_old"
            problems.append(f"{source}:{_line_of(nodes.root, loc)}: drift rule {dspec.id}: {exc.message}")
    if problems:
        raise ProfileError("\n".join(problems))
    ignore: list[IgnoreRule] = []
    for index, ispec in enumerate(doc.ignore):
        try:
            ignore.append(_compile_ignore(ispec))
        except ConditionError as exc:
            line = _line_of(nodes.root, ("ignore", index, *exc.path))
            problems.append(f"{source}:{line}: ignore rule: {exc.message}")
    if problems:
        raise ProfileError("\n".join(problems))
    meta = doc.profile
    return Profile(meta.id, meta.title.text(), meta.version, tuple(rules), source, tuple(drift), tuple(ignore))


class _Nodes:
    """The YAML node tree of a profile that parsed, composed on first use."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._root: yaml.Node | None = None

    @property
    def root(self) -> yaml.Node | None:
        if self._root is None:
            self._root = yaml.compose(self._text, Loader=_LOADER)
        return self._root


def _compile_drift(spec: DriftRuleSpec) -> DriftRule:
    rem = spec.remediation
    rationale = spec.rationale.text() if spec.rationale else DEFAULT_DRIFT_RULE.rationale
    return DriftRule(
        id=spec.id,
        probes=frozenset(spec.probe),
        changes=frozenset(spec.change or ()),
        subject=spec.subject,
        attrs_any=frozenset(spec.attrs_any or ()),
        where=compile_condition(spec.where, ("where",)) if spec.where else None,
        where_old=compile_condition(spec.where_old, ("where_old",)) if spec.where_old else None,
        group_by=spec.group_by,
        severity=spec.severity,
        title=spec.title.text(),
        rationale=rationale,
        remediation=Remediation(rem.action, Text(rem.en, rem.zh), rem.command),
        references=tuple(spec.references),
        attrs_only=frozenset(spec.attrs_only or ()),
    )


def _compile_ignore(spec: IgnoreSpec) -> IgnoreRule:
    return IgnoreRule(
        probe=spec.probe,
        subject=spec.subject,
        subject_regex=re.compile(spec.subject_regex) if spec.subject_regex else None,
        changes=frozenset(spec.change or ()),
        attributes=frozenset(spec.attributes) if spec.attributes else None,
        reason=spec.reason,
        where=compile_condition(spec.where, ("where",)) if spec.where else None,
        attrs_only=frozenset(spec.attrs_only) if spec.attrs_only else None,
    )


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
