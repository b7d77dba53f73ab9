//! Webhooks against the real binary and a real receiver (a small axum server in the test): signed deliveries
//! checked by the receiver, a retry after the receiver fails, the delivery log and a manual redelivery, the URL
//! policy, and delivery after a `kill -9` and restart with nothing lost (repeats only with the same id).

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use otcd_testkit::http::{assert_problem, text};
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONFIG: &str = "max_book_age_ms = 60000\nwebhooks_allow_private = true\n";
const WAIT: Duration = Duration::from_secs(20);

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    answered: u16,
}

/// A webhook receiver on 127.0.0.1: answers 500 to the next `fail_next` requests (or to all while
/// `fail_all`), 200 otherwise, and records every request.
struct Receiver {
    address: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    fail_next: Arc<AtomicUsize>,
    fail_all: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let fail_next = Arc::new(AtomicUsize::new(0));
        let fail_all = Arc::new(AtomicBool::new(false));
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let address = listener.local_addr().unwrap();
        let (log, next, all) = (received.clone(), fail_next.clone(), fail_all.clone());
        let handler = move |headers: HeaderMap, body: String| {
            let (log, next, all) = (log.clone(), next.clone(), all.clone());
            async move {
                let failing = all.load(Ordering::SeqCst)
                    || next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok();
                let status = if failing { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                log.lock().unwrap().push(Received {
                    id: header("otc-webhook-id"),
                    timestamp: header("otc-webhook-timestamp"),
                    signature: header("otc-webhook-signature"),
                    body,
                    answered: status.as_u16(),
                });
                status
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { address, received, fail_next, fail_all, _runtime: runtime }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received.
    #[track_caller]
    fn wait_until(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(Instant::now() < deadline, "waiting for {what}; received {received:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Checks the signature as a receiver must, and returns the parsed body.
#[track_caller]
fn verified(received: &Received, secret: &str) -> Value {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}\n{}\n{}", received.id, received.timestamp, received.body).as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(received.signature, expected, "the signature checks out: {received:?}");
    assert!(received.timestamp.parse::<i64>().is_ok(), "{received:?}");
    let body: Value = serde_json::from_str(&received.body).unwrap();
    assert_eq!(body["id"], json!(received.id), "the header id is the body id");
    body
}

fn register(desk: &TestDesk, signer: &Signer, url: &str, events: &[&str]) -> Value {
    desk.post(signer, "/v1/webhooks", &json!({"url": url, "events": events})).expect(201).clone()
}

#[test]
fn deliveries_are_signed_retried_after_a_failure_logged_and_redeliverable() {
    let receiver = Receiver::start();
    let desk = TestDesk::with_config(CONFIG);
    let (client_id, trader) = desk.client("Hooked", "standard", "approved");
    let webhook = register(&desk, &trader, &receiver.url(), &["balance"]);
    let (webhook_id, secret) = (text(&webhook["id"]), text(&webhook["secret"]));
    assert!(secret.starts_with("whsec_") && webhook_id.starts_with("wh_"), "{webhook}");
    assert_eq!(webhook["client_id"], json!(client_id));

    receiver.fail_next.store(1, Ordering::SeqCst);
    desk.deposit(&client_id, "USD", "100.00", "hook-1").expect(201);
    let received = receiver.wait_until("a retry that succeeds", |all| all.iter().any(|r| r.answered == 200));
    assert_eq!(received.len(), 2, "one failure, one success: {received:#?}");
    assert_eq!((received[0].answered, received[1].answered), (500, 200));
    assert_eq!(received[0].id, received[1].id, "a retry keeps the delivery id");
    let body = verified(&received[1], &secret);
    verified(&received[0], &secret);
    assert_eq!((body["type"].clone(), body["webhook_id"].clone()), (json!("balance"), json!(webhook_id)));
    assert_eq!((body["data"]["asset"].clone(), body["data"]["available"].clone()), (json!("USD"), json!("100.00")));
    assert!(body["seq"].as_u64().is_some_and(|seq| seq > 0), "{body}");

    let log = desk.get(&trader, &format!("/v1/webhooks/{webhook_id}/deliveries")).expect(200).clone();
    let delivery = &log["items"][0];
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");
    assert_eq!(
        (
            delivery["id"].clone(),
            delivery["status"].clone(),
            delivery["attempts"].clone(),
            delivery["last_status_code"].clone()
        ),
        (json!(received[0].id), json!("delivered"), json!(2), json!(200)),
        "{log}"
    );

    let path = format!("/v1/webhooks/{webhook_id}/deliveries/{}/redeliver", received[0].id);
    desk.post(&trader, &path, &json!({})).expect(202);
    let again = receiver.wait_until("the redelivery", |all| all.len() == 3);
    assert_eq!((again[2].id.clone(), again[2].body.clone()), (received[0].id.clone(), received[1].body.clone()));
    verified(&again[2], &secret);

    // Another client's changes and kinds not asked for are not delivered.
    let (other_id, _) = desk.client("Other", "standard", "approved");
    desk.deposit(&other_id, "USD", "5.00", "other-1").expect(201);
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(receiver.received().len(), 3, "{:#?}", receiver.received());

    // The desk key sees every webhook; the client sees its own; deletion stops it.
    let all = desk.get(&desk.admin, "/v1/webhooks").expect(200).clone();
    assert_eq!(all["items"][0]["id"], json!(webhook_id));
    assert!(all["items"][0].get("secret").is_none(), "the secret is shown once: {all}");
    desk.delete(&trader, &format!("/v1/webhooks/{webhook_id}")).expect(204);
    assert_problem(&desk.get(&trader, &format!("/v1/webhooks/{webhook_id}")), 404, "not_found");
}

#[test]
fn urls_to_the_desk_itself_metadata_or_link_local_addresses_are_refused() {
    let desk = TestDesk::with_config(CONFIG);
    let (_, trader) = desk.client("Probe", "standard", "approved");
    let own = format!("http://{}/v1/healthz", desk.address);
    for url in [own.as_str(), "http://169.254.169.254/latest/meta-data", "http://[fe80::1]/x", "ftp://example.com/"] {
        let reply = desk.post(&trader, "/v1/webhooks", &json!({"url": url, "events": ["order"]}));
        assert_problem(&reply, 400, "invalid_request");
    }
    let reply = desk.post(&trader, "/v1/webhooks", &json!({"url": "http://127.0.0.1:9/x", "events": ["nope"]}));
    assert_problem(&reply, 400, "invalid_request");
    assert_eq!(desk.get(&trader, "/v1/webhooks").expect(200)["items"], json!([]), "nothing was registered");

    let strict = TestDesk::start();
    let (_, trader) = strict.client("Strict", "standard", "approved");
    let reply = strict.post(&trader, "/v1/webhooks", &json!({"url": "http://127.0.0.1:9/x", "events": ["order"]}));
    assert_problem(&reply, 400, "invalid_request");
}

#[test]
fn a_delivery_pending_at_a_kill_is_delivered_after_the_restart_and_nothing_is_lost() {
    let receiver = Receiver::start();
    // Snapshots every other record: the pending delivery's record is behind a snapshot at the kill, so recovery
    // does not re-execute it; the outbox in the snapshot carries it.
    let desk = TestDesk::with_config(&format!("{CONFIG}snapshot_every_records = 2\n"));
    let (client_id, trader) = desk.client("Durable", "standard", "approved");
    let webhook = register(&desk, &desk.admin, &receiver.url(), &["balance", "order"]);
    assert_eq!(webhook["client_id"], Value::Null, "a desk key registers desk-wide");
    let secret = text(&webhook["secret"]);
    let _ = trader;

    desk.deposit(&client_id, "USD", "10.00", "before-1").expect(201);
    let first = receiver.wait_until("the first delivery", |all| all.iter().any(|r| r.answered == 200));
    receiver.fail_all.store(true, Ordering::SeqCst);
    desk.deposit(&client_id, "USD", "20.00", "before-2").expect(201);
    let failing = receiver.wait_until("a failed attempt", |all| all.iter().any(|r| r.answered == 500));
    let pending_id = failing.iter().find(|r| r.answered == 500).unwrap().id.clone();
    assert_ne!(pending_id, first[0].id);

    let desk = desk.crash_and_restart();
    receiver.fail_all.store(false, Ordering::SeqCst);
    desk.deposit(&client_id, "USD", "30.00", "after-1").expect(201);
    let received = receiver.wait_until("the pending and the new delivery", |all| {
        all.iter().any(|r| r.answered == 200 && r.id == pending_id)
            && all.iter().any(|r| r.answered == 200 && verified(r, &secret)["data"]["available"] == json!("60.00"))
    });

    // Every delivery id has one body; each change arrived; the order per endpoint follows the seq.
    let mut bodies: BTreeMap<String, String> = BTreeMap::new();
    for request in &received {
        let known = bodies.entry(request.id.clone()).or_insert_with(|| request.body.clone());
        assert_eq!(*known, request.body, "a repeated delivery is the same delivery");
        verified(request, &secret);
    }
    let amounts: Vec<String> = bodies
        .values()
        .map(|body| serde_json::from_str::<Value>(body).unwrap())
        .map(|body| body["data"]["available"].to_string())
        .collect();
    for amount in ["\"10.00\"", "\"30.00\"", "\"60.00\""] {
        assert!(amounts.iter().any(|known| known == amount), "{amount} in {amounts:?}");
    }
    // In order per endpoint: each delivery first succeeded after every earlier seq's.
    let mut firsts: Vec<(u64, String)> = Vec::new();
    for request in received.iter().filter(|r| r.answered == 200) {
        if !firsts.iter().any(|(_, id)| *id == request.id) {
            let seq = serde_json::from_str::<Value>(&request.body).unwrap()["seq"].as_u64().unwrap();
            firsts.push((seq, request.id.clone()));
        }
    }
    assert!(firsts.windows(2).all(|pair| pair[0] <= pair[1]), "{firsts:?}");
}
