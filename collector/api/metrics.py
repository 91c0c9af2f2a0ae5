"""Prometheus metrics: per-process counters and histograms, plus gauges read from the database at scrape time
(so every replica reports the same fleet-wide figures and none keeps them in memory)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from collector.core.clock import utcnow
from collector.core.db import Database
from collector.crud.identity import agents_by_state
from collector.models import AgentAlert, Finding
from collector.models.findings import ACTIVE_STATES


class Metrics:
    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.batches = Counter("precaution_collector_ingest_batches", "Ingest batches received, by outcome",
                               ["outcome"], registry=self.registry)
        self.items = Counter("precaution_collector_ingest_items", "Ingested items, by kind and status",
                             ["kind", "status"], registry=self.registry)
        self.latency = Histogram("precaution_collector_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10))
        self.db_errors = Counter("precaution_collector_database_errors", "Requests that failed on the database",
                                 registry=self.registry)
        self.registry.register(_FleetGauges(db, self.db_errors))


class _FleetGauges(Collector):
    def __init__(self, db: Database, errors: Counter) -> None:
        self.db = db
        self.errors = errors

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        agents = GaugeMetricFamily("precaution_collector_agents", "Enrolled agents by state (online: seen in the "
                                   "last 15 minutes)", labels=["state"])
        findings = GaugeMetricFamily("precaution_collector_open_findings", "Findings not yet closed, by unit and "
                                     "severity", labels=["unit", "severity"])
        overdue = GaugeMetricFamily("precaution_collector_overdue_rectifications", "Findings past their "
                                    "rectification deadline, by unit", labels=["unit"])
        retests = GaugeMetricFamily("precaution_collector_retests_due", "Reported rectifications awaiting their "
                                    "re-test, by unit", labels=["unit"])
        alerts = GaugeMetricFamily("precaution_collector_agent_alerts", "Identity and record-integrity alerts, "
                                   "by kind", labels=["kind"])
        up = GaugeMetricFamily("precaution_collector_database_up", "1 when the database answered this scrape")
        try:
            with self.db.read() as s:
                for state, count in agents_by_state(s, now).items():
                    agents.add_metric([state], count)
                for unit, sev, count in s.execute(select(Finding.unit, Finding.severity, func.count())
                                                  .where(Finding.state.in_(ACTIVE_STATES))
                                                  .group_by(Finding.unit, Finding.severity)):
                    findings.add_metric([unit, sev], count)
                for unit, count in s.execute(select(Finding.unit, func.count()).where(
                        Finding.state.in_(ACTIVE_STATES), Finding.deadline < now).group_by(Finding.unit)):
                    overdue.add_metric([unit], count)
                for unit, count in s.execute(select(Finding.unit, func.count()).where(
                        Finding.state.in_(("reported_rectified", "retest_scheduled"))).group_by(Finding.unit)):
                    retests.add_metric([unit], count)
                for kind, count in s.execute(select(AgentAlert.kind, func.count()).group_by(AgentAlert.kind)):
                    alerts.add_metric([kind], count)
            up.add_metric([], 1)
        except SQLAlchemyError:
            self.errors.inc()
            up.add_metric([], 0)
        yield from (agents, findings, overdue, retests, alerts, up)


_ = dt
