//! Onboarding: clients, KYC history, tiers, client keys, the account view, and where secrets may appear.

use base64::Engine as _;
use otcd_testkit::http::{assert_invalid, assert_problem, text};
use otcd_testkit::process::{client_body, TestDesk};
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn client_count(desk: &TestDesk) -> usize {
    desk.get(&desk.admin, "/v1/admin/clients?limit=1000").expect(200)["items"].as_array().expect("items").len()
}

/// `actual` is `expected` (whole seconds, `Z`) written in RFC 3339 UTC, with or without zero fractional seconds.
fn assert_same_instant(actual: &Value, expected: &str) {
    let actual = text(actual);
    let seconds = match actual.strip_suffix('Z').and_then(|rest| rest.split_once('.')) {
        Some((seconds, fraction)) if fraction.bytes().all(|digit| digit == b'0') => format!("{seconds}Z"),
        _ => actual.clone(),
    };
    assert_eq!(seconds, expected, "timestamp {actual}");
}

#[test]
fn creating_a_client_echoes_its_fields_and_screening() {
    let desk = TestDesk::start();
    let body = json!({
        "name": "Nakamoto Capital LLC", "jurisdiction": "US-NY", "tier": "standard", "kyc_status": "approved",
        "kyc_expires_at": "2030-01-31T00:00:00Z", "settlement": "prefunded",
    });
    let created = desk.create_client(&body);
    let client_id = text(&created["client_id"]);
    assert!(!client_id.is_empty());
    for field in ["name", "jurisdiction", "tier", "kyc_status", "settlement"] {
        assert_eq!(created[field], body[field], "{field} echoed: {created}");
    }
    assert_same_instant(&created["kyc_expires_at"], "2030-01-31T00:00:00Z");
    let screening = &created["screening"];
    assert!(["clear", "review", "hit"].contains(&screening["status"].as_str().unwrap_or("")), "{created}");
    assert!(screening["matches"].is_array(), "{created}");

    let fetched = desk.get(&desk.admin, &format!("/v1/admin/clients/{client_id}"));
    assert_eq!(fetched.expect(200), &created);
    let second = desk.new_client("Second Client");
    assert_ne!(second, client_id, "client ids are unique");
}

#[test]
fn patching_kyc_is_recorded_with_the_admin_key() {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Patch Me Ltd");
    let path = format!("/v1/admin/clients/{client_id}");
    let patched = desk.patch(&desk.admin, &path, &json!({"kyc_status": "rejected", "name": "Patched Ltd"}));
    let patched = patched.expect(200).clone();
    assert_eq!(patched["kyc_status"], "rejected");
    assert_eq!(patched["name"], "Patched Ltd");
    assert_eq!(patched["jurisdiction"], "DE", "fields not in the patch are kept");
    let history = patched["kyc_history"].as_array().expect("kyc_history");
    let last = history.last().expect("a KYC change");
    assert_eq!(last["status"], "rejected", "{patched}");
    assert_eq!(last["by"], json!(desk.admin.key_id), "{patched}");
    assert_eq!(desk.get(&desk.admin, &path).expect(200), &patched);
}

#[test]
fn an_unknown_tier_is_invalid_and_creates_nothing() {
    let desk = TestDesk::start();
    let before = client_count(&desk);
    let mut body = client_body("Tierless");
    body["tier"] = json!("platinum");
    assert_invalid(&desk.post(&desk.admin, "/v1/admin/clients", &body), "tier");
    assert_eq!(client_count(&desk), before);
    let client_id = desk.new_client("Existing");
    let path = format!("/v1/admin/clients/{client_id}");
    assert_invalid(&desk.patch(&desk.admin, &path, &json!({"tier": "platinum"})), "tier");
    assert_eq!(desk.get(&desk.admin, &path).expect(200)["tier"], "standard");
}

#[test]
fn an_unknown_field_is_invalid_and_named() {
    let desk = TestDesk::start();
    let mut body = client_body("Typo Inc");
    body["nickname"] = json!("typo");
    assert_invalid(&desk.post(&desk.admin, "/v1/admin/clients", &body), "nickname");
    let client_id = desk.new_client("Typo Two");
    let reply = desk.patch(&desk.admin, &format!("/v1/admin/clients/{client_id}"), &json!({"kyc_stauts": "approved"}));
    assert_invalid(&reply, "kyc_stauts");
}

