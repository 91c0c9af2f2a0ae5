"""SSHTransport: the probes.transport.Transport protocol over SSH (paramiko), so that the host probes run on an
agentless target unchanged (Art. 24(3) remote technical testing).

- Files and commands go through one long-lived POSIX shell on the target (``sh -s`` on one exec channel, through
  ``sudo -n`` when configured), which runs the batch scripts of probes.remote.ssh_batch: many files, links or
  directories per round trip. Every channel starts the user's login shell and its rc files, so a target gets
  one such shell, shared by the probe threads; single calls are batches of one. SFTP (the target's
  ``sftp-server``, through ``sudo -n`` when configured) is left only for stat() on targets without GNU find.
- Commands run with a clean environment and a timeout (a command that times out takes its shell with it).
- Host keys are checked against the agent's own known_hosts (never trust-on-first-use): an unknown key is
  refused unless ``accept_new_host_key`` is set, and then it is written down and reported to the caller (who
  records it); a changed key is always refused.
- A jump host is reached first and the target through a ``direct-tcpip`` channel (like ProxyJump).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probes import cancel
from probes.endpoint import parse_endpoint
from probes.key_fingerprint import sha256_fingerprint
from probes.remote import ssh_batch
from probes.transport import DEFAULT_MAX_BYTES, CommandResult, CommandUnavailable, FileStat

if TYPE_CHECKING:
    import paramiko

log = logging.getLogger(__name__)

ENV = "PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C LANG=C"
SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/lib/ssh/sftp-server",
                "/usr/libexec/sftp-server", "/usr/lib/sftp-server")
EOF_GRACE = 2.0
BATCH_TIMEOUT = 60.0  # one batch script; the probe's own deadline usually ends the run first
# SFTP clients, and batch shells, per target: every channel costs a start of the user's login shell (and its
# rc files) on the target, often more CPU than the probes' own work; batched calls are short, so threads share.
POOL_SIZE = 1


@dataclass(frozen=True, slots=True)
class SSHEndpoint:
    host: str
    port: int = 22
    user: str | None = None

    @classmethod
    def parse(cls, text: str, default_user: str | None = None, default_port: int = 22) -> SSHEndpoint:
        ep = parse_endpoint(text)  # probes/endpoint.py: the same rule as the notice's SSH targets
        return cls(ep.host, ep.port if ep.port is not None else default_port, ep.user or default_user)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SSHOptions:
    user: str = "root"
    key_file: str | None = None
    use_agent: bool = True
    known_hosts: Path | None = None  # the agent's own known_hosts; None: nothing is known, every key refused
    host_keys: tuple[str, ...] = ()  # pinned SHA256 fingerprints accepted for a host not in known_hosts
    accept_new_host_key: bool = False
    jump: SSHEndpoint | None = None
    sudo: bool = False
    connect_timeout: float = 10.0
    retries: int = 2
    retry_backoff: float = 0.5


@dataclass(frozen=True, slots=True)
class NewHostKey:
    """A host key written to known_hosts because the operator said --accept-new-host-key."""

    host: str  # as in known_hosts: "host" or "[host]:port"
    key_type: str
    fingerprint: str  # SHA256:base64


class HostKeyRejected(Exception):
    """The target's host key is unknown (and not accepted) or differs from the one recorded."""

    def __init__(self, host: str, reason: str, fingerprint: str, expected: str | None = None) -> None:
        detail = f"; known_hosts has {expected}" if expected else ""
        super().__init__(f"{host}: host key {reason} ({fingerprint}{detail})")
        self.host = host
        self.reason = reason  # unknown | changed
        self.fingerprint = fingerprint
        self.expected = expected


class SSHConnectError(Exception):
    """The target could not be reached or refused authentication."""


def fingerprint(key: paramiko.PKey) -> str:
    return sha256_fingerprint(key.asbytes())


def _known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


_KH_LOCK = threading.Lock()


