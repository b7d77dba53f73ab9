"""The WebSocket stream ``/v1/stream`` (docs/api.md, "The stream") with reconnect, resubscribe and resume.

``orders``, ``trades`` and ``balances`` messages carry the journal ``seq`` of the record they came from (issue
17's stream resume). The stream remembers, per channel, the last seq it handed over and how many messages of
that seq it handed over; after a reconnect it subscribes with ``resume_from`` = that seq - 1 and drops the
messages of that seq it had already handed over, so nothing is lost or repeated even when one record made
several messages. A desk that sends no seq is resubscribed plainly (and a ``reconnected`` event with
``resumed=False`` tells the application to re-read state with GET); a desk that can no longer replay answers
``resync_required``, which is handed over as an event too.

Usage::

    async with client.stream() as stream:
        await stream.subscribe("orders")
        async for event in stream:          # or: await stream.run(callback)
            print(event.type, event.seq, event.data)
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union

from urllib.parse import quote

import websockets
from websockets.asyncio.client import connect

from ._signing import Signer
from .models import parse_event_data

#: The channel each server message type belongs to.
CHANNEL_OF_TYPE = {"order": "orders", "trade": "trades", "balance": "balances", "withdrawal": "balances"}
#: Events waiting for the application; when full the reader waits (backpressure) instead of growing memory.
QUEUE_EVENTS_MAX = 4096
#: The desk allows 20 subscriptions per connection.
SUBSCRIPTIONS_MAX = 20
BACKOFF_S_MAX = 30.0


@dataclass
class StreamEvent:
    """One message: ``type`` (order, trade, balance, withdrawal, quotes, subscribed, unsubscribed, error,
    resync_required, or the SDK's own ``reconnected``), its ``channel``, ``seq`` when the desk sent one, and
    ``data``: a model (Order, Trade, Balance, Withdrawal) for the durable kinds, else the message as a dict."""
    type: str
    channel: Optional[str]
    seq: Optional[int]
    data: Any
    raw: Dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class _ChannelState:
    seq: Optional[int] = None
    handed_at_seq: int = 0  # messages of `seq` already handed over
    to_skip: int = 0        # after a resume from seq - 1: messages of `seq` to drop (handed over before)


Callback = Callable[[StreamEvent], Union[None, Awaitable[None]]]


class Stream:
    def __init__(self, base_url: str, signer: Optional[Signer], *, token: Optional[str] = None,
                 reconnect: bool = True, backoff_s: float = 0.2, reconnects_max: Optional[int] = None,
                 open_timeout_s: float = 10.0):
        self._url = base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/v1/stream"
        if token is not None and signer is None:
            self._url += f"?token={quote(token, safe='')}"
        self._signer = signer
        self.reconnect = reconnect
        self.backoff_s = backoff_s
        self.reconnects_max = reconnects_max
        self.open_timeout_s = open_timeout_s
        self._subscriptions: Dict[Tuple[str, Optional[str]], Dict[str, Any]] = {}
        self._channels: Dict[str, _ChannelState] = {}
        self._queue: asyncio.Queue = asyncio.Queue(QUEUE_EVENTS_MAX)
        self._ws: Any = None
        self._reader: Optional[asyncio.Task] = None
        self._closed = False
        self._connected = asyncio.Event()
        self.reconnects = 0

    # Life cycle
    async def __aenter__(self) -> "Stream":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self) -> None:
        await self._open()
        self._connected.set()
        self._reader = asyncio.create_task(self._read_forever())

    async def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass

    async def _open(self) -> None:
        headers = self._signer.headers("GET", "/v1/stream", "") if self._signer is not None else {}
        self._ws = await connect(self._url, additional_headers=headers, open_timeout=self.open_timeout_s,
                                 max_size=4 * 1024 * 1024)

    # Subscriptions
    async def subscribe(self, channel: str, instrument: Optional[str] = None,
                        levels: Optional[List[Any]] = None) -> None:
        """Subscribe to ``orders``, ``trades``, ``balances``, or ``quotes`` (with ``instrument`` and ``levels``).
        Kept and sent again after every reconnect."""
        key = (channel, instrument)
        if key not in self._subscriptions and len(self._subscriptions) >= SUBSCRIPTIONS_MAX:
            raise ValueError(f"at most {SUBSCRIPTIONS_MAX} subscriptions per connection")
        message: Dict[str, Any] = {"op": "subscribe", "channel": channel}
        if instrument is not None:
            message["instrument"] = instrument
        if levels is not None:
            message["levels"] = [str(level) for level in levels]
        self._subscriptions[key] = message
        if self._connected.is_set():  # else the reconnect sends every kept subscription, this one included
            await self._ws.send(json.dumps(self._with_resume(message)))

    async def unsubscribe(self, channel: str, instrument: Optional[str] = None) -> None:
        self._subscriptions.pop((channel, instrument), None)
        message: Dict[str, Any] = {"op": "unsubscribe", "channel": channel}
        if instrument is not None:
            message["instrument"] = instrument
        await self._send(message)

    async def _send(self, message: Dict[str, Any]) -> None:
        if self._connected.is_set():
            await self._ws.send(json.dumps(message))

    def _with_resume(self, message: Dict[str, Any]) -> Dict[str, Any]:
        state = self._channels.get(message["channel"])
        if state is None or state.seq is None:
            return message  # nothing seen with a seq yet (or a desk without seq): a plain subscription
        # Resume from the seq before the last one seen, and drop again what we handed over of the last one:
        # one record can make several messages of a channel, and we may have been cut off in their middle.
        state.to_skip = state.handed_at_seq
        return {**message, "resume_from": state.seq - 1}

    # Reading
    async def _read_forever(self) -> None:
        failures = 0
        while not self._closed:
            try:
                async for text in self._ws:
                    failures = 0
                    await self._dispatch(text)
            except (websockets.ConnectionClosed, OSError):
                pass
            if self._closed or not self.reconnect:
                break
            self._connected.clear()
            while not self._closed:
                if self.reconnects_max is not None and self.reconnects >= self.reconnects_max:
                    await self._queue.put(None)
                    return
                await asyncio.sleep(min(BACKOFF_S_MAX, self.backoff_s * 2 ** failures) * (0.5 + random.random() / 2))
                failures += 1
                self.reconnects += 1
                try:
                    await self._open()
                    break
                except (OSError, websockets.WebSocketException, asyncio.TimeoutError):
                    continue
            if self._closed:
                break
            resumed = all(self._channels.get(ch) is not None and self._channels[ch].seq is not None
                          for ch, _ in self._subscriptions if ch != "quotes")
            try:
                for message in list(self._subscriptions.values()):
                    await self._ws.send(json.dumps(self._with_resume(message)))
            except websockets.ConnectionClosed:
                continue  # lost again at once: the next round reconnects
            self._connected.set()
            await self._queue.put(StreamEvent("reconnected", None, None, {"resumed": resumed}))
        await self._queue.put(None)

    async def _dispatch(self, text: Union[str, bytes]) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        kind = str(message.get("type", ""))
        seq = message.get("seq") if isinstance(message.get("seq"), int) else None
        channel = CHANNEL_OF_TYPE.get(kind) or message.get("channel")
        if kind in CHANNEL_OF_TYPE and seq is not None:
            state = self._channels.setdefault(CHANNEL_OF_TYPE[kind], _ChannelState())
            if state.seq is not None and seq < state.seq:
                return  # older than what we handed over: a replay overlap
            if seq == state.seq:
                if state.to_skip > 0:
                    state.to_skip -= 1
                    return
                state.handed_at_seq += 1
            else:
                state.seq, state.handed_at_seq, state.to_skip = seq, 1, 0
        elif kind == "resync_required" and channel in self._channels:
            self._channels[channel] = _ChannelState()
        data = {k: v for k, v in message.items() if k not in ("type", "seq")}
        data = parse_event_data(kind, data) if kind in CHANNEL_OF_TYPE else message
        await self._queue.put(StreamEvent(kind, channel, seq, data, message))

    def __aiter__(self) -> "Stream":
        return self

    async def __anext__(self) -> StreamEvent:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def next(self, timeout_s: Optional[float] = None) -> StreamEvent:
        """The next event, waiting at most ``timeout_s`` (asyncio.TimeoutError after)."""
        return await asyncio.wait_for(self.__anext__(), timeout_s)

    async def run(self, callback: Callback) -> None:
        """Call ``callback(event)`` (a function or a coroutine function) for each event until closed."""
        async for event in self:
            result = callback(event)
            if inspect.isawaitable(result):
                await result

    async def drop_connection(self) -> None:
        """Close the socket as a network failure would (for tests and drills): the stream reconnects."""
        if self._ws is not None:
            await self._ws.close()
