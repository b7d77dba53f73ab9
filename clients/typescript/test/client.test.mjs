// Every client and operator method against the real desk, with HMAC and Ed25519 keys.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as otc from "../dist/index.js";
import { Desk, newTrader, setMarkets } from "./desk.mjs";

const BTC_ADDRESS = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
let desk;
let admin;

before(async () => { desk = await new Desk().start(); admin = desk.admin(); });
after(async () => { await desk.cleanup(); });

test("signing matches the worked example of docs/api.md", async () => {
  const signer = new otc.Signer({ keyId: "k", secret: "example-secret-not-real" });
  assert.equal(await signer.sign(otc.signingPayload(1767225600000, "GET", "/v1/balances", "")),
    "88e45eb1fbd08bedbc4835f2ab4e980de07616c7d72a9e4ffb5a49e7a15e8140");
  const body = '{"instrument":"BTC-USD","side":"buy","quantity":"0.5"}';
  assert.equal(await signer.sign(otc.signingPayload(1767225600000, "POST", "/v1/rfq", body)),
    "1415e08dd7c3b75e3492e828613a06883a2681c4e3eddf71bf2e3f2ac3b541a0");
  const first = await signer.headers("GET", "/v1/balances", "", 1);
  const second = await signer.headers("GET", "/v1/balances", "", 1);
  assert.notEqual(first["OTC-NONCE"], second["OTC-NONCE"]);
  assert.equal(first["OTC-SIGNATURE"], await signer.sign(`1\nGET\n/v1/balances\n\n${first["OTC-NONCE"]}`));
});

test("Ed25519 signatures verify with the registered public key", async () => {
  const pair = await otc.generateEd25519Key();
  const signer = new otc.Signer({ keyId: "k", privateKey: pair.privateKey });
  const payload = otc.signingPayload(5, "POST", "/v1/orders", "{}", "n1");
  const publicKey = await crypto.subtle.importKey("raw", otc.fromBase64(pair.publicKey), { name: "Ed25519" }, false, ["verify"]);
  assert.ok(await crypto.subtle.verify({ name: "Ed25519" }, publicKey, otc.fromBase64(await signer.sign(payload)), new TextEncoder().encode(payload)));
  assert.throws(() => new otc.Signer({ keyId: "k", secret: "s", privateKey: pair.privateKey }), TypeError);
  assert.throws(() => otc.decimalText(0.5, "q"), TypeError);
  assert.equal(otc.decimalText(7n, "q"), "7");
  assert.throws(() => otc.decimalText("1e3", "q"), RangeError);
  assert.ok(otc.errorFromProblem(422, { code: "insufficient_funds" }) instanceof otc.Unprocessable);
  assert.equal(otc.errorFromProblem(418, { code: "teapot" }).constructor, otc.ApiError);
});

