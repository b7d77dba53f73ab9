"""The synchronous :class:`Client` and the asynchronous :class:`AsyncClient`: the same methods (from
``_core.Endpoints``), the same signing, the same retry rules; the async one's methods are awaited."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any, AsyncIterator, Callable, Iterator, Optional

import httpx

from . import models as m
from ._core import AdminEndpoints, Call, Endpoints
from ._signing import PrivateKeyLike, Signer
from .errors import TransportError, error_from_problem

#: Statuses after which the desk changed nothing and asks to come back (`Retry-After`).
RETRY_STATUSES = (429, 503)
#: Longest single wait between two attempts, whatever `Retry-After` says.
BACKOFF_S_MAX = 10.0


class _Base:
    def __init__(self, base_url: str, key_id: Optional[str] = None, secret: Optional[str] = None,
                 private_key: Optional[PrivateKeyLike] = None, *, token: Optional[str] = None,
                 signer: Optional[Signer] = None, timeout_s: float = 10.0, max_retries: int = 3, backoff_s: float = 0.2):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        if max_retries < 0 or max_retries > 10:
            raise ValueError("max_retries: 0 to 10")
        self.base_url = base_url.rstrip("/")
        self.signer = signer or (Signer(key_id, secret, private_key) if key_id else None)
        if self.signer is None and (secret is not None or private_key is not None):
            raise ValueError("a secret or private_key needs its key_id")
        self.token = token
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.admin = AdminEndpoints(self._call)

    def _request_parts(self, call: Call):
        path = call.path_with_query()
        body = call.body_text()
        headers = {"Accept": "application/json", "User-Agent": "otcd-client-python/0.1"}
        if body:
            headers["Content-Type"] = "application/json"
        if self.signer is not None:
            headers.update(self.signer.headers(call.method, path, body))
        elif self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.base_url + path, body.encode(), headers

    def _retry_after(self, response: httpx.Response, attempt: int) -> Optional[float]:
        """Seconds to wait before the next attempt, or None when this answer is final."""
        if response.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
            return None
        header = response.headers.get("Retry-After")
        try:
            wait = float(header) if header is not None else self._backoff(attempt)
        except ValueError:
            wait = self._backoff(attempt)
        return min(wait, BACKOFF_S_MAX)

    def _backoff(self, attempt: int) -> float:
        # Exponential with full jitter, so many clients retrying together spread out.
        return min(BACKOFF_S_MAX, self.backoff_s * (2 ** attempt)) * (0.5 + random.random() / 2)

    def _may_retry_transport(self, call: Call, error: Exception, attempt: int) -> bool:
        if attempt >= self.max_retries:
            return False
        # A refused or timed-out connection never reached the desk: always safe. Otherwise the request may have
        # been executed, and only an idempotent one (a read, or a POST with its client id) is sent again.
        not_sent = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))
        return not_sent or call.retry_safe

    @staticmethod
    def _finish(call: Call, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            if response.is_success:
                return call.parse(None) if call.parse is not None else None
        try:
            data = response.json()
        except (json.JSONDecodeError, ValueError):
            data = None
        if not response.is_success:
            retry_after = response.headers.get("Retry-After")
            problem = data if isinstance(data, dict) else {"detail": response.text[:500]}
            raise error_from_problem(response.status_code, problem,
                                     float(retry_after) if retry_after and retry_after.isdigit() else None)
        return call.parse(data)

    def stream(self, **options: Any):
        """A :class:`otcd_client.Stream` on ``/v1/stream`` signed with this client's key (asyncio; see its docs)."""
        from .stream import Stream
        return Stream(self.base_url, self.signer, token=self.token, **options)


