/** Verifying a webhook delivery (issue 17's contract): `OTC-WEBHOOK-SIGNATURE` is the lowercase hex HMAC-SHA256 of
 * `id + "\n" + timestamp + "\n" + raw_body`, keyed with the webhook secret ("whsec_..."). */

import { WebhookVerificationError } from "./errors.js";
import type { WebhookEvent } from "./models.js";
import { hmacSha256Hex } from "./signing.js";

export const TOLERANCE_MS_DEFAULT = 5 * 60 * 1000;

type Headers = Record<string, string | string[] | undefined> | { get(name: string): string | null };

function header(headers: Headers, name: string): string {
  let value: unknown;
  if (typeof (headers as any).get === "function") value = (headers as any).get(name);
  else {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
    value = key === undefined ? undefined : (headers as Record<string, unknown>)[key];
  }
  if (Array.isArray(value)) value = value[0];
  if (typeof value !== "string") throw new WebhookVerificationError(`missing header ${name}`);
  return value;
}

export async function webhookSignature(secret: string, id: string, timestamp: string, body: Uint8Array): Promise<string> {
  const prefix = new TextEncoder().encode(`${id}\n${timestamp}\n`);
  const message = new Uint8Array(prefix.length + body.length);
  message.set(prefix);
  message.set(body, prefix.length);
  return hmacSha256Hex(secret, message);
}

function equalConstantTime(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/** Check a delivery and return its body; throws {@link WebhookVerificationError} otherwise. `body` must be the raw
 * bytes (or text) received. `toleranceMs` bounds the timestamp's distance from now (null turns it off). Dedupe on
 * the returned `id`: it is stable across retries. */
export async function verifyWebhook(secret: string, headers: Headers, body: Uint8Array | string,
  options: { toleranceMs?: number | null; nowMs?: number } = {}): Promise<WebhookEvent> {
  const raw = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const id = header(headers, "OTC-WEBHOOK-ID");
  const timestamp = header(headers, "OTC-WEBHOOK-TIMESTAMP");
  const signature = header(headers, "OTC-WEBHOOK-SIGNATURE").trim().toLowerCase();
  if (!equalConstantTime(await webhookSignature(secret, id, timestamp, raw), signature)) {
    throw new WebhookVerificationError("signature mismatch");
  }
  if (!/^\d+$/.test(timestamp)) throw new WebhookVerificationError("OTC-WEBHOOK-TIMESTAMP is not unix milliseconds");
  const toleranceMs = options.toleranceMs === undefined ? TOLERANCE_MS_DEFAULT : options.toleranceMs;
  if (toleranceMs !== null && Math.abs((options.nowMs ?? Date.now()) - Number(timestamp)) > toleranceMs) {
    throw new WebhookVerificationError("timestamp outside the tolerance window");
  }
  let payload: any;
  try { payload = JSON.parse(new TextDecoder().decode(raw)); } catch { throw new WebhookVerificationError("body is not JSON"); }
  if (!payload || payload.id !== id) throw new WebhookVerificationError("body id differs from OTC-WEBHOOK-ID");
  return payload as WebhookEvent;
}
