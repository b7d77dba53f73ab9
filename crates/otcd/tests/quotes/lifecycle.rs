//! Firm quotes over time: market-data staleness, validity and expiry, ownership, idempotent RFQs and KYC.

use otcd_testkit::http::{assert_problem, text, timestamp_ms};
use otcd_testkit::process::{timing_lock, TestDesk};
use otcd_testkit::signing::now_ms;
use serde_json::json;
use std::time::{Duration, Instant};

/// Sleeps until the wall clock reaches `at_ms`.
fn sleep_until_ms(at_ms: i64) {
    let left = at_ms - now_ms();
    if left > 0 {
        std::thread::sleep(Duration::from_millis(left as u64));
    }
}

#[test]
fn stale_books_refuse_firm_quotes_until_the_next_update() {
    let _serial = timing_lock();
    let desk = TestDesk::with_config("max_book_age_ms = 800\n");
    let trader = desk.trader("Staleness");
    let btc = json!({"instrument": "BTC-USD", "side": "buy", "quantity": "1"});

    // No price was ever set: no firm quote and no indicative price either.
    let never = desk.rfq(&trader, &json!({"instrument": "ETH-USD", "side": "buy", "quantity": "1"}));
    assert_problem(&never, 503, "price_unavailable");
    assert_problem(&desk.get(&trader, "/v1/prices/ETH-USD?quantity=1"), 503, "price_unavailable");

    let set = desk.set_price("BTC-USD", "50000.00", "50010.00");
    let set_at = timestamp_ms(&set["as_of"]);
    let fresh = desk.rfq(&trader, &btc);
    assert_eq!(fresh.expect(201)["price"], json!("50110.02"), "{}", fresh.text);
    assert_eq!(fresh.body["market_as_of"], set["as_of"], "the quote names the book it was priced on: {}", fresh.text);

    // 1 s without an update: the 800 ms old book no longer makes firm prices.
    sleep_until_ms(set_at + 1_000);
    let stale = desk.rfq(&trader, &btc);
    assert_problem(&stale, 503, "price_unavailable");
    let retry_after = stale.header("retry-after").unwrap_or_else(|| panic!("a Retry-After header: {stale:?}"));
    assert!(
        retry_after.parse::<u64>().is_ok_and(|seconds| seconds >= 1),
        "Retry-After in whole seconds: {retry_after:?}"
    );

    // The indicative price still answers, marked with the old as_of.
    let indicative = desk.get(&trader, "/v1/prices/BTC-USD?quantity=1");
    let indicative = indicative.expect(200);
    assert_eq!(indicative["firm"], json!(false), "{indicative}");
    assert_eq!(indicative["as_of"], set["as_of"], "{indicative}");
    assert!(now_ms() - timestamp_ms(&indicative["as_of"]) > 800, "as_of is older than the maximum age: {indicative}");
    assert_eq!(
        (indicative["bid"].clone(), indicative["ask"].clone()),
        (json!("49900.00"), json!("50110.02")),
        "{indicative}"
    );

    // A fresh update makes firm prices again, at the new price: 51010.00 × 1.002 = 51112.02.
    desk.set_price("BTC-USD", "51000.00", "51010.00");
    assert_eq!(desk.rfq(&trader, &btc).expect(201)["price"], json!("51112.02"));
}

#[test]
fn the_maximum_book_age_can_be_set_per_venue() {
    let _serial = timing_lock();
    let config = "max_book_age_ms = 800\n\n[max_book_age_ms_by_venue]\nmanual = 60000\n";
    let desk = TestDesk::with_config(config);
    let trader = desk.trader("Venue Age");
    let set = desk.set_price("BTC-USD", "50000.00", "50010.00");
    sleep_until_ms(timestamp_ms(&set["as_of"]) + 1_000);
    // Older than the default 800 ms, within the manual venue's 60 s.
    assert_eq!(desk.quote_price(&trader, "BTC-USD", "sell", "1"), "49900.00");
}

