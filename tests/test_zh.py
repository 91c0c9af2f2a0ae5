"""With --lang zh-CN no English may remain in what a person reads.

Every message of the catalogue, every profile text, drift titles, notes, limitations, the table, the HTML report
and the human output of scan, baseline, notice, record and netscan (the real CLI, in subprocesses) are rendered
in Chinese and searched for English words (tests/zh_check.py: commands, paths, identifiers, rule ids and
protocol names are allowed; data such as subjects and host names is shown as it is).
"""

from __future__ import annotations

import datetime as dt
import html.parser
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from agent.report.wrap import line_breaks
from agent.runner import ProbeRun
from agent.scan import BaselineComparison, HostIdentity, ScanResult
from baselines.diff import AttrChange, DriftItem
from baselines.drift import drift_findings, integrity_finding
from baselines.model import ActionKind, Finding, Remediation, Severity, Text
from baselines.profile import DEFAULT_DRIFT_RULE, load_profile
from baselines.store import BaselineInvalid
from baselines.waivers import WaiverSpec, apply_waivers
from probes.i18n import CATALOGUE, Duration, LocalTime, Message
from probes.registry import all_probes
from tests.zh_check import data_words, english_words

PRECAUTION = str(Path(sys.executable).parent / "precaution")
CATALOGUES = ("probes.messages", "baselines.messages", "agent.messages", "agent.i18n",
              "agent.daemon.messages", "collector.api.dashboard.messages")
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
PROBE_IDS = {c.id for c in all_probes()} | {"discovery", "ports", "services", "link", "hosts", "baseline"}
TEST_KINDS = {"host", "discovery", "portscan", "service", "passive", "on-site"}  # identifiers, as probe ids


def assert_chinese(text: str, *allowed: Any, where: str = "") -> None:
    words = english_words(text, data_words(allowed) | PROBE_IDS | TEST_KINDS)
    assert not words, f"English in zh-CN {where}: {words}\n---\n{text}"


# --- the catalogue and the profile ---------------------------------------------------------------------------


def test_every_catalogue_message_is_chinese() -> None:
    for module in CATALOGUES:
        importlib.import_module(module)
    assert len(CATALOGUE) > 150
    for template in CATALOGUE.values():
        assert template.zh.strip(), template.id
        assert_chinese(template.zh, where=template.id)
        assert not set(re.findall(r"\{(\w+)", template.zh)) - set(re.findall(r"\{(\w+)", template.en)), template.id


def test_chinese_punctuation_after_chinese_text() -> None:
    """，。：；（） after a Chinese character, never the ASCII marks (a colon before a path or command is fine)."""
    for module in CATALOGUES:
        importlib.import_module(module)
    for template in CATALOGUE.values():
        bad = re.findall(r"[\u4e00-\u9fff][,;()]|[\u4e00-\u9fff]: ", template.zh)
        assert not bad, f"{template.id}: ASCII punctuation after Chinese: {bad} in {template.zh!r}"


def test_severity_and_profile_terms() -> None:
    from agent.i18n import t

    assert [t(s, "zh-CN") for s in ("critical", "high", "medium", "low", "info")] == ["严重", "高危", "中危", "低危",
                                                                                        "提示"]
    assert t("profile", "zh-CN") == "检查策略" and t("baseline", "zh-CN") == "基线"


def test_every_profile_text_is_chinese() -> None:
    profile = load_profile(None)
    assert "检查策略" in profile.title.zh
    rules = [*profile.rules, *profile.drift, DEFAULT_DRIFT_RULE]
    assert len(rules) > 100
    for rule in rules:
        for name, text in (("title", rule.title), ("rationale", rule.rationale), ("steps", rule.remediation.steps)):
            assert text.zh.strip(), f"{rule.id} {name}"
            assert_chinese(text.zh, where=f"{rule.id} {name}")


