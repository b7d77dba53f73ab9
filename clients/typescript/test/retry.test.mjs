// Safe retries: an answer lost after the desk executed the order (a timeout) is retried with the same
// client_order_id, and the desk holds one order, not two.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as otc from "../dist/index.js";
import { Desk, newTrader, setMarkets } from "./desk.mjs";
import { dropFirst, losingProxy } from "./helpers.mjs";

let desk; let admin;
before(async () => { desk = await new Desk().start(); admin = desk.admin(); await setMarkets(admin); });
after(async () => { await desk.cleanup(); });

for (const algorithm of ["hmac", "ed25519"]) {
  test(`a timeout on POST /v1/orders makes one order (${algorithm})`, async () => {
    const { client: direct } = await newTrader(desk, admin, algorithm);
    const proxy = await losingProxy(desk.url, dropFirst("POST", "/v1/orders"));
    try {
      const client = new otc.Client({ baseUrl: proxy.url, signer: direct.signer, timeoutMs: 1000, backoffMs: 50 });
      const order = await client.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1", limitPrice: "40000.00" });
      assert.deepEqual(proxy.seen.filter(([m, p]) => m === "POST" && p === "/v1/orders").map(([, , s]) => s), [201, 200]);
      const orders = (await direct.orders()).items;
      assert.deepEqual(orders.map((o) => o.order_id), [order.order_id]);
    } finally { proxy.close(); }
  });
}

test("a timeout on accept trades once; on rfq the rfq id is reused", async () => {
  await setMarkets(admin);
  const { client: direct } = await newTrader(desk, admin, "hmac");
  const proxy = await losingProxy(desk.url, dropFirst("POST", "/v1/rfq"));
  const ordersProxy = await losingProxy(desk.url, dropFirst("POST", "/v1/orders"));
  try {
    const viaRfq = new otc.Client({ baseUrl: proxy.url, signer: direct.signer, timeoutMs: 1000, backoffMs: 50 });
    const quote = await viaRfq.rfq({ instrument: "BTC-USD", side: "buy", quantity: "0.3" });
    assert.deepEqual(proxy.seen.filter(([, p]) => p === "/v1/rfq").map(([, , s]) => s), [201, 200]);
    const viaOrders = new otc.Client({ baseUrl: ordersProxy.url, signer: direct.signer, timeoutMs: 1000, backoffMs: 50 });
    const order = await viaOrders.accept(quote);
    assert.equal(order.status, "filled");
    assert.deepEqual((await direct.trades()).items.map((t) => t.trade_id), [order.trades[0].trade_id]);
    assert.equal((await direct.balances()).find((b) => b.asset === "BTC").available, "0.30000000");
  } finally { proxy.close(); ordersProxy.close(); }
});

test("without retries a lost answer is a TransportError, and a retry with the same id is still one order", async () => {
  const { client: direct } = await newTrader(desk, admin, "hmac");
  const proxy = await losingProxy(desk.url, dropFirst("POST", "/v1/orders"));
  try {
    const client = new otc.Client({ baseUrl: proxy.url, signer: direct.signer, timeoutMs: 1000, maxRetries: 0 });
    const order = { instrument: "BTC-USD", side: "buy", quantity: "0.1", limitPrice: "40000.00", clientOrderId: "lost-answer" };
    await assert.rejects(client.limitOrder(order), otc.TransportError);
    const again = await client.limitOrder(order);
    assert.deepEqual((await direct.orders()).items.map((o) => o.order_id), [again.order_id]);
  } finally { proxy.close(); }
});

test("connection refused is a TransportError", async () => {
  const client = new otc.Client({ baseUrl: "http://127.0.0.1:9", keyId: "k", secret: "s", maxRetries: 1, backoffMs: 10 });
  await assert.rejects(client.balances(), otc.TransportError);
});
