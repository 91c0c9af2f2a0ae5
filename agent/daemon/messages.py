"""Sentences of the agent daemon (`precaution agent run|status|enroll`) in the catalogue of probes.i18n.

Kept apart from agent.messages so that the idle daemon imports only its own few templates. The Chinese line
may leave out a technical detail (an OS or TLS error) that the English line carries; the log keeps English.
"""

from __future__ import annotations

from probes.i18n import message

# --- agent.toml
CONFIG_NOT_FOUND = message("daemon.config-not-found", "{path}: config file not found", "{path}：找不到配置文件")
CONFIG_UNREADABLE = message("daemon.config-unreadable", "{path}: cannot read config: {error}",
                            "{path}：无法读取配置文件")

# --- enrolment
ENROLMENT_UNREADABLE = message("daemon.enrolment-unreadable", "{path}: unreadable enrolment ({error}); enrol again",
                               "{path}：注册信息无法读取，请重新注册")
BAD_FINGERPRINT = message("daemon.bad-fingerprint",
                          "--ca-fingerprint {text!r}: expected a SHA-256 fingerprint (64 hex digits, colons allowed)",
                          "--ca-fingerprint {text}：应为 SHA-256 指纹（64 位十六进制数字，可含冒号）")
COLLECTOR_UNREACHABLE = message("daemon.collector-unreachable", "cannot reach the collector at {url}: {error}",
                                "无法连接汇聚端 {url}（网络不通、地址有误或服务未启动）")
PIN_NOT_PRESENTED = message(
    "daemon.pin-not-presented",
    "the collector at {url} presented no certificate with SHA-256 {fingerprint} (it presented {presented}): "
    "not enrolling",
    "汇聚端 {url} 出示的证书中没有 SHA-256 指纹为 {fingerprint} 的证书（实际为 {presented}）：不予注册")
URL_NOT_HTTPS = message("daemon.url-not-https", "{url}: the collector URL must start with https://",
                        "{url}：汇聚端地址必须以 https:// 开头")
PIN_ONE = message("daemon.pin-one",
                  "give exactly one of --ca FILE or --ca-fingerprint SHA256 to pin the collector's CA",
                  "请给出 --ca FILE 或 --ca-fingerprint SHA256 二者之一，用于固定汇聚端 CA")
CA_UNREADABLE = message("daemon.ca-unreadable", "--ca {path}: cannot read: {error}", "--ca {path}：无法读取")
CA_NOT_PEM = message("daemon.ca-not-pem", "the pinned collector CA is not a PEM certificate: {error}",
                     "固定的汇聚端 CA 不是 PEM 格式的证书")
TLS_MISMATCH = message(
    "daemon.tls-mismatch",
    "TLS with the collector at {url} failed: {error} (is its certificate issued by the pinned CA? check --ca or "
    "--ca-fingerprint)",
    "与汇聚端 {url} 的 TLS 校验失败：其证书并非由固定的 CA 签发（请检查 --ca 或 --ca-fingerprint）")
ENROLMENT_FAILED = message("daemon.enrolment-failed", "enrolment with {url} failed: {error}",
                           "向汇聚端 {url} 注册失败（连接中断或超时）")
ENROLMENT_REFUSED = message("daemon.enrolment-refused", "the collector refused the enrolment (HTTP {status}): {reason}",
                            "汇聚端拒绝注册（HTTP {status}）：{reason}")
CA_DID_NOT_ISSUE = message(
    "daemon.ca-did-not-issue",
    "the CA the collector returned did not issue the server certificate that was pinned: not enrolling",
    "汇聚端返回的 CA 并未签发所固定的服务器证书：不予注册")
BAD_TOKEN = message("daemon.bad-token",
                    "--token: not an enrolment token (`precaution-collector token create --unit U` prints one)",
                    "--token：不是有效的注册令牌（由 `precaution-collector token create --unit U` 生成）")
BAD_UNIT = message("daemon.bad-unit", "--unit {unit!r}: a unit name is 1 to 200 characters",
                   "--unit {unit}：单位名称应为 1 到 200 个字符")
WHICH_UNIT = message("daemon.which-unit", "which unit? pass --unit UNIT (or set [notice] unit in config.toml)",
                     "请指定单位：使用 --unit UNIT（或在 config.toml 中设置 `[notice] unit`）")
ENROLLED = message(
    "daemon.enrolled",
    "enrolled with {url}: agent {agent_id}, unit {unit}, certificate valid until {until}; identity in {dir}. "
    "Restart the agent to use it.",
    "已注册到汇聚端 {url}：代理编号 {agent_id}，单位 {unit}，证书有效期至 {until}；身份文件位于 {dir}。"
    "重启代理服务后生效。")

# --- the collector link (log lines of `agent run`, in the language of agent.toml's `lang`)
NOT_ENROLLED = message("daemon.not-enrolled",
                       "not enrolled with a collector: results stay in the spool (run `precaution agent enroll`)",
                       "尚未注册到汇聚端：结果保存在本地缓存队列中（请运行 `precaution agent enroll`）")
LINK_TLS = message(
    "daemon.link-tls",
    "TLS with the collector failed: {error} (the collector's certificate is not from the pinned CA, or the "
    "handshake broke)", "与汇聚端的 TLS 连接失败：其证书并非由固定的 CA 签发，或握手中断")
LINK_TIMEOUT = message("daemon.link-timeout", "the collector did not answer within {seconds:.0f} s",
                       "汇聚端在 {seconds:.0f} 秒内未应答")
LINK_REFUSED = message("daemon.link-refused", "collector answered HTTP {status}: {reason}",
                       "汇聚端拒绝请求（HTTP {status}）：{reason}")
LINK_BAD_ANSWER = message("daemon.link-bad-answer", "unexpected answer from the collector: {error}",
                          "汇聚端的应答无法解析")
REVOKED = message(
    "daemon.revoked",
    "the collector revoked this agent's certificate: nothing is sent, results stay in the spool; enrol again "
    "with a new token (`precaution agent enroll URL --token T`)",
    "汇聚端已吊销本代理的证书：不再发送数据，结果保留在本地缓存队列中；请使用新令牌重新注册"
    "（`precaution agent enroll URL --token T`）")
EXPIRED = message(
    "daemon.expired",
    "this agent's certificate has expired before it was renewed: results stay in the spool; enrol again with a "
    "new token (`precaution agent enroll URL --token T`)",
    "本代理的证书在续期前已过期：结果保留在本地缓存队列中；请使用新令牌重新注册"
    "（`precaution agent enroll URL --token T`）")
CLOCK_SKEW = message(
    "daemon.clock-skew",
    "the collector refuses this host's clock ({detail}): set the time right (NTP); results stay in the spool",
    "汇聚端认为本机时钟偏差过大：请校准时间（NTP）；结果保留在本地缓存队列中")
RETRYING = message("daemon.retrying", "collector: {problem} (retrying in {wait:.0f} s)",
                   "汇聚端：{problem}（{wait:.0f} 秒后重试）")
RENEWED = message("daemon.renewed", "certificate renewed, valid until {until}", "证书已续期，有效期至 {until}")
RENEWAL_REFUSED = message("daemon.renewal-refused", "certificate renewal refused: {problem}",
                          "证书续期被拒绝：{problem}")
RENEWAL_RESUMED = message(
    "daemon.renewal-resumed",
    "a certificate renewal was cut off after the collector took the new key: that key is used from now on",
    "上次证书续期在汇聚端接受新密钥后中断：今后使用该新密钥")
