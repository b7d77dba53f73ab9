"""Every client and operator method against the real desk, with HMAC and Ed25519 keys (the ``trader`` fixture
is parametrized over both)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from decimal import Decimal

import pytest

import otcd_client as otc
from conftest import new_trader

BTC_ADDRESS = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"


def test_catalog(trader):
    instruments = {i.symbol: i for i in trader.instruments()}
    assert instruments["BTC-USD"].base == "BTC"
    assert isinstance(instruments["BTC-USD"].price_increment, Decimal)
    assets = {a.code: a for a in trader.assets()}
    assert assets["BTC"].scale == 8 and assets["USD"].scale == 2


def test_account_and_balances(trader):
    account = trader.account()
    assert account.client_id == trader.client_id
    assert account.kyc_status == "approved"
    assert isinstance(account.usage.daily_notional_usd, Decimal)
    balances = {b.asset: b for b in trader.balances()}
    assert balances["USD"].available == Decimal("1000000.00")
    assert balances["USD"].reserved == Decimal("0")


def test_rfq_accept_then_trades_ledger_and_balances(trader):
    price = trader.price("BTC-USD", "0.5")
    assert price.bid < price.ask and price.firm is False
    quote = trader.rfq("BTC-USD", "buy", Decimal("0.5"))
    assert isinstance(quote.price, Decimal) and quote.firm and quote.client_rfq_id.startswith("rfq-")
    assert quote.quantity == Decimal("0.5")
    order = trader.accept(quote)
    assert order.status == "filled" and order.filled_quantity == Decimal("0.5")
    assert order.client_order_id.startswith("ord-")
    assert order.trades[0].price == quote.price
    assert trader.quote(quote.quote_id).state == "used"
    assert trader.order(order.order_id).order_id == order.order_id

    trades = trader.trades("BTC-USD").items
    assert [t.order_id for t in trades] == [order.order_id]
    trade = trades[0]
    assert trade.quote_amount == (quote.price * Decimal("0.5")).quantize(Decimal("0.01"))
    balances = {b.asset: b for b in trader.balances()}
    assert balances["USD"].available == Decimal("1000000.00") - trade.net_amount
    assert balances["BTC"].available == Decimal("0.5")
    entries = list(trader.iter_ledger("USD", limit=1))
    assert entries[-1].balance == balances["USD"].available
    assert sum(e.amount for e in entries) == balances["USD"].available


def test_rfq_by_quote_quantity_and_sell(trader):
    quote = trader.rfq("BTC-USD", "buy", quote_quantity="5001.00")
    assert quote.quantity > 0
    trader.accept(quote)
    sell = trader.rfq("BTC-USD", "sell", quote.quantity)
    assert sell.price < quote.price
    assert trader.accept(sell).status == "filled"


def test_market_and_limit_orders_cancel(trader):
    market = trader.market_order("BTC-USD", "buy", "0.1")
    assert market.status == "filled" and market.type == "market"
    resting = trader.limit_order("BTC-USD", "buy", "0.1", "40000.00")
    assert resting.status == "open" and resting.limit_price == Decimal("40000.00")
    assert {b.asset: b for b in trader.balances()}["USD"].reserved > 0
    assert [o.order_id for o in trader.orders("open").items] == [resting.order_id]
    cancelled = trader.cancel_order(resting.order_id)
    assert cancelled.status == "cancelled"
    with pytest.raises(otc.OrderNotCancelable) as refused:
        trader.cancel_order(resting.order_id)
    assert refused.value.status == 409 and refused.value.code == "order_not_cancelable"
    trader.limit_order("BTC-USD", "buy", "0.1", "40000.00")
    trader.limit_order("BTC-USD", "buy", "0.1", "39000.00")
    assert len(trader.cancel_all_orders("BTC-USD")) == 2
    assert trader.orders("open").items == []


def test_idempotent_ids(trader):
    first = trader.limit_order("BTC-USD", "buy", "0.1", "40000.00", client_order_id="same-id")
    again = trader.limit_order("BTC-USD", "buy", "0.1", "40000.00", client_order_id="same-id")
    assert again.order_id == first.order_id
    with pytest.raises(otc.Conflict) as refused:
        trader.limit_order("BTC-USD", "buy", "0.2", "40000.00", client_order_id="same-id")
    assert refused.value.code == "conflict"
    q1 = trader.rfq("BTC-USD", "buy", "0.1", client_rfq_id="rfq-same")
    q2 = trader.rfq("BTC-USD", "buy", "0.1", client_rfq_id="rfq-same")
    assert q1.quote_id == q2.quote_id


def test_errors_carry_the_problem(trader):
    with pytest.raises(otc.InstrumentUnknown) as unknown:
        trader.rfq("NOPE-USD", "buy", "1")
    assert unknown.value.status == 400 and unknown.value.code == "instrument_unknown"
    with pytest.raises(otc.InvalidRequest) as invalid:
        trader.rfq("BTC-USD", "buy", "0.123456789")
    assert invalid.value.field == "quantity" and invalid.value.detail
    quote = trader.rfq("BTC-USD", "buy", "0.1")
    trader.accept(quote)
    with pytest.raises(otc.QuoteAlreadyUsed):
        trader.accept(quote)
    with pytest.raises(otc.InsufficientFunds):
        trader.market_order("BTC-USD", "buy", "1000")
    with pytest.raises(otc.NotFound):
        trader.order("o_999999999999")


def test_floats_are_refused_before_sending(trader):
    with pytest.raises(TypeError):
        trader.rfq("BTC-USD", "buy", 0.5)
    with pytest.raises(TypeError):
        trader.limit_order("BTC-USD", "buy", "0.1", 40000.0)
    with pytest.raises(ValueError):
        trader.rfq("BTC-USD", "buy", "half")
    assert trader.orders().items == []


def test_pagination_iterators(trader):
    placed = {trader.limit_order("BTC-USD", "buy", "0.01", "30000.00").order_id for _ in range(5)}
    page = trader.orders(limit=2)
    assert len(page.items) == 2 and page.next_cursor
    seen = [o.order_id for o in trader.iter_orders(limit=2)]
    assert len(seen) == len(set(seen)) == 5 and set(seen) == placed
    assert [o.order_id for o in trader.paginate(trader.orders, "open", limit=3)] == seen
    trader.cancel_all_orders()


def test_destinations_and_withdrawals(trader, admin):
    admin.admin.deposit(trader.client_id, "BTC", "1.5", f"btc-{trader.client_id}")
    destination = trader.add_destination("BTC", BTC_ADDRESS, label="cold")
    assert destination.status == "approved" and destination.label == "cold"
    assert [d.destination_id for d in trader.destinations().items] == [destination.destination_id]
    assert [d.destination_id for d in trader.iter_destinations()] == [destination.destination_id]
    withdrawal = trader.withdraw("BTC", Decimal("0.25"), destination.destination_id)
    assert withdrawal.amount == Decimal("0.25") and withdrawal.client_withdrawal_id.startswith("wd-")
    again = trader.withdraw("BTC", "0.25", destination.destination_id,
                            client_withdrawal_id=withdrawal.client_withdrawal_id)
    assert again.withdrawal_id == withdrawal.withdrawal_id
    assert trader.withdrawal(withdrawal.withdrawal_id).withdrawal_id == withdrawal.withdrawal_id
    assert [w.withdrawal_id for w in trader.withdrawals().items] == [withdrawal.withdrawal_id]
    assert [w.withdrawal_id for w in trader.iter_withdrawals(limit=1)] == [withdrawal.withdrawal_id]
    assert withdrawal.withdrawal_id in [w.withdrawal_id for w in admin.admin.withdrawals().items]
    address = trader.deposit_address("BTC")
    assert address.address and address.asset == "BTC"


def test_session_token_client(trader, desk):
    session = trader.create_session(ttl_seconds=120, scopes=["read"])
    assert session.client_id == trader.client_id and session.scopes == ["read"]
    with otc.Client(desk.url, token=session.token) as browser:
        assert {b.asset for b in browser.balances()} >= {"USD", "BTC"}
        with pytest.raises(otc.Forbidden):
            browser.rfq("BTC-USD", "buy", "0.1")


def test_parallel_identical_reads_all_pass(trader):
    # Identical requests in the same millisecond: the nonce makes each signature unique.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: trader.balances(), range(40)))
    assert len(results) == 40


def test_deposit_batch(admin):
    record = admin.admin.create_client("Batch Surface Ltd", "DE", kyc_status="approved")
    cid = record.client_id
    admin.admin.deposit(cid, "USD", "5.00", f"single-{cid}")
    answer = admin.admin.deposit_batch([
        {"client_id": cid, "asset": "USD", "amount": Decimal("10.50"), "reference": f"b1-{cid}"},
        {"client_id": cid, "asset": "USD", "amount": "5", "reference": f"single-{cid}"},
        {"client_id": "cl_99999999", "asset": "USD", "amount": "1", "reference": f"ghost-{cid}"},
    ])
    results = answer["results"]
    assert [r["status"] for r in results] == [201, 200, 404]
    assert results[0]["deposit"]["amount"] == "10.50"
    assert results[2]["problem"]["code"] == "not_found"
    assert {b.asset: b.available for b in admin.balances(client_id=cid)}["USD"] == Decimal("15.50")


def test_admin_namespace(admin, desk):
    record = admin.admin.create_client("Admin Surface Ltd", "DE", kyc_status="pending")
    assert record.kyc_status == "pending"
    assert admin.admin.client(record.client_id).name == "Admin Surface Ltd"
    assert record.client_id in [c.client_id for c in admin.admin.clients(limit=1000).items]
    assert admin.admin.set_kyc(record.client_id, "approved").kyc_status == "approved"
    assert admin.admin.update_client(record.client_id, tier="standard").tier == "standard"
    key = admin.admin.create_key(record.client_id, ["read", "trade"])
    client = otc.Client(desk.url, key.key_id, secret=key.secret)
    assert client.account().kyc_status == "approved"
    admin.admin.deposit(record.client_id, "USD", "100.00", f"dep-admin-{record.client_id}")
    assert {b.asset: b.available for b in client.balances()}["USD"] == Decimal("100.00")
    assert admin.balances(client_id=record.client_id)
    admin.admin.revoke_key(key.key_id)
    with pytest.raises(otc.Unauthenticated):
        client.balances()
    assert admin.admin.tiers() is not None
    assert admin.admin.audit_verify() is not None
    assert admin.admin.request("GET", "/v1/admin/trading") is not None
    # A desk key of the other algorithm, doing admin work.
    private, public = otc.generate_ed25519_key()
    desk_key = admin.admin.create_key(None, ["read", "admin"], algorithm="ed25519", public_key=public)
    assert desk_key.client_id is None
    with otc.Client(desk.url, desk_key.key_id, private_key=private) as operator:
        assert operator.admin.client(record.client_id).client_id == record.client_id
    with pytest.raises(otc.Forbidden):
        client2 = new_trader(desk, admin, "hmac", usd=None)[1]
        client2.admin.clients()


def test_async_client(desk, admin):
    _, sync_client = new_trader(desk, admin, "ed25519")
    signer = sync_client.signer

    async def flow():
        async with otc.AsyncClient(desk.url, signer=signer) as client:
            quote = await client.rfq("BTC-USD", "buy", "0.2")
            order = await client.accept(quote)
            assert order.status == "filled"
            reads = await asyncio.gather(*[client.balances() for _ in range(20)])
            assert len(reads) == 20
            seen = [o.order_id async for o in client.iter_orders(limit=1)]
            assert seen == [order.order_id]
            with pytest.raises(otc.QuoteAlreadyUsed):
                await client.accept(quote)

    asyncio.run(flow())


def test_admin_desk_controls(admin, trader):
    tier = admin.admin.put_tier("sdk-gold", {"spread_bps": "5"})
    assert tier["tier"] == "sdk-gold" and tier["spread_bps"] == "5"
    assert "sdk-gold" in [t["tier"] for t in admin.admin.tiers()["items"]]
    admin.admin.fund_desk("USD", "1000.00", f"fund-{trader.client_id}")
    assert admin.admin.kill_switch(True, "drill")
    with pytest.raises(otc.TradingHalted):
        trader.rfq("BTC-USD", "buy", "0.1")
    admin.admin.kill_switch(False)
    trader.market_order("BTC-USD", "buy", "0.1")
    assert admin.admin.trades(client_id=trader.client_id)
    destination = trader.add_destination("BTC", BTC_ADDRESS)
    admin.admin.set_destination_status(destination.destination_id, "rejected")
    assert trader.destinations().items[0].status == "rejected"


def test_rate_limited_reads_are_retried_after_retry_after(desk, admin):
    admin.admin.put_tier("sdk-slow", {"spread_bps": "10", "rate_limits": {"reads": 1}})
    client_id, client = new_trader(desk, admin, "hmac")
    admin.admin.update_client(client_id, tier="sdk-slow")
    impatient = otc.Client(desk.url, signer=client.signer, max_retries=0)
    with pytest.raises(otc.RateLimited) as limited:
        for _ in range(5):
            impatient.balances()
    assert limited.value.status == 429 and limited.value.retry_after is not None
    for _ in range(3):  # every read over the limit waits for Retry-After and succeeds
        assert client.balances()
