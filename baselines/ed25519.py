"""Ed25519 keys, signatures and fingerprints: the one implementation behind baselines, the inspection record,
advance notices and the agent key. Pure (bytes in, bytes out; the callers read and write the files) and lazy
about ``cryptography``, so that importing it costs nothing until a key is used."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Literal

from probes.key_fingerprint import sha256_fingerprint

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyFormatError(ValueError):
    """Bytes that are not the expected key. ``reason``: "unreadable" (not a key at all) or "not-ed25519"."""

    def __init__(self, reason: Literal["unreadable", "not-ed25519"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


def generate() -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the file's mode protects it)."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_pem(data: bytes) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError("unreadable", str(exc)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError("not-ed25519", "not an Ed25519 key")
    return key


def public_raw(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_b64(key: Ed25519PublicKey) -> str:
    """The 32 raw bytes in base64: how keys appear in notices, baselines and `notice keygen` files."""
    return base64.b64encode(public_raw(key)).decode("ascii")


def load_public_b64(text: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise KeyFormatError("unreadable", f"not a base64 Ed25519 public key: {exc}") from None


def load_public(data: bytes) -> Ed25519PublicKey:
    """A public key file's content: base64 raw, PEM public, or a PEM private key (its public half)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if b"PRIVATE KEY" in data:
        return load_private_pem(data).public_key()
    if b"PUBLIC KEY" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise KeyFormatError("unreadable", str(exc)) from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFormatError("not-ed25519", "not an Ed25519 key")
        return key
    return load_public_b64(data.decode("ascii", errors="replace").strip())


def fingerprint(key: Ed25519PublicKey) -> str:
    """"SHA256:..." over the raw key (probes.key_fingerprint: the same form as SSH keys)."""
    return sha256_fingerprint(public_raw(key))


def sign_b64(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def verify_b64(key: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    """True when ``signature_b64`` is ``key``'s signature over ``message``; False for anything else,
    including a signature that is not base64."""
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True
