"""TLS facts of one service: negotiated protocol, whether TLS 1.0/1.1 are still accepted, and the certificate.

Handshakes only: we never send application data here and never validate against a trust store (the point is
to describe what the server presents, self-signed or not). ``cryptography`` is imported lazily.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import socket
import ssl
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

from probes.observation import Row

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CertFacts:
    subject: str
    issuer: str
    not_before: str  # ISO 8601 UTC
    not_after: str
    self_signed: bool
    key_type: str  # rsa | ec | ed25519 | ed448 | dsa | other
    key_bits: int
    signature_algorithm: str
    sha256: str


@dataclass(frozen=True, slots=True)
class TlsService(Row):
    host: str
    port: int
    version: str  # what the server picks when the client offers everything up to TLS 1.3
    cipher: str
    accepts_tls10: bool | None  # None: this client's OpenSSL cannot offer that version
    accepts_tls11: bool | None
    cert_subject: str  # not "subject": Row.subject() is the observation key
    cert_issuer: str
    not_after: str
    days_left: int
    expired: bool
    self_signed: bool
    key_type: str
    key_bits: int
    signature_algorithm: str
    sha256: str

    KEY: ClassVar[tuple[str, ...]] = ("host", "port")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"days_left"})


def cert_facts(der: bytes) -> CertFacts:
    """Pure: DER certificate → facts."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    cert = x509.load_der_x509_certificate(der)
    key = cert.public_key()
    key_type, bits = "other", 0
    if isinstance(key, rsa.RSAPublicKey):
        key_type, bits = "rsa", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, bits = "ec", key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type, bits = "ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        key_type, bits = "ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, bits = "dsa", key.key_size
    self_signed = cert.subject == cert.issuer and _signed_by_own_key(cert)
    oid = cert.signature_algorithm_oid
    return CertFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        self_signed=self_signed,
        key_type=key_type,
        key_bits=bits,
        signature_algorithm=getattr(oid, "_name", None) or oid.dotted_string,
        sha256=hashlib.sha256(der).hexdigest(),
    )


def _signed_by_own_key(cert: Any) -> bool:
    """Same names alone could be a CA-issued look-alike: the signature must verify with the certificate's own
    key. cryptography refuses SHA-1 in verify_directly_issued_by, so RSA/ECDSA are also checked by hand."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        cert.verify_directly_issued_by(cert)
        return True
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    key, algo = cert.public_key(), cert.signature_hash_algorithm
    if algo is None:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algo))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def to_row(host: str, port: int, version: str, cipher: str, der: bytes, accepts_tls10: bool | None,
           accepts_tls11: bool | None, now: dt.datetime) -> TlsService:
    """Pure: handshake results → row (``now`` passed in so golden tests are stable)."""
    c = cert_facts(der)
    not_after = dt.datetime.fromisoformat(c.not_after)
    return TlsService(
        host=host, port=port, version=version, cipher=cipher, accepts_tls10=accepts_tls10,
        accepts_tls11=accepts_tls11, cert_subject=c.subject, cert_issuer=c.issuer, not_after=c.not_after,
        days_left=(not_after - now).days, expired=not_after < now, self_signed=c.self_signed,
        key_type=c.key_type, key_bits=c.key_bits, signature_algorithm=c.signature_algorithm, sha256=c.sha256,
    )


def _context(version: ssl.TLSVersion | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Offer everything this OpenSSL can: we describe the server, we do not protect a session.
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    if version is None:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    else:
        with warnings.catch_warnings():
            # TLS 1.0/1.1 are deprecated in Python: asking for them is the point of this test.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = version
            ctx.maximum_version = version
    return ctx


@dataclass(frozen=True, slots=True)
class Handshake:
    version: str
    cipher: str
    der: bytes


def handshake(host: str, port: int, timeout: float = 3.0, server_name: str | None = None) -> Handshake:
    """Full handshake offering every version; raises OSError / ssl.SSLError when the port does not speak TLS."""
    ctx = _context(None)
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True) or b""
        cipher = tls.cipher()
        return Handshake(tls.version() or "", cipher[0] if cipher else "", der)


def accepts(host: str, port: int, version: ssl.TLSVersion, timeout: float = 3.0) -> bool | None:
    """Does the server complete a handshake limited to exactly ``version``? None if we cannot offer it."""
    try:
        ctx = _context(version)
    except (ValueError, ssl.SSLError):
        return None
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, ctx.wrap_socket(raw):
            return True
    except ssl.SSLError as exc:
        # "no protocols available" is our own OpenSSL refusing to offer it, not the server's answer.
        if "NO_PROTOCOLS_AVAILABLE" in str(exc).upper():
            log.debug("cannot offer %s: %s", version, exc)
            return None
        return False
    except (ConnectionError, TimeoutError, OSError):
        return False


def check(host: str, port: int, timeout: float = 3.0, now: dt.datetime | None = None) -> TlsService | None:
    """TLS facts of host:port, or None when it does not speak TLS (or presents no certificate)."""
    try:
        hs = handshake(host, port, timeout)
    except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
        log.debug("%s:%s: no TLS: %s", host, port, exc)
        return None
    if not hs.der:
        return None
    tls10 = accepts(host, port, ssl.TLSVersion.TLSv1, timeout)
    tls11 = accepts(host, port, ssl.TLSVersion.TLSv1_1, timeout)
    return to_row(host, port, hs.version, hs.cipher, hs.der, tls10, tls11, now or dt.datetime.now(dt.UTC))
