// The stream's resume logic against a scripted stand-in for /v1/stream following issue 17's contract (seq on
// every message, replay after resume_from): a connection cut in the middle of one record's messages loses nothing
// and repeats nothing. The real desk's resume is tested in stream.test.mjs once it has it.
import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import { Stream } from "../dist/index.js";

test("resume in the middle of a record is exactly once", async () => {
  const journal = []; const subscribers = []; const subscribes = [];
  let cutAfter = null;
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  server.on("connection", (socket) => socket.on("message", (text) => {
    const message = JSON.parse(String(text));
    subscribes.push(message);
    socket.send(JSON.stringify({ type: "subscribed", channel: message.channel, seq: journal.at(-1)?.seq ?? 0 }));
    if (message.resume_from !== undefined) {
      for (const m of journal) if (m.seq > message.resume_from) socket.send(JSON.stringify(m));
    }
    subscribers.push(socket);
  }));
  await new Promise((r) => server.once("listening", r));
  const publish = (seq, bodies) => {
    let sent = 0;
    for (const body of bodies) {
      const m = { ...body, seq };
      journal.push(m);
      for (const socket of [...subscribers]) {
        if (cutAfter !== null && sent >= cutAfter) { subscribers.splice(subscribers.indexOf(socket), 1); socket.close(); continue; }
        socket.send(JSON.stringify(m));
        sent++;
      }
    }
  };
  const stream = await new Stream({ url: `http://127.0.0.1:${server.address().port}`, WebSocket, backoffMs: 300 }).connect();
  try {
    stream.subscribe("balances");
    assert.equal((await stream.next(5000)).type, "subscribed");
    publish(4, [{ type: "balance", asset: "EUR", available: "1.00", reserved: "0.00" }]);
    await new Promise((r) => setTimeout(r, 50));
    cutAfter = 1;
    publish(5, [{ type: "balance", asset: "USD", available: "10.00", reserved: "0.00" },
      { type: "balance", asset: "BTC", available: "0.50000000", reserved: "0.00000000" }]);
    cutAfter = null;
    publish(6, [{ type: "withdrawal", withdrawal_id: "w_1", amount: "0.1" }]);
    const events = [];
    while (events.filter((e) => e.type === "balance" || e.type === "withdrawal").length < 4) events.push(await stream.next(5000));
    const durable = events.filter((e) => e.type === "balance" || e.type === "withdrawal");
    assert.deepEqual(durable.map((e) => [e.seq, e.type, e.data.asset]),
      [[4, "balance", "EUR"], [5, "balance", "USD"], [5, "balance", "BTC"], [6, "withdrawal", undefined]]);
    assert.equal(durable[2].data.available, "0.50000000");
    assert.equal(events.filter((e) => e.type === "reconnected").length, 1);
    assert.deepEqual(subscribes.at(-1), { op: "subscribe", channel: "balances", resume_from: 4 });
    assert.deepEqual(subscribes[0], { op: "subscribe", channel: "balances" });
  } finally {
    stream.close();
    server.close();
  }
});
