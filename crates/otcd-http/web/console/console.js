// otcd operations console. Sign-in: the operator's key id and secret sign ONE request, POST /v1/sessions, in this
// browser (WebCrypto HMAC-SHA256, or a small built-in implementation where WebCrypto is unavailable); the console
// keeps only the resulting session token (sessionStorage) and uses it as a bearer token.
//
// Money is shown as the API's decimal strings. Sums (P&L is summed by the server; notional traded here) use
// BigInt fixed-point arithmetic, never floats; numbers are used only to place points on charts.

import { priceChart, divergingBars, flowChart, meter, compact } from "/ui/console/charts.js";
import { formatAmount, formatDecimal, loadAssets } from "/ui/components/format.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "otcd-console-session";

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// ---------------------------------------------------------------------------------------------------------------
// Decimal strings as BigInt fixed point.

function toUnits(text, scale) {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text || "");
  if (!match) return 0n;
  const fraction = (match[3] || "").padEnd(scale, "0").slice(0, scale);
  const units = BigInt(match[2] + fraction);
  return match[1] ? -units : units;
}

function fromUnits(units, scale) {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${whole}${scale ? `.${digits.slice(-scale)}` : ""}`;
}

/** Thousands separators for a decimal string, without changing a digit (format.js: string manipulation only). */
function grouped(text) {
  return formatDecimal(text);
}

// ---------------------------------------------------------------------------------------------------------------
// Signing (sign-in only).

async function hmacHex(secret, message) {
  const encoder = new TextEncoder();
  if (globalThis.crypto && crypto.subtle) {
    const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(message));
    return Array.from(new Uint8Array(signature), (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return hmacSha256Fallback(encoder.encode(secret), encoder.encode(message));
}

// SHA-256 and HMAC for pages not served from a secure context (plain http on a non-loopback address), where
// WebCrypto is not available.
function sha256(bytes) {
  const k = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const length = bytes.length;
  const padded = new Uint8Array(Math.ceil((length + 9) / 64) * 64);
  padded.set(bytes);
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor((length * 8) / 2 ** 32));
  view.setUint32(padded.length - 4, (length * 8) >>> 0);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    [a, b, c, d, e, f, g, hh].forEach((value, i) => { h[i] = (h[i] + value) >>> 0; });
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  h.forEach((value, i) => outView.setUint32(i * 4, value));
  return out;
}

function hmacSha256Fallback(key, message) {
  if (key.length > 64) key = sha256(key);
  const block = new Uint8Array(64);
  block.set(key);
  const inner = new Uint8Array(64 + message.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    inner[i] = block[i] ^ 0x36;
    outer[i] = block[i] ^ 0x5c;
  }
  inner.set(message, 64);
  outer.set(sha256(inner), 64);
  return Array.from(sha256(outer), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function signIn(keyId, secret) {
  const body = JSON.stringify({ ttl_seconds: 3600 });
  const timestamp = String(Date.now());
  const signature = await hmacHex(secret, `${timestamp}\nPOST\n/v1/sessions\n${body}`);
  const response = await fetch("/v1/sessions", {
    method: "POST",
    headers: { "Content-Type": "application/json", "OTC-KEY": keyId, "OTC-TIMESTAMP": timestamp, "OTC-SIGNATURE": signature },
    body,
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail || `sign-in refused (${response.status})`);
  if (!answer.scopes.includes("admin")) throw new Error("this key is not an operator (admin) key");
  return { token: answer.token, expiresAt: answer.expires_at, keyId };
}

// ---------------------------------------------------------------------------------------------------------------
// API with the session token.

let session = null;

class HttpError extends Error {
  constructor(status, problem) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code;
  }
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${session.token}` } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    signOut("Your session ended: sign in again.");
    throw new HttpError(401, body);
  }
  if (!response.ok) throw new HttpError(response.status, body);
  return body;
}

// ---------------------------------------------------------------------------------------------------------------
// Panels.

const state = {
  instruments: [],
  prices: [],
  priceInstrument: "BTC-USD",
  tiers: new Map(),
  rfqCounts: [],
  lastRfqTotal: null,
};

async function refreshHealth() {
  const pill = $("desk-status");
  try {
    const response = await fetch("/readyz");
    pill.textContent = response.ok ? "desk ready" : "desk not ready";
    pill.className = `pill ${response.ok ? "ok" : "bad"}`;
  } catch {
    pill.textContent = "desk unreachable";
    pill.className = "pill bad";
  }
}

