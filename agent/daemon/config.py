"""agent.toml: the daemon's configuration (``/etc/precaution/agent.toml`` or ``--config``), strict.

Unknown keys are refused and every error names the key and its line in the file (``agent.toml:12:
schedule.self_inspection.interval: not a duration``), so a typo never silently falls back to a default. The
line finding and error wording are config.toml's (``agent.config_problems.key_lines``), one approach for both files.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.config_problems import ConfigError, key_lines, not_toml, problem_line, validation_problems
from agent.daemon import messages as msg
from agent.duration import parse_duration
from agent.errors import UserError

DEFAULT_PATH = Path("/etc/precaution/agent.toml")
DEFAULT_METRICS_LISTEN = "127.0.0.1:9847"
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "KB": 1000, "MB": 1000**2,
               "GB": 1000**3}


def _duration(value: Any) -> float:
    """A duration string ("90s", "30m", "24h", "2d") or a number of seconds, as seconds (> 0)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30m")
    seconds = float(value) if isinstance(value, int | float) else parse_duration(str(value)).total_seconds()
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def _size(value: Any) -> int:
    """A size ("64MiB", "200MB") or a number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 64MiB")
    if isinstance(value, int):
        number = value
    else:
        m = _SIZE_RE.match(str(value))
        if not m:
            raise ValueError(f"not a size: {value!r} (use e.g. 64MiB, 200MB)")
        number = int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
    if number <= 0:
        raise ValueError("a size must be positive")
    return number


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise ValueError(f"not a network: {text!r} (use e.g. 10.1.0.0/24)") from None


def _listen(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"not HOST:PORT: {text!r}")
    return text


def _https_url(text: str) -> str:
    if not re.match(r"^https://[^/\s]+(/\S*)?$", text):
        raise ValueError(f"the collector URL must be https://HOST[:PORT]: {text!r}")
    return text.rstrip("/")


def _private_key(path: Path) -> Path:
    """An SSH private key file the agent may use: absolute, a regular file (not a symlink), 0600 or stricter."""
    import os
    import stat

    if not path.is_absolute():
        raise ValueError(f"{path} is not an absolute path")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} is not a regular file (a symlink or a directory is refused)")
    if st.st_mode & 0o077:
        raise ValueError(f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}): chmod 600 it")
    return path


def _absolute(path: Path) -> Path:
    if not path.is_absolute():
        raise ValueError(f"{path} is not an absolute path")
    return path


_FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


def _host_key(text: str) -> str:
    if not _FINGERPRINT_RE.match(text):
        raise ValueError(f"not an OpenSSH SHA256 fingerprint: {text!r} (ssh-keygen -lf KEY.pub prints it)")
    return text


def _ssh_target(text: str) -> str:
    """A target as a task names it: an address or a host name (no user@ or :port, those are settings)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$", text):
        raise ValueError(f"not an address or host name: {text!r}")
    return text.lower().rstrip(".")


