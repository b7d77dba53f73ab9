//! Executing firm quotes (`POST /v1/orders` with `type: quote`): single use, expiry, ownership, funds, exact
//! ledger effects, idempotent client_order_id, and the race of two accepts of one quote.

use otcd_testkit::http::{assert_invalid, assert_problem, text, Reply};
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};

fn accept(desk: &TestDesk, signer: &Signer, quote_id: &str, client_order_id: &str) -> Reply {
    desk.post(signer, "/v1/orders", &json!({"client_order_id": client_order_id, "type": "quote", "quote_id": quote_id}))
}

/// A funded, approved client at 0 bps, so quote prices equal the manual book.
fn funded_trader(desk: &TestDesk, name: &str) -> (String, Signer) {
    desk.put_tier("zero", &json!({"spread_bps": "0"}));
    let (client_id, signer) = desk.client(name, "zero", "approved");
    desk.deposit(&client_id, "USD", "100000.00", &format!("{name}-usd").replace(' ', "-")).expect(201);
    (client_id, signer)
}

#[test]
fn buying_one_btc_at_50050_moves_exactly_50050_usd_and_one_btc() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded_trader(&desk, "Exact Buyer");
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let quote = desk.quote(&trader, "BTC-USD", "buy", "1");
    assert_eq!(quote["price"], json!("50050.00"));
    let order = accept(&desk, &trader, &text(&quote["quote_id"]), "o-1").expect(201).clone();
    assert_eq!(order["status"], json!("filled"), "{order}");
    assert_eq!(order["type"], json!("quote"), "{order}");
    assert_eq!(order["filled_quantity"], json!("1.00000000"), "{order}");
    assert_eq!(order["average_price"], json!("50050.00"), "{order}");
    assert_eq!(order["trades"].as_array().unwrap().len(), 1, "{order}");
    assert_eq!(desk.own_balance(&trader, "USD"), ("49950.00".into(), "0.00".into()));
    assert_eq!(desk.own_balance(&trader, "BTC"), ("1.00000000".into(), "0.00000000".into()));
    let positions = desk.get(&desk.admin, "/v1/admin/desk/positions").expect(200).clone();
    let position = |asset: &str| {
        let items = positions["items"].as_array().unwrap();
        text(&items.iter().find(|item| item["asset"] == json!(asset)).unwrap()["position"])
    };
    assert_eq!(position("BTC"), "-1.00000000", "the desk sold 1 BTC: {positions}");
    assert_eq!(position("USD"), "50050.00", "{positions}");
    let trades = desk.get(&trader, "/v1/trades").expect(200).clone();
    assert_eq!(trades["items"][0]["quote_amount"], json!("50050.00"), "{trades}");
    let verified = desk.get(&desk.admin, "/v1/admin/audit/verify").expect(200).clone();
    assert_eq!(verified["valid"], json!(true), "{verified}");
}

#[test]
fn rounding_of_the_quote_amount_goes_against_the_client() {
    let desk = TestDesk::relaxed();
    let (client_id, trader) = funded_trader(&desk, "Rounding Trader");
    desk.deposit(&client_id, "BTC", "1", "btc-1").expect(201);
    desk.set_price("BTC-USD", "50000.01", "50000.03");
    // Buy 0.0001 at 50000.03: 5.000003 USD → the client pays 5.01 (rounded up).
    let buy = desk.quote(&trader, "BTC-USD", "buy", "0.0001");
    accept(&desk, &trader, &text(&buy["quote_id"]), "buy-small").expect(201);
    assert_eq!(desk.own_balance(&trader, "USD").0, "99994.99");
    // Sell 0.0001 at 50000.01: 5.000001 USD → the client receives 5.00 (rounded down).
    let sell = desk.quote(&trader, "BTC-USD", "sell", "0.0001");
    accept(&desk, &trader, &text(&sell["quote_id"]), "sell-small").expect(201);
    assert_eq!(desk.own_balance(&trader, "USD").0, "99999.99");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "1.00000000");
}

