"""Safe retries: an answer lost after the desk executed the order (a timeout) is retried with the same
client_order_id, and the desk holds one order, not two."""

from __future__ import annotations

import asyncio

import pytest

import otcd_client as otc
from conftest import new_trader
from proxy import LosingProxy


def _drop_first(method_wanted: str, path_wanted: str):
    dropped = []

    def drop(method: str, path: str) -> bool:
        if method == method_wanted and path.startswith(path_wanted) and not dropped:
            dropped.append(path)
            return True
        return False

    return drop


@pytest.mark.parametrize("algorithm", ["hmac", "ed25519"])
def test_timeout_on_place_order_makes_one_order(desk, admin, algorithm):
    _, direct = new_trader(desk, admin, algorithm)
    proxy = LosingProxy(desk.url, _drop_first("POST", "/v1/orders"))
    try:
        client = otc.Client(proxy.url, signer=direct.signer, timeout_s=1.0, backoff_s=0.05)
        order = client.limit_order("BTC-USD", "buy", "0.1", "40000.00")
        posts = [s for s in proxy.seen if s[0] == "POST" and s[1] == "/v1/orders"]
        assert [status for _, _, status in posts] == [201, 200], proxy.seen  # executed once, then answered again
        orders = direct.orders().items
        assert [o.order_id for o in orders] == [order.order_id]
        assert orders[0].client_order_id == order.client_order_id
    finally:
        proxy.close()


def test_timeout_on_accept_trades_once_async(desk, admin):
    _, direct = new_trader(desk, admin, "hmac")
    proxy = LosingProxy(desk.url, _drop_first("POST", "/v1/orders"))

    async def flow():
        async with otc.AsyncClient(proxy.url, signer=direct.signer, timeout_s=1.0, backoff_s=0.05) as client:
            quote = await client.rfq("BTC-USD", "buy", "0.3")
            return await client.accept(quote)

    try:
        order = asyncio.run(flow())
        assert order.status == "filled"
        assert [t.trade_id for t in direct.trades().items] == [order.trades[0].trade_id]
        balances = {b.asset: b.available for b in direct.balances()}
        assert str(balances["BTC"]) == "0.30000000"
    finally:
        proxy.close()


def test_timeout_on_rfq_reuses_the_rfq_id(desk, admin):
    _, direct = new_trader(desk, admin, "hmac")
    proxy = LosingProxy(desk.url, _drop_first("POST", "/v1/rfq"))
    try:
        client = otc.Client(proxy.url, signer=direct.signer, timeout_s=1.0, backoff_s=0.05)
        quote = client.rfq("BTC-USD", "buy", "0.1")
        statuses = [status for method, path, status in proxy.seen if path == "/v1/rfq"]
        assert statuses == [201, 200]
        assert client.quote(quote.quote_id).state == "open"
    finally:
        proxy.close()


def test_no_retry_budget_raises_transport_error(desk, admin):
    _, direct = new_trader(desk, admin, "hmac")
    proxy = LosingProxy(desk.url, _drop_first("POST", "/v1/orders"))
    try:
        client = otc.Client(proxy.url, signer=direct.signer, timeout_s=1.0, max_retries=0)
        with pytest.raises(otc.TransportError):
            client.limit_order("BTC-USD", "buy", "0.1", "40000.00", client_order_id="lost-answer")
        # The caller retries with the same id: still one order.
        again = client.limit_order("BTC-USD", "buy", "0.1", "40000.00", client_order_id="lost-answer")
        assert [o.order_id for o in direct.orders().items] == [again.order_id]
    finally:
        proxy.close()


def test_connection_refused_is_a_transport_error():
    client = otc.Client("http://127.0.0.1:9", "k_x", secret="s", max_retries=1, backoff_s=0.01)
    with pytest.raises(otc.TransportError):
        client.balances()
