"""The agent's Prometheus metrics: one registry of its own, prefix ``precaution_agent_``, base units.

Names follow the Prometheus naming guide (``_seconds``, ``_bytes``, ``_total`` for counters,
``_timestamp_seconds`` for times); labels are bounded sets (kind, probe, severity, priority, outcome, reason)
so nothing grows with hosts or findings. docs/metrics.md lists every name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from agent import __version__
from agent.daemon.spool import SpoolStats

PREFIX = "precaution_agent"
RUN_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class SpoolCollector(Collector):
    """Spool figures from the latest snapshot the daemon took (the HTTP thread never touches SQLite)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.latest: SpoolStats | None = None
        self.max_bytes = 0
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        stats = self.latest
        if stats is None:
            return
        items = GaugeMetricFamily(f"{PREFIX}_spool_items", "Items in the spool waiting for the collector's "
                                  "acknowledgement, by priority (keep: never dropped).", labels=["priority"])
        for prio, count in stats.items.items():
            items.add_metric([prio.name.lower()], count)
        yield items
        yield GaugeMetricFamily(f"{PREFIX}_spool_bytes", "Bytes of items in the spool.", value=stats.bytes)
        yield GaugeMetricFamily(f"{PREFIX}_spool_max_bytes", "Configured spool bound in bytes.",
                                value=self.max_bytes)
        age = 0.0 if stats.oldest_created is None else max(0.0, self.clock() - stats.oldest_created)
        yield GaugeMetricFamily(f"{PREFIX}_spool_oldest_item_age_seconds",
                                "Age of the oldest unacknowledged spool item (0 when empty).", value=age)
        yield GaugeMetricFamily(f"{PREFIX}_spool_pressure", "Spool pressure: 0 none, 1 over 90 % of its bound "
                                "(summarising/dropping low priority), 2 disk full (refusing low priority).",
                                value=int(stats.pressure))
        yield GaugeMetricFamily(f"{PREFIX}_spool_rejected_items", "Items the collector refused for good (kept "
                                "aside in the spool).", value=stats.rejected)
        yield GaugeMetricFamily(f"{PREFIX}_spool_damaged_files", "Damaged spool files set aside.",
                                value=stats.damaged_files)
        yield CounterMetricFamily(f"{PREFIX}_spool_summarised_items", "Info items folded into summaries under "
                                  "pressure.", value=stats.summarised_total)
        yield CounterMetricFamily(f"{PREFIX}_spool_dropped_items", "Low/medium items dropped under pressure "
                                  "(reported to the collector).", value=stats.dropped_total)
        yield CounterMetricFamily(f"{PREFIX}_spool_refused_items", "Low-priority items not accepted (disk or "
                                  "spool full).", value=stats.refused_total)


class AgentMetrics:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(namespace=PREFIX, registry=r)  # ..._process_resident_memory_bytes, _cpu_seconds_total
        self.spool = SpoolCollector(clock)
        r.register(self.spool)
        self.build_info = Gauge(f"{PREFIX}_build_info", "Agent version (value 1).", ["version"], registry=r)
        self.build_info.labels(__version__).set(1)
        self.run_duration = Histogram(f"{PREFIX}_run_duration_seconds", "Duration of scheduled and task runs.",
                                      ["kind"], buckets=RUN_BUCKETS, registry=r)
        self.runs = Counter(f"{PREFIX}_runs", "Runs by kind and outcome (ok, error, killed, timeout).",
                            ["kind", "outcome"], registry=r)
        self.run_skipped = Counter(f"{PREFIX}_run_skipped", "Scheduled slots skipped because the previous run "
                                   "of that kind was still going.", ["kind"], registry=r)
        self.last_success = Gauge(f"{PREFIX}_last_successful_run_timestamp_seconds",
                                  "Unix time the last successful run of each kind finished.", ["kind"], registry=r)
        self.run_peak_rss = Gauge(f"{PREFIX}_run_peak_resident_memory_bytes", "Peak RSS of the last run's child "
                                  "process.", ["kind"], registry=r)
        self.probe_duration = Gauge(f"{PREFIX}_probe_duration_seconds", "Duration of each probe in its last run.",
                                    ["probe"], registry=r)
        self.probe_errors = Counter(f"{PREFIX}_probe_errors", "Probe runs that failed or timed out.", ["probe"],
                                    registry=r)
        self.findings = Gauge(f"{PREFIX}_findings", "Active (not waived) findings of the last self-inspection, by "
                              "severity.", ["severity"], registry=r)
        self.drift = Gauge(f"{PREFIX}_drift_items", "Drift from the accepted baseline in the last self-inspection.",
                           ["change"], registry=r)
        self.last_push = Gauge(f"{PREFIX}_last_successful_push_timestamp_seconds", "Unix time of the last batch "
                               "the collector acknowledged (0 never).", registry=r)
        self.push_failures = Counter(f"{PREFIX}_push_failures", "Failed pushes to the collector, by reason.",
                                     ["reason"], registry=r)
        self.pushed = Counter(f"{PREFIX}_pushed_items", "Spool items acknowledged by the collector, by result "
                              "(accepted, duplicate, rejected).", ["result"], registry=r)
        self.collector_up = Gauge(f"{PREFIX}_collector_up", "1 when the last call to the collector succeeded.",
                                  registry=r)
        self.enrolled = Gauge(f"{PREFIX}_enrolled", "1 when the agent has a collector identity.", registry=r)
        self.tasks = Counter(f"{PREFIX}_tasks", "Collector tasks by outcome (completed, refused, failed).",
                             ["outcome"], registry=r)
        self.limit_memory = Gauge(f"{PREFIX}_watchdog_memory_limit_bytes", "Memory budget by process (daemon, "
                                  "run).", ["process"], registry=r)
        self.limit_cpu = Gauge(f"{PREFIX}_watchdog_cpu_limit_ratio", "Sustained CPU budget of the daemon (1 = one "
                               "core).", registry=r)
        self.cpu_usage = Gauge(f"{PREFIX}_watchdog_cpu_usage_ratio", "Daemon CPU use over the watchdog window.",
                               registry=r)
        self.watchdog_kills = Counter(f"{PREFIX}_watchdog_kills", "Run processes killed by the watchdog, by "
                                      "resource (memory, time).", ["resource"], registry=r)
        self.last_push.set(0)
        self.collector_up.set(0)
