//! A standby re-executes the stream as it arrives (a live desk, its own snapshots): when it takes over it applies
//! only the tail it had not reached, whatever the length of the history (`last_promotion` of the cluster view).

use super::*;
use otcd_testkit::replication::NatsCluster;

/// Deposits of one unit each, `count` of them, acknowledged by `node`.
fn deposits(node: &Node, desk: &Desk, prefix: &str, count: usize) {
    for index in 0..count {
        let reply = deposit(node, desk, &format!("{prefix}-{index}")).expect("the leader answers");
        assert_eq!(reply.status, 201, "deposit {index}: {}", reply.text);
    }
}

/// Waits until `standby` has re-executed everything `leader` has acknowledged.
fn wait_for_live_state(standby: &Node, leader: &Node) -> u64 {
    let leader_seq = leader.cluster().unwrap()["applied_seq"].as_u64().unwrap();
    wait_until("the standby's desk to reach the leader's head", Duration::from_secs(30), || {
        standby.cluster().is_some_and(|view| view["executed_seq"].as_u64() >= Some(leader_seq))
    });
    leader_seq
}

/// Kills `leader`, waits for `standby` to lead, and returns its `last_promotion`.
fn fail_over(leader: &mut Node, standby: &Node) -> serde_json::Value {
    leader.kill();
    standby.wait_for_role("leader", Duration::from_secs(30));
    let view = standby.cluster().expect("the new leader answers");
    view["last_promotion"].clone()
}

#[test]
fn a_standby_takes_over_with_its_live_desk_replaying_only_the_tail() {
    let _serial = serial();
    if skip_without_nats() {
        return;
    }
    const HISTORY_RECORDS: usize = 300;
    // Snapshots every 100 records: the standby writes its own as it follows.
    let config = format!("{FAST_LEASE_CONFIG}snapshot_every_records = 100\n");
    let nats = NatsCluster::start(3);
    let root = tempfile::tempdir().unwrap();
    let (mut a, desk) = first_node_with(root.path(), &nats.urls(), &config);
    let mut b = second_node_with(root.path(), &nats.urls(), &a, &config);
    deposits(&a, &desk, "history", HISTORY_RECORDS);
    let head_seq = wait_for_live_state(&b, &a);
    let standby_view = b.cluster().unwrap();
    assert_eq!(standby_view["last_promotion"], serde_json::Value::Null, "{standby_view}");
    wait_until("the standby's own snapshot", Duration::from_secs(10), || {
        std::fs::read_dir(b.data_dir.join("snapshots")).is_ok_and(|entries| entries.count() > 0)
    });
    let balance_cents = available_cents(&a, &desk);

    let promotion = fail_over(&mut a, &b);
    assert_eq!(promotion["live_state"], true, "the standby's desk was handed over: {promotion}");
    assert!(promotion["head_seq"].as_u64().unwrap() >= head_seq, "{promotion}");
    // Only records the leader appended after the standby had caught up (none, or a worker's few) are re-executed
    // at promotion: a recovery from the files would replay the whole history (no snapshot covers it all).
    let replayed = promotion["replayed_records"].as_u64().unwrap();
    assert!(replayed < 10, "promotion replayed {replayed} of {head_seq} records: {promotion}");
    assert_eq!(available_cents(&b, &desk), balance_cents, "the new leader serves the same state");
    assert_eq!(deposit(&b, &desk, "history-0").unwrap().status, 200, "an old deposit is a repeat on the new leader");
    deposits(&b, &desk, "after-b", 20);

    // The old leader comes back as a standby (recovering its own files once, off the critical path) and takes
    // over again the same way.
    a.restart();
    a.wait_for_role("standby", Duration::from_secs(30));
    wait_for_live_state(&a, &b);
    let balance_cents = available_cents(&b, &desk);
    let promotion = fail_over(&mut b, &a);
    assert_eq!(promotion["live_state"], true, "{promotion}");
    assert!(promotion["replayed_records"].as_u64().unwrap() < 10, "{promotion}");
    assert_eq!(available_cents(&a, &desk), balance_cents);
    deposits(&a, &desk, "after-a", 5);
    a.terminate();
    b.restart();
    b.terminate();
    assert_verifies(&a.data_dir);
    assert_verifies(&b.data_dir);
}
