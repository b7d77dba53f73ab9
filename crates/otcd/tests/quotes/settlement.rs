//! Destinations, withdrawals and their settlement through the simulated rails, and compliance screening on the
//! real sanctions lists (`../shared/data/sanctions`): onboarding, destination addresses, the screen endpoint and
//! alerts.

use crate::support::{assert_invalid, assert_problem, text, Desk, Signer, RELAXED_CONFIG};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FAST_RAILS: &str = "settlement_confirm_after_ms = 200\nsettlement_bank_confirm_after_ms = 200\n";

fn sanctions_dir() -> String {
    let dir = std::env::var("OTCD_SANCTIONS_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/sanctions").to_owned());
    assert!(
        std::path::Path::new(&dir).join("ofac/sdn.csv").is_file(),
        "sanctions lists not found at {dir} (set OTCD_SANCTIONS_DIR)"
    );
    dir
}

/// An approved client with read, trade and withdraw scopes and 2 BTC.
fn withdrawer(desk: &Desk, name: &str) -> (String, Signer) {
    let (client_id, _) = desk.client(name, "standard", "approved");
    let body = json!({"scopes": ["read", "trade", "withdraw"], "algorithm": "hmac"});
    let key = desk.post(&desk.admin, &format!("/v1/admin/clients/{client_id}/keys"), &body).expect(201).clone();
    let signer = Signer::new(&text(&key["key_id"]), &text(&key["secret"]));
    let deposit =
        json!({"client_id": client_id, "asset": "BTC", "amount": "2", "reference": format!("{client_id}-btc")});
    desk.post(&desk.admin, "/v1/admin/deposits", &deposit).expect(201);
    (client_id, signer)
}

fn btc(desk: &Desk, signer: &Signer) -> (String, String) {
    let items = desk.get(signer, "/v1/balances").expect(200)["items"].as_array().unwrap().clone();
    let line = items.iter().find(|item| item["asset"] == json!("BTC")).unwrap().clone();
    (text(&line["available"]), text(&line["reserved"]))
}

fn wait_for_withdrawal(desk: &Desk, signer: &Signer, withdrawal_id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let withdrawal = desk.get(signer, &format!("/v1/withdrawals/{withdrawal_id}")).expect(200).clone();
        if withdrawal["status"] == json!(status) || Instant::now() > deadline {
            assert_eq!(withdrawal["status"], json!(status), "{withdrawal}");
            return withdrawal;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const BECH32: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

#[test]
fn a_withdrawal_reserves_at_once_and_leaves_the_balance_when_the_custodian_confirms() {
    let config = format!("{RELAXED_CONFIG}{FAST_RAILS}");
    let desk = Desk::with_config(Some(&config));
    let (_, client) = withdrawer(&desk, "Withdrawing Fund");
    let destination = desk
        .post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32.to_uppercase()}))
        .expect(201)
        .clone();
    assert_eq!(destination["status"], json!("approved"), "{destination}");
    assert_eq!(destination["address"], json!(BECH32), "normalized to lowercase: {destination}");
    assert_eq!(destination["network"], json!("bitcoin"), "{destination}");
    let body = json!({"client_withdrawal_id": "w-1", "asset": "BTC", "amount": "0.5", "destination_id": destination["destination_id"]});
    let withdrawal = desk.post(&client, "/v1/withdrawals", &body).expect(201).clone();
    assert_eq!(withdrawal["status"], json!("pending"), "{withdrawal}");
    assert_eq!(btc(&desk, &client), ("1.50000000".into(), "0.50000000".into()));
    let repeat = desk.post(&client, "/v1/withdrawals", &body);
    assert_eq!(repeat.expect(200)["withdrawal_id"], withdrawal["withdrawal_id"]);
    let mut changed = body.clone();
    changed["amount"] = json!("0.4");
    assert_problem(&desk.post(&client, "/v1/withdrawals", &changed), 409, "conflict");
    let done = wait_for_withdrawal(&desk, &client, &text(&withdrawal["withdrawal_id"]), "completed");
    assert!(text(&done["external_reference"]).starts_with("sim-"), "{done}");
    assert_eq!(btc(&desk, &client), ("1.50000000".into(), "0.00000000".into()));
    let all = desk.get(&desk.admin, "/v1/admin/withdrawals").expect(200).clone();
    assert_eq!(all["items"][0]["status"], json!("completed"), "{all}");
}

