/** Request signing (docs/api.md, "Authentication"): HMAC-SHA256 (lowercase hex) or Ed25519 (standard base64)
 * over `timestamp\nMETHOD\npath_with_query\nbody\nnonce`, with Web Crypto (Node 20+ and browsers). The SDK always
 * sends `OTC-NONCE`, so identical requests signed in the same millisecond are each accepted once. */

const encoder = new TextEncoder();

export function signingPayload(timestampMs: number, method: string, pathWithQuery: string, body: string,
  nonce?: string): string {
  const text = `${timestampMs}\n${method.toUpperCase()}\n${pathWithQuery}\n${body}`;
  return nonce === undefined ? text : `${text}\n${nonce}`;
}

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function toBase64(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let text = "";
  for (const byte of view) text += String.fromCharCode(byte);
  return btoa(text);
}

export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** 128 random bits as 32 hex characters (the desk takes 1-64 of [A-Za-z0-9_-]). */
export function newNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

export async function hmacSha256Hex(secret: string, message: Uint8Array | string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const data = typeof message === "string" ? encoder.encode(message) : message;
  return toHex(await crypto.subtle.sign("HMAC", key, data));
}

// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410): Web Crypto imports private keys only as PKCS#8 or JWK.
const PKCS8_ED25519_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

/** An Ed25519 private key: a CryptoKey, its 32 raw bytes, or their standard base64. */
export type PrivateKeyLike = CryptoKey | Uint8Array | string;

async function importEd25519(privateKey: PrivateKeyLike): Promise<CryptoKey> {
  if (typeof privateKey !== "string" && !(privateKey instanceof Uint8Array)) return privateKey;
  const seed = typeof privateKey === "string" ? fromBase64(privateKey) : privateKey;
  if (seed.length !== 32) throw new TypeError("privateKey: 32 bytes (or their base64) expected");
  const pkcs8 = new Uint8Array(48);
  pkcs8.set(PKCS8_ED25519_PREFIX);
  pkcs8.set(seed, 16);
  return crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
}

/** A new Ed25519 key pair as base64 of the 32-byte seed and of the 32-byte public key (register the latter). */
export async function generateEd25519Key(): Promise<{ privateKey: string; publicKey: string }> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const publicKey = await crypto.subtle.exportKey("raw", pair.publicKey);
  return { privateKey: toBase64(pkcs8.slice(16)), publicKey: toBase64(publicKey) };
}

export interface SignerOptions {
  keyId: string;
  /** HMAC key secret. Never ship a secret to a browser: use a session token there. */
  secret?: string;
  /** Ed25519 private key. */
  privateKey?: PrivateKeyLike;
}

export class Signer {
  readonly keyId: string;
  readonly algorithm: "hmac" | "ed25519";
  private readonly secret?: string;
  private ed25519?: Promise<CryptoKey>;

  constructor(options: SignerOptions) {
    if (!options.keyId) throw new TypeError("keyId is required");
    if ((options.secret === undefined) === (options.privateKey === undefined)) {
      throw new TypeError("give exactly one of secret (HMAC key) or privateKey (Ed25519 key)");
    }
    this.keyId = options.keyId;
    this.secret = options.secret;
    this.algorithm = options.secret !== undefined ? "hmac" : "ed25519";
    if (options.privateKey !== undefined) this.ed25519 = importEd25519(options.privateKey);
  }

  async sign(payload: string): Promise<string> {
    if (this.secret !== undefined) return hmacSha256Hex(this.secret, payload);
    const key = await this.ed25519!;
    return toBase64(await crypto.subtle.sign({ name: "Ed25519" }, key, encoder.encode(payload)));
  }

  async headers(method: string, pathWithQuery: string, body = "", timestampMs = Date.now()): Promise<Record<string, string>> {
    const nonce = newNonce();
    const signature = await this.sign(signingPayload(timestampMs, method, pathWithQuery, body, nonce));
    return { "OTC-KEY": this.keyId, "OTC-TIMESTAMP": String(timestampMs), "OTC-NONCE": nonce, "OTC-SIGNATURE": signature };
  }
}
