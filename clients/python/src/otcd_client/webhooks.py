"""Verifying a webhook delivery (issue 17's contract): ``OTC-WEBHOOK-SIGNATURE`` is the lowercase hex
HMAC-SHA256 of ``id + "\\n" + timestamp + "\\n" + raw_body`` keyed with the webhook secret ("whsec_...")."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Mapping, Optional, Union

from .errors import WebhookVerificationError
from .models import WebhookEvent, parse_event_data

#: Default freshness window of a delivery's timestamp (replays of an old captured delivery are refused).
TOLERANCE_MS_DEFAULT = 5 * 60 * 1000


def _header(headers: Mapping[str, Any], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value.decode() if isinstance(value, bytes) else str(value)
    raise WebhookVerificationError(f"missing header {name}")


def webhook_signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    message = webhook_id.encode() + b"\n" + timestamp.encode() + b"\n" + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_webhook(secret: str, headers: Mapping[str, Any], body: Union[bytes, str], *,
                   tolerance_ms: Optional[int] = TOLERANCE_MS_DEFAULT, now_ms: Optional[int] = None) -> WebhookEvent:
    """Check a delivery and return its parsed body; raises :class:`WebhookVerificationError` otherwise.

    ``body`` must be the raw bytes received (not re-serialized JSON). ``tolerance_ms`` bounds how far the
    delivery's timestamp may be from now (None turns the check off). Receivers should also dedupe on the
    returned ``event.id``: a delivery id is stable across retries."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    delivery_id = _header(headers, "OTC-WEBHOOK-ID")
    timestamp = _header(headers, "OTC-WEBHOOK-TIMESTAMP")
    signature = _header(headers, "OTC-WEBHOOK-SIGNATURE").strip().lower()
    expected = webhook_signature(secret, delivery_id, timestamp, raw)
    if not hmac.compare_digest(expected, signature):
        raise WebhookVerificationError("signature mismatch")
    if not timestamp.isdigit():
        raise WebhookVerificationError("OTC-WEBHOOK-TIMESTAMP is not unix milliseconds")
    if tolerance_ms is not None:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if abs(now_ms - int(timestamp)) > tolerance_ms:
            raise WebhookVerificationError("timestamp outside the tolerance window")
    try:
        payload = json.loads(raw)
    except ValueError as error:
        raise WebhookVerificationError(f"body is not JSON: {error}") from None
    if not isinstance(payload, dict) or payload.get("id") != delivery_id:
        raise WebhookVerificationError("body id differs from OTC-WEBHOOK-ID")
    kind = str(payload.get("type", ""))
    data = payload.get("data")
    seq = payload.get("seq")
    if not isinstance(seq, int):
        raise WebhookVerificationError("body seq is not an integer")
    return WebhookEvent(id=delivery_id, webhook_id=str(payload.get("webhook_id", "")), seq=seq, type=kind,
                        created_at=str(payload.get("created_at", "")),
                        data=parse_event_data(kind, data) if isinstance(data, dict) else data,
                        extra={k: v for k, v in payload.items()
                               if k not in ("id", "webhook_id", "seq", "type", "created_at", "data")})
