// Starts the real `otcd` binary for the tests: `otcd serve --market manual` on a free port (--listen
// 127.0.0.1:0, the address read from its log) with a temporary data directory. OTCD_BIN names the binary; else
// the repository's newest target/release or target/debug build.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "../dist/index.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const CONFIG = "max_book_age_ms = 60000\nsettlement_confirm_after_ms = 200\n";
export const CONFIG_WEBHOOKS = CONFIG + "webhooks_allow_private = true\n";
const START_TIMEOUT_MS = 60_000;

export function otcdBinary() {
  if (process.env.OTCD_BIN) return process.env.OTCD_BIN;
  const candidates = ["release", "debug"].map((p) => join(REPO, "target", p, "otcd")).filter((p) => existsSync(p));
  if (candidates.length === 0) throw new Error("no otcd binary: run `cargo build -p otcd` or set OTCD_BIN");
  return candidates.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

export class Desk {
  constructor(config = CONFIG) {
    this.scratch = mkdtempSync(join(tmpdir(), "otcd-ts-test-"));
    this.dataDir = join(this.scratch, "desk");
    this.configPath = join(this.scratch, "otcd.toml");
    writeFileSync(this.configPath, config);
    this.log = "";
  }

  async start() {
    this.process = spawn(otcdBinary(), ["serve", "--data-dir", this.dataDir, "--listen", "127.0.0.1:0",
      "--market", "manual", "--config", this.configPath],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, OTCD_ENGINE_PREFAULT_MIB: "0", RUST_LOG: "info" } });
    this.address = await new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`otcd did not start; log:\n${this.log}`)), START_TIMEOUT_MS);
      this.process.stderr.setEncoding("utf8");
      this.process.stderr.on("data", (chunk) => {
        this.log += chunk;
        const match = /otcd listening.*address=(\S+)/.exec(this.log);
        if (match) { clearTimeout(timer); resolvePromise(match[1]); }
      });
      this.process.on("exit", () => reject(new Error(`otcd exited; log:\n${this.log}`)));
    });
    const key = JSON.parse(readFileSync(join(this.dataDir, "admin-key.json"), "utf8"));
    this.adminKeyId = key.key_id;
    this.adminSecret = key.secret;
    return this;
  }

  get url() { return `http://${this.address}`; }

  admin() { return new Client({ baseUrl: this.url, keyId: this.adminKeyId, secret: this.adminSecret }); }

  async stop() {
    if (this.process && this.process.exitCode === null) {
      const exited = new Promise((r) => this.process.once("exit", r));
      this.process.kill("SIGKILL");
      await exited;
    }
  }

  async restart() {
    await this.stop();
    this.log = "";
    return this.start();
  }

  async cleanup() {
    await this.stop();
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

let counter = 0;

/** A KYC-approved prefunded client with `usd` and a key of `algorithm`; returns { clientId, client }. */
export async function newTrader(desk, admin, algorithm, { scopes = ["read", "trade", "withdraw"], usd = "1000000.00", clientOptions = {} } = {}) {
  const { generateEd25519Key } = await import("../dist/index.js");
  const record = await admin.admin.createClient({ name: `TS Test ${++counter} ${algorithm}`, jurisdiction: "DE", kycStatus: "approved" });
  if (usd) await admin.admin.deposit(record.client_id, "USD", usd, `dep-${record.client_id}`);
  let client;
  if (algorithm === "hmac") {
    const key = await admin.admin.createKey(record.client_id, { scopes });
    client = new Client({ baseUrl: desk.url, keyId: key.key_id, secret: key.secret, ...clientOptions });
  } else {
    const pair = await generateEd25519Key();
    const key = await admin.admin.createKey(record.client_id, { scopes, algorithm: "ed25519", publicKey: pair.publicKey });
    client = new Client({ baseUrl: desk.url, keyId: key.key_id, privateKey: pair.privateKey, ...clientOptions });
  }
  return { clientId: record.client_id, client };
}

export async function setMarkets(admin) {
  await admin.admin.setMarket("BTC-USD", "50000.00", "50010.00");
  await admin.admin.setMarket("ETH-USD", "3000.00", "3001.00");
}

