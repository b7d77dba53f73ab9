// otcd operations console. Sign-in: the operator's key id and secret sign ONE request, POST /v1/sessions, in this
// browser (WebCrypto HMAC-SHA256, or a small built-in implementation where WebCrypto is unavailable); the console
// keeps only the resulting session token (sessionStorage) and uses it as a bearer token. The token stands for the
// operator's key: every action is a request of that key, journaled with it as the actor, confirmed in a dialog
// before it is sent. A read-only operator key (a desk key with `read` and no `admin`) signs in too: the console
// then hides every action (and the desk would refuse them with 403).
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
  const readOnly = !answer.scopes.includes("admin") && answer.client_id == null && answer.scopes.includes("read");
  if (!answer.scopes.includes("admin") && !readOnly) {
    throw new Error("this key is not an operator key (a desk key with the admin scope, or read for a read-only console)");
  }
  return { token: answer.token, expiresAt: answer.expires_at, keyId, scopes: answer.scopes };
}

/** Whether this operator may act (admin scope); sessions saved before scopes were kept were admin sessions. */
function canAct() {
  return Boolean(session) && (!session.scopes || session.scopes.includes("admin"));
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

// ---------------------------------------------------------------------------------------------------------------
// Actions: a confirmation dialog, then one request of the operator's key; a refusal is shown in the dialog.

let toastTimer = null;

function toast(text, bad = false) {
  const element = $("toast");
  element.textContent = text;
  element.className = `toast${bad ? " bad" : ""}`;
  element.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { element.hidden = true; }, 6_000);
}

function fieldHtml(field) {
  const id = `action-field-${field.name}`;
  const required = field.required ? " required" : "";
  const label = `<label for="${id}">${esc(field.label)}${field.required ? "" : ' <span class="muted">(optional)</span>'}</label>`;
  if (field.type === "textarea") {
    return `${label}<textarea id="${id}" name="${esc(field.name)}" rows="3" maxlength="2000"${required}>${esc(field.value || "")}</textarea>`;
  }
  if (field.type === "select") {
    const options = field.options.map((option) => `<option value="${esc(option)}" ${option === field.value ? "selected" : ""}>${esc(option)}</option>`).join("");
    return `${label}<select id="${id}" name="${esc(field.name)}"${required}>${options}</select>`;
  }
  if (field.type === "checkboxes") {
    const boxes = field.options
      .map((option) => `<label><input type="checkbox" name="${esc(field.name)}" value="${esc(option)}" ${(field.value || []).includes(option) ? "checked" : ""}>${esc(option)}</label>`)
      .join("");
    return `<fieldset><legend class="muted small">${esc(field.label)}</legend>${boxes}</fieldset>`;
  }
  return `${label}<input id="${id}" name="${esc(field.name)}" value="${esc(field.value || "")}" autocomplete="off" spellcheck="false"${field.placeholder ? ` placeholder="${esc(field.placeholder)}"` : ""}${field.decimal ? ' inputmode="decimal"' : ""}${required}>`;
}

let pendingAction = null;

/**
 * Asks the operator to confirm an action; on Confirm runs `run(values)` (the request). A refusal keeps the dialog
 * open with the desk's answer; success closes it, shows `done(answer)` and refreshes the panels.
 */
function confirmAction({ title, summary, fields = [], confirm = "Confirm", run, done }) {
  if (!canAct()) return;
  $("action-title").textContent = title;
  $("action-summary").textContent = summary || "";
  $("action-fields").innerHTML = fields.map(fieldHtml).join("");
  $("action-key").textContent = session.keyId;
  $("action-error").textContent = "";
  $("action-confirm").textContent = confirm;
  $("action-confirm").disabled = false;
  pendingAction = { fields, run, done };
  $("action-dialog").showModal();
  const first = $("action-fields").querySelector("input, textarea, select");
  (first || $("action-confirm")).focus();
}

function formValues(fields) {
  const form = new FormData($("action-form"));
  const values = {};
  for (const field of fields) {
    values[field.name] = field.type === "checkboxes" ? form.getAll(field.name) : String(form.get(field.name) ?? "").trim();
  }
  return values;
}

$("action-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!pendingAction) return;
  const { fields, run, done } = pendingAction;
  const values = formValues(fields);
  const missing = fields.find((field) => field.required && !values[field.name]);
  if (missing) {
    $("action-error").textContent = `${missing.label}: required`;
    return;
  }
  $("action-confirm").disabled = true;
  $("action-error").textContent = "";
  try {
    const answer = await run(values);
    pendingAction = null;
    $("action-dialog").close();
    const message = done ? done(answer, values) : "Done.";
    if (message) toast(message);
    refreshAfterAction();
  } catch (error) {
    $("action-error").textContent = `Refused: ${error.message}${error.code ? ` (${error.code})` : ""}`;
    $("action-confirm").disabled = false;
  }
});

