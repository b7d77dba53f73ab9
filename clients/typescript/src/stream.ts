/** The WebSocket stream `/v1/stream` with reconnect, resubscribe and resume (see the Python SDK's notes).
 *
 * `orders`, `trades` and `balances` messages carry the journal `seq` of their record. Per channel the stream
 * keeps the last seq it handed over and how many messages of that seq; after a reconnect it subscribes with
 * `resume_from` = seq - 1 and drops the messages of that seq it had already handed over (one record can make
 * several messages of a channel), so nothing is lost or repeated. Without seq (an older desk) it resubscribes
 * plainly and emits `reconnected` with `resumed: false`: re-read state with GET. */

import type { Signer } from "./signing.js";

/** What `new WebSocket(url)` needs: the platform's (browsers, Node 22+) or the `ws` package's on Node 20. */
export type WebSocketConstructor = new (url: string, protocolsOrOptions?: any) => WebSocketLike;

export interface WebSocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: any }) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

export interface StreamOptions {
  url: string;
  signer?: Signer;
  token?: string;
  WebSocket?: WebSocketConstructor;
  reconnect?: boolean;
  /** First reconnect delay (default 200 ms), doubled per failure, at most 30 s, with jitter. */
  backoffMs?: number;
  /** Give up after this many reconnects (default: never). */
  reconnectsMax?: number;
}

export interface StreamEvent {
  /** order, trade, balance, withdrawal, quotes, subscribed, unsubscribed, error, resync_required, or the SDK's
   * own `reconnected`. */
  type: string;
  channel?: string;
  seq?: number;
  /** The message without `type` and `seq` (amounts as decimal strings). */
  data: Record<string, any>;
}

export const CHANNEL_OF_TYPE: Record<string, string> = { order: "orders", trade: "trades", balance: "balances", withdrawal: "balances" };
/** Events waiting for the application. Past it the oldest are not dropped: the stream is closed with an error,
 * since a silent gap would break the no-loss promise. */
const QUEUE_EVENTS_MAX = 10_000;
const SUBSCRIPTIONS_MAX = 20;
const BACKOFF_MS_MAX = 30_000;

interface ChannelState { seq?: number; handedAtSeq: number; toSkip: number }

type Subscription = { op: "subscribe"; channel: string; instrument?: string; levels?: string[] };

export class Stream implements AsyncIterable<StreamEvent> {
  reconnects = 0;
  private readonly options: StreamOptions;
  private readonly WebSocketImpl: WebSocketConstructor;
  private ws?: WebSocketLike;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly channels = new Map<string, ChannelState>();
  private readonly queue: StreamEvent[] = [];
  private waiters: Array<(event: StreamEvent | null) => void> = [];
  private closed = false;
  private failures = 0;
  private callbacks: Array<(event: StreamEvent) => void> = [];
  private error?: Error;

  constructor(options: StreamOptions) {
    const impl = options.WebSocket ?? (globalThis as any).WebSocket;
    if (!impl) throw new TypeError("no WebSocket: pass one (on Node 20: `import WebSocket from \"ws\"`)");
    this.WebSocketImpl = impl;
    this.options = options;
  }

