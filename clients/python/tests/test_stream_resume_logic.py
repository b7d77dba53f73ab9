"""The stream's resume logic against a scripted stand-in for the desk's /v1/stream that follows issue 17's
contract (seq on every message, replay after `resume_from`): a connection cut in the middle of one record's
messages loses nothing and repeats nothing. The real desk's resume is tested in test_stream.py once it has it."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.server import serve

import otcd_client as otc


class ScriptedDesk:
    def __init__(self):
        self.journal = []  # (seq, channel, message)
        self.subscribers = []  # (websocket, channel)
        self.subscribes = []  # every subscribe message received
        self.cut_after = None  # close the connection after sending this many live messages

    async def handler(self, websocket):
        async for text in websocket:
            message = json.loads(text)
            self.subscribes.append(message)
            channel = message["channel"]
            head = self.journal[-1][0] if self.journal else 0
            await websocket.send(json.dumps({"type": "subscribed", "channel": channel, "seq": head}))
            resume_from = message.get("resume_from")
            if resume_from is not None:
                for seq, ch, body in self.journal:
                    if ch == channel and seq > resume_from:
                        await websocket.send(json.dumps(body))
            self.subscribers.append((websocket, channel))

    async def publish(self, seq, channel, bodies):
        sent = 0
        for body in bodies:
            message = dict(body, seq=seq)
            self.journal.append((seq, channel, message))
            for websocket, ch in list(self.subscribers):
                if ch != channel:
                    continue
                if self.cut_after is not None and sent >= self.cut_after:
                    self.subscribers.remove((websocket, ch))
                    await websocket.close()
                    continue
                await websocket.send(json.dumps(message))
                sent += 1


def test_resume_mid_record_is_exactly_once():
    async def flow():
        desk = ScriptedDesk()
        async with serve(desk.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            stream = otc.Stream(f"http://127.0.0.1:{port}", None, backoff_s=0.3)
            await stream.connect()
            await stream.subscribe("balances")
            assert (await stream.next(5)).type == "subscribed"
            await desk.publish(4, "balances", [{"type": "balance", "asset": "EUR", "available": "1.00", "reserved": "0.00"}])
            desk.cut_after = 1  # the record at seq 5 makes two messages; the connection drops after the first
            await desk.publish(5, "balances", [
                {"type": "balance", "asset": "USD", "available": "10.00", "reserved": "0.00"},
                {"type": "balance", "asset": "BTC", "available": "0.50000000", "reserved": "0E-8"},
            ])
            desk.cut_after = None
            await desk.publish(6, "balances", [{"type": "withdrawal", "withdrawal_id": "w_1", "amount": "0.1"}])
            events = []
            while len([e for e in events if e.type in ("balance", "withdrawal")]) < 4:
                events.append(await stream.next(5))
            await stream.close()
        durable = [e for e in events if e.type in ("balance", "withdrawal")]
        seen = [(e.seq, e.type, getattr(e.data, "asset", None)) for e in durable]
        assert seen == [(4, "balance", "EUR"), (5, "balance", "USD"), (5, "balance", "BTC"), (6, "withdrawal", None)]
        assert [e.type for e in events].count("reconnected") == 1
        assert isinstance(durable[2].data, otc.Balance) and str(durable[2].data.available) == "0.50000000"
        assert isinstance(durable[3].data, otc.Withdrawal) and str(durable[3].data.amount) == "0.1"
        assert desk.subscribes[-1] == {"op": "subscribe", "channel": "balances", "resume_from": 4}
        assert desk.subscribes[0] == {"op": "subscribe", "channel": "balances"}

    asyncio.run(flow())


def test_resync_required_is_passed_on_and_resets():
    async def flow():
        desk = ScriptedDesk()

        async def handler(websocket):
            async for text in websocket:
                message = json.loads(text)
                desk.subscribes.append(message)
                if "resume_from" in message:
                    await websocket.send(json.dumps({"type": "resync_required", "channel": "orders", "oldest_seq": 100}))
                await websocket.send(json.dumps({"type": "subscribed", "channel": "orders", "seq": 120}))
                await websocket.send(json.dumps({"type": "order", "seq": 7 if "resume_from" not in message else 121,
                                                 "order_id": "o_1", "quantity": "1"}))
                if "resume_from" not in message:
                    await websocket.close()

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            stream = otc.Stream(f"http://127.0.0.1:{port}", None, backoff_s=0.05)
            await stream.connect()
            await stream.subscribe("orders")
            kinds = []
            while "resync_required" not in kinds or kinds.count("order") < 2:
                kinds.append((await stream.next(5)).type)
            await stream.close()
        assert desk.subscribes[1]["resume_from"] == 6
        assert kinds.index("resync_required") < len(kinds) - 1 and kinds[-1] == "order"

    asyncio.run(flow())