def test_every_probe_has_a_chinese_title() -> None:
    for cls in all_probes():
        if cls.kind == "host":
            assert cls.title_zh, cls.id
            assert_chinese(cls.title_zh, where=cls.id)


# --- drift, notes, limitations, waivers ------------------------------------------------------------------------


def _drift_items() -> list[DriftItem]:
    attrs = {"name": "svc", "uid": 998, "shell": "/bin/sh", "login_shell": True, "admin_groups": ()}
    return [
        DriftItem("added", "accounts", "svc", None, attrs),
        DriftItem("removed", "accounts", "old", {**attrs, "name": "old"}, None),
        DriftItem("changed", "files", "/etc/hosts", {"mode": "0644", "sha256": "0a1b" * 16},
                  {"mode": "0600", "sha256": "9f8e" * 16, "immutable": True},
                  (AttrChange("mode", "0644", "0600"), AttrChange("sha256", "0a1b" * 16, "9f8e" * 16),
                   AttrChange("immutable", None, True, old_present=False))),
        DriftItem("removed", "weird_probe", "thing", {"x": 1}, None),  # the catch-all rule
        DriftItem("added", "weird_probe", "other", None, {"x": 2}),
    ]


def test_drift_titles_and_remediations_are_chinese() -> None:
    profile = load_profile(None)
    from baselines.diff import Diff

    items = _drift_items()
    diff = Diff(added=tuple(i for i in items if i.change == "added"),
                removed=tuple(i for i in items if i.change == "removed"),
                changed=tuple(i for i in items if i.change == "changed"), probes=("accounts", "files", "weird_probe"))
    found = drift_findings(diff, profile.drift, "host1")
    assert {d.finding.rule_id for d in found} >= {"PC-DRIFT-999"}
    for d in found:
        f = d.finding
        # data is shown as it is: subjects, attribute names and their values
        data = [f.subject, "weird_probe", *(name for i in d.items for name in {**(i.old or {}), **(i.new or {})}),
                *(str(v) for i in d.items for v in {**(i.old or {}), **(i.new or {})}.values())]
        for text in (f.title.zh, f.remediation.steps.zh, *(i.summary("zh-CN") for i in d.items)):
            assert_chinese(text, *data, where=f.rule_id)
    catch_all = {d.finding.subject: d.finding for d in found if d.finding.rule_id == "PC-DRIFT-999"}
    assert catch_all["thing"].title.zh == "weird_probe thing：与已确认基线相比已删除"
    assert catch_all["thing"].title.en == "weird_probe thing: removed since the accepted baseline"
    changed = next(d for d in found if d.finding.subject == "/etc/hosts")
    assert "（无） → 是" in changed.items[0].summary("zh-CN") and "(absent) -> True" in changed.items[0].summary()


def test_integrity_finding_and_invalid_baseline_reasons() -> None:
    for reason in ("unsigned", "altered", "bad-signature", "foreign-key", "corrupt", "foreign-host", "wrong-scope",
                   "rolled-back", "unreadable", "old-format"):
        exc = BaselineInvalid(reason, f"some English detail about {reason}")  # type: ignore[arg-type]
        f = integrity_finding("h", "host/local", "/state/current.jsonl", exc.localized)
        for text in (f.title.zh, f.rationale.zh, f.remediation.steps.zh, exc.localized.zh):
            assert_chinese(text, where=reason)
        assert "some English detail" in f.remediation.steps.en and f.evidence["reason"] == exc.message


def test_waiver_tags_and_expired_waivers() -> None:
    finding = _finding("PC-X-1", Severity.HIGH)
    out = apply_waivers([finding], [WaiverSpec(rule="PC-X-1", justification="厂商设备，无法修改",
                                               expires=dt.date(2027, 1, 31), approved_by="张三")], dt.date(2026, 12, 1))
    waived = out.findings[0].waived_by
    assert waived is not None and waived.zh == "厂商设备，无法修改（有效期至 2027-01-31）"
    assert waived.en == "厂商设备，无法修改 (until 2027-01-31)"