// Trading controls (kill switch, halted instruments, desk position limits): GET /v1/admin/trading, when served.
async function refreshControls() {
  const pill = $("trading-pill");
  try {
    const controls = await api("/v1/admin/trading");
    state.limits = new Map((controls.position_limits || []).map((limit) => [limit.asset, limit]));
    const halted = (controls.instruments || []).filter((control) => control.halted);
    if (controls.kill_switch && controls.kill_switch.engaged) {
      pill.textContent = `KILL SWITCH ENGAGED${controls.kill_switch.reason ? `: ${controls.kill_switch.reason}` : ""}`;
      pill.className = "pill bad";
    } else {
      pill.textContent = halted.length ? `trading on · ${halted.length} halted` : "trading on";
      pill.className = `pill ${halted.length ? "warn" : "ok"}`;
    }
    $("halts").textContent = halted.length
      ? `Halted: ${halted.map((control) => `${control.instrument}${control.reason ? ` (${control.reason})` : ""}`).join(", ")}`
      : "";
  } catch (error) {
    if (error.status === 404 || error.status === 405) {
      pill.textContent = "trading controls: n/a";
      state.limits = new Map();
    } else if (error.status !== 401) {
      pill.textContent = "trading: unknown";
    }
  }
}

async function refreshExposure() {
  const [exposure, positions] = await Promise.all([api("/v1/admin/desk/exposure"), api("/v1/admin/desk/positions")]);
  const skew = new Map(positions.items.map((line) => [line.asset, line.skew_bps]));
  $("kpi-pnl").textContent = grouped(exposure.net_value_usd);
  $("kpi-pnl").className = `kpi-value ${exposure.net_value_usd.startsWith("-") ? "neg" : "pos"}`;
  $("kpi-gross").textContent = grouped(exposure.gross_value_usd);
  $("positions").innerHTML = exposure.items
    .map(
      (line) => `<tr><td>${esc(line.asset)}</td><td class="num ${line.position.startsWith("-") ? "neg" : ""}" title="${esc(line.position)}">${esc(formatAmount(line.position, line.asset))}</td>
        <td class="num">${esc(line.value_usd === null ? "—" : grouped(line.value_usd))}</td><td class="num">${esc(skew.get(line.asset) ?? "0")}</td>
        <td class="num muted">${esc(limitText(state.limits && state.limits.get(line.asset)))}</td></tr>`,
    )
    .join("");
  divergingBars(
    $("exposure-chart"),
    exposure.items.map((line) => ({ label: line.asset, value: line.value_usd === null ? 0 : Number(line.value_usd), text: line.value_usd === null ? "" : `${grouped(line.value_usd)} USD` })),
    { label: "Desk exposure per asset in USD: long to the right, short to the left" },
  );
}

function limitText(limit) {
  if (!limit || (limit.short_max == null && limit.long_max == null)) return "none";
  return `${limit.short_max == null ? "∞" : grouped(limit.short_max)} / ${limit.long_max == null ? "∞" : grouped(limit.long_max)}`;
}

async function refreshPrice() {
  const instrument = state.priceInstrument;
  let price;
  try {
    price = await api(`/v1/prices/${encodeURIComponent(instrument)}`);
  } catch (error) {
    if (error.status === 401) return;
    $("price-bid").textContent = "—";
    $("price-ask").textContent = "—";
    $("price-asof").textContent = error.code === "price_unavailable" ? "no market data" : error.message;
    return;
  }
  if (instrument !== state.priceInstrument) return;
  $("price-bid").textContent = grouped(price.bid);
  $("price-ask").textContent = grouped(price.ask);
  $("price-asof").textContent = `as of ${new Date(price.as_of).toLocaleTimeString([], { hour12: false })}`;
  state.prices.push({ t: Date.now(), bid: Number(price.bid), ask: Number(price.ask) });
  if (state.prices.length > 300) state.prices.shift();
  priceChart($("price-chart"), state.prices, { label: `${instrument} indicative bid and ask over the last minutes` });
}