// A closed dialog keeps nothing: a new key's secret, once shown, leaves the page.
$("action-dialog").addEventListener("close", () => {
  if (!$("action-dialog").open) $("action-fields").innerHTML = ""; // (unless the next dialog already opened)
});

$("action-cancel").addEventListener("click", () => {
  pendingAction = null;
  $("action-dialog").close();
});

function refreshAfterAction() {
  for (const refresh of [refreshClients, refreshAlerts, refreshControls, refreshSettlementQueues, refreshKeys, refreshExposure]) {
    refresh().catch((error) => console.warn("console refresh:", error.message));
  }
}

/** A dialog that only shows something (a new key's secret), with one button. */
function showOnce(title, html) {
  $("action-title").textContent = title;
  $("action-summary").textContent = "";
  $("action-fields").innerHTML = html;
  $("action-error").textContent = "";
  $("action-confirm").textContent = "I have stored it";
  $("action-confirm").disabled = false;
  pendingAction = { fields: [], run: async () => null, done: () => "" };
  $("action-dialog").showModal();
  $("action-confirm").focus();
}

const path = (strings, ...values) => strings.reduce((out, part, i) => out + part + (i < values.length ? encodeURIComponent(values[i]) : ""), "");
const decimalOrAbsent = (text) => (text === "" ? undefined : text);

