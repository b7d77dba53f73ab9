// otcd embeddable Web Components: standard custom elements for client-facing apps (plain HTML, React, Vue).
//
//   <script type="module" src="https://desk.example.com/ui/components/otcd-components.js"></script>
//   <otcd-rfq-ticket instrument="BTC-USD"></otcd-rfq-ticket>
//   <script type="module">
//     import { configure } from "https://desk.example.com/ui/components/otcd-components.js";
//     configure({ baseUrl: "https://desk.example.com", token: sessionTokenFromYourBackend });
//   </script>
//
// Components authenticate with a short-lived session token (POST /v1/sessions, minted by the host application's
// backend with its signed API key); they never see an API secret. Amounts are decimal strings from the API, shown
// at each asset's display precision with grouped thousands by string manipulation (./format.js): no money is ever
// parsed into a JavaScript number.
//
// Elements: <otcd-rfq-ticket>, <otcd-price-ladder>, <otcd-trade-history>, <otcd-balances>, <otcd-kyc-status>.
// Events (bubbling, composed): otcd-quote, otcd-order, otcd-error, otcd-session-expired.
// Theme: CSS custom properties --otcd-font, --otcd-bg, --otcd-surface, --otcd-fg, --otcd-muted, --otcd-border,
// --otcd-accent, --otcd-accent-fg, --otcd-buy, --otcd-sell, --otcd-firm, --otcd-indicative, --otcd-radius.

import { formatAmount, formatDecimal, loadAssets } from "./format.js";

const config = { baseUrl: "", token: null };
const listeners = new Set();

/** Sets the desk URL and the session token for every component on the page (a new token re-connects them). */
export function configure(options = {}) {
  if (options.baseUrl !== undefined) config.baseUrl = String(options.baseUrl).replace(/\/$/, "");
  if (options.token !== undefined) config.token = options.token;
  if (sharedStream) {
    sharedStream.close();
    sharedStream = null;
  }
  for (const listener of listeners) listener();
}

/** The current configuration (read-only copy). */
export function configuration() {
  return { ...config };
}

export class OtcdError extends Error {
  constructor(problem, status) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.code = problem.code || "network_error";
    this.status = status;
    this.problem = problem;
  }
}

