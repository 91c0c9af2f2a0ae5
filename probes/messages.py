"""What probes tell a person: limitations (what could not be read) and why a probe could not run."""

from __future__ import annotations

from probes.i18n import message

NOT_READABLE = message("probe.not-readable", "{path} not readable", "{path} 不可读")
NOT_READABLE_LIST = message("probe.not-readable-list", "not readable: {paths}", "以下内容不可读：{paths}")
NOT_READABLE_BECAUSE = message("probe.not-readable-because", "{path} not readable: {consequence}",
                               "{path} 不可读：{consequence}")
NOT_ROOT = message("probe.not-root", "not root: results limited to what this user can read",
                   "未以 root 运行：结果仅限当前用户可读取的内容")
COMMAND_FAILED = message("probe.command-failed", "{command} failed: {error}", "命令 {command} 执行失败：{error}")
NEEDS_PLATFORM = message("probe.needs-platform", "needs {platforms}", "需要 {platforms} 系统")
NO_PATHS = message("probe.no-paths", "none of {paths} present", "{paths} 均不存在")
PROBE_ERROR = message("probe.error", "{error}", "探针运行出错：{error}")
PROBE_TIMEOUT = message("probe.timeout", "no result within {limit}", "{limit}内未返回结果")

# consequences of a file that could not be read (NOT_READABLE_BECAUSE)
PASSWORD_STATE_UNKNOWN = message("probe.password-state-unknown", "password state unknown", "口令状态未知")
HOMES_NOT_INSPECTED = message("probe.homes-not-inspected", "home directories not inspected", "未检查用户主目录")
CRONTABS_NOT_INSPECTED = message("probe.crontabs-not-inspected", "its crontabs are not inspected",
                                 "其中的定时任务未检查")
OWNERSHIP_UNKNOWN = message("probe.ownership-unknown", "package ownership unknown", "文件所属软件包未知")
CONTENT_NOT_INSPECTED = message("probe.content-not-inspected", "content not inspected", "未检查其内容")
INCLUDE_INCOMPLETE = message("probe.include-incomplete", "`Include {pattern}` may be incomplete",
                             "`Include {pattern}` 的内容可能不完整")

PROCESSES_NOT_READABLE = message("probe.processes-not-readable",
                                 "{count} processes not readable: socket owners unknown for them",
                                 "{count} 个进程不可读：其套接字所属进程未知")
PROCESSES_PARTLY_READABLE = message("probe.processes-partly-readable",
                                    "{count} processes not fully readable: exe or std streams unknown for them",
                                    "{count} 个进程无法完整读取：其可执行文件或标准输入输出未知")
ENTRIES_NOT_READABLE = message("probe.entries-not-readable", "{count} entries not readable: their digests are "
                               "unknown", "{count} 个条目不可读：其摘要未知")
KEY_FILES_NOT_READABLE = message("probe.key-files-not-readable",
                                 "{count} authorized_keys files not readable (e.g. {example})",
                                 "{count} 个 authorized_keys 文件不可读（例如 {example}）")
NO_FIREWALL_TOOL = message("probe.no-firewall-tool", "neither nft nor iptables-save available: firewall state "
                           "unknown", "nft 与 iptables-save 均不可用：防火墙状态未知")
NO_IP_COMMAND = message("probe.no-ip-command", "`ip` not available: IPv4 addresses unknown, IPv6 from "
                        "/proc/net/if_inet6", "`ip` 命令不可用：IPv4 地址未知，IPv6 地址取自 /proc/net/if_inet6")
SSHD_T_NOT_ROOT = message("probe.sshd-t-not-root", "not root: sshd -T unavailable, settings parsed from the "
                          "configuration files", "未以 root 运行：无法执行 sshd -T，设置取自配置文件")
SSHD_T_FAILED = message("probe.sshd-t-failed", "sshd -T failed ({error}): settings parsed from the configuration "
                        "files", "sshd -T 执行失败（{error}）：设置取自配置文件")
NO_PACKAGE_DB = message("probe.no-package-db", "neither /var/lib/dpkg/status nor rpm: package list unknown",
                        "既无 /var/lib/dpkg/status 也无 rpm：软件包列表未知")

# network probes
NO_ARP_SWEEP = message("probe.no-arp-sweep", "not root: no ARP sweep", "未以 root 运行：未进行 ARP 探测")
CONNECT_PING_ONLY = message("probe.connect-ping-only", "not root: TCP connect ping only",
                            "未以 root 运行：仅使用 TCP 连接探测")
DEADLINE_PARTIAL = message("probe.deadline-partial", "deadline reached: results are partial",
                           "已到截止时间：结果不完整")
DEADLINE_BEFORE_SCAN = message("probe.deadline-before-scan", "deadline passed before the scan began",
                               "扫描开始前已超过截止时间")
UDP_NEEDS_ROOT = message("probe.udp-needs-root", "UDP scan needs root with nmap; used the built-in UDP probes",
                         "nmap 的 UDP 扫描需要 root 权限；已改用内置 UDP 探测")
DEADLINE_BEFORE_DISCOVERY = message("probe.deadline-before-discovery", "deadline passed before discovery began",
                                    "主机发现开始前已超过截止时间")
PORTS_NOT_CHECKED = message("probe.ports-not-checked", "{count} port(s) not checked: deadline passed",
                            "{count} 个端口未检查：已超过截止时间")
CAPTURE_CUT_SHORT = message("probe.capture-cut-short", "packet limit reached: capture cut short",
                            "已达到报文数量上限：抓包提前结束")
NO_BINARIES = message("probe.no-binaries", "none of {names} installed: results limited to what can be read without "
                      "them", "{names} 均未安装：结果仅限不借助这些程序可读取的内容")
HIDEPID = message("probe.hidepid", "/proc hides other users' processes (hidepid): time daemon unknown",
                  "/proc 隐藏了其他用户的进程（`hidepid`）：时间同步守护进程未知")
