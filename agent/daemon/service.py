"""The daemon's main loop: schedule runs in child processes, watch them and itself, keep metrics current.

One thread runs this loop; the metrics HTTP server and the collector client (push and tasks) have threads of
their own. Nothing here imports probes or scan code: runs are child processes (``agent.daemon.job``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.daemon import footprint
from agent.daemon.config import DaemonConfig
from agent.daemon.metrics import AgentMetrics
from agent.daemon.outcome import RunOutcome
from agent.daemon.results import SHRINKERS, ship_record
from agent.daemon.scheduler import Plan, Scheduler
from agent.daemon.sdnotify import notify, watchdog_interval
from agent.daemon.spool import Spool
from agent.daemon.watchdog import EXIT_OVER_BUDGET, DaemonWatchdog, RunWatch
from agent.state import atomic_write

log = logging.getLogger(__name__)

SCHEDULED_KINDS = ("self_inspection", "file_integrity", "own_networks")
HOUSEKEEPING_S = 5.0
TASK_ATTEMPTS = 2  # a task interrupted by the agent stopping runs once more, then is reported failed


@dataclass(slots=True)
class RunningJob:
    kind: str
    proc: subprocess.Popen[bytes]
    watch: RunWatch
    started_mono: float
    killed_for: str | None = None
    scheduled: bool = True
    task_file: Path | None = None  # a collector task's inbox file


class AgentService:
    def __init__(self, config: DaemonConfig, state: Path, config_path: Path | None = None) -> None:
        footprint.limit_arenas()  # before the metrics and collector threads start
        self.config = config
        self.state = state
        self.config_path = config_path
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(state, 0o700)
        self.metrics = AgentMetrics()
        self.spool = Spool(config.spool_path(state), config.spool.max_bytes, config.spool.min_free_bytes,
                           shrinkers=SHRINKERS)
        self.metrics.spool.max_bytes = config.spool.max_bytes
        plans = {kind: Plan(getattr(config.schedule, kind).interval, getattr(config.schedule, kind).splay)
                 for kind in SCHEDULED_KINDS if getattr(config.schedule, kind).enabled}
        self.scheduler = Scheduler(plans, state / "scheduler.json", time.time,
                                   on_skip=lambda kind: self.metrics.run_skipped.labels(kind).inc())
        limits = config.limits
        self.watchdog = DaemonWatchdog(limits.daemon_memory, limits.daemon_cpu_percent, limits.cpu_window)
        self.metrics.limit_memory.labels("daemon").set(limits.daemon_memory)
        self.metrics.limit_memory.labels("run").set(limits.run_memory)
        self.metrics.limit_cpu.set(limits.daemon_cpu_percent / 100.0)
        for kind, st in self.scheduler.states.items():
            if st.last_ok:
                self.metrics.last_success.labels(kind).set(st.last_ok)
        self.jobs: dict[str, RunningJob] = {}
        self.stop = threading.Event()
        self.poke = threading.Event()  # wakes the loop early: a stop request, or new work in the inbox
        self.exit_code = 0
        self._server: Any = None
        self.inbox = state / "inbox"
        self.wake = threading.Event()
        self.client = self._collector_link()
        self.metrics.enrolled.set(1 if self.client is not None else 0)

    def _collector_link(self) -> Any:
        """The push/task thread when this agent is enrolled (``precaution agent enroll``), else None."""
        from agent.daemon.identity import Identity, host_identity

        identity = Identity(self.config.identity_dir(self.state))
        enrolment = identity.enrolment()
        if enrolment is None:
            from agent.daemon.messages import NOT_ENROLLED

            log.warning("%s", NOT_ENROLLED().get(self.config.lang))
            return None
        from agent.daemon.collector_client import CollectorClient
        from agent.daemon.push import PushWorker

        cfg = self.config.collector
        host = host_identity()
        client = CollectorClient(cfg.url or enrolment.url, str(cfg.ca or identity.ca_path), enrolment.agent_id,
                                 identity.key(), host.boot_id, cfg.timeout)
        return PushWorker(client, self._spool_for_thread, self.metrics, self.state, host, cfg.push_interval,
                          min(cfg.task_poll_interval, float(enrolment.poll_interval_s)), cfg.batch_items, self.wake,
                          identity, self.poke, self.config.lang)

    def _spool_for_thread(self) -> Spool:
        c = self.config.spool
        return Spool(self.config.spool_path(self.state), c.max_bytes, c.min_free_bytes, shrinkers=SHRINKERS,
                     check=False)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start_metrics(self) -> None:
        if not self.config.metrics.enabled:
            return
        from prometheus_client import start_wsgi_server

        host, _, port = self.config.metrics.listen.rpartition(":")
        self._server, _ = start_wsgi_server(int(port), host.strip("[]"), registry=self.metrics.registry)
        log.info("metrics on http://%s/metrics", self.config.metrics.listen)

    def run(self) -> int:
        self.start_metrics()
        self.housekeeping()
        if self.client is not None:
            self.client.start()
        notify("READY=1\nSTATUS=inspecting on schedule")
        ping = watchdog_interval()
        last_ping = last_house = time.monotonic()
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if ping is not None and now - last_ping >= ping:
                    notify("WATCHDOG=1")
                    last_ping = now
                for kind in self.scheduler.due():
                    self._start(kind)
                self._start_inbox_work()
                self._poll_jobs()
                if now - last_house >= HOUSEKEEPING_S:
                    last_house = now
                    self.housekeeping()
                    reason = self.watchdog.check()
                    self.metrics.cpu_usage.set(self.watchdog.usage)
                    if reason:
                        log.error("precaution agent over its budget (%s): exiting so that it is restarted fresh",
                                  reason)
                        self.exit_code = EXIT_OVER_BUDGET
                        break
                # Idle, the loop wakes every few seconds (housekeeping, watchdog); with a run going, ten times a
                # second: a child grows past its memory budget within its first tenth of a second (interpreter and
                # imports), and a short run must not finish between two looks at its memory
                wait = 0.1 if self.jobs else min(HOUSEKEEPING_S, max(0.05, self.scheduler.seconds_until_next()))
                if ping is not None:
                    wait = min(wait, ping)
                self.poke.wait(wait)
                self.poke.clear()
        finally:
            notify("STOPPING=1")
            self.shutdown()
        return self.exit_code

    def request_stop(self) -> None:
        self.stop.set()
        self.poke.set()

    def shutdown(self) -> None:
        for job in list(self.jobs.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for job in list(self.jobs.values()):
            try:
                job.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                job.watch.kill()
                job.proc.wait()
        self.jobs.clear()
        if self.client is not None:
            self.client.stop()
        if self._server is not None:
            self._server.shutdown()
        self.spool.close()

    def housekeeping(self) -> None:
        """Record lines into the spool, spool figures into the metrics, stale start counts out of the inbox."""
        try:
            ship_record(self.spool, self.state)
        except OSError as exc:
            log.error("cannot read the inspection record: %s", exc)
        self.metrics.spool.latest = self.spool.stats()
        if self.inbox.is_dir() and "task" not in self.jobs:
            # A task's start count outlives its file when the agent stopped after the run wrote its completion
            # (and dropped the task) but before the daemon saw it end: it counts nothing any more.
            for marker in self.inbox.glob("task-*.attempts"):
                if not marker.with_suffix(".json").exists():
                    marker.unlink(missing_ok=True)

    # -- runs -----------------------------------------------------------------------------------------------
    def _start_inbox_work(self) -> None:
        """Delivered notices, then due tasks, one child at a time each (agent.daemon.inbox)."""
        if not self.inbox.is_dir():
            return
        if "notices" not in self.jobs and any(self.inbox.glob("notice-*.json")):
            self._start("notices", scheduled=False)
        if "task_failed" not in self.jobs and any(self.inbox.glob("failed-*.json")):
            self._start("task_failed", scheduled=False)
        if "task" in self.jobs:
            return
        now = time.time()
        for path in sorted(self.inbox.glob("task-*.json")):
            if path.name.endswith(".notice.json"):
                continue
            try:
                not_before = json.loads(path.read_text(encoding="utf-8"))["not_before"]
                due = dt.datetime.fromisoformat(not_before.replace("Z", "+00:00")).timestamp() <= now
            except (OSError, ValueError, KeyError, TypeError):
                due = True  # the child reports what is wrong with it
            if due and self._may_run_again(path):
                self._start("task", scheduled=False, extra=["--task-file", str(path)], task_file=path)
                return

    def _may_run_again(self, path: Path) -> bool:
        """Count this start of a task. A task whose run was interrupted by the agent itself stopping (a crash, a
        reboot: its file is still there) runs once more; after a second interruption it is reported failed
        rather than started for ever. A run killed by the watchdog is never re-run (``_task_ended``)."""
        marker = path.with_suffix(".attempts")
        try:
            attempts = int(marker.read_text(encoding="ascii") or 0)
        except (OSError, ValueError):
            attempts = 0
        if attempts >= TASK_ATTEMPTS:
            self._task_failed(path, f"interrupted {attempts} times (the agent stopped while it ran): not run again")
            return False
        atomic_write(marker, str(attempts + 1).encode())
        return True

    def _task_failed(self, path: Path, reason: str) -> None:
        """Report a task failed with the reason (its run left no result) and drop it from the inbox."""
        from agent.daemon.inbox import write_done

        try:
            task_id = str(json.loads(path.read_text(encoding="utf-8"))["task_id"])
        except (OSError, ValueError, KeyError, TypeError):
            task_id = path.stem.removeprefix("task-")
        if (self.inbox / f"done-{task_id}.json").exists():  # the run wrote its completion just before it ended
            path.unlink(missing_ok=True)
            path.with_suffix(".attempts").unlink(missing_ok=True)
            return
        write_done(self.inbox, task_id, "failed", reason, None)
        log.error("task %s failed: %s", task_id, reason)
        # The inspection record says so too: written by a child ("task_failed"), the daemon loads no record code.
        try:
            task: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            task = {}
        atomic_write(self.inbox / f"failed-{path.stem.removeprefix('task-')}.json",
                     json.dumps({"task": task if isinstance(task, dict) else {}, "task_id": task_id,
                                 "reason": reason}).encode())
        path.unlink(missing_ok=True)
        path.with_suffix(".attempts").unlink(missing_ok=True)
        self.wake.set()

    def _task_ended(self, job: RunningJob, outcome: RunOutcome | None) -> None:
        assert job.task_file is not None
        if not job.task_file.exists():  # the run wrote its completion and dropped the task (even if killed after)
            job.task_file.with_suffix(".attempts").unlink(missing_ok=True)
            return
        limits = self.config.limits
        if job.killed_for == "memory":
            reason = (f"killed: memory budget {limits.run_memory / 2**20:.0f} MiB exceeded "
                      f"(peak {job.watch.peak_rss / 2**20:.0f} MiB)")
        elif job.killed_for == "time":
            reason = f"killed: run time budget {limits.run_timeout:.0f} s exceeded"
        elif outcome is not None:  # refused before the task was read (e.g. a bad config.toml)
            reason = f"not run: {outcome.error or 'no result'}"
        else:
            reason = f"the run ended with status {job.proc.returncode} and no result"
        self._task_failed(job.task_file, reason)

    def _start(self, kind: str, scheduled: bool = True, extra: list[str] | None = None,
               task_file: Path | None = None) -> None:
        argv = [sys.executable, "-m", "agent.daemon.job", kind, "--state", str(self.state), *(extra or [])]
        if self.config_path is not None:
            argv += ["--config", str(self.config_path)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
        limits = self.config.limits
        # Writing a failed task's record entry is the daemon's bookkeeping, not a test run: the daemon's budget
        memory = max(limits.run_memory, limits.daemon_memory) if kind == "task_failed" else limits.run_memory
        self.jobs[kind] = RunningJob(kind, proc, RunWatch(proc.pid, memory, limits.run_timeout,
                                                          time.monotonic()), time.monotonic(), scheduled=scheduled,
                                     task_file=task_file)
        if scheduled:
            self.scheduler.started(kind)
        log.info("%s started (pid %d)", kind, proc.pid)

    def _poll_jobs(self) -> None:
        now = time.monotonic()
        for kind, job in list(self.jobs.items()):
            if job.proc.poll() is None:
                broke = job.watch.check(now)
                if broke and job.killed_for is None:
                    job.killed_for = broke
                    log.error("%s (pid %d) over its %s budget: killed", kind, job.proc.pid, broke)
                    self.metrics.watchdog_kills.labels(broke).inc()
                    job.watch.kill()
                continue
            del self.jobs[kind]
            self._finished(job, time.monotonic() - job.started_mono)

    def _finished(self, job: RunningJob, elapsed: float) -> None:
        assert job.proc.stdout is not None
        out = job.proc.stdout.read().decode("utf-8", "replace").strip().splitlines()
        job.proc.stdout.close()
        outcome: RunOutcome | None = None
        if out:
            try:
                outcome = RunOutcome.model_validate_json(out[-1])
            except ValueError:
                outcome = None
        m = self.metrics
        m.run_duration.labels(job.kind).observe(elapsed)
        if job.killed_for:
            result = "killed" if job.killed_for == "memory" else "timeout"
        elif outcome is None:
            result = "error"
            log.error("%s ended with status %s and no result", job.kind, job.proc.returncode)
        else:
            result = "ok" if outcome.ok else "error"
        m.runs.labels(job.kind, result).inc()
        if outcome is not None:
            m.run_peak_rss.labels(job.kind).set(outcome.peak_rss_bytes)
            for probe in outcome.probes:
                m.probe_duration.labels(probe.probe).set(probe.duration_s)
                if probe.status in ("error", "timeout"):
                    m.probe_errors.labels(probe.probe).inc()
            if job.kind == "self_inspection":
                for severity, count in outcome.findings.items():
                    m.findings.labels(severity).set(count)
                m.drift.clear()  # no baseline compared: no drift figure rather than a false zero
                for change, count in outcome.drift.items():
                    m.drift.labels(change).set(count)
            if outcome.error:
                log.error("%s failed: %s", job.kind, outcome.error)
            if outcome.spool_refused:
                log.error("%s results not spooled: %s", job.kind, outcome.spool_refused)
        if job.task_file is not None:
            self._task_ended(job, outcome)
        if job.kind == "notices" and (job.killed_for or outcome is None):
            # Not offered again for ever: set aside (the push thread does not fetch them again). A task under
            # such a notice still acknowledges and verifies it in its own run.
            for left in self.inbox.glob("notice-*.json"):
                left.rename(left.with_suffix(".unhandled"))
                log.error("%s set aside: the run acknowledging it ended without a result (%s)", left.name,
                          job.killed_for or f"status {job.proc.returncode}")
        if job.kind == "task_failed" and result != "ok":  # set aside rather than retried for ever
            for left in self.inbox.glob("failed-*.json"):
                left.rename(left.with_suffix(".unrecorded"))
                log.error("%s: the failed task's record entry could not be written (kept as %s)", left.name,
                          left.with_suffix(".unrecorded").name)
        ok = result == "ok" and outcome is not None and outcome.spooled
        if job.scheduled:
            self.scheduler.finished(job.kind, ok)
        if ok:
            m.last_success.labels(job.kind).set(time.time())
        self.wake.set()  # something new may be in the spool, or a task is done: push now
        self.housekeeping()
        footprint.release()  # reading and recording the outcome allocated: back to the idle footprint
        log.info("%s finished: %s in %.1f s", job.kind, result, elapsed)