const ACTIONS = {
  "kyc-approve": ({ client, name }) => confirmAction({
    title: "Approve KYC",
    summary: `Approve the KYC review of ${name} (${client}): the client may trade once this is recorded.`,
    confirm: "Approve KYC",
    run: () => send("PATCH", path`/v1/admin/clients/${client}`, { kyc_status: "approved" }),
    done: () => `KYC approved for ${name}.`,
  }),
  "kyc-reject": ({ client, name }) => confirmAction({
    title: "Reject KYC",
    summary: `Reject the KYC review of ${name} (${client}): the client cannot trade.`,
    confirm: "Reject KYC",
    run: () => send("PATCH", path`/v1/admin/clients/${client}`, { kyc_status: "rejected" }),
    done: () => `KYC rejected for ${name}.`,
  }),
  "screening-clear": ({ client, name }) => confirmAction({
    title: "Record a screening decision",
    summary: `Record that compliance reviewed the sanctions matches of ${name} (${client}) and clears the client. To refuse the client instead, reject its KYC.`,
    confirm: "Clear the matches",
    run: () => send("PATCH", path`/v1/admin/clients/${client}`, { screening_decision: "cleared" }),
    done: () => `Screening cleared for ${name}.`,
  }),
  tier: ({ client, name, tier }) => confirmAction({
    title: "Change tier",
    summary: `The tier sets ${name}'s spread and notional limits (per trade and per day).`,
    fields: [{ name: "tier", label: "Tier", type: "select", options: [...state.tiers.keys()], value: tier, required: true }],
    confirm: "Change tier",
    run: (values) => send("PATCH", path`/v1/admin/clients/${client}`, { tier: values.tier }),
    done: (_, values) => `${name} is now on tier ${values.tier}.`,
  }),
  "alert-assign": ({ alert }) => confirmAction({
    title: `Assign alert ${alert}`,
    summary: "Who works the case; it moves to investigating.",
    fields: [{ name: "assignee", label: "Assignee", required: true, value: session.keyId }, { name: "note", label: "Note", type: "textarea" }],
    confirm: "Assign",
    run: (values) => send("PATCH", path`/v1/admin/alerts/${alert}`, { assignee: values.assignee, status: "investigating", ...(values.note ? { note: values.note } : {}) }),
    done: (_, values) => `Alert ${alert} assigned to ${values.assignee}.`,
  }),
  "alert-escalate": ({ alert }) => confirmAction({
    title: `Escalate alert ${alert}`,
    summary: "Hand the case up (to the MLRO): say why.",
    fields: [{ name: "note", label: "Note", type: "textarea", required: true }],
    confirm: "Escalate",
    run: (values) => send("PATCH", path`/v1/admin/alerts/${alert}`, { status: "escalated", note: values.note }),
    done: () => `Alert ${alert} escalated.`,
  }),
  "alert-close": ({ alert }) => confirmAction({
    title: `Close alert ${alert}`,
    summary: "Close the case with the reason it needs no further action.",
    fields: [{ name: "note", label: "Note", type: "textarea", required: true }],
    confirm: "Close the case",
    run: (values) => send("PATCH", path`/v1/admin/alerts/${alert}`, { status: "closed", note: values.note }),
    done: () => `Alert ${alert} closed.`,
  }),
  "kill-switch": () => {
    const engaged = Boolean(state.killSwitch && state.killSwitch.engaged);
    confirmAction({
      title: engaged ? "Release the kill switch" : "Engage the kill switch",
      summary: engaged
        ? "Firm quotes and trading resume on every instrument that is not halted."
        : "Stops ALL firm quotes and trading on the desk at once, for every client, until released.",
      fields: engaged ? [] : [{ name: "reason", label: "Reason", required: true }],
      confirm: engaged ? "Release" : "Engage kill switch",
      run: (values) => send("PUT", "/v1/admin/desk/kill-switch", engaged ? { engaged: false } : { engaged: true, reason: values.reason }),
      done: () => (engaged ? "Kill switch released: trading resumes." : "Kill switch engaged: trading stopped."),
    });
  },
  halt: ({ instrument }) => confirmAction({
    title: `Halt ${instrument}`,
    summary: `No firm quotes or trades on ${instrument} until it is resumed; resting orders wait.`,
    fields: [{ name: "reason", label: "Reason", required: true }],
    confirm: `Halt ${instrument}`,
    run: (values) => send("PUT", path`/v1/admin/instruments/${instrument}`, { halted: true, reason: values.reason }),
    done: () => `${instrument} halted.`,
  }),
  resume: ({ instrument }) => confirmAction({
    title: `Resume ${instrument}`,
    summary: `Firm quotes and trading on ${instrument} resume.`,
    confirm: `Resume ${instrument}`,
    run: () => send("PUT", path`/v1/admin/instruments/${instrument}`, { halted: false }),
    done: () => `${instrument} resumed.`,
  }),
  limit: ({ asset, short, long }) => confirmAction({
    title: `Desk position limits: ${asset}`,
    summary: `How short and how long the desk may go in ${asset}, in ${asset}; empty means no limit. Trades that would pass a limit are refused.`,
    fields: [
      { name: "short_max", label: `Short max (${asset})`, value: short, decimal: true },
      { name: "long_max", label: `Long max (${asset})`, value: long, decimal: true },
    ],
    confirm: "Set limits",
    run: (values) => send("PUT", path`/v1/admin/desk/position-limits/${asset}`, { short_max: decimalOrAbsent(values.short_max), long_max: decimalOrAbsent(values.long_max) }),
    done: () => `Position limits of ${asset} set.`,
  }),
  skew: ({ asset }) => confirmAction({
    title: `Inventory skew: ${asset}`,
    summary: `Shade prices by the desk's ${asset} position: basis points per whole ${asset} held, capped either way ("0" turns skew off).`,
    fields: [
      { name: "bps_per_unit", label: `bps per 1 ${asset}`, required: true, decimal: true, value: "0" },
      { name: "max_bps", label: "Cap (bps)", required: true, decimal: true, value: "0" },
    ],
    confirm: "Set skew",
    run: (values) => send("PUT", path`/v1/admin/skew/${asset}`, { bps_per_unit: values.bps_per_unit, max_bps: values.max_bps }),
    done: () => `Skew of ${asset} set.`,
  }),
  "manual-price": () => confirmAction({
    title: "Manual reference price",
    summary: "A bid and ask from the desk itself (venue \"manual\"), fresh as of now, unlimited depth; it ages like any venue book. Prices in the quote asset.",
    fields: [
      { name: "instrument", label: "Instrument", type: "select", options: state.instruments, value: state.priceInstrument, required: true },
      { name: "bid", label: "Bid", required: true, decimal: true },
      { name: "ask", label: "Ask", required: true, decimal: true },
    ],
    confirm: "Publish price",
    run: (values) => send("PUT", path`/v1/admin/market/${values.instrument}`, { bid: values.bid, ask: values.ask }),
    done: (_, values) => `Manual price of ${values.instrument} published.`,
  }),
  "destination-approve": ({ destination, client }) => confirmAction({
    title: "Approve destination",
    summary: `Approve withdrawal destination ${destination} of ${client}: withdrawals to it may proceed.`,
    confirm: "Approve destination",
    run: () => send("PATCH", path`/v1/admin/destinations/${destination}`, { status: "approved" }),
    done: () => `Destination ${destination} approved.`,
  }),
  "destination-reject": ({ destination, client }) => confirmAction({
    title: "Reject destination",
    summary: `Reject withdrawal destination ${destination} of ${client}: withdrawals to it are refused.`,
    confirm: "Reject destination",
    run: () => send("PATCH", path`/v1/admin/destinations/${destination}`, { status: "rejected" }),
    done: () => `Destination ${destination} rejected.`,
  }),
  "top-up-approve": ({ topup, amount }) => confirmAction({
    title: "Approve hot-wallet top-up",
    summary: `Move ${amount} from cold to hot storage (top-up ${topup}).`,
    confirm: "Approve top-up",
    run: () => send("POST", path`/v1/admin/custody/top-ups/${topup}/approve`),
    done: () => `Top-up ${topup} approved.`,
  }),
  "net-settlement": () => confirmAction({
    title: "Run a net settlement cycle",
    summary: "Every credit client's obligations per asset since the last cycle become one settlement instruction each.",
    confirm: "Run the cycle",
    run: () => send("POST", "/v1/admin/settlements/run"),
    done: (answer) => `Net settlement: ${answer.items.length} instruction${answer.items.length === 1 ? "" : "s"} issued.`,
  }),
  "key-create": () => {
    const owner = $("keys-owner").value;
    const scopes = owner ? ["read", "trade", "withdraw"] : ["read", "admin"];
    confirmAction({
      title: owner ? `New API key for ${owner}` : "New desk (operator) key",
      summary: owner
        ? "An HMAC key for the client's systems. Its secret is shown once, right after."
        : "An operator key. With admin it may act; with read only it is a read-only operator (the console hides every action). Its secret is shown once.",
      fields: [{ name: "scopes", label: "Scopes", type: "checkboxes", options: scopes, value: owner ? ["read", "trade"] : ["read"] }],
      confirm: "Create key",
      run: (values) => {
        if (!values.scopes.length) throw new Error("choose at least one scope");
        const body = { scopes: values.scopes, algorithm: "hmac" };
        return send("POST", owner ? path`/v1/admin/clients/${owner}/keys` : "/v1/admin/keys", body);
      },
      done: (answer) => {
        setTimeout(() => showOnce(`Key ${answer.key_id} created`, `<p>Store the secret now: the desk keeps only what verifies it and will never show it again.</p>
          <p class="muted small">key_id</p><div class="secret" data-new-key-id>${esc(answer.key_id)}</div>
          <p class="muted small">secret</p><div class="secret" data-new-secret>${esc(answer.secret)}</div>`), 0);
        return `Key ${answer.key_id} created.`;
      },
    });
  },
  "key-revoke": ({ key }) => confirmAction({
    title: `Revoke key ${key}`,
    summary: "Requests signed with it are refused from the next request on, and its session tokens end at once.",
    confirm: "Revoke key",
    run: () => send("DELETE", path`/v1/admin/keys/${key}`),
    done: () => `Key ${key} revoked.`,
  }),
};

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (!button || !ACTIONS[button.dataset.action]) return;
  ACTIONS[button.dataset.action]({ ...button.dataset });
});

