"""The agent's collector identity: enrolment, the files it leaves, renewal.

``<state>/identity/`` (0700) holds ``identity.key`` (the Ed25519 key every request is signed with, 0600),
``agent.crt`` (the client certificate the collector's CA issued for it), ``collector-ca.pem`` (the pinned CA:
the only one trusted for the collector) and ``enrolment.json`` (agent id, unit, URL, expiry, the collector's
notice issuers). The record key (``agent.key``) and the spool are not touched: re-enrolment and renewal never
lose what is waiting to be sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from agent.daemon import messages as msg
from agent.errors import UserError
from agent.state import StateDir, atomic_write

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.wire.collector_answers import HostIdentity
    from baselines.ed25519 import Ed25519PrivateKey as SigningKey  # what a loaded key is: signs, nothing more

log = logging.getLogger(__name__)

ENCODING_DER = 2  # _ssl.ENCODING_DER: what Certificate.public_bytes takes for DER

KEY_FILE, CERT_FILE, CA_FILE, ENROLMENT_FILE = "identity.key", "agent.crt", "collector-ca.pem", "enrolment.json"
NEXT_KEY_FILE = "identity.key.next"  # a renewal's new key, written before the collector is asked to take it
RENEW_WHEN_LEFT = 1 / 3  # renew once less than this fraction of the certificate's life is left


class Issuer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    public_key: str


class Enrolment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    agent_id: str
    unit: str
    not_after: str
    enrolled_at: str
    issuers: list[Issuer]
    poll_interval_s: int


@dataclass(frozen=True, slots=True)
class Identity:
    dir: Path

    @property
    def key_path(self) -> Path:
        return self.dir / KEY_FILE

    @property
    def cert_path(self) -> Path:
        return self.dir / CERT_FILE

    @property
    def ca_path(self) -> Path:
        return self.dir / CA_FILE

    @property
    def next_key_path(self) -> Path:
        return self.dir / NEXT_KEY_FILE

    @property
    def enrolment_path(self) -> Path:
        return self.dir / ENROLMENT_FILE

    def ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)

    def enrolment(self) -> Enrolment | None:
        try:
            return Enrolment.model_validate_json(self.enrolment_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UserError(msg.ENROLMENT_UNREADABLE(path=self.enrolment_path, error=exc)) from None

    def key(self) -> SigningKey:
        from agent.keys import load_private_key_file

        return load_private_key_file(self.key_path, "agent identity key")

    def save(self, enrolment: Enrolment, key_pem: bytes | None, cert_pem: str, ca_pem: str | None) -> None:
        """Every file written whole (temp, fsync, rename), 0600; the enrolment last, so that a crash leaves
        either the old identity or the new one."""
        self.ensure_dir()
        if key_pem is not None:
            atomic_write(self.key_path, key_pem, mode=0o600)
        atomic_write(self.cert_path, cert_pem.encode(), mode=0o600)
        if ca_pem is not None:
            atomic_write(self.ca_path, ca_pem.encode(), mode=0o600)
        atomic_write(self.enrolment_path, enrolment.model_dump_json(indent=1).encode(), mode=0o600)
        self.next_key_path.unlink(missing_ok=True)  # a renewal (or enrolment) is complete: no key is pending


def host_identity() -> HostIdentity:
    from agent.wire.collector_answers import HostIdentity

    def read(path: str) -> str:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    return HostIdentity(hostname=socket.gethostname() or "unknown",
                        machine_id=read("/etc/machine-id") or read("/var/lib/dbus/machine-id") or "unknown",
                        boot_id=read("/proc/sys/kernel/random/boot_id") or "unknown")


def make_csr(key: Ed25519PrivateKey, name: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64] or "precaution-agent")]))
           .sign(key, None))
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _fingerprint_of(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def normalise_fingerprint(text: str) -> str:
    value = text.strip().lower().removeprefix("sha256:").replace(":", "")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise UserError(msg.BAD_FINGERPRINT(text=text))
    return value


def pin_by_fingerprint(url: str, fingerprint: str, timeout: float = 10.0) -> tuple[str, bool]:
    """The PEM of the certificate in the collector's TLS chain whose SHA-256 is ``fingerprint`` (the CA when the
    server sends it, or the server certificate itself), and whether it was the server's own certificate. Nothing
    is sent before it matched."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # verified below, by the pinned fingerprint
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            # Python 3.11 has no public accessor for the unverified chain (3.13's get_unverified_chain)
            sslobj: Any = getattr(tls, "_sslobj")  # noqa: B009
            chain = [bytes(c.public_bytes(ENCODING_DER)) for c in sslobj.get_unverified_chain()]
    except OSError as exc:
        raise UserError(msg.COLLECTOR_UNREACHABLE(url=url, error=exc)) from None
    for index, der in enumerate(chain):
        if _fingerprint_of(der) == fingerprint:
            return ssl.DER_cert_to_PEM_cert(der), index == 0
    raise UserError(msg.PIN_NOT_PRESENTED(url=url, fingerprint=fingerprint,
                                          presented=[_fingerprint_of(d) for d in chain] or "-"))


