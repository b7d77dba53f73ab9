//! Reports (docs/reports.md) against hand-computed figures from a scripted session on manual prices, the trade
//! log across a restart, the CLI's exports, and a surveillance alert in the alert list.

use otcd_testkit::http::text;
use otcd_testkit::process::{run_otcd, TestDesk};
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};

const BOOK: (&str, &str) = ("49990.00", "50010.00");

fn price(desk: &TestDesk) {
    desk.set_price("BTC-USD", BOOK.0, BOOK.1);
}

fn market(desk: &TestDesk, key: &Signer, id: &str, side: &str, quantity: &str) -> Value {
    price(desk);
    let body =
        json!({"client_order_id": id, "type": "market", "instrument": "BTC-USD", "side": side, "quantity": quantity});
    desk.post(key, "/v1/orders", &body).expect(201).clone()
}

fn report(desk: &TestDesk, path: &str) -> Value {
    desk.get(&desk.admin, path).expect(200).clone()
}

fn csv(desk: &TestDesk, path: &str) -> String {
    let reply = desk.get(&desk.admin, path);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("content-type"), Some("text/csv; charset=utf-8"));
    reply.text
}

/// The CSV a JSON page must correspond to, column by column.
fn csv_of(json: &Value, columns: &[&str]) -> String {
    let mut out = columns.join(",") + "\r\n";
    for item in json["items"].as_array().unwrap() {
        let fields: Vec<String> = columns
            .iter()
            .map(|column| match &item[*column] {
                Value::Null => String::new(),
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect();
        out += &(fields.join(",") + "\r\n");
    }
    out
}

const TRADE_COLUMNS: &[&str] = &[
    "trade_id",
    "order_id",
    "client_id",
    "instrument",
    "side",
    "price",
    "quantity",
    "quote_amount",
    "notional_usd",
    "spread_revenue",
    "spread_revenue_usd",
    "executed_at",
    "seq",
    "fee",
];

#[test]
fn reports_match_hand_computed_figures_and_survive_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    let desk = TestDesk::start_in(directory.path());
    let buyer = desk.new_client("Buyer Capital");
    let seller = desk.new_client("Seller Fund");
    desk.deposit(&buyer, "USD", "200000.00", "wire-1").expect(201);
    desk.deposit(&seller, "BTC", "2", "wire-2").expect(201);
    desk.deposit(&seller, "USD", "50000.00", "wire-3").expect(201);
    let buyer_key = desk.client_key(&buyer, &["read", "trade"]);
    let seller_key = desk.client_key(&seller, &["read", "trade"]);

    // Standard tier, 20 bps. Buy 1 BTC: 50,010.00 × 1.002 = 50,110.02; reference 50,010.00: revenue 100.02.
    let first = market(&desk, &buyer_key, "b-1", "buy", "1");
    assert_eq!(first["average_price"], "50110.02");
    // Sell 0.5 BTC: 49,990.00 × 0.998 = 49,890.02, proceeds 24,945.01; reference 24,995.00: revenue 49.99.
    market(&desk, &seller_key, "s-1", "sell", "0.5");
    // An RFQ for 0.5 BTC accepted: 25,055.01 paid against a reference of 25,005.00: revenue 50.01.
    price(&desk);
    let quote = desk
        .post(&buyer_key, "/v1/rfq", &json!({"instrument": "BTC-USD", "side": "buy", "quantity": "0.5"}))
        .expect(201)
        .clone();
    assert_eq!(quote["price"], "50110.02");
    let body = json!({"client_order_id": "b-2", "type": "quote", "quote_id": quote["quote_id"]});
    desk.post(&buyer_key, "/v1/orders", &body).expect(201);

    // The trade log, filtered and paged.
    let all = report(&desk, "/v1/admin/trades");
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{all}");
    let fields = |item: &Value| {
        ["client_id", "side", "price", "quantity", "quote_amount", "spread_revenue", "spread_revenue_usd"]
            .map(|field| text(&item[field]))
    };
    assert_eq!(fields(&items[0]), [&buyer, "buy", "50110.02", "1.00000000", "50110.02", "100.02", "100.02"]);
    assert_eq!(fields(&items[1]), [&seller, "sell", "49890.02", "0.50000000", "24945.01", "49.99", "49.99"]);
    assert_eq!(fields(&items[2]), [&buyer, "buy", "50110.02", "0.50000000", "25055.01", "50.01", "50.01"]);
    let buys =
        report(&desk, &format!("/v1/admin/trades?client_id={buyer}&side=buy&asset=BTC&instrument=BTC-USD&limit=1"));
    assert_eq!(buys["items"].as_array().unwrap().len(), 1);
    assert_eq!(buys["items"][0]["trade_id"], "t_000000000001");
    let cursor = text(&buys["next_cursor"]);
    let next = report(&desk, &format!("/v1/admin/trades?client_id={buyer}&side=buy&limit=1&cursor={cursor}"));
    assert_eq!(next["items"][0]["trade_id"], "t_000000000003");
    assert_eq!(next["next_cursor"], Value::Null);
    let window_start = text(&items[1]["executed_at"]);
    let windowed = report(&desk, &format!("/v1/admin/trades?from={window_start}&to=2100-01-01T00:00:00Z"));
    assert_eq!(windowed["items"].as_array().unwrap().len(), 2);
    let trades_csv = csv(&desk, "/v1/admin/trades?format=csv");
    assert_eq!(trades_csv, csv_of(&all, TRADE_COLUMNS));

    // Positions and P&L by average cost: short 1 BTC at 50,110.02, half bought back at 49,890.02 (+110.00),
    // then short 0.5 more at 50,110.02.
    let positions = report(&desk, "/v1/admin/reports/positions");
    let row =
        |asset: &str| positions["items"].as_array().unwrap().iter().find(|row| row["asset"] == asset).unwrap().clone();
    let btc = row("BTC");
    assert_eq!(
        [&btc["traded_position"], &btc["cost_basis_usd"], &btc["average_cost_usd"], &btc["realized_pnl_usd"]],
        [&json!("-1.00000000"), &json!("-50110.02"), &json!("50110.02"), &json!("110.00")]
    );
    assert_eq!(row("USD")["traded_position"], "50220.02");
    assert_eq!(positions["total_realized_pnl_usd"], "110.00");

    // Spread revenue, and volumes by client, instrument and UTC day.
    let revenue = report(&desk, "/v1/admin/reports/revenue");
    assert_eq!(revenue["total_spread_revenue_usd"], "200.02");
    assert_eq!(revenue["items"][0]["spread_revenue"], "200.02");
    assert_eq!(revenue["items"][0]["trades_with_reference"], 3);
    assert_eq!(revenue["total_fee_revenue_usd"], "0.00");
    let volume = report(&desk, "/v1/admin/reports/volume");
    let volumes = volume["items"].as_array().unwrap();
    let of = |client: &str| volumes.iter().find(|row| row["client_id"] == client).unwrap().clone();
    let (bought, sold) = (of(&buyer), of(&seller));
    assert_eq!(
        [&bought["trades"], &bought["buy_quantity"], &bought["quote_volume"]],
        [&json!(2), &json!("1.50000000"), &json!("75165.03")]
    );
    assert_eq!(
        [&sold["trades"], &sold["sell_quantity"], &sold["quote_volume"]],
        [&json!(1), &json!("0.50000000"), &json!("24945.01")]
    );
    assert_eq!(bought["day"], text(&items[0]["executed_at"])[..10]);

    // The buyer's USD statement: running balance after each entry.
    let statement = report(&desk, &format!("/v1/admin/reports/statement?client_id={buyer}&asset=USD"));
    let lines: Vec<[String; 4]> = statement["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| ["kind", "balance_before", "amount", "balance_after"].map(|field| text(&line[field])))
        .collect();
    assert_eq!(
        lines,
        [
            ["deposit", "0.00", "200000.00", "200000.00"],
            ["trade", "200000.00", "-50110.02", "149889.98"],
            ["trade", "149889.98", "-25055.01", "124834.97"],
        ]
        .map(|line| line.map(str::to_owned))
    );
    let statement_csv = csv(&desk, &format!("/v1/admin/reports/statement?client_id={buyer}&asset=USD&format=csv"));
    let columns = [
        "position",
        "at",
        "transaction",
        "kind",
        "reference",
        "asset",
        "account",
        "balance_before",
        "amount",
        "balance_after",
    ];
    assert_eq!(statement_csv, csv_of(&statement, &columns));
    let kyc = report(&desk, &format!("/v1/admin/reports/kyc?client_id={buyer}"));
    assert_eq!(kyc["items"][0]["kyc_status"], "approved");

    // Refusals are problem+json with stable codes.
    let reply = desk.get(&desk.admin, "/v1/admin/reports/statement");
    assert_eq!((reply.status, text(&reply.body["code"])), (400, "invalid_request".into()));
    assert_eq!(desk.get(&desk.admin, "/v1/admin/trades?limit=1001").status, 400);
    assert_eq!(desk.get(&desk.admin, "/v1/admin/reports/nothing").status, 404);
    assert_eq!(desk.get(&buyer_key, "/v1/admin/trades").status, 403);

    // A round trip of the same size by one client within five minutes: a wash-trade alert in the alert list.
    market(&desk, &seller_key, "s-2", "buy", "0.5");
    let alerts = crate::surveillance::wait_for_alerts(&desk, "surveillance_wash_trade", 1);
    let alert = alerts[0].clone();
    assert_eq!(alert["client_id"], seller.as_str());
    assert_eq!(alert["trade_ids"], json!(["t_000000000002", "t_000000000004"]));
    assert_eq!(alert["source"], "surveillance");

    // After a restart the projection is rebuilt from the journal: the same trade log, the same alert.
    let before = csv(&desk, "/v1/admin/trades?format=csv");
    let alerts_before = report(&desk, "/v1/admin/reports/alerts");
    let desk = desk.restart();
    assert_eq!(csv(&desk, "/v1/admin/trades?format=csv"), before);
    assert_eq!(report(&desk, "/v1/admin/reports/alerts")["items"], alerts_before["items"]);
    desk.terminate();

    // The CLI reads the same journal and writes the same export.
    let output = run_otcd(&["report", "trades", "--format", "csv"], directory.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), before);
    let output = run_otcd(&["report", "revenue"], directory.path());
    let revenue: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(revenue["total_spread_revenue_usd"], "250.03");
}
