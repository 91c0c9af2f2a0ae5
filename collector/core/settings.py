"""Collector settings: config.toml in the state directory, overridden by PRECAUTION_COLLECTOR_* variables.

A bad setting fails at start with the key named (pydantic-settings validation, turned into one line).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from collector.core.errors import CollectorUserError
from collector.core.paths import CONFIG_FILE, DB_FILE, home_dir

SEVERITIES = ("critical", "high", "medium", "low", "info")
CERT_MIN_POLLS = 6  # a certificate lives at least this many task polls: two looks in its last third
DEFAULT_SLA_DAYS = {"critical": 7, "high": 30, "medium": 90, "low": 120, "info": 180}


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CollectorUserError(f"{self.path}: cannot read the configuration: {exc}") from None
        section = data.get("collector", data)
        if not isinstance(section, dict):
            raise CollectorUserError(f"{self.path}: [collector] must be a table")
        return section


class CollectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRECAUTION_COLLECTOR_", extra="forbid")

    home: Path = Field(default_factory=home_dir)
    database_url: str = ""
    listen: str = "127.0.0.1:8443"
    server_names: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "::1"])
    metrics_token: str = ""
    issuer_name: str = Field(default="precaution collector", min_length=1, max_length=200)
    maintenance_interval_s: float = Field(default=30.0, gt=0)
    max_batch_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_batch_items: int = Field(default=20_000, gt=0)
    rate_limit_per_minute: int = Field(default=120, gt=0)
    clock_skew_s: int = Field(default=300, gt=0)
    enrol_token_hours: float = Field(default=24.0, gt=0)
    # A fraction is allowed (0.01 = 14.4 minutes): short-lived certificates, renewed by the agent in the last third
    cert_days: float = Field(default=365, gt=0, le=3650)
    task_poll_interval_s: int = Field(default=30, gt=0)
    task_lease_s: int = Field(default=600, gt=0)
    long_poll_max_s: int = Field(default=25, ge=0, le=120)
    session_hours: float = Field(default=12.0, gt=0)
    retest_working_days: int = Field(default=15, gt=0)
    retention_runs_days: int = Field(default=400, gt=0)  # runs, their ingest item keys, batch acknowledgements
    retention_interval_s: float = Field(default=3600.0, gt=0)  # how often serve purges
    retention_chunk_rows: int = Field(default=1000, gt=0, le=100_000)  # rows per purge transaction
    retention_nonces_s: int = Field(default=900, gt=0)
    db_pool_size: int = Field(default=10, gt=0)
    workers: int = Field(default=1, ge=1, le=64)  # serve: worker processes (one per core)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @model_validator(mode="after")
    def _cert_outlives_polls(self) -> CollectorSettings:
        """The agent renews in the last third of a certificate's life and looks at most every
        ``task_poll_interval_s``: a shorter life would expire between two looks."""
        if self.cert_days * 86400 < CERT_MIN_POLLS * self.task_poll_interval_s:
            raise ValueError(f"cert_days {self.cert_days:g} is {self.cert_days * 86400:.0f} s, shorter than "
                             f"{CERT_MIN_POLLS} task polls ({CERT_MIN_POLLS} x task_poll_interval_s "
                             f"{self.task_poll_interval_s} s): the agent could not renew it in time")
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlSource(settings_cls, home_dir() / CONFIG_FILE)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / DB_FILE}"


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def load_settings(**overrides: Any) -> CollectorSettings:
    try:
        return CollectorSettings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if not key:  # a check across settings (model validator): its message names them
            raise CollectorUserError(f"settings: {err['msg']} (config {home_dir() / CONFIG_FILE} or "
                                     "PRECAUTION_COLLECTOR_* variables)") from None
        raise CollectorUserError(f"setting {key!r}: {err['msg']} (config {home_dir() / CONFIG_FILE} or "
                                 f"PRECAUTION_COLLECTOR_{key.upper()})") from None