async function refreshTrades() {
  const { items } = await api("/v1/admin/console/trades?limit=1000");
  $("kpi-trades").textContent = String(items.length);
  let notional = 0n;
  for (const trade of items) notional += toUnits(trade.notional_usd, 2);
  $("kpi-notional").textContent = fromUnits(notional, 2);
  $("trades").innerHTML = items.length
    ? items
        .slice(0, 50)
        .map(
          (trade) => `<tr data-trade="${esc(trade.trade_id)}"><td>${esc(new Date(trade.executed_at).toLocaleTimeString([], { hour12: false }))}</td><td class="mono">${esc(trade.trade_id)}</td>
          <td>${esc(trade.client_name)} <span class="muted">${esc(trade.client_id)}</span></td><td>${esc(trade.instrument)}</td>
          <td class="${trade.side === "buy" ? "pos" : "neg"}">${esc(trade.side)}</td><td class="num">${esc(formatAmount(trade.quantity, trade.instrument.split("-")[0]))}</td><td class="num">${esc(grouped(trade.price))}</td>
          <td class="num">${esc(trade.notional_usd === null ? "—" : grouped(trade.notional_usd))}</td></tr>`,
        )
        .join("")
    : `<tr><td colspan="8" class="empty">No trades yet. Client trades appear here as they happen.</td></tr>`;
  // Flow: USD notional per minute over the last 30 minutes, client buys and sells (numbers for the chart only).
  const now = Date.now();
  const minute = 60_000;
  const start = Math.floor(now / minute) * minute - 29 * minute;
  const buckets = Array.from({ length: 30 }, (_, i) => ({ t: start + i * minute, a: 0, b: 0 }));
  for (const trade of items) {
    const index = Math.floor((Date.parse(trade.executed_at) - start) / minute);
    if (index < 0 || index >= 30) continue;
    const value = Number(trade.notional_usd || 0);
    if (trade.side === "buy") buckets[index].a += value;
    else buckets[index].b += value;
  }
  flowChart($("flow-chart"), buckets, {
    label: "USD notional traded per minute over the last 30 minutes (valued at execution), buys and sells, with RFQs per minute on their own axis",
    line: rfqLine(start, minute),
    lineUnit: "RFQs",
    barUnit: "USD",
  });
}

// RFQs per minute, from the desk's Prometheus counters (POST /v1/rfq answered 201), sampled while the console is open.
async function sampleRfqs() {
  try {
    const text = await (await fetch("/metrics")).text();
    let total = 0;
    for (const line of text.split("\n")) {
      if (line.includes('route="/v1/rfq"') && line.includes('status="201"') && line.includes("http_requests")) {
        total += Number(line.trim().split(/\s+/).pop()) || 0;
      }
    }
    if (state.lastRfqTotal !== null && total >= state.lastRfqTotal) {
      state.rfqCounts.push({ t: Date.now(), n: total - state.lastRfqTotal });
    }
    state.lastRfqTotal = total;
    state.rfqCounts = state.rfqCounts.filter((sample) => sample.t > Date.now() - 31 * 60_000);
  } catch {
    // Metrics are optional for the console.
  }
}

function rfqLine(start, minute) {
  const counts = new Array(30).fill(0);
  for (const sample of state.rfqCounts) {
    const index = Math.floor((sample.t - start) / minute);
    if (index >= 0 && index < 30) counts[index] += sample.n;
  }
  return counts;
}

const KYC_CLASS = { approved: "ok", pending: "warn", rejected: "bad" };

