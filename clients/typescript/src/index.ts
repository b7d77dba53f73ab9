/** @otcd/client: the TypeScript SDK of the otcd OTC trading desk API (docs/api.md in the otcd repository). */
export * from "./client.js";
export * from "./errors.js";
export type * from "./models.js";
export * from "./signing.js";
export * from "./stream.js";
export * from "./webhooks.js";