for (const algorithm of ["hmac", "ed25519"]) {
  describe(`client endpoints (${algorithm})`, () => {
    let trader; let clientId;
    before(async () => {
      await setMarkets(admin);
      ({ client: trader, clientId } = await newTrader(desk, admin, algorithm));
    });

    test("catalog, account, balances", async () => {
      const instruments = await trader.instruments();
      assert.equal(instruments.find((i) => i.symbol === "BTC-USD").base, "BTC");
      assert.equal((await trader.assets()).find((a) => a.code === "BTC").scale, 8);
      const account = await trader.account();
      assert.equal(account.client_id, clientId);
      assert.equal(account.kyc_status, "approved");
      const usd = (await trader.balances()).find((b) => b.asset === "USD");
      assert.equal(usd.available, "1000000.00");
      assert.equal(typeof usd.available, "string");
    });

    test("price, rfq, accept, quote, order, trades, ledger", async () => {
      await setMarkets(admin);
      const price = await trader.price("BTC-USD", "0.5");
      assert.equal(price.firm, false);
      const quote = await trader.rfq({ instrument: "BTC-USD", side: "buy", quantity: "0.5" });
      assert.ok(quote.client_rfq_id.startsWith("rfq-"));
      assert.equal(quote.quantity, "0.50000000");
      const order = await trader.accept(quote);
      assert.equal(order.status, "filled");
      assert.ok(order.client_order_id.startsWith("ord-"));
      assert.equal(order.trades[0].price, quote.price);
      assert.equal((await trader.quote(quote.quote_id)).state, "used");
      assert.equal((await trader.order(order.order_id)).order_id, order.order_id);
      const trades = (await trader.trades({ instrument: "BTC-USD" })).items;
      assert.deepEqual(trades.map((t) => t.order_id), [order.order_id]);
      const seen = [];
      for await (const t of trader.iterTrades({ limit: 1 })) seen.push(t.trade_id);
      assert.deepEqual(seen, [trades[0].trade_id]);
      const entries = [];
      for await (const e of trader.iterLedger({ asset: "USD", limit: 1 })) entries.push(e);
      const usd = (await trader.balances()).find((b) => b.asset === "USD");
      assert.equal(entries.at(-1).balance, usd.available);
      const quoteByAmount = await trader.rfq({ instrument: "BTC-USD", side: "buy", quoteQuantity: "5001.00" });
      assert.ok(Number(quoteByAmount.quantity) > 0);
    });

    test("market and limit orders, cancel, pagination", async () => {
      await setMarkets(admin);
      assert.equal((await trader.marketOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1" })).status, "filled");
      const resting = await trader.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1", limitPrice: "40000.00" });
      assert.equal(resting.status, "open");
      assert.equal((await trader.cancelOrder(resting.order_id)).status, "cancelled");
      await assert.rejects(trader.cancelOrder(resting.order_id), (e) => e instanceof otc.OrderNotCancelable && e.code === "order_not_cancelable" && e.status === 409);
      const placed = [];
      for (let i = 0; i < 5; i++) placed.push((await trader.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.01", limitPrice: "30000.00" })).order_id);
      const page = await trader.orders({ status: "open", limit: 2 });
      assert.equal(page.items.length, 2);
      assert.ok(page.next_cursor);
      const all = [];
      for await (const o of trader.iterOrders({ status: "open", limit: 2 })) all.push(o.order_id);
      assert.deepEqual([...all].sort(), [...placed].sort());
      assert.equal((await trader.cancelAllOrders("BTC-USD")).length, 5);
    });

    test("idempotent ids and typed errors", async () => {
      await setMarkets(admin);
      const first = await trader.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1", limitPrice: "40000.00", clientOrderId: `same-${algorithm}` });
      const again = await trader.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1", limitPrice: "40000.00", clientOrderId: `same-${algorithm}` });
      assert.equal(again.order_id, first.order_id);
      await assert.rejects(trader.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.2", limitPrice: "40000.00", clientOrderId: `same-${algorithm}` }), otc.Conflict);
      await trader.cancelAllOrders();
      await assert.rejects(trader.rfq({ instrument: "NOPE-USD", side: "buy", quantity: "1" }), (e) => e instanceof otc.InstrumentUnknown && e.status === 400);
      await assert.rejects(trader.rfq({ instrument: "BTC-USD", side: "buy", quantity: "0.123456789" }), (e) => e instanceof otc.InvalidRequest && e.field === "quantity");
      await assert.rejects(trader.marketOrder({ instrument: "BTC-USD", side: "buy", quantity: "1000" }), otc.InsufficientFunds);
      await assert.rejects(trader.order("o_999999999999"), otc.NotFound);
      assert.throws(() => trader.rfq({ instrument: "BTC-USD", side: "buy", quantity: 0.5 }), TypeError);
      assert.throws(() => trader.limitOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1", limitPrice: 40000 }), TypeError);
      assert.throws(() => trader.rfq({ instrument: "BTC-USD", side: "buy", quantity: "half" }), RangeError);
    });

    test("destinations, withdrawals, deposit address", async () => {
      await admin.admin.deposit(clientId, "BTC", "1.5", `btc-${clientId}`);
      const destination = await trader.addDestination({ asset: "BTC", address: BTC_ADDRESS, label: "cold" });
      assert.equal(destination.status, "approved");
      assert.deepEqual((await trader.destinations()).items.map((d) => d.destination_id), [destination.destination_id]);
      const ids = [];
      for await (const d of trader.iterDestinations()) ids.push(d.destination_id);
      assert.deepEqual(ids, [destination.destination_id]);
      const withdrawal = await trader.withdraw({ asset: "BTC", amount: "0.25", destinationId: destination.destination_id });
      assert.equal(withdrawal.amount, "0.25000000");
      const again = await trader.withdraw({ asset: "BTC", amount: "0.25", destinationId: destination.destination_id, clientWithdrawalId: withdrawal.client_withdrawal_id });
      assert.equal(again.withdrawal_id, withdrawal.withdrawal_id);
      assert.equal((await trader.withdrawal(withdrawal.withdrawal_id)).withdrawal_id, withdrawal.withdrawal_id);
      assert.deepEqual((await trader.withdrawals()).items.map((w) => w.withdrawal_id), [withdrawal.withdrawal_id]);
      const all = [];
      for await (const w of trader.iterWithdrawals({ limit: 1 })) all.push(w.withdrawal_id);
      assert.deepEqual(all, [withdrawal.withdrawal_id]);
      assert.ok((await admin.admin.withdrawals()).items.some((w) => w.withdrawal_id === withdrawal.withdrawal_id));
      assert.equal((await trader.depositAddress("BTC")).asset, "BTC");
    });

    test("session token client and parallel identical reads", async () => {
      const session = await trader.createSession({ ttlSeconds: 120, scopes: ["read"] });
      assert.deepEqual(session.scopes, ["read"]);
      const browser = new otc.Client({ baseUrl: desk.url, token: session.token });
      assert.ok((await browser.balances()).length > 0);
      await assert.rejects(browser.rfq({ instrument: "BTC-USD", side: "buy", quantity: "0.1" }), otc.Forbidden);
      const reads = await Promise.all(Array.from({ length: 40 }, () => trader.balances()));
      assert.equal(reads.length, 40);
    });
  });
}

test("deposit batch", async () => {
  const record = await admin.admin.createClient({ name: "TS Batch Surface", jurisdiction: "DE", kycStatus: "approved" });
  const id = record.client_id;
  await admin.admin.deposit(id, "USD", "5.00", `single-${id}`);
  const answer = await admin.admin.depositBatch([
    { clientId: id, asset: "USD", amount: "10.50", reference: `b1-${id}` },
    { clientId: id, asset: "USD", amount: "5", reference: `single-${id}` },
    { clientId: "cl_99999999", asset: "USD", amount: "1", reference: `ghost-${id}` },
  ]);
  assert.deepEqual(answer.results.map((r) => r.status), [201, 200, 404]);
  assert.equal(answer.results[0].deposit.amount, "10.50");
  assert.equal(answer.results[2].problem.code, "not_found");
  assert.equal((await admin.balances(id)).find((b) => b.asset === "USD").available, "15.50");
});

test("admin namespace", async () => {
  const record = await admin.admin.createClient({ name: "TS Admin Surface", jurisdiction: "DE" });
  assert.equal(record.kyc_status, "pending");
  assert.equal((await admin.admin.client(record.client_id)).name, "TS Admin Surface");
  assert.ok((await admin.admin.clients({ limit: 1000 })).items.some((c) => c.client_id === record.client_id));
  assert.equal((await admin.admin.setKyc(record.client_id, "approved")).kyc_status, "approved");
  assert.equal((await admin.admin.updateClient(record.client_id, { tier: "standard" })).tier, "standard");
  const key = await admin.admin.createKey(record.client_id, { scopes: ["read"] });
  const client = new otc.Client({ baseUrl: desk.url, keyId: key.key_id, secret: key.secret });
  await admin.admin.deposit(record.client_id, "USD", "100.00", `dep-ts-admin-${record.client_id}`);
  assert.equal((await client.balances()).find((b) => b.asset === "USD").available, "100.00");
  assert.ok((await admin.balances(record.client_id)).length > 0);
  await admin.admin.revokeKey(key.key_id);
  await assert.rejects(client.balances(), otc.Unauthenticated);
  assert.ok(await admin.admin.tiers());
  assert.ok(await admin.admin.auditVerify());
  assert.ok(await admin.admin.request("GET", "/v1/admin/trading"));
  const pair = await otc.generateEd25519Key();
  const deskKey = await admin.admin.createKey(null, { scopes: ["read", "admin"], algorithm: "ed25519", publicKey: pair.publicKey });
  assert.equal(deskKey.client_id, null);
  const operator = new otc.Client({ baseUrl: desk.url, keyId: deskKey.key_id, privateKey: pair.privateKey });
  assert.equal((await operator.admin.client(record.client_id)).client_id, record.client_id);
  const { client: notAdmin } = await newTrader(desk, admin, "hmac", { usd: null });
  await assert.rejects(notAdmin.admin.clients(), otc.Forbidden);
});

test("admin desk controls", async () => {
  await setMarkets(admin);
  const { client, clientId } = await newTrader(desk, admin, "ed25519");
  const tier = await admin.admin.putTier("ts-gold", { spread_bps: "5" });
  assert.equal(tier.tier, "ts-gold");
  assert.ok((await admin.admin.tiers()).items.some((t) => t.tier === "ts-gold"));
  assert.ok(await admin.admin.fundDesk("USD", "1000.00", `fund-${clientId}`));
  await admin.admin.killSwitch(true, "drill");
  await assert.rejects(client.rfq({ instrument: "BTC-USD", side: "buy", quantity: "0.1" }), otc.TradingHalted);
  await admin.admin.killSwitch(false);
  await client.marketOrder({ instrument: "BTC-USD", side: "buy", quantity: "0.1" });
  assert.ok(await admin.admin.trades({ client_id: clientId }));
  const destination = await client.addDestination({ asset: "BTC", address: BTC_ADDRESS });
  await admin.admin.setDestinationStatus(destination.destination_id, "rejected");
  assert.equal((await client.destinations()).items[0].status, "rejected");
});

test("rate-limited reads are retried after Retry-After", async () => {
  await admin.admin.putTier("ts-slow", { spread_bps: "10", rate_limits: { reads: 1 } });
  const { client, clientId } = await newTrader(desk, admin, "hmac");
  await admin.admin.updateClient(clientId, { tier: "ts-slow" });
  const impatient = new otc.Client({ baseUrl: desk.url, signer: client.signer, maxRetries: 0 });
  await assert.rejects((async () => { for (let i = 0; i < 5; i++) await impatient.balances(); })(),
    (e) => e instanceof otc.RateLimited && e.status === 429 && e.retryAfterS > 0);
  for (let i = 0; i < 3; i++) assert.ok(await client.balances());
});