Seconds = Annotated[float, BeforeValidator(_duration)]
Bytes = Annotated[int, BeforeValidator(_size)]
NetworkText = Annotated[str, AfterValidator(_network)]
KeyFile = Annotated[Path, AfterValidator(_private_key)]
AbsolutePath = Annotated[Path, AfterValidator(_absolute)]
HostKey = Annotated[str, AfterValidator(_host_key)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectorSection(_Strict):
    """Where results go. Empty until ``precaution agent enroll`` writes it."""

    url: Annotated[str, AfterValidator(_https_url)] | None = None
    ca: Path | None = None  # the pinned collector CA (PEM); only this CA is trusted for the collector
    push_interval: Seconds = 30.0
    task_poll_interval: Seconds = 60.0
    batch_items: int = Field(default=500, ge=1, le=10_000)
    timeout: Seconds = 30.0


class IdentitySection(_Strict):
    """The client certificate and key from enrolment (0600 files in a 0700 directory)."""

    dir: Path | None = None  # default: <state dir>/identity


class Schedule(_Strict):
    interval: Seconds
    splay: float = Field(default=0.1, ge=0.0, le=1.0)  # up to this fraction of the interval, chosen once
    enabled: bool = True


def _schedule(interval: float, enabled: bool = True) -> Schedule:
    return Schedule(interval=interval, enabled=enabled)


class SchedulesSection(_Strict):
    self_inspection: Schedule = Field(default_factory=lambda: _schedule(3600.0))
    file_integrity: Schedule = Field(default_factory=lambda: _schedule(6 * 3600.0))
    own_networks: Schedule = Field(default_factory=lambda: _schedule(24 * 3600.0))


class SelfInspectionSection(_Strict):
    # The unit's own networks: the scheduled network test covers only these (Art. 9(9) needs no notice for
    # the unit's own assets). Default loopback only: nothing leaves the host unless an operator says so.
    own_networks: list[NetworkText] = Field(default_factory=lambda: list(LOOPBACK_NETWORKS))
    file_integrity_paths: list[Path] = Field(default_factory=lambda: [Path("/etc"), Path("/usr/bin"),
                                                                       Path("/usr/sbin"), Path("/boot")])
    nice: int = Field(default=10, ge=0, le=19)
    ionice_idle: bool = True  # file integrity in the idle I/O class

    @model_validator(mode="after")
    def _absolute(self) -> SelfInspectionSection:
        for path in self.file_integrity_paths:
            if not path.is_absolute():
                raise ValueError(f"file_integrity_paths: {path} is not an absolute path")
        return self


class LimitsSection(_Strict):
    """Budgets like osquery's watchdog (which allows 200 MB and 10 % CPU): enforced and exported."""

    daemon_memory: Bytes = 100 * 1024**2  # the idle daemon restarts itself (exit 3, systemd restarts) above this
    daemon_cpu_percent: float = Field(default=10.0, gt=0.0, le=100.0)  # sustained over cpu_window
    cpu_window: Seconds = 120.0
    run_memory: Bytes = 400 * 1024**2  # a run's child process is killed above this
    run_timeout: Seconds = 1800.0


class RemoteTarget(_Strict):
    """Overrides for one SSH target (``[remote.targets."10.1.2.3"]``); unset keys take ``[remote]``'s."""

    user: str | None = Field(default=None, min_length=1, max_length=64)
    key: KeyFile | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    known_hosts: AbsolutePath | None = None
    host_keys: list[HostKey] = Field(default_factory=list)  # pinned fingerprints; any one of them is accepted
    sudo: bool | None = None


class RemoteSection(_Strict):
    """Credentials for the collector's remote tests over SSH (Art. 24(3)), still run only under a notice.

    A target runs only with a private key (``key``, 0600; no ssh-agent in a daemon) and a trusted host key
    (``known_hosts`` the operator keeps, or pinned ``host_keys``): the agent never trusts a key on first use.
    A task naming a target without both is refused with the reason, recorded and reported to the collector."""

    user: str = Field(default="root", min_length=1, max_length=64)
    key: KeyFile | None = None
    port: int = Field(default=22, ge=1, le=65535)
    known_hosts: AbsolutePath | None = None  # default: the agent's own <state>/known_hosts when it exists
    sudo: bool = False
    # Host probes a host test runs, on remote targets and on this host (default: all). Checked against the
    # registry by the run (importing every probe here would load them into the idle daemon): an unknown id
    # fails the task with its name.
    probes: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")]] = Field(default_factory=list)
    parallel: int = Field(default=4, ge=1, le=64)
    connect_timeout: Seconds = 10.0
    timeout: Seconds = 600.0  # per target; the notice window's end stops a run earlier
    targets: dict[Annotated[str, AfterValidator(_ssh_target)], RemoteTarget] = Field(default_factory=dict)

    def for_target(self, host: str) -> RemoteTarget:
        """The settings for one target, overrides applied (every key set)."""
        name = _ssh_target(host) if host else host
        o = self.targets.get(name, RemoteTarget())
        return RemoteTarget(user=o.user or self.user, key=o.key or self.key, port=o.port or self.port,
                            known_hosts=o.known_hosts or self.known_hosts, host_keys=list(o.host_keys),
                            sudo=self.sudo if o.sudo is None else o.sudo)


class PassiveSection(_Strict):
    """Passive link checks a collector task may ask for: where to listen and for how long (at most an hour)."""

    interface: str | None = Field(default=None, min_length=1, max_length=15)  # none: passive tasks are refused
    duration: Seconds = Field(default=30.0, le=3600.0)
    dns_servers: list[str] = Field(default_factory=list)  # the segment's expected DNS servers
    dhcp_servers: list[str] = Field(default_factory=list)
    gateway: str | None = None  # IP or IP=MAC of the expected gateway

    @model_validator(mode="after")
    def _addresses(self) -> PassiveSection:
        for text in [*self.dns_servers, *self.dhcp_servers, (self.gateway or "").partition("=")[0]]:
            if text:
                try:
                    ipaddress.ip_address(text)
                except ValueError:
                    raise ValueError(f"not an IP address: {text!r}") from None
        return self


class SpoolSection(_Strict):
    path: Path | None = None  # default: <state dir>/spool.db
    max_bytes: Bytes = 64 * 1024**2
    # Free space kept on the spool's file system: below it, low-priority data is refused.
    min_free_bytes: Bytes = 16 * 1024**2


class MetricsSection(_Strict):
    listen: Annotated[str, AfterValidator(_listen)] = DEFAULT_METRICS_LISTEN
    enabled: bool = True


class DaemonConfig(_Strict):
    collector: CollectorSection = Field(default_factory=CollectorSection)
    identity: IdentitySection = Field(default_factory=IdentitySection)
    schedule: SchedulesSection = Field(default_factory=SchedulesSection)
    self_inspection: SelfInspectionSection = Field(default_factory=SelfInspectionSection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    spool: SpoolSection = Field(default_factory=SpoolSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    remote: RemoteSection = Field(default_factory=RemoteSection)
    passive: PassiveSection = Field(default_factory=PassiveSection)
    lang: Literal["en", "zh-CN"] = "en"

    @field_validator("passive")
    @classmethod
    def _passive_fits_a_run(cls, passive: PassiveSection, info: ValidationInfo) -> PassiveSection:
        limits = info.data.get("limits")  # validated before (field order)
        if isinstance(limits, LimitsSection) and passive.duration >= limits.run_timeout:
            raise ValueError(f"duration ({passive.duration:g} s) must be shorter than limits.run_timeout "
                             f"({limits.run_timeout:g} s), or every passive task is killed")
        return passive

    def spool_path(self, state: Path) -> Path:
        return self.spool.path or state / "spool.db"

    def identity_dir(self, state: Path) -> Path:
        return self.identity.dir or state / "identity"


def parse_config(text: str, source: str) -> DaemonConfig:
    """Validate a TOML text; ConfigError naming ``source:line: key: problem`` for every bad key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise not_toml(source, exc) from None
    try:
        return DaemonConfig.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(Path(source), exc, key_lines(text))
        raise ConfigError([problem_line(source, *p) for p in sorted(set(problems))]) from None


def load_config(path: Path | None = None) -> DaemonConfig:
    """The given file (must exist), else /etc/precaution/agent.toml when it exists, else defaults."""
    file = path or DEFAULT_PATH
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path is not None:
            raise UserError(msg.CONFIG_NOT_FOUND(path=file)) from None
        return DaemonConfig()
    except OSError as exc:
        raise UserError(msg.CONFIG_UNREADABLE(path=file, error=exc.strerror or exc)) from None
    return parse_config(text, str(file))