/** A request to the desk with the session token; resolves to the JSON body, rejects with an OtcdError. */
export async function api(method, path, body) {
  if (!config.token) throw new OtcdError({ code: "unauthenticated", detail: "no session token configured" }, 401);
  const headers = { Authorization: `Bearer ${config.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(config.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new OtcdError({ code: "network_error", detail: `the desk is unreachable (${error.message})` }, 0);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const problem = json || { detail: text || response.statusText };
    if (response.status === 401) {
      document.dispatchEvent(new CustomEvent("otcd-session-expired", { detail: problem }));
    }
    throw new OtcdError(problem, response.status);
  }
  return json;
}

// ---------------------------------------------------------------------------------------------------------------
// One WebSocket per page, shared by every component, with subscriptions re-sent after a reconnect.

let sharedStream = null;

class SharedStream {
  constructor() {
    this.handlers = new Map(); // subscription key -> Set of handlers
    this.messages = new Map(); // subscription key -> subscribe message
    this.retry = 500;
    this.closed = false;
    this.open();
  }

  url() {
    const base = config.baseUrl || window.location.origin;
    return `${base.replace(/^http/, "ws")}/v1/stream?token=${encodeURIComponent(config.token)}`;
  }

  open() {
    if (this.closed || !config.token) return;
    this.socket = new WebSocket(this.url());
    this.socket.addEventListener("open", () => {
      this.retry = 500;
      for (const message of this.messages.values()) this.socket.send(JSON.stringify(message));
    });
    this.socket.addEventListener("message", (event) => this.dispatch(event.data));
    this.socket.addEventListener("close", () => {
      if (this.closed) return;
      setTimeout(() => this.open(), this.retry);
      this.retry = Math.min(this.retry * 2, 10_000);
    });
  }

  dispatch(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const key =
      message.type === "quotes"
        ? `quotes:${message.instrument}`
        : { order: "orders", trade: "trades", balance: "balances" }[message.type];
    for (const handler of this.handlers.get(key) || []) handler(message);
  }

  subscribe(message, handler) {
    const key = message.channel === "quotes" ? `quotes:${message.instrument}` : message.channel;
    if (!this.handlers.has(key)) this.handlers.set(key, new Set());
    this.handlers.get(key).add(handler);
    this.messages.set(key, { op: "subscribe", ...message });
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ op: "subscribe", ...message }));
    }
    return () => {
      const set = this.handlers.get(key);
      set.delete(handler);
      if (set.size === 0) {
        this.handlers.delete(key);
        this.messages.delete(key);
        if (this.socket && this.socket.readyState === WebSocket.OPEN) {
          this.socket.send(JSON.stringify({ op: "unsubscribe", channel: message.channel, instrument: message.instrument }));
        }
      }
    };
  }

  close() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }
}

/** Subscribes to a stream channel; returns the function that unsubscribes. */
export function subscribe(message, handler) {
  if (!config.token) return () => {};
  if (!sharedStream) sharedStream = new SharedStream();
  return sharedStream.subscribe(message, handler);
}

// ---------------------------------------------------------------------------------------------------------------
// Shared styles (a constructable stylesheet: no inline <style>, so the strictest CSP holds).

const BASE_CSS = `
:host {
  --_font: var(--otcd-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  --_bg: var(--otcd-bg, #0f1620);
  --_surface: var(--otcd-surface, #161f2c);
  --_fg: var(--otcd-fg, #e6edf5);
  --_muted: var(--otcd-muted, #8a99ad);
  --_border: var(--otcd-border, #263243);
  --_accent: var(--otcd-accent, #3d8bfd);
  --_accent-fg: var(--otcd-accent-fg, #ffffff);
  --_buy: var(--otcd-buy, #1fb57a);
  --_sell: var(--otcd-sell, #ef5a5a);
  --_firm: var(--otcd-firm, #1fb57a);
  --_indicative: var(--otcd-indicative, #e0a526);
  --_radius: var(--otcd-radius, 8px);
  display: block;
  container-type: inline-size;
  min-width: 0;
  max-width: 100%;
  font-family: var(--_font);
  color: var(--_fg);
  background: var(--_surface);
  border: 1px solid var(--_border);
  border-radius: var(--_radius);
  padding: 16px;
  font-size: 14px;
  line-height: 1.4;
  box-sizing: border-box;
}
* { box-sizing: border-box; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--_muted); margin: 0 0 12px; font-weight: 600; display: flex; align-items: center; gap: 8px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { text-align: left; color: var(--_muted); font-weight: 500; font-size: 12px; padding: 6px 8px; border-bottom: 1px solid var(--_border); }
td { padding: 7px 8px; border-bottom: 1px solid var(--_border); }
tr:last-child td { border-bottom: none; }
.num { text-align: right; white-space: nowrap; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.buy { color: var(--_buy); }
.sell { color: var(--_sell); }
.muted { color: var(--_muted); }
.empty { color: var(--_muted); padding: 12px 0; text-align: center; }
.badge { display: inline-block; font-size: 11px; font-weight: 700; letter-spacing: .05em; padding: 2px 8px; border-radius: 999px; border: 1px solid currentColor; }
.badge.firm { color: var(--_firm); }
.badge.indicative { color: var(--_indicative); border-style: dashed; }
.error { color: var(--_sell); min-height: 1.4em; margin: 8px 0 0; }
.status { min-height: 1.4em; margin: 8px 0 0; color: var(--_muted); }
label { display: block; font-size: 12px; color: var(--_muted); margin-bottom: 4px; }
input, select { width: 100%; font: inherit; color: var(--_fg); background: var(--_bg); border: 1px solid var(--_border); border-radius: calc(var(--_radius) - 2px); padding: 8px 10px; }
input:focus-visible, select:focus-visible, button:focus-visible { outline: 2px solid var(--_accent); outline-offset: 1px; }
button { font: inherit; font-weight: 600; cursor: pointer; border-radius: calc(var(--_radius) - 2px); padding: 9px 14px; border: 1px solid var(--_border); background: var(--_bg); color: var(--_fg); }
button.primary { background: var(--_accent); color: var(--_accent-fg); border-color: var(--_accent); }
button:disabled { opacity: .5; cursor: not-allowed; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

const sheets = new Map();
function sheet(css) {
  if (!sheets.has(css)) {
    const stylesheet = new CSSStyleSheet();
    stylesheet.replaceSync(css);
    sheets.set(css, stylesheet);
  }
  return sheets.get(css);
}

/** Escapes text for HTML. */
function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function timeText(rfc3339) {
  if (!rfc3339) return "";
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleTimeString([], { hour12: false });
}

let uniqueId = 0;

class OtcdElement extends HTMLElement {
  static css = "";

  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this.shadowRoot.adoptedStyleSheets = [sheet(BASE_CSS), sheet(this.constructor.css)];
    this.uid = `otcd${++uniqueId}`;
    this.cleanups = [];
    this.reconfigure = () => {
      if (this.isConnected) {
        this.stop();
        this.start();
      }
    };
  }

  connectedCallback() {
    const token = this.getAttribute("token");
    const baseUrl = this.getAttribute("base-url");
    if ((token && token !== config.token) || (baseUrl !== null && baseUrl !== config.baseUrl)) {
      configure({ token: token || config.token, baseUrl: baseUrl ?? config.baseUrl });
    }
    listeners.add(this.reconfigure);
    this.start();
    // Display precisions per asset; once known, render again with them.
    loadAssets(config.baseUrl).then(() => this.isConnected && this.assetsLoaded());
  }

  /** Called once the catalog's display precisions are known. */
  assetsLoaded() {}

  disconnectedCallback() {
    listeners.delete(this.reconfigure);
    this.stop();
  }

  stop() {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }

  every(milliseconds, action) {
    const timer = setInterval(action, milliseconds);
    this.cleanups.push(() => clearInterval(timer));
  }

  on(target, type, handler) {
    target.addEventListener(type, handler);
    this.cleanups.push(() => target.removeEventListener(type, handler));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  start() {}
}

// ---------------------------------------------------------------------------------------------------------------
// <otcd-rfq-ticket instrument="BTC-USD" side="buy" quantity="1">

const TICKET_CSS = `
form { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.full { grid-column: 1 / -1; }
fieldset { border: none; padding: 0; margin: 0; }
legend { font-size: 12px; color: var(--_muted); margin-bottom: 4px; padding: 0; }
.tabs { display: flex; gap: 4px; background: var(--_bg); border: 1px solid var(--_border); border-radius: var(--_radius); padding: 3px; }
.tabs label, .sides label { flex: 1; margin: 0; text-align: center; padding: 6px 0; border-radius: calc(var(--_radius) - 3px); cursor: pointer; color: var(--_muted); font-size: 13px; font-weight: 600; position: relative; }
.tabs input, .sides input { position: absolute; opacity: 0; width: 1px; height: 1px; }
.tabs label:has(input:checked) { background: var(--_surface); color: var(--_fg); }
.tabs label:has(input:focus-visible), .sides label:has(input:focus-visible) { outline: 2px solid var(--_accent); }
.sides { display: flex; gap: 6px; }
.sides label { border: 1px solid var(--_border); }
.sides label.b:has(input:checked) { background: var(--_buy); color: #fff; border-color: var(--_buy); }
.sides label.s:has(input:checked) { background: var(--_sell); color: #fff; border-color: var(--_sell); }
[hidden] { display: none !important; }
.quote { margin-top: 14px; border: 1px solid var(--_border); border-radius: var(--_radius); padding: 14px; background: var(--_bg); }
.quote .price { font-size: 26px; font-weight: 700; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.quote dl { display: grid; grid-template-columns: auto 1fr; gap: 4px 12px; margin: 10px 0; font-size: 13px; }
.quote dt { color: var(--_muted); }
.quote dd { margin: 0; text-align: right; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.countdown { height: 4px; background: var(--_border); border-radius: 2px; overflow: hidden; margin: 8px 0 4px; }
.countdown > div { height: 100%; background: var(--_firm); width: 100%; transition: width .2s linear; }
.countdown.late > div { background: var(--_sell); }
.actions { display: flex; gap: 8px; margin-top: 10px; }
.actions button { flex: 1; }
.fill { margin-top: 14px; border-left: 3px solid var(--_buy); padding: 8px 12px; background: var(--_bg); border-radius: 4px; }
.quote dd.total { font-weight: 700; }
@container (max-width: 380px) {
  form { grid-template-columns: 1fr; }
  .quote .price { font-size: 21px; }
}
`;

class OtcdRfqTicket extends OtcdElement {
  static css = TICKET_CSS;

  start() {
    const id = this.uid;
    const instrument = this.getAttribute("instrument") || "BTC-USD";
    const side = this.getAttribute("side") === "sell" ? "sell" : "buy";
    const quantity = this.getAttribute("quantity") || "";
    this.shadowRoot.innerHTML = `
      <h2 id="${id}-title">Trade</h2>
      <form novalidate aria-labelledby="${id}-title">
        <fieldset class="full">
          <legend>Order type</legend>
          <div class="tabs">
            <label><input type="radio" name="type" value="rfq" checked>Request quote</label>
            <label><input type="radio" name="type" value="market">Market</label>
            <label><input type="radio" name="type" value="limit">Limit</label>
          </div>
        </fieldset>
        <div>
          <label for="${id}-instrument">Instrument</label>
          <select id="${id}-instrument" name="instrument"><option>${esc(instrument)}</option></select>
        </div>
        <fieldset>
          <legend>Side</legend>
          <div class="sides">
            <label class="b"><input type="radio" name="side" value="buy" ${side === "buy" ? "checked" : ""}>Buy</label>
            <label class="s"><input type="radio" name="side" value="sell" ${side === "sell" ? "checked" : ""}>Sell</label>
          </div>
        </fieldset>
        <div class="full">
          <label for="${id}-quantity">Quantity (<span data-base>base</span>)</label>
          <input id="${id}-quantity" name="quantity" inputmode="decimal" autocomplete="off" required value="${esc(quantity)}" aria-describedby="${id}-qhint">
          <span id="${id}-qhint" class="sr-only">A decimal amount of the base asset</span>
        </div>
        <div data-for="market">
          <label for="${id}-reference">Reference price</label>
          <input id="${id}-reference" name="reference_price" inputmode="decimal" autocomplete="off" placeholder="optional">
        </div>
        <div data-for="market">
          <label for="${id}-slippage">Max slippage (bps)</label>
          <input id="${id}-slippage" name="slippage_bps" inputmode="decimal" autocomplete="off" value="50">
        </div>
        <div data-for="limit">
          <label for="${id}-limit">Limit price</label>
          <input id="${id}-limit" name="limit_price" inputmode="decimal" autocomplete="off">
        </div>
        <div data-for="limit">
          <label for="${id}-tif">Time in force</label>
          <select id="${id}-tif" name="time_in_force">
            <option value="ioc">IOC: fill now, cancel the rest</option>
            <option value="fok">FOK: fill all now or nothing</option>
            <option value="gtc">GTC: rest until filled</option>
            <option value="gtd">GTD: rest until a time</option>
          </select>
        </div>
        <div data-for="gtd" class="full">
          <label for="${id}-expire">Expire at</label>
          <input id="${id}-expire" name="expire_at" type="datetime-local">
        </div>
        <button class="primary full" type="submit" data-submit>Request quote</button>
      </form>
      <p class="error" role="alert" data-error></p>
      <section class="quote" data-quote hidden aria-labelledby="${id}-qtitle">
        <div class="muted" id="${id}-qtitle">Firm quote <span class="badge firm">FIRM</span></div>
        <div class="price" data-price></div>
        <dl>
          <dt>Side</dt><dd data-qside></dd>
          <dt>Quantity</dt><dd data-qqty></dd>
          <dt>Price</dt><dd data-qprice></dd>
          <dt>Total</dt><dd data-qtotal></dd>
          <dt>Fee</dt><dd data-qfee></dd>
          <dt data-qnetlabel>Net</dt><dd class="total" data-qnet></dd>
          <dt>Quote id</dt><dd data-qid></dd>
        </dl>
        <div class="countdown" role="progressbar" aria-label="Time left on the quote" aria-valuemin="0" aria-valuemax="100" data-bar><div></div></div>
        <div aria-live="polite" data-countdown></div>
        <div class="actions">
          <button class="primary" type="button" data-accept>Accept</button>
          <button type="button" data-reject>Cancel</button>
        </div>
      </section>
      <section class="fill" data-fill hidden aria-live="polite"></section>
      <p class="status" role="status" aria-live="polite" data-status></p>`;
    const $ = (selector) => this.shadowRoot.querySelector(selector);
    this.form = $("form");
    this.on(this.form, "submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.on(this.form, "change", () => this.layout());
    this.on($("[data-accept]"), "click", () => this.accept());
    this.on($("[data-reject]"), "click", () => this.clearQuote("Quote cancelled."));
    this.cleanups.push(() => clearInterval(this.timer));
    this.layout();
    this.loadInstruments(instrument);
  }

  async loadInstruments(selected) {
    try {
      const response = await fetch(`${config.baseUrl}/v1/instruments`);
      const { items } = await response.json();
      this.instruments = new Map(items.map((item) => [item.symbol, item]));
      const select = this.shadowRoot.querySelector("select[name=instrument]");
      select.innerHTML = items
        .map((item) => `<option value="${esc(item.symbol)}" ${item.symbol === selected ? "selected" : ""}>${esc(item.symbol)}</option>`)
        .join("");
      this.layout();
    } catch {
      // The instrument given stays the only choice.
    }
  }

  values() {
    return Object.fromEntries(new FormData(this.form).entries());
  }

  layout() {
    const values = this.values();
    for (const element of this.shadowRoot.querySelectorAll("[data-for]")) {
      const wanted = element.dataset.for;
      element.hidden = wanted === "gtd" ? !(values.type === "limit" && values.time_in_force === "gtd") : wanted !== values.type;
    }
    const labels = { rfq: "Request quote", market: "Place market order", limit: "Place limit order" };
    this.shadowRoot.querySelector("[data-submit]").textContent = labels[values.type];
    const meta = this.instruments && this.instruments.get(values.instrument);
    this.shadowRoot.querySelector("[data-base]").textContent = meta ? meta.base : (values.instrument || "").split("-")[0];
  }

  showError(error) {
    this.shadowRoot.querySelector("[data-error]").textContent = error ? `${error.message}${error.code ? ` (${error.code})` : ""}` : "";
    if (error) this.emit("otcd-error", { code: error.code, detail: error.message });
  }

  status(text) {
    this.shadowRoot.querySelector("[data-status]").textContent = text;
  }

  busy(flag) {
    for (const button of this.shadowRoot.querySelectorAll("button")) button.disabled = flag;
  }

  async submit() {
    const values = this.values();
    this.showError(null);
    this.shadowRoot.querySelector("[data-fill]").hidden = true;
    if (!/^\d+(\.\d+)?$/.test(values.quantity || "")) {
      this.showError({ message: "Enter a quantity, such as 0.5", code: "invalid_request" });
      this.shadowRoot.querySelector("input[name=quantity]").focus();
      return;
    }
    this.busy(true);
    try {
      if (values.type === "rfq") {
        this.status("Requesting a firm quote…");
        const quote = await api("POST", "/v1/rfq", { instrument: values.instrument, side: values.side, quantity: values.quantity });
        this.showQuote(quote);
        this.emit("otcd-quote", quote);
      } else {
        const order = { client_order_id: newClientId(), type: values.type, instrument: values.instrument, side: values.side, quantity: values.quantity };
        if (values.type === "market") {
          if (values.reference_price) {
            order.reference_price = values.reference_price;
            order.slippage_bps = values.slippage_bps || "0";
          }
        } else {
          order.limit_price = values.limit_price;
          order.time_in_force = values.time_in_force;
          if (values.time_in_force === "gtd" && values.expire_at) order.expire_at = new Date(values.expire_at).toISOString();
        }
        this.status("Placing the order…");
        this.showFill(await api("POST", "/v1/orders", order));
      }
    } catch (error) {
      this.status("");
      this.showError(error);
    } finally {
      this.busy(false);
      if (this.quote && values.type === "rfq") this.shadowRoot.querySelector("[data-accept]").focus();
    }
  }

  showQuote(quote) {
    const $ = (selector) => this.shadowRoot.querySelector(selector);
    this.quote = quote;
    $("[data-quote]").hidden = false;
    this.renderQuote();
    $("[data-qid]").textContent = quote.quote_id;
    const created = Date.parse(quote.created_at);
    const until = Date.parse(quote.valid_until);
    const total = Math.max(until - created, 1);
    let lastAnnounced = null;
    const tick = () => {
      const left = Math.max(until - Date.now(), 0);
      const seconds = Math.ceil(left / 1000);
      const percent = Math.round((left / total) * 100);
      $("[data-bar] > div").style.width = `${percent}%`;
      $("[data-bar]").setAttribute("aria-valuenow", String(percent));
      $("[data-bar]").classList.toggle("late", seconds <= 2);
      if (seconds !== lastAnnounced) {
        lastAnnounced = seconds;
        $("[data-countdown]").textContent = left > 0 ? `Valid for ${seconds} s` : "Quote expired: request a new one";
      }
      $("[data-accept]").disabled = left <= 0;
      if (left <= 0) clearInterval(this.timer);
    };
    clearInterval(this.timer);
    this.timer = setInterval(tick, 200);
    tick();
    this.status("Quote received.");
  }

  /** The quote's figures: what the client gets and gives, at the assets' display precisions. */
  renderQuote() {
    const quote = this.quote;
    if (!quote) return;
    const $ = (selector) => this.shadowRoot.querySelector(selector);
    const [base, quoteAsset = ""] = quote.instrument.split("-");
    const asset = quote.quote_asset || quoteAsset;
    const price = `${formatDecimal(quote.price)} ${quoteAsset}`;
    $("[data-price]").textContent = price;
    $("[data-qside]").textContent = `${quote.side === "buy" ? "You buy" : "You sell"} ${base}`;
    $("[data-qside]").className = quote.side;
    $("[data-qqty]").textContent = `${formatAmount(quote.quantity, base)} ${base}`;
    $("[data-qprice]").textContent = `${price} per ${base}`;
    const money = (text) => (text === undefined ? "—" : `${formatAmount(text, asset)} ${asset}`);
    $("[data-qtotal]").textContent = money(quote.quote_amount);
    $("[data-qfee]").textContent = `${money(quote.fee)}${quote.fee_bps && quote.fee_bps !== "0" ? ` (${quote.fee_bps} bps)` : ""}`;
    $("[data-qnetlabel]").textContent = quote.side === "buy" ? "You pay" : "You receive";
    $("[data-qnet]").textContent = money(quote.net);
  }

  assetsLoaded() {
    this.renderQuote();
  }

  clearQuote(text) {
    clearInterval(this.timer);
    this.quote = null;
    this.shadowRoot.querySelector("[data-quote]").hidden = true;
    this.status(text);
  }

  async accept() {
    if (!this.quote) return;
    const quote = this.quote;
    this.busy(true);
    this.showError(null);
    try {
      const order = await api("POST", "/v1/orders", { client_order_id: newClientId(), type: "quote", quote_id: quote.quote_id });
      this.clearQuote("");
      this.showFill(order);
      this.shadowRoot.querySelector("input[name=quantity]").focus();
    } catch (error) {
      this.showError(error);
    } finally {
      this.busy(false);
    }
  }

  showFill(order) {
    const fill = this.shadowRoot.querySelector("[data-fill]");
    fill.hidden = false;
    const filled = order.status === "filled" || order.status === "partially_filled";
    const [base, quoteAsset = ""] = (order.instrument || "").split("-");
    fill.textContent = filled
      ? `Order ${order.order_id} ${order.status.replace("_", " ")}: ${order.side} ${formatAmount(order.filled_quantity, base)} ${base} at ${formatDecimal(order.average_price)} ${quoteAsset}`
      : `Order ${order.order_id} ${order.status.replace("_", " ")}`;
    this.status(filled ? "Trade done." : `Order ${order.status}.`);
    this.emit("otcd-order", order);
  }
}

function newClientId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// ---------------------------------------------------------------------------------------------------------------
// <otcd-price-ladder instrument="BTC-USD" levels="0.5,1,5">

const LADDER_CSS = `
.head { display: flex; align-items: baseline; justify-content: space-between; gap: 8px; margin-bottom: 8px; }
.head h2 { margin: 0; }
.asof { font-size: 12px; color: var(--_muted); }
td.bid { color: var(--_buy); font-weight: 600; }
td.ask { color: var(--_sell); font-weight: 600; }
:host([data-kind=indicative]) td.bid, :host([data-kind=indicative]) td.ask { font-weight: 400; font-style: italic; opacity: .85; }
.flash { animation: flash .6s ease-out; }
@keyframes flash { from { background: color-mix(in srgb, var(--_accent) 35%, transparent); } to { background: transparent; } }
.note { font-size: 12px; color: var(--_muted); margin: 8px 0 0; }
@container (max-width: 400px) {
  .head { flex-wrap: wrap; }
  th, td { padding: 6px 4px; }
  td.num { font-size: 13px; }
}
`;

class OtcdPriceLadder extends OtcdElement {
  static css = LADDER_CSS;

  static get observedAttributes() {
    return ["instrument", "levels"];
  }

  attributeChangedCallback() {
    if (this.isConnected && this.shadowRoot.innerHTML) this.reconfigure();
  }

  start() {
    const id = this.uid;
    this.instrument = this.getAttribute("instrument") || "BTC-USD";
    const levels = (this.getAttribute("levels") || "0.5,1,5").split(",").map((level) => level.trim()).filter(Boolean);
    this.shadowRoot.innerHTML = `
      <div class="head">
        <h2 id="${id}-title">${esc(this.instrument)} <span class="badge indicative" data-kind>WAITING</span></h2>
        <span class="asof" data-asof></span>
      </div>
      <table aria-labelledby="${id}-title">
        <thead><tr><th scope="col">Quantity (${esc(this.instrument.split("-")[0])})</th><th scope="col" class="num">Bid (you sell)</th><th scope="col" class="num">Ask (you buy)</th></tr></thead>
        <tbody data-rows><tr><td colspan="3" class="empty">Waiting for prices…</td></tr></tbody>
      </table>
      <p class="note" data-note></p>
      <p class="sr-only" aria-live="polite" data-live></p>`;
    this.previous = new Map();
    this.cleanups.push(subscribe({ channel: "quotes", instrument: this.instrument, levels }, (message) => this.render(message)));
  }

  render(message) {
    const $ = (selector) => this.shadowRoot.querySelector(selector);
    const firm = message.firm === true;
    this.dataset.kind = firm ? "firm" : "indicative";
    const badge = $("[data-kind]");
    badge.className = `badge ${firm ? "firm" : "indicative"}`;
    badge.textContent = firm ? "FIRM" : "INDICATIVE";
    badge.title = firm ? "Executable prices: each level is a firm quote" : "Indicative only: not executable";
    $("[data-asof]").textContent = message.as_of ? `as of ${timeText(message.as_of)}` : "";
    $("[data-note]").textContent = firm
      ? "Firm: each level is executable until its quote expires."
      : "Indicative: for information, not executable. Request a quote to trade.";
    const rows = message.levels.map((level) => {
      const key = level.quantity;
      const before = this.previous.get(key);
      const changed = before && (before.bid !== level.bid || before.ask !== level.ask);
      this.previous.set(key, level);
      const flash = changed ? " flash" : "";
      const base = this.instrument.split("-")[0];
      return `<tr><td class="num">${esc(formatAmount(level.quantity, base))}</td><td class="num bid${flash}" data-bid title="${esc(level.bid ?? "")}">${esc(formatDecimal(level.bid))}</td><td class="num ask${flash}" data-ask title="${esc(level.ask ?? "")}">${esc(formatDecimal(level.ask))}</td></tr>`;
    });
    $("[data-rows]").innerHTML = rows.join("") || `<tr><td colspan="3" class="empty">No prices</td></tr>`;
    const top = message.levels[0];
    if (top) $("[data-live]").textContent = `${this.instrument} ${firm ? "firm" : "indicative"} bid ${top.bid} ask ${top.ask}`;
    this.emit("otcd-ladder", message);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// <otcd-trade-history limit="20">

class OtcdTradeHistory extends OtcdElement {
  static css = `caption { text-align: left; } .wrap { max-height: var(--otcd-history-height, 360px); overflow: auto; }
@container (max-width: 440px) { .wide-only { display: none; } td, th { padding: 6px 4px; font-size: 13px; } }`;

  start() {
    const id = this.uid;
    this.shadowRoot.innerHTML = `
      <h2 id="${id}-title">Trade history</h2>
      <div class="wrap" tabindex="0" aria-labelledby="${id}-title">
        <table aria-labelledby="${id}-title">
          <thead><tr><th scope="col" class="wide-only">Time</th><th scope="col">Instrument</th><th scope="col">Side</th><th scope="col" class="num">Quantity</th><th scope="col" class="num wide-only">Price</th><th scope="col" class="num">Amount</th></tr></thead>
          <tbody data-rows><tr><td colspan="6" class="empty">Loading…</td></tr></tbody>
        </table>
      </div>
      <p class="error" role="alert" data-error></p>`;
    const refresh = () => this.refresh();
    refresh();
    this.assetsLoaded = refresh;
    this.cleanups.push(subscribe({ channel: "trades" }, refresh));
    this.on(document, "otcd-order", refresh);
    this.every(15_000, refresh);
  }

  async refresh() {
    const limit = Number.parseInt(this.getAttribute("limit") || "20", 10);
    try {
      const { items } = await api("GET", `/v1/trades?limit=${limit}`);
      this.shadowRoot.querySelector("[data-error]").textContent = "";
      this.shadowRoot.querySelector("[data-rows]").innerHTML = items.length
        ? items
            .map(
              (trade) => `<tr data-trade="${esc(trade.trade_id)}"><td class="wide-only">${esc(timeText(trade.executed_at))}</td><td>${esc(trade.instrument)}</td>
                <td class="${trade.side === "buy" ? "buy" : "sell"}">${esc(trade.side)}</td><td class="num">${esc(formatAmount(trade.quantity, trade.instrument.split("-")[0]))}</td>
                <td class="num wide-only">${esc(formatDecimal(trade.price))}</td><td class="num" title="${esc(trade.quote_amount)} ${esc(trade.quote_asset)}">${esc(formatAmount(trade.quote_amount, trade.quote_asset))} ${esc(trade.quote_asset)}</td></tr>`,
            )
            .join("")
        : `<tr><td colspan="6" class="empty">No trades yet</td></tr>`;
    } catch (error) {
      this.shadowRoot.querySelector("[data-error]").textContent = error.message;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// <otcd-balances>

class OtcdBalances extends OtcdElement {
  static css = ``;

  start() {
    const id = this.uid;
    this.shadowRoot.innerHTML = `
      <h2 id="${id}-title">Balances</h2>
      <table aria-labelledby="${id}-title">
        <thead><tr><th scope="col">Asset</th><th scope="col" class="num">Available</th><th scope="col" class="num">Reserved</th></tr></thead>
        <tbody data-rows><tr><td colspan="3" class="empty">Loading…</td></tr></tbody>
      </table>
      <p class="error" role="alert" data-error></p>`;
    const refresh = () => this.refresh();
    refresh();
    this.assetsLoaded = refresh;
    this.cleanups.push(subscribe({ channel: "balances" }, refresh));
    this.on(document, "otcd-order", refresh);
    this.every(30_000, refresh);
  }

  async refresh() {
    try {
      const { items } = await api("GET", "/v1/balances");
      this.shadowRoot.querySelector("[data-error]").textContent = "";
      this.shadowRoot.querySelector("[data-rows]").innerHTML = items.length
        ? items
            .map((line) => `<tr><td>${esc(line.asset)}</td><td class="num" data-available="${esc(line.asset)}" data-exact="${esc(line.available)}" title="${esc(line.available)}">${esc(formatAmount(line.available, line.asset))}</td><td class="num muted" title="${esc(line.reserved)}">${esc(formatAmount(line.reserved, line.asset))}</td></tr>`)
            .join("")
        : `<tr><td colspan="3" class="empty">No balances: fund your account to trade</td></tr>`;
    } catch (error) {
      this.shadowRoot.querySelector("[data-error]").textContent = error.message;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// <otcd-kyc-status>: where the client stands, what they must do before trading, and the disclosures.

const KYC_CSS = `
ol { list-style: none; padding: 0; margin: 0 0 12px; display: grid; gap: 8px; }
li { display: flex; gap: 10px; align-items: flex-start; }
.mark { flex: none; width: 20px; height: 20px; border-radius: 50%; display: grid; place-items: center; font-size: 12px; font-weight: 700; border: 1px solid var(--_border); color: var(--_muted); }
li.done .mark { background: var(--_firm); border-color: var(--_firm); color: #fff; }
li.blocked .mark { background: var(--_sell); border-color: var(--_sell); color: #fff; }
li.waiting .mark { border-color: var(--_indicative); color: var(--_indicative); }
.title { font-weight: 600; }
.detail { color: var(--_muted); font-size: 13px; }
details { border-top: 1px solid var(--_border); padding-top: 10px; font-size: 13px; color: var(--_muted); }
summary { cursor: pointer; color: var(--_fg); font-weight: 600; }
.ack { display: flex; gap: 8px; align-items: center; margin-top: 10px; color: var(--_fg); font-size: 13px; }
.ack input { width: auto; }
`;

class OtcdKycStatus extends OtcdElement {
  static css = KYC_CSS;

  start() {
    const id = this.uid;
    this.shadowRoot.innerHTML = `
      <h2 id="${id}-title">Before you trade</h2>
      <ol aria-labelledby="${id}-title" data-steps><li class="waiting"><span class="mark" aria-hidden="true">…</span><span>Checking your account…</span></li></ol>
      <p class="sr-only" role="status" aria-live="polite" data-live></p>
      <details>
        <summary>Disclosures</summary>
        <slot name="disclosures">
          <p>Firm quotes are executable only by you, once, until the time shown; indicative prices are for information and are not offers.</p>
          <p>Trades settle on your account at once. Prices include the desk's spread. Digital assets are volatile and you may lose the amount you trade.</p>
          <p>The desk screens clients and transfers against sanctions lists and may refuse or hold activity as the law requires.</p>
        </slot>
        <label class="ack"><input type="checkbox" data-ack id="${id}-ack"> I have read the disclosures</label>
      </details>
      <p class="error" role="alert" data-error></p>`;
    this.acknowledged = sessionStorage.getItem("otcd-disclosures") === "1";
    const checkbox = this.shadowRoot.querySelector("[data-ack]");
    checkbox.checked = this.acknowledged;
    this.on(checkbox, "change", () => {
      this.acknowledged = checkbox.checked;
      sessionStorage.setItem("otcd-disclosures", checkbox.checked ? "1" : "0");
      this.render();
    });
    this.refresh();
    this.every(60_000, () => this.refresh());
  }

  async refresh() {
    try {
      const [account, balances] = await Promise.all([api("GET", "/v1/account"), api("GET", "/v1/balances")]);
      this.account = account;
      this.funded = account.settlement === "credit" || balances.items.some((line) => /[1-9]/.test(line.available));
      this.shadowRoot.querySelector("[data-error]").textContent = "";
      this.render();
    } catch (error) {
      this.shadowRoot.querySelector("[data-error]").textContent = error.message;
    }
  }

  render() {
    const account = this.account;
    if (!account) return;
    const kyc = {
      approved: ["done", "Identity verified", account.kyc_expires_at ? `Valid until ${new Date(account.kyc_expires_at).toLocaleDateString()}` : "Your KYC review is approved."],
      pending: ["waiting", "Identity verification in progress", "You can see indicative prices; trading opens once the desk approves your KYC review."],
      rejected: ["blocked", "Identity verification declined", "Trading is not available. Contact your account manager."],
    }[account.kyc_status] || ["waiting", "Identity verification", account.kyc_status];
    const steps = [
      kyc,
      this.funded
        ? ["done", "Account funded", account.settlement === "credit" ? "You trade on credit within your limit." : "You have funds available."]
        : ["waiting", "Fund your account", "Deposit funds to trade (prefunded settlement)."],
      this.acknowledged ? ["done", "Disclosures read", "Thank you."] : ["waiting", "Read the disclosures", "Open the disclosures below and confirm."],
    ];
    const marks = { done: "✓", waiting: "!", blocked: "✕" };
    this.shadowRoot.querySelector("[data-steps]").innerHTML = steps
      .map(([state, title, detail]) => `<li class="${state}"><span class="mark" aria-hidden="true">${marks[state]}</span><span><span class="title">${esc(title)}</span><br><span class="detail">${esc(detail)}</span></span></li>`)
      .join("");
    const ready = steps.every(([state]) => state === "done");
    this.shadowRoot.querySelector("[data-live]").textContent = ready ? "You are ready to trade." : `KYC status: ${account.kyc_status}.`;
    this.dataset.ready = String(ready);
  }
}

const elements = {
  "otcd-rfq-ticket": OtcdRfqTicket,
  "otcd-price-ladder": OtcdPriceLadder,
  "otcd-trade-history": OtcdTradeHistory,
  "otcd-balances": OtcdBalances,
  "otcd-kyc-status": OtcdKycStatus,
};
for (const [name, element] of Object.entries(elements)) {
  if (!customElements.get(name)) customElements.define(name, element);
}

export { OtcdRfqTicket, OtcdPriceLadder, OtcdTradeHistory, OtcdBalances, OtcdKycStatus };
