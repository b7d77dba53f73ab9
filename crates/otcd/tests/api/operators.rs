//! Operators as the console uses them: a read-only operator key reads every operator endpoint and is refused every
//! change (nothing moves); an operator's changes are journaled with its key; the review queues and key lists the
//! console's actions work from (`GET /v1/admin/destinations`, `GET /v1/admin/keys`).

use otcd_testkit::http::{assert_problem, text};
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};

fn desk_key(desk: &TestDesk, scopes: &[&str]) -> Signer {
    let created = desk.post(&desk.admin, "/v1/admin/keys", &json!({"scopes": scopes, "algorithm": "hmac"}));
    let created = created.expect(201).clone();
    Signer::hmac(&text(&created["key_id"]), &text(&created["secret"]))
}

#[test]
fn a_read_only_operator_key_reads_every_operator_view_and_changes_nothing() {
    let desk = TestDesk::relaxed();
    let (client_id, _) = desk.client("Pending Prospect", "standard", "pending");
    let watcher = desk_key(&desk, &["read"]);
    for path in [
        "/v1/admin/clients".to_owned(),
        format!("/v1/admin/clients/{client_id}"),
        "/v1/admin/alerts".to_owned(),
        "/v1/admin/trading".to_owned(),
        "/v1/admin/tiers".to_owned(),
        "/v1/admin/keys".to_owned(),
        "/v1/admin/destinations".to_owned(),
        "/v1/admin/withdrawals".to_owned(),
        "/v1/admin/desk/exposure".to_owned(),
        "/v1/admin/console/trades".to_owned(),
        format!("/v1/account?client_id={client_id}"),
    ] {
        desk.get(&watcher, &path).expect(200);
    }
    // Every change is refused cleanly, and nothing moves.
    let refusals = [
        desk.patch(&watcher, &format!("/v1/admin/clients/{client_id}"), &json!({"kyc_status": "approved"})),
        desk.put(&watcher, "/v1/admin/desk/kill-switch", &json!({"engaged": true, "reason": "test"})),
        desk.put(&watcher, "/v1/admin/instruments/BTC-USD", &json!({"halted": true})),
        desk.post(&watcher, "/v1/admin/keys", &json!({"scopes": ["read"], "algorithm": "hmac"})),
        desk.post(&watcher, "/v1/admin/settlements/run", &json!({})),
    ];
    for refused in &refusals {
        let problem = assert_problem(refused, 403, "forbidden");
        assert!(text(&problem["detail"]).contains("admin"), "{problem}");
    }
    let client = desk.get(&desk.admin, &format!("/v1/admin/clients/{client_id}")).expect(200).clone();
    assert_eq!(client["kyc_status"], json!("pending"), "{client}");
    let trading = desk.get(&desk.admin, "/v1/admin/trading").expect(200).clone();
    assert_eq!(trading["kill_switch"]["engaged"], json!(false), "{trading}");

    // Its session token (what the console holds) is read-only too: a desk session without a client.
    let session = desk.post(&watcher, "/v1/sessions", &json!({})).expect(201).clone();
    assert_eq!((session["client_id"].clone(), session["scopes"].clone()), (Value::Null, json!(["read"])), "{session}");
    let bearer = |method: &str, path: &str, body: &str| {
        let headers = vec![("Authorization".to_owned(), format!("Bearer {}", text(&session["token"])))];
        desk.send(method, path, body, &headers)
    };
    bearer("GET", "/v1/admin/alerts", "").expect(200);
    assert_problem(&bearer("PUT", "/v1/admin/desk/kill-switch", r#"{"engaged": true}"#), 403, "forbidden");
    // A client key with `read` is no operator.
    let (_, client_key) = desk.client("Some Client", "standard", "approved");
    assert_problem(&desk.get(&client_key, "/v1/admin/clients"), 403, "forbidden");
}

#[test]
fn an_operators_change_is_recorded_with_its_key() {
    let desk = TestDesk::relaxed();
    let (client_id, _) = desk.client("Reviewed Client", "standard", "pending");
    let operator = desk_key(&desk, &["read", "admin"]);
    desk.patch(&operator, &format!("/v1/admin/clients/{client_id}"), &json!({"kyc_status": "approved"})).expect(200);
    let client = desk.get(&desk.admin, &format!("/v1/admin/clients/{client_id}")).expect(200).clone();
    let last = client["kyc_history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["status"].clone(), last["by"].clone()), (json!("approved"), json!(operator.key_id)), "{client}");
}

#[test]
fn destinations_under_review_and_keys_are_listed_for_operators() {
    let desk = TestDesk::relaxed();
    let (client_id, _) = desk.client("Address Owner", "standard", "approved");
    let client = desk.client_key(&client_id, &["read", "withdraw"]);
    let address = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
    let destination =
        desk.post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": address})).expect(201).clone();
    let destination_id = text(&destination["destination_id"]);
    let held = desk.patch(
        &desk.admin,
        &format!("/v1/admin/destinations/{destination_id}"),
        &json!({"status": "pending_review"}),
    );
    held.expect(200);
    let queue = desk.get(&desk.admin, "/v1/admin/destinations?status=pending_review").expect(200).clone();
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{queue}");
    assert_eq!(
        (items[0]["destination_id"].clone(), items[0]["client_id"].clone()),
        (json!(destination_id), json!(client_id))
    );
    let approved = desk.get(&desk.admin, "/v1/admin/destinations?status=approved").expect(200).clone();
    assert_eq!(approved["items"], json!([]), "{approved}");
    assert_problem(&desk.get(&desk.admin, "/v1/admin/destinations?status=maybe"), 400, "invalid_request");

    // Keys: a client's (no secrets, newest first, revoked ones marked), or the desk's without client_id.
    let second = desk.client_key(&client_id, &["read"]);
    desk.delete(&desk.admin, &format!("/v1/admin/keys/{}", second.key_id)).expect(200);
    let keys = desk.get(&desk.admin, &format!("/v1/admin/keys?client_id={client_id}")).expect(200).clone();
    let items = keys["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{keys}");
    assert!(items.iter().all(|key| key.get("secret").is_none() && key["client_id"] == json!(client_id)), "{keys}");
    let revoked: Vec<&Value> = items.iter().filter(|key| !key["revoked_at"].is_null()).collect();
    assert_eq!(revoked.len(), 1, "{keys}");
    assert_eq!(revoked[0]["key_id"], json!(second.key_id), "{keys}");
    let desk_keys = desk.get(&desk.admin, "/v1/admin/keys").expect(200).clone();
    assert!(
        desk_keys["items"].as_array().unwrap().iter().any(|key| key["key_id"] == json!(desk.admin.key_id)),
        "{desk_keys}"
    );
    assert!(desk_keys["items"].as_array().unwrap().iter().all(|key| key["client_id"].is_null()), "{desk_keys}");
}
