//! Black-box tests of the FIX 4.4 gateway with a real counterparty: the Python QuickFIX engine (PyPI
//! `quickfix-ssl`, the standard `FIX44.xml`, `UseDataDictionary=Y`) as initiator against `otcd serve
//! --fix-listen`, driven by `client.py` beside this file. The desk is prepared and checked over REST.
//!
//! Needs a Python with `quickfix` importable: `OTCD_FIX_PYTHON` (a venv's python; `.ci/run` makes one), else
//! `python3`. Without it the tests say so and pass, unless `OTCD_REQUIRE_FIX=1` (set by `.ci/run`).

mod session;

use otcd_testkit::http::text;
use otcd_testkit::process::{timing_lock, TestDesk};
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const QUOTE_VALIDITY_MS: i64 = 3_000;

fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("OTCD_FIX_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("python3"));
    let works = Command::new(&candidate)
        .args(["-c", "import quickfix"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if works {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("OTCD_REQUIRE_FIX").is_none(),
        "OTCD_REQUIRE_FIX is set but {} cannot import quickfix (pip install quickfix-ssl)",
        candidate.display()
    );
    eprintln!("SKIPPED: the FIX tests need a Python with quickfix (pip install quickfix-ssl; OTCD_FIX_PYTHON)");
    None
}

fn launch() -> otcd_testkit::process::Launch {
    let config = format!("max_book_age_ms = 600000\nquote_validity_ms = {QUOTE_VALIDITY_MS}\n");
    TestDesk::launch().config(&config).args(&["--fix-listen", "127.0.0.1:0"])
}

fn start_desk() -> TestDesk {
    launch().start()
}

/// The FIX port from the desk's log line `otcd FIX gateway listening fix_address=...`.
fn fix_port(desk: &TestDesk) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = desk.log();
        if let Some(at) = log.rfind("fix_address=") {
            let rest = &log[at + "fix_address=".len()..];
            let address: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            return address.rsplit(':').next().unwrap().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no FIX address in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A funded client on a 0 bps tier and its FIX key: (client_id, key_id, secret).
fn trader(desk: &TestDesk, name: &str, scopes: &[&str]) -> (String, String, String) {
    desk.put_tier("zero", &json!({"spread_bps": "0"}));
    let mut body = otcd_testkit::process::client_body(name);
    body["tier"] = json!("zero");
    let client_id = text(&desk.create_client(&body)["client_id"]);
    desk.deposit(&client_id, "USD", "200000.00", &format!("{}-usd", name.replace(' ', "-"))).expect(201);
    let created = desk.create_key(&client_id, &json!({"scopes": scopes, "algorithm": "hmac"}));
    let key = created.expect(201);
    (client_id, text(&key["key_id"]), text(&key["secret"]))
}

/// A desk with the gateway, BTC-USD at 50000.00/50010.00, and a funded client with a `read`+`trade` FIX key.
struct Trading {
    desk: TestDesk,
    port: u16,
    client_id: String,
    key_id: String,
    secret: String,
    scratch: tempfile::TempDir,
}

impl Trading {
    fn start(name: &str) -> Self {
        let desk = start_desk();
        let port = fix_port(&desk);
        desk.set_price("BTC-USD", "50000.00", "50010.00");
        let (client_id, key_id, secret) = trader(&desk, name, &["read", "trade"]);
        Self { desk, port, client_id, key_id, secret, scratch: tempfile::tempdir().unwrap() }
    }

    fn key(&self) -> (&str, &str) {
        (&self.key_id, &self.secret)
    }
}

struct Scenario {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Scenario {
    fn start(python: &Path, port: u16, key: (&str, &str), store: &Path, name: &str, params: Value) -> Self {
        let config = json!({"port": port, "key_id": key.0, "secret": key.1, "algorithm": "hmac",
            "store": store, "params": params});
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fix/client.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(config.to_string())
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the QuickFIX client");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self { child, stdin, stdout }
    }

    /// The next `{"event": ...}` line, which must be `event`.
    fn event(&mut self, event: &str) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        if line.is_empty() {
            let output = self.child.wait_with_output_ref();
            panic!("the FIX client ended before {event}: {output}");
        }
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert_eq!(value["event"], json!(event), "{value}");
        value
    }

    fn go(&mut self) {
        self.stdin.write_all(b"GO\n").unwrap();
        self.stdin.flush().unwrap();
    }

    fn finish(mut self) {
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(status.success(), "the FIX client failed ({status}): {stderr}");
    }
}

trait WaitOutput {
    fn wait_with_output_ref(&mut self) -> String;
}

impl WaitOutput for Child {
    fn wait_with_output_ref(&mut self) -> String {
        let _ = self.wait();
        let mut stderr = String::new();
        if let Some(pipe) = self.stderr.as_mut() {
            let _ = std::io::Read::read_to_string(pipe, &mut stderr);
        }
        stderr
    }
}

/// Runs a scenario to its end and answers its events.
fn run(python: &Path, port: u16, key: (&str, &str), store: &Path, name: &str, params: Value) -> Vec<Value> {
    let mut scenario = Scenario::start(python, port, key, store, name, params);
    let mut events = Vec::new();
    let mut line = String::new();
    while scenario.stdout.read_line(&mut line).unwrap() > 0 {
        events.push(serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}")));
        line.clear();
    }
    scenario.finish();
    events
}

#[test]
fn logon_is_signed_and_refusals_say_why_and_are_journaled() {
    let Some(python) = python() else { return };
    let data_dir = tempfile::tempdir().unwrap();
    let desk = launch().data_dir(data_dir.path()).start();
    let port = fix_port(&desk);
    let (_, key_id, secret) = trader(&desk, "Logon Tester", &["read", "trade"]);
    let key = (key_id.as_str(), secret.as_str());
    let scratch = tempfile::tempdir().unwrap();
    let good = run(&python, port, key, &scratch.path().join("good"), "logon", json!({}));
    assert_eq!(good[0]["event"], json!("logged_on"), "{good:?}");
    for (tamper, expected) in [("bad_signature", "bad signature"), ("stale_time", "SendingTime")] {
        let store = scratch.path().join(tamper);
        let refused = run(&python, port, key, &store, "logon_refused", json!({"tamper": tamper}));
        assert!(text(&refused[0]["text"]).contains(expected), "{tamper}: {refused:?}");
    }
    let wrong_secret = "not-the-secret";
    let refused = run(&python, port, (&key_id, wrong_secret), &scratch.path().join("w"), "logon_refused", json!({}));
    assert!(text(&refused[0]["text"]).contains("bad signature"), "{refused:?}");
    let revoked = desk.delete(&desk.admin, &format!("/v1/admin/keys/{key_id}"));
    assert!(revoked.status == 200 || revoked.status == 204, "{}", revoked.body);
    let refused = run(&python, port, key, &scratch.path().join("r"), "logon_refused", json!({}));
    assert!(text(&refused[0]["text"]).contains("revoked"), "{refused:?}");
    // The failures are journaled as one summary at the end of the interval (the shutdown flushes it).
    let _ = desk.terminate();
    let journal = read_journal(data_dir.path());
    assert!(journal.contains("FIX Logon") && journal.contains("bad signature"), "no auth failure summary journaled");
}

/// Every file under the data directory, as text (the journal's records are JSON inside their framing).
fn read_journal(directory: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.push_str(&read_journal(&path));
        } else {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    all
}

#[test]
fn rfq_then_trade_moves_balances_exactly_as_rest() {
    let Some(python) = python() else { return };
    let _timing = timing_lock();
    let trading = Trading::start("Fix Buyer");
    let (desk, port, key) = (&trading.desk, trading.port, trading.key());
    let fix_client = trading.client_id.clone();
    let (rest_client, rest_key_id, rest_secret) = trader(desk, "Rest Buyer", &["read", "trade"]);
    let params = json!({"rfq_id": "rfq-1", "order_id": "ord-1", "quote_validity_ms": QUOTE_VALIDITY_MS});
    let events = run(&python, port, key, trading.scratch.path(), "rfq_trade", params);
    let quote = events.iter().find(|event| event["event"] == "quote").unwrap();
    assert_eq!(quote["offer"], json!("50010.00"), "{events:?}");
    // The same trade through REST by a twin client on the same tier and book.
    let rest = Signer::hmac(&rest_key_id, &rest_secret);
    let rest_quote = desk.rfq(&rest, &json!({"instrument": "BTC-USD", "side": "buy", "quantity": "0.5"}));
    let rest_quote = rest_quote.expect(201).clone();
    let order = json!({"client_order_id": "twin-1", "type": "quote", "quote_id": rest_quote["quote_id"]});
    desk.post(&rest, "/v1/orders", &order).expect(201);
    assert_eq!(desk.balances(&fix_client), desk.balances(&rest_client));
    // The FIX order is the REST order: same ClOrdID, visible over REST.
    let fix_key = Signer::hmac(key.0, key.1);
    let orders = desk.get(&fix_key, "/v1/orders").expect(200).clone();
    let items = orders["items"].as_array().unwrap();
    assert!(items.iter().any(|order| order["client_order_id"] == json!("ord-1") && order["status"] == json!("filled")));
}

#[test]
fn market_and_limit_orders_with_every_time_in_force_and_cancels() {
    let Some(python) = python() else { return };
    let _timing = timing_lock();
    let trading = Trading::start("Fix Orders");
    let (desk, port, key) = (&trading.desk, trading.port, trading.key());
    let client_id = trading.client_id.clone();
    let scratch = &trading.scratch;
    let mut scenario = Scenario::start(&python, port, key, scratch.path(), "orders", json!({}));
    scenario.event("resting");
    desk.set_price("BTC-USD", "48000.00", "48990.00");
    scenario.go();
    scenario.event("done");
    scenario.finish();
    // Fills: market 0.1 at 50010, IOC 0.1 at 50010, GTC 0.1 at 48990; nothing reserved is left.
    let balances = desk.balances(&client_id);
    let usd = balances.iter().find(|(asset, _, _)| asset == "USD").unwrap();
    assert_eq!((usd.1.as_str(), usd.2.as_str()), ("185099.00", "0.00"), "{balances:?}");
}

#[test]
fn a_fill_while_away_arrives_after_reconnect_and_a_repeat_fills_nothing_twice() {
    let Some(python) = python() else { return };
    let _timing = timing_lock();
    let trading = Trading::start("Fix Away");
    let (desk, port, key) = (&trading.desk, trading.port, trading.key());
    let client_id = trading.client_id.clone();
    let scratch = &trading.scratch;
    run(&python, port, key, scratch.path(), "reconnect", json!({"phase": 1}));
    desk.set_price("BTC-USD", "48000.00", "48990.00");
    let fix_key = Signer::hmac(key.0, key.1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while desk.own_balance(&fix_key, "USD").1 != "0.00" {
        assert!(Instant::now() < deadline, "the resting order did not fill");
        std::thread::sleep(Duration::from_millis(50));
    }
    let events = run(&python, port, key, scratch.path(), "reconnect", json!({"phase": 2}));
    assert_eq!(events.last().unwrap()["event"], json!("done"), "{events:?}");
    let usd = desk.available(&client_id, "USD");
    assert_eq!(usd, "190202.00", "one fill of 0.2 at 48990.00");
}

#[test]
fn sequence_numbers_and_acknowledged_trades_survive_kill_9() {
    let Some(python) = python() else { return };
    let _timing = timing_lock();
    let Trading { desk, port, client_id, key_id, secret, scratch } = Trading::start("Fix Crash");
    let key = (key_id.as_str(), secret.as_str());
    let first = run(&python, port, key, scratch.path(), "trade_and_leave", json!({"order_id": "crash-1"}));
    let before = first.last().unwrap()["seq"].clone();
    let desk = desk.crash_and_restart();
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    let port = fix_port(&desk);
    // The same QuickFIX store: a desk that lost its sequence numbers would log this session out as too low.
    let second = run(&python, port, key, scratch.path(), "trade_and_leave", json!({"order_id": "crash-2"}));
    let after = second.last().unwrap()["seq"].clone();
    assert!(after[0].as_u64() > before[0].as_u64() && after[1].as_u64() > before[1].as_u64(), "{before} {after}");
    assert_eq!(desk.available(&client_id, "USD"), "189998.00", "both trades of 0.1 at 50010.00 are there");
}

#[test]
fn market_data_snapshot_then_updates_and_a_reject() {
    let Some(python) = python() else { return };
    let _timing = timing_lock();
    let trading = Trading::start("Fix Watcher");
    let (desk, port, key) = (&trading.desk, trading.port, trading.key());
    let scratch = &trading.scratch;
    let mut scenario = Scenario::start(&python, port, key, scratch.path(), "market_data", json!({}));
    let snapshot = scenario.event("snapshot");
    assert_eq!(
        (snapshot["bid"].clone(), snapshot["size"].clone()),
        (json!("50000.00"), json!("0.50000000")),
        "{snapshot}"
    );
    assert_eq!(snapshot["firm"], json!(true), "{snapshot}");
    desk.set_price("BTC-USD", "50100.00", "50110.00");
    scenario.go();
    scenario.event("update");
    scenario.event("done");
    scenario.finish();
}

#[test]
fn a_read_only_key_is_a_drop_copy_of_its_clients_reports() {
    let Some(python) = python() else { return };
    let _timing = timing_lock();
    let trading = Trading::start("Fix Copied");
    let (desk, port) = (&trading.desk, trading.port);
    // The FIX session is a read-only key of the client; it trades over REST with its trading key.
    let created = desk.create_key(&trading.client_id, &json!({"scopes": ["read"], "algorithm": "hmac"}));
    let read_only = created.expect(201).clone();
    let (key_id, secret) = (text(&read_only["key_id"]), text(&read_only["secret"]));
    let rest = Signer::hmac(&trading.key_id, &trading.secret);
    let key = (key_id.as_str(), secret.as_str());
    let mut scenario = Scenario::start(&python, port, key, trading.scratch.path(), "drop_copy", json!({}));
    scenario.event("ready");
    let body = json!({"client_order_id": "rest-1", "type": "market", "instrument": "BTC-USD", "side": "buy",
        "quantity": "0.1"});
    let order = desk.post(&rest, "/v1/orders", &body).expect(201).clone();
    let done = scenario.event("done");
    assert_eq!(done["order_id"], order["order_id"], "{done}");
    scenario.finish();
}
