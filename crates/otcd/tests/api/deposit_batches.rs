//! Deposit batches (`POST /v1/admin/deposits/batch`): one signed request, one answer per item in request order
//! with the single endpoint's statuses and problems, idempotency by reference across both endpoints, refused
//! batches that change nothing, and a `200` that survives `kill -9`.

use otcd_testkit::http::{assert_invalid, assert_problem, text, Reply};
use otcd_testkit::process::TestDesk;
use serde_json::{json, Value};

const BATCH: &str = "/v1/admin/deposits/batch";

fn item(client_id: &str, asset: &str, amount: &str, reference: &str) -> Value {
    json!({"client_id": client_id, "asset": asset, "amount": amount, "reference": reference})
}

fn batch(desk: &TestDesk, items: &[Value]) -> Reply {
    desk.post(&desk.admin, BATCH, &json!({"deposits": items}))
}

/// The results of a `200` batch answer, asserting one per item.
#[track_caller]
fn results(reply: &Reply, items: usize) -> Vec<Value> {
    let results = reply.expect(200)["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), items, "one result per item: {}", reply.text);
    results
}

/// Asserts a refused item: its status, and a problem whose status, code and field are those of `single`, the
/// single endpoint's answer to the same item.
#[track_caller]
fn assert_refused_like(result: &Value, single: &Reply) {
    assert!(single.status >= 400, "the single endpoint refuses it too: {}", single.text);
    assert_eq!(result["status"], json!(single.status), "{result}");
    assert!(result.get("deposit").is_none(), "a refused item has no deposit: {result}");
    let problem = &result["problem"];
    for member in ["status", "code", "field"] {
        assert_eq!(problem[member], single.body[member], "problem {member}: {result} vs {}", single.text);
    }
    assert_eq!(problem["type"], json!(format!("/errors/{}", text(&problem["code"]))), "{result}");
}

#[test]
fn a_batch_answers_each_deposit_in_order_and_credits_only_the_accepted_ones() {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Batch Depositor Ltd");
    let earlier = desk.deposit(&client_id, "USD", "100.00", "wire-1");
    let earlier_id = text(&earlier.expect(201)["deposit_id"]);

    let items = [
        item(&client_id, "USD", "10.50", "batch-1"),
        item(&client_id, "USD", "100", "wire-1"),
        item("cl_99999999", "USD", "5.00", "batch-ghost"),
        item(&client_id, "USD", "1000000000001", "batch-too-much"),
        item(&client_id, "DOGE", "5", "batch-doge"),
        json!({"client_id": client_id, "asset": "USD", "amount": 5, "reference": "batch-number"}),
        json!({"client_id": client_id, "asset": "USD", "amount": "5", "reference": "batch-memo", "memo": "x"}),
        json!("not a deposit"),
        item(&client_id, "BTC", "0.5", "batch-2"),
        item(&client_id, "USD", "101.00", "wire-1"),
        item(&client_id, "USD", "0.001", "batch-scale"),
    ];
    let reply = batch(&desk, &items);
    assert_eq!(reply.header("content-type"), Some("application/json"), "{reply:?}");
    let results = results(&reply, items.len());

    assert_eq!(results[0]["status"], 201, "{}", reply.text);
    let first = &results[0]["deposit"];
    assert_eq!((text(&first["amount"]), text(&first["reference"])), ("10.50".into(), "batch-1".into()));
    assert_eq!((text(&first["client_id"]), text(&first["status"])), (client_id.clone(), "confirmed".into()));
    assert!(results[0].get("problem").is_none(), "{}", reply.text);
    assert_eq!(results[1]["status"], 200, "a repeat of wire-1: {}", reply.text);
    assert_eq!(results[1]["deposit"]["deposit_id"], json!(earlier_id));
    assert_eq!(results[8]["status"], 201, "{}", reply.text);
    assert_eq!(results[8]["deposit"]["amount"], "0.50000000");
    assert_ne!(results[0]["deposit"]["deposit_id"], results[8]["deposit"]["deposit_id"]);

    // Every refused item is refused as the single endpoint refuses it (the same items, sent alone afterwards).
    for index in [2, 3, 4, 5, 6, 9, 10] {
        let single = desk.post(&desk.admin, "/v1/admin/deposits", &items[index]);
        assert_refused_like(&results[index], &single);
    }
    assert_eq!(results[2]["problem"]["code"], "not_found");
    assert_eq!(
        (&results[3]["problem"]["code"], &results[3]["problem"]["field"]),
        (&json!("invalid_request"), &json!("amount"))
    );
    assert_eq!(results[6]["problem"]["field"], "memo");
    assert_eq!(results[9]["problem"]["code"], "conflict");
    assert_eq!(results[7]["status"], 400, "{}", reply.text);
    assert_eq!(results[7]["problem"]["code"], "invalid_request");

    assert_eq!(desk.available(&client_id, "USD"), "110.50");
    assert_eq!(desk.available(&client_id, "BTC"), "0.50000000");
    let references: Vec<String> = desk.ledger(&client_id, 100).iter().map(|entry| text(&entry["reference"])).collect();
    assert_eq!(references, ["wire-1", "batch-1", "batch-2"], "only the credited deposits are in the ledger");
}

#[test]
fn empty_over_long_and_malformed_batches_are_refused_and_change_nothing() {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Refused Batches Ltd");
    desk.deposit(&client_id, "USD", "1.00", "base-1").expect(201);
    let before = (desk.balances(&client_id), desk.ledger(&client_id, 1000));

    let over_long: Vec<Value> =
        (0..1_001).map(|index| item(&client_id, "USD", "1", &format!("long-{index}"))).collect();
    assert_invalid(&batch(&desk, &over_long), "deposits");
    assert_invalid(&batch(&desk, &[]), "deposits");
    let one = [item(&client_id, "USD", "1", "once")];
    let refused = [
        desk.post(&desk.admin, BATCH, &json!({})),
        desk.post(&desk.admin, BATCH, &json!({"deposits": one, "memo": "x"})),
        desk.post(&desk.admin, BATCH, &json!({"deposits": one[0]})),
        desk.post(&desk.admin, BATCH, &json!(one)),
        desk.signed(&desk.admin, "POST", BATCH, ""),
        desk.signed(&desk.admin, "POST", BATCH, r#"{"deposits": [{"client_id": "#),
    ];
    for reply in &refused {
        assert_problem(reply, 400, "invalid_request");
    }
    // Over the batch route's body limit (1 MiB): refused before it is read in full.
    let padded = format!(r#"{{"deposits": [{}], "pad": "{}"}}"#, one[0], "x".repeat(1024 * 1024));
    assert_problem(&desk.signed(&desk.admin, "POST", BATCH, &padded), 413, "payload_too_large");
    // Only the admin scope credits deposits.
    let trader = desk.client_key(&client_id, &["read", "trade"]);
    assert_problem(&desk.post(&trader, BATCH, &json!({"deposits": one})), 403, "forbidden");
    assert_eq!((desk.balances(&client_id), desk.ledger(&client_id, 1000)), before);

    // The most deposits a batch may hold, at their longest references and pretty-printed, fit the body limit.
    let full: Vec<Value> = (0..1_000).map(|index| item(&client_id, "USD", "0.01", &format!("{index:0>64}"))).collect();
    let body = serde_json::to_string_pretty(&json!({"deposits": full})).unwrap();
    let reply = desk.signed(&desk.admin, "POST", BATCH, &body);
    let results = results(&reply, 1_000);
    assert!(results.iter().all(|result| result["status"] == 201), "{}", reply.text);
    assert_eq!(desk.available(&client_id, "USD"), "11.00");
}

#[test]
fn references_are_idempotent_across_the_single_and_batch_endpoints() {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Idempotent Batches Ltd");
    let single_id = text(&desk.deposit(&client_id, "USD", "7.00", "single-1").expect(201)["deposit_id"]);

    let items = [
        item(&client_id, "USD", "7", "single-1"),
        item(&client_id, "EUR", "3.00", "batch-1"),
        item(&client_id, "EUR", "3", "batch-1"),
    ];
    let first = results(&batch(&desk, &items), 3);
    let statuses: Vec<&Value> = first.iter().map(|result| &result["status"]).collect();
    assert_eq!(statuses, [&json!(200), &json!(201), &json!(200)], "a reference repeated in the same batch too");
    assert_eq!(first[0]["deposit"]["deposit_id"], json!(single_id));
    let batch_id = text(&first[1]["deposit"]["deposit_id"]);
    assert_eq!(first[2]["deposit"]["deposit_id"], json!(batch_id));

    // The whole batch again: every item is a repeat, answered with the original.
    let again = results(&batch(&desk, &items), 3);
    for (before, after) in first.iter().zip(&again) {
        assert_eq!(after["status"], 200, "{after}");
        assert_eq!(after["deposit"], before["deposit"]);
    }
    // A batch's deposit repeated on the single endpoint, and refused there with a different amount.
    let single = desk.deposit(&client_id, "EUR", "3.00", "batch-1");
    assert_eq!(single.expect(200)["deposit_id"], json!(batch_id));
    assert_problem(&desk.deposit(&client_id, "EUR", "4.00", "batch-1"), 409, "conflict");
    assert_eq!(desk.available(&client_id, "USD"), "7.00");
    assert_eq!(desk.available(&client_id, "EUR"), "3.00");
    assert_eq!(desk.ledger(&client_id, 100).len(), 2);
}

#[test]
fn every_deposit_of_a_200_batch_survives_kill_9() {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Durable Batches Ltd");
    let mut credited = Vec::new();
    for round in 0..4 {
        let items: Vec<Value> =
            (0..250).map(|index| item(&client_id, "USD", "1.25", &format!("durable-{round}-{index}"))).collect();
        let results = results(&batch(&desk, &items), 250);
        assert!(results.iter().all(|result| result["status"] == 201), "round {round}");
        credited.extend(results.iter().map(|result| text(&result["deposit"]["deposit_id"])));
    }
    let desk = desk.crash_and_restart();
    assert_eq!(desk.available(&client_id, "USD"), "1250.00");
    let ledger = desk.ledger(&client_id, 1000);
    assert_eq!(ledger.len(), 1_000, "every acknowledged deposit is in the ledger after kill -9");
    // The same references again after the restart are repeats of the durable originals.
    let items: Vec<Value> =
        (0..250).map(|index| item(&client_id, "USD", "1.25", &format!("durable-3-{index}"))).collect();
    let results = results(&batch(&desk, &items), 250);
    for (result, deposit_id) in results.iter().zip(&credited[750..]) {
        assert_eq!((&result["status"], &result["deposit"]["deposit_id"]), (&json!(200), &json!(deposit_id)));
    }
    assert_eq!(desk.available(&client_id, "USD"), "1250.00");
}
