//! The last loose inputs (issue 15, item 4): amounts and balances beyond an asset's maximum, bodies that are not
//! JSON, jurisdictions outside ISO 3166, spreadsheet formulas in CSV exports, and the stream's refusals.

use otcd_testkit::http::{assert_invalid, assert_problem, raw_request, text, Reply};
use otcd_testkit::process::{client_body, TestDesk};
use otcd_testkit::signing::Signer;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn an_amount_or_a_balance_beyond_the_assets_maximum_is_refused_naming_the_maximum() {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Large Depositor Ltd");
    let reply = desk.deposit(&client_id, "USD", "99999999999999999999999999999", "huge-1");
    assert_invalid(&reply, "amount");
    assert!(reply.body["detail"].as_str().unwrap().contains("1000000000000 USD"), "{}", reply.text);
    assert_eq!(desk.available(&client_id, "USD"), "0.00", "a refused deposit changes nothing");
    desk.deposit(&client_id, "USD", "1000000000000", "max-1").expect(201);
    let reply = desk.deposit(&client_id, "USD", "0.01", "over-1");
    assert_invalid(&reply, "amount");
    assert!(reply.body["detail"].as_str().unwrap().contains("maximum balance"), "{}", reply.text);
    assert_eq!(desk.available(&client_id, "USD"), "1000000000000.00");
    // The next ordinary deposit to another client is not affected ("is out of range" was the old answer).
    let other = desk.new_client("Small Depositor Ltd");
    desk.deposit(&other, "USD", "10", "small-1").expect(201);
}

/// A signed request sent as given: `content_type` `None` sends no `Content-Type` at all.
fn post_raw(desk: &TestDesk, signer: &Signer, path: &str, body: &str, content_type: Option<&str>) -> Reply {
    let mut head = format!("POST {path} HTTP/1.1");
    for (name, value) in signer.headers("POST", path, body) {
        head.push_str(&format!("\r\n{name}: {value}"));
    }
    if let Some(content_type) = content_type {
        head.push_str(&format!("\r\nContent-Type: {content_type}"));
    }
    raw_request(&desk.address, &head, body.as_bytes()).expect("the desk answers")
}

#[test]
fn a_body_typed_as_anything_but_json_is_refused_with_415() {
    let desk = TestDesk::start();
    let client_id = desk.new_client("Typed Ltd");
    let deposit = |reference: &str| {
        json!({"client_id": client_id, "asset": "USD", "amount": "5", "reference": reference}).to_string()
    };
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonx")] {
        let reply = post_raw(&desk, &desk.admin, "/v1/admin/deposits", &deposit("typed-1"), content_type);
        assert_problem(&reply, 415, "unsupported_media_type");
    }
    assert_eq!(desk.available(&client_id, "USD"), "0.00", "refused bodies change nothing");
    let reply = post_raw(
        &desk,
        &desk.admin,
        "/v1/admin/deposits",
        &deposit("typed-2"),
        Some("Application/JSON; charset=utf-8"),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(desk.available(&client_id, "USD"), "5.00");
    // An untyped body is read as JSON: clients written to the acceptance contract need not send the header.
    let reply = post_raw(&desk, &desk.admin, "/v1/admin/deposits", &deposit("typed-3"), None);
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(desk.available(&client_id, "USD"), "10.00");
    // A POST without a body needs no type.
    let reply = post_raw(&desk, &desk.admin, "/v1/admin/settlements/run", "", None);
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn jurisdictions_must_be_assigned_iso_3166_codes() {
    let desk = TestDesk::start();
    for code in ["XX", "UK", "EU", "US-XX", "DE-NY"] {
        let mut body = client_body("Nowhere Ltd");
        body["jurisdiction"] = json!(code);
        assert_invalid(&desk.post(&desk.admin, "/v1/admin/clients", &body), "jurisdiction");
        let rule = json!({"blocked": true});
        assert_invalid(&desk.put(&desk.admin, &format!("/v1/admin/jurisdictions/{code}"), &rule), "code");
    }
    for code in ["GB", "US-NY", "CH", "GB-ENG"] {
        let mut body = client_body("Somewhere Ltd");
        body["jurisdiction"] = json!(code);
        desk.post(&desk.admin, "/v1/admin/clients", &body).expect(201);
    }
}

#[test]
fn csv_cells_a_spreadsheet_would_run_as_formulas_are_prefixed_with_a_quote() {
    let desk = TestDesk::start();
    let name = r#"=HYPERLINK("http://evil.example","x")"#;
    let client_id = desk.new_client(name);
    desk.new_client("+1 Capital");
    let path = "/v1/admin/reports/kyc?format=csv";
    let deadline = Instant::now() + Duration::from_secs(20);
    let csv = loop {
        let reply = desk.get(&desk.admin, path);
        if reply.status == 200 && reply.text.contains(&client_id) && reply.text.contains("Capital") {
            break reply.text;
        }
        assert!(Instant::now() < deadline, "the kyc report never showed the clients: {}", reply.text);
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(csv.contains(r#","'=HYPERLINK(""http://evil.example"",""x"")","#), "{csv}");
    assert!(csv.contains(",'+1 Capital,"), "{csv}");
    assert!(!csv.contains(",=") && !csv.contains(",\"=") && !csv.contains(",+"), "{csv}");
    // JSON keeps the name as it is.
    let kyc = desk.get(&desk.admin, &format!("/v1/admin/reports/kyc?client_id={client_id}"));
    assert_eq!(text(&kyc.expect(200)["items"][0]["name"]), name);
}

#[test]
fn every_refusal_of_the_stream_endpoint_is_problem_json() {
    let desk = TestDesk::start();
    let trader = desk.trader("Streamer Ltd");
    let no_upgrade = desk.get(&trader, "/v1/stream");
    assert_problem(&no_upgrade, 400, "invalid_request");
    assert_eq!(no_upgrade.body["field"], "upgrade", "{}", no_upgrade.text);
    assert_problem(&desk.public_get("/v1/stream"), 400, "invalid_request");
    assert_problem(&desk.signed(&trader, "POST", "/v1/stream", ""), 405, "method_not_allowed");
    let head = "GET /v1/stream HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    let unsigned = raw_request(&desk.address, head, b"").expect("the desk answers");
    assert_problem(&unsigned, 401, "unauthenticated");
}