#[test]
fn a_quote_is_single_use_and_only_for_its_client() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded_trader(&desk, "Single User");
    let (_, other) = funded_trader(&desk, "Other User");
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let quote_id = text(&desk.quote(&trader, "BTC-USD", "buy", "0.1")["quote_id"]);
    assert_problem(&accept(&desk, &other, &quote_id, "steal"), 404, "quote_not_found");
    accept(&desk, &trader, &quote_id, "first").expect(201);
    assert_problem(&accept(&desk, &trader, &quote_id, "second"), 409, "quote_already_used");
    let view = desk.get(&trader, &format!("/v1/quotes/{quote_id}")).expect(200).clone();
    assert_eq!(view["state"], json!("used"), "{view}");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "0.10000000", "only one fill");
    assert_problem(&accept(&desk, &trader, "q_999999999999", "missing"), 404, "quote_not_found");
}

#[test]
fn an_expired_quote_is_refused_and_nothing_moves() {
    let desk = TestDesk::with_config("max_book_age_ms = 60000\nquote_validity_ms = 300\n");
    let (_, trader) = funded_trader(&desk, "Late Trader");
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let quote_id = text(&desk.quote(&trader, "BTC-USD", "buy", "0.1")["quote_id"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_problem(&accept(&desk, &trader, &quote_id, "late"), 409, "quote_expired");
    assert_eq!(desk.own_balance(&trader, "USD").0, "100000.00");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "0.00000000");
}

#[test]
fn insufficient_funds_are_refused_and_nothing_moves() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded_trader(&desk, "Thin Wallet");
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let quote_id = text(&desk.quote(&trader, "BTC-USD", "buy", "2")["quote_id"]);
    assert_problem(&accept(&desk, &trader, &quote_id, "too-big"), 422, "insufficient_funds");
    let sell = text(&desk.quote(&trader, "BTC-USD", "sell", "0.5")["quote_id"]);
    assert_problem(&accept(&desk, &trader, &sell, "no-btc"), 422, "insufficient_funds");
    assert_eq!(desk.own_balance(&trader, "USD").0, "100000.00");
    // A refused acceptance does not use the quote up.
    let view = desk.get(&trader, &format!("/v1/quotes/{quote_id}")).expect(200).clone();
    assert_eq!(view["state"], json!("open"), "{view}");
}

#[test]
fn client_order_id_is_idempotent() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded_trader(&desk, "Idempotent Trader");
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let quote_id = text(&desk.quote(&trader, "BTC-USD", "buy", "0.1")["quote_id"]);
    let first = accept(&desk, &trader, &quote_id, "same").expect(201).clone();
    let again = accept(&desk, &trader, &quote_id, "same").expect(200).clone();
    assert_eq!(first["order_id"], again["order_id"]);
    let other_quote = text(&desk.quote(&trader, "BTC-USD", "buy", "0.1")["quote_id"]);
    assert_problem(&accept(&desk, &trader, &other_quote, "same"), 409, "conflict");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "0.10000000");
    let order = desk.get(&trader, &format!("/v1/orders/{}", text(&first["order_id"]))).expect(200).clone();
    assert_eq!(order["client_order_id"], json!("same"), "{order}");
    let orders = desk.get(&trader, "/v1/orders?status=filled").expect(200).clone();
    assert_eq!(orders["items"].as_array().unwrap().len(), 1, "{orders}");
}

#[test]
fn two_concurrent_accepts_of_one_quote_fill_exactly_once() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded_trader(&desk, "Racer");
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    for round in 0..5 {
        let quote_id = text(&desk.quote(&trader, "BTC-USD", "buy", "0.01")["quote_id"]);
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..2)
                .map(|index| {
                    let (desk, trader, quote_id) = (&desk, &trader, &quote_id);
                    scope.spawn(move || accept(desk, trader, quote_id, &format!("race-{round}-{index}")).status)
                })
                .collect();
            racers.into_iter().map(|racer| racer.join().unwrap()).collect()
        });
        let mut sorted = statuses.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![201, 409], "round {round}: {statuses:?}");
    }
    assert_eq!(desk.own_balance(&trader, "BTC").0, "0.05000000", "five fills of 0.01");
}

