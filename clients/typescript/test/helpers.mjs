// A proxy that loses answers (the request reaches the desk and is executed; the client times out) and a
// webhook receiver that records deliveries and can fail them.
import { createServer } from "node:http";

export const HOLD_MS = 3000;

export async function losingProxy(upstream, drop) {
  const seen = [];
  const server = createServer(async (request, response) => {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const headers = Object.fromEntries(Object.entries(request.headers).filter(([k]) => !["host", "content-length", "connection"].includes(k)));
    const answer = await fetch(upstream + request.url, { method: request.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
    const body = Buffer.from(await answer.arrayBuffer());
    seen.push([request.method, request.url, answer.status]);
    if (drop(request.method, request.url)) {
      setTimeout(() => request.socket.destroy(), HOLD_MS);
      return;
    }
    response.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json", "content-length": body.length });
    response.end(body);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => { server.closeAllConnections(); server.close(); } };
}

export function dropFirst(methodWanted, pathWanted) {
  let dropped = false;
  return (method, path) => {
    if (!dropped && method === methodWanted && path.startsWith(pathWanted)) { dropped = true; return true; }
    return false;
  };
}

export async function receiver({ failFirst = 0 } = {}) {
  const state = { failFirst, failing: false, received: [] };
  const server = createServer(async (request, response) => {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const fail = state.failing || state.failFirst > 0;
    if (state.failFirst > 0) state.failFirst--;
    const status = fail ? 500 : 204;
    state.received.push({ headers: request.headers, body: Buffer.concat(chunks), status });
    response.writeHead(status);
    response.end();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  state.url = `http://127.0.0.1:${server.address().port}/hook`;
  state.accepted = () => state.received.filter((r) => r.status < 300);
  state.close = () => { server.closeAllConnections(); server.close(); };
  return state;
}

export async function waitFor(predicate, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("timed out waiting");
}
