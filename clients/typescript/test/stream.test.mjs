// The WebSocket stream: events, callback, reconnect and resubscribe, resume without loss or duplicates.
// Node 20 has no global WebSocket: the `ws` package (a devDependency) is injected.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { Desk, newTrader, setMarkets } from "./desk.mjs";

let desk; let admin;
before(async () => { desk = await new Desk().start(); admin = desk.admin(); await setMarkets(admin); });
after(async () => { await desk.cleanup(); });

async function nextOf(stream, types, timeoutMs = 15_000) {
  for (;;) {
    const event = await stream.next(timeoutMs);
    if (types.includes(event.type)) return event;
  }
}

async function acked(stream, channel) {
  const event = await nextOf(stream, ["subscribed", "error"]);
  assert.equal(event.type, "subscribed", JSON.stringify(event));
  assert.equal(event.data.channel, channel);
}

for (const algorithm of ["hmac", "ed25519"]) {
  test(`stream events, callback and iterator (${algorithm})`, async () => {
    await setMarkets(admin);
    const { client } = await newTrader(desk, admin, algorithm, { clientOptions: { WebSocket } });
    const stream = await client.stream().connect();
    const seenByCallback = [];
    stream.on((event) => seenByCallback.push(event.type));
    stream.subscribe("orders");
    await acked(stream, "orders");
    stream.subscribe("balances");
    await acked(stream, "balances");
    const order = await client.marketOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1" });
    // One subscription's messages may overtake another's: wait for both kinds in any order.
    const got = {};
    while (!got.order || !got.balance) { const e = await nextOf(stream, ["order", "balance"]); got[e.type] ??= e; }
    const event = got.order; const balance = got.balance;
    assert.equal(event.data.order_id, order.order_id);
    assert.equal(event.channel, "orders");
    assert.equal(typeof balance.data.available, "string");
    assert.ok(seenByCallback.includes("order"));
    const iterated = [];
    const consumer = (async () => { for await (const e of stream) { iterated.push(e); if (e.type === "order") break; } })();
    await client.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1", limitPrice: "40000.00" });
    await consumer;
    assert.equal(iterated.at(-1).data.status, "open");
    stream.close();
  });
}

test("the stream reconnects and resubscribes", async () => {
  const { client } = await newTrader(desk, admin, "hmac", { clientOptions: { WebSocket } });
  const stream = await client.stream({ backoffMs: 50 }).connect();
  stream.subscribe("orders");
  await acked(stream, "orders");
  stream.dropConnection();
  const reconnected = await nextOf(stream, ["reconnected"]);
  assert.equal(reconnected.data.resumed, false);
  await acked(stream, "orders");
  const order = await client.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1", limitPrice: "40000.00" });
  assert.equal((await nextOf(stream, ["order"])).data.order_id, order.order_id);
  assert.equal(stream.reconnects, 1);
  stream.close();
});

test("resume after a forced disconnect loses nothing and repeats nothing", async (t) => {
  await setMarkets(admin);
  const { client } = await newTrader(desk, admin, "hmac", { clientOptions: { WebSocket } });
  const stream = await client.stream({ backoffMs: 1000 }).connect();
  for (const channel of ["orders", "balances"]) { stream.subscribe(channel); await acked(stream, channel); }
  const first = await client.marketOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1" });
  const seen = [await nextOf(stream, ["order"])];
  assert.notEqual(seen[0].seq, undefined, "the desk sends seq on the orders channel");
  assert.equal(seen[0].data.order_id, first.order_id);
  stream.dropConnection();
  const missed = [];
  for (let i = 0; i < 3; i++) missed.push(await client.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.01", limitPrice: `${40000 + i}.00` }));
  const missedIds = missed.map((o) => o.order_id);
  let reconnected = false;
  while (!missedIds.every((id) => seen.some((e) => e.data.order_id === id))) {
    const event = await nextOf(stream, ["order", "reconnected"]);
    if (event.type === "reconnected") { assert.equal(event.data.resumed, true); reconnected = true; } else seen.push(event);
  }
  assert.ok(reconnected);
  const keys = seen.map((e) => `${e.seq}/${e.data.order_id}/${e.data.status}`);
  assert.equal(new Set(keys).size, keys.length, `an order message twice: ${keys}`);
  assert.deepEqual(seen.map((e) => e.data.order_id).filter((id) => missedIds.includes(id)), missedIds);
  const seqs = seen.map((e) => e.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  await assert.rejects(nextOf(stream, ["order"], 1000));
  stream.close();
});

test("a session-token stream (as a browser connects)", async () => {
  const { client } = await newTrader(desk, admin, "ed25519");
  const session = await client.createSession({ ttlSeconds: 120, scopes: ["read"] });
  const browser = new (await import("../dist/index.js")).Client({ baseUrl: desk.url, token: session.token, WebSocket });
  const stream = await browser.stream().connect();
  try {
    stream.subscribe("orders");
    await acked(stream, "orders");
    const order = await client.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1", limitPrice: "40000.00" });
    assert.equal((await nextOf(stream, ["order"])).data.order_id, order.order_id);
  } finally { stream.close(); }
});