  private async open(): Promise<void> {
    let url = this.options.url.replace(/^http/, "ws") + "/v1/stream";
    let ws: WebSocketLike;
    if (this.options.signer) {
      // Headers on the upgrade request: the `ws` package takes them; browsers cannot (use a session token there).
      ws = new this.WebSocketImpl(url, { headers: await this.options.signer.headers("GET", "/v1/stream", "") });
    } else {
      if (this.options.token) url += `?token=${encodeURIComponent(this.options.token)}`;
      ws = new this.WebSocketImpl(url);
    }
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (event) => reject(new Error(`stream: ${event?.message ?? "connection failed"}`));
      ws.onclose = () => reject(new Error("stream: closed while connecting"));
    });
    this.ws = ws;
    ws.onmessage = (event) => this.dispatch(event.data);
    ws.onerror = () => {};
    ws.onclose = () => { void this.reconnectLoop(); };
  }

  async connect(): Promise<this> {
    await this.open();
    return this;
  }

  close(): void {
    this.closed = true;
    this.ws?.close();
    this.push(null);
  }

  /** Close the socket as a network failure would (tests, drills): the stream reconnects. */
  dropConnection(): void {
    this.ws?.close();
  }

  subscribe(channel: string, options: { instrument?: string; levels?: string[] } = {}): void {
    const key = `${channel}/${options.instrument ?? ""}`;
    if (!this.subscriptions.has(key) && this.subscriptions.size >= SUBSCRIPTIONS_MAX) {
      throw new RangeError(`at most ${SUBSCRIPTIONS_MAX} subscriptions per connection`);
    }
    const message: Subscription = { op: "subscribe", channel };
    if (options.instrument !== undefined) message.instrument = options.instrument;
    if (options.levels !== undefined) message.levels = options.levels;
    this.subscriptions.set(key, message);
    this.send(this.withResume(message));
  }

  unsubscribe(channel: string, instrument?: string): void {
    this.subscriptions.delete(`${channel}/${instrument ?? ""}`);
    this.send(instrument === undefined ? { op: "unsubscribe", channel } : { op: "unsubscribe", channel, instrument });
  }

  /** Call `callback` for every event (in addition to the iterator). */
  on(callback: (event: StreamEvent) => void): void {
    this.callbacks.push(callback);
  }

  /** The next event, waiting at most `timeoutMs`. */
  next(timeoutMs?: number): Promise<StreamEvent> {
    return new Promise((resolve, reject) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`stream: no event within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (event: StreamEvent | null) => {
        if (timer) clearTimeout(timer);
        if (event === null) reject(this.error ?? new Error("stream closed"));
        else resolve(event);
      };
      const queued = this.queue.shift();
      if (queued) waiter(queued);
      else if (this.closed) waiter(null);
      else this.waiters.push(waiter);
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    while (true) {
      try {
        yield await this.next();
      } catch (error) {
        if (this.closed && !this.error) return;
        throw error;
      }
    }
  }

  private send(message: object): void {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(message));
    // Otherwise the subscription is sent when the reconnect resubscribes.
  }

  private withResume(message: Subscription): object {
    const state = this.channels.get(message.channel);
    if (!state || state.seq === undefined) return message;
    state.toSkip = state.handedAtSeq;
    return { ...message, resume_from: state.seq - 1 };
  }

  private async reconnectLoop(): Promise<void> {
    if (this.closed || this.options.reconnect === false) { this.close(); return; }
    while (!this.closed) {
      if (this.options.reconnectsMax !== undefined && this.reconnects >= this.options.reconnectsMax) {
        this.error = new Error("stream: gave up reconnecting");
        this.close();
        return;
      }
      const delay = Math.min(BACKOFF_MS_MAX, (this.options.backoffMs ?? 200) * 2 ** this.failures) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, delay));
      this.failures++;
      this.reconnects++;
      try {
        await this.open();
        break;
      } catch {
        continue;
      }
    }
    if (this.closed) return;
    this.failures = 0;
    const resumed = [...this.subscriptions.values()].filter((s) => s.channel !== "quotes")
      .every((s) => this.channels.get(s.channel)?.seq !== undefined);
    this.push({ type: "reconnected", data: { resumed } });
    for (const message of this.subscriptions.values()) this.send(this.withResume(message));
  }

  private dispatch(raw: unknown): void {
    let message: any;
    try {
      message = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw as ArrayBuffer));
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    const type = String(message.type ?? "");
    const seq = Number.isInteger(message.seq) ? (message.seq as number) : undefined;
    const channel: string | undefined = CHANNEL_OF_TYPE[type] ?? message.channel;
    if (CHANNEL_OF_TYPE[type] && seq !== undefined && channel) {
      let state = this.channels.get(channel);
      if (!state) this.channels.set(channel, (state = { handedAtSeq: 0, toSkip: 0 }));
      if (state.seq !== undefined && seq < state.seq) return; // a replay overlap: handed over before
      if (seq === state.seq) {
        if (state.toSkip > 0) { state.toSkip--; return; }
        state.handedAtSeq++;
      } else {
        state.seq = seq; state.handedAtSeq = 1; state.toSkip = 0;
      }
    } else if (type === "resync_required" && channel) {
      this.channels.delete(channel);
    }
    const { type: _type, seq: _seq, ...data } = message;
    const event: StreamEvent = { type, data: CHANNEL_OF_TYPE[type] ? data : message };
    if (channel !== undefined) event.channel = channel;
    if (seq !== undefined) event.seq = seq;
    this.failures = 0;
    this.push(event);
  }

  private push(event: StreamEvent | null): void {
    if (event) for (const callback of this.callbacks) callback(event);
    const waiter = this.waiters.shift();
    if (waiter) { waiter(event); return; }
    if (event === null) { for (const w of this.waiters.splice(0)) w(null); return; }
    if (this.queue.length >= QUEUE_EVENTS_MAX) {
      this.error = new Error(`stream: more than ${QUEUE_EVENTS_MAX} events not read`);
      this.close();
      return;
    }
    this.queue.push(event);
  }
}
