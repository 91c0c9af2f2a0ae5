"""Pure notice-signature verification the collector can run without the agent's host I/O. Canonical JSON and
Ed25519 themselves are ``baselines.canonical_json`` and ``baselines.ed25519`` (one implementation each);
``cryptography`` is imported only when a check runs."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from baselines import ed25519
from baselines.canonical_json import canonical_json as canonical_json

# The collector's names for the one implementation in baselines.ed25519 (aliases, not copies).
public_key_from_b64 = ed25519.load_public_b64  # raises KeyFormatError (a ValueError)
raw_public_key = ed25519.public_raw
fingerprint = ed25519.fingerprint
ed25519_valid = ed25519.verify_b64  # (key, signature_b64, message) -> bool

if TYPE_CHECKING:
    from agent.wire.notice import NoticeDocument


def notice_digest(signed_body: bytes, signature_b64: str | None) -> str:
    """Identifies exactly one signed notice; an acknowledgement is bound to it (agent and collector alike):
    SHA-256 of the canonical JSON of the notice object, a newline, and the base64 signature ("" if none)."""
    return hashlib.sha256(signed_body + b"\n" + (signature_b64 or "").encode()).hexdigest()


def document_digest(document: NoticeDocument) -> str:
    """``notice_digest`` of a notice document, its canonical body rebuilt from the model."""
    return notice_digest(canonical_json(document.notice.to_json()),
                         document.signature.value if document.signature else None)


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
        key = ed25519.load_public_b64(public_key_b64 or sig.public_key)
    except ed25519.KeyFormatError:
        return False
    return ed25519.verify_b64(key, sig.value, body)
