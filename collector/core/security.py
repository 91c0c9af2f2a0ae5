"""Secrets and signatures: enrolment tokens, password hashes (argon2id), API session tokens, and the check of
an agent's request signature (the scheme is defined once, in agent.wire.collector_api)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from agent.wire.collector_api import request_signing_bytes
from agent.wire.signatures import ed25519_valid, public_key_from_b64

_hasher = PasswordHasher()


def new_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def secret_digest(secret: str) -> str:
    """What is stored for a token: its SHA-256 (tokens are long random strings, so no slow hash is needed)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_ok(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def request_signature_ok(identity_key_b64: str, signature_b64: str, method: str, path_qs: str, timestamp: str,
                         nonce: str, body: bytes) -> bool:
    try:
        key = public_key_from_b64(identity_key_b64)
    except ValueError:
        return False
    return ed25519_valid(key, signature_b64, request_signing_bytes(method, path_qs, timestamp, nonce, body))


def b64_raw_key_ok(text: str) -> bool:
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except ValueError:
        return False
