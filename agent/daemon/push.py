"""The collector link, in its own thread: push the spool in batches, fetch notices and tasks, report tasks done.

Batches carry the collector's idempotency keys (run id, record seq, notice id); an item leaves the spool only
when the collector's answer names it accepted or duplicate, so a push cut off at any point (agent killed,
network gone, collector down) is simply sent again and changes nothing the second time. Failures back off
exponentially with full jitter (``backoff``), honouring ``Retry-After``.

Notices and tasks are written to ``<state>/inbox`` (whole files) for the daemon, which handles them in child
processes (``agent.daemon.job notices`` / ``task``): verifying a notice and running a test need the services,
which the daemon itself never imports. Finished tasks leave ``<state>/inbox/done-<task>.json``, reported here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from agent.daemon import footprint
from agent.daemon import messages as msg
from agent.daemon.collector_client import CollectorClient, CollectorError
from agent.daemon.identity import Identity
from agent.daemon.metrics import AgentMetrics
from agent.daemon.results import reset_record_offset
from agent.daemon.spool import QueuedItem, Spool
from agent.state import atomic_write
from agent.wire.collector_answers import (
    INGEST_SCHEMA,
    HostIdentity,
    IngestResult,
    NoticeKey,
    TaskCompletion,
    TaskKey,
)

log = logging.getLogger(__name__)

BACKOFF_BASE, BACKOFF_CAP = 2.0, 300.0


def backoff(failures: int, rng: Callable[[], float] = random.random, retry_after: float | None = None) -> float:
    """Seconds to wait after ``failures`` consecutive failures: full jitter over 2^n (capped), at least the
    server's Retry-After."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, failures - 1))
    return float(max(retry_after or 0.0, ceiling * rng()))


@dataclass(frozen=True, slots=True)
class Batch:
    """One ingest batch as sent: ``body`` is the JSON of an ``IngestBatch`` (agent.wire.collector_api)."""

    batch_id: str
    body: bytes


def build_batch(items: Sequence[QueuedItem], host: HostIdentity) -> tuple[Batch, dict[tuple[str, str], str]]:
    """The batch for these spool items and, per (ack kind, ack key), the spool key it settles.

    Runs and acknowledgements go as the JSON text they were spooled with: the child process that ran the test
    (or acknowledged the notice) built them with the wire models (``results.run_item``, ``inbox.ack_item``), and
    the daemon only splices them into the batch, so it never imports those models (its idle footprint). The
    collector validates the whole batch with ``IngestBatch``."""
    runs: list[str] = []
    acks: list[str] = []
    lines: list[tuple[int, str, str]] = []
    owners: dict[tuple[str, str], str] = {}
    for item in items:
        if item.kind == "run":
            runs.append(item.text or _dumps(item.body))
            owners[("run", str(item.body["run_id"]))] = item.key
        elif item.kind == "record":
            lines.append((int(item.body["seq"]), str(item.body["line"]), item.key))
        elif item.kind == "spool_event":
            from agent.daemon.health import event_report

            report = event_report(item.key, item.body, host.hostname)
            runs.append(_dumps(report))
            owners[("run", str(report["run_id"]))] = item.key
        elif item.kind == "acknowledgement":
            acks.append(item.text or _dumps(item.body))
            owners[("acknowledgement", str(item.body["notice_id"]))] = item.key
    lines.sort()
    for seq, _, key in lines:
        owners[("record", str(seq))] = key
    batch_id = uuid.uuid4().hex
    head = _dumps({"schema": INGEST_SCHEMA, "batch_id": batch_id, "host": host.model_dump(mode="json")})
    body = (f'{head[:-1]},"runs":[{",".join(runs)}],"record_lines":{_dumps([line for _, line, _ in lines])},'
            f'"acknowledgements":[{",".join(acks)}]}}')
    return Batch(batch_id, body.encode("utf-8")), owners


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def settle(spool: Spool, result: IngestResult, owners: dict[tuple[str, str], str], state: Path) -> dict[str, int]:
    """Delete what the collector holds, set aside what it refused for good; counts by status."""
    done: list[str] = []
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    rejected: dict[str, str] = {}
    for ack in result.items:
        counts[ack.status] += 1
        if ack.kind == "finding":  # settled with its run (a run and its findings travel together)
            run_id = ack.key.rpartition("@")[2]
            owner = owners.get(("run", run_id))
            if owner and ack.status == "rejected":
                rejected[owner] = f"finding {ack.key}: {ack.reason}"
            continue
        owner = owners.get((ack.kind, ack.key))
        if owner is None:
            continue
        if ack.status == "rejected":
            if ack.kind == "record" and (ack.reason or "").startswith("gap"):
                reset_record_offset(spool)  # the collector misses earlier entries: offer the record again
                continue
            rejected[owner] = ack.reason or "rejected"
        else:
            done.append(owner)
    for key in rejected:
        if key in done:
            done.remove(key)
    spool.ack(done)
    for key, reason in rejected.items():
        spool.reject(key, reason)
    return counts