#[test]
fn streamed_two_way_quotes_need_a_side() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded_trader(&desk, "Streamer");
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let mut stream = desk.stream(&trader);
    stream.subscribe_quotes("BTC-USD", &["0.5"]);
    let ladder: Value =
        stream.next_where(std::time::Duration::from_secs(5), "firm ladder", |message| message["firm"] == json!(true));
    let quote_id = text(&ladder["levels"][0]["quote_id"]);
    assert_invalid(&accept(&desk, &trader, &quote_id, "no-side"), "side");
    let body = json!({"client_order_id": "with-side", "type": "quote", "quote_id": quote_id, "side": "sell"});
    desk.post(&desk.admin, "/v1/admin/deposits", &json!({"client_id": text(&desk.get(&trader, "/v1/account").expect(200)["client_id"]), "asset": "BTC", "amount": "1", "reference": "btc"})).expect(201);
    let order = desk.post(&trader, "/v1/orders", &body).expect(201).clone();
    assert_eq!(order["average_price"], json!("50000.00"), "a sell takes the ladder's bid: {order}");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "0.50000000");
}

#[test]
fn account_usage_counts_todays_notional() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded_trader(&desk, "Usage Trader");
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let quote_id = text(&desk.quote(&trader, "BTC-USD", "buy", "1")["quote_id"]);
    accept(&desk, &trader, &quote_id, "usage-1").expect(201);
    let account = desk.get(&trader, "/v1/account").expect(200).clone();
    // USD notional at the BTC-USD mid (50025.00) × 1 BTC.
    assert_eq!(account["usage"]["daily_notional_usd"], json!("50025.00"), "{account}");
}

fn market(desk: &TestDesk, signer: &Signer, body: Value) -> Reply {
    desk.post(signer, "/v1/orders", &body)
}

#[test]
fn a_market_order_fills_at_the_firm_price_within_its_slippage() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded_trader(&desk, "Market Taker");
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let order = market(
        &desk,
        &trader,
        json!({"client_order_id": "m-1", "type": "market", "instrument": "BTC-USD", "side": "buy", "quantity": "0.5",
            "reference_price": "50000.00", "slippage_bps": "10"}),
    )
    .expect(201)
    .clone();
    // 0 bps tier: the firm ask is 50050.00; the reference allows up to 50000.00 × 1.001 = 50050.00 exactly.
    assert_eq!(order["status"], json!("filled"), "{order}");
    assert_eq!(order["type"], json!("market"), "{order}");
    assert_eq!(order["average_price"], json!("50050.00"), "{order}");
    assert_eq!(desk.own_balance(&trader, "USD").0, "74975.00", "100000.00 − 0.5 × 50050.00");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "0.50000000");
    // 9.99 bps is not enough: 50000.00 × 1.000999 = 50049.95 < 50050.00.
    let refused = market(
        &desk,
        &trader,
        json!({"client_order_id": "m-2", "type": "market", "instrument": "BTC-USD", "side": "buy", "quantity": "0.5",
            "reference_price": "50000.00", "slippage_bps": "9.99"}),
    );
    assert_problem(&refused, 422, "slippage_exceeded");
    assert_eq!(desk.own_balance(&trader, "USD").0, "74975.00", "a refused order moves nothing");
    // A sell without a reference price takes the firm bid.
    let sell = market(
        &desk,
        &trader,
        json!({"client_order_id": "m-3", "type": "market", "instrument": "BTC-USD", "side": "sell", "quantity": "0.5"}),
    )
    .expect(201)
    .clone();
    assert_eq!(sell["average_price"], json!("50000.00"), "{sell}");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "0.00000000");
    // Idempotent repeat, conflicting repeat.
    let again = market(
        &desk,
        &trader,
        json!({"client_order_id": "m-3", "type": "market", "instrument": "BTC-USD", "side": "sell", "quantity": "0.5"}),
    );
    assert_eq!(again.expect(200)["order_id"], sell["order_id"]);
    let conflict = market(
        &desk,
        &trader,
        json!({"client_order_id": "m-3", "type": "market", "instrument": "BTC-USD", "side": "sell", "quantity": "0.4"}),
    );
    assert_problem(&conflict, 409, "conflict");
    // No fresh price → price_unavailable; resting limit orders are not offered yet.
    let no_price = market(
        &desk,
        &trader,
        json!({"client_order_id": "m-4", "type": "market", "instrument": "GBP-USD", "side": "buy", "quantity": "100"}),
    );
    assert_problem(&no_price, 503, "price_unavailable");
    let limit = market(
        &desk,
        &trader,
        json!({"client_order_id": "l-1", "type": "limit", "instrument": "BTC-USD", "side": "buy", "quantity": "0.5", "limit_price": "1", "time_in_force": "gtc"}),
    );
    // A gtc order far from the market rests (resting orders are tested in resting.rs).
    assert_eq!(limit.expect(201)["status"], json!("open"));
}

