//! Signed requests, the timestamp window, replay, revocation, scopes, IP allow-lists, Ed25519 keys, and the
//! endpoints that need no signature.

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use otcd_testkit::http::assert_problem;
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::{now_ms, Signer};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn desk_with_client() -> (TestDesk, String) {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Auth Test Ltd");
    (desk, client_id)
}

#[test]
fn unsigned_requests_are_unauthenticated() {
    let (desk, client_id) = desk_with_client();
    assert_problem(&desk.send("GET", "/v1/balances", "", &[]), 401, "unauthenticated");
    assert_problem(&desk.send("GET", &format!("/v1/admin/clients/{client_id}"), "", &[]), 401, "unauthenticated");
    let body = json!({"client_id": client_id, "asset": "USD", "amount": "10.00", "reference": "unsigned"}).to_string();
    assert_problem(&desk.send("POST", "/v1/admin/deposits", &body, &[]), 401, "unauthenticated");
    // Only the key header, no timestamp or signature.
    let only_key = [("OTC-KEY".to_owned(), desk.admin.key_id.clone())];
    assert_problem(&desk.send("GET", "/v1/balances", "", &only_key), 401, "unauthenticated");
    assert_eq!(desk.available(&client_id, "USD"), "0.00", "an unsigned deposit must not be credited");
}

#[test]
fn a_bad_signature_or_unknown_key_is_unauthenticated() {
    let (desk, client_id) = desk_with_client();
    let path = format!("/v1/balances?client_id={client_id}");
    desk.get(&desk.admin, &path).expect(200);
    let forged = Signer::hmac(&desk.admin.key_id, "not-the-secret");
    assert_problem(&desk.get(&forged, &path), 401, "unauthenticated");
    let unknown = Signer::hmac("k_00000000000000000000", "whatever");
    assert_problem(&desk.get(&unknown, &path), 401, "unauthenticated");
    let mut garbage = desk.admin.headers("GET", &path, "");
    garbage[2].1 = "zz-not-hex".to_owned();
    assert_problem(&desk.send("GET", &path, "", &garbage), 401, "unauthenticated");
}

#[test]
fn timestamps_more_than_30_seconds_off_are_unauthenticated() {
    let (desk, client_id) = desk_with_client();
    let path = format!("/v1/account?client_id={client_id}");
    for offset in [-31_000, 31_000] {
        let headers = desk.admin.headers_at(now_ms() + offset, "GET", &path, "");
        let reply = desk.send("GET", &path, "", &headers);
        assert_problem(&reply, 401, "unauthenticated");
    }
    // A clock slightly ahead is inside the window.
    let headers = desk.admin.headers_at(desk.admin.fresh_timestamp() + 20_000, "GET", &path, "");
    desk.send("GET", &path, "", &headers).expect(200);
    let mut headers = desk.admin.headers("GET", &path, "");
    headers[1].1 = "yesterday".to_owned();
    assert_problem(&desk.send("GET", &path, "", &headers), 401, "unauthenticated");
}

#[test]
fn a_replayed_request_is_refused_and_changes_nothing() {
    let (desk, client_id) = desk_with_client();
    let body = json!({"client_id": client_id, "asset": "USD", "amount": "100.00", "reference": "replay-1"}).to_string();
    let headers = desk.admin.headers("POST", "/v1/admin/deposits", &body);
    desk.send("POST", "/v1/admin/deposits", &body, &headers).expect(201);
    assert_problem(&desk.send("POST", "/v1/admin/deposits", &body, &headers), 401, "unauthenticated");
    assert_eq!(desk.available(&client_id, "USD"), "100.00");

    let path = format!("/v1/balances?client_id={client_id}");
    let headers = desk.admin.headers("GET", &path, "");
    desk.send("GET", &path, "", &headers).expect(200);
    assert_problem(&desk.send("GET", &path, "", &headers), 401, "unauthenticated");
}

#[test]
fn a_revoked_key_is_refused_from_then_on() {
    let (desk, client_id) = desk_with_client();
    let key = desk.client_key(&client_id, &["read", "trade"]);
    desk.get(&key, "/v1/balances").expect(200);
    let revoked = desk.delete(&desk.admin, &format!("/v1/admin/keys/{}", key.key_id));
    revoked.expect(200);
    assert_problem(&desk.get(&key, "/v1/balances"), 401, "unauthenticated");
    assert_problem(&desk.get(&key, "/v1/account"), 401, "unauthenticated");
    // Other keys are untouched.
    desk.get(&desk.admin, &format!("/v1/balances?client_id={client_id}")).expect(200);
    assert_problem(&desk.delete(&desk.admin, "/v1/admin/keys/k_00000000000000000000"), 404, "not_found");
}

