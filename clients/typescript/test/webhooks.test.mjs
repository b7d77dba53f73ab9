// Webhooks (issue 17's contract): verifyWebhook always; the integration tests skip while the desk answers 404
// for /v1/webhooks.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as otc from "../dist/index.js";
import { CONFIG_WEBHOOKS, Desk, newTrader, setMarkets } from "./desk.mjs";
import { receiver, waitFor } from "./helpers.mjs";

const SECRET = "whsec_test_secret";

async function signed(body, tsMs) {
  const raw = new TextEncoder().encode(JSON.stringify(body));
  const ts = String(tsMs);
  return { headers: { "otc-webhook-id": body.id, "otc-webhook-timestamp": ts,
    "otc-webhook-signature": await otc.webhookSignature(SECRET, body.id, ts, raw) }, raw };
}

test("verifyWebhook accepts a good delivery and refuses tampering", async () => {
  const now = Date.now();
  const body = { id: "whd_1", webhook_id: "wh_1", seq: 7, type: "trade", created_at: "2026-12-06T08:09:01.576Z", data: { trade_id: "t_1", price: "50110.02" } };
  const { headers, raw } = await signed(body, now);
  const event = await otc.verifyWebhook(SECRET, headers, raw);
  assert.equal(event.id, "whd_1");
  assert.equal(event.data.price, "50110.02");
  assert.equal((await otc.verifyWebhook(SECRET, new Headers(headers), raw)).seq, 7);
  await assert.rejects(otc.verifyWebhook("whsec_other", headers, raw), otc.WebhookVerificationError);
  const tampered = new TextEncoder().encode(new TextDecoder().decode(raw).replace("50110.02", "50110.03"));
  await assert.rejects(otc.verifyWebhook(SECRET, headers, tampered), otc.WebhookVerificationError);
  await assert.rejects(otc.verifyWebhook(SECRET, headers, raw, { nowMs: now + 600_000 }), otc.WebhookVerificationError);
  assert.equal((await otc.verifyWebhook(SECRET, headers, raw, { toleranceMs: null, nowMs: now + 600_000 })).id, "whd_1");
  await assert.rejects(otc.verifyWebhook(SECRET, { "otc-webhook-id": "whd_1" }, raw), otc.WebhookVerificationError);
  const other = await signed({ ...body, id: "whd_2" }, now);
  await assert.rejects(otc.verifyWebhook(SECRET, { ...other.headers, "otc-webhook-id": "whd_1" }, other.raw), otc.WebhookVerificationError);
});


async function events(hook, secret) {
  return Promise.all(hook.accepted().map((r) => otc.verifyWebhook(secret, r.headers, r.body)));
}

test("webhook delivered, signed and managed; desk-wide webhook; retry after a failure; restart loses nothing", async (t) => {
  const desk = await new Desk(CONFIG_WEBHOOKS).start();
  const admin = desk.admin();
  const hooks = [];
  try {
    await setMarkets(admin);
    for (const algorithm of ["hmac", "ed25519"]) {
      const { client } = await newTrader(desk, admin, algorithm);
      const hook = await receiver();
      hooks.push(hook);
      const webhook = await client.createWebhook(hook.url, ["order", "trade", "balance"]);
      assert.ok(webhook.secret.startsWith("whsec_"));
      assert.equal((await client.webhook(webhook.id)).secret, undefined);
      assert.deepEqual((await client.webhooks()).items.map((w) => w.id), [webhook.id]);
      const order = await client.marketOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1" });
      await waitFor(async () => (await events(hook, webhook.secret)).some((e) => e.type === "trade"));
      const got = await events(hook, webhook.secret);
      assert.equal(got.find((e) => e.type === "order").data.order_id, order.order_id);
      const seqs = got.map((e) => e.seq);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
      const delivered = (await client.webhookDeliveries(webhook.id)).items.filter((d) => d.status === "delivered");
      assert.ok(delivered.length > 0);
      assert.equal((await client.redeliverWebhook(webhook.id, delivered[0].id)).id, delivered[0].id);
      await waitFor(async () => (await events(hook, webhook.secret)).filter((e) => e.id === delivered[0].id).length >= 2);
      await client.deleteWebhook(webhook.id);
      await assert.rejects(client.webhook(webhook.id), otc.NotFound);
    }

    // Desk-wide, with a receiver that fails the first delivery.
    const { client } = await newTrader(desk, admin, "hmac");
    const flaky = await receiver({ failFirst: 1 });
    hooks.push(flaky);
    const deskWide = await admin.admin.createWebhook(flaky.url, ["order"]);
    assert.equal(deskWide.client_id, null);
    const resting = await client.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1", limitPrice: "40000.00" });
    await waitFor(async () => (await events(flaky, deskWide.secret)).some((e) => e.data.order_id === resting.order_id));
    assert.equal(flaky.received[0].status, 500);
    const firstId = JSON.parse(flaky.received[0].body).id;
    assert.ok((await events(flaky, deskWide.secret)).some((e) => e.id === firstId));

    // Deliveries pending across a restart: each change delivered, none twice.
    flaky.failing = true;
    const placed = [];
    for (let i = 0; i < 3; i++) placed.push((await client.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.01", limitPrice: `${30000 + i}.00` })).order_id);
    await desk.restart();
    flaky.failing = false;
    await waitFor(async () => {
      const ids = new Set((await events(flaky, deskWide.secret)).map((e) => e.data.order_id));
      return placed.every((id) => ids.has(id));
    }, 90_000);
    const unique = new Map((await events(flaky, deskWide.secret)).map((e) => [e.id, e]));
    assert.equal([...unique.values()].filter((e) => placed.includes(e.data.order_id)).length, placed.length);
  } finally {
    for (const hook of hooks) hook.close();
    await desk.cleanup();
  }
});
