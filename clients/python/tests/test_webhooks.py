"""Webhooks (issue 17's contract): the SDK's methods against the real desk, deliveries signed and checked with
verify_webhook, a retry after the receiver fails, and nothing lost or repeated across a desk restart. The
integration tests skip while the desk answers 404 for /v1/webhooks; the verify_webhook tests always run."""

from __future__ import annotations

import json
import time

import pytest

import otcd_client as otc
from conftest import new_trader
from desk import CONFIG_WEBHOOKS, Desk
from receiver import Receiver

SECRET = "whsec_test_secret"


def _signed(body: dict, ts_ms: int):
    raw = json.dumps(body).encode()
    ts = str(ts_ms)
    return {"OTC-WEBHOOK-ID": body["id"], "OTC-WEBHOOK-TIMESTAMP": ts,
            "OTC-WEBHOOK-SIGNATURE": otc.webhook_signature(SECRET, body["id"], ts, raw)}, raw


def test_verify_webhook_accepts_a_good_delivery_and_refuses_tampering():
    now = int(time.time() * 1000)
    body = {"id": "whd_1", "webhook_id": "wh_1", "seq": 7, "type": "trade", "created_at": "2026-12-06T08:09:01.576Z",
            "data": {"trade_id": "t_1", "price": "50110.02", "quantity": "0.50000000"}}
    headers, raw = _signed(body, now)
    event = otc.verify_webhook(SECRET, {k.lower(): v for k, v in headers.items()}, raw)
    assert event.id == "whd_1" and event.seq == 7 and isinstance(event.data, otc.Trade)
    assert str(event.data.price) == "50110.02"
    with pytest.raises(otc.WebhookVerificationError):
        otc.verify_webhook("whsec_other", headers, raw)
    with pytest.raises(otc.WebhookVerificationError):
        otc.verify_webhook(SECRET, headers, raw.replace(b"50110.02", b"50110.03"))
    with pytest.raises(otc.WebhookVerificationError):
        otc.verify_webhook(SECRET, headers, raw, now_ms=now + 10 * 60 * 1000)
    assert otc.verify_webhook(SECRET, headers, raw, tolerance_ms=None, now_ms=now + 10 * 60 * 1000).id == "whd_1"
    with pytest.raises(otc.WebhookVerificationError):
        otc.verify_webhook(SECRET, {"OTC-WEBHOOK-ID": "whd_1"}, raw)
    other, raw2 = _signed(dict(body, id="whd_2"), now)
    with pytest.raises(otc.WebhookVerificationError):  # a valid signature for another delivery's id
        otc.verify_webhook(SECRET, dict(other, **{"OTC-WEBHOOK-ID": "whd_1"}), raw2)


@pytest.fixture
def hook_desk(admin):
    started = Desk(CONFIG_WEBHOOKS).start()
    hook_admin = otc.Client(started.url, started.admin_key_id, secret=started.admin_secret)
    hook_admin.admin.set_market("BTC-USD", "50000.00", "50010.00")
    yield started, hook_admin
    hook_admin.close()
    started.cleanup()


def _events(receiver, secret):
    return [otc.verify_webhook(secret, headers, body) for headers, body in receiver.accepted()]


@pytest.mark.parametrize("algorithm", ["hmac", "ed25519"])
def test_webhook_delivered_signed_and_managed(hook_desk, algorithm):
    desk, admin = hook_desk
    _, client = new_trader(desk, admin, algorithm)
    receiver = Receiver()
    try:
        hook = client.create_webhook(receiver.url, ["order", "trade", "balance"])
        assert hook.secret and hook.secret.startswith("whsec_") and hook.id.startswith("wh_")
        assert client.webhook(hook.id).secret is None
        assert [h.id for h in client.webhooks().items] == [hook.id]
        order = client.market_order("BTC-USD", "buy", "0.1")
        receiver.wait_for(lambda r: any(e.type == "trade" for e in _events(r, hook.secret)))
        events = _events(receiver, hook.secret)
        orders = [e for e in events if e.type == "order"]
        assert orders and orders[0].data.order_id == order.order_id
        seqs = [e.seq for e in events]
        assert seqs == sorted(seqs)
        deliveries = client.webhook_deliveries(hook.id).items
        assert deliveries and all(d.webhook_id == hook.id for d in deliveries)
        delivered = [d for d in deliveries if d.status == "delivered"]
        # The receiver answered before the desk marked a delivery delivered: every delivered id was received.
        assert {d.id for d in delivered} <= {e.id for e in _events(receiver, hook.secret)}
        again = client.redeliver_webhook(hook.id, delivered[0].id)
        assert again.id == delivered[0].id
        receiver.wait_for(lambda r: [e.id for e in _events(r, hook.secret)].count(delivered[0].id) >= 2)
        client.delete_webhook(hook.id)
        with pytest.raises(otc.NotFound):
            client.webhook(hook.id)
    finally:
        receiver.close()


def test_desk_wide_webhook_and_retry_after_failure(hook_desk):
    desk, admin = hook_desk
    _, client = new_trader(desk, admin, "hmac")
    receiver = Receiver(fail_first=1)
    try:
        hook = admin.admin.create_webhook(receiver.url, ["order"])
        assert hook.client_id is None
        order = client.limit_order("BTC-USD", "buy", "0.1", "40000.00")
        receiver.wait_for(lambda r: any(e.type == "order" for e in _events(r, hook.secret)))
        event = [e for e in _events(receiver, hook.secret) if e.type == "order"][0]
        assert event.data.order_id == order.order_id
        assert receiver.received[0][2] == 500
        first_id = json.loads(receiver.received[0][1])["id"]
        assert first_id == event.id  # the same delivery id across retries
        delivery = [d for d in admin.webhook_deliveries(hook.id).items if d.id == event.id][0]
        assert delivery.attempts >= 2 and delivery.status == "delivered"
    finally:
        receiver.close()


def test_webhook_deliveries_survive_a_restart(hook_desk):
    desk, admin = hook_desk
    client_id, client = new_trader(desk, admin, "hmac")
    receiver = Receiver()
    receiver.failing = True
    try:
        hook = client.create_webhook(receiver.url, ["order"])
        placed = [client.limit_order("BTC-USD", "buy", "0.01", f"{30000 + i}.00").order_id for i in range(3)]
        receiver.wait_for(lambda r: len(r.received) >= 1)
        desk.restart()
        receiver.failing = False
        receiver.wait_for(lambda r: {e.data.order_id for e in _events(r, hook.secret)} >= set(placed), 90)
        events = _events(receiver, hook.secret)
        by_id = {}
        for e in events:
            by_id.setdefault(e.id, e)
        assert sorted(e.data.order_id for e in by_id.values()) == sorted(placed)  # one delivery per change
        time.sleep(2)
        assert len({e.id for e in _events(receiver, hook.secret)}) == len(placed)  # nothing new appears
    finally:
        receiver.close()