#[test]
fn a_key_without_the_scope_is_forbidden() {
    let (desk, client_id) = desk_with_client();
    let trade_only = desk.client_key(&client_id, &["trade"]);
    assert_problem(&desk.get(&trade_only, "/v1/balances"), 403, "forbidden");
    assert_problem(&desk.get(&trade_only, "/v1/ledger"), 403, "forbidden");

    let reader = desk.client_key(&client_id, &["read", "trade", "withdraw"]);
    desk.get(&reader, "/v1/balances").expect(200);
    assert_problem(&desk.get(&reader, &format!("/v1/admin/clients/{client_id}")), 403, "forbidden");
    let new_client =
        json!({"name": "Sneaky", "jurisdiction": "DE", "kyc_status": "approved", "settlement": "prefunded"});
    assert_problem(&desk.post(&reader, "/v1/admin/clients", &new_client), 403, "forbidden");
    let deposit = json!({"client_id": client_id, "asset": "USD", "amount": "1000.00", "reference": "self-service"});
    assert_problem(&desk.post(&reader, "/v1/admin/deposits", &deposit), 403, "forbidden");
    assert_problem(&desk.delete(&reader, &format!("/v1/admin/keys/{}", trade_only.key_id)), 403, "forbidden");
    assert_eq!(desk.available(&client_id, "USD"), "0.00");
    desk.get(&trade_only, "/v1/instruments").expect(200);
}

#[test]
fn a_client_key_reads_only_its_own_client() {
    let (desk, client_id) = desk_with_client();
    let other = desk.new_client("Other Client GmbH");
    let key = desk.client_key(&client_id, &["read"]);
    assert_eq!(desk.get(&key, "/v1/account").expect(200)["client_id"], json!(client_id));
    assert_problem(&desk.get(&key, &format!("/v1/balances?client_id={other}")), 403, "forbidden");
    assert_problem(&desk.get(&key, &format!("/v1/account?client_id={other}")), 403, "forbidden");
}

#[test]
fn allowed_ips_outside_the_source_address_are_forbidden() {
    let (desk, client_id) = desk_with_client();
    let create = |allowed: &[&str]| {
        let reply = desk.create_key(&client_id, &json!({"scopes": ["read"], "allowed_ips": allowed}));
        let body = reply.expect(201);
        Signer::hmac(body["key_id"].as_str().unwrap(), body["secret"].as_str().unwrap())
    };
    let elsewhere = create(&["10.0.0.0/8"]);
    assert_problem(&desk.get(&elsewhere, "/v1/balances"), 403, "forbidden");
    let loopback = create(&["127.0.0.1/32"]);
    desk.get(&loopback, "/v1/balances").expect(200);
    let listed_among_others = create(&["10.0.0.0/8", "127.0.0.0/8"]);
    desk.get(&listed_among_others, "/v1/balances").expect(200);
}

#[test]
fn an_ed25519_key_signs_and_a_foreign_key_does_not() {
    let (desk, client_id) = desk_with_client();
    let signing_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let public_key = base64::engine::general_purpose::STANDARD.encode(signing_key.verifying_key().to_bytes());
    let reply =
        desk.create_key(&client_id, &json!({"scopes": ["read"], "algorithm": "ed25519", "public_key": public_key}));
    let created = reply.expect(201);
    assert!(created.get("secret").is_none_or(Value::is_null), "ed25519 keys have no secret: {created}");
    let key_id = created["key_id"].as_str().expect("key_id");

    let signer = Signer::ed25519(key_id, signing_key);
    assert_eq!(desk.get(&signer, "/v1/account").expect(200)["client_id"], json!(client_id));
    desk.get(&signer, "/v1/balances").expect(200);

    let impostor = Signer::ed25519(key_id, SigningKey::generate(&mut rand::rngs::OsRng));
    assert_problem(&desk.get(&impostor, "/v1/balances"), 401, "unauthenticated");
}

#[test]
fn a_signature_covers_the_path_query_and_body() {
    let (desk, client_id) = desk_with_client();
    let signed_for = format!("/v1/ledger?client_id={client_id}&limit=1");
    let sent_to = format!("/v1/ledger?client_id={client_id}&limit=2");
    let headers = desk.admin.headers("GET", &signed_for, "");
    assert_problem(&desk.send("GET", &sent_to, "", &headers), 401, "unauthenticated");
    let headers = desk.admin.headers("GET", &format!("/v1/balances?client_id={client_id}"), "");
    assert_problem(
        &desk.send("GET", &format!("/v1/account?client_id={client_id}"), "", &headers),
        401,
        "unauthenticated",
    );

    let signed_body =
        json!({"client_id": client_id, "asset": "USD", "amount": "1.00", "reference": "body-1"}).to_string();
    let sent_body =
        json!({"client_id": client_id, "asset": "USD", "amount": "9999.00", "reference": "body-1"}).to_string();
    let headers = desk.admin.headers("POST", "/v1/admin/deposits", &signed_body);
    assert_problem(&desk.send("POST", "/v1/admin/deposits", &sent_body, &headers), 401, "unauthenticated");
    let headers = desk.admin.headers("PUT", "/v1/admin/deposits", &signed_body);
    assert_problem(&desk.send("POST", "/v1/admin/deposits", &signed_body, &headers), 401, "unauthenticated");
    assert_eq!(desk.available(&client_id, "USD"), "0.00");
}