#[test]
fn a_failed_payout_releases_the_reservation() {
    let config = format!("{RELAXED_CONFIG}{FAST_RAILS}settlement_failure_percent = 100\n");
    let desk = Desk::with_config(Some(&config));
    let (_, client) = withdrawer(&desk, "Returned Payment");
    let destination =
        desk.post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})).expect(201).clone();
    let body = json!({"client_withdrawal_id": "w-f", "asset": "BTC", "amount": "1", "destination_id": destination["destination_id"]});
    let withdrawal = desk.post(&client, "/v1/withdrawals", &body).expect(201).clone();
    let failed = wait_for_withdrawal(&desk, &client, &text(&withdrawal["withdrawal_id"]), "failed");
    assert!(failed["failure_reason"].is_string(), "{failed}");
    assert_eq!(btc(&desk, &client), ("2.00000000".into(), "0.00000000".into()));
}

#[test]
fn bad_destinations_and_withdrawals_are_refused_with_their_codes_and_move_nothing() {
    let desk = Desk::start();
    let (_, client) = withdrawer(&desk, "Careful Client");
    // A one-character change breaks the bech32 checksum; an Ethereum address is not a Bitcoin one.
    assert_invalid(
        &desk.post(
            &client,
            "/v1/destinations",
            &json!({"asset": "BTC", "address": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"}),
        ),
        "address",
    );
    assert_invalid(
        &desk.post(
            &client,
            "/v1/destinations",
            &json!({"asset": "BTC", "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}),
        ),
        "address",
    );
    assert_invalid(
        &desk.post(&client, "/v1/destinations", &json!({"asset": "EUR", "address": "DE89370400440532013001"})),
        "address",
    );
    let iban = desk
        .post(&client, "/v1/destinations", &json!({"asset": "EUR", "address": "de89 3704 0044 0532 0130 00"}))
        .expect(201)
        .clone();
    assert_eq!(iban["address"], json!("DE89370400440532013000"), "{iban}");
    let destination =
        desk.post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})).expect(201).clone();
    let id = text(&destination["destination_id"]);
    let withdraw = |amount: &str, destination_id: &str, reference: &str| {
        let body = json!({"client_withdrawal_id": reference, "asset": "BTC", "amount": amount, "destination_id": destination_id});
        desk.post(&client, "/v1/withdrawals", &body)
    };
    assert_problem(&withdraw("3", &id, "too-much"), 422, "insufficient_funds");
    assert_invalid(&withdraw("1", &text(&iban["destination_id"]), "wrong-asset"), "destination_id");
    desk.patch(&desk.admin, &format!("/v1/admin/destinations/{id}"), &json!({"status": "rejected"})).expect(200);
    assert_problem(&withdraw("1", &id, "rejected"), 422, "destination_not_approved");
    desk.patch(&desk.admin, &format!("/v1/admin/destinations/{id}"), &json!({"status": "approved"})).expect(200);
    desk.put(&desk.admin, "/v1/admin/jurisdictions/DE", &json!({"blocked": false, "blocked_assets": ["BTC"]}))
        .expect(200);
    assert_problem(&withdraw("1", &id, "blocked"), 403, "jurisdiction_restricted");
    // A key without the withdraw scope is forbidden.
    let (client_id, _) = desk.client("Trade Only", "standard", "approved");
    let trade_only = desk.key_for(&client_id);
    assert_problem(
        &desk.post(&trade_only, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})),
        403,
        "forbidden",
    );
    assert_eq!(btc(&desk, &client), ("2.00000000".into(), "0.00000000".into()));
}