class PushWorker(threading.Thread):
    def __init__(self, client: CollectorClient, spool_factory: Callable[[], Spool], metrics: AgentMetrics,
                 state: Path, host: HostIdentity, push_interval: float, task_interval: float,
                 batch_items: int, wake: threading.Event, identity: Identity | None = None,
                 poke: threading.Event | None = None, lang: str = "en") -> None:
        super().__init__(name="collector", daemon=True)
        self.client = client
        self.spool_factory = spool_factory
        self.metrics = metrics
        self.state = state
        self.inbox = state / "inbox"
        self.host = host
        self.push_interval = push_interval
        self.task_interval = task_interval
        self.batch_items = batch_items
        self.wake = wake  # set by the daemon when a run has spooled something
        self.stopping = threading.Event()
        self.failures = 0
        self.identity = identity
        self.poke = poke or threading.Event()  # tells the daemon's loop that the inbox has work
        self.lang = lang  # of the log lines a person reads (agent.toml `lang`)
        self.renew_at: dt.datetime | None = None  # when the current certificate is due for renewal (cached)
        self.advised = ""  # the refusal code last explained in the log (said once per streak, not every retry)
        self.pushed_since_release = False

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.is_alive():
            self.join(timeout=30)
        self.client.close()

    def run(self) -> None:
        spool = self.spool_factory()
        next_tasks = 0.0
        try:
            while not self.stopping.is_set():
                wait = self.push_interval
                try:
                    self.maybe_renew()  # before pushing: a certificate about to run out is renewed first
                    more = self.push_once(spool)
                    if time.monotonic() >= next_tasks:
                        self.poll_work()
                        self.report_done()
                        next_tasks = time.monotonic() + self.task_interval
                    self.failures = 0
                    self.advised = ""
                    self.metrics.collector_up.set(1)
                    if more:
                        continue
                    if self.pushed_since_release:
                        self.pushed_since_release = False
                        footprint.release()  # the spool is drained: the batches' memory goes back
                except CollectorError as exc:
                    self.failures += 1
                    self.metrics.collector_up.set(0)
                    self.metrics.push_failures.labels(exc.reason).inc()
                    wait = backoff(self.failures, retry_after=exc.retry_after)
                    if exc.advice is not None and exc.code != self.advised:
                        self.advised = exc.code
                        log.error("%s", exc.advice.get(self.lang))
                    log.warning("%s", msg.RETRYING(problem=exc.said, wait=wait).get(self.lang))
                self.wake.wait(wait)
                self.wake.clear()
        finally:
            spool.close()

    def push_once(self, spool: Spool) -> bool:
        """Send one batch; True when a full batch went (more is waiting)."""
        items = spool.batch(self.batch_items)
        if not items:
            return False
        batch, owners = build_batch(items, self.host)
        spool.mark_attempt([i.key for i in items])
        result = self.client.ingest(batch.body)
        counts = settle(spool, result, owners, self.state)
        for status, n in counts.items():
            if n:
                self.metrics.pushed.labels(status).inc(n)
        self.metrics.last_push.set(time.time())
        self.metrics.spool.latest = spool.stats()
        self.pushed_since_release = True
        log.info("pushed batch %s: %s", batch.batch_id, counts)
        return len(items) >= self.batch_items

    def poll_work(self) -> None:
        self.inbox.mkdir(mode=0o700, exist_ok=True)
        # Each notice and task is written whole, as the collector sent it: the child that handles it validates it
        # with the full models and verifies the notice (agent.daemon.job); here only its id is read.
        for notice in self.client.notices().notices:
            path = self.inbox / f"notice-{_safe(_key(NoticeKey, notice).notice.id)}.json"
            if not any(p.exists() for p in (path, path.with_suffix(".handled"), path.with_suffix(".unhandled"))):
                atomic_write(path, _dumps(notice).encode("utf-8"))
                self.poke.set()
        for task in self.client.tasks().tasks:
            task_id = _key(TaskKey, task).task_id
            path = self.inbox / f"task-{_safe(task_id)}.json"
            if not path.exists() and not (self.inbox / f"done-{_safe(task_id)}.json").exists():
                atomic_write(path, _dumps(task).encode("utf-8"))
                self.poke.set()

    def report_done(self) -> None:
        for done in sorted(self.inbox.glob("done-*.json")):
            data = json.loads(done.read_text(encoding="utf-8"))
            try:
                self.client.complete(data["task_id"], TaskCompletion.model_validate(data["completion"]))
            except CollectorError as exc:
                if not exc.permanent:
                    raise
                log.warning("task %s: completion not taken (%s); its results still arrive through ingest",
                            data["task_id"], exc)
            self.metrics.tasks.labels(data["outcome"]).inc()
            done.unlink()
            log.info("task %s reported %s", data["task_id"], data["outcome"])


    def maybe_renew(self) -> None:
        """A new key and certificate once less than a third of the current one's life is left; the spool and
        the agent's id and unit are untouched. The new key is written (``identity.key.next``) before the
        collector is asked to take it, so a renewal cut off after the collector switched keys is finished on
        the next try instead of locking the agent out."""
        from agent.daemon.identity import make_csr, renewal_time
        from baselines import ed25519

        if self.identity is None:
            return
        if self.identity.next_key_path.exists():
            self._resume_renewal()
        now = dt.datetime.now(dt.UTC)
        if self.renew_at is None:
            enrolment = self.identity.enrolment()
            if enrolment is None:
                return
            self.renew_at = renewal_time(enrolment)
        if now < self.renew_at:
            return
        enrolment = self.identity.enrolment()
        if enrolment is None:
            return
        key = ed25519.generate()
        atomic_write(self.identity.next_key_path, ed25519.private_pem(key), mode=0o600)
        try:
            renewed = self.client.renew(make_csr(key, self.host.hostname))
        except CollectorError as exc:
            if exc.permanent and exc.code != "bad-signature":  # refused: the collector kept the current key
                self.identity.next_key_path.unlink(missing_ok=True)
                log.error("%s", msg.RENEWAL_REFUSED(problem=exc.said).get(self.lang))
            raise
        updated = enrolment.model_copy(update={"not_after": renewed.not_after,
                                               "enrolled_at": dt.datetime.now(dt.UTC).isoformat()})
        self.identity.save(updated, ed25519.private_pem(key), renewed.certificate_pem, None)
        self.client.key = key
        self.renew_at = renewal_time(updated)
        log.info("%s", msg.RENEWED(until=renewed.not_after).get(self.lang))

    def _resume_renewal(self) -> None:
        """A renewal that wrote its next key but not the enrolment: which key does the collector hold now?"""
        assert self.identity is not None
        from agent.keys import load_private_key_file

        try:
            self.client.notices()
        except CollectorError as exc:
            if exc.code != "bad-signature":
                raise
            current = self.client.key
            self.client.key = load_private_key_file(self.identity.next_key_path, "agent identity key")
            try:
                self.client.notices()
            except CollectorError:
                self.client.key = current
                raise
            atomic_write(self.identity.key_path, self.identity.next_key_path.read_bytes(), mode=0o600)
            log.warning("%s", msg.RENEWAL_RESUMED().get(self.lang))
            self.renew_at = dt.datetime.now(dt.UTC)  # renew again at once: the certificate on file is the old one
        self.identity.next_key_path.unlink(missing_ok=True)


K = TypeVar("K", NoticeKey, TaskKey)


def _key(model: type[K], document: object) -> K:
    try:
        return model.model_validate(document)
    except ValueError as exc:
        raise CollectorError("bad_response", msg.LINK_BAD_ANSWER(error=exc)) from None


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:120]
