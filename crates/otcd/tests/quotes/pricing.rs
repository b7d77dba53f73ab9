//! Exact client prices: spread per tier, size bands, rounding against the client on each instrument's price
//! increment, quote-amount RFQs and inventory skew. Every expected value is computed by hand in the comments.
//!
//! Manual books have unlimited depth, so the executable VWAP of any size is the manual bid or ask itself.

use otcd_testkit::http::{assert_invalid, assert_problem, text};
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::Signer;
use serde_json::json;

/// `(instrument, side, quantity, expected price)` for one client.
fn assert_prices(desk: &TestDesk, signer: &Signer, cases: &[(&str, &str, &str, &str)]) {
    for (instrument, side, quantity, expected) in cases {
        let price = desk.quote_price(signer, instrument, side, quantity);
        assert_eq!(&price, expected, "{side} {quantity} {instrument}");
    }
}

#[test]
fn standard_tier_prices_are_the_book_times_the_spread() {
    let desk = TestDesk::relaxed();
    let trader = desk.trader("Spread Standard");
    desk.set_price("BTC-USD", "50000.00", "50010.00");

    // buy: 50010.00 × (1 + 20/10000) = 50010.00 × 1.002 = 50110.02 exactly.
    let quote = desk.quote(&trader, "BTC-USD", "buy", "1");
    assert_eq!(quote["price"], json!("50110.02"), "{quote}");
    assert_eq!(quote["quantity"], json!("1.00000000"), "BTC quantities carry 8 decimals: {quote}");
    assert!(quote["quote_id"].is_string(), "{quote}");
    assert_prices(
        &desk,
        &trader,
        &[
            // sell: 50000.00 × 0.998 = 49900.00 exactly.
            ("BTC-USD", "sell", "1", "49900.00"),
            // Unlimited depth: the size does not move the VWAP.
            ("BTC-USD", "buy", "0.5", "50110.02"),
            ("BTC-USD", "sell", "999.9999", "49900.00"),
        ],
    );

    // The indicative two-way price is the same arithmetic: bid = the sell price, ask = the buy price.
    let indicative = desk.get(&trader, "/v1/prices/BTC-USD?quantity=1").expect(200).clone();
    assert_eq!(indicative["bid"], json!("49900.00"), "{indicative}");
    assert_eq!(indicative["ask"], json!("50110.02"), "{indicative}");
    assert_eq!(indicative["firm"], json!(false), "{indicative}");
    assert_eq!(indicative["quantity"], json!("1.00000000"), "{indicative}");
}

#[test]
fn rounding_goes_against_the_client_on_every_tier_and_increment() {
    let desk = TestDesk::relaxed();
    for (tier, spread) in [("zero", "0"), ("ten", "10"), ("twelve_5", "12.5")] {
        let view = desk.put_tier(tier, &json!({"spread_bps": spread}));
        assert_eq!(view["spread_bps"], json!(spread), "{view}");
    }
    let standard = desk.trader("Rounding Standard");
    let zero = desk.client("Rounding Zero", "zero", "approved").1;
    let ten = desk.client("Rounding Ten", "ten", "approved").1;
    let twelve = desk.client("Rounding Twelve", "twelve_5", "approved").1;

    desk.set_price("BTC-USD", "49999.99", "50010.01");
    // 20 bps: 50010.01 × 1.002 = 50110.03002 → up to 50110.04; 49999.99 × 0.998 = 49899.99002 → down to 49899.99.
    assert_prices(&desk, &standard, &[("BTC-USD", "buy", "1", "50110.04"), ("BTC-USD", "sell", "1", "49899.99")]);
    // 0 bps: the book itself.
    assert_prices(&desk, &zero, &[("BTC-USD", "buy", "2", "50010.01"), ("BTC-USD", "sell", "2", "49999.99")]);
    // 10 bps: 50010.01 × 1.001 = 50060.02001 → 50060.03; 49999.99 × 0.999 = 49949.99001 → 49949.99.
    assert_prices(&desk, &ten, &[("BTC-USD", "buy", "0.1", "50060.03"), ("BTC-USD", "sell", "0.1", "49949.99")]);
    // 12.5 bps: 50010.01 × 1.00125 = 50072.5225125 → 50072.53; 49999.99 × 0.99875 = 49937.4900125 → 49937.49.
    assert_prices(&desk, &twelve, &[("BTC-USD", "buy", "3", "50072.53"), ("BTC-USD", "sell", "3", "49937.49")]);

    // ETH-BTC, price increment 0.00001: 0.05010 × 1.002 = 0.0502002 → 0.05021; 0.05000 × 0.998 = 0.0499 → 0.04990.
    desk.set_price("ETH-BTC", "0.05000", "0.05010");
    let quote = desk.quote(&standard, "ETH-BTC", "buy", "1.5");
    assert_eq!(quote["price"], json!("0.05021"), "{quote}");
    assert_eq!(quote["quantity"], json!("1.500000000000000000"), "ETH quantities carry 18 decimals: {quote}");
    assert_prices(&desk, &standard, &[("ETH-BTC", "sell", "1.5", "0.04990")]);
    assert_prices(&desk, &zero, &[("ETH-BTC", "buy", "0.001", "0.05010"), ("ETH-BTC", "sell", "0.001", "0.05000")]);

    // EUR-USD, increment 0.00001, 10 bps: 1.08010 × 1.001 = 1.0811801 → 1.08119; 1.08003 × 0.999 = 1.07894997 → 1.07894.
    desk.set_price("EUR-USD", "1.08003", "1.08010");
    let quote = desk.quote(&ten, "EUR-USD", "buy", "250000");
    assert_eq!(quote["price"], json!("1.08119"), "{quote}");
    assert_eq!(quote["quantity"], json!("250000.00"), "EUR quantities carry 2 decimals: {quote}");
    assert_prices(&desk, &ten, &[("EUR-USD", "sell", "250000", "1.07894")]);

    // USDT-USD, increment 0.0001, 12.5 bps: 1.0002 × 1.00125 = 1.00145025 → 1.0015; 0.9998 × 0.99875 = 0.99855025 → 0.9985.
    desk.set_price("USDT-USD", "0.9998", "1.0002");
    let quote = desk.quote(&twelve, "USDT-USD", "sell", "100");
    assert_eq!(quote["price"], json!("0.9985"), "{quote}");
    assert_eq!(quote["quantity"], json!("100.000000"), "USDT quantities carry 6 decimals: {quote}");
    assert_prices(&desk, &twelve, &[("USDT-USD", "buy", "100", "1.0015")]);
    assert_prices(&desk, &zero, &[("USDT-USD", "buy", "10", "1.0002"), ("USDT-USD", "sell", "10", "0.9998")]);
}