def _issued_by(cert_pem: str, ca_pem: str) -> bool:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    try:
        x509.load_pem_x509_certificate(cert_pem.encode()).verify_directly_issued_by(
            x509.load_pem_x509_certificate(ca_pem.encode()))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def enroll(state: StateDir, identity: Identity, url: str, token: str, unit: str, *, ca_file: Path | None = None,
           ca_fingerprint: str | None = None, timeout: float = 30.0) -> Enrolment:
    """Spend the one-time token: new identity key, CSR, certificate; trust the collector's notice issuers."""
    import httpx

    from agent import __version__
    from agent.notice import add_trusted
    from agent.record import Recorder
    from agent.wire.collector_api import EnrolRequest, EnrolResponse, ErrorBody
    from baselines import ed25519
    from baselines.model import Text

    url = url.rstrip("/")
    if not url.startswith("https://"):
        raise UserError(msg.URL_NOT_HTTPS(url=url))
    for name, value, refusal in (("token", token, msg.BAD_TOKEN()), ("unit", unit, msg.BAD_UNIT(unit=unit))):
        try:  # the wire schema's own limits, checked before anything is generated or sent
            EnrolRequest.__pydantic_validator__.validate_assignment(EnrolRequest.model_construct(), name, value)
        except ValueError:
            raise UserError(refusal) from None
    if (ca_file is None) == (ca_fingerprint is None):
        raise UserError(msg.PIN_ONE())
    leaf_pinned = False
    if ca_file is not None:
        try:
            pinned = ca_file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(msg.CA_UNREADABLE(path=ca_file, error=exc)) from None
    else:
        pinned, leaf_pinned = pin_by_fingerprint(url, normalise_fingerprint(ca_fingerprint or ""))
    try:
        context = ssl.create_default_context(cadata=pinned)
    except (ssl.SSLError, ValueError) as exc:
        raise UserError(msg.CA_NOT_PEM(error=exc)) from None
    if leaf_pinned:  # the server certificate itself was pinned: it is the trust anchor for this one call
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        context.check_hostname = False
    key = ed25519.generate()
    host = host_identity()
    # The record key is created through the record (with its entry), never bare: a key without a record entry
    # reads as a wiped record on the agent's first run.
    record_key = Recorder(state).ensure_agent_key()
    request = EnrolRequest(token=token, unit=unit, csr_pem=make_csr(key, host.hostname),
                           record_public_key=ed25519.public_b64(record_key.public_key()), host=host,
                           agent_version=__version__)
    try:
        with httpx.Client(verify=context, timeout=timeout) as client:
            response = client.post(f"{url}/api/v1/enroll",
                                   content=request.model_dump_json(by_alias=True).encode(),
                                   headers={"Content-Type": "application/json"})
    except httpx.ConnectError as exc:
        if isinstance(exc.__cause__, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise UserError(msg.TLS_MISMATCH(url=url, error=exc)) from None
        raise UserError(msg.COLLECTOR_UNREACHABLE(url=url, error=exc)) from None
    except httpx.HTTPError as exc:
        raise UserError(msg.ENROLMENT_FAILED(url=url, error=exc)) from None
    if response.status_code != 200:
        try:
            body = ErrorBody.model_validate_json(response.content)
            reason = Text(f"{body.error}: {body.message}", body.message_zh)
        except ValueError:
            reason = Text(response.text[:200], "（无说明）")
        raise UserError(msg.ENROLMENT_REFUSED(status=response.status_code, reason=reason))
    done = EnrolResponse.model_validate_json(response.content)
    enrolment = Enrolment(url=url, agent_id=done.agent_id, unit=done.unit, not_after=done.not_after,
                          enrolled_at=dt.datetime.now(dt.UTC).isoformat(), poll_interval_s=done.poll_interval_s,
                          issuers=[Issuer(name=i.name, public_key=i.public_key) for i in done.issuers])
    ca_pem = done.ca_pem if ca_file is None else pinned
    if leaf_pinned and not _issued_by(pinned, done.ca_pem):
        raise UserError(msg.CA_DID_NOT_ISSUE())
    identity.save(enrolment, ed25519.private_pem(key), done.certificate_pem, ca_pem)
    for issuer in done.issuers:
        add_trusted(issuer.name, ed25519.load_public_b64(issuer.public_key), state)
    log.info("enrolled with %s as %s (unit %s)", url, done.agent_id, done.unit)
    return enrolment


def renewal_time(enrolment: Enrolment) -> dt.datetime:
    """When the certificate has less than a third of its life left (its life counted from when it was issued
    to this agent): early enough for several tries before it runs out, whatever its length."""
    not_after = dt.datetime.fromisoformat(enrolment.not_after.replace("Z", "+00:00"))
    issued = dt.datetime.fromisoformat(enrolment.enrolled_at.replace("Z", "+00:00"))
    return not_after - (not_after - issued) * RENEW_WHEN_LEFT


def renewal_due(enrolment: Enrolment, now: dt.datetime) -> bool:
    return now >= renewal_time(enrolment)