# --- the table and the HTML report -----------------------------------------------------------------------------

LONG_TITLE = "未配置入站防火墙过滤：主机对所有来源开放全部端口，任何人都可以连接本机提供的每一项服务"


def _finding(rule: str, severity: Severity, title: str = LONG_TITLE, subject: str = "ruleset") -> Finding:
    return Finding(
        id=rule.lower(), rule_id=rule, host="host1", probe="firewall", subject=subject, severity=severity,
        title=Text("No inbound firewall filtering", title),
        rationale=Text("Every port is open.", "所有端口均对外开放。"),
        remediation=Remediation(ActionKind.RECONFIGURE, Text("Load a default-deny policy.", "加载默认拒绝的入站策略。"),
                                "nft add table inet filter"))


def _result() -> ScanResult:
    from agent import messages as msg
    from probes import messages as probe_msg

    started = dt.datetime(2026, 12, 1, 20, 0, 0, tzinfo=dt.UTC)
    waived = apply_waivers([_finding("PC-FW-002", Severity.MEDIUM, "SSH 允许密码登录")],
                           [WaiverSpec(rule="PC-FW-002", justification="跳板机，已另行加固",
                                       expires=dt.date(2027, 6, 1), approved_by="李四")], dt.date(2026, 12, 1)).findings
    probes = [
        ProbeRun("firewall", "Host firewall ruleset", "ok", 0.35, title_zh="主机防火墙规则"),
        ProbeRun("processes", "Running processes", "limited", 1.2, limitations=[
            probe_msg.PROCESSES_PARTLY_READABLE(count=3), probe_msg.NOT_ROOT()], title_zh="运行中的进程"),
        ProbeRun("usb", "USB devices", "skipped", 0.0, message=probe_msg.NO_PATHS(paths=["/sys/bus/usb"]),
                 title_zh="USB 设备"),
        ProbeRun("sshd", "OpenSSH server settings", "timeout", 20.0,
                 message=probe_msg.PROBE_TIMEOUT(limit=Duration(20)), title_zh="OpenSSH 服务端设置"),
    ]
    note = msg.NO_BASELINE(scope="host/local")
    return ScanResult(
        host=HostIdentity("host1", "m1"), transport="local", as_root=True, started=started,
        finished=started + dt.timedelta(seconds=5400), profile_id="default", probes=probes,
        findings=[_finding("PC-FW-001", Severity.HIGH), *waived,
                  _finding("PC-X-9", Severity.CRITICAL, "新增 uid 为 0 的账户")],
        expired_waivers=(WaiverSpec(rule="PC-OLD-1", subject="/tmp/x", justification="旧豁免",
                                    expires=dt.date(2026, 1, 1), approved_by="王五"),),
        notes=[note, msg.PROBES_NOT_COMPARED(probes=["usb", "sshd"])],
        baseline=BaselineComparison("host/local", "missing", note),
    )


def test_table_in_chinese_wraps_titles_instead_of_cutting_them() -> None:
    from agent.report.table import render_table

    console = Console(width=100, record=True, color_system=None)
    render_table(_result(), console, "zh-CN")
    out = console.export_text()
    assert "…" not in out  # nothing cut
    finding_column = "".join(line.split("│")[2].strip() for line in out.splitlines() if line.count("│") == 5)
    assert LONG_TITLE in finding_column  # wrapped over several lines, every character kept
    assert "【已豁免：跳板机，已另行加固（有效期至2027-06-01）】" in finding_column
    assert "高危（1）" in out and "严重（1）" in out
    assert "耗时 1 小时 30 分钟" in out and "说明：尚无 host/local 的基线" in out
    assert "processes：3 个进程无法完整读取" in out and "sshd（超时）：20 秒内未返回结果" in out
    assert "PC-OLD-1 /tmp/x 已于 2026-01-01 过期" in out
    assert_chinese(out, "host1", "default", "ruleset", "nft add table inet filter", where="table")


