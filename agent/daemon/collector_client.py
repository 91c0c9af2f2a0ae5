"""The agent's side of the collector protocol (agent.wire.collector_api): every call signed with the enrolled
identity key, over HTTPS that trusts only the pinned collector CA.

Plain ``http.client``: the daemon keeps one connection and needs nothing more, and the stdlib client keeps the
idle daemon light. For the same reason it speaks the protocol with the light models of
``agent.wire.collector_answers`` only: an ingest batch goes as the JSON bytes the caller built (signed as sent),
and tasks and notices come back as JSON objects for the child processes that validate them.
Failures become :class:`CollectorError` with a bounded ``reason`` (the metric label).
"""

from __future__ import annotations

import http.client
import json
import secrets
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from agent.daemon import messages as msg
from agent.wire.collector_answers import (
    HEADER_AGENT,
    HEADER_BOOT,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIME,
    ErrorBody,
    IngestResult,
    RawNotices,
    RawTaskLease,
    RenewRequest,
    RenewResponse,
    TaskCompletion,
    request_signing_bytes,
)
from baselines.model import Text

if TYPE_CHECKING:
    from baselines.ed25519 import Ed25519PrivateKey
    from probes.i18n import Message


class CollectorError(Exception):
    """``str()`` is the English line (logs, tests); ``said`` the catalogue message, in either language."""

    def __init__(self, reason: str, said: Message, status: int | None = None, retry_after: float | None = None,
                 code: str = "") -> None:
        super().__init__(said.get("en"))
        self.reason = reason  # unreachable | tls | timeout | http_4xx | http_5xx | rate_limited | bad_response
        self.said = said
        self.status = status
        self.retry_after = retry_after
        self.code = code  # the collector's error code (revoked, clock-skew, bad-signature, ...), when it sent one

    @property
    def permanent(self) -> bool:
        """A 4xx other than 408/429: re-sending the same thing will not help (bad schema, revoked)."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in (408, 429)

    @property
    def advice(self) -> Message | None:
        """What a person must do, for the refusals that no retry cures (revoked, expired, clock skew)."""
        if self.code == "revoked":
            return msg.REVOKED()
        if self.code == "certificate-expired":
            return msg.EXPIRED()
        if self.code == "clock-skew":
            return msg.CLOCK_SKEW(detail=str(self))
        return None


class _StaleConnection(Exception):
    """The peer closed the connection before answering (``error``): on a kept-alive one, simply idle too long."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error

    def unreachable(self, url: str) -> CollectorError:
        return CollectorError("unreachable", msg.COLLECTOR_UNREACHABLE(url=url, error=self.error))


@dataclass
class CollectorClient:
    url: str
    ca_file: str
    agent_id: str
    key: Ed25519PrivateKey
    boot_id: str
    timeout: float = 30.0
    _conn: http.client.HTTPSConnection | None = None

    def _connection(self) -> http.client.HTTPSConnection:
        if self._conn is None:
            parts = urlsplit(self.url)
            context = ssl.create_default_context(cafile=self.ca_file)  # the pinned CA only, not the system store
            self._conn = http.client.HTTPSConnection(parts.hostname or "", parts.port or 443, timeout=self.timeout,
                                                     context=context)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path_qs: str, body: bytes = b"", timeout: float | None = None) -> bytes:
        reused = self._conn is not None
        try:
            return self._send(method, path_qs, body, timeout)
        except _StaleConnection as stale:
            if not reused:
                raise stale.unreachable(self.url) from None
        # The kept-alive connection was closed by the collector while it sat idle (its keep-alive timeout is about
        # the task poll interval): the request never got an answer. Once more on a new connection, signed anew
        # (the collector refuses a nonce it has seen); every request is idempotent (ids and keys), renewal too.
        try:
            return self._send(method, path_qs, body, timeout)
        except _StaleConnection as stale:
            raise stale.unreachable(self.url) from None

    def _send(self, method: str, path_qs: str, body: bytes, timeout: float | None) -> bytes:
        from baselines import ed25519

        prefix = urlsplit(self.url).path.rstrip("/")
        full = prefix + path_qs
        stamp, nonce = str(int(time.time())), secrets.token_hex(16)
        headers = {HEADER_AGENT: self.agent_id, HEADER_TIME: stamp, HEADER_NONCE: nonce, HEADER_BOOT: self.boot_id,
                   HEADER_SIGNATURE: ed25519.sign_b64(self.key, request_signing_bytes(method, full, stamp, nonce,
                                                                                       body)),
                   "Content-Type": "application/json"}
        conn = self._connection()
        try:
            if timeout is not None and conn.sock is not None:
                conn.sock.settimeout(timeout)
            conn.request(method, full, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError,
                ssl.SSLZeroReturnError) as exc:
            self.close()
            raise _StaleConnection(exc) from None
        except ssl.SSLError as exc:
            self.close()
            raise CollectorError("tls", msg.LINK_TLS(error=exc)) from None
        except TimeoutError:
            self.close()
            raise CollectorError("timeout", msg.LINK_TIMEOUT(seconds=self.timeout)) from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise CollectorError("unreachable", msg.COLLECTOR_UNREACHABLE(url=self.url, error=exc)) from None
        if response.status >= 400:
            raise _error(response.status, data, response.getheader("Retry-After"))
        return data

    def ingest(self, batch_json: bytes) -> IngestResult:
        """Send one ingest batch (an ``IngestBatch`` as JSON, ``push.build_batch``): these bytes are signed and sent."""
        return _parse(IngestResult, self.request("POST", "/api/v1/agent/ingest", batch_json))

    def notices(self) -> RawNotices:
        return _parse(RawNotices, self.request("GET", "/api/v1/agent/notices"))

    def tasks(self, wait: int = 0) -> RawTaskLease:
        return _parse(RawTaskLease, self.request("GET", f"/api/v1/agent/tasks?wait={wait}",
                                                 timeout=wait + self.timeout))

    def complete(self, task_id: str, completion: TaskCompletion) -> None:
        self.request("POST", f"/api/v1/agent/tasks/{task_id}/complete", completion.model_dump_json().encode())

    def renew(self, csr_pem: str) -> RenewResponse:
        return _parse(RenewResponse, self.request("POST", "/api/v1/agent/renew",
                                                  RenewRequest(csr_pem=csr_pem).model_dump_json().encode()))


M = TypeVar("M", IngestResult, RawNotices, RawTaskLease, RenewResponse)


def _parse(model: type[M], data: bytes) -> M:
    try:
        return model.model_validate_json(data)
    except ValueError as exc:
        raise CollectorError("bad_response", msg.LINK_BAD_ANSWER(error=exc)) from None


def _error(status: int, data: bytes, retry_after: str | None) -> CollectorError:
    code = ""
    try:
        body = ErrorBody.model_validate(json.loads(data))
        said, code = Text(f"{body.error}: {body.message}", body.message_zh), body.error
    except (ValueError, TypeError):
        text = data[:200].decode("utf-8", "replace")
        said = Text(text, "（无说明）")
    wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
    reason = "rate_limited" if status == 429 else "http_5xx" if status >= 500 else "http_4xx"
    return CollectorError(reason, msg.LINK_REFUSED(status=status, reason=said), status, wait, code)
