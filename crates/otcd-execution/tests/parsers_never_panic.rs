//! Binance's answers are outside input: the parsers answer an error, never panic, whatever the bytes, and an
//! answer that parses never yields a negative quantity, price or fee.

use otcd_execution::binance_wire::{
    parse_balances, parse_order, parse_rounded, parse_trades, CallFailure, SymbolUnits,
};
use proptest::prelude::*;

fn units() -> SymbolUnits {
    SymbolUnits {
        instrument: "BTC-USDT".into(),
        symbol: "BTCUSDT".into(),
        base: "BTC".into(),
        quote: "USDT".into(),
        base_scale: 8,
        quote_scale: 6,
        price_scale: 2,
    }
}

fn decimal() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,12}(\\.[0-9]{0,20})?",
        "-?[0-9eE+.]{0,30}",
        Just("99999999999999999999999999999999999999".to_owned()),
    ]
}

fn order_json() -> impl Strategy<Value = String> {
    (
        any::<u64>(),
        prop::sample::select(vec!["NEW", "FILLED", "EXPIRED", "PARTIALLY_FILLED", "CANCELED", "X"]),
        prop::sample::select(vec!["BUY", "SELL", "HOLD"]),
        decimal(),
        prop::collection::vec((decimal(), decimal(), decimal(), prop::sample::select(vec!["BTC", "USDT", "BNB"]), any::<u64>()), 0..4),
    )
        .prop_map(|(id, status, side, executed, fills)| {
            let fills: Vec<String> = fills
                .iter()
                .map(|(price, qty, commission, asset, trade)| {
                    format!(r#"{{"price":"{price}","qty":"{qty}","commission":"{commission}","commissionAsset":"{asset}","tradeId":{trade}}}"#)
                })
                .collect();
            format!(
                r#"{{"orderId":{id},"status":"{status}","side":"{side}","executedQty":"{executed}","fills":[{}]}}"#,
                fills.join(",")
            )
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
        let _ = parse_order(&bytes, &units(), 1_000);
        let _ = parse_trades(&bytes, &units(), otcd_core::market::Side::Buy, 1_000, 1);
        let _ = parse_balances(&bytes, |_| Some(8));
        let _ = CallFailure::from_status(status, &bytes);
    }

    #[test]
    fn order_shaped_answers_never_panic_and_parse_to_sane_units(text in order_json(), fee in 0i128..100_000) {
        if let Ok(order) = parse_order(text.as_bytes(), &units(), fee) {
            prop_assert!(order.executed >= 0);
            for fill in order.fills.unwrap_or_default() {
                prop_assert!(fill.quantity > 0 && fill.price > 0 && fill.fee >= 0);
            }
        }
    }

    #[test]
    fn decimals_round_never_panic(text in decimal(), scale in 0u8..=20, up in any::<bool>()) {
        if let Some(value) = parse_rounded(&text, scale, up) {
            prop_assert!(value >= 0);
        }
    }
}