#[test]
fn the_catalog_is_public_and_matches_the_contract() {
    let desk = TestDesk::start();
    let assets = desk.public_get("/v1/assets");
    let scales: BTreeMap<String, u64> = assets.expect(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|asset| (asset["code"].as_str().unwrap().to_owned(), asset["scale"].as_u64().unwrap()))
        .collect();
    let expected = [("BTC", 8), ("ETH", 18), ("USDT", 6), ("USDC", 6), ("USD", 2), ("EUR", 2), ("GBP", 2)];
    let expected: BTreeMap<String, u64> = expected.iter().map(|(code, scale)| (code.to_string(), *scale)).collect();
    assert_eq!(scales, expected);
    assert_eq!(assets.body["items"].as_array().unwrap().len(), 7, "no duplicate assets: {}", assets.text);

    let instruments = desk.public_get("/v1/instruments");
    let items = instruments.expect(200)["items"].as_array().expect("items").clone();
    let mut symbols: Vec<&str> = items.iter().map(|item| item["symbol"].as_str().unwrap()).collect();
    symbols.sort_unstable();
    let mut expected = [
        "BTC-USD", "ETH-USD", "BTC-EUR", "ETH-EUR", "BTC-USDT", "ETH-USDT", "ETH-BTC", "USDT-USD", "USDC-USD",
        "EUR-USD", "GBP-USD",
    ];
    expected.sort_unstable();
    assert_eq!(symbols, expected);
    for item in &items {
        let symbol = item["symbol"].as_str().unwrap();
        assert_eq!(format!("{}-{}", item["base"].as_str().unwrap(), item["quote"].as_str().unwrap()), symbol);
        for field in ["price_increment", "quantity_increment", "quantity_min", "quantity_max"] {
            assert!(item[field].is_string(), "{symbol}.{field} must be a decimal string: {item}");
        }
    }
}

#[test]
fn operations_endpoints_answer_without_a_signature() {
    let desk = TestDesk::start();
    desk.public_get("/healthz").expect(200);
    desk.public_get("/readyz").expect(200);
    let metrics = desk.public_get("/metrics");
    metrics.expect(200);
    assert!(metrics.header("content-type").is_some_and(|value| value.starts_with("text/plain")), "{metrics:?}");
    for name in ["otcd_http_requests_total", "otcd_journal_fsync_seconds"] {
        assert!(metrics.text.contains(name), "/metrics lacks {name}:\n{}", metrics.text);
    }
    let openapi = desk.public_get("/openapi.json");
    let document = openapi.expect(200);
    assert!(document["openapi"].as_str().is_some_and(|version| version.starts_with("3.1")), "{}", openapi.text);
    assert!(document["paths"].get("/v1/balances").is_some(), "openapi.json lacks /v1/balances");
}

#[test]
fn an_unknown_endpoint_is_a_not_found_problem() {
    let desk = TestDesk::start();
    assert_problem(&desk.public_get("/v1/no-such-thing"), 404, "not_found");
}

/// `OTC-NONCE`: 50 byte-identical reads signed at the same millisecond, sent at once, each with its own nonce,
/// are all answered; the same nonce again is a replay; a nonce the signature does not cover fails.
#[test]
fn identical_requests_with_distinct_nonces_are_all_accepted_once() {
    let (desk, client_id) = desk_with_client();
    let key = desk.client_key(&client_id, &["read"]);
    let at = now_ms();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let sent: Vec<_> = (0..50)
            .map(|index| {
                let headers = key.headers_with_nonce(at, "GET", "/v1/balances", "", &format!("n-{index}"));
                let desk = &desk;
                scope.spawn(move || desk.send("GET", "/v1/balances", "", &headers).status)
            })
            .collect();
        sent.into_iter().map(|thread| thread.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    let again = key.headers_with_nonce(at, "GET", "/v1/balances", "", "n-7");
    assert_problem(&desk.send("GET", "/v1/balances", "", &again), 401, "unauthenticated");
    let mut unsigned = key.headers_with_nonce(now_ms(), "GET", "/v1/balances", "", "signed-nonce");
    unsigned[3].1 = "another-nonce".to_owned();
    assert_problem(&desk.send("GET", "/v1/balances", "", &unsigned), 401, "unauthenticated");
    let bad = key.headers_with_nonce(now_ms(), "GET", "/v1/balances", "", "not valid!");
    assert_problem(&desk.send("GET", "/v1/balances", "", &bad), 401, "unauthenticated");
}
