//! `POST /v1/sessions`: issuing, using, narrowing, refusing (expired bounds, tampered, revoked, escalation) and the
//! stream with a token in the query.

use otcd_testkit::http::{assert_invalid, assert_problem, text, timestamp_ms, Reply};
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::{now_ms, Signer};
use serde_json::{json, Value};
use std::time::Duration;

/// `POST /v1/sessions` signed by `signer`.
pub fn session(desk: &TestDesk, signer: &Signer, body: &Value) -> Reply {
    desk.post(signer, "/v1/sessions", body)
}

/// A request with `Authorization: Bearer <token>`.
pub fn bearer(desk: &TestDesk, token: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let headers = vec![("Authorization".to_owned(), format!("Bearer {token}"))];
    let body = body.map(Value::to_string).unwrap_or_default();
    desk.send(method, path, &body, &headers)
}

fn client_with_scopes(desk: &TestDesk, name: &str, scopes: &[&str]) -> (String, Signer) {
    let client_id = desk.new_client(name);
    let key = desk.client_key(&client_id, scopes);
    (client_id, key)
}

#[test]
fn a_client_session_acts_as_its_key_within_its_scopes() {
    let desk = TestDesk::relaxed();
    let (client_id, key) = client_with_scopes(&desk, "Browser Co", &["read", "trade", "withdraw"]);
    desk.post(
        &desk.admin,
        "/v1/admin/deposits",
        &json!({"client_id": client_id, "asset": "USD", "amount": "100000", "reference": "w1"}),
    )
    .expect(201);
    desk.set_price("BTC-USD", "50000.00", "50010.00");

    let before = now_ms();
    let issued = session(&desk, &key, &json!({})).expect(201).clone();
    let token = text(&issued["token"]);
    assert!(token.starts_with("otcd_sess_"), "{issued}");
    assert_eq!(issued["client_id"], json!(client_id), "{issued}");
    assert_eq!(issued["scopes"], json!(["read", "trade"]), "withdraw is never handed to a client session: {issued}");
    let expires = timestamp_ms(&issued["expires_at"]);
    assert!((before + 899_000..=now_ms() + 901_000).contains(&expires), "default ttl 900 s: {issued}");

    // The token reads and trades as the client, with no signature.
    let balances = bearer(&desk, &token, "GET", "/v1/balances", None).expect(200).clone();
    assert!(balances["items"].as_array().unwrap().iter().any(|line| line["asset"] == "USD"), "{balances}");
    let quote = bearer(
        &desk,
        &token,
        "POST",
        "/v1/rfq",
        Some(&json!({"instrument": "BTC-USD", "side": "buy", "quantity": "0.5"})),
    )
    .expect(201)
    .clone();
    let order = json!({"client_order_id": "web-1", "type": "quote", "quote_id": quote["quote_id"]});
    let filled = bearer(&desk, &token, "POST", "/v1/orders", Some(&order)).expect(201).clone();
    assert_eq!(filled["status"], json!("filled"), "{filled}");
    // The same token works again (it is not single use like a signature)...
    bearer(&desk, &token, "GET", "/v1/trades", None).expect(200);
    // ...but not beyond its scopes, nor for the admin API, nor to make another session.
    let withdrawal = json!({"client_withdrawal_id": "w-1", "asset": "USD", "amount": "1", "destination_id": "d_1"});
    let refused = bearer(&desk, &token, "POST", "/v1/withdrawals", Some(&withdrawal));
    assert!((403..=405).contains(&refused.status), "a session has no withdraw scope: {}", refused.text);
    assert_problem(&bearer(&desk, &token, "GET", "/v1/admin/clients", None), 403, "forbidden");
    assert_problem(&bearer(&desk, &token, "POST", "/v1/sessions", Some(&json!({}))), 403, "forbidden");
}

#[test]
fn scopes_narrow_and_never_grow() {
    let desk = TestDesk::relaxed();
    let (_, key) = client_with_scopes(&desk, "Narrow Co", &["read", "trade", "withdraw"]);
    desk.set_price("BTC-USD", "50000.00", "50010.00");

    let read_only = session(&desk, &key, &json!({"scopes": ["read"], "ttl_seconds": 60})).expect(201).clone();
    assert_eq!(read_only["scopes"], json!(["read"]), "{read_only}");
    let token = text(&read_only["token"]);
    bearer(&desk, &token, "GET", "/v1/account", None).expect(200);
    let rfq = json!({"instrument": "BTC-USD", "side": "buy", "quantity": "0.5"});
    assert_problem(&bearer(&desk, &token, "POST", "/v1/rfq", Some(&rfq)), 403, "forbidden");

    // Withdraw and admin are never handed to a client key's session; scopes the key lacks neither.
    assert_problem(&session(&desk, &key, &json!({"scopes": ["withdraw"]})), 403, "forbidden");
    assert_problem(&session(&desk, &key, &json!({"scopes": ["admin"]})), 403, "forbidden");
    let (_, reader) = client_with_scopes(&desk, "Reader Co", &["read"]);
    assert_problem(&session(&desk, &reader, &json!({"scopes": ["read", "trade"]})), 403, "forbidden");

    // Bounds and shape.
    assert_invalid(&session(&desk, &key, &json!({"ttl_seconds": 59})), "ttl_seconds");
    assert_invalid(&session(&desk, &key, &json!({"ttl_seconds": 3601})), "ttl_seconds");
    assert_invalid(&session(&desk, &key, &json!({"scopes": []})), "scopes");
    assert_invalid(&session(&desk, &key, &json!({"ttl": 60})), "ttl");
    assert_eq!(session(&desk, &key, &json!({"scopes": ["read"], "ttl_seconds": 3600})).status, 201);

    // An admin key's session is an admin session (the console signs in this way).
    let admin = session(&desk, &desk.admin, &json!({})).expect(201).clone();
    assert_eq!(admin["client_id"], Value::Null, "{admin}");
    assert!(admin["scopes"].as_array().unwrap().contains(&json!("admin")), "{admin}");
    let clients = bearer(&desk, &text(&admin["token"]), "GET", "/v1/admin/clients", None).expect(200).clone();
    assert!(clients["items"].as_array().unwrap().len() >= 2, "{clients}");
}

