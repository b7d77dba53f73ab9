//! The architecture invariants of ARCHITECTURE.md that a dependency graph can show, checked on the workspace's
//! resolved graph (`cargo metadata`, normal dependencies only, transitively): a change that breaks one fails here
//! rather than in review.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Package name → its normal (non-dev, non-build) dependencies' package names, for every resolved package.
struct Graph {
    normal: BTreeMap<String, BTreeSet<String>>,
    workspace: BTreeSet<String>,
}

impl Graph {
    fn load() -> Self {
        let output = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--locked"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo metadata runs");
        assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
        let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
        let name_of: BTreeMap<&str, &str> = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|package| (package["id"].as_str().unwrap(), package["name"].as_str().unwrap()))
            .collect();
        let workspace = metadata["workspace_members"]
            .as_array()
            .expect("workspace members")
            .iter()
            .map(|id| name_of[id.as_str().unwrap()].to_owned())
            .collect();
        let mut normal = BTreeMap::new();
        for node in metadata["resolve"]["nodes"].as_array().expect("a resolved graph") {
            let dependencies = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dep| dep["dep_kinds"].as_array().unwrap().iter().any(|kind| kind["kind"].is_null()))
                .map(|dep| name_of[dep["pkg"].as_str().unwrap()].to_owned())
                .collect();
            normal.insert(name_of[node["id"].as_str().unwrap()].to_owned(), dependencies);
        }
        Self { normal, workspace }
    }

    /// Every package `package` depends on, directly or not (normal dependencies).
    fn closure(&self, package: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut pending = vec![package.to_owned()];
        while let Some(next) = pending.pop() {
            for dependency in self.normal.get(&next).into_iter().flatten() {
                if seen.insert(dependency.clone()) {
                    pending.push(dependency.clone());
                }
            }
        }
        seen
    }
}

#[test]
fn only_the_http_crate_and_the_binaries_depend_on_an_http_framework() {
    let graph = Graph::load();
    // The binary serves HTTP through otcd-http; the load generator is an HTTP client by nature, and so is the
    // webhook worker (reqwest, built on hyper and tower; it still must not reach axum or otcd-http: below).
    // The venue connectors fetch REST book snapshots with reqwest too, and must not reach axum or otcd-http either.
    // So does the exchange order entry (signed REST orders).
    let allowed = ["otcd-http", "otcd", "otcd-loadgen", "otcd-webhooks", "otcd-venues", "otcd-execution"];
    for crate_name in graph.workspace.iter().filter(|name| !allowed.contains(&name.as_str())) {
        let reached: Vec<_> = graph
            .closure(crate_name)
            .into_iter()
            .filter(|dep| ["axum", "hyper", "tower"].contains(&dep.as_str()))
            .collect();
        assert!(reached.is_empty(), "{crate_name} depends on {reached:?}");
    }
    assert!(graph.closure("otcd-http").contains("axum"), "the check can see axum where it is");
    for client in ["otcd-webhooks", "otcd-venues", "otcd-execution"] {
        let closure = graph.closure(client);
        let reached: Vec<_> = closure.iter().filter(|dep| ["axum", "otcd-http"].contains(&dep.as_str())).collect();
        assert!(reached.is_empty(), "{client} is an outbound client only, yet depends on {reached:?}");
    }
    let events = graph.closure("otcd-eventstream");
    assert!(events.contains("async-nats") && events.contains("otcd-host"), "the event stream is a NATS adapter");
    let fix = graph.closure("otcd-fix");
    assert!(fix.contains("otcd-services") && fix.contains("otcd-core"), "the FIX gateway calls the services");
}

#[test]
fn only_the_nats_adapters_and_the_binary_speak_nats() {
    let graph = Graph::load();
    let allowed = ["otcd-replication", "otcd-eventstream", "otcd"];
    for crate_name in graph.workspace.iter().filter(|name| !allowed.contains(&name.as_str())) {
        assert!(!graph.closure(crate_name).contains("async-nats"), "{crate_name} depends on async-nats");
    }
    assert!(graph.closure("otcd-replication").contains("async-nats"), "the check can see async-nats where it is");
}

#[test]
fn the_core_depends_on_no_io_crate() {
    let graph = Graph::load();
    let direct = &graph.normal["otcd-core"];
    let expected: BTreeSet<String> = ["otcd-address", "serde", "thiserror"].map(String::from).into();
    assert_eq!(direct, &expected, "otcd-core's dependencies");
    let reached = graph.closure("otcd-core");
    // (`libc` is reached through `cpufeatures`, which only asks the CPU what SHA instructions it has.)
    for io in ["tokio", "mio", "socket2", "rand", "getrandom", "time", "serde_json", "tracing"] {
        assert!(!reached.contains(io), "otcd-core reaches {io}");
    }
}

#[test]
fn the_layers_point_one_way_and_workers_see_ports_not_simulators() {
    let graph = Graph::load();
    let forbidden = [
        ("otcd-core", &["otcd-journal", "otcd-host", "otcd-services", "otcd-http", "otcd-fix"][..]),
        ("otcd-journal", &["otcd-host", "otcd-services", "otcd-http", "otcd-fix"][..]),
        ("otcd-host", &["otcd-services", "otcd-http", "otcd-rails-sim", "otcd-market", "otcd-fix"][..]),
        ("otcd-services", &["otcd-http", "otcd-rails-sim", "otcd-fix"][..]),
        ("otcd-rails-sim", &["otcd-http", "otcd-fix"][..]),
        ("otcd-http", &["otcd-rails-sim", "otcd-fix"][..]),
        // The FIX gateway is an edge beside HTTP: it calls the services, never the HTTP edge or a simulator.
        ("otcd-fix", &["otcd-http", "otcd-rails-sim", "otcd-webhooks"][..]),
        // Connectors are market adapters: the core's types and the market hub, nothing above them.
        (
            "otcd-venues",
            &[
                "otcd-journal",
                "otcd-host",
                "otcd-services",
                "otcd-http",
                "otcd-rails-sim",
                "otcd-reports",
                "otcd-webhooks",
                "otcd-fix",
                "otcd-execution",
            ][..],
        ),
        ("otcd-market", &["otcd-venues", "otcd-execution"][..]),
        ("otcd-services", &["otcd-execution", "otcd-venues"][..]),
        // Order entry adapters implement the services' venue port: no edge, no simulator.
        (
            "otcd-execution",
            &["otcd-http", "otcd-rails-sim", "otcd-fix", "otcd-webhooks", "otcd-eventstream", "otcd-replication"][..],
        ),
        // The event stream publishes the host's event feed through the services: no edge, no simulator.
        ("otcd-eventstream", &["otcd-http", "otcd-rails-sim", "otcd-fix", "otcd-webhooks", "otcd-venues"][..]),
        // The replication adapter implements the host's journal port over NATS: below the services and edges.
        (
            "otcd-replication",
            &["otcd-services", "otcd-http", "otcd-rails-sim", "otcd-fix", "otcd-webhooks", "otcd-venues"][..],
        ),
    ];
    let venues_direct: BTreeSet<&str> = graph.normal["otcd-venues"]
        .iter()
        .filter(|dependency| graph.workspace.contains(*dependency))
        .map(String::as_str)
        .collect();
    assert_eq!(venues_direct, BTreeSet::from(["otcd-core", "otcd-market"]), "otcd-venues' workspace dependencies");
    for (crate_name, must_not_reach) in forbidden {
        let reached = graph.closure(crate_name);
        for other in must_not_reach {
            assert!(!reached.contains(*other), "{crate_name} depends on {other}");
        }
    }
}
