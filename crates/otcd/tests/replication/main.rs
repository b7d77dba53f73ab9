//! Black-box tests of a replicated desk (docs/operations.md): real `nats-server` processes in a three-node
//! JetStream cluster, real `otcd serve --replication` nodes, killed, paused and restarted.
//!
//! Skipped (with a message) when `/usr/sbin/nats-server` is not installed; `.ci/run` installs it.

mod events;
mod failover;
mod fencing;
mod keys;
mod promotion;
mod quorum;
mod standby_reads;

use otcd_testkit::http::{units, Reply};
use otcd_testkit::process::{client_body, read_admin_key};
use otcd_testkit::replication::{copy_desk_keys, nats_server_installed, Node, FAST_LEASE_CONFIG};
use otcd_testkit::signing::Signer;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// The NATS cluster and tests that kill processes on a timer must not share two cores with each other.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    otcd_testkit::process::timing_lock()
}

fn skip_without_nats() -> bool {
    if !nats_server_installed() {
        eprintln!("skipped: /usr/sbin/nats-server is not installed (apt-get install nats-server)");
        return true;
    }
    false
}

/// The first node of a new replicated desk, leading, with one approved client.
struct Desk {
    admin: Signer,
    client_id: String,
}

fn first_node(root: &Path, nats_urls: &str) -> (Node, Desk) {
    first_node_with(root, nats_urls, FAST_LEASE_CONFIG)
}

/// [`first_node`] with its own `--config` text.
fn first_node_with(root: &Path, nats_urls: &str, config: &str) -> (Node, Desk) {
    let node = Node::start("a", &root.join("a"), nats_urls, config);
    node.wait_for_role("leader", Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.try_send("GET", "/readyz", "", &[]).map(|reply| reply.status) != Ok(200) {
        assert!(Instant::now() < deadline, "the first node never became ready; log:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(25));
    }
    let admin = read_admin_key(&node.data_dir);
    let reply = node.try_signed(&admin, "POST", "/v1/admin/clients", &client_body("Replicated")).unwrap();
    assert_eq!(reply.status, 201, "create client: {}", reply.text);
    let client_id = reply.body["client_id"].as_str().expect("client_id").to_owned();
    (node, Desk { admin, client_id })
}

/// A standby joining the desk: the operator copies the keys first.
fn second_node(root: &Path, nats_urls: &str, first: &Node) -> Node {
    second_node_with(root, nats_urls, first, FAST_LEASE_CONFIG)
}

/// [`second_node`] with its own `--config` text.
fn second_node_with(root: &Path, nats_urls: &str, first: &Node, config: &str) -> Node {
    copy_desk_keys(&first.data_dir, &root.join("b"));
    let node = Node::start("b", &root.join("b"), nats_urls, config);
    node.wait_for_role("standby", Duration::from_secs(30));
    wait_until("the standby to name its leader", Duration::from_secs(10), || {
        node.cluster().is_some_and(|view| view["leader"]["node_id"] == "a")
    });
    node
}

fn deposit(node: &Node, desk: &Desk, reference: &str) -> Result<Reply, String> {
    let body = json!({"client_id": desk.client_id, "asset": "USD", "amount": "1", "reference": reference});
    node.try_signed(&desk.admin, "POST", "/v1/admin/deposits", &body)
}

/// The client's available USD in cents, as `node` answers.
fn available_cents(node: &Node, desk: &Desk) -> i128 {
    let path = format!("/v1/balances?client_id={}", desk.client_id);
    let reply = node.try_signed(&desk.admin, "GET", &path, &serde_json::Value::Null).unwrap();
    assert_eq!(reply.status, 200, "balances: {}", reply.text);
    let line = reply.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["asset"] == "USD"))
        .cloned()
        .unwrap_or_else(|| panic!("no USD line: {}", reply.text));
    units(line["available"].as_str().expect("available"), 2)
}

/// Every acknowledged deposit is on `leader` exactly once: repeating each gives `200` (a repeat, not a new
/// deposit), and the balance is one unit per distinct reference ever attempted (each attempt repeated here, so
/// every attempted reference is present exactly once now).
fn assert_exactly_once(leader: &Node, desk: &Desk, acknowledged: &[String], attempted: &[String]) {
    for reference in attempted {
        let reply = deposit(leader, desk, reference).expect("the leader answers");
        let acked = acknowledged.contains(reference);
        if acked {
            assert_eq!(reply.status, 200, "acknowledged deposit {reference} is missing: {}", reply.text);
        } else {
            assert!(matches!(reply.status, 200 | 201), "deposit {reference}: {}", reply.text);
        }
    }
    let distinct: std::collections::BTreeSet<&String> = attempted.iter().collect();
    assert_eq!(available_cents(leader, desk), distinct.len() as i128 * 100, "each deposit exactly once");
}

/// `otcd verify` on a stopped node's data directory.
fn assert_verifies(data_dir: &Path) {
    let output = otcd_testkit::process::run_otcd(&["verify"], data_dir);
    assert!(output.status.success(), "otcd verify {}: {}", data_dir.display(), String::from_utf8_lossy(&output.stderr));
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