def test_line_breaks_by_display_width() -> None:
    text = "未配置入站防火墙过滤，主机对所有来源开放全部端口。"
    breaks = line_breaks(text, 10)
    lines = [text[a:b] for a, b in zip([0, *breaks], [*breaks, len(text)], strict=True)]
    assert all(sum(2 for _ in line) <= 10 for line in lines)
    assert not any(line[0] in "，。：；）" for line in lines)  # a closing mark never starts a line
    mixed = "在 /etc/nftables.conf 中持久化"
    pieces = [mixed[a:b] for a, b in zip([0, *line_breaks(mixed, 20)], [*line_breaks(mixed, 20), len(mixed)],
                                         strict=True)]
    assert any("/etc/nftables.conf" in p for p in pieces)  # a path is kept whole when it fits


class _ChineseText(html.parser.HTMLParser):
    """The text of an HTML page outside elements marked lang="en" (the English half of the bilingual report)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "meta", "link", "img"):
            return
        self.stack.append(dict(attrs).get("lang") == "en" or bool(self.stack and self.stack[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("br", "meta", "link", "img") and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1]) and not self._in_style:
            self.parts.append(data)

    _in_style = False

    def feed_page(self, page: str) -> str:
        self.feed(re.sub(r"<style>.*?</style>", "", page, flags=re.S))
        return " ".join(self.parts)


def test_html_report_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.report.html import render_html

    monkeypatch.setenv("TZ", "Asia/Shanghai")
    import time

    time.tzset()
    try:
        page = render_html(_result(), "zh-CN")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    text = _ChineseText().feed_page(page)
    assert "北京时间 2026-12-02 04:00:00" in text and "耗时 1 小时 30 分钟" in text
    assert "主机防火墙规则" in text and "受限" in text and "已跳过" in text and "超时" in text
    assert 'datetime="2026-12-01T20:00:00+00:00"' in page  # machine-readable UTC kept
    assert_chinese(text, "host1", "m1", "default", "ruleset", "nft add table inet filter", "firewall", "usb",
                   "/sys/bus/usb", "host/local", "Provisions", where="HTML")


# --- units -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "en", "zh"), [
    (10, "10 s", "10 秒"), (5400, "1 h 30 min", "1 小时 30 分钟"), (86400, "24 h", "24 小时"),
    (0.35, "350 ms", "350 毫秒"), (2.5, "2.5 s", "2.5 秒"), (90, "1 min 30 s", "1 分钟 30 秒"),
    (3 * 86400 + 3600, "3 d 1 h", "3 天 1 小时"),
])
def test_durations_in_readable_units(seconds: float, en: str, zh: str) -> None:
    assert Duration(seconds).get("en") == en and Duration(seconds).get("zh-CN") == zh


def test_times_in_the_hosts_zone_with_its_offset() -> None:
    moment = dt.datetime(2026, 12, 1, 20, 25, 14, tzinfo=dt.UTC)
    assert LocalTime(moment, SHANGHAI).get("zh-CN") == "北京时间 2026-12-02 04:25:14"
    assert LocalTime(moment, SHANGHAI).get("en") == "2026-12-02 04:25:14 UTC+08:00"
    tokyo = dt.timezone(dt.timedelta(hours=9))
    assert LocalTime(moment, tokyo).get("zh-CN") == "UTC+09:00 2026-12-02 05:25:14"
    assert LocalTime.from_iso("2026-12-01T20:25:14Z") == LocalTime(moment)


def test_lead_time_of_a_notice_reads_in_units() -> None:
    from agent import messages as msg

    late = msg.NOTICE_LATE(acked=LocalTime(dt.datetime(2026, 12, 1, tzinfo=dt.UTC), SHANGHAI), lead=Duration(10),
                           start=LocalTime(dt.datetime(2026, 12, 1, 0, 0, 5, tzinfo=dt.UTC), SHANGHAI))
    assert "提前通知期 10 秒" in late.zh and "lead time of 10 s" in late.en and "0.00277778" not in late.en


def test_notice_basis_in_chinese_article_numbers() -> None:
    from agent.notice import basis_text, chinese_number

    assert [chinese_number(n) for n in (9, 10, 11, 24, 25, 99)] == ["九", "十", "十一", "二十四", "二十五", "九十九"]
    basis = basis_text("Provisions 2021, Art. 24(3), 25")
    assert isinstance(basis, Message)
    assert basis.zh == "《反间谍安全防范工作规定》（2021）第二十四条第三项、第二十五条"
    assert basis.en == "Provisions 2021, Art. 24(3), 25"
    assert basis_text("依据某某文件") == "依据某某文件"  # worded by the issuer: shown as written


# --- the real CLI, in subprocesses ------------------------------------------------------------------------------


def cli(*args: str, home: Path, ok: tuple[int, ...] = (0,), cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRECAUTION_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1", "TZ": "Asia/Shanghai"}
    proc = subprocess.run([PRECAUTION, *args], capture_output=True, text=True, timeout=300, env=env, check=False,
                          cwd=cwd)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert proc.returncode in ok, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _fixture_root(tmp: Path) -> Path:
    root = tmp / "root"
    for path, text, mode in (("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n", 0o644),
                             ("etc/crontab", "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n", 0o644),
                             ("etc/ld.so.preload", "/usr/lib/libhide.so\n", 0o644),
                             ("etc/rc.local", "#!/bin/sh\n/usr/local/bin/agent &\nexit 0\n", 0o755)):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)
    return root


def _scan_data(path: Path) -> list[object]:
    """The data a scan reported (subjects, commands, evidence, observed values): shown as it is in any language."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    values: list[object] = [doc["host"]["hostname"], doc["profile"]]
    for f in doc["findings"]:
        values += [f["subject"], f["remediation"]["command"] or "", json.dumps(f["evidence"])]
    values += [json.dumps(o["attrs"]) for o in doc.get("observations") or []]
    return values