#[test]
fn tier_notional_limits_refuse_with_which_limit_and_by_how_much() {
    let desk = TestDesk::relaxed();
    desk.put_tier(
        "capped",
        &json!({"spread_bps": "0", "trade_notional_usd_max": "60000", "daily_notional_usd_max": "70000"}),
    );
    let (client_id, trader) = desk.client("Capped Trader", "capped", "approved");
    desk.deposit(&client_id, "USD", "200000.00", "capped-usd").expect(201);
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    // USD notional at the mid: 2 BTC × 50025.00 = 100050.00 > 60000.00 by 40050.00 — refused at the RFQ.
    let refused = desk.rfq(&trader, &json!({"instrument": "BTC-USD", "side": "buy", "quantity": "2"}));
    let problem = assert_problem(&refused, 422, "limit_exceeded").clone();
    assert!(text(&problem["detail"]).contains("trade_notional_usd_max would be exceeded by 40050.00 USD"), "{problem}");
    // 1 BTC (50025.00) fits both limits; a further 0.5 BTC (25012.50) breaks the daily 70000.00 by 5037.50.
    let first = desk.quote(&trader, "BTC-USD", "buy", "1");
    accept(&desk, &trader, &text(&first["quote_id"]), "capped-1").expect(201);
    let market = desk.post(
        &trader,
        "/v1/orders",
        &json!({"client_order_id": "capped-2", "type": "market", "instrument": "BTC-USD", "side": "buy", "quantity": "0.5"}),
    );
    let problem = assert_problem(&market, 422, "limit_exceeded").clone();
    assert!(text(&problem["detail"]).contains("daily_notional_usd_max would be exceeded by 5037.50 USD"), "{problem}");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "1.00000000", "the refused order moved nothing");
    let account = desk.get(&trader, "/v1/account").expect(200).clone();
    assert_eq!(account["usage"]["daily_notional_usd"], json!("50025.00"), "{account}");
    assert_eq!(account["limits"]["daily_notional_usd_max"], json!("70000.00"), "{account}");
}

#[test]
fn a_filled_order_cannot_be_cancelled() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded_trader(&desk, "Canceller");
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let quote_id = text(&desk.quote(&trader, "BTC-USD", "buy", "0.1")["quote_id"]);
    let order = accept(&desk, &trader, &quote_id, "cancel-me").expect(201).clone();
    let path = format!("/v1/orders/{}", text(&order["order_id"]));
    assert_problem(&desk.signed(&trader, "DELETE", &path, ""), 409, "order_not_cancelable");
    assert_problem(&desk.signed(&trader, "DELETE", "/v1/orders/o_999999999999", ""), 404, "not_found");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "0.10000000");
}

#[test]
fn immediate_limit_orders_fill_when_the_firm_price_reaches_the_limit_else_cancel() {
    let desk = TestDesk::relaxed();
    let (client_id, trader) = funded_trader(&desk, "Limit Trader");
    desk.deposit(&client_id, "BTC", "1", "limit-btc").expect(201);
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let limit = |id: &str, side: &str, price: &str, tif: &str| {
        market(
            &desk,
            &trader,
            json!({"client_order_id": id, "type": "limit", "instrument": "BTC-USD", "side": side, "quantity": "0.5",
                "limit_price": price, "time_in_force": tif}),
        )
    };
    // Buy at most 50049.99: the firm ask is 50050.00 → not reached → recorded as cancelled, nothing moves.
    let missed = limit("l-miss", "buy", "50049.99", "ioc").expect(201).clone();
    assert_eq!(missed["status"], json!("cancelled"), "{missed}");
    assert_eq!(missed["filled_quantity"], json!("0.00000000"), "{missed}");
    assert_eq!(missed["trades"], json!([]), "{missed}");
    assert_eq!(desk.own_balance(&trader, "USD").0, "100000.00");
    // Buy at most 50050.00: reached → filled at the firm price.
    let filled = limit("l-fill", "buy", "50050.00", "fok").expect(201).clone();
    assert_eq!(filled["status"], json!("filled"), "{filled}");
    assert_eq!(filled["average_price"], json!("50050.00"), "{filled}");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "1.50000000");
    // Sell at least 50000.01: the firm bid is 50000.00 → cancelled; at least 49000.00 → filled at 50000.00.
    assert_eq!(limit("s-miss", "sell", "50000.01", "fok").expect(201)["status"], json!("cancelled"));
    let sold = limit("s-fill", "sell", "49000.00", "ioc").expect(201).clone();
    assert_eq!(sold["average_price"], json!("50000.00"), "{sold}");
    assert_eq!(desk.own_balance(&trader, "BTC").0, "1.00000000");
    // Idempotent; off-step limit prices are refused; the cancelled orders are listed.
    assert_eq!(limit("l-miss", "buy", "50049.99", "ioc").expect(200)["order_id"], missed["order_id"]);
    assert_invalid(&limit("l-bad", "buy", "50049.995", "ioc"), "limit_price");
    let cancelled = desk.get(&trader, "/v1/orders?status=cancelled").expect(200).clone();
    assert_eq!(cancelled["items"].as_array().unwrap().len(), 2, "{cancelled}");
}

