//! Stale reads on a standby (`replication_standby_reads`): signed reads of the desk's state answered from the
//! standby's own desk, marked as a standby's; writes and live-service reads still `503 not_leader`; keys created
//! and revoked on the leader work, and stop working, on the standby too.

use super::*;
use otcd_testkit::http::text;
use otcd_testkit::replication::NatsCluster;

const STANDBY_READS_CONFIG: &str = "replication_standby_reads = true\n";

fn get(node: &Node, signer: &Signer, path: &str) -> Reply {
    node.try_signed(signer, "GET", path, &serde_json::Value::Null).expect("the node answers")
}

#[test]
fn a_standby_configured_to_serves_signed_stale_reads_and_still_refuses_writes() {
    let _serial = serial();
    if skip_without_nats() {
        return;
    }
    let nats = NatsCluster::start(3);
    let root = tempfile::tempdir().unwrap();
    let (mut a, desk) = first_node(root.path(), &nats.urls());
    let config = format!("{FAST_LEASE_CONFIG}{STANDBY_READS_CONFIG}");
    let b = second_node_with(root.path(), &nats.urls(), &a, &config);
    for index in 0..3 {
        assert_eq!(deposit(&a, &desk, &format!("r{index}")).unwrap().status, 201);
    }
    let leader_seq = a.cluster().unwrap()["applied_seq"].as_u64().unwrap();
    wait_until("the standby's desk to reach the leader's deposits", Duration::from_secs(10), || {
        b.cluster().is_some_and(|view| view["executed_seq"].as_u64() == Some(leader_seq))
    });

    // Reads of the desk's state: the same answer as the leader's, marked as a standby's. The standby started
    // empty, so the admin key reaches its key registry a moment after the record that made it.
    let balances = format!("/v1/balances?client_id={}", desk.client_id);
    wait_until("the desk's keys to reach the standby's registry", Duration::from_secs(5), || {
        get(&b, &desk.admin, &balances).status == 200
    });
    let on_standby = get(&b, &desk.admin, &balances);
    assert_eq!(on_standby.status, 200, "{}", on_standby.text);
    assert_eq!(on_standby.body, get(&a, &desk.admin, &balances).body, "the standby answers what the leader does");
    assert_eq!(available_cents(&b, &desk), 300);
    assert_eq!(on_standby.header("otc-node-role"), Some("standby"));
    let executed: u64 = on_standby.header("otc-executed-seq").expect("the seq the answer reflects").parse().unwrap();
    assert!(executed >= leader_seq, "the answer reflects at least seq {leader_seq}, said {executed}");
    assert_eq!(get(&a, &desk.admin, &balances).header("otc-node-role"), None, "the leader's answers are not marked");
    let client = get(&b, &desk.admin, &format!("/v1/admin/clients/{}", desk.client_id));
    assert_eq!((client.status, client.body["client_id"].as_str()), (200, Some(desk.client_id.as_str())));
    let ledger = get(&b, &desk.admin, &format!("/v1/ledger?client_id={}", desk.client_id));
    assert_eq!(ledger.status, 200, "{}", ledger.text);
    assert_eq!(ledger.body["items"].as_array().map(Vec::len), Some(3), "three deposits: {}", ledger.text);

    // Still a standby: writes, reads that need the leader's live services, and readiness.
    let write = deposit(&b, &desk, "on-standby").unwrap();
    assert_eq!((write.status, write.body["code"].as_str()), (503, Some("not_leader")), "{}", write.text);
    assert_eq!(write.body["leader"]["advertise"], a.url(""));
    for path in ["/v1/prices/BTC-USD", "/v1/admin/reports/pnl", "/v1/admin/reconciliation", "/v1/no-such-endpoint"] {
        let reply = get(&b, &desk.admin, path);
        assert_eq!((reply.status, reply.body["code"].as_str()), (503, Some("not_leader")), "{path}: {}", reply.text);
    }
    assert_eq!(b.try_send("GET", "/readyz", "", &[]).unwrap().status, 503);

    // Signed as on the leader: no signature, a bad one, or a stranger's key gets 401, not an answer.
    let unsigned = b.try_send("GET", &balances, "", &[]).unwrap();
    assert_eq!(unsigned.status, 401, "{}", unsigned.text);
    let stranger = Signer::hmac(&desk.admin.key_id, "not-the-secret");
    assert_eq!(get(&b, &stranger, &balances).status, 401);

    // A key created on the leader reads on the standby once the standby has its record; revoked, it stops.
    let created =
        a.try_signed(&desk.admin, "POST", "/v1/admin/keys", &json!({"scopes": ["read"], "algorithm": "hmac"})).unwrap();
    assert_eq!(created.status, 201, "{}", created.text);
    let watcher = Signer::hmac(&text(&created.body["key_id"]), &text(&created.body["secret"]));
    wait_until("the new key to read on the standby", Duration::from_secs(10), || {
        get(&b, &watcher, &balances).status == 200
    });
    let revoked = a
        .try_signed(&desk.admin, "DELETE", &format!("/v1/admin/keys/{}", watcher.key_id), &serde_json::Value::Null)
        .unwrap();
    assert!(matches!(revoked.status, 200 | 204), "{}", revoked.text);
    wait_until("the revoked key to be refused on the standby", Duration::from_secs(10), || {
        get(&b, &watcher, &balances).status == 401
    });

    // The leader dies: the standby that served reads takes over with its desk and serves everything.
    a.kill();
    b.wait_for_role("leader", Duration::from_secs(30));
    assert_eq!(b.cluster().unwrap()["last_promotion"]["live_state"], true, "handed over, not recovered");
    let mut written = None;
    wait_until("the new leader's first write", Duration::from_secs(10), || {
        written = deposit(&b, &desk, "after-failover").ok().filter(|reply| reply.status == 201);
        written.is_some()
    });
    let read = get(&b, &desk.admin, &balances);
    assert_eq!((read.status, read.header("otc-node-role")), (200, None), "a leader's answer: {}", read.text);
    assert_eq!(available_cents(&b, &desk), 400);
}

#[test]
fn a_standby_without_the_option_answers_no_reads() {
    let _serial = serial();
    if skip_without_nats() {
        return;
    }
    let nats = NatsCluster::start(3);
    let root = tempfile::tempdir().unwrap();
    let (a, desk) = first_node(root.path(), &nats.urls());
    let b = second_node(root.path(), &nats.urls(), &a);
    assert_eq!(deposit(&a, &desk, "r0").unwrap().status, 201);
    let reply = get(&b, &desk.admin, &format!("/v1/balances?client_id={}", desk.client_id));
    assert_eq!((reply.status, reply.body["code"].as_str()), (503, Some("not_leader")), "{}", reply.text);
}
