//! Destinations, withdrawals and their settlement through the simulated rails, and compliance screening on the
//! real sanctions lists (`../shared/data/sanctions`): onboarding, destination addresses, the screen endpoint and
//! alerts.

use otcd_testkit::http::{assert_invalid, assert_problem, text};
use otcd_testkit::process::{TestDesk, RELAXED_CONFIG};
use otcd_testkit::signing::Signer;
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
fn withdrawer(desk: &TestDesk, name: &str) -> (String, Signer) {
    let (client_id, _) = desk.client(name, "standard", "approved");
    let signer = desk.client_key(&client_id, &["read", "trade", "withdraw"]);
    desk.deposit(&client_id, "BTC", "2", &format!("{client_id}-btc")).expect(201);
    (client_id, signer)
}

fn wait_for_withdrawal(desk: &TestDesk, signer: &Signer, withdrawal_id: &str, status: &str) -> Value {
    desk.wait_for_status(signer, &format!("/v1/withdrawals/{withdrawal_id}"), status, Duration::from_secs(10))
}

const BECH32: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

#[test]
fn a_withdrawal_reserves_at_once_and_leaves_the_balance_when_the_custodian_confirms() {
    let config = format!("{RELAXED_CONFIG}{FAST_RAILS}");
    let desk = TestDesk::with_config(&config);
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
    assert_eq!(desk.own_balance(&client, "BTC"), ("1.50000000".into(), "0.50000000".into()));
    let repeat = desk.post(&client, "/v1/withdrawals", &body);
    assert_eq!(repeat.expect(200)["withdrawal_id"], withdrawal["withdrawal_id"]);
    let mut changed = body.clone();
    changed["amount"] = json!("0.4");
    assert_problem(&desk.post(&client, "/v1/withdrawals", &changed), 409, "conflict");
    let done = wait_for_withdrawal(&desk, &client, &text(&withdrawal["withdrawal_id"]), "completed");
    assert!(text(&done["external_reference"]).starts_with("sim-"), "{done}");
    assert_eq!(desk.own_balance(&client, "BTC"), ("1.50000000".into(), "0.00000000".into()));
    let all = desk.get(&desk.admin, "/v1/admin/withdrawals").expect(200).clone();
    assert_eq!(all["items"][0]["status"], json!("completed"), "{all}");
}

#[test]
fn a_failed_payout_releases_the_reservation() {
    let config = format!("{RELAXED_CONFIG}{FAST_RAILS}settlement_failure_percent = 100\n");
    let desk = TestDesk::with_config(&config);
    let (_, client) = withdrawer(&desk, "Returned Payment");
    let destination =
        desk.post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})).expect(201).clone();
    let body = json!({"client_withdrawal_id": "w-f", "asset": "BTC", "amount": "1", "destination_id": destination["destination_id"]});
    let withdrawal = desk.post(&client, "/v1/withdrawals", &body).expect(201).clone();
    let failed = wait_for_withdrawal(&desk, &client, &text(&withdrawal["withdrawal_id"]), "failed");
    assert!(failed["failure_reason"].is_string(), "{failed}");
    assert_eq!(desk.own_balance(&client, "BTC"), ("2.00000000".into(), "0.00000000".into()));
}

#[test]
fn bad_destinations_and_withdrawals_are_refused_with_their_codes_and_move_nothing() {
    let desk = TestDesk::relaxed();
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
    let trade_only = desk.client_key(&client_id, &["read", "trade"]);
    assert_problem(
        &desk.post(&trade_only, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})),
        403,
        "forbidden",
    );
    assert_eq!(desk.own_balance(&client, "BTC"), ("2.00000000".into(), "0.00000000".into()));
}