/** A small action button (hidden for a read-only key). */
function actionButton(action, label, data = {}) {
  const attributes = Object.entries(data).map(([name, value]) => ` data-${name}="${esc(value)}"`).join("");
  return `<button type="button" data-action="${action}"${attributes}>${esc(label)}</button>`;
}

async function api(path) {
  return send("GET", path);
}

/** A request with the session token (the operator's key); resolves to the JSON answer, rejects with HttpError. */
async function send(method, path, payload) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
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
    state.killSwitch = controls.kill_switch;
    renderControls(controls);
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

function renderControls(controls) {
  const engaged = Boolean(controls.kill_switch && controls.kill_switch.engaged);
  const button = $("kill-switch");
  button.textContent = engaged ? "Release kill switch" : "Engage kill switch";
  button.classList.toggle("engaged", engaged);
  const byInstrument = new Map((controls.instruments || []).map((control) => [control.instrument, control]));
  const symbols = state.instruments.length ? state.instruments : [...byInstrument.keys()];
  $("instrument-controls").innerHTML = symbols
    .map((symbol) => {
      const control = byInstrument.get(symbol) || {};
      const halted = Boolean(control.halted);
      return `<tr data-instrument="${esc(symbol)}"><td>${esc(symbol)}</td>
        <td>${halted ? `<span class="tag bad">halted</span> <span class="muted small">${esc(control.reason || "")}</span>` : `<span class="tag ok">trading</span>`}</td>
        <td class="act">${halted ? actionButton("resume", "Resume", { instrument: symbol }) : actionButton("halt", "Halt", { instrument: symbol })}</td></tr>`;
    })
    .join("");
  const positions = state.positions || [];
  $("limit-controls").innerHTML = positions
    .map((line) => {
      const limit = state.limits.get(line.asset) || {};
      return `<tr data-asset="${esc(line.asset)}"><td>${esc(line.asset)}</td><td class="num" title="${esc(line.position)}">${esc(formatAmount(line.position, line.asset))}</td>
        <td class="num">${esc(limit.short_max == null ? "none" : formatAmount(limit.short_max, line.asset))}</td>
        <td class="num">${esc(limit.long_max == null ? "none" : formatAmount(limit.long_max, line.asset))}</td>
        <td class="num">${esc(line.skew_bps)}</td>
        <td class="act">${actionButton("limit", "Limits…", { asset: line.asset, short: limit.short_max ?? "", long: limit.long_max ?? "" })}${actionButton("skew", "Skew…", { asset: line.asset })}</td></tr>`;
    })
    .join("");
}

