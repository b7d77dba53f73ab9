/** The client: one method per endpoint, signed requests, safe retries, pagination. */

import { ApiError, errorFromProblem, TransportError, type Problem } from "./errors.js";
import type * as m from "./models.js";
import { Signer, newNonce, type PrivateKeyLike } from "./signing.js";
import { Stream, type StreamOptions, type WebSocketConstructor } from "./stream.js";

/** Lists answer at most this many items per page. */
export const PAGE_LIMIT_MAX = 1000;
/** The desk refuses bodies over 64 KiB. */
export const BODY_BYTES_MAX = 64 * 1024;
/** Longest single wait between two attempts, whatever `Retry-After` says. */
const BACKOFF_MS_MAX = 10_000;
/** The desk changed nothing and asks to come back. */
const RETRY_STATUSES = new Set([429, 503]);

export interface ClientOptions {
  baseUrl: string;
  keyId?: string;
  /** HMAC secret (servers only: never ship a secret to a browser). */
  secret?: string;
  /** Ed25519 private key (a CryptoKey, its 32 raw bytes or their base64). */
  privateKey?: PrivateKeyLike;
  /** An existing signer (instead of keyId with secret or privateKey). */
  signer?: Signer;
  /** A session token (`POST /v1/sessions`), for browsers. */
  token?: string;
  /** Per attempt (default 10 s). */
  timeoutMs?: number;
  /** Attempts after the first (default 3, at most 10). */
  maxRetries?: number;
  /** First backoff (default 200 ms), doubled each attempt, with jitter. */
  backoffMs?: number;
  fetch?: typeof fetch;
  /** The WebSocket constructor for `stream()`: default `globalThis.WebSocket` (browsers, Node 22+); on Node 20
   * pass the `ws` package's. */
  WebSocket?: WebSocketConstructor;
}

type Query = Record<string, string | number | undefined | null>;

interface Call {
  method: string;
  path: string;
  query?: Query;
  body?: Record<string, unknown>;
  /** Safe to send again after a timeout: reads, PUT/DELETE, and POSTs carrying an idempotency id. */
  retrySafe?: boolean;
}

/** A decimal as the desk wants it: a string. Numbers are refused (0.1 as a double is not 0.1). */
export function decimalText(value: m.DecimalInput, name: string): string {
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "string") throw new TypeError(`${name}: use a decimal string such as "0.5" (or a bigint), never a number`);
  if (!/^-?\d+(\.\d+)?$/.test(value)) throw new RangeError(`${name}: ${JSON.stringify(value)} is not a decimal`);
  return value;
}

/** A fresh idempotency id (1-64 characters). */
export function newClientId(prefix: string): string {
  return `${prefix}-${newNonce().slice(0, 24)}`;
}

function withoutUndefined<T extends Record<string, unknown>>(values: T): T {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as T;
}

function seg(value: string): string {
  return encodeURIComponent(value);
}

function limit(value?: number): number | undefined {
  if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= PAGE_LIMIT_MAX)) {
    throw new RangeError(`limit: 1 to ${PAGE_LIMIT_MAX}`);
  }
  return value;
}