#[test]
fn size_bands_apply_from_the_usd_notional_at_the_mid() {
    let desk = TestDesk::relaxed();
    let view = desk.put_tier(
        "banded",
        &json!({"spread_bps": "10", "bands": [
            {"notional_usd_min": "1000000", "spread_bps": "5"},
            {"notional_usd_min": "5000000", "spread_bps": "2.5"}
        ]}),
    );
    assert_eq!(view["bands"][0]["notional_usd_min"], json!("1000000.00"), "{view}");
    assert_eq!(view["bands"][1]["spread_bps"], json!("2.5"), "{view}");
    let (_, trader) = desk.client("Banded", "banded", "approved");

    // Mid = (50000.00 + 50010.00) / 2 = 50005.00.
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    assert_prices(
        &desk,
        &trader,
        &[
            // 19 × 50005 = 950,095 USD < 1M: the tier's 10 bps. 50010 × 1.001 = 50060.01; 50000 × 0.999 = 49950.00.
            ("BTC-USD", "buy", "19", "50060.01"),
            ("BTC-USD", "sell", "19", "49950.00"),
            // 19.998 × 50005 = 999,999.99 USD: still below the band.
            ("BTC-USD", "buy", "19.998", "50060.01"),
            // 19.9981 × 50005 = 1,000,004.9905 USD ≥ 1M: 5 bps. 50010 × 1.0005 = 50035.005 → 50035.01.
            ("BTC-USD", "buy", "19.9981", "50035.01"),
            // 25 × 50005 = 1,250,125 USD: 5 bps. 50000 × 0.9995 = 49975.00.
            ("BTC-USD", "buy", "25", "50035.01"),
            ("BTC-USD", "sell", "25", "49975.00"),
            // 100 × 50005 = 5,000,500 USD ≥ 5M: 2.5 bps. 50010 × 1.00025 = 50022.5025 → 50022.51; 50000 × 0.99975 = 49987.50.
            ("BTC-USD", "buy", "100", "50022.51"),
            ("BTC-USD", "sell", "100", "49987.50"),
        ],
    );
    let indicative = desk.get(&trader, "/v1/prices/BTC-USD?quantity=25").expect(200).clone();
    assert_eq!(
        (indicative["bid"].clone(), indicative["ask"].clone()),
        (json!("49975.00"), json!("50035.01")),
        "{indicative}"
    );

    // BTC-EUR sizes its notional in USD through BTC-USD's mid: 21 × 50005 = 1,050,105 USD ≥ 1M (although
    // 21 × 46005 = 966,105 EUR is not): 5 bps. 46010 × 1.0005 = 46033.005 → 46033.01; 46000 × 0.9995 = 45977.00.
    desk.set_price("BTC-EUR", "46000.00", "46010.00");
    assert_prices(&desk, &trader, &[("BTC-EUR", "buy", "21", "46033.01"), ("BTC-EUR", "sell", "21", "45977.00")]);
    // BTC-USD mid 40005: 21 × 40005 = 840,105 USD < 1M: 10 bps. 46010 × 1.001 = 46056.01; 46000 × 0.999 = 45954.00.
    desk.set_price("BTC-USD", "40000.00", "40010.00");
    desk.set_price("BTC-EUR", "46000.00", "46010.00");
    assert_prices(&desk, &trader, &[("BTC-EUR", "buy", "21", "46056.01"), ("BTC-EUR", "sell", "21", "45954.00")]);
}