#[test]
fn quotes_are_firm_for_five_seconds_owned_and_idempotent() {
    let desk = TestDesk::relaxed();
    let (_, alice) = desk.client("Alice", "standard", "approved");
    let (_, bob) = desk.client("Bob", "standard", "approved");
    desk.set_price("BTC-USD", "50000.00", "50010.00");

    let body = json!({"client_rfq_id": "rfq-1", "instrument": "BTC-USD", "side": "buy", "quantity": "1"});
    let created = desk.rfq(&alice, &body);
    let quote = created.expect(201).clone();
    let quote_id = text(&quote["quote_id"]);
    assert_eq!(quote["firm"], json!(true), "{quote}");
    assert_eq!(quote["price"], json!("50110.02"), "{quote}");
    assert_eq!(quote["client_rfq_id"], json!("rfq-1"), "{quote}");
    assert_eq!(
        timestamp_ms(&quote["valid_until"]) - timestamp_ms(&quote["created_at"]),
        5_000,
        "default validity: {quote}"
    );

    let path = format!("/v1/quotes/{quote_id}");
    let seen = desk.get(&alice, &path).expect(200).clone();
    assert_eq!(seen["state"], json!("open"), "{seen}");
    for member in ["quote_id", "instrument", "side", "quantity", "price", "created_at", "valid_until"] {
        assert_eq!(seen[member], quote[member], "GET shows the quote as created ({member}): {seen}");
    }
    // Another client's key cannot see it; unknown ids are not found either.
    assert_problem(&desk.get(&bob, &path), 404, "quote_not_found");
    assert_problem(&desk.get(&alice, "/v1/quotes/q_999999999999"), 404, "quote_not_found");

    // The market moves; a repeat of the same request returns the original quote, not a new price.
    desk.set_price("BTC-USD", "51000.00", "51010.00");
    let repeat = desk.rfq(&alice, &body);
    let repeated = repeat.expect(200);
    assert_eq!(repeated["quote_id"], json!(quote_id), "{repeated}");
    assert_eq!(repeated["price"], json!("50110.02"), "{repeated}");
    assert_eq!(repeated["valid_until"], quote["valid_until"], "{repeated}");
    // The same id with a different request is a conflict.
    for different in [
        json!({"client_rfq_id": "rfq-1", "instrument": "BTC-USD", "side": "buy", "quantity": "2"}),
        json!({"client_rfq_id": "rfq-1", "instrument": "BTC-USD", "side": "sell", "quantity": "1"}),
        json!({"client_rfq_id": "rfq-1", "instrument": "ETH-USD", "side": "buy", "quantity": "1"}),
        json!({"client_rfq_id": "rfq-1", "instrument": "BTC-USD", "side": "buy", "quote_quantity": "50000"}),
    ] {
        assert_problem(&desk.rfq(&alice, &different), 409, "conflict");
    }
    // client_rfq_id is unique per client: Bob's rfq-1 is his own new quote at the new price (51010.00 × 1.002).
    let bobs = desk.rfq(&bob, &body).expect(201).clone();
    assert_ne!(bobs["quote_id"], json!(quote_id), "{bobs}");
    assert_eq!(bobs["price"], json!("51112.02"), "{bobs}");
    // Without a client_rfq_id every request is a new quote.
    let plain = json!({"instrument": "BTC-USD", "side": "buy", "quantity": "1"});
    let first = text(&desk.rfq(&alice, &plain).expect(201)["quote_id"]);
    let second = text(&desk.rfq(&alice, &plain).expect(201)["quote_id"]);
    assert_ne!(first, second);
}

#[test]
fn quotes_expire_after_the_configured_validity() {
    let _serial = timing_lock();
    let desk = TestDesk::with_config("max_book_age_ms = 60000\nquote_validity_ms = 1500\n");
    let trader = desk.trader("Expiry");
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    let quote = desk.quote(&trader, "BTC-USD", "sell", "1");
    let valid_until = timestamp_ms(&quote["valid_until"]);
    assert_eq!(valid_until - timestamp_ms(&quote["created_at"]), 1_500, "quote_validity_ms: {quote}");
    let path = format!("/v1/quotes/{}", text(&quote["quote_id"]));

    let asked_at = now_ms();
    let state = text(&desk.get(&trader, &path).expect(200)["state"]);
    assert!(asked_at < valid_until, "the test was too slow to see the quote open");
    assert_eq!(state, "open");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let asked_at = now_ms();
        let seen = desk.get(&trader, &path).expect(200).clone();
        match seen["state"].as_str() {
            Some("open") => assert!(asked_at < valid_until + 100, "still open after valid_until: {seen}"),
            Some("expired") => {
                assert!(now_ms() >= valid_until, "expired before valid_until: {seen}");
                assert_eq!(seen["price"], json!("49900.00"), "{seen}");
                break;
            }
            _ => panic!("a quote is open, used or expired: {seen}"),
        }
        assert!(Instant::now() < deadline, "the quote never expired: {seen}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn only_kyc_approved_unexpired_clients_get_firm_quotes() {
    let desk = TestDesk::relaxed();
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    let btc = json!({"instrument": "BTC-USD", "side": "buy", "quantity": "1"});

    let (pending_id, pending) = desk.client("Pending", "standard", "pending");
    assert_problem(&desk.rfq(&pending, &btc), 403, "kyc_required");
    // Indicative prices are still shown.
    let indicative = desk.get(&pending, "/v1/prices/BTC-USD?quantity=1").expect(200).clone();
    assert_eq!(
        (indicative["bid"].clone(), indicative["ask"].clone()),
        (json!("49900.00"), json!("50110.02")),
        "{indicative}"
    );
    assert_eq!(indicative["firm"], json!(false), "{indicative}");
    // Nothing was quoted for the refused request.
    assert_problem(&desk.get(&desk.admin, "/v1/quotes/q_000000000001"), 404, "quote_not_found");

    let path = format!("/v1/admin/clients/{pending_id}");
    desk.patch(&desk.admin, &path, &json!({"kyc_status": "approved"})).expect(200);
    assert_eq!(desk.rfq(&pending, &btc).expect(201)["price"], json!("50110.02"));

    // Approval that has lapsed counts as no approval.
    desk.patch(&desk.admin, &path, &json!({"kyc_expires_at": "2020-01-01T00:00:00Z"})).expect(200);
    assert_problem(&desk.rfq(&pending, &btc), 403, "kyc_required");
    desk.patch(&desk.admin, &path, &json!({"kyc_expires_at": "2100-01-01T00:00:00Z"})).expect(200);
    desk.rfq(&pending, &btc).expect(201);
    desk.patch(&desk.admin, &path, &json!({"kyc_status": "rejected"})).expect(200);
    assert_problem(&desk.rfq(&pending, &btc), 403, "kyc_required");

    // A client onboarded with an expiry in the past.
    let lapsed = desk
        .create_client(&json!({"name": "Lapsed", "jurisdiction": "DE", "tier": "standard", "kyc_status": "approved",
        "kyc_expires_at": "2020-01-01T00:00:00Z", "settlement": "prefunded"}));
    let lapsed = desk.client_key(&text(&lapsed["client_id"]), &["read", "trade"]);
    assert_problem(&desk.rfq(&lapsed, &btc), 403, "kyc_required");
}