async function refreshExposure() {
  const [exposure, positions] = await Promise.all([api("/v1/admin/desk/exposure"), api("/v1/admin/desk/positions")]);
  const skew = new Map(positions.items.map((line) => [line.asset, line.skew_bps]));
  state.positions = positions.items;
  $("kpi-pnl").textContent = grouped(exposure.net_value_usd);
  $("kpi-pnl").className = `kpi-value ${exposure.net_value_usd.startsWith("-") ? "neg" : "pos"}`;
  $("kpi-gross").textContent = grouped(exposure.gross_value_usd);
  $("positions").innerHTML = exposure.items
    .map(
      (line) => `<tr><td>${esc(line.asset)}</td><td class="num ${line.position.startsWith("-") ? "neg" : ""}" title="${esc(line.position)}">${esc(formatAmount(line.position, line.asset))}</td>
        <td class="num">${esc(line.value_usd === null ? "—" : grouped(line.value_usd))}</td><td class="num">${esc(skew.get(line.asset) ?? "0")}</td>
        <td class="num muted">${esc(limitText(state.limits && state.limits.get(line.asset), line.asset))}</td></tr>`,
    )
    .join("");
  divergingBars(
    $("exposure-chart"),
    exposure.items.map((line) => ({ label: line.asset, value: line.value_usd === null ? 0 : Number(line.value_usd), text: line.value_usd === null ? "" : `${grouped(line.value_usd)} USD` })),
    { label: "Desk exposure per asset in USD: long to the right, short to the left" },
  );
}

function limitText(limit, asset) {
  if (!limit || (limit.short_max == null && limit.long_max == null)) return "none";
  const amount = (text) => (text == null ? "∞" : formatAmount(text, asset));
  return `${amount(limit.short_max)} / ${amount(limit.long_max)}`;
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
  refreshVenues(instrument);
}