def test_cli_scan_and_baseline_in_chinese(tmp_path: Path) -> None:
    home, root = tmp_path / "state", _fixture_root(tmp_path)
    probes = ["--probe", "startup_files", "--probe", "cron", "--probe", "accounts"]
    out = tmp_path / "scan.json"
    scan = cli("scan", "--lang", "zh-CN", "--root", str(root), *probes, "--output", str(out), "--observations",
               home=home, ok=(1,))
    assert "严重（1）" in scan.stdout and "检查策略：default" in scan.stdout and "尚无 host" in scan.stdout
    data = _scan_data(out)
    assert_chinese(scan.stdout, *data, str(root), where="scan")

    captured = cli("baseline", "capture", "--lang", "zh-CN", "--root", str(root), *probes, home=home)
    assert "已采集基线" in captured.stdout
    (root / "etc/rc.local").write_text("#!/bin/sh\nexit 0\n")
    (root / "etc/cron.d").mkdir()
    (root / "etc/cron.d/job").write_text("* * * * * root /tmp/x\n")
    diff = cli("baseline", "diff", "--lang", "zh-CN", "--root", str(root), home=home, ok=(1,))
    assert "基线" in diff.stdout and "第 1 版" in diff.stdout and "北京时间" in diff.stdout
    rescan = tmp_path / "rescan.json"
    cli("scan", "--root", str(root), *probes, "--output", str(rescan), "--observations", home=home, ok=(1,))
    for proc in (captured, diff, cli("baseline", "show", "--lang", "zh-CN", "--root", str(root), home=home),
                 cli("baseline", "history", "--lang", "zh-CN", "--root", str(root), home=home)):
        assert_chinese(proc.stdout + proc.stderr, *data, *_scan_data(rescan), str(root), str(home), "host/local",
                       where="baseline")
    accepted = cli("baseline", "accept", "--all", "--lang", "zh-CN", "--root", str(root), home=home)
    assert "纳入基线" in accepted.stdout
    missing = cli("baseline", "diff", "--lang", "zh-CN", "--root", str(tmp_path), home=tmp_path / "other", ok=(2,))
    assert missing.stderr.startswith("precaution：错误：尚无 host/") and "请运行" in missing.stderr

    verify = cli("record", "verify", "--lang", "zh-CN", home=home)
    assert verify.stdout.startswith("检查检测记录完整：共 ")
    show = cli("record", "show", "--lang", "zh-CN", home=home)
    assert "自查" in show.stdout and "基线采集" in show.stdout and "基线确认" in show.stdout
    assert_chinese(show.stdout, "root", "vm", os.uname().nodename, *PROBE_IDS, where="record show")
    (home / "record.jsonl").write_text("")  # wiped: the head file still knows the entries
    broken = cli("record", "verify", "--lang", "zh-CN", home=home, ok=(2,))
    assert broken.stderr.startswith("precaution：检查检测记录已损坏：")
    assert_chinese(broken.stderr, where="record verify")