class Client(_Base, Endpoints):
    """Synchronous client. ``Client(base_url, key_id, secret=...)`` for an HMAC key, ``private_key=...`` for
    Ed25519. Every request is signed with a fresh nonce; idempotent requests are retried on timeouts, connection
    errors, 429 and 503 with backoff, with the same ``client_*_id``."""

    def __init__(self, base_url: str, key_id: Optional[str] = None, secret: Optional[str] = None,
                 private_key: Optional[PrivateKeyLike] = None, **options: Any):
        transport = options.pop("transport", None)
        super().__init__(base_url, key_id, secret, private_key, **options)
        self._http = httpx.Client(timeout=self.timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, call: Call) -> Any:
        attempt = 0
        while True:
            url, body, headers = self._request_parts(call)
            try:
                response = self._http.request(call.method, url, content=body or None, headers=headers)
            except httpx.TransportError as error:
                if not self._may_retry_transport(call, error, attempt):
                    raise TransportError(f"{call.method} {call.path}: {error!r}") from error
                time.sleep(self._backoff(attempt))
                attempt += 1
                continue
            wait = self._retry_after(response, attempt)
            if wait is None:
                return self._finish(call, response)
            time.sleep(wait)
            attempt += 1

    def paginate(self, method: Callable[..., m.Page], *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Every item of a list, page after page: ``for order in client.paginate(client.orders, status="open")``."""
        cursor = kwargs.pop("cursor", None)
        pages_max = 100_000  # a bound on the loop: a desk answering the same cursor forever cannot hang us
        for _ in range(pages_max):
            page = method(*args, cursor=cursor, **kwargs)
            yield from page.items
            if not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    def iter_orders(self, status: Optional[str] = None, **kw: Any) -> Iterator[m.Order]:
        return self.paginate(self.orders, status, **kw)

    def iter_trades(self, instrument: Optional[str] = None, **kw: Any) -> Iterator[m.Trade]:
        return self.paginate(self.trades, instrument, **kw)

    def iter_ledger(self, asset: Optional[str] = None, **kw: Any) -> Iterator[m.LedgerEntry]:
        return self.paginate(self.ledger, asset, **kw)

    def iter_withdrawals(self, **kw: Any) -> Iterator[m.Withdrawal]:
        return self.paginate(self.withdrawals, **kw)

    def iter_destinations(self, **kw: Any) -> Iterator[m.Destination]:
        return self.paginate(self.destinations, **kw)


class AsyncClient(_Base, Endpoints):
    """Asynchronous client: the same methods as :class:`Client`, each awaited
    (``quote = await client.rfq("BTC-USD", "buy", "0.5")``); iterators are ``async for``."""

    def __init__(self, base_url: str, key_id: Optional[str] = None, secret: Optional[str] = None,
                 private_key: Optional[PrivateKeyLike] = None, **options: Any):
        transport = options.pop("transport", None)
        super().__init__(base_url, key_id, secret, private_key, **options)
        self._http = httpx.AsyncClient(timeout=self.timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _call(self, call: Call) -> Any:  # type: ignore[override]
        attempt = 0
        while True:
            url, body, headers = self._request_parts(call)
            try:
                response = await self._http.request(call.method, url, content=body or None, headers=headers)
            except httpx.TransportError as error:
                if not self._may_retry_transport(call, error, attempt):
                    raise TransportError(f"{call.method} {call.path}: {error!r}") from error
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            wait = self._retry_after(response, attempt)
            if wait is None:
                return self._finish(call, response)
            await asyncio.sleep(wait)
            attempt += 1

    async def paginate(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncIterator[Any]:  # type: ignore[override]
        cursor = kwargs.pop("cursor", None)
        for _ in range(100_000):
            page = await method(*args, cursor=cursor, **kwargs)
            for item in page.items:
                yield item
            if not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    def iter_orders(self, status: Optional[str] = None, **kw: Any) -> AsyncIterator[m.Order]:
        return self.paginate(self.orders, status, **kw)

    def iter_trades(self, instrument: Optional[str] = None, **kw: Any) -> AsyncIterator[m.Trade]:
        return self.paginate(self.trades, instrument, **kw)

    def iter_ledger(self, asset: Optional[str] = None, **kw: Any) -> AsyncIterator[m.LedgerEntry]:
        return self.paginate(self.ledger, asset, **kw)

    def iter_withdrawals(self, **kw: Any) -> AsyncIterator[m.Withdrawal]:
        return self.paginate(self.withdrawals, **kw)

    def iter_destinations(self, **kw: Any) -> AsyncIterator[m.Destination]:
        return self.paginate(self.destinations, **kw)