#[test]
fn screening_on_real_lists_holds_listed_clients_rejects_listed_addresses_and_raises_alerts() {
    let dir = sanctions_dir();
    let desk = Desk::with_args(Some(RELAXED_CONFIG), &["--sanctions-dir", &dir]);
    let found =
        desk.get(&desk.admin, "/v1/admin/sanctions/screen?name=Jorge%20Milton%20Cifuentes%20Villa").expect(200).clone();
    let best = &found["matches"][0];
    assert_eq!(best["list"], json!("ofac_sdn"), "{found}");
    assert!(best["score"].as_f64().unwrap() >= 0.99, "{found}");
    let clear = desk.get(&desk.admin, "/v1/admin/sanctions/screen?name=Zbigniew%20Kowalczykowski").expect(200).clone();
    assert!(clear["matches"].as_array().unwrap().iter().all(|item| item["score"].as_f64().unwrap() < 0.85), "{clear}");
    // Onboarding a listed name: created, but held pending with an alert; KYC cannot be approved until cleared.
    let body = json!({"name": "Jorge Milton Cifuentes Villa", "jurisdiction": "CO", "tier": "standard", "kyc_status": "approved", "settlement": "prefunded"});
    let client = desk.post(&desk.admin, "/v1/admin/clients", &body).expect(201).clone();
    assert_eq!(client["screening"]["status"], json!("hit"), "{client}");
    assert_eq!(client["kyc_status"], json!("pending"), "{client}");
    let client_id = text(&client["client_id"]);
    let approve =
        desk.patch(&desk.admin, &format!("/v1/admin/clients/{client_id}"), &json!({"kyc_status": "approved"}));
    assert_problem(&approve, 409, "conflict");
    let alerts = desk.get(&desk.admin, "/v1/admin/alerts").expect(200).clone();
    let alert = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|alert| alert["client_id"] == json!(client_id))
        .unwrap()
        .clone();
    assert_eq!(
        (alert["kind"].clone(), alert["status"].clone()),
        (json!("sanctions_screening"), json!("open")),
        "{alert}"
    );
    let path = format!("/v1/admin/alerts/{}", text(&alert["alert_id"]));
    let updated = desk
        .patch(&desk.admin, &path, &json!({"status": "investigating", "note": "checking date of birth"}))
        .expect(200)
        .clone();
    assert_eq!(updated["notes"][0]["text"], json!("checking date of birth"), "{updated}");
    // A destination on OFAC's digital currency addresses is rejected and raises an alert.
    let (_, holder) = withdrawer(&desk, "Clean Holder");
    let listed = desk
        .post(&holder, "/v1/destinations", &json!({"asset": "BTC", "address": "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h"}))
        .expect(201)
        .clone();
    assert_eq!(listed["status"], json!("rejected"), "{listed}");
    let alerts = desk.get(&desk.admin, "/v1/admin/alerts?status=open").expect(200).clone();
    assert!(
        alerts["items"].as_array().unwrap().iter().any(|alert| alert["kind"] == json!("sanctions_address")),
        "{alerts}"
    );
}

#[test]
fn structuring_deposits_raise_an_alert_with_their_evidence() {
    let desk = Desk::start();
    let (client_id, _) = desk.client("Structurer", "standard", "approved");
    for (number, amount) in ["9500.00", "9800.00", "9900.00"].iter().enumerate() {
        let body =
            json!({"client_id": client_id, "asset": "USD", "amount": amount, "reference": format!("cash-{number}")});
        desk.post(&desk.admin, "/v1/admin/deposits", &body).expect(201);
    }
    let alerts = desk.get(&desk.admin, &format!("/v1/admin/alerts?client_id={client_id}")).expect(200).clone();
    let items = alerts["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{alerts}");
    assert_eq!(items[0]["kind"], json!("structuring"), "{alerts}");
    assert!(text(&items[0]["evidence"]).contains("cash-2"), "{alerts}");
}