#[test]
fn a_tier_fee_is_charged_in_the_quote_asset_rounded_up_and_shown_on_quote_order_and_trade() {
    let desk = TestDesk::relaxed();
    // 0 bps spread, 2.5 bps fee: the price is the book's, the fee is on top.
    let tier = desk.put_tier("fee", &json!({"spread_bps": "0", "fee_bps": "2.5"}));
    assert_eq!(tier["fee_bps"], json!("2.5"), "{tier}");
    let (client_id, trader) = desk.client("Fee Payer", "fee", "approved");
    desk.deposit(&client_id, "USD", "100000.00", "fee-usd").expect(201);
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    let quote = desk.quote(&trader, "BTC-USD", "buy", "1");
    assert_eq!((quote["price"].clone(), quote["fee_bps"].clone()), (json!("50050.00"), json!("2.5")), "{quote}");
    // 50,050.00 × 2.5 bps = 12.5125 → 12.52 (rounded up: the fee never favours the client by accident).
    let order = accept(&desk, &trader, &text(&quote["quote_id"]), "fee-1").expect(201).clone();
    assert_eq!(order["trades"][0]["fee"], json!("12.52"), "{order}");
    assert_eq!(desk.own_balance(&trader, "USD"), ("49937.48".into(), "0.00".into()));
    let trades = desk.get(&trader, "/v1/trades").expect(200).clone();
    let trade = &trades["items"][0];
    assert_eq!(
        (trade["quote_amount"].clone(), trade["fee"].clone(), trade["net_amount"].clone()),
        (json!("50050.00"), json!("12.52"), json!("50062.52")),
        "{trades}"
    );
    // A seller has the fee taken from the proceeds: 1 BTC at 50,000.00 → 50,000.00 − 12.50.
    let sell = desk.quote(&trader, "BTC-USD", "sell", "1");
    accept(&desk, &trader, &text(&sell["quote_id"]), "fee-2").expect(201);
    assert_eq!(desk.own_balance(&trader, "USD"), ("99924.98".into(), "0.00".into()));
    assert_eq!(desk.own_balance(&trader, "BTC"), ("0.00000000".into(), "0.00000000".into()));
    // Fees outside 0..=1000 bps are refused and change nothing.
    assert_invalid(
        &desk.put(&desk.admin, "/v1/admin/tiers/fee", &json!({"spread_bps": "0", "fee_bps": "1000.01"})),
        "fee_bps",
    );
    assert_invalid(
        &desk.put(&desk.admin, "/v1/admin/tiers/fee", &json!({"spread_bps": "0", "fee_bps": "-1"})),
        "fee_bps",
    );
    assert_invalid(&desk.put(&desk.admin, "/v1/admin/tiers/fee", &json!({"spread_bps": "0", "fee_bps": 2})), "fee_bps");
    let tiers = desk.get(&desk.admin, "/v1/admin/tiers").expect(200).clone();
    let kept = tiers["items"].as_array().unwrap().iter().find(|tier| tier["tier"] == json!("fee")).unwrap().clone();
    assert_eq!(kept["fee_bps"], json!("2.5"), "{tiers}");
}
