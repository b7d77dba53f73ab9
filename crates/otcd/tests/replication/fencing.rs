//! A leader paused past its lease (SIGSTOP) and resumed (SIGCONT) acknowledges nothing more and steps down.

use super::*;
use otcd_testkit::replication::NatsCluster;

#[test]
fn a_paused_leader_is_fenced_and_becomes_a_standby() {
    let _serial = serial();
    if skip_without_nats() {
        return;
    }
    let nats = NatsCluster::start(3);
    let root = tempfile::tempdir().unwrap();
    let (mut a, desk) = first_node(root.path(), &nats.urls());
    let mut b = second_node(root.path(), &nats.urls(), &a);
    let mut acknowledged = Vec::new();
    for index in 0..5 {
        let reference = format!("before-{index}");
        assert_eq!(deposit(&a, &desk, &reference).unwrap().status, 201);
        acknowledged.push(reference);
    }
    a.signal(libc::SIGSTOP);
    b.wait_for_role("leader", Duration::from_secs(20));
    wait_until("the new leader to acknowledge", Duration::from_secs(20), || {
        deposit(&b, &desk, "after-takeover").is_ok_and(|reply| matches!(reply.status, 200 | 201))
    });
    acknowledged.push("after-takeover".into());
    a.signal(libc::SIGCONT);
    // The old leader wakes up believing it leads: it must acknowledge nothing.
    let started = Instant::now();
    let mut attempted = acknowledged.clone();
    let mut index = 0;
    while started.elapsed() < Duration::from_secs(3) {
        index += 1;
        let reference = format!("to-old-leader-{index}");
        attempted.push(reference.clone());
        if let Ok(reply) = deposit(&a, &desk, &reference) {
            assert_eq!(reply.status, 503, "the fenced leader acknowledged {reference}: {}", reply.text);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    a.wait_for_role("standby", Duration::from_secs(20));
    assert_eq!(b.role().as_deref(), Some("leader"), "the new leader keeps leading");
    assert_exactly_once(&b, &desk, &acknowledged, &attempted);
    let leader_seq = b.cluster().unwrap()["applied_seq"].as_u64().unwrap();
    wait_until("the old leader to follow the new one", Duration::from_secs(20), || {
        a.cluster().is_some_and(|view| view["applied_seq"].as_u64() == Some(leader_seq))
    });
    a.terminate();
    b.terminate();
    assert_verifies(&a.data_dir);
    assert_verifies(&b.data_dir);
}
