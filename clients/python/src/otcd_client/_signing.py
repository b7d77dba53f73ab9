"""Request signing (docs/api.md, "Authentication"): HMAC-SHA256 or Ed25519 over
``timestamp\\nMETHOD\\npath_with_query\\nbody\\nnonce``. The SDK always sends ``OTC-NONCE`` so that identical
requests signed in the same millisecond (parallel reads) are each accepted once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Dict, Optional, Tuple, Union

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PrivateKeyLike = Union[Ed25519PrivateKey, bytes, str]


def signing_payload(timestamp_ms: int, method: str, path_with_query: str, body: str, nonce: Optional[str]) -> bytes:
    text = f"{timestamp_ms}\n{method.upper()}\n{path_with_query}\n{body}"
    if nonce is not None:
        text += f"\n{nonce}"
    return text.encode("utf-8")


def new_nonce() -> str:
    # 128 random bits as 32 hex characters: within the 1-64 characters of [A-Za-z0-9_-] the desk accepts.
    return secrets.token_hex(16)


def load_ed25519_private_key(private_key: PrivateKeyLike) -> Ed25519PrivateKey:
    """An Ed25519 private key from a key object, its 32 raw bytes, standard base64 of them, or PEM text."""
    if isinstance(private_key, Ed25519PrivateKey):
        return private_key
    if isinstance(private_key, str):
        if "BEGIN" in private_key:
            key = serialization.load_pem_private_key(private_key.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("the PEM key is not an Ed25519 private key")
            return key
        private_key = base64.b64decode(private_key, validate=True)
    if isinstance(private_key, (bytes, bytearray)) and len(private_key) == 32:
        return Ed25519PrivateKey.from_private_bytes(bytes(private_key))
    raise ValueError("private_key must be an Ed25519PrivateKey, its 32 raw bytes, their base64, or PEM text")


def generate_ed25519_key() -> Tuple[str, str]:
    """A new Ed25519 key pair: (private key as base64 of its 32 bytes, public key as base64 of its 32 bytes).
    Register the public key with the desk (``admin.create_key(..., algorithm="ed25519", public_key=...)``)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


class Signer:
    """Signs requests with one API key: HMAC (``secret``) or Ed25519 (``private_key``)."""

    def __init__(self, key_id: str, secret: Optional[str] = None, private_key: Optional[PrivateKeyLike] = None):
        if not key_id:
            raise ValueError("key_id is required")
        if (secret is None) == (private_key is None):
            raise ValueError("give exactly one of secret (HMAC key) or private_key (Ed25519 key)")
        self.key_id = key_id
        self._secret = secret.encode("utf-8") if secret is not None else None
        self._ed25519 = load_ed25519_private_key(private_key) if private_key is not None else None

    @property
    def algorithm(self) -> str:
        return "hmac" if self._secret is not None else "ed25519"

    def sign(self, payload: bytes) -> str:
        if self._secret is not None:
            return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()
        assert self._ed25519 is not None
        return base64.b64encode(self._ed25519.sign(payload)).decode()

    def headers(self, method: str, path_with_query: str, body: str = "", timestamp_ms: Optional[int] = None) -> Dict[str, str]:
        timestamp_ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        nonce = new_nonce()
        signature = self.sign(signing_payload(timestamp_ms, method, path_with_query, body, nonce))
        return {
            "OTC-KEY": self.key_id,
            "OTC-TIMESTAMP": str(timestamp_ms),
            "OTC-NONCE": nonce,
            "OTC-SIGNATURE": signature,
        }