// Exchange venues feeding the instrument (with --market venues): state and book age, next to the price chart.
async function refreshVenues(instrument) {
  let feeds;
  try {
    feeds = (await api("/v1/admin/market/venues")).data;
  } catch {
    return;
  }
  if (instrument !== state.priceInstrument) return;
  const shown = feeds.filter((feed) => feed.instrument === instrument).map((feed) => {
    const age = feed.age_ms === null || feed.age_ms === undefined ? "" : ` ${(feed.age_ms / 1000).toFixed(1)} s`;
    return `${esc(feed.venue)} <b>${esc(feed.state)}</b>${age}`;
  });
  $("price-venues").innerHTML = shown.length ? `Venues: ${shown.join(" · ")}` : "";
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
            <td>${esc(client.settlement)}${client.credit_limit_usd ? ` <span class="muted small">limit ${esc(grouped(client.credit_limit_usd))}</span>` : ""}</td>
            <td class="act">${clientActions(client, screening)}</td></tr>`;
        })
        .join("")
    : `<tr><td colspan="10" class="empty">No clients yet</td></tr>`;
  const owner = $("keys-owner");
  const chosen = owner.value;
  owner.innerHTML = `<option value="">desk (operator) keys</option>${items.map((client) => `<option value="${esc(client.client_id)}" ${client.client_id === chosen ? "selected" : ""}>${esc(client.name)} (${esc(client.client_id)})</option>`).join("")}`;
  await refreshCredit(items.filter((client) => client.settlement === "credit"));
}

function clientActions(client, screening) {
  const data = { client: client.client_id, name: client.name };
  const buttons = [];
  if (client.kyc_status !== "approved") buttons.push(actionButton("kyc-approve", "Approve KYC", data));
  if (client.kyc_status !== "rejected") buttons.push(actionButton("kyc-reject", "Reject KYC", data));
  if (screening !== "clear") buttons.push(actionButton("screening-clear", "Clear screening", data));
  buttons.push(actionButton("tier", "Tier…", { ...data, tier: client.tier }));
  return buttons.join("");
}

async function refreshKeys() {
  const owner = $("keys-owner").value;
  await optionalList(
    `/v1/admin/keys?limit=50${owner ? `&client_id=${encodeURIComponent(owner)}` : ""}`,
    $("keys"),
    (items) => `<div class="scroll short"><table class="compact"><thead><tr><th scope="col">Key</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">State</th><th scope="col" class="act">Actions</th></tr></thead><tbody>${items
      .map((key) => `<tr data-key="${esc(key.key_id)}"><td class="mono">${esc(key.key_id)}${key.key_id === session.keyId ? ' <span class="muted">(you)</span>' : ""}</td><td>${esc(key.scopes.join(", "))}</td>
        <td class="small">${esc(shortTime(key.created_at))}</td><td>${key.revoked_at ? `<span class="tag bad">revoked</span>` : `<span class="tag ok">active</span>`}</td>
        <td class="act">${key.revoked_at ? "" : actionButton("key-revoke", "Revoke", { key: key.key_id })}</td></tr>`)
      .join("")}</tbody></table></div>`,
    "Keys appear here once the desk serves",
    "No keys",
  );
}

async function refreshSettlementQueues() {
  await optionalList(
    "/v1/admin/destinations?status=pending_review&limit=50",
    $("destinations"),
    (items) => `<table class="compact"><thead><tr><th scope="col">Destination</th><th scope="col">Client</th><th scope="col">Address</th><th scope="col" class="act">Actions</th></tr></thead><tbody>${items
      .map((destination) => `<tr data-destination="${esc(destination.destination_id)}"><td class="mono">${esc(destination.destination_id)} <span class="muted">${esc(destination.asset)} · ${esc(destination.network)}</span></td>
        <td class="mono">${esc(destination.client_id)}</td><td class="mono small">${esc(destination.address)}</td>
        <td class="act">${actionButton("destination-approve", "Approve", { destination: destination.destination_id, client: destination.client_id })}${actionButton("destination-reject", "Reject", { destination: destination.destination_id, client: destination.client_id })}</td></tr>`)
      .join("")}</tbody></table>`,
    "Destinations under review appear here once the desk serves",
    "No destination waits for review",
  );
  try {
    const custody = await api("/v1/admin/custody");
    const waiting = (custody.top_ups || []).filter((topUp) => topUp.status === "awaiting_approval");
    $("top-ups").innerHTML = waiting.length
      ? `<table class="compact"><tbody>${waiting
          .map((topUp) => `<tr data-top-up="${esc(topUp.top_up_id)}"><td class="mono">${esc(topUp.top_up_id)}</td><td class="num">${esc(formatAmount(topUp.amount, topUp.asset))} ${esc(topUp.asset)}</td>
            <td class="small muted">${esc(shortTime(topUp.requested_at))}</td><td class="act">${actionButton("top-up-approve", "Approve", { topup: topUp.top_up_id, amount: `${topUp.amount} ${topUp.asset}` })}</td></tr>`)
          .join("")}</tbody></table>`
      : `<div class="empty">No top-up waits for approval</div>`;
  } catch (error) {
    if (error.status !== 401) $("top-ups").innerHTML = `<div class="error">${esc(error.message)}</div>`;
  }
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
      return `<p class="small muted">${open} open of the latest ${items.length}</p><div class="scroll short"><table class="compact"><thead><tr><th scope="col">Time</th><th scope="col">Kind</th><th scope="col">Client</th><th scope="col">Evidence</th><th scope="col">Case</th><th scope="col" class="act">Actions</th></tr></thead><tbody>${items
        .map((alert) => {
          const [level, label] = ALERT_KINDS[alert.kind] || ["warn", alert.kind || "alert"];
          const lastNote = (alert.notes || []).at(-1);
          const data = { alert: alert.alert_id };
          const actions = alert.status === "closed"
            ? ""
            : actionButton("alert-assign", "Assign…", data) + (alert.status === "escalated" ? "" : actionButton("alert-escalate", "Escalate…", data)) + actionButton("alert-close", "Close…", data);
          return `<tr data-alert="${esc(alert.alert_id)}"><td class="small">${esc(shortTime(alert.created_at))}</td><td><span class="tag ${level}">${esc(label)}</span></td>
            <td class="mono">${esc(alert.client_id || "—")}</td><td class="small evidence">${esc(alert.evidence || "")}${alertFacts(alert.details)}</td>
            <td><span class="tag ${CASE_STATUS[alert.status] || "warn"}" data-status>${esc(alert.status || "open")}</span>${alert.assignee ? `<div class="small muted">${esc(alert.assignee)}</div>` : ""}
            ${lastNote ? `<div class="small muted" data-note title="${esc(lastNote.by || "")}">“${esc(lastNote.text)}” — ${esc(lastNote.by || "")}</div>` : ""}</td>
            <td class="act">${actions}</td></tr>`;
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

// Hedging: positions against their bands, venue balances (ledger and as the venue reports them), hedges.
// The hedging report and the reconciliation cost more than the hedging view: fetched again only when a hedge
// appeared or changed state, or every 15 s.
const hedgingCache = { at: 0, hedges: "", report: { items: [] }, reconciliation: null };

async function refreshHedging() {
  const pill = $("hedging-pill");
  let view;
  try {
    view = await api("/v1/admin/hedging");
  } catch (error) {
    if (error.status === 401) return;
    pill.textContent = "n/a";
    $("hedges-open").innerHTML = `<div class="error">${esc(error.message)}</div>`;
    return;
  }
  const hedges = [...view.active, ...view.recent].map((hedge) => `${hedge.hedge_id}:${hedge.state}`).join(",");
  if (hedges !== hedgingCache.hedges || Date.now() - hedgingCache.at > 15_000) {
    const [report, reconciliation] = await Promise.all([
      api("/v1/admin/reports/hedging?limit=1000").catch(() => ({ items: [] })),
      api("/v1/admin/reconciliation").catch(() => null),
    ]);
    Object.assign(hedgingCache, { at: Date.now(), hedges, report, reconciliation });
  }
  const { report, reconciliation } = hedgingCache;
  const policies = new Map(view.policies.map((policy) => [policy.asset, policy]));
  pill.textContent = `${view.policies.filter((policy) => policy.enabled).length} hedged, ${view.active.length} open`;
  pill.className = `tag ${view.active.length ? "warn" : "ok"}`;
  renderHedgePositions(view, policies);
  renderVenueBalances(reconciliation, view);
  const pnl = new Map((report.items || []).map((row) => [row.hedge_id, row]));
  $("hedges-open").innerHTML = hedgeTable(view.active, pnl, "No hedge is open");
  $("hedges-recent").innerHTML = hedgeTable(view.recent.slice(0, 20), pnl, "No hedge yet: a client fill that takes a hedged position outside its band opens one");
}

function renderHedgePositions(view, policies) {
  const inFlight = new Map();
  for (const hedge of view.active) {
    const scale = decimals(hedge.quantity);
    const rest = toUnits(hedge.quantity, scale) - toUnits(hedge.filled, scale);
    inFlight.set(hedge.asset, { units: hedge.side === "buy" ? rest : -rest, scale });
  }
  $("hedge-positions").innerHTML = view.positions.length
    ? view.positions
        .map((line) => {
          const policy = policies.get(line.asset) || {};
          const scale = decimals(line.position);
          const flight = inFlight.get(line.asset) || { units: 0n, scale };
          const position = toUnits(line.position, scale);
          const after = position + flight.units;
          const target = toUnits(policy.target || "0", scale);
          const band = toUnits(policy.band || "0", scale);
          const inside = after >= target - band && after <= target + band;
          const state = !policy.enabled ? `<span class="tag warn">off</span>` : inside ? `<span class="tag ok">inside band</span>` : `<span class="tag bad">outside band</span>`;
          return `<tr data-asset="${esc(line.asset)}"><td>${esc(line.asset)}</td><td class="num">${esc(fromUnits(position, scale))}</td>
            <td class="num">${esc(fromUnits(flight.units, scale))}</td><td class="num">${esc(fromUnits(after, scale))}</td>
            <td class="num">${esc(`${policy.target} ± ${policy.band}`)}</td><td>${state}</td></tr>`;
        })
        .join("")
    : `<tr><td colspan="6" class="empty">No hedging policy: PUT /v1/admin/hedging/{asset}</td></tr>`;
}

function renderVenueBalances(reconciliation, view) {
  const pill = $("venue-reconciliation-pill");
  const trim = (text) => (text.includes(".") ? text.replace(/\.?0+$/, "") : text);
  if (!reconciliation) {
    pill.textContent = "n/a";
    const reported = view.venues.flatMap((venue) => Object.entries(venue.balances).map(([asset, balance]) => ({ venue: venue.venue, asset, at_venue: balance })));
    $("venue-balances").innerHTML = reported.length
      ? `<div class="scroll short"><table class="compact"><thead><tr><th scope="col">Venue</th><th scope="col">Asset</th><th scope="col" class="num">Reported</th></tr></thead><tbody>${reported
          .map((line) => `<tr><td>${esc(line.venue)}</td><td>${esc(line.asset)}</td><td class="num">${esc(grouped(trim(line.at_venue)))}</td></tr>`)
          .join("")}</tbody></table></div>`
      : `<div class="empty">No venue</div>`;
    return;
  }
  const lines = reconciliation.venues || [];
  pill.textContent = reconciliation.venue_status === "matched" ? "matched" : `${reconciliation.venue_breaks} break${reconciliation.venue_breaks === 1 ? "" : "s"}`;
  pill.className = `tag ${reconciliation.venue_status === "matched" ? "ok" : "bad"}`;
  $("venue-balances").innerHTML = lines.length
    ? `<div class="scroll short"><table class="compact"><thead><tr><th scope="col">Venue</th><th scope="col">Asset</th><th scope="col" class="num">Ledger</th><th scope="col" class="num">Reported</th><th scope="col" class="num">Difference</th></tr></thead><tbody>${lines
        .map(
          (line) => `<tr data-venue="${esc(line.venue)}" data-asset="${esc(line.asset)}" data-status="${esc(line.status)}"><td>${esc(line.venue)}</td><td>${esc(line.asset)}</td>
            <td class="num">${esc(grouped(trim(line.ledger)))}</td><td class="num">${esc(grouped(trim(line.at_venue)))}</td>
            <td class="num ${line.status === "break" ? "neg" : "muted"}">${esc(trim(line.difference))}${line.status === "break" ? ` <span class="tag bad">break</span>` : ""}</td></tr>`,
        )
        .join("")}</tbody></table></div>`
    : `<div class="empty">Nothing held at venues yet: POST /v1/admin/venues/{venue}/transfers</div>`;
}

function hedgeTable(hedges, pnl, empty) {
  if (!hedges.length) return `<div class="empty">${esc(empty)}</div>`;
  return `<div class="scroll short"><table class="compact"><thead><tr><th scope="col">Hedge</th><th scope="col">Opened</th><th scope="col">Instrument</th><th scope="col">Side</th><th scope="col">State</th><th scope="col" class="num">Filled / quantity</th><th scope="col" class="num">Avg price</th><th scope="col">Venues</th><th scope="col" class="num">Venue fees</th><th scope="col" class="num">P&amp;L</th></tr></thead><tbody>${hedges
    .map((hedge) => {
      const row = pnl.get(hedge.hedge_id);
      const venues = [...new Set(hedge.children.map((child) => child.venue))].join(", ");
      const children = hedge.children.map((child) => `${child.client_order_id} ${child.venue} ${child.state} ${child.filled}/${child.quantity}`).join("\n");
      const stateClass = hedge.state === "failed" ? "bad" : hedge.state === "filled" ? "ok" : "warn";
      const value = row && row.pnl != null ? row.pnl : null;
      return `<tr data-hedge="${esc(hedge.hedge_id)}" data-state="${esc(hedge.state)}"><td title="${esc(children)}">${esc(hedge.hedge_id)}</td><td>${esc(shortTime(hedge.opened_at))}</td>
        <td>${esc(hedge.instrument)}</td><td>${esc(hedge.side)}</td><td><span class="tag ${stateClass}">${esc(hedge.state.replace("_", " "))}</span></td>
        <td class="num">${esc(hedge.filled)} / ${esc(hedge.quantity)}</td><td class="num">${esc(hedge.average_price ? grouped(hedge.average_price) : "—")}</td>
        <td>${esc(venues)}</td><td class="num">${esc(hedge.fee)}</td>
        <td class="num ${value && value.startsWith("-") ? "neg" : ""}">${esc(value == null ? "—" : grouped(value))}</td></tr>`;
    })
    .join("")}</tbody></table></div>`;
}

function decimals(text) {
  const dot = String(text || "").indexOf(".");
  return dot < 0 ? 0 : text.length - dot - 1;
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
  document.body.classList.toggle("readonly", !canAct());
  $("readonly-pill").hidden = canAct();
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
  every(15_000, refreshSettlementQueues);
  every(30_000, refreshKeys);
  every(15_000, refreshReconciliation);
  every(2_000, refreshHedging);
  every(5_000, async () => refreshHealth());
  verifyAudit();
}

function signOut(message) {
  for (const timer of timers.splice(0)) clearInterval(timer);
  pendingAction = null;
  if ($("action-dialog").open) $("action-dialog").close();
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
$("keys-owner").addEventListener("change", () => refreshKeys().catch(() => {}));
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
