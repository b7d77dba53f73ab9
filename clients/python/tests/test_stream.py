"""The WebSocket stream: typed events, reconnect and resubscribe, resume without loss or duplicates."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

import otcd_client as otc
from conftest import new_trader

TIMEOUT_S = 15


async def _next_of(stream: otc.Stream, kinds, timeout_s=TIMEOUT_S) -> otc.StreamEvent:
    while True:
        event = await stream.next(timeout_s)
        if event.type in kinds:
            return event


async def _acked(stream: otc.Stream, channel: str) -> None:
    event = await _next_of(stream, {"subscribed", "error"})
    assert event.type == "subscribed" and event.data["channel"] == channel, event


@pytest.mark.parametrize("algorithm", ["hmac", "ed25519"])
def test_stream_typed_events_and_callback(desk, admin, algorithm):
    _, client = new_trader(desk, admin, algorithm)

    async def flow():
        stream = client.stream()
        await stream.connect()
        await stream.subscribe("orders")
        await _acked(stream, "orders")
        await stream.subscribe("balances")
        await _acked(stream, "balances")
        order = await asyncio.to_thread(client.market_order, "BTC-USD", "buy", "0.1")
        # One subscription's messages may overtake another's: wait for both kinds in any order.
        got = {}
        while not {"order", "balance"} <= got.keys():
            event = await _next_of(stream, {"order", "balance"})
            got.setdefault(event.type, event)
        event, balance = got["order"], got["balance"]
        assert isinstance(event.data, otc.Order) and event.data.order_id == order.order_id
        assert event.channel == "orders"
        assert isinstance(balance.data, otc.Balance) and isinstance(balance.data.available, Decimal)
        assert balance.channel == "balances"
        # The callback API, stopped by closing the stream.
        got = []

        async def on_event(e):
            got.append(e)
            if e.type == "order":
                await stream.close()

        runner = asyncio.create_task(stream.run(on_event))
        await asyncio.to_thread(client.limit_order, "BTC-USD", "buy", "0.1", "40000.00")
        await asyncio.wait_for(runner, TIMEOUT_S)
        assert any(e.type == "order" and e.data.status == "open" for e in got)

    asyncio.run(flow())


def test_stream_reconnects_and_resubscribes(desk, admin):
    _, client = new_trader(desk, admin, "hmac")

    async def flow():
        async with client.stream(backoff_s=0.05) as stream:
            await stream.subscribe("orders")
            await _acked(stream, "orders")
            await stream.drop_connection()
            reconnected = await _next_of(stream, {"reconnected"})
            assert reconnected.data["resumed"] is False  # nothing with a seq seen yet
            await _acked(stream, "orders")
            order = await asyncio.to_thread(client.limit_order, "BTC-USD", "buy", "0.1", "40000.00")
            event = await _next_of(stream, {"order"})
            assert event.data.order_id == order.order_id
            assert stream.reconnects == 1

    asyncio.run(flow())


def test_stream_resume_after_forced_disconnect_loses_nothing(desk, admin):
    _, client = new_trader(desk, admin, "hmac")

    async def flow():
        # A slow reconnect (0.5 to 1 s) so the orders below are placed while the stream is away.
        async with client.stream(backoff_s=1.0) as stream:
            for channel in ("orders", "balances"):
                await stream.subscribe(channel)
                await _acked(stream, channel)
            first = await asyncio.to_thread(client.market_order, "BTC-USD", "buy", "0.1")
            seen = [await _next_of(stream, {"order"})]
            assert seen[0].seq is not None, "the desk sends seq on the orders channel"
            assert seen[0].data.order_id == first.order_id
            await stream.drop_connection()
            missed = [await asyncio.to_thread(client.limit_order, "BTC-USD", "buy", "0.01", f"{40000 + i}.00")
                      for i in range(3)]
            missed_ids = [o.order_id for o in missed]
            reconnected = False
            while not set(missed_ids) <= {e.data.order_id for e in seen}:
                event = await _next_of(stream, {"order", "reconnected"})
                if event.type == "reconnected":
                    assert event.data["resumed"] is True
                    reconnected = True
                else:
                    seen.append(event)
            assert reconnected
            keys = [(e.seq, e.data.order_id, e.data.status) for e in seen]
            assert len(keys) == len(set(keys)), f"an order message twice: {keys}"
            assert [e.data.order_id for e in seen if e.data.order_id in missed_ids] == missed_ids
            assert [e.seq for e in seen] == sorted(e.seq for e in seen)
            # Nothing repeated afterwards.
            with pytest.raises(asyncio.TimeoutError):
                await _next_of(stream, {"order"}, timeout_s=1.0)

    asyncio.run(flow())


def test_stream_with_a_session_token(desk, admin):
    _, client = new_trader(desk, admin, "ed25519")
    session = client.create_session(ttl_seconds=120, scopes=["read"])

    async def flow():
        async with otc.AsyncClient(desk.url, token=session.token) as browser:
            async with browser.stream() as stream:
                await stream.subscribe("orders")
                await _acked(stream, "orders")
                order = await asyncio.to_thread(client.limit_order, "BTC-USD", "buy", "0.1", "40000.00")
                assert (await _next_of(stream, {"order"})).data.order_id == order.order_id

    asyncio.run(flow())
