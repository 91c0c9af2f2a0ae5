"""The collector's own certificate authority: server certificate for TLS, client certificates for agents.

ECDSA P-256 for the CA and the server (every TLS stack speaks it); agents' certificates certify the agent's
Ed25519 identity key, the same key that signs each request (docs/collector.md, "Agent identity").
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from collector.core.errors import CollectorUserError
from collector.core.paths import CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY, read_private, write_private


@dataclass(frozen=True, slots=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_ca(home: Path, name: str = "precaution collector CA") -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(home / CA_KEY, _pem_key(key))
    write_private(home / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return Authority(cert, key)


def load_ca(home: Path) -> Authority:
    try:
        cert = x509.load_pem_x509_certificate(read_private(home / CA_CERT))
        key = serialization.load_pem_private_key(read_private(home / CA_KEY), password=None)
    except ValueError as exc:
        raise CollectorUserError(f"{home}: the collector CA cannot be loaded: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CollectorUserError(f"{home / CA_KEY}: not an ECDSA key")
    return Authority(cert, key)


def issue_server_cert(home: Path, ca: Authority, names: list[str], days: int = 825) -> None:
    """A server certificate for these DNS names and addresses, signed by the collector CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "collector")]))
        .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    write_private(home / SERVER_KEY, _pem_key(key))
    write_private(home / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


@dataclass(frozen=True, slots=True)
class ClientCert:
    pem: str
    serial: str
    not_after: dt.datetime
    public_key: ed25519.Ed25519PublicKey


def parse_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    """A CSR for an Ed25519 key whose self-signature holds (proof that the agent has the private key)."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"not a PEM certificate signing request: {exc}") from None
    if not isinstance(csr.public_key(), ed25519.Ed25519PublicKey):
        raise ValueError("the CSR must be for an Ed25519 key")
    if not csr.is_signature_valid:
        raise ValueError("the CSR's signature does not hold")
    return csr


def sign_agent_csr(ca: Authority, csr: x509.CertificateSigningRequest, agent_id: str, unit: str,
                   days: float) -> ClientCert:
    public = csr.public_key()
    assert isinstance(public, ed25519.Ed25519PublicKey)
    now = _now()
    not_after = now + dt.timedelta(days=days)
    serial = x509.random_serial_number()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, agent_id),
                                 x509.NameAttribute(NameOID.ORGANIZATION_NAME, unit)]))
        .issuer_name(ca.cert.subject).public_key(public).serial_number(serial)
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"urn:precaution:agent:{agent_id}")]),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return ClientCert(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"), format(serial, "x"),
                      not_after, public)