#[test]
fn screening_on_real_lists_holds_listed_clients_rejects_listed_addresses_and_raises_alerts() {
    let dir = sanctions_dir();
    let desk = TestDesk::launch().config(RELAXED_CONFIG).args(&["--sanctions-dir", &dir]).start();
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
    let desk = TestDesk::relaxed();
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
    // For people: dollars and hours; as values: full-scale decimal strings and seconds.
    let evidence = text(&items[0]["evidence"]);
    assert!(
        evidence.starts_with("3 deposits within 24 h, each worth between 80% of and below USD 10,000.00"),
        "{evidence}"
    );
    assert!(evidence.contains("cash-2 of 9,900 USD (USD 9,900.00)"), "{evidence}");
    let details = &items[0]["details"];
    assert_eq!(details["window_seconds"], json!(86_400), "{details}");
    assert_eq!(details["threshold_usd"], json!("10000.00"), "{details}");
    assert_eq!(
        details["deposits"][0],
        json!({"reference": "cash-2", "asset": "USD", "amount": "9900.00", "value_usd": "9900.00"})
    );
}

#[test]
fn a_rapid_withdrawal_alert_reads_in_asset_units_and_hours_with_the_values_beside() {
    let desk = TestDesk::relaxed();
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    let (client_id, client) = withdrawer(&desk, "Quick Exit Ltd");
    let quote = desk.quote(&client, "BTC-USD", "sell", "0.1");
    let order = json!({"client_order_id": "exit-1", "type": "quote", "quote_id": quote["quote_id"]});
    desk.post(&client, "/v1/orders", &order).expect(201);
    let destination =
        desk.post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})).expect(201).clone();
    let body = json!({"client_withdrawal_id": "w-quick", "asset": "BTC", "amount": "0.25", "destination_id": destination["destination_id"]});
    let withdrawal = desk.post(&client, "/v1/withdrawals", &body).expect(201).clone();
    let alerts = desk
        .get(&desk.admin, &format!("/v1/admin/alerts?client_id={client_id}&kind=rapid_in_and_out"))
        .expect(200)
        .clone();
    let alert = &alerts["items"][0];
    let evidence = text(&alert["evidence"]);
    let expected = format!(
        "withdrawal {} of 0.25 BTC to destination {}",
        text(&withdrawal["withdrawal_id"]),
        text(&destination["destination_id"])
    );
    assert!(evidence.starts_with(&expected) && evidence.contains("within 24 h of deposit"), "{evidence}");
    let details = &alert["details"];
    assert_eq!((details["amount"].clone(), details["asset"].clone()), (json!("0.25000000"), json!("BTC")), "{alert}");
    assert_eq!(details["window_seconds"], json!(86_400), "{alert}");
    assert_eq!(details["withdrawal_id"], withdrawal["withdrawal_id"], "{alert}");
    assert!(text(&details["destination_registered_at"]).ends_with('Z'), "{alert}");
}

#[test]
fn onboarding_screens_un_names_variants_and_common_names_on_the_real_lists() {
    let dir = sanctions_dir();
    let desk = TestDesk::launch().config(RELAXED_CONFIG).args(&["--sanctions-dir", &dir]).start();
    let onboard = |name: &str| {
        let body = json!({"name": name, "jurisdiction": "GB", "tier": "standard", "kyc_status": "approved", "settlement": "prefunded"});
        desk.post(&desk.admin, "/v1/admin/clients", &body).expect(201).clone()
    };
    // A UN-listed name (by its listed alias).
    let un = onboard("Frank Kakorere");
    assert_eq!(un["screening"]["status"], json!("hit"), "{un}");
    assert_eq!(un["screening"]["matches"][0]["list"], json!("un"), "{un}");
    // A misspelled variant of an OFAC-listed name is held for review at least.
    let variant = onboard("Jorge Milton Cifuentes Vila");
    let status = text(&variant["screening"]["status"]);
    assert!(status == "hit" || status == "review", "{variant}");
    assert_eq!(variant["kyc_status"], json!("pending"), "{variant}");
    // A common unlisted name is clear and keeps its approval.
    let common = onboard("Maria Schmidt");
    assert_eq!(common["screening"]["status"], json!("clear"), "{common}");
    assert_eq!(common["kyc_status"], json!("approved"), "{common}");
    // A compliance decision clears the held client, who can then be approved.
    let path = format!("/v1/admin/clients/{}", text(&variant["client_id"]));
    let cleared = desk.patch(&desk.admin, &path, &json!({"screening_decision": "cleared"})).expect(200).clone();
    assert_eq!(cleared["screening"]["status"], json!("cleared"), "{cleared}");
    let approved = desk.patch(&desk.admin, &path, &json!({"kyc_status": "approved"})).expect(200).clone();
    assert_eq!(approved["kyc_status"], json!("approved"), "{approved}");
    // A reload re-screens everyone; nothing changed in the lists, so nothing changes.
    let reload = desk.post(&desk.admin, "/v1/admin/sanctions/reload", &json!({})).expect(200).clone();
    assert_eq!(reload["clients_screened"], json!(3), "{reload}");
    assert_eq!(reload["changed"], json!(0), "{reload}");
}

