//! Two of three NATS servers killed: writes get `503` with `Retry-After`; servers back: writes resume without
//! restarting the desk, and nothing acknowledged is lost.

use super::*;
use otcd_testkit::replication::NatsCluster;

#[test]
fn writes_stop_without_a_quorum_and_resume_when_it_returns() {
    let _serial = serial();
    if skip_without_nats() {
        return;
    }
    let mut nats = NatsCluster::start(3);
    let root = tempfile::tempdir().unwrap();
    let (a, desk) = first_node(root.path(), &nats.urls());
    let pid = a.pid();
    let mut acknowledged = Vec::new();
    let mut attempted = Vec::new();
    for index in 0..5 {
        let reference = format!("before-{index}");
        attempted.push(reference.clone());
        assert_eq!(deposit(&a, &desk, &reference).unwrap().status, 201);
        acknowledged.push(reference);
    }
    nats.kill(1);
    nats.kill(2);
    let mut index = 0;
    let refused = loop {
        index += 1;
        let reference = format!("during-{index}");
        attempted.push(reference.clone());
        let reply = deposit(&a, &desk, &reference).expect("the desk answers without a quorum");
        match reply.status {
            200 | 201 => acknowledged.push(reference),
            503 => break reply,
            _ => panic!("unexpected answer without a quorum: {}", reply.text),
        }
        assert!(index < 500, "writes were still acknowledged without a quorum");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(refused.body["code"], "unavailable", "{}", refused.text);
    assert!(refused.header("retry-after").is_some(), "a 503 says when to retry");
    nats.restart(1);
    nats.restart(2);
    let started = Instant::now();
    loop {
        index += 1;
        let reference = format!("after-{index}");
        attempted.push(reference.clone());
        if let Ok(reply) = deposit(&a, &desk, &reference) {
            if matches!(reply.status, 200 | 201) {
                acknowledged.push(reference);
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "writes never resumed; log:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("writes resumed {} ms after the servers were restarted", started.elapsed().as_millis());
    assert_eq!(a.pid(), pid, "the same process serves again");
    assert_exactly_once(&a, &desk, &acknowledged, &attempted);
}