#[test]
fn tampered_unknown_and_revoked_tokens_are_refused() {
    let desk = TestDesk::relaxed();
    let (_, key) = client_with_scopes(&desk, "Tamper Co", &["read", "trade"]);
    let token = text(&session(&desk, &key, &json!({})).expect(201)["token"]);
    bearer(&desk, &token, "GET", "/v1/balances", None).expect(200);

    // Change one character of the payload, of the MAC, or drop the MAC: all 401.
    let (payload, mac) = token.split_once('.').unwrap();
    let flip = |text: &str, at: usize| {
        let mut bytes = text.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    for forged in [
        format!("{}.{mac}", flip(payload, payload.len() - 3)),
        format!("{payload}.{}", flip(mac, 2)),
        payload.to_owned(),
        "otcd_sess_garbage".to_owned(),
        format!("x{token}"),
    ] {
        assert_problem(&bearer(&desk, &forged, "GET", "/v1/balances", None), 401, "unauthenticated");
    }
    // A payload re-encoded with more scopes cannot carry a valid MAC.
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value =
        serde_json::from_slice(&engine.decode(payload.strip_prefix("otcd_sess_").unwrap()).unwrap()).unwrap();
    claims["scopes"] = json!(["read", "trade", "withdraw", "admin"]);
    let escalated = format!("otcd_sess_{}.{mac}", engine.encode(claims.to_string()));
    assert_problem(&bearer(&desk, &escalated, "GET", "/v1/balances", None), 401, "unauthenticated");

    // Revoking the key ends its sessions at once.
    desk.signed(&desk.admin, "DELETE", &format!("/v1/admin/keys/{}", key.key_id), "").expect(200);
    let refused = bearer(&desk, &token, "GET", "/v1/balances", None);
    assert_problem(&refused, 401, "unauthenticated");
    assert!(refused.text.contains("revoked"), "{}", refused.text);
    // A session token from another desk (another master key) is refused too.
    let other = TestDesk::relaxed();
    let (_, other_key) = client_with_scopes(&other, "Elsewhere", &["read"]);
    let foreign = text(&session(&other, &other_key, &json!({})).expect(201)["token"]);
    assert_problem(&bearer(&desk, &foreign, "GET", "/v1/balances", None), 401, "unauthenticated");
}

#[test]
fn the_stream_takes_a_session_token_in_its_query() {
    let desk = TestDesk::relaxed();
    let (_, key) = client_with_scopes(&desk, "Streamer Co", &["read", "trade"]);
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    let token = text(&session(&desk, &key, &json!({"scopes": ["read", "trade"]})).expect(201)["token"]);

    assert_eq!(desk.stream_with_token("otcd_sess_forged.AAAA").err(), Some(401));
    let mut socket = desk.stream_with_token(&token).expect("the upgrade is accepted with a token");
    socket.subscribe_quotes("BTC-USD", &["1"]);
    let ladder = socket.next_where(Duration::from_secs(10), "a ladder", |message| message["type"] == "quotes");
    assert_eq!(ladder["firm"], json!(true), "a trade-scoped session gets firm ladders: {ladder}");
    assert_eq!(ladder["levels"][0]["ask"], json!("50110.02"), "{ladder}");

    // A read-only session gets indicative ladders.
    let read_only = text(&session(&desk, &key, &json!({"scopes": ["read"]})).expect(201)["token"]);
    let mut socket = desk.stream_with_token(&read_only).expect("accepted");
    socket.subscribe_quotes("BTC-USD", &["1"]);
    let ladder = socket.next_where(Duration::from_secs(10), "a ladder", |message| message["type"] == "quotes");
    assert_eq!(ladder["firm"], json!(false), "{ladder}");
    // A token in the query is only for the stream.
    let reply = desk.send("GET", &format!("/v1/balances?token={token}"), "", &[]);
    assert_eq!(reply.status, 401, "{}", reply.text);
}