async function refreshClients() {
  const [clients, tiers] = await Promise.all([api("/v1/admin/clients?limit=1000"), api("/v1/admin/tiers")]);
  state.tiers = new Map(tiers.items.map((tier) => [tier.tier, tier]));
  const items = clients.items;
  const counts = { approved: 0, pending: 0, rejected: 0 };
  for (const client of items) counts[client.kyc_status] = (counts[client.kyc_status] || 0) + 1;
  $("kpi-clients").textContent = String(items.length);
  $("kpi-clients-sub").textContent = `${counts.approved} approved · ${counts.pending} pending · ${counts.rejected} rejected`;
  $("clients").innerHTML = items.length
    ? items
        .map((client) => {
          const tier = state.tiers.get(client.tier) || {};
          const screening = client.screening?.status || "clear";
          return `<tr><td>${esc(client.name)} <span class="muted">${esc(client.client_id)}</span></td><td>${esc(client.jurisdiction)}</td>
            <td><span class="tag ${KYC_CLASS[client.kyc_status] || "warn"}">${esc(client.kyc_status)}</span>${client.kyc_expires_at ? ` <span class="muted small">until ${esc(client.kyc_expires_at.slice(0, 10))}</span>` : ""}</td>
            <td><span class="tag ${screening === "clear" ? "ok" : screening === "hit" ? "bad" : "warn"}">${esc(screening)}</span></td>
            <td>${esc(client.tier)}</td><td class="num">${esc(tier.spread_bps ?? "—")}</td>
            <td class="num">${esc(tier.trade_notional_usd_max ? grouped(tier.trade_notional_usd_max) : "none")}</td>
            <td class="num">${esc(tier.daily_notional_usd_max ? grouped(tier.daily_notional_usd_max) : "none")}</td>
            <td>${esc(client.settlement)}${client.credit_limit_usd ? ` <span class="muted small">limit ${esc(grouped(client.credit_limit_usd))}</span>` : ""}</td></tr>`;
        })
        .join("")
    : `<tr><td colspan="9" class="empty">No clients yet</td></tr>`;
  await refreshCredit(items.filter((client) => client.settlement === "credit"));
}

async function refreshCredit(creditClients) {
  if (!creditClients.length) {
    $("credit").innerHTML = `<div class="empty">No credit clients</div>`;
    return;
  }
  const accounts = await Promise.all(
    creditClients.map((client) => api(`/v1/account?client_id=${encodeURIComponent(client.client_id)}`).catch(() => null)),
  );
  $("credit").innerHTML = `<table class="compact"><thead><tr><th scope="col">Client</th><th scope="col" class="num">Unsettled (USD)</th><th scope="col" class="num">Credit limit</th><th scope="col">Used</th></tr></thead><tbody>${accounts
    .map((account, i) => {
      if (!account) return "";
      const used = account.usage?.open_exposure_usd ?? "0";
      const limit = account.limits?.credit_limit_usd;
      return `<tr><td>${esc(creditClients[i].name)}</td><td class="num">${esc(grouped(used))}</td><td class="num">${esc(limit ? grouped(limit) : "—")}</td>
        <td>${limit ? meter(Number(used), Number(limit)) : ""}</td></tr>`;
    })
    .join("")}</tbody></table>`;
}

/** A panel fed by an endpoint that this desk may not serve yet: 404 shows an empty state. */
async function optionalList(path, element, render, missing, empty = "Nothing to review") {
  try {
    const body = await api(path);
    const items = body.items || [];
    element.innerHTML = items.length ? render(items) : `<div class="empty">${esc(empty)}</div>`;
  } catch (error) {
    if (error.status === 401) return;
    element.innerHTML =
      error.status === 404 || error.status === 405
        ? `<div class="empty"><strong>Nothing to show yet.</strong><br>${esc(missing)} <code>${esc(path.split("?")[0])}</code></div>`
        : `<div class="error">${esc(error.message)}</div>`;
  }
}

const ALERT_KINDS = {
  sanctions_screening: ["bad", "sanctions: client"],
  sanctions_address: ["bad", "sanctions: address"],
  structuring: ["warn", "structuring"],
  rapid_in_and_out: ["warn", "rapid in and out"],
  velocity: ["warn", "velocity"],
};
const CASE_STATUS = { open: "bad", investigating: "warn", escalated: "bad", closed: "ok" };