#[test]
fn quote_quantity_finds_the_size_for_an_amount() {
    let desk = TestDesk::relaxed();
    let trader = desk.trader("Quote Amounts");
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    let by_amount = |side: &str, amount: &str| {
        let reply = desk.rfq(&trader, &json!({"instrument": "BTC-USD", "side": side, "quote_quantity": amount}));
        let quote = reply.expect(201).clone();
        (text(&quote["quantity"]), text(&quote["price"]))
    };

    // Buy at 50110.02 (50010.00 × 1.002): 1.9956 costs 99999.555912 → 99999.56 ≤ 100000, while 1.9957 costs
    // 100004.566914 → 100004.57 > 100000. The largest affordable size on the 0.0001 step is 1.9956.
    assert_eq!(by_amount("buy", "100000"), ("1.99560000".into(), "50110.02".into()));
    // A budget of exactly 99999.56 still buys 1.9956 (its cost rounds up to exactly the budget) ...
    assert_eq!(by_amount("buy", "99999.56"), ("1.99560000".into(), "50110.02".into()));
    // ... one cent less does not: 1.9955 costs 99994.544910 → 99994.55.
    assert_eq!(by_amount("buy", "99999.55"), ("1.99550000".into(), "50110.02".into()));

    // Sell at 49900.00: 2.0040 brings 99999.60 < 100000, 2.0041 brings 100004.59 ≥ 100000: the smallest is 2.0041.
    assert_eq!(by_amount("sell", "100000"), ("2.00410000".into(), "49900.00".into()));
    assert_eq!(by_amount("sell", "99999.60"), ("2.00400000".into(), "49900.00".into()));
    assert_eq!(by_amount("sell", "99999.61"), ("2.00410000".into(), "49900.00".into()));

    // Exactly one of quantity and quote_quantity.
    let both = json!({"instrument": "BTC-USD", "side": "buy", "quantity": "1", "quote_quantity": "100000"});
    assert_invalid(&desk.rfq(&trader, &both), "quantity");
    assert_invalid(&desk.rfq(&trader, &json!({"instrument": "BTC-USD", "side": "buy"})), "quantity");
    // Nothing positive to spend, or less than the minimum size costs (0.0001 × 50110.02 = 5.011002 → 5.02).
    assert_invalid(
        &desk.rfq(&trader, &json!({"instrument": "BTC-USD", "side": "buy", "quote_quantity": "0"})),
        "quote_quantity",
    );
    assert_invalid(
        &desk.rfq(&trader, &json!({"instrument": "BTC-USD", "side": "buy", "quote_quantity": "5.01"})),
        "quote_quantity",
    );
    assert_eq!(by_amount("buy", "5.02"), ("0.00010000".into(), "50110.02".into()));
}

/// A quote-amount RFQ large enough for a size band must get the band's spread, exactly as the same size asked for
/// in base units does.
#[test]
fn quote_quantity_gets_the_size_band_spread() {
    let desk = TestDesk::relaxed();
    desk.put_tier(
        "banded",
        &json!({"spread_bps": "10", "bands": [{"notional_usd_min": "1000000", "spread_bps": "5"}]}),
    );
    let (_, trader) = desk.client("Banded Amounts", "banded", "approved");
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    // 25 BTC (1,250,125 USD at the mid) is in the 5 bps band: 50010 × 1.0005 = 50035.005 → 50035.01.
    assert_eq!(desk.quote_price(&trader, "BTC-USD", "buy", "25"), "50035.01");
    // Spending 2,000,000 USD buys about 40 BTC, far inside the band: the same 50035.01 per BTC, and
    // 2,000,000 / 50035.01 = 39.97201... → 39.9720 BTC (cost 1,999,999.41972 → 1,999,999.42 USD; 39.9721 would cost 2,000,004.43).
    let reply = desk.rfq(&trader, &json!({"instrument": "BTC-USD", "side": "buy", "quote_quantity": "2000000"}));
    let quote = reply.expect(201);
    assert_eq!((text(&quote["price"]), text(&quote["quantity"])), ("50035.01".into(), "39.97200000".into()), "{quote}");
}

