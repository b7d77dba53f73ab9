//! A node joins a desk only with the desk's keys, copied by the operator; it never starts a second desk.

use super::*;
use otcd_testkit::process::run_otcd;
use otcd_testkit::replication::NatsCluster;

#[test]
fn a_node_without_the_desk_keys_or_with_other_keys_refuses_to_join() {
    let _serial = serial();
    if skip_without_nats() {
        return;
    }
    let nats = NatsCluster::start(3);
    let root = tempfile::tempdir().unwrap();
    let (a, _desk) = first_node(root.path(), &nats.urls());
    let urls = nats.urls();
    let serve = ["serve", "--listen", "127.0.0.1:0", "--market", "manual", "--replication", &urls, "--node-id", "c"];
    let empty = root.path().join("c");
    let output = run_otcd(&serve, &empty);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a node without keys joined: {stderr}");
    assert!(stderr.contains("this node has no desk keys"), "{stderr}");
    assert!(!empty.join("journal").exists(), "nothing of a second desk was created");
    let other = root.path().join("d");
    copy_desk_keys(&a.data_dir, &other);
    let mut master = std::fs::read(other.join("master.key")).unwrap();
    master[0] ^= 0xff;
    std::fs::write(other.join("master.key"), master).unwrap();
    let output = run_otcd(&serve, &other);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a node with other keys joined: {stderr}");
    assert!(stderr.contains("not the desk's keys"), "{stderr}");
    assert_eq!(a.role().as_deref(), Some("leader"), "the desk is untouched");
}