/** A window in seconds for people: "24 h", "2 days", "10 min". */
function seconds(value) {
  const s = Number(value);
  if (!Number.isFinite(s)) return String(value ?? "");
  if (s >= 172_800 && s % 86_400 === 0) return `${s / 86_400} days`;
  if (s >= 3_600 && s % 3_600 === 0) return `${s / 3_600} h`;
  if (s >= 60 && s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

/** An alert's structured `details` as a short list of labelled facts (amounts at their assets' precision). */
function alertFacts(details) {
  if (!details) return "";
  const rows = [];
  const usd = (text) => `${formatAmount(text, "USD")} USD`;
  if (details.window_seconds !== undefined) rows.push(["window", seconds(details.window_seconds)]);
  if (details.amount !== undefined) rows.push(["amount", `${formatAmount(details.amount, details.asset)} ${details.asset}`]);
  if (details.destination_id) rows.push(["destination", `${details.destination_id}, registered ${shortTime(details.destination_registered_at)}`]);
  if (details.deposit_reference) rows.push(["after deposit", details.deposit_reference]);
  if (details.trade_id) rows.push(["and trade", details.trade_id]);
  if (details.threshold_usd !== undefined) rows.push(["threshold", `${usd(details.threshold_usd)} (from ${details.floor_percent}%)`]);
  for (const deposit of details.deposits || []) {
    rows.push([`deposit ${deposit.reference}`, `${formatAmount(deposit.amount, deposit.asset)} ${deposit.asset} (${usd(deposit.value_usd)})`]);
  }
  if (details.traded_usd !== undefined) rows.push(["traded in window", usd(details.traded_usd)]);
  if (details.baseline_usd !== undefined) rows.push(["baseline per window", `${usd(details.baseline_usd)} (×${details.multiple} triggers)`]);
  return `<dl class="facts">${rows.map(([name, value]) => `<dt>${esc(name)}</dt><dd>${esc(value)}</dd>`).join("")}</dl>`;
}

async function refreshAlerts() {
  await optionalList(
    "/v1/admin/alerts?limit=50",
    $("alerts"),
    (items) => {
      const open = items.filter((alert) => alert.status !== "closed").length;
      return `<p class="small muted">${open} open of the latest ${items.length}</p><div class="scroll short"><table class="compact"><thead><tr><th scope="col">Time</th><th scope="col">Kind</th><th scope="col">Client</th><th scope="col">Evidence</th><th scope="col">Case</th></tr></thead><tbody>${items
        .map((alert) => {
          const [level, label] = ALERT_KINDS[alert.kind] || ["warn", alert.kind || "alert"];
          return `<tr><td class="small">${esc(shortTime(alert.created_at))}</td><td><span class="tag ${level}">${esc(label)}</span></td>
            <td class="mono">${esc(alert.client_id || "—")}</td><td class="small">${esc(alert.evidence || "")}${alertFacts(alert.details)}</td>
            <td><span class="tag ${CASE_STATUS[alert.status] || "warn"}">${esc(alert.status || "open")}</span></td></tr>`;
        })
        .join("")}</tbody></table></div>`;
    },
    "Compliance and surveillance alerts appear here once the desk serves",
    "No alerts: nothing to review",
  );
}

const WITHDRAWAL_STATUS = { pending: "warn", submitted: "warn", completed: "ok", failed: "bad" };

async function refreshWithdrawals() {
  await optionalList(
    "/v1/admin/withdrawals?limit=50",
    $("withdrawals"),
    (items) =>
      `<div class="scroll short"><table class="compact"><thead><tr><th scope="col">Time</th><th scope="col">Withdrawal</th><th scope="col" class="num">Amount</th><th scope="col">Status</th><th scope="col">Reference</th></tr></thead><tbody>${items
        .map(
          (w) => `<tr><td class="small">${esc(shortTime(w.created_at))}</td><td class="mono">${esc(w.withdrawal_id)}${w.client_id ? ` <span class="muted">${esc(w.client_id)}</span>` : ""}</td>
            <td class="num" title="${esc(w.amount)}">${esc(formatAmount(w.amount, w.asset))} ${esc(w.asset)}</td><td><span class="tag ${WITHDRAWAL_STATUS[w.status] || "warn"}">${esc(w.status)}</span></td>
            <td class="small muted">${esc(w.failure_reason || w.external_reference || "")}</td></tr>`,
        )
        .join("")}</tbody></table></div>`,
    "Withdrawals and their settlement status appear here once the desk serves",
    "No withdrawals yet",
  );
}

async function refreshReconciliation() {
  const pill = $("reconciliation-pill");
  let report;
  try {
    report = await api("/v1/admin/reconciliation");
  } catch (error) {
    if (error.status === 401) return;
    pill.textContent = "n/a";
    $("reconciliation").innerHTML = `<div class="error">${esc(error.message)}</div>`;
    return;
  }
  pill.textContent = report.status === "matched" ? "matched" : `${report.breaks} break${report.breaks === 1 ? "" : "s"}`;
  pill.className = `tag ${report.status === "matched" ? "ok" : "bad"}`;
  // Trailing zeros dropped: an 18-decimal asset would not fit the panel.
  const trim = (text) => (text.includes(".") ? text.replace(/\.?0+$/, "") : text);
  $("reconciliation").innerHTML = report.lines.length
    ? `<div class="scroll short"><table class="compact"><thead><tr><th scope="col">Asset</th><th scope="col" class="num">Ledger</th><th scope="col" class="num">At rail</th><th scope="col" class="num">Difference</th></tr></thead><tbody>${report.lines
        .map(
          (line) => `<tr><td>${esc(line.asset)} <span class="muted small">${esc(line.account)}</span></td>
            <td class="num" title="submitted payouts ${esc(line.submitted_payouts)}, confirming deposits ${esc(line.confirming_deposits)}">${esc(grouped(trim(line.ledger)))}</td>
            <td class="num">${esc(grouped(trim(line.at_rail)))}</td>
            <td class="num ${line.status === "break" ? "neg" : "muted"}" title="${esc(line.unmatched_movements.map((movement) => `${movement.reference} ${movement.amount}`).join(", "))}">${esc(trim(line.difference))}</td></tr>`,
        )
        .join("")}</tbody></table></div>`
    : `<div class="empty">Nothing held yet</div>`;
}

function shortTime(rfc3339) {
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? rfc3339 || "" : `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${date.toLocaleTimeString([], { hour12: false })}`;
}

async function verifyAudit() {
  const button = $("verify");
  button.disabled = true;
  $("audit-result").textContent = "Verifying the journal…";
  try {
    const result = await api("/v1/admin/audit/verify");
    const pill = $("audit-pill");
    pill.textContent = result.valid ? `audit: intact (${result.events} events)` : "audit: BROKEN";
    pill.className = `pill ${result.valid ? "ok" : "bad"}`;
    $("audit-result").innerHTML = result.valid
      ? `<span class="tag ok">intact</span> ${esc(result.events)} events, chain head <code>${esc(String(result.head).slice(0, 24))}…</code> · checked ${esc(new Date().toLocaleTimeString([], { hour12: false }))}`
      : `<span class="tag bad">broken</span> ${esc(result.detail || JSON.stringify(result))}`;
  } catch (error) {
    $("audit-result").textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

async function loadInstruments() {
  const { items } = await (await fetch("/v1/instruments")).json();
  state.instruments = items.map((item) => item.symbol);
  $("price-instrument").innerHTML = state.instruments
    .map((symbol) => `<option ${symbol === state.priceInstrument ? "selected" : ""}>${esc(symbol)}</option>`)
    .join("");
}

// ---------------------------------------------------------------------------------------------------------------
// Life cycle.

const timers = [];

function every(milliseconds, action) {
  const run = () => action().catch((error) => console.warn("console refresh:", error.message));
  run();
  timers.push(setInterval(run, milliseconds));
}

function startConsole() {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("operator").textContent = session.keyId;
  refreshHealth();
  loadInstruments().catch(() => {});
  loadAssets("");
  every(5_000, refreshControls);
  every(2_000, refreshExposure);
  every(1_000, refreshPrice);
  every(2_000, refreshTrades);
  every(5_000, sampleRfqs);
  every(10_000, refreshClients);
  every(15_000, refreshAlerts);
  every(15_000, refreshWithdrawals);
  every(15_000, refreshReconciliation);
  every(5_000, async () => refreshHealth());
  verifyAudit();
}

function signOut(message) {
  for (const timer of timers.splice(0)) clearInterval(timer);
  session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("key-id").focus();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const button = event.target.querySelector("button");
  button.disabled = true;
  $("signin-error").textContent = "";
  try {
    session = await signIn(String(form.get("key_id")).trim(), String(form.get("secret")).trim());
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
    $("secret").value = "";
    startConsole();
  } catch (error) {
    $("signin-error").textContent = error.message;
  } finally {
    button.disabled = false;
  }
});

$("signout").addEventListener("click", () => signOut(""));
$("verify").addEventListener("click", verifyAudit);
$("price-instrument").addEventListener("change", (event) => {
  state.priceInstrument = event.target.value;
  state.prices = [];
  $("price-chart").innerHTML = "";
  refreshPrice();
});

const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
if (saved && Date.parse(saved.expiresAt) > Date.now() + 5_000) {
  session = saved;
  startConsole();
} else {
  $("key-id").focus();
}

export { toUnits, fromUnits, compact };
