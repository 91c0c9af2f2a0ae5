"""Pure signature checks the collector can run without the agent's host I/O: canonical JSON, Ed25519 public
keys and fingerprints, notice signatures. ``cryptography`` is imported only when a check runs."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from agent.wire.notice import NoticeDocument


def canonical_json(data: Any) -> bytes:
    """The bytes that are hashed and signed: sorted keys, no spaces, UTF-8 (not escaped)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """A raw Ed25519 public key from base64; ValueError when it is not one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:<base64, unpadded>`` of the raw key, as OpenSSH writes them."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw_public_key(key)).digest()).decode().rstrip("=")


def ed25519_valid(key: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def notice_signature_valid(document: NoticeDocument, signed_body: bytes | None = None,
                           public_key_b64: str | None = None) -> bool:
    """Whether the notice's signature holds for the key it names (or ``public_key_b64``, e.g. the trusted
    issuer's). ``signed_body`` is the canonical JSON of the notice object as received; by default it is
    rebuilt from the model. Trust in the key is the caller's decision."""
    sig = document.signature
    if sig is None:
        return False
    body = signed_body if signed_body is not None else canonical_json(document.notice.to_json())
    try:
        key = public_key_from_b64(public_key_b64 or sig.public_key)
    except ValueError:
        return False
    return ed25519_valid(key, sig.value, body)
