//! Deposits: exact decimal strings at asset scale, validation, idempotency by reference, ledger paging, and
//! refused requests that change nothing.

use otcd_testkit::http::{assert_invalid, assert_problem, text};
use otcd_testkit::process::TestDesk;
use serde_json::{json, Value};

fn desk_with_client() -> (TestDesk, String) {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Depositor Ltd");
    (desk, client_id)
}

fn scale_of(asset: &str) -> usize {
    match asset {
        "BTC" => 8,
        "ETH" => 18,
        "USDT" | "USDC" => 6,
        "USD" | "EUR" | "GBP" => 2,
        other => panic!("no scale for {other}"),
    }
}

/// Everything a refused request must leave alone.
fn state_of(desk: &TestDesk, client_id: &str) -> (Vec<(String, String, String)>, Vec<Value>) {
    (desk.balances(client_id), desk.ledger(client_id, 1000))
}

#[test]
fn balances_show_exact_decimals_at_the_asset_scale() {
    let (desk, client_id) = desk_with_client();
    let deposit = desk.deposit(&client_id, "BTC", "1.5", "wire-btc-1");
    let created = deposit.expect(201);
    assert!(created["deposit_id"].as_str().is_some_and(|id| !id.is_empty()), "{created}");
    assert_eq!(created["amount"], "1.50000000");
    desk.deposit(&client_id, "USD", "50050", "wire-usd-1").expect(201);
    desk.deposit(&client_id, "ETH", "0.000000000000000001", "wire-eth-1").expect(201);

    let key = desk.client_key(&client_id, &["read"]);
    let reply = desk.get(&key, "/v1/balances");
    let items = reply.expect(200)["items"].as_array().expect("items").clone();
    let available = |asset: &str| {
        let item = items.iter().find(|item| item["asset"] == asset).unwrap_or_else(|| panic!("no {asset}: {items:?}"));
        text(&item["available"])
    };
    assert_eq!(available("BTC"), "1.50000000");
    assert_eq!(available("USD"), "50050.00");
    assert_eq!(available("ETH"), "0.000000000000000001");
    for item in &items {
        let asset = text(&item["asset"]);
        for field in ["available", "reserved"] {
            let amount = text(&item[field]);
            let decimals = amount.split_once('.').map_or(0, |(_, fraction)| fraction.len());
            assert_eq!(decimals, scale_of(&asset), "{asset} {field} {amount:?} is not at scale");
        }
    }
    desk.deposit(&client_id, "USD", "0.01", "wire-usd-2").expect(201);
    assert_eq!(desk.available(&client_id, "USD"), "50050.01");
}

#[test]
fn a_json_number_amount_is_invalid() {
    let (desk, client_id) = desk_with_client();
    let body = json!({"client_id": client_id, "asset": "USD", "amount": 100, "reference": "number-1"});
    assert_invalid(&desk.post(&desk.admin, "/v1/admin/deposits", &body), "amount");
    let body = json!({"client_id": client_id, "asset": "BTC", "amount": 0.5, "reference": "number-2"});
    assert_invalid(&desk.post(&desk.admin, "/v1/admin/deposits", &body), "amount");
    assert_eq!(desk.available(&client_id, "USD"), "0.00");
    assert_eq!(desk.available(&client_id, "BTC"), "0.00000000");
}

#[test]
fn amounts_beyond_the_asset_scale_are_invalid() {
    let (desk, client_id) = desk_with_client();
    assert_invalid(&desk.deposit(&client_id, "USD", "0.001", "scale-1"), "amount");
    assert_invalid(&desk.deposit(&client_id, "BTC", "1.000000001", "scale-2"), "amount");
    assert_invalid(&desk.deposit(&client_id, "USDT", "1.0000001", "scale-3"), "amount");
    assert_eq!(desk.ledger(&client_id, 100), Vec::<Value>::new());
}

#[test]
fn zero_negative_and_malformed_amounts_are_invalid() {
    let (desk, client_id) = desk_with_client();
    for (index, amount) in
        ["0", "0.00", "-5.00", "-0.01", "abc", "1e3", "", " 1", "1,5", "+1", "NaN"].iter().enumerate()
    {
        let reply = desk.deposit(&client_id, "USD", amount, &format!("bad-{index}"));
        assert_invalid(&reply, "amount");
    }
    assert_eq!(desk.available(&client_id, "USD"), "0.00");
    assert_eq!(desk.ledger(&client_id, 100), Vec::<Value>::new());
}

#[test]
fn an_unknown_asset_or_client_is_refused() {
    let (desk, client_id) = desk_with_client();
    assert_invalid(&desk.deposit(&client_id, "DOGE", "10", "doge-1"), "asset");
    assert_problem(&desk.deposit("cl_99999999", "USD", "10.00", "ghost-1"), 404, "not_found");
    assert_eq!(desk.ledger(&client_id, 100), Vec::<Value>::new());
}

