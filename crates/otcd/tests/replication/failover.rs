//! Leader and standby; the leader killed with `kill -9` again and again under concurrent signed writers.

use super::*;
use otcd_testkit::http::try_send;
use otcd_testkit::replication::NatsCluster;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the writers tried and what was acknowledged.
#[derive(Default)]
struct Ledger {
    attempted: Vec<String>,
    acknowledged: Vec<String>,
}

/// Writes deposits with fresh references to whichever node acknowledges, retrying each reference until it is
/// acknowledged (a repeat of an applied deposit answers 200, so a retry never applies it twice).
fn writer(name: String, urls: [String; 2], desk: Arc<Desk>, stop: Arc<AtomicBool>, ledger: Arc<Mutex<Ledger>>) {
    let agent = otcd_testkit::http::agent();
    let mut index = 0u64;
    while !stop.load(Ordering::Acquire) {
        index += 1;
        let reference = format!("{name}-{index}");
        ledger.lock().unwrap().attempted.push(reference.clone());
        let body =
            json!({"client_id": desk.client_id, "asset": "USD", "amount": "1", "reference": reference}).to_string();
        'retry: while !stop.load(Ordering::Acquire) {
            for url in &urls {
                let headers = desk.admin.headers("POST", "/v1/admin/deposits", &body);
                if let Ok(reply) = try_send(&agent, &format!("{url}/v1/admin/deposits"), "POST", &body, &headers) {
                    if matches!(reply.status, 200 | 201) {
                        ledger.lock().unwrap().acknowledged.push(reference.clone());
                        break 'retry;
                    }
                    // A request signed before the new leader started is refused as after any restart: sign again.
                    let signed_too_early = reply.status == 401 && reply.text.contains("sign the request again");
                    assert!(reply.status >= 500 || signed_too_early, "a deposit was refused: {}", reply.text);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn a_standby_refuses_writes_and_reports_its_lag() {
    let _serial = serial();
    if skip_without_nats() {
        return;
    }
    let nats = NatsCluster::start(3);
    let root = tempfile::tempdir().unwrap();
    let (a, desk) = first_node(root.path(), &nats.urls());
    let b = second_node(root.path(), &nats.urls(), &a);
    for index in 0..5 {
        assert_eq!(deposit(&a, &desk, &format!("d{index}")).unwrap().status, 201);
    }
    let reply = deposit(&b, &desk, "on-standby").unwrap();
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_eq!(reply.body["code"], "not_leader");
    assert_eq!(reply.body["leader"]["advertise"], a.url(""), "the problem names the leader: {}", reply.text);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(b.try_send("GET", "/readyz", "", &[]).unwrap().status, 503);
    assert_eq!(a.try_send("GET", "/readyz", "", &[]).unwrap().status, 200);
    let leader_seq = a.cluster().unwrap()["applied_seq"].as_u64().unwrap();
    wait_until("the standby to catch up", Duration::from_secs(10), || {
        b.cluster().is_some_and(|view| view["applied_seq"].as_u64() == Some(leader_seq) && view["lag_records"] == 0)
    });
    let view = b.cluster().unwrap();
    assert_eq!((view["node_id"].as_str(), view["role"].as_str()), (Some("b"), Some("standby")));
    assert_eq!(view["leader"]["node_id"], "a");
    let metrics = b.try_send("GET", "/metrics", "", &[]).unwrap().text;
    assert!(metrics.contains("otcd_replication_leader 0\n"), "{metrics}");
    assert!(metrics.contains("otcd_replication_lag_records 0\n"), "{metrics}");
    let metrics = a.try_send("GET", "/metrics", "", &[]).unwrap().text;
    assert!(metrics.contains("otcd_replication_leader 1\n"), "{metrics}");
    assert!(metrics.contains("otcd_replication_append_seconds_count"), "the leader's append latency: {metrics}");
}

#[test]
fn killing_the_leader_again_and_again_loses_no_acknowledged_write() {
    let _serial = serial();
    if skip_without_nats() {
        return;
    }
    let nats = NatsCluster::start(3);
    let root = tempfile::tempdir().unwrap();
    let (a, desk) = first_node(root.path(), &nats.urls());
    let b = second_node(root.path(), &nats.urls(), &a);
    let mut nodes = [a, b];
    let desk = Arc::new(desk);
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let urls = [nodes[0].url(""), nodes[1].url("")];
    let writers: Vec<_> = (0..3)
        .map(|index| {
            let (urls, desk, stop, ledger) = (urls.clone(), desk.clone(), stop.clone(), ledger.clone());
            std::thread::spawn(move || writer(format!("w{index}"), urls, desk, stop, ledger))
        })
        .collect();
    let agent = otcd_testkit::http::agent();
    let mut failovers_ms = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for kill in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(300 + seed % 700));
        let leader = nodes.iter().position(|node| node.role().as_deref() == Some("leader")).expect("a leader");
        let survivor = 1 - leader;
        let acked_before = ledger.lock().unwrap().acknowledged.len();
        nodes[leader].kill();
        let killed_at = Instant::now();
        // The survivor's first acknowledged write after the kill (a probe deposit, retried until it lands).
        let reference = format!("probe-{kill}");
        ledger.lock().unwrap().attempted.push(reference.clone());
        let body =
            json!({"client_id": desk.client_id, "asset": "USD", "amount": "1", "reference": reference}).to_string();
        loop {
            let headers = desk.admin.headers("POST", "/v1/admin/deposits", &body);
            let url = nodes[survivor].url("/v1/admin/deposits");
            if try_send(&agent, &url, "POST", &body, &headers).is_ok_and(|reply| matches!(reply.status, 200 | 201)) {
                break;
            }
            assert!(killed_at.elapsed() < Duration::from_secs(30), "no failover; log:\n{}", nodes[survivor].log());
            std::thread::sleep(Duration::from_millis(5));
        }
        failovers_ms.push(killed_at.elapsed().as_millis());
        ledger.lock().unwrap().acknowledged.push(reference);
        assert!(ledger.lock().unwrap().acknowledged.len() > acked_before, "writes continue");
        nodes[leader].restart();
        nodes[leader].wait_for_role("standby", Duration::from_secs(30));
    }
    stop.store(true, Ordering::Release);
    writers.into_iter().for_each(|writer| writer.join().expect("a writer panicked"));
    failovers_ms.sort_unstable();
    eprintln!(
        "failover kill -> first acknowledged write on the new leader, ms: {failovers_ms:?} (p50 {}, max {})",
        failovers_ms[failovers_ms.len() / 2],
        failovers_ms[failovers_ms.len() - 1]
    );
    let leader = nodes.iter().position(|node| node.role().as_deref() == Some("leader")).expect("a leader");
    let ledger = ledger.lock().unwrap();
    assert!(ledger.acknowledged.len() >= 20, "the writers got writes through: {}", ledger.acknowledged.len());
    assert_exactly_once(&nodes[leader], &desk, &ledger.acknowledged, &ledger.attempted);
    let leader_seq = nodes[leader].cluster().unwrap()["applied_seq"].as_u64().unwrap();
    let standby = &nodes[1 - leader];
    wait_until("the standby to catch up", Duration::from_secs(20), || {
        standby.cluster().is_some_and(|view| view["applied_seq"].as_u64() == Some(leader_seq))
    });
    for node in &mut nodes {
        node.terminate();
    }
    for node in &nodes {
        assert_verifies(&node.data_dir);
    }
}