#[test]
fn every_gate_guards_its_paths_rfq_order_stream_and_withdrawal() {
    let desk = TestDesk::relaxed();
    desk.set_price("BTC-USD", "50000.00", "50100.00");
    let (client_id, client) = withdrawer(&desk, "Gated Client");
    let destination =
        desk.post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})).expect(201).clone();
    let withdrawal = json!({"client_withdrawal_id": "g-1", "asset": "BTC", "amount": "0.1", "destination_id": destination["destination_id"]});
    let rfq = json!({"instrument": "BTC-USD", "side": "sell", "quantity": "0.1"});
    let order =
        json!({"client_order_id": "g-o", "type": "market", "instrument": "BTC-USD", "side": "sell", "quantity": "0.1"});
    let subscribe = json!({"op": "subscribe", "channel": "quotes", "instrument": "BTC-USD", "levels": ["0.1"]});
    // KYC pending: no firm quote, no order, no withdrawal.
    let path = format!("/v1/admin/clients/{client_id}");
    desk.patch(&desk.admin, &path, &json!({"kyc_status": "pending"})).expect(200);
    assert_problem(&desk.rfq(&client, &rfq), 403, "kyc_required");
    assert_problem(&desk.post(&client, "/v1/orders", &order), 403, "kyc_required");
    assert_problem(&desk.post(&client, "/v1/withdrawals", &withdrawal), 403, "kyc_required");
    desk.patch(&desk.admin, &path, &json!({"kyc_status": "approved"})).expect(200);
    // A blocked jurisdiction: every path, the stream subscription included.
    desk.put(&desk.admin, "/v1/admin/jurisdictions/DE", &json!({"blocked": true})).expect(200);
    assert_problem(&desk.rfq(&client, &rfq), 403, "jurisdiction_restricted");
    assert_problem(&desk.post(&client, "/v1/orders", &order), 403, "jurisdiction_restricted");
    assert_problem(&desk.post(&client, "/v1/withdrawals", &withdrawal), 403, "jurisdiction_restricted");
    let mut stream = desk.stream(&client);
    stream.send(&subscribe);
    let reply = stream.next_reply(Duration::from_secs(5));
    assert_eq!(
        (reply["type"].clone(), reply["code"].clone()),
        (json!("error"), json!("jurisdiction_restricted")),
        "{reply}"
    );
    // Lifted: the next command passes on every path.
    desk.put(&desk.admin, "/v1/admin/jurisdictions/DE", &json!({"blocked": false})).expect(200);
    stream.send(&subscribe);
    assert_eq!(stream.next_reply(Duration::from_secs(5))["type"], json!("subscribed"));
    desk.rfq(&client, &rfq).expect(201);
    desk.post(&client, "/v1/orders", &order).expect(201);
    desk.post(&client, "/v1/withdrawals", &withdrawal).expect(201);
}