#[test]
fn a_bad_jurisdiction_is_invalid() {
    let desk = TestDesk::start();
    let before = client_count(&desk);
    for jurisdiction in ["Germany", "de", "D", "US-", ""] {
        let mut body = client_body("Nowhere");
        body["jurisdiction"] = json!(jurisdiction);
        assert_invalid(&desk.post(&desk.admin, "/v1/admin/clients", &body), "jurisdiction");
    }
    assert_eq!(client_count(&desk), before);
}

#[test]
fn missing_or_mistyped_fields_are_invalid() {
    let desk = TestDesk::start();
    let mut body = client_body("Mistyped");
    body["kyc_status"] = json!("maybe");
    assert_invalid(&desk.post(&desk.admin, "/v1/admin/clients", &body), "kyc_status");
    let mut body = client_body("Numeric Credit");
    body["settlement"] = json!("credit");
    body["credit_limit_usd"] = json!(250000);
    assert_invalid(&desk.post(&desk.admin, "/v1/admin/clients", &body), "credit_limit_usd");
    let reply = desk.signed(&desk.admin, "POST", "/v1/admin/clients", "{not json");
    assert_problem(&reply, 400, "invalid_request");
}

#[test]
fn a_credit_client_has_its_credit_limit() {
    let desk = TestDesk::start();
    let mut body = client_body("Credit Line AG");
    body["settlement"] = json!("credit");
    body["credit_limit_usd"] = json!("250000.00");
    let created = desk.create_client(&body);
    assert_eq!(created["settlement"], "credit");
    assert_eq!(created["credit_limit_usd"], "250000.00");
    let key = desk.client_key(&text(&created["client_id"]), &["read"]);
    let account = desk.get(&key, "/v1/account");
    assert_eq!(account.expect(200)["limits"]["credit_limit_usd"], "250000.00", "{}", account.text);
}

#[test]
fn a_client_key_secret_is_shown_once_and_reads_its_own_account() {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Key Holder SA");
    let created = desk.create_key(&client_id, &json!({"scopes": ["read", "trade"], "algorithm": "hmac"}));
    let created = created.expect(201).clone();
    let secret = text(&created["secret"]);
    assert!(secret.len() >= 32, "a secret with enough entropy: {created}");
    let key = Signer::hmac(&text(&created["key_id"]), &secret);

    let account = desk.get(&key, "/v1/account").expect(200).clone();
    assert_eq!(account["client_id"], json!(client_id));
    assert_eq!(account["tier"], "standard");
    assert_eq!(account["kyc_status"], "approved");
    assert!(account["limits"].is_object() && account["usage"].is_object(), "{account}");
    let balances = desk.get(&key, "/v1/balances");
    let items = balances.expect(200)["items"].as_array().expect("items");
    assert!(
        items.iter().all(|item| item["available"].is_string() && item["reserved"].is_string()),
        "{}",
        balances.text
    );

    let reads = [
        desk.get(&desk.admin, &format!("/v1/admin/clients/{client_id}")),
        desk.get(&desk.admin, "/v1/admin/clients"),
        desk.get(&key, "/v1/account"),
        desk.delete(&desk.admin, &format!("/v1/admin/keys/{}", key.key_id)),
    ];
    for reply in reads {
        assert!(reply.status < 300, "{reply:?}");
        assert!(!reply.text.contains(&secret), "the secret appeared again: {}", reply.text);
    }
}

#[test]
fn a_client_on_a_new_tier_sees_its_tier_and_limits() {
    let desk = TestDesk::start();
    let tier = json!({"spread_bps": "10", "trade_notional_usd_max": "1000000.00"});
    let reply = desk.put(&desk.admin, "/v1/admin/tiers/gold", &tier);
    assert_eq!(reply.expect(200)["spread_bps"], "10", "{}", reply.text);
    let mut body = client_body("Gold Member Ltd");
    body["tier"] = json!("gold");
    let client = desk.create_client(&body);
    assert_eq!(client["tier"], "gold");
    let key = desk.client_key(&text(&client["client_id"]), &["read"]);
    let account = desk.get(&key, "/v1/account").expect(200).clone();
    assert_eq!(account["tier"], "gold");
    assert_eq!(account["limits"]["spread_bps"], "10", "{account}");
    assert_eq!(account["limits"]["trade_notional_usd_max"], "1000000.00", "{account}");

    let standard = desk.client_key(&desk.new_client("Standard Member"), &["read"]);
    let account = desk.get(&standard, "/v1/account").expect(200).clone();
    assert_eq!((&account["tier"], &account["limits"]["spread_bps"]), (&json!("standard"), &json!("20")), "{account}");
    assert_invalid(&desk.put(&desk.admin, "/v1/admin/tiers/silver", &json!({"spread_bps": 10})), "spread_bps");
}