function pathWithQuery(path: string, query?: Query): string {
  const entries = Object.entries(query ?? {}).filter(([, v]) => v !== undefined && v !== null);
  if (entries.length === 0) return path;
  return `${path}?${entries.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join("&")}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface PageQuery { limit?: number; cursor?: string }
export interface TimeQuery extends PageQuery { from?: string; to?: string }

export interface LimitOrder {
  instrument: string; side: m.Side; quantity: m.DecimalInput; limitPrice: m.DecimalInput;
  timeInForce?: m.TimeInForce; expireAt?: string; clientOrderId?: string;
}
export interface MarketOrder {
  instrument: string; side: m.Side; quantity: m.DecimalInput; referencePrice?: m.DecimalInput;
  slippageBps?: m.DecimalInput; clientOrderId?: string;
}

export class Client {
  readonly baseUrl: string;
  readonly signer?: Signer;
  readonly admin: Admin;
  private readonly token?: string;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly backoffMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly webSocket?: WebSocketConstructor;

  constructor(options: ClientOptions) {
    if (!/^https?:\/\//.test(options.baseUrl)) throw new TypeError("baseUrl must start with http:// or https://");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    if (options.signer) this.signer = options.signer;
    else if (options.keyId) this.signer = new Signer({ keyId: options.keyId, secret: options.secret, privateKey: options.privateKey });
    else if (options.secret !== undefined || options.privateKey !== undefined) throw new TypeError("a secret or privateKey needs its keyId");
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxRetries = options.maxRetries ?? 3;
    if (this.maxRetries < 0 || this.maxRetries > 10) throw new RangeError("maxRetries: 0 to 10");
    this.backoffMs = options.backoffMs ?? 200;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.webSocket = options.WebSocket;
    this.admin = new Admin((call) => this.call(call));
  }

  private backoff(attempt: number): number {
    // Exponential with jitter, so many clients retrying together spread out.
    return Math.min(BACKOFF_MS_MAX, this.backoffMs * 2 ** attempt) * (0.5 + Math.random() / 2);
  }

  /** Sends one call with the retry rules; answers the parsed JSON (undefined for 204). */
  async call<T = unknown>(call: Call): Promise<T> {
    const path = pathWithQuery(call.path, call.query);
    const body = call.body === undefined ? "" : JSON.stringify(call.body);
    if (new TextEncoder().encode(body).length > BODY_BYTES_MAX) throw new RangeError(`request body over ${BODY_BYTES_MAX} bytes`);
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { Accept: "application/json" };
      if (body) headers["Content-Type"] = "application/json";
      if (this.signer) Object.assign(headers, await this.signer.headers(call.method, path, body));
      else if (this.token) headers.Authorization = `Bearer ${this.token}`;
      let response: Response;
      try {
        response = await this.fetchImpl(this.baseUrl + path, {
          method: call.method, headers, body: body || undefined, signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (error) {
        // A request that may have reached the desk is sent again only when it is idempotent; `fetch` does not
        // tell a refused connection from a lost answer, so non-idempotent calls are not retried here.
        if (call.retrySafe && attempt < this.maxRetries) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw new TransportError(`${call.method} ${call.path}: ${String(error)}`, error);
      }
      if (RETRY_STATUSES.has(response.status) && attempt < this.maxRetries) {
        const header = Number(response.headers.get("Retry-After"));
        await response.body?.cancel();
        await sleep(Math.min(BACKOFF_MS_MAX, Number.isFinite(header) && header > 0 ? header * 1000 : this.backoff(attempt)));
        continue;
      }
      return this.finish<T>(response);
    }
  }

  private async finish<T>(response: Response): Promise<T> {
    const text = await response.text();
    let data: unknown = undefined;
    if (text) {
      try { data = JSON.parse(text); } catch { data = undefined; }
    }
    if (!response.ok) {
      const problem: Problem = data && typeof data === "object" ? (data as Problem) : { detail: text.slice(0, 500) };
      const retryAfter = Number(response.headers.get("Retry-After"));
      throw errorFromProblem(response.status, problem, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
    }
    return data as T;
  }

  private async items<T>(call: Call): Promise<T[]> {
    return (await this.call<{ items: T[] }>(call)).items;
  }

  /** Every item of a list, page after page: `for await (const o of client.paginate((p) => client.orders({...p})))`. */
  async *paginate<T>(page: (query: PageQuery) => Promise<m.Page<T>>, pageLimit?: number): AsyncGenerator<T> {
    let cursor: string | undefined;
    for (let pages = 0; pages < 100_000; pages++) { // a bound: a desk answering the same cursor cannot hang us
      const answer = await page({ limit: pageLimit, cursor });
      yield* answer.items;
      if (!answer.next_cursor || answer.next_cursor === cursor) return;
      cursor = answer.next_cursor;
    }
  }

  // Catalog and account
  instruments(): Promise<m.Instrument[]> { return this.items({ method: "GET", path: "/v1/instruments", retrySafe: true }); }
  assets(): Promise<m.Asset[]> { return this.items({ method: "GET", path: "/v1/assets", retrySafe: true }); }
  account(clientId?: string): Promise<m.Account> {
    return this.call({ method: "GET", path: "/v1/account", query: { client_id: clientId }, retrySafe: true });
  }
  balances(clientId?: string): Promise<m.Balance[]> {
    return this.items({ method: "GET", path: "/v1/balances", query: { client_id: clientId }, retrySafe: true });
  }
  ledger(query: TimeQuery & { asset?: string; clientId?: string } = {}): Promise<m.Page<m.LedgerEntry>> {
    return this.call({ method: "GET", path: "/v1/ledger", retrySafe: true, query: {
      asset: query.asset, from: query.from, to: query.to, limit: limit(query.limit), cursor: query.cursor, client_id: query.clientId } });
  }
  iterLedger(query: TimeQuery & { asset?: string } = {}): AsyncGenerator<m.LedgerEntry> {
    return this.paginate((p) => this.ledger({ ...query, ...p }), query.limit);
  }

  // Prices and quotes
  price(instrument: string, quantity?: m.DecimalInput): Promise<m.Price> {
    return this.call({ method: "GET", path: `/v1/prices/${seg(instrument)}`, retrySafe: true,
      query: { quantity: quantity === undefined ? undefined : decimalText(quantity, "quantity") } });
  }
  /** A firm quote. `clientRfqId` is generated when not given and kept across retries. */
  rfq(request: { instrument: string; side: m.Side; quantity?: m.DecimalInput; quoteQuantity?: m.DecimalInput; clientRfqId?: string }): Promise<m.Quote> {
    if ((request.quantity === undefined) === (request.quoteQuantity === undefined)) throw new TypeError("give exactly one of quantity or quoteQuantity");
    const body = withoutUndefined({
      client_rfq_id: request.clientRfqId ?? newClientId("rfq"), instrument: request.instrument, side: request.side,
      quantity: request.quantity === undefined ? undefined : decimalText(request.quantity, "quantity"),
      quote_quantity: request.quoteQuantity === undefined ? undefined : decimalText(request.quoteQuantity, "quoteQuantity"),
    });
    return this.call({ method: "POST", path: "/v1/rfq", body, retrySafe: true });
  }
  quote(quoteId: string): Promise<m.Quote> { return this.call({ method: "GET", path: `/v1/quotes/${seg(quoteId)}`, retrySafe: true }); }

  // Orders and trades
  /** `POST /v1/orders` with a raw body; a missing `client_order_id` is generated (and kept across retries). */
  placeOrder(body: Record<string, unknown>): Promise<m.Order> {
    const full: Record<string, unknown> = { client_order_id: newClientId("ord"), ...withoutUndefined(body) };
    for (const key of ["quantity", "limit_price", "reference_price", "slippage_bps"]) {
      if (full[key] !== undefined) full[key] = decimalText(full[key] as m.DecimalInput, key);
    }
    return this.call({ method: "POST", path: "/v1/orders", body: full, retrySafe: true });
  }
  /** Execute a firm quote (`side` only for a streamed two-way quote). */
  accept(quote: m.Quote | string, options: { side?: m.Side; clientOrderId?: string } = {}): Promise<m.Order> {
    return this.placeOrder({ client_order_id: options.clientOrderId, type: "quote",
      quote_id: typeof quote === "string" ? quote : quote.quote_id, side: options.side });
  }
  marketOrder(order: MarketOrder): Promise<m.Order> {
    return this.placeOrder({ client_order_id: order.clientOrderId, type: "market", instrument: order.instrument, side: order.side,
      quantity: order.quantity, reference_price: order.referencePrice, slippage_bps: order.slippageBps });
  }
  limitOrder(order: LimitOrder): Promise<m.Order> {
    return this.placeOrder({ client_order_id: order.clientOrderId, type: "limit", instrument: order.instrument, side: order.side,
      quantity: order.quantity, limit_price: order.limitPrice, time_in_force: order.timeInForce ?? "gtc", expire_at: order.expireAt });
  }
  order(orderId: string): Promise<m.Order> { return this.call({ method: "GET", path: `/v1/orders/${seg(orderId)}`, retrySafe: true }); }
  orders(query: PageQuery & { status?: string } = {}): Promise<m.Page<m.Order>> {
    return this.call({ method: "GET", path: "/v1/orders", retrySafe: true,
      query: { status: query.status, limit: limit(query.limit), cursor: query.cursor } });
  }
  iterOrders(query: PageQuery & { status?: string } = {}): AsyncGenerator<m.Order> {
    return this.paginate((p) => this.orders({ ...query, ...p }), query.limit);
  }
  cancelOrder(orderId: string): Promise<m.Order> { return this.call({ method: "DELETE", path: `/v1/orders/${seg(orderId)}`, retrySafe: true }); }
  cancelAllOrders(instrument?: string): Promise<m.Order[]> {
    return this.items({ method: "DELETE", path: "/v1/orders", query: { instrument }, retrySafe: true });
  }
  trades(query: TimeQuery & { instrument?: string } = {}): Promise<m.Page<m.Trade>> {
    return this.call({ method: "GET", path: "/v1/trades", retrySafe: true, query: {
      instrument: query.instrument, from: query.from, to: query.to, limit: limit(query.limit), cursor: query.cursor } });
  }
  iterTrades(query: TimeQuery & { instrument?: string } = {}): AsyncGenerator<m.Trade> {
    return this.paginate((p) => this.trades({ ...query, ...p }), query.limit);
  }

  // Settlement
  /** Not idempotent on the desk: retried only on 429 and 503. */
  addDestination(request: { asset: string; address: string; network?: string; label?: string }): Promise<m.Destination> {
    return this.call({ method: "POST", path: "/v1/destinations", body: withoutUndefined({ ...request }) });
  }
  destinations(query: PageQuery = {}): Promise<m.Page<m.Destination>> {
    return this.call({ method: "GET", path: "/v1/destinations", query: { limit: limit(query.limit), cursor: query.cursor }, retrySafe: true });
  }
  iterDestinations(query: PageQuery = {}): AsyncGenerator<m.Destination> {
    return this.paginate((p) => this.destinations({ ...query, ...p }), query.limit);
  }
  withdraw(request: { asset: string; amount: m.DecimalInput; destinationId: string; clientWithdrawalId?: string }): Promise<m.Withdrawal> {
    const body = { client_withdrawal_id: request.clientWithdrawalId ?? newClientId("wd"), asset: request.asset,
      amount: decimalText(request.amount, "amount"), destination_id: request.destinationId };
    return this.call({ method: "POST", path: "/v1/withdrawals", body, retrySafe: true });
  }
  withdrawal(withdrawalId: string): Promise<m.Withdrawal> {
    return this.call({ method: "GET", path: `/v1/withdrawals/${seg(withdrawalId)}`, retrySafe: true });
  }
  withdrawals(query: PageQuery = {}): Promise<m.Page<m.Withdrawal>> {
    return this.call({ method: "GET", path: "/v1/withdrawals", query: { limit: limit(query.limit), cursor: query.cursor }, retrySafe: true });
  }
  iterWithdrawals(query: PageQuery = {}): AsyncGenerator<m.Withdrawal> {
    return this.paginate((p) => this.withdrawals({ ...query, ...p }), query.limit);
  }
  depositAddress(asset: string): Promise<m.DepositAddress> {
    return this.call({ method: "POST", path: "/v1/deposit-addresses", body: { asset }, retrySafe: true });
  }

  // Sessions
  createSession(request: { ttlSeconds?: number; scopes?: string[] } = {}): Promise<m.Session> {
    return this.call({ method: "POST", path: "/v1/sessions", body: withoutUndefined({ ttl_seconds: request.ttlSeconds, scopes: request.scopes }) });
  }

  // Webhooks (issue 17's contract)
  /** The answer carries the webhook's `secret` ("whsec_..."), shown only this once. */
  createWebhook(url: string, events: m.WebhookEventKind[]): Promise<m.Webhook> {
    return this.call({ method: "POST", path: "/v1/webhooks", body: { url, events } });
  }
  webhooks(query: PageQuery = {}): Promise<m.Page<m.Webhook>> {
    return this.call({ method: "GET", path: "/v1/webhooks", query: { limit: limit(query.limit), cursor: query.cursor }, retrySafe: true });
  }
  webhook(webhookId: string): Promise<m.Webhook> { return this.call({ method: "GET", path: `/v1/webhooks/${seg(webhookId)}`, retrySafe: true }); }
  async deleteWebhook(webhookId: string): Promise<void> {
    await this.call({ method: "DELETE", path: `/v1/webhooks/${seg(webhookId)}`, retrySafe: true });
  }
  webhookDeliveries(webhookId: string, query: PageQuery = {}): Promise<m.Page<m.WebhookDelivery>> {
    return this.call({ method: "GET", path: `/v1/webhooks/${seg(webhookId)}/deliveries`, retrySafe: true,
      query: { limit: limit(query.limit), cursor: query.cursor } });
  }
  redeliverWebhook(webhookId: string, deliveryId: string): Promise<m.WebhookDelivery> {
    return this.call({ method: "POST", path: `/v1/webhooks/${seg(webhookId)}/deliveries/${seg(deliveryId)}/redeliver`, body: {}, retrySafe: true });
  }

  /** A stream on `/v1/stream` (see {@link Stream}); call `connect()` on it. */
  stream(options: Omit<StreamOptions, "url" | "signer" | "token"> = {}): Stream {
    const WebSocketImpl = options.WebSocket ?? this.webSocket;
    return new Stream({ ...options, url: this.baseUrl, signer: this.signer, token: this.token, WebSocket: WebSocketImpl });
  }
}

/** Operator endpoints (scope `admin`): `client.admin.createClient(...)`; `request()` reaches every other one. */
export class Admin {
  constructor(private readonly send: (call: Call) => Promise<unknown>) {}

  request<T = unknown>(method: string, path: string, body?: Record<string, unknown>, query?: Query): Promise<T> {
    const upper = method.toUpperCase();
    return this.send({ method: upper, path, body, query, retrySafe: ["GET", "PUT", "DELETE"].includes(upper) }) as Promise<T>;
  }
  createClient(request: { name: string; jurisdiction: string; kycStatus?: string; settlement?: string; tier?: string;
    kycExpiresAt?: string; creditLimitUsd?: m.DecimalInput }): Promise<m.ClientRecord> {
    return this.request("POST", "/v1/admin/clients", withoutUndefined({ name: request.name, jurisdiction: request.jurisdiction,
      tier: request.tier, kyc_status: request.kycStatus ?? "pending", kyc_expires_at: request.kycExpiresAt,
      settlement: request.settlement ?? "prefunded",
      credit_limit_usd: request.creditLimitUsd === undefined ? undefined : decimalText(request.creditLimitUsd, "creditLimitUsd") }));
  }
  clients(query: PageQuery = {}): Promise<m.Page<m.ClientRecord>> {
    return this.request("GET", "/v1/admin/clients", undefined, { limit: limit(query.limit), cursor: query.cursor });
  }
  client(clientId: string): Promise<m.ClientRecord> { return this.request("GET", `/v1/admin/clients/${seg(clientId)}`); }
  /** `PATCH /v1/admin/clients/{id}` with the desk's field names (`kyc_status`, `tier`, `credit_limit_usd`, ...). */
  updateClient(clientId: string, fields: Record<string, unknown>): Promise<m.ClientRecord> {
    return this.request("PATCH", `/v1/admin/clients/${seg(clientId)}`, fields);
  }
  setKyc(clientId: string, kycStatus: string, kycExpiresAt?: string): Promise<m.ClientRecord> {
    return this.updateClient(clientId, withoutUndefined({ kyc_status: kycStatus, kyc_expires_at: kycExpiresAt }));
  }
  /** A client key (`clientId` given) or a desk key (`clientId` null). */
  createKey(clientId: string | null, request: { scopes: string[]; algorithm?: "hmac" | "ed25519"; publicKey?: string; allowedIps?: string[] }): Promise<m.ApiKey> {
    const path = clientId ? `/v1/admin/clients/${seg(clientId)}/keys` : "/v1/admin/keys";
    return this.request("POST", path, withoutUndefined({ scopes: request.scopes, algorithm: request.algorithm ?? "hmac",
      public_key: request.publicKey, allowed_ips: request.allowedIps }));
  }
  revokeKey(keyId: string): Promise<unknown> { return this.request("DELETE", `/v1/admin/keys/${seg(keyId)}`); }
  /** `reference` is the idempotency id: a repeat answers the original. */
  deposit(clientId: string, asset: string, amount: m.DecimalInput, reference: string): Promise<unknown> {
    return this.send({ method: "POST", path: "/v1/admin/deposits", retrySafe: true,
      body: { client_id: clientId, asset, amount: decimalText(amount, "amount"), reference } });
  }
  /** Up to 1,000 deposits in one request; answers `{results}`, one per item in order (`status` 201/200 with
   * `deposit`, or a 4xx with `problem`). Each `reference` is its deposit's idempotency id. */
  depositBatch(deposits: { clientId: string; asset: string; amount: m.DecimalInput; reference: string }[]): Promise<unknown> {
    const items = deposits.map((item) => ({ client_id: item.clientId, asset: item.asset,
      amount: decimalText(item.amount, "amount"), reference: item.reference }));
    return this.send({ method: "POST", path: "/v1/admin/deposits/batch", retrySafe: true, body: { deposits: items } });
  }
  setMarket(instrument: string, bid: m.DecimalInput, ask: m.DecimalInput): Promise<unknown> {
    return this.request("PUT", `/v1/admin/market/${seg(instrument)}`, { bid: decimalText(bid, "bid"), ask: decimalText(ask, "ask") });
  }
  putTier(tier: string, body: Record<string, unknown>): Promise<unknown> { return this.request("PUT", `/v1/admin/tiers/${seg(tier)}`, body); }
  tiers(): Promise<unknown> { return this.request("GET", "/v1/admin/tiers"); }
  fundDesk(asset: string, amount: m.DecimalInput, reference: string): Promise<unknown> {
    return this.send({ method: "POST", path: "/v1/admin/desk/funding", retrySafe: true,
      body: { asset, amount: decimalText(amount, "amount"), reference } });
  }
  killSwitch(engaged: boolean, reason?: string): Promise<unknown> {
    return this.request("PUT", "/v1/admin/desk/kill-switch", withoutUndefined({ engaged, reason }));
  }
  setDestinationStatus(destinationId: string, status: string): Promise<unknown> {
    return this.request("PATCH", `/v1/admin/destinations/${seg(destinationId)}`, { status });
  }
  withdrawals(query: PageQuery = {}): Promise<m.Page<m.Withdrawal>> {
    return this.request("GET", "/v1/admin/withdrawals", undefined, { limit: limit(query.limit), cursor: query.cursor });
  }
  trades(query: Query = {}): Promise<unknown> { return this.request("GET", "/v1/admin/trades", undefined, query); }
  auditVerify(): Promise<unknown> { return this.request("GET", "/v1/admin/audit/verify"); }
  /** A desk-wide webhook (every client's events). */
  createWebhook(url: string, events: m.WebhookEventKind[]): Promise<m.Webhook> {
    return this.send({ method: "POST", path: "/v1/webhooks", body: { url, events } }) as Promise<m.Webhook>;
  }
}

export { ApiError };
