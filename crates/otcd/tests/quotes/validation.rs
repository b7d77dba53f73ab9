//! RFQ input validation: every refusal is a problem with its stable code and field, and creates no quote.

use otcd_testkit::http::{assert_invalid, assert_problem};
use otcd_testkit::process::TestDesk;
use serde_json::{json, Value};

#[test]
fn malformed_rfqs_are_refused_and_create_nothing() {
    let desk = TestDesk::relaxed();
    let trader = desk.trader("Validation");
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    desk.set_price("USDT-USD", "0.9998", "1.0002");
    let rfq = |body: Value| desk.rfq(&trader, &body);

    let unknown = rfq(json!({"instrument": "DOGE-USD", "side": "buy", "quantity": "1"}));
    assert_problem(&unknown, 400, "instrument_unknown");
    assert_problem(&rfq(json!({"instrument": "btc-usd", "side": "buy", "quantity": "1"})), 400, "instrument_unknown");

    let invalid_quantities = [
        // Off BTC-USD's 0.0001 increment (and below its 0.0001 minimum).
        ("BTC-USD", "0.00001"),
        ("BTC-USD", "1.00005"),
        // Finer than BTC's 8 decimals.
        ("BTC-USD", "1.000000001"),
        // Not positive.
        ("BTC-USD", "0"),
        ("BTC-USD", "-1"),
        // Above BTC-USD's 1000 maximum.
        ("BTC-USD", "1000.0001"),
        ("BTC-USD", "1001"),
        // Below USDT-USD's minimum of 10 while on its 0.01 increment; above its 50,000,000 maximum.
        ("USDT-USD", "9.99"),
        ("USDT-USD", "50000000.01"),
        // Not decimals.
        ("BTC-USD", "one"),
        ("BTC-USD", "1e2"),
        ("BTC-USD", ""),
    ];
    for (instrument, quantity) in invalid_quantities {
        let reply = rfq(json!({"instrument": instrument, "side": "buy", "quantity": quantity}));
        assert_invalid(&reply, "quantity");
    }
    // A JSON number where a decimal string is expected.
    assert_invalid(&rfq(json!({"instrument": "BTC-USD", "side": "buy", "quantity": 1})), "quantity");
    assert_invalid(&rfq(json!({"instrument": "BTC-USD", "side": "buy", "quote_quantity": 100000})), "quote_quantity");
    // Sides are buy or sell.
    assert_invalid(&rfq(json!({"instrument": "BTC-USD", "side": "hold", "quantity": "1"})), "side");
    assert_invalid(&rfq(json!({"instrument": "BTC-USD", "side": "BUY", "quantity": "1"})), "side");
    assert_problem(&rfq(json!({"instrument": "BTC-USD", "quantity": "1"})), 400, "invalid_request");
    // Unknown fields and a bad client_rfq_id.
    assert_invalid(&rfq(json!({"instrument": "BTC-USD", "side": "buy", "quantity": "1", "price": "1"})), "price");
    assert_invalid(
        &rfq(json!({"instrument": "BTC-USD", "side": "buy", "quantity": "1", "client_rfq_id": "no spaces"})),
        "client_rfq_id",
    );
    assert_problem(&desk.signed(&trader, "POST", "/v1/rfq", "{\"instrument\": "), 400, "invalid_request");
    assert_problem(&desk.signed(&trader, "POST", "/v1/rfq", ""), 400, "invalid_request");

    // Nothing was quoted: the id the first quote would have had does not exist.
    assert_problem(&desk.get(&trader, "/v1/quotes/q_000000000001"), 404, "quote_not_found");
    assert_problem(&desk.get(&desk.admin, "/v1/quotes/q_000000000001"), 404, "quote_not_found");

    // Limits are inclusive: the minimum and the maximum themselves are quotable.
    let first = desk.quote(&trader, "BTC-USD", "buy", "0.0001");
    assert_eq!(first["quantity"], json!("0.00010000"), "{first}");
    let found =
        desk.get(&trader, &format!("/v1/quotes/{}", first["quote_id"].as_str().expect("quote_id"))).expect(200).clone();
    assert_eq!(found["quote_id"], first["quote_id"], "{found}");
    let largest = desk.quote(&trader, "BTC-USD", "sell", "1000");
    assert_eq!(largest["quantity"], json!("1000.00000000"), "{largest}");
    assert_eq!(desk.quote(&trader, "USDT-USD", "buy", "10")["quantity"], json!("10.000000"));
}