def _record_host_key(path: Path, host: str, key: paramiko.PKey) -> None:
    """Append one line to known_hosts under a process and a file lock (parallel targets, parallel runs)."""
    line = f"{host} {key.get_name()} {key.get_base64()}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _KH_LOCK, open(path, "a", encoding="ascii") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def _host_key_policy(options: SSHOptions, on_new: Callable[[NewHostKey], None] | None) -> Any:
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
            fp = fingerprint(key)
            if fp in options.host_keys:  # pinned by the operator's configuration: trusted, nothing written
                client.get_host_keys().add(hostname, key.get_name(), key)
                return
            if not options.accept_new_host_key or options.known_hosts is None:
                raise HostKeyRejected(hostname, "unknown", fp)
            _record_host_key(options.known_hosts, hostname, key)
            client.get_host_keys().add(hostname, key.get_name(), key)
            log.info("accepted new host key for %s: %s", hostname, fp)
            if on_new:
                on_new(NewHostKey(hostname, key.get_name(), fp))

    return Policy()


def _oserror(exc: BaseException, path: str) -> OSError:
    """paramiko raises IOError(errno, text) for SFTP statuses; keep the errno so callers see FileNotFoundError."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return OSError(exc.errno, exc.strerror or str(exc), path)
    return OSError(errno.EIO, str(exc), path)


class SSHTransport:
    """One agentless target. ``connect()`` first (or use as a context manager); ``close()`` from any thread
    stops every operation in flight (used when a notice window closes)."""

    name = "ssh"

    def __init__(self, endpoint: SSHEndpoint, options: SSHOptions,
                 on_new_host_key: Callable[[NewHostKey], None] | None = None) -> None:
        self.endpoint = endpoint if endpoint.user else SSHEndpoint(endpoint.host, endpoint.port, options.user)
        self.options = options
        self._on_new = on_new_host_key
        self._client: paramiko.SSHClient | None = None
        self._jump: paramiko.SSHClient | None = None
        self._sftps: list[Any] = []  # every SFTP client opened (closed by close())
        self._sftp_idle: list[Any] = []
        self._shells: list[Any] = []  # every batch shell channel opened
        self._shell_idle: list[Any] = []
        self._pool_cv = threading.Condition()
        self._pool_sizes = {"sftp": 0, "shell": 0}
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._is_root = False
        self._which: dict[str, str | None] = {}
        self._sftp_server: str | None = None
        self.host_key_fingerprint: str | None = None

    # --- connection -------------------------------------------------------------------------------------
    def connect(self) -> SSHTransport:
        paramiko_log = logging.getLogger("paramiko")
        if paramiko_log.level == logging.NOTSET:
            # paramiko logs every dropped connection with a traceback; we report failures ourselves.
            paramiko_log.setLevel(logging.CRITICAL)
        last: Exception | None = None
        for attempt in range(self.options.retries + 1):
            try:
                self._connect_once()
                break
            except (HostKeyRejected, SSHConnectError):
                self.close()
                raise
            except (OSError, EOFError) as exc:
                last = exc
            except Exception as exc:
                import paramiko

                if not isinstance(exc, paramiko.SSHException):
                    self.close()
                    raise
                last = exc
            self._close_clients()
            if attempt < self.options.retries:
                time.sleep(self.options.retry_backoff * (2 ** attempt))
        else:
            self.close()
            raise SSHConnectError(f"{self.endpoint}: cannot connect: {type(last).__name__}: {last}")
        self._is_root = self._probe_root()
        return self

    def _client_for(self, endpoint: SSHEndpoint, sock: Any = None) -> paramiko.SSHClient:
        import paramiko

        if self._closed:
            raise SSHConnectError(f"{endpoint}: stopped before connecting")
        if sock is None:
            # Our own socket, so that close() from another thread can abort a connect that hangs.
            try:
                tcp = socket.create_connection((endpoint.host, endpoint.port), timeout=self.options.connect_timeout)
            except OSError as exc:
                if self._closed:
                    raise SSHConnectError(f"{endpoint}: stopped while connecting: {exc}") from None
                raise
            with self._lock:
                self._socks.append(tcp)
            sock = tcp
        client = paramiko.SSHClient()
        if self.options.known_hosts is not None and self.options.known_hosts.exists():
            client.load_host_keys(str(self.options.known_hosts))
        client.set_missing_host_key_policy(_host_key_policy(self.options, self._on_new))
        opts = self.options
        try:
            client.connect(
                endpoint.host, endpoint.port, username=endpoint.user or opts.user, key_filename=opts.key_file,
                allow_agent=opts.use_agent, look_for_keys=False, timeout=opts.connect_timeout,
                banner_timeout=opts.connect_timeout, auth_timeout=opts.connect_timeout,
                channel_timeout=opts.connect_timeout, sock=sock,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyRejected(_known_hosts_name(endpoint.host, endpoint.port), "changed",
                                  fingerprint(exc.key), fingerprint(exc.expected_key)) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise SSHConnectError(f"{endpoint}: authentication failed: {exc}") from None
        except BaseException:
            client.close()
            if self._closed:
                raise SSHConnectError(f"{endpoint}: stopped while connecting") from None
            raise
        return client

    def _connect_once(self) -> None:
        sock = None
        if self.options.jump is not None:
            self._jump = self._client_for(self.options.jump)
            jt = self._jump.get_transport()
            assert jt is not None
            sock = jt.open_channel("direct-tcpip", (self.endpoint.host, self.endpoint.port), ("127.0.0.1", 0),
                                   timeout=self.options.connect_timeout)
        self._client = self._client_for(self.endpoint, sock)
        transport = self._client.get_transport()
        assert transport is not None
        transport.set_keepalive(15)
        key = transport.get_remote_server_key()
        self.host_key_fingerprint = fingerprint(key)

    def _probe_root(self) -> bool:
        # Through the batch shell, which the probes use next anyway: every new channel costs a start of the
        # user's login shell on the target (with its rc files), so channels are few and reused.
        try:
            (payload, status), = self._batch("uid", ["/"])
        except OSError as exc:
            log.debug("%s: id -u: %s", self.endpoint, exc)
            return False
        return status == "0" and payload.strip() == b"0"

    def _close_clients(self) -> None:
        with self._lock:
            sftps, self._sftps = self._sftps, []
            shells, self._shells = self._shells, []
            socks, self._socks = self._socks, []
        with self._pool_cv:
            self._sftp_idle, self._shell_idle = [], []
            self._pool_sizes = {"sftp": 0, "shell": 0}
            self._pool_cv.notify_all()
        for chan in shells:
            with contextlib.suppress(Exception):
                chan.close()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        for sftp in sftps:
            with contextlib.suppress(Exception):
                sftp.close()
        for client in (self._client, self._jump):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        self._client = self._jump = None

    def close(self) -> None:
        self._closed = True
        self._close_clients()

    def __enter__(self) -> SSHTransport:
        return self.connect() if self._client is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transport(self) -> paramiko.Transport:
        if self._closed or self._client is None:
            raise ConnectionAbortedError(errno.ECONNABORTED, f"{self.endpoint}: connection closed")
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectionAbortedError(errno.ECONNABORTED, f"{self.endpoint}: connection lost")
        return transport

    # --- SFTP -------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _pooled(self, kind: str, idle: list[Any], opener: Callable[[], Any],
                healthy: Callable[[Any], bool] = lambda _: False) -> Iterator[Any]:
        """A channel (SFTP client or batch shell) from a small pool: probes run in several threads, and each
        channel opened costs a login-shell start on the target, so a few are shared instead of one per thread.
        A channel that failed mid-use is dropped, not returned, unless ``healthy`` says it is fine (an SFTP client
        after a file error)."""
        item = None
        with self._pool_cv:
            while item is None:
                if self._closed:
                    raise ConnectionAbortedError(errno.ECONNABORTED, f"{self.endpoint}: connection closed")
                if idle:
                    item = idle.pop()
                elif self._pool_sizes[kind] < POOL_SIZE:
                    self._pool_sizes[kind] += 1
                    break
                else:
                    self._pool_cv.wait(0.5)
        if item is None:
            try:
                item = opener()
            except BaseException:
                with self._pool_cv:
                    self._pool_sizes[kind] -= 1
                    self._pool_cv.notify()
                raise
        ok = False
        try:
            yield item
            ok = True
        finally:
            if not ok:
                with contextlib.suppress(Exception):
                    ok = healthy(item)
            with self._pool_cv:
                if ok and not self._closed:
                    idle.append(item)
                else:
                    self._pool_sizes[kind] = max(0, self._pool_sizes[kind] - 1)
                    with contextlib.suppress(Exception):
                        item.close()
                self._pool_cv.notify()

    def _sftp(self) -> contextlib.AbstractContextManager[paramiko.SFTPClient]:
        return self._pooled("sftp", self._sftp_idle, self._open_sftp,
                            lambda sftp: bool(sftp.sock.active) and not sftp.sock.closed)

    def _open_sftp(self) -> paramiko.SFTPClient:
        import paramiko

        transport = self._transport()
        if self.options.sudo:
            server = self._find_sftp_server()
            chan = transport.open_session(timeout=self.options.connect_timeout)
            chan.exec_command(f"sudo -n {shlex.quote(server)}")
            sftp = paramiko.SFTPClient(chan)
        else:
            opened = paramiko.SFTPClient.from_transport(transport)
            if opened is None:
                raise ConnectionAbortedError(errno.ECONNABORTED, f"{self.endpoint}: no SFTP subsystem")
            sftp = opened
        with self._lock:
            self._sftps.append(sftp)
        return sftp

    def _find_sftp_server(self) -> str:
        if self._sftp_server is None:
            script = "; ".join(f"[ -x {p} ] && {{ echo {p}; exit 0; }}" for p in SFTP_SERVERS) + "; exit 1"
            result = self._exec(f"sh -c {shlex.quote(script)}", timeout=self.options.connect_timeout)
            if result.returncode != 0 or not result.stdout.strip():
                raise ConnectionAbortedError(errno.ENOENT, f"{self.endpoint}: --sudo needs sftp-server on the "
                                                           "target (none of the usual paths)")
            self._sftp_server = result.stdout.strip()
        return self._sftp_server

    # Single calls are batches of one in the batch shell: the same answers as the batched calls (and as a local
    # read), and no SFTP channel to start unless a target lacks GNU find (stat then falls back to SFTP).
    def read_bytes(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        value = self.read_many([path], max_bytes)[path]
        if isinstance(value, OSError):
            raise value
        return value

    def read_text(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
        return self.read_bytes(path, max_bytes).decode("utf-8", errors="replace")

    def list_dir(self, path: str) -> list[str]:
        value = self.list_many([path])[path]
        if isinstance(value, OSError):
            raise value
        return value

    def exists(self, path: str) -> bool:
        # Like os.path.lexists, this never raises: a lost connection reads as "absent" here, and the next read
        # that matters raises instead (the runner calls exists() outside its per-probe error handling).
        import paramiko

        try:
            value = self.stat_many([path], follow=False)[path]
        except (OSError, EOFError, paramiko.SSHException, subprocess.TimeoutExpired) as exc:
            log.debug("%s: exists(%s): %s", self.endpoint, path, exc)
            return False
        return not isinstance(value, OSError)

    def stat(self, path: str, follow: bool = True) -> FileStat:
        value = self.stat_many([path], follow)[path]
        if isinstance(value, OSError):
            raise value
        return value

    def _sftp_stat(self, path: str, follow: bool) -> FileStat:
        # SFTP (v3) carries no inode or ctime: inode is 0 and ctime repeats mtime.
        try:
            with self._sftp() as sftp:
                st = sftp.stat(path) if follow else sftp.lstat(path)
        except (OSError, EOFError) as exc:
            raise _oserror(exc, path) from None
        mtime_ns = int(st.st_mtime or 0) * 1_000_000_000
        return FileStat(int(st.st_mode or 0), int(st.st_uid or 0), int(st.st_gid or 0), int(st.st_size or 0), 0,
                        mtime_ns, mtime_ns)

    def readlink(self, path: str) -> str:
        value = self.readlink_many([path])[path]
        if isinstance(value, OSError):
            raise value
        return value

    # --- commands ---------------------------------------------------------------------------------------
    @property
    def is_root(self) -> bool:
        return self._is_root

    def which(self, name: str) -> str | None:
        if name not in self._which:
            (payload, status), = self._batch("which", [name])
            found = ssh_batch.decode_path(payload).strip()
            self._which[name] = found if status == "0" and found.startswith("/") else None
        return self._which[name]

    def run(self, argv: list[str], timeout: float = 10.0) -> CommandResult:
        if not argv:
            raise ValueError("empty command")
        if "/" not in argv[0] and self.which(argv[0]) is None:
            raise CommandUnavailable(f"{argv[0]}: not installed on {self.endpoint.host}")
        # In the batch shell (with sudo when configured) rather than a new exec channel, whose login shell start
        # would cost more than most commands. A command that times out takes its shell with it.
        if len(shlex.join(argv)) > 65536:
            raise ValueError("command line too long")
        token = cancel.current()  # the probe run's deadline bounds the command too (probes/cancel.py)
        token.check()
        try:
            (stdout, _), (err_and_code, _) = self._batch("run", list(argv), timeout=max(0.1, token.bound(timeout)))
        except subprocess.TimeoutExpired:
            token.check()
            raise subprocess.TimeoutExpired(argv, timeout) from None
        stderr, _, code = err_and_code.rpartition(b".")
        return CommandResult(tuple(argv), int(code) if code.isdigit() else 255,
                             stdout.decode("utf-8", errors="replace"), stderr.decode("utf-8", errors="replace"))

    def _exec(self, command: str, timeout: float) -> CommandResult:
        code, out, err = self._exec_bytes(command, timeout)
        return CommandResult((command,), code, out.decode("utf-8", errors="replace"),
                             err.decode("utf-8", errors="replace"))

    def _exec_bytes(self, command: str, timeout: float, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
        transport = self._transport()
        chan = transport.open_session(timeout=self.options.connect_timeout)
        try:
            chan.exec_command(command)
            if stdin:
                # The batch scripts read all of their input before they print (one "set --" line), so sending
                # it all first cannot deadlock on the channel windows.
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            exited: float | None = None
            deadline = time.monotonic() + timeout
            while True:
                if chan.recv_ready():
                    out += chan.recv(1 << 20)
                    continue
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    continue
                if chan.exit_status_ready():
                    # sshd may send the exit status before the last output (it reaps the child while output is
                    # still in the pipe): wait for EOF too, but not forever (a daemon left holding the pipe).
                    if chan.eof_received:
                        break
                    if exited is None:
                        exited = time.monotonic()
                    elif time.monotonic() - exited > EOF_GRACE:
                        break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired(command, timeout)
                if self._closed:
                    raise ConnectionAbortedError(errno.ECONNABORTED, f"{self.endpoint}: connection closed")
                select.select([chan], [], [], min(left, 0.2))
            # Output that arrived with the exit status.
            while chan.recv_ready():
                out += chan.recv(1 << 20)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            return chan.recv_exit_status(), bytes(out), bytes(err)
        except (TimeoutError, EOFError) as exc:
            raise ConnectionAbortedError(errno.ECONNABORTED, f"{self.endpoint}: {exc}") from None
        finally:
            chan.close()

    # --- batched file operations (probes.remote.ssh_batch) ----------------------------------------------
    def _open_shell(self) -> Any:
        transport = self._transport()
        chan = transport.open_session(timeout=self.options.connect_timeout)
        with self._lock:
            self._shells.append(chan)
        chan.exec_command(f"{'sudo -n ' if self.options.sudo else ''}env -i {ENV} sh -s")
        return chan

    def _shell_run(self, chan: Any, script: bytes, token: str, timeout: float) -> bytes:
        """Send one script to a batch shell and read its output up to the script's terminator line."""
        chan.sendall(ssh_batch.wrap_script(script))
        end = ssh_batch.terminator(token)
        out = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            if chan.recv_ready():
                before = len(out)
                out += chan.recv(1 << 20)
                if out.find(end, max(0, before - len(end))) >= 0:
                    return bytes(out[:out.rfind(end)])
                continue
            if chan.recv_stderr_ready():
                log.debug("%s: batch shell: %r", self.endpoint, chan.recv_stderr(65536)[:200])
                continue
            if chan.eof_received or chan.closed or chan.exit_status_ready():
                raise OSError(errno.EIO, f"{self.endpoint}: batch shell ended early ({len(out)} bytes)")
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired("batch shell", timeout)
            if self._closed:
                raise ConnectionAbortedError(errno.ECONNABORTED, f"{self.endpoint}: connection closed")
            select.select([chan], [], [], min(left, 0.2))

    def _run_script(self, script: bytes, token: str, timeout: float) -> bytes:
        try:
            with self._pooled("shell", self._shell_idle, self._open_shell) as chan:
                return self._shell_run(chan, script, token, timeout)
        except (EOFError, TimeoutError) as exc:
            raise ConnectionAbortedError(errno.ECONNABORTED, f"{self.endpoint}: {exc}") from None

    def _batch(self, kind: str, paths: list[str], max_bytes: int = 0, follow: bool = False,
               timeout: float = BATCH_TIMEOUT) -> list[tuple[bytes, str]]:
        """Run one batch script per chunk of paths in a pooled shell; (payload, status) per record, in order."""
        records: list[tuple[bytes, str]] = []
        step = len(paths) if kind == "run" else ssh_batch.CHUNK_PATHS
        for i in range(0, len(paths), step):
            chunk = paths[i:i + step]
            token = ssh_batch.new_token()
            script = ssh_batch.build_script(kind, chunk, token, max_bytes, follow)
            out = self._run_script(script, token, timeout)
            try:
                records += ssh_batch.parse_records(out, token, ssh_batch.record_count(kind, chunk))
            except ssh_batch.BatchProtocolError as exc:
                raise OSError(errno.EIO, f"{self.endpoint}: batch {kind} failed: {exc}") from None
        return records

    def read_many(self, paths: Iterable[str], max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, bytes | OSError]:
        unique = list(dict.fromkeys(paths))
        out: dict[str, bytes | OSError] = {}
        for path, (payload, status) in zip(unique, self._batch("read", unique, max_bytes), strict=True):
            out[path] = payload if status == "0" else ssh_batch.error_for(status, path)
        return out

    def list_many(self, paths: Iterable[str]) -> dict[str, list[str] | OSError]:
        unique = list(dict.fromkeys(paths))
        out: dict[str, list[str] | OSError] = {}
        for path, (payload, status) in zip(unique, self._batch("list", unique), strict=True):
            if status != "0":
                out[path] = ssh_batch.error_for(status, path)
                continue
            names = [ssh_batch.decode_path(n) for n in payload.split(b"\0") if n]
            out[path] = sorted(names)
        return out

    def _find_fast(self, kind: str, paths: list[str], follow: bool = False) -> tuple[bytes, dict[str, OSError]]:
        """GNU find's output for every path, and the errors it named (path -> OSError); (b"", {}) when the
        target has no GNU find."""
        if not paths:
            return b"", {}
        output = bytearray()
        errors: dict[str, OSError] = {}
        records = self._batch(kind, paths, follow=follow)
        for i in range(0, len(records) - 1, 2):
            if records[i][1] != "0":
                return b"", {}  # no GNU find
            output += records[i][0]
            errors.update(ssh_batch.parse_find_errors(records[i + 1][0]))
        return bytes(output), errors

    def readlink_many(self, paths: Iterable[str]) -> dict[str, str | OSError]:
        unique = list(dict.fromkeys(paths))
        out: dict[str, str | OSError] = {}
        payload, errors = self._find_fast("readlink_fast", unique)
        found = ssh_batch.parse_find_links(payload)
        slow: list[str] = []
        for path in unique:
            kind, target = found.get(path, ("", ""))
            if kind == "l" and target:
                out[path] = target
            elif kind and kind != "l":
                out[path] = OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
            elif path in errors:
                out[path] = errors[path]  # find could not lstat it, or could not read the link: it said why
            else:
                slow.append(path)  # no GNU find, or a message we could not attribute: ask path by path
        for path, (data, status) in zip(slow, self._batch("readlink_slow", slow), strict=True):
            out[path] = ssh_batch.decode_path(data) if status == "0" else ssh_batch.error_for(status, path)
        return {p: out[p] for p in unique}

    def stat_many(self, paths: Iterable[str], follow: bool = True) -> dict[str, FileStat | OSError]:
        """Unlike stat() over SFTP, inode and ctime are real here (GNU find prints them)."""
        unique = list(dict.fromkeys(paths))
        payload, errors = self._find_fast("stat_fast", unique, follow)
        found = ssh_batch.parse_find_stats(payload)
        out: dict[str, FileStat | OSError] = {}
        failed: list[str] = []
        for path in unique:
            kind, st = found.get(path, ("", None))
            if st is not None and not (follow and kind == "l"):
                out[path] = st
            elif st is None and path in errors:
                out[path] = errors[path]
            else:
                failed.append(path)  # no GNU find, or (followed) a dangling or looping link
        for path, (_, status) in zip(failed, self._batch("stat_errors", failed, follow=follow), strict=True):
            if status != "0":
                out[path] = ssh_batch.error_for(status, path)
                continue
            try:  # there after all (created meanwhile), or no GNU find on the target: one SFTP stat
                out[path] = self._sftp_stat(path, follow)
            except OSError as exc:
                out[path] = exc
        return {p: out[p] for p in unique}


@dataclass
class Connected:
    """What a caller learns from connecting: the transport and any host key accepted on the way."""

    transport: SSHTransport
    new_keys: list[NewHostKey] = field(default_factory=list)


def open_transport(endpoint: SSHEndpoint, options: SSHOptions) -> Connected:
    new: list[NewHostKey] = []
    transport = SSHTransport(endpoint, options, on_new_host_key=new.append)
    transport.connect()
    return Connected(transport, new)