#[test]
fn a_net_settlement_cycle_nets_a_credit_clients_trades_and_releases_its_exposure() {
    let config = format!("{RELAXED_CONFIG}{FAST_RAILS}net_settlement_every_ms = 0\n");
    let desk = TestDesk::with_config(&config);
    desk.put_tier("zero", &json!({"spread_bps": "0"}));
    let body = json!({"name": "Credit Fund", "jurisdiction": "DE", "tier": "zero", "kyc_status": "approved",
        "settlement": "credit", "credit_limit_usd": "1000000.00"});
    let client_id = text(&desk.create_client(&body)["client_id"]);
    let client = desk.client_key(&client_id, &["read", "trade"]);
    desk.set_price("BTC-USD", "50000.00", "50050.00");
    for (id, side) in [("n-1", "buy"), ("n-2", "buy"), ("n-3", "sell")] {
        let order =
            json!({"client_order_id": id, "type": "market", "instrument": "BTC-USD", "side": side, "quantity": "1"});
        desk.post(&client, "/v1/orders", &order).expect(201);
    }
    // Bought 2 at 50050.00, sold 1 at 50000.00: owes 50100.00 USD net, is owed 1 BTC.
    let account = desk.get(&client, "/v1/account").expect(200).clone();
    let unsettled: Vec<(String, String)> = account["unsettled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| (text(&line["asset"]), text(&line["amount"])))
        .collect();
    assert_eq!(
        unsettled,
        vec![("BTC".to_owned(), "1.00000000".to_owned()), ("USD".to_owned(), "-50100.00".to_owned())],
        "{account}"
    );
    assert_ne!(account["usage"]["open_exposure_usd"], json!("0.00"), "{account}");
    let issued = desk.post(&desk.admin, "/v1/admin/settlements/run", &json!({})).expect(200).clone();
    let items = issued["items"].as_array().unwrap();
    let instruction = |asset: &str| items.iter().find(|item| item["asset"] == json!(asset)).unwrap().clone();
    assert_eq!(
        (instruction("USD")["direction"].clone(), instruction("USD")["amount"].clone()),
        (json!("client_pays"), json!("50100.00")),
        "{issued}"
    );
    assert_eq!(
        (instruction("BTC")["direction"].clone(), instruction("BTC")["amount"].clone()),
        (json!("desk_pays"), json!("1.00000000")),
        "{issued}"
    );
    // Nothing new to net: an empty cycle.
    assert_eq!(desk.post(&desk.admin, "/v1/admin/settlements/run", &json!({})).expect(200)["items"], json!([]));
    // The desk holds no BTC at its custodian yet: its delivery waits while the client's USD arrives.
    std::thread::sleep(Duration::from_millis(800));
    let listed = desk.get(&desk.admin, "/v1/admin/settlements").expect(200).clone();
    let status = |asset: &str| {
        let items = listed["items"].as_array().unwrap();
        items.iter().find(|item| item["asset"] == json!(asset)).unwrap()["status"].clone()
    };
    assert_eq!((status("USD"), status("BTC")), (json!("completed"), json!("pending")), "{listed}");
    // The desk's own capital arrives at the custodian; the delivery goes out.
    let funding = json!({"asset": "BTC", "amount": "3", "reference": "capital-btc"});
    desk.post(&desk.admin, "/v1/admin/desk/funding", &funding).expect(201);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = desk.get(&desk.admin, "/v1/admin/settlements").expect(200).clone();
        if listed["items"].as_array().unwrap().iter().all(|item| item["status"] == json!("completed")) {
            break;
        }
        assert!(Instant::now() < deadline, "instructions did not complete: {listed}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let account = desk.get(&client, "/v1/account").expect(200).clone();
    assert!(account.get("unsettled").is_none(), "{account}");
    assert_eq!(account["usage"]["open_exposure_usd"], json!("0.00"), "{account}");
    // The client delivered its USD and received its BTC: both balances are flat.
    let balances = desk.get(&client, "/v1/balances").expect(200)["items"].clone();
    for line in balances
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| line["asset"] == json!("USD") || line["asset"] == json!("BTC"))
    {
        assert!(text(&line["available"]).trim_start_matches(['0', '.']).is_empty(), "{balances}");
    }
}

fn wallet(desk: &TestDesk, asset: &str) -> (String, String) {
    let custody = desk.get(&desk.admin, "/v1/admin/custody").expect(200).clone();
    let line =
        custody["wallets"].as_array().unwrap().iter().find(|line| line["asset"] == json!(asset)).unwrap().clone();
    (text(&line["hot"]), text(&line["cold"]))
}

#[test]
fn deposits_to_a_client_address_credit_after_confirmations_and_the_hot_wallet_follows_its_policy() {
    let config = format!("{RELAXED_CONFIG}{FAST_RAILS}");
    let desk = TestDesk::with_config(&config);
    let (client_id, client) = withdrawer(&desk, "Depositing Fund"); // 2 BTC credited by the operator (hot)
    let first = desk.post(&client, "/v1/deposit-addresses", &json!({"asset": "BTC"})).expect(201).clone();
    let address = text(&first["address"]);
    assert!(address.starts_with("bc1q"), "{first}");
    assert_eq!(
        desk.post(&client, "/v1/deposit-addresses", &json!({"asset": "BTC"})).expect(200)["address"],
        json!(address)
    );
    assert_invalid(&desk.post(&client, "/v1/deposit-addresses", &json!({"asset": "EUR"})), "asset");
    // The custodian sees 1 BTC arrive: confirming, then credited after 2 confirmations.
    let seen = desk.post(
        &desk.admin,
        "/v1/admin/custody/simulate-deposit",
        &json!({"address": address, "asset": "BTC", "amount": "1"}),
    );
    assert_eq!(seen.expect(201)["status"], json!("confirming"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while desk.own_balance(&client, "BTC").0 != "3.00000000" {
        assert!(Instant::now() < deadline, "the deposit was not credited: {:?}", desk.own_balance(&client, "BTC"));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(wallet(&desk, "BTC"), ("3.00000000".into(), "0.00000000".into()));
    // Policy: keep 0.5–1.5 BTC hot (target 1): 2 BTC are swept to cold at once.
    let policy = json!({"hot_min": "0.5", "hot_target": "1", "hot_max": "1.5"});
    desk.put(&desk.admin, "/v1/admin/custody/policies/BTC", &policy).expect(200);
    assert_eq!(wallet(&desk, "BTC"), ("1.00000000".into(), "2.00000000".into()));
    // A payout of 0.8 BTC leaves 0.2 hot: below the minimum, a top-up from cold waits for an operator.
    let destination =
        desk.post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})).expect(201).clone();
    let body = json!({"client_withdrawal_id": "c-1", "asset": "BTC", "amount": "0.8", "destination_id": destination["destination_id"]});
    let withdrawal = desk.post(&client, "/v1/withdrawals", &body).expect(201).clone();
    wait_for_withdrawal(&desk, &client, &text(&withdrawal["withdrawal_id"]), "completed");
    assert_eq!(wallet(&desk, "BTC"), ("0.20000000".into(), "2.00000000".into()));
    let custody = desk.get(&desk.admin, "/v1/admin/custody").expect(200).clone();
    let top_up = custody["top_ups"][0].clone();
    assert_eq!(
        (top_up["status"].clone(), top_up["amount"].clone()),
        (json!("awaiting_approval"), json!("0.80000000")),
        "{custody}"
    );
    let approve = format!("/v1/admin/custody/top-ups/{}/approve", text(&top_up["top_up_id"]));
    desk.post(&desk.admin, &approve, &json!({})).expect(200);
    assert_eq!(wallet(&desk, "BTC"), ("1.00000000".into(), "1.20000000".into()));
    assert_problem(&desk.post(&desk.admin, &approve, &json!({})), 409, "conflict");
    let _ = client_id;
}

#[test]
fn refused_commands_and_failed_authentications_are_in_the_audit_trail() {
    let desk = TestDesk::with_config(&format!("{RELAXED_CONFIG}auth_failure_interval_ms = 200\n"));
    desk.set_price("BTC-USD", "50000.00", "50100.00");
    let (_, pending) = desk.client("Not Yet Approved", "standard", "pending");
    assert_problem(
        &desk.rfq(&pending, &json!({"instrument": "BTC-USD", "side": "buy", "quantity": "0.1"})),
        403,
        "kyc_required",
    );
    // A request signed with a wrong secret for a real key id.
    let forged = Signer::hmac(&pending.key_id, "not-the-secret");
    assert_problem(&desk.get(&forged, "/v1/balances"), 401, "unauthenticated");
    let deadline = Instant::now() + Duration::from_secs(5);
    let events = loop {
        let events = desk.get(&desk.admin, "/v1/admin/audit/events").expect(200).clone();
        if events["items"].as_array().unwrap().len() >= 2 || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let items = events["items"].as_array().unwrap();
    let refused = items.iter().find(|item| item["kind"] == json!("refused")).expect("a refusal record").clone();
    assert_eq!(
        (refused["code"].clone(), refused["what"].clone()),
        (json!("kyc_required"), json!("request_quote")),
        "{events}"
    );
    assert_eq!(refused["key_id"], json!(pending.key_id), "{events}");
    assert_eq!(refused["source_ip"], json!("127.0.0.1"), "{events}");
    let failed =
        items.iter().find(|item| item["kind"] == json!("authentication_failed")).expect("a failed login").clone();
    assert_eq!(
        (failed["claimed_key_id"].clone(), failed["key_id"].clone()),
        (json!(pending.key_id), json!(null)),
        "{events}"
    );
    assert_eq!(failed["what"], json!("GET /v1/balances"), "{events}");
    assert_eq!(failed["count"], json!(1), "failures are journaled in counted groups: {events}");
    // They are part of the verified journal, and changed nothing else.
    let verified = desk.get(&desk.admin, "/v1/admin/audit/verify").expect(200).clone();
    assert_eq!(verified["valid"], json!(true), "{verified}");
    let only_refusals = desk.get(&desk.admin, "/v1/admin/audit/events?kind=refused").expect(200).clone();
    assert!(only_refusals["items"].as_array().unwrap().iter().all(|item| item["kind"] == json!("refused")));
}

fn custody_top_ups(desk: &TestDesk) -> Vec<Value> {
    desk.get(&desk.admin, "/v1/admin/custody").expect(200)["top_ups"].as_array().unwrap().clone()
}

#[test]
fn a_payout_larger_than_the_hot_wallet_waits_pending_until_an_operator_approves_the_top_up() {
    let config = format!("{RELAXED_CONFIG}{FAST_RAILS}");
    let desk = TestDesk::with_config(&config);
    let (client_id, client) = withdrawer(&desk, "Large Payout Fund"); // 2 BTC
    let more = json!({"client_id": client_id, "asset": "BTC", "amount": "2", "reference": "more-btc"});
    desk.post(&desk.admin, "/v1/admin/deposits", &more).expect(201);
    let policy = json!({"hot_min": "0.5", "hot_target": "1", "hot_max": "1.5"});
    desk.put(&desk.admin, "/v1/admin/custody/policies/BTC", &policy).expect(200);
    assert_eq!(wallet(&desk, "BTC"), ("1.00000000".into(), "3.00000000".into()));
    let destination =
        desk.post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})).expect(201).clone();
    let body = json!({"client_withdrawal_id": "big-1", "asset": "BTC", "amount": "1.5", "destination_id": destination["destination_id"]});
    let withdrawal = desk.post(&client, "/v1/withdrawals", &body).expect(201).clone();
    // The hot wallet (1 BTC) cannot pay 1.5: a top-up for what the payout and the target need is requested at once.
    let top_ups = custody_top_ups(&desk);
    assert_eq!((top_ups.len(), top_ups[0]["amount"].clone()), (1, json!("1.50000000")), "{top_ups:?}");
    // Several polls of the settlement worker later the payout still waits, unsent.
    std::thread::sleep(Duration::from_millis(1_000));
    let waiting =
        desk.get(&client, &format!("/v1/withdrawals/{}", text(&withdrawal["withdrawal_id"]))).expect(200).clone();
    assert_eq!(waiting["status"], json!("pending"), "{waiting}");
    assert_eq!(wallet(&desk, "BTC"), ("1.00000000".into(), "3.00000000".into()));
    let approve = format!("/v1/admin/custody/top-ups/{}/approve", text(&top_ups[0]["top_up_id"]));
    desk.post(&desk.admin, &approve, &json!({})).expect(200);
    wait_for_withdrawal(&desk, &client, &text(&withdrawal["withdrawal_id"]), "completed");
    assert_eq!(wallet(&desk, "BTC"), ("1.00000000".into(), "1.50000000".into()));
    assert_eq!(desk.own_balance(&client, "BTC"), ("2.50000000".into(), "0.00000000".into()));
    let reconciliation = desk.get(&desk.admin, "/v1/admin/reconciliation").expect(200).clone();
    assert_eq!(reconciliation["status"], json!("matched"), "{reconciliation}");
}

