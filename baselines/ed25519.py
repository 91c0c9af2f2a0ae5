"""Ed25519 keys, signatures and fingerprints: the one implementation behind baselines, the inspection record,
advance notices and the agent key. Pure (bytes in, bytes out; the callers read and write the files).

Signing and verifying are libsodium's (PyNaCl): every scan loads the agent key and signs its record entry, and
libsodium costs ~2 MB where ``cryptography`` costs ~12 MB of the scan's 60 MB budget. ``cryptography`` still
generates keys (x509 certificate requests take only its objects), writes PEM, and reads the PEM forms other
than the plain PKCS#8 one read here (imported only then). Ed25519 signatures are deterministic (RFC 8032): both
libraries give the same bytes for the same key and message. Loaded keys are the small classes below; a
``cryptography`` key object works wherever a key is taken (the protocols name what is used of it)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Literal, Protocol

from probes.key_fingerprint import sha256_fingerprint

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey as CryptographyPrivateKey

RAW_KEY_BYTES = 32


class Ed25519PublicKey(Protocol):
    def public_bytes_raw(self) -> bytes: ...


class Ed25519PrivateKey(Protocol):
    def private_bytes_raw(self) -> bytes: ...

    def public_key(self) -> Ed25519PublicKey: ...

    def sign(self, data: bytes, /) -> bytes: ...


class KeyFormatError(ValueError):
    """Bytes that are not the expected key. ``reason``: "unreadable" (not a key at all) or "not-ed25519"."""

    def __init__(self, reason: Literal["unreadable", "not-ed25519"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PublicKey:
    """An Ed25519 public key: its 32 raw bytes."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != RAW_KEY_BYTES:
            raise ValueError(f"an Ed25519 public key is {RAW_KEY_BYTES} bytes, not {len(raw)}")
        self._raw = bytes(raw)

    def public_bytes_raw(self) -> bytes:
        return self._raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"PublicKey({fingerprint(self)})"


class PrivateKey:
    """An Ed25519 private key (its 32-byte seed), signing with libsodium."""

    __slots__ = ("_signing",)

    def __init__(self, seed: bytes) -> None:
        from nacl.signing import SigningKey

        if len(seed) != RAW_KEY_BYTES:
            raise ValueError(f"an Ed25519 private key is {RAW_KEY_BYTES} bytes, not {len(seed)}")
        self._signing = SigningKey(bytes(seed))

    def private_bytes_raw(self) -> bytes:
        return bytes(self._signing)

    def public_key(self) -> PublicKey:
        return PublicKey(bytes(self._signing.verify_key))

    def sign(self, data: bytes, /) -> bytes:
        return self._signing.sign(data).signature

    def __repr__(self) -> str:
        return f"PrivateKey(public {fingerprint(self.public_key())})"


def generate() -> CryptographyPrivateKey:
    """A new key, as a ``cryptography`` object: new keys get written as PEM, and x509 (certificate requests)
    takes only those. Loading is what every scan does, and that gives the light PrivateKey."""
    from cryptography.hazmat.primitives.asymmetric import ed25519 as crypto_ed25519

    return crypto_ed25519.Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the file's mode protects it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519 as crypto_ed25519

    own = crypto_ed25519.Ed25519PrivateKey.from_private_bytes(key.private_bytes_raw())
    return own.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# RFC 8410 PKCS#8 of an Ed25519 key without attributes (what private_pem writes): this DER header + the seed.
_PKCS8_ED25519_HEADER = bytes.fromhex("302e020100300506032b657004220420")
_PEM_BEGIN, _PEM_END = b"-----BEGIN PRIVATE KEY-----", b"-----END PRIVATE KEY-----"


def _pkcs8_seed(data: bytes) -> bytes | None:
    """The 32-byte seed when ``data`` is exactly the plain PKCS#8 PEM form, else None (then cryptography's
    full parser decides)."""
    text = data.strip()
    if not (text.startswith(_PEM_BEGIN) and text.endswith(_PEM_END)):
        return None
    try:
        der = base64.b64decode(b"".join(text[len(_PEM_BEGIN):-len(_PEM_END)].split()), validate=True)
    except ValueError:
        return None
    if len(der) != len(_PKCS8_ED25519_HEADER) + RAW_KEY_BYTES or not der.startswith(_PKCS8_ED25519_HEADER):
        return None
    return der[len(_PKCS8_ED25519_HEADER):]


def load_private_pem(data: bytes) -> PrivateKey:
    seed = _pkcs8_seed(data)
    if seed is not None:
        return PrivateKey(seed)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519 as crypto_ed25519

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError("unreadable", str(exc)) from None
    if not isinstance(key, crypto_ed25519.Ed25519PrivateKey):
        raise KeyFormatError("not-ed25519", "not an Ed25519 key")
    return PrivateKey(key.private_bytes_raw())


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes_raw()


def public_b64(key: Ed25519PublicKey) -> str:
    """The 32 raw bytes in base64: how keys appear in notices, baselines and `notice keygen` files."""
    return base64.b64encode(public_raw(key)).decode("ascii")


def load_public_b64(text: str) -> PublicKey:
    try:
        return PublicKey(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise KeyFormatError("unreadable", f"not a base64 Ed25519 public key: {exc}") from None


def load_public(data: bytes) -> PublicKey:
    """A public key file's content: base64 raw, PEM public, or a PEM private key (its public half)."""
    if b"PRIVATE KEY" in data:
        return load_private_pem(data).public_key()
    if b"PUBLIC KEY" in data:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519 as crypto_ed25519

        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise KeyFormatError("unreadable", str(exc)) from None
        if not isinstance(key, crypto_ed25519.Ed25519PublicKey):
            raise KeyFormatError("not-ed25519", "not an Ed25519 key")
        return PublicKey(key.public_bytes_raw())
    return load_public_b64(data.decode("ascii", errors="replace").strip())


def fingerprint(key: Ed25519PublicKey) -> str:
    """"SHA256:..." over the raw key (probes.key_fingerprint: the same form as SSH keys)."""
    return sha256_fingerprint(public_raw(key))


def sign_b64(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def verify_b64(key: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    """True when ``signature_b64`` is ``key``'s signature over ``message``; False for anything else,
    including a signature that is not base64 or not 64 bytes."""
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    try:
        signature = base64.b64decode(signature_b64, validate=True)
        if len(signature) != 64:
            return False
        VerifyKey(key.public_bytes_raw()).verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True