#[test]
fn an_unknown_client_is_not_found() {
    let desk = TestDesk::start();
    let path = "/v1/admin/clients/cl_99999999";
    assert_problem(&desk.get(&desk.admin, path), 404, "not_found");
    assert_problem(&desk.patch(&desk.admin, path, &json!({"kyc_status": "approved"})), 404, "not_found");
    assert_problem(&desk.create_key("cl_99999999", &json!({"scopes": ["read"]})), 404, "not_found");
    assert_problem(&desk.get(&desk.admin, "/v1/admin/clients/no-such-client"), 404, "not_found");
}

#[test]
fn admin_key_json_is_private_and_complete() {
    let desk = TestDesk::start();
    let path = desk.data_dir.join("admin-key.json");
    let mode = std::fs::metadata(&path).expect("admin-key.json exists").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "admin-key.json mode {mode:o}");
    let key: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let fields: Vec<&String> = key.as_object().expect("an object").keys().collect();
    assert_eq!(fields.len(), 3, "{key}");
    assert!(key["key_id"].is_string() && key["secret"].is_string(), "{key}");
    assert_eq!(key["algorithm"], "hmac");
    assert_eq!(key["key_id"], json!(desk.admin.key_id));
    assert!(desk.log().contains(&path.display().to_string()), "the log names {}:\n{}", path.display(), desk.log());
}

#[test]
fn client_keys_cannot_be_admin_keys_or_scopeless() {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Would Be Admin");
    assert_invalid(&desk.create_key(&client_id, &json!({"scopes": ["read", "admin"]})), "scopes");
    assert_invalid(&desk.create_key(&client_id, &json!({"scopes": []})), "scopes");
    assert_problem(&desk.create_key(&client_id, &json!({"scopes": ["root"]})), 400, "invalid_request");
    let reply = desk.create_key(&client_id, &json!({"scopes": ["read"], "allowed_ips": ["not-an-ip"]}));
    assert_problem(&reply, 400, "invalid_request");
    let reply = desk.create_key(&client_id, &json!({"scopes": ["read"], "algorithm": "ed25519", "public_key": "AAAA"}));
    assert_invalid(&reply, "public_key");
}

fn files_under(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory).expect("readable directory") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn hmac_secrets_never_reach_the_journal_or_snapshots() {
    let temp = tempfile::tempdir().unwrap();
    let desk = TestDesk::start_in(temp.path());
    let client_id = desk.new_client("Secretive Ltd");
    let mut needles: Vec<String> = (0..3)
        .map(|_| text(&desk.create_key(&client_id, &json!({"scopes": ["read"]})).expect(201)["secret"]))
        .collect();
    let desk_key = desk.post(&desk.admin, "/v1/admin/keys", &json!({"scopes": ["admin"]}));
    needles.push(text(&desk_key.expect(201)["secret"]));
    let admin_key: Value = serde_json::from_slice(&std::fs::read(temp.path().join("admin-key.json")).unwrap()).unwrap();
    needles.push(text(&admin_key["secret"]));
    assert!(desk.terminate().success());

    let encoded: Vec<String> =
        needles.iter().map(|secret| base64::engine::general_purpose::STANDARD.encode(secret.as_bytes())).collect();
    needles.extend(encoded);
    let files = files_under(temp.path());
    assert!(files.iter().any(|file| file.starts_with(temp.path().join("journal"))), "a journal exists: {files:?}");
    for file in files.iter().filter(|file| !file.ends_with("admin-key.json")) {
        let bytes = std::fs::read(file).unwrap();
        for needle in &needles {
            let found = bytes.windows(needle.len()).any(|window| window == needle.as_bytes());
            assert!(!found, "{} holds a key secret in plain text", file.display());
        }
    }
}