def test_cli_notice_and_refusals_in_chinese(tmp_path: Path) -> None:
    home = tmp_path / "state"
    key, notice = tmp_path / "issuer.key", tmp_path / "notice.json"
    keygen = cli("notice", "keygen", str(key), "--lang", "zh-CN", home=home)
    trust = cli("notice", "trust", "add", f"{key}.pub", "--name", "测试签发机关", "--lang", "zh-CN", home=home)
    issued = cli("notice", "issue", "--key", str(key), "--id", "N-ZH", "--issuer", "测试签发机关", "--unit", "本单位",
                 "--target", "10.231.250.0/28", "--kind", "portscan", "--kind", "discovery", "--start", "+25h",
                 "--end", "+26h", "--rate-pps", "100", "-o", str(notice), "--lang", "zh-CN", home=home)
    unacked = cli("notice", "verify", str(notice), "--unit", "本单位", "--lang", "zh-CN", home=home, ok=(2,))
    assert "依据：《反间谍安全防范工作规定》（2021）第二十四条第三项、第二十五条" in unacked.stdout
    assert "提前通知期：24 小时" in unacked.stdout and "北京时间" in unacked.stdout
    assert "签名来自可信签发机关：测试签发机关" in unacked.stdout and "尚未确认接收通知 N-ZH" in unacked.stderr
    ack = cli("notice", "ack", str(notice), "--unit", "本单位", "--lang", "zh-CN", home=home)
    valid = cli("notice", "verify", str(notice), "--unit", "本单位", "--lang", "zh-CN", home=home)
    assert "通知有效" in valid.stdout
    listed = cli("notice", "trust", "list", "--lang", "zh-CN", home=home)
    # No notice: refused before anything is sent (10.231.250.0/28 is a test range that no lab host uses).
    refused = cli("netscan", "10.231.250.1", "--ports", "22", "--scope", "10.231.250.0/28", "--lang", "zh-CN",
                  home=home, ok=(2,))
    assert "需要事先通知" in refused.stderr
    outside = cli("netscan", "10.231.251.1", "--notice", str(notice), "--ports", "22", "--lang", "zh-CN",
                  home=home, ok=(2,))
    assert outside.stderr.startswith("precaution：错误：")
    show = cli("record", "show", "--lang", "zh-CN", home=home)
    assert "拒绝执行" in show.stdout and "缺少事先通知" in show.stdout and "通知核验" in show.stdout
    for proc in (keygen, trust, issued, unacked, ack, valid, listed, refused, outside, show):
        assert_chinese(proc.stdout + proc.stderr, str(key), str(notice), str(home), "N-ZH", "root", "vm",
                       os.uname().nodename, *re.findall(r"SHA256:\S+|[A-Za-z0-9+/=]{40,}", proc.stdout + proc.stderr),
                       where=" ".join(proc.args[1:3]))