#[test]
fn inventory_skew_shades_both_sides() {
    let desk = TestDesk::relaxed();
    let trader = desk.trader("Skewed");
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    desk.set_price("ETH-USD", "3000.00", "3001.00");
    // No skew yet: 50110.02 / 49900.00.
    assert_prices(&desk, &trader, &[("BTC-USD", "buy", "1", "50110.02"), ("BTC-USD", "sell", "1", "49900.00")]);

    let skew =
        desk.put(&desk.admin, "/v1/admin/skew/BTC", &json!({"bps_per_unit": "1", "max_bps": "5"})).expect(200).clone();
    assert_eq!(skew["current_bps"], json!("0"), "no position, no skew: {skew}");
    let funding = json!({"asset": "BTC", "amount": "3", "reference": "seed"});
    let position = desk.post(&desk.admin, "/v1/admin/desk/funding", &funding).expect(201).clone();
    assert_eq!(
        (position["position"].clone(), position["skew_bps"].clone()),
        (json!("3.00000000"), json!("3")),
        "{position}"
    );
    let positions = desk.get(&desk.admin, "/v1/admin/desk/positions").expect(200).clone();
    let btc = positions["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["asset"] == "BTC")
        .expect("a BTC line")
        .clone();
    assert_eq!((btc["position"].clone(), btc["skew_bps"].clone()), (json!("3.00000000"), json!("3")), "{positions}");

    // Long 3 BTC at 1 bps per BTC: skew 3 bps shades both sides down.
    // buy: 50010.00 × (1 + (20 − 3)/10000) = 50010.00 × 1.0017 = 50095.017 → 50095.02.
    // sell: 50000.00 × (1 − (20 + 3)/10000) = 50000.00 × 0.9977 = 49885.00.
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    assert_prices(&desk, &trader, &[("BTC-USD", "buy", "1", "50095.02"), ("BTC-USD", "sell", "1", "49885.00")]);
    // Only instruments with BTC as base: ETH-USD keeps 3001.00 × 1.002 = 3007.002 → 3007.01 and 3000 × 0.998 = 2994.00.
    assert_prices(&desk, &trader, &[("ETH-USD", "buy", "1", "3007.01"), ("ETH-USD", "sell", "1", "2994.00")]);

    // 8 BTC long would be 8 bps, capped at 5: 50010.00 × 1.0015 = 50085.015 → 50085.02; 50000.00 × 0.9975 = 49875.00.
    let more = json!({"asset": "BTC", "amount": "5", "reference": "seed-2"});
    let position = desk.post(&desk.admin, "/v1/admin/desk/funding", &more).expect(201).clone();
    assert_eq!(
        (position["position"].clone(), position["skew_bps"].clone()),
        (json!("8.00000000"), json!("5")),
        "{position}"
    );
    assert_prices(&desk, &trader, &[("BTC-USD", "buy", "1", "50085.02"), ("BTC-USD", "sell", "1", "49875.00")]);
    let indicative = desk.get(&trader, "/v1/prices/BTC-USD?quantity=1").expect(200).clone();
    assert_eq!(
        (indicative["bid"].clone(), indicative["ask"].clone()),
        (json!("49875.00"), json!("50085.02")),
        "{indicative}"
    );
}

#[test]
fn an_instrument_without_a_book_is_priced_through_its_usd_legs() {
    let desk = TestDesk::relaxed();
    let trader = desk.trader("Cross Standard");
    // No ETH-EUR price at all: no legs either → price_unavailable.
    let refused = desk.rfq(&trader, &json!({"instrument": "ETH-EUR", "side": "buy", "quantity": "1"}));
    assert_problem(&refused, 503, "price_unavailable");
    desk.set_price("ETH-USD", "2999.00", "3000.00");
    desk.set_price("EUR-USD", "1.08000", "1.08100");
    // Buy 1 ETH: 3000.00 USD, raised by selling EUR at 1.08000 → 2777.777… EUR (rounded up to 2777.78 per ETH),
    // then × 1.002 (20 bps) = 2783.33355… → up to the 0.01 increment: 2783.34.
    assert_eq!(desk.quote_price(&trader, "ETH-EUR", "buy", "1"), "2783.34");
    // Sell 1 ETH: 2999.00 USD buys EUR at 1.08100 → 2774.2830… (down to 2774.28), × 0.998 = 2768.73144 → 2768.73.
    assert_eq!(desk.quote_price(&trader, "ETH-EUR", "sell", "1"), "2768.73");
    // Once ETH-EUR has a book of its own, that book is used.
    desk.set_price("ETH-EUR", "2700.00", "2701.00");
    // 2701.00 × 1.002 = 2706.402 → 2706.41.
    assert_eq!(desk.quote_price(&trader, "ETH-EUR", "buy", "1"), "2706.41");
}
