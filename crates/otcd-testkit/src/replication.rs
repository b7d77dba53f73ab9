//! A replicated desk for black-box tests: a JetStream cluster of real `nats-server` processes on loopback ports
//! with store directories in a temporary folder ([`NatsCluster`]), and `otcd serve --replication` nodes on fixed
//! ports ([`Node`]), which the tests kill (`kill -9`), pause (SIGSTOP), resume and restart. Everything is killed
//! when dropped.

use crate::http::{agent, try_send, Reply};
use crate::signing::Signer;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Where Debian's `nats-server` package installs the server.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// True when `nats-server` is installed (the replication tests skip otherwise, saying so).
pub fn nats_server_installed() -> bool {
    Path::new(NATS_SERVER).is_file()
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("address").port()
}

struct NatsServer {
    name: String,
    client_port: u16,
    monitor_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// Three (or `size`) `nats-server` processes forming one JetStream cluster (one: a lone JetStream server).
pub struct NatsCluster {
    servers: Vec<NatsServer>,
    _dir: TempDir,
}

impl NatsCluster {
    pub fn start(size: usize) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let mut servers = Vec::new();
        for index in 0..size {
            let name = format!("n{}", index + 1);
            let (client_port, monitor_port) = (free_port(), free_port());
            let routes: Vec<String> =
                cluster_ports.iter().map(|port| format!("nats-route://127.0.0.1:{port}")).collect();
            let store = dir.path().join(&name);
            // One server is a plain JetStream server: a cluster of one never elects a meta leader.
            let cluster = match size {
                1 => String::new(),
                _ => format!(
                    "cluster {{ name: otcd-test, listen: 127.0.0.1:{}, routes: [{}] }}\n",
                    cluster_ports[index],
                    routes.join(", ")
                ),
            };
            let text = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client_port}\nhttp: 127.0.0.1:{monitor_port}\n\
                 max_payload: 2MB\njetstream {{ store_dir: \"{}\" }}\n{cluster}",
                store.display(),
            );
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(&config, text).expect("write the NATS config");
            servers.push(NatsServer { name, client_port, monitor_port, config, child: None });
        }
        let mut cluster = Self { servers, _dir: dir };
        for index in 0..size {
            cluster.start_server(index);
        }
        cluster.wait_healthy(&(0..size).collect::<Vec<_>>());
        cluster
    }

    fn start_server(&mut self, index: usize) {
        let server = &mut self.servers[index];
        assert!(server.child.is_none(), "{} runs already", server.name);
        let child = Command::new(NATS_SERVER)
            .arg("-c")
            .arg(&server.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        server.child = Some(child);
    }

    /// Waits until the servers report JetStream healthy (a meta leader elected, streams current).
    fn wait_healthy(&self, indexes: &[usize]) {
        let agent = agent();
        let deadline = Instant::now() + Duration::from_secs(60);
        for &index in indexes {
            let url = format!("http://127.0.0.1:{}/healthz", self.servers[index].monitor_port);
            while !try_send(&agent, &url, "GET", "", &[]).is_ok_and(|reply| reply.status == 200) {
                assert!(Instant::now() < deadline, "nats-server {} did not become healthy", self.servers[index].name);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// `nats://127.0.0.1:P1,nats://...`, for `--replication`.
    pub fn urls(&self) -> String {
        let urls: Vec<String> =
            self.servers.iter().map(|server| format!("nats://127.0.0.1:{}", server.client_port)).collect();
        urls.join(",")
    }

    /// `kill -9` one server.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.servers[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed server again on its store directory (without waiting for it).
    pub fn restart(&mut self, index: usize) {
        self.start_server(index);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for index in 0..self.servers.len() {
            self.kill(index);
        }
    }
}

/// One `otcd serve --replication` node on a fixed port.
pub struct Node {
    pub name: String,
    pub port: u16,
    pub data_dir: PathBuf,
    args: Vec<String>,
    config: PathBuf,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
}

/// Lease settings for tests: a failover within about two seconds.
pub const FAST_LEASE_CONFIG: &str = "replication_lease_ms = 1500\nreplication_renew_ms = 300\n\
                                     replication_ack_timeout_ms = 1000\nmax_book_age_ms = 60000\n";

impl Node {
    /// Starts node `name` on `data_dir` against `nats_urls`, with `config` as its `--config` file (written into
    /// `data_dir`'s parent), and waits until it answers `/healthz`.
    pub fn start(name: &str, data_dir: &Path, nats_urls: &str, config: &str) -> Self {
        let port = free_port();
        let parent = data_dir.parent().expect("a data directory inside a folder");
        let config_path = parent.join(format!("{name}.toml"));
        std::fs::write(&config_path, config).expect("write the node's config");
        let args = vec![
            "serve".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--market".into(),
            "manual".into(),
            "--replication".into(),
            nats_urls.into(),
            "--node-id".into(),
            name.into(),
        ];
        let mut node = Self {
            name: name.into(),
            port,
            data_dir: data_dir.to_owned(),
            args,
            config: config_path,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            agent: agent(),
        };
        node.restart();
        node
    }

    /// Starts the process again (after [`Node::kill`]) with the same arguments and waits for `/healthz`.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "node {} runs already", self.name);
        let mut child = Command::new(crate::process::otcd_binary())
            .args(&self.args)
            .arg("--config")
            .arg(&self.config)
            .env("OTCD_ENGINE_PREFAULT_MIB", "0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn otcd serve --replication");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = self.log.clone();
        let name = self.name.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                log.push_str(&format!("[{name}] {line}\n"));
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.try_send("GET", "/healthz", "", &[]).is_ok_and(|reply| reply.status == 200) {
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
                panic!("node {} exited with {status}; log:\n{}", self.name, self.log());
            }
            assert!(Instant::now() < deadline, "node {} did not answer /healthz; log:\n{}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("a running node").id() as i32
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `kill -9`, waiting for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (a clean stop).
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            if crate::process::wait_timeout(&mut child, crate::process::EXIT_TIMEOUT).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Sends `signal` (SIGSTOP, SIGCONT) to the process.
    pub fn signal(&self, signal: i32) {
        let result = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(result, 0, "kill({signal}) node {}", self.name);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(String, String)],
    ) -> Result<Reply, String> {
        try_send(&self.agent, &self.url(path), method, body, headers)
    }

    /// A signed request; `Err` for transport failures (a killed or paused node).
    pub fn try_signed(&self, signer: &Signer, method: &str, path: &str, body: &Value) -> Result<Reply, String> {
        let body = if body.is_null() { String::new() } else { body.to_string() };
        self.try_send(method, path, &body, &signer.headers(method, path, &body))
    }

    /// `GET /v1/admin/cluster`.
    pub fn cluster(&self) -> Option<Value> {
        self.try_send("GET", "/v1/admin/cluster", "", &[])
            .ok()
            .filter(|reply| reply.status == 200)
            .map(|reply| reply.body)
    }

    pub fn role(&self) -> Option<String> {
        self.cluster().and_then(|view| view["role"].as_str().map(str::to_owned))
    }

    /// Waits until the node says it has `role`.
    pub fn wait_for_role(&self, role: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.role().as_deref() != Some(role) {
            assert!(Instant::now() < deadline, "node {} never became {role}; log:\n{}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused process must be resumed to die promptly.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        }
        self.kill();
    }
}

/// Copies the desk's keys from one node's data directory into a new node's (what the operator does before a
/// new node's first start, docs/operations.md).
pub fn copy_desk_keys(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the new node's data directory");
    for file in ["master.key", "desk-signing.key"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap_or_else(|error| panic!("copy {file}: {error}"));
    }
}