#[test]
fn a_repeated_reference_is_idempotent_and_a_different_body_conflicts() {
    let (desk, client_id) = desk_with_client();
    let first = desk.deposit(&client_id, "USD", "250.00", "wire-42");
    let deposit_id = text(&first.expect(201)["deposit_id"]);
    let again = desk.deposit(&client_id, "USD", "250.00", "wire-42");
    assert_eq!(again.expect(200)["deposit_id"], json!(deposit_id), "{}", again.text);
    assert_eq!(again.body["amount"], "250.00");
    // The same amount written differently is the same deposit.
    let same_value = desk.deposit(&client_id, "USD", "250", "wire-42");
    assert_eq!(same_value.expect(200)["deposit_id"], json!(deposit_id));

    assert_problem(&desk.deposit(&client_id, "USD", "251.00", "wire-42"), 409, "conflict");
    assert_problem(&desk.deposit(&client_id, "EUR", "250.00", "wire-42"), 409, "conflict");
    assert_eq!(desk.available(&client_id, "USD"), "250.00");
    assert_eq!(desk.available(&client_id, "EUR"), "0.00");
    assert_eq!(desk.ledger(&client_id, 100).len(), 1);

    // References are unique per client, not per desk.
    let other = desk.new_client("Other Depositor");
    let theirs = desk.deposit(&other, "USD", "999.00", "wire-42");
    assert_ne!(theirs.expect(201)["deposit_id"], json!(deposit_id));
    assert_eq!(desk.available(&other, "USD"), "999.00");
    assert_eq!(desk.available(&client_id, "USD"), "250.00");
}

#[test]
fn the_ledger_pages_through_every_entry_with_a_cursor() {
    let (desk, client_id) = desk_with_client();
    let deposits = [("USD", "100.00"), ("BTC", "0.25000000"), ("USD", "0.50"), ("EUR", "7.00"), ("ETH", "3")];
    for (index, (asset, amount)) in deposits.iter().enumerate() {
        desk.deposit(&client_id, asset, amount, &format!("page-{index}")).expect(201);
    }
    let walked = desk.ledger(&client_id, 1);
    let references: Vec<String> = walked.iter().map(|entry| text(&entry["reference"])).collect();
    assert_eq!(references, (0..5).map(|index| format!("page-{index}")).collect::<Vec<_>>());
    let mut entry_ids: Vec<String> = walked.iter().map(|entry| text(&entry["entry_id"])).collect();
    entry_ids.dedup();
    assert_eq!(entry_ids.len(), 5, "entry ids are distinct: {walked:?}");
    for entry in &walked {
        assert_eq!(entry["type"], "deposit", "{entry}");
    }
    assert_eq!(text(&walked[1]["amount"]), "0.25000000");
    assert_eq!(text(&walked[4]["amount"]), "3.000000000000000000");
    assert_eq!(text(&walked[2]["balance"]), "100.50", "running USD balance: {:?}", walked[2]);
    assert_eq!(desk.ledger(&client_id, 1000), walked, "one big page equals the walked pages");
    assert_eq!(desk.ledger(&client_id, 2), walked);

    let key = desk.client_key(&client_id, &["read"]);
    let usd = desk.get(&key, "/v1/ledger?asset=USD");
    let usd_references: Vec<String> =
        usd.expect(200)["items"].as_array().unwrap().iter().map(|e| text(&e["reference"])).collect();
    assert_eq!(usd_references, ["page-0", "page-2"]);
    for limit in ["0", "1001", "-1", "x"] {
        assert_problem(&desk.get(&key, &format!("/v1/ledger?limit={limit}")), 400, "invalid_request");
    }
    assert_invalid(&desk.get(&key, "/v1/ledger?cursor=not-a-cursor"), "cursor");
}

#[test]
fn refused_requests_change_nothing() {
    let (desk, client_id) = desk_with_client();
    desk.deposit(&client_id, "USD", "1000.00", "base-1").expect(201);
    desk.deposit(&client_id, "BTC", "2", "base-2").expect(201);
    let before = state_of(&desk, &client_id);

    let deposit_body = |extra: Value| {
        let mut body = json!({"client_id": client_id, "asset": "USD", "amount": "5", "reference": "refused-4"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let refused = [
        (desk.deposit(&client_id, "USD", "5.00", "base-1"), 409, "conflict"),
        (desk.deposit(&client_id, "USD", "0.001", "refused-1"), 400, "invalid_request"),
        (desk.deposit(&client_id, "XRP", "5", "refused-2"), 400, "invalid_request"),
        (desk.deposit(&client_id, "USD", "-5", "refused-3"), 400, "invalid_request"),
        (desk.post(&desk.admin, "/v1/admin/deposits", &deposit_body(json!({"amount": 5}))), 400, "invalid_request"),
        (desk.post(&desk.admin, "/v1/admin/deposits", &deposit_body(json!({"memo": "x"}))), 400, "invalid_request"),
        (desk.signed(&desk.admin, "POST", "/v1/admin/deposits", ""), 400, "invalid_request"),
        (desk.signed(&desk.admin, "POST", "/v1/admin/deposits", "[1, 2]"), 400, "invalid_request"),
        (desk.deposit(&client_id, "USD", "5.00", &"r".repeat(10_000)), 400, "invalid_request"),
    ];
    for (reply, status, code) in &refused {
        assert_problem(reply, *status, code);
    }
    assert_eq!(state_of(&desk, &client_id), before);
    // A refused reference is still free afterwards.
    desk.deposit(&client_id, "USD", "5.00", "refused-1").expect(201);
    assert_eq!(desk.available(&client_id, "USD"), "1005.00");
}