fn reconciliation_line(report: &Value, asset: &str) -> Value {
    let lines = report["lines"].as_array().unwrap();
    lines
        .iter()
        .find(|line| line["asset"] == json!(asset))
        .cloned()
        .unwrap_or_else(|| panic!("no {asset} line: {report}"))
}

#[test]
fn reconciliation_matches_the_rails_books_and_lists_a_break_with_the_movement_the_desk_does_not_know() {
    let config = format!("{RELAXED_CONFIG}{FAST_RAILS}");
    let desk = TestDesk::with_config(&config);
    let (client_id, client) = withdrawer(&desk, "Reconciled Fund"); // 2 BTC, recorded by the custodian too
    let usd = json!({"client_id": client_id, "asset": "USD", "amount": "1000.00", "reference": "wire-1"});
    desk.post(&desk.admin, "/v1/admin/deposits", &usd).expect(201);
    let address = text(&desk.post(&client, "/v1/deposit-addresses", &json!({"asset": "BTC"})).expect(201)["address"]);
    desk.post(
        &desk.admin,
        "/v1/admin/custody/simulate-deposit",
        &json!({"address": address, "asset": "BTC", "amount": "0.3"}),
    )
    .expect(201);
    let destination =
        desk.post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})).expect(201).clone();
    let body = json!({"client_withdrawal_id": "r-1", "asset": "BTC", "amount": "0.5", "destination_id": destination["destination_id"]});
    let withdrawal = desk.post(&client, "/v1/withdrawals", &body).expect(201).clone();
    wait_for_withdrawal(&desk, &client, &text(&withdrawal["withdrawal_id"]), "completed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while desk.own_balance(&client, "BTC").0 != "1.80000000" {
        assert!(
            Instant::now() < deadline,
            "the chain deposit was not credited: {:?}",
            desk.own_balance(&client, "BTC")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = desk.get(&desk.admin, "/v1/admin/reconciliation").expect(200).clone();
    assert_eq!((report["status"].clone(), report["breaks"].clone()), (json!("matched"), json!(0)), "{report}");
    let btc_line = reconciliation_line(&report, "BTC");
    assert_eq!((btc_line["ledger"].clone(), btc_line["at_rail"].clone()), (json!("1.80000000"), json!("1.80000000")));
    assert_eq!(reconciliation_line(&report, "USD")["account"], json!("bank"), "{report}");
    // The custodian charges a network fee the desk never booked: a break, with the movement as the lead.
    let fee = json!({"asset": "BTC", "amount": "-0.0001", "reference": "network-fee-7"});
    desk.post(&desk.admin, "/v1/admin/custody/simulate-rail-movement", &fee).expect(201);
    assert_problem(&desk.post(&desk.admin, "/v1/admin/custody/simulate-rail-movement", &fee), 409, "conflict");
    let zero = json!({"asset": "BTC", "amount": "0", "reference": "nothing"});
    assert_invalid(&desk.post(&desk.admin, "/v1/admin/custody/simulate-rail-movement", &zero), "amount");
    let report = desk.get(&desk.admin, "/v1/admin/reconciliation").expect(200).clone();
    assert_eq!((report["status"].clone(), report["breaks"].clone()), (json!("breaks"), json!(1)), "{report}");
    let line = reconciliation_line(&report, "BTC");
    assert_eq!((line["status"].clone(), line["difference"].clone()), (json!("break"), json!("-0.00010000")), "{line}");
    let unmatched = line["unmatched_movements"].as_array().unwrap();
    assert_eq!(unmatched.len(), 1, "only the unknown movement is listed: {line}");
    assert_eq!(unmatched[0]["reference"], json!("network-fee-7"), "{line}");
    assert_eq!(reconciliation_line(&report, "USD")["status"], json!("matched"), "{report}");
}