def test_every_record_kind_and_probe_status_has_words() -> None:
    """A new record kind or probe status needs its words in the catalogue, or record show would print English."""
    from typing import get_args

    from agent import messages as msg
    from agent.runner import Status
    from agent.wire.contents import KINDS

    assert set(KINDS) <= set(msg.RECORD_KIND)
    assert set(get_args(Status)) <= set(msg.STATUS)


# --- the agent daemon: `precaution agent run|status|enroll` --------------------------------------------------


def _refusing_collector(home: Path) -> tuple[Any, int]:
    """A TLS server on loopback with a certificate from a CA of its own, refusing every enrolment the way the
    collector does (its JSON error body with the Chinese message)."""
    import http.server
    import ssl
    import threading

    from collector.core import ca as ca_mod

    home.mkdir(mode=0o700)
    authority = ca_mod.create_ca(home)
    ca_mod.issue_server_cert(home, authority, ["127.0.0.1"])

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"error": "unknown-token", "message": "enrolment token unknown",
                               "message_zh": "注册令牌无效"}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(home / "server.crt"), str(home / "server.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def test_cli_agent_daemon_errors_and_status_in_chinese(tmp_path: Path) -> None:
    """Every refusal `agent enroll` makes (unit, URL, pin, unreachable, TLS mismatch, refused token), config
    errors of `agent run`/`status`, and the status report: in Chinese, with the English line kept apart."""
    from tests.daemon.agentproc import free_port

    home = tmp_path / "state"
    server, port = _refusing_collector(tmp_path / "ca-right")
    from collector.core import ca as ca_mod

    (tmp_path / "ca-wrong").mkdir(mode=0o700)
    ca_mod.create_ca(tmp_path / "ca-wrong")
    right, wrong = str(tmp_path / "ca-right" / "ca.crt"), str(tmp_path / "ca-wrong" / "ca.crt")
    config = tmp_path / "agent.toml"
    config.write_text(f'[metrics]\nlisten = "127.0.0.1:{free_port()}"\n')
    url, dead = f"https://127.0.0.1:{port}", f"https://127.0.0.1:{free_port()}"
    enroll = ("agent", "enroll", "--config", str(config), "--token", "pcenrol_not_a_real_one", "--lang", "zh-CN")
    try:
        cases = {
            "which unit": (cli(*enroll, url, "--ca", right, home=home, ok=(2,)), "请指定单位"),
            "not https": (cli(*enroll, "http://127.0.0.1:1", "--ca", right, "--unit", "u", home=home, ok=(2,)),
                          "必须以 https:// 开头"),
            "fingerprint": (cli(*enroll, url, "--ca-fingerprint", "abc", "--unit", "u", home=home, ok=(2,)),
                            "应为 SHA-256 指纹"),
            "pin mismatch": (cli(*enroll, url, "--ca-fingerprint", "ab" * 32, "--unit", "u", home=home, ok=(2,)),
                             "不予注册"),
            "unreachable": (cli(*enroll, dead, "--ca", right, "--unit", "u", home=home, ok=(2,)), "无法连接汇聚端"),
            "tls mismatch": (cli(*enroll, url, "--ca", wrong, "--unit", "u", home=home, ok=(2,)),
                             "TLS 校验失败：其证书并非由固定的 CA 签发"),
            "refused": (cli(*enroll, url, "--ca", right, "--unit", "u", home=home, ok=(2,)),
                        "汇聚端拒绝注册（HTTP 401）：注册令牌无效"),
            "short token": (cli(*enroll[:-4], "--token", "x", "--lang", "zh-CN", url, "--ca", right, "--unit", "u",
                                home=home, ok=(2,)), "不是有效的注册令牌"),
        }
        english = cli(*enroll[:-2], url, "--ca", wrong, "--unit", "u", home=home, ok=(2,))
    finally:
        server.shutdown()
    assert "TLS with the collector at" in english.stderr and "pinned CA" in english.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('lang = "fr"\n[limits]\ndaemon_cpu_percent = 0\nbogus = 1\n[schedule.self_inspection]\n'
                   'interval = "soon"\n')
    cases["config"] = (cli("agent", "status", "--config", str(bad), "--lang", "zh-CN", home=home, ok=(2,)),
                       "bad.toml:3：配置项 limits.daemon_cpu_percent：应大于 0")
    cases["no config"] = (cli("agent", "run", "--config", str(tmp_path / "none.toml"), "--lang", "zh-CN", home=home,
                              ok=(2,)), "找不到配置文件")
    cases["not toml"] = (cli("agent", "run", "--config", str(config), "--lang", "zh-CN", home=home, ok=(2,))
                         if config.write_text("[metrics\n") else None, "不是有效的 TOML 格式")
    config.write_text(f'lang = "zh-CN"\n[metrics]\nlisten = "127.0.0.1:{free_port()}"\n')
    cases["status"] = (cli("agent", "status", "--config", str(config), home=home, ok=(1,)), "代理：未运行")
    for where, (proc, expected) in cases.items():
        assert proc is not None
        out = proc.stdout + proc.stderr
        assert expected in out, (where, out)
        if proc.returncode == 2:
            assert proc.stderr.startswith("precaution：错误：") and proc.stderr.count("\n") == (
                4 if where == "config" else 1), (where, proc.stderr)
        assert_chinese(out, url, dead, right, wrong, str(bad), str(config), str(home), str(tmp_path), "abc", "ab" * 32,
                       "lang",  # a key of the file, named as written
                       *re.findall(r"[0-9a-f]{64}", out), where=f"agent {where}")


def test_collector_link_messages_in_chinese() -> None:
    """What `agent run` logs about the collector (agent.toml `lang = "zh-CN"`): refusals with the collector's
    own Chinese message, the advice for revoked, expired and clock-skew, TLS and unreachable."""
    from agent.daemon import messages as dmsg
    from agent.daemon.collector_client import CollectorError, _error

    def body(code: str, en: str, zh: str) -> bytes:
        return json.dumps({"error": code, "message": en, "message_zh": zh}).encode()

    refusals = [_error(401, body("revoked", "this agent's certificate was revoked", "该代理的证书已被吊销"), None),
                _error(401, body("certificate-expired", "expired; enrol again", "该代理的证书已过期，请重新注册"),
                       None),
                _error(401, body("clock-skew", "request time is more than 300 s away",
                                 "请求时间与采集端时钟相差超过 300 秒"), None),
                _error(429, body("rate-limited", "too many", "该代理每分钟请求超过 120 次"), "30"),
                _error(502, b"<html>bad gateway</html>", None),
                CollectorError("tls", dmsg.LINK_TLS(error="CERTIFICATE_VERIFY_FAILED")),
                CollectorError("unreachable", dmsg.COLLECTOR_UNREACHABLE(url="https://c:8443", error="refused")),
                CollectorError("timeout", dmsg.LINK_TIMEOUT(seconds=30.0))]
    assert [r.advice is not None for r in refusals] == [True, True, True, False, False, False, False, False]
    assert refusals[3].retry_after == 30.0 and "汇聚端已吊销本代理的证书" in (refusals[0].advice or dmsg.REVOKED()).zh
    for exc in refusals:
        for line in (dmsg.RETRYING(problem=exc.said, wait=12.0).zh, exc.advice.zh if exc.advice else "",
                     dmsg.RENEWAL_REFUSED(problem=exc.said).zh):
            assert_chinese(line, "https://c:8443", where=exc.reason)
        assert str(exc) == exc.said.en  # the English line, for logs and tests
