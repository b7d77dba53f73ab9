//! The harness around the real `otcd` binary: [`TestDesk`] is one `otcd serve --market manual` on its own data
//! directory and a port the system picks, with its log captured, requests signed as its admin or a client, the
//! admin chores the suites share (clients, keys, deposits, balances, tiers, manual prices, quotes), and the ways a
//! desk ends (a signal, `kill -9`, SIGTERM) and starts again on the same data. [`run_otcd`] runs the offline
//! subcommands (`verify`, `report`, `audit-export`, a `serve` expected to refuse).
//!
//! Every process gets `OTCD_ENGINE_PREFAULT_MIB=0`: the suites start hundreds of short-lived desks, and each would
//! otherwise touch its engine's memory up front.

use crate::http::{agent, text, try_send, Reply};
use crate::signing::Signer;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a desk may take to print its listening address (a loaded machine starts it slowly).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping process may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A configuration for tests that quote: manual books stay fresh for a minute, so a busy machine cannot turn a
/// quote test into a staleness test. Quote validity keeps its built-in default.
pub const RELAXED_CONFIG: &str = "max_book_age_ms = 60000\n";

/// Tests that measure wall-clock time (staleness, expiry) and CPU-heavy tests (a slow stream consumer) take this
/// lock, so that the one does not starve the other's deadlines.
pub fn timing_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `otcd` binary under test.
///
/// Cargo builds it for the integration tests of its package and names it in `CARGO_BIN_EXE_otcd`, at build time
/// (which only the test crate itself sees, through `env!`) and, with newer Cargo, at run time. Without the
/// variable, it is where Cargo puts it: next to the `deps` directory that holds the running test executable.
pub fn otcd_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let binary = std::env::var_os("CARGO_BIN_EXE_otcd").map(PathBuf::from).unwrap_or_else(|| {
            let test = std::env::current_exe().expect("the test executable's path");
            let profile = test.parent().and_then(Path::parent).expect("a test executable in target/<profile>/deps");
            profile.join(format!("otcd{}", std::env::consts::EXE_SUFFIX))
        });
        assert!(binary.is_file(), "no otcd binary at {}: run the suite with `cargo test -p otcd`", binary.display());
        binary
    })
}

/// A command for [`otcd_binary`], with what every process of the suites gets: no stdin, and no prefault of the
/// engine's memory (see the module notes).
fn otcd_command() -> Command {
    let mut command = Command::new(otcd_binary());
    command.env("OTCD_ENGINE_PREFAULT_MIB", "0").stdin(Stdio::null());
    command
}

/// How to start a desk: its data directory, configuration and extra `otcd serve` arguments. Starting the same
/// `Launch` again starts the same desk again.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    data_dir: Option<PathBuf>,
    config: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launch {
    /// On `data_dir`, new or existing, which the caller keeps (to run offline commands on it, or to edit it
    /// between runs). Without it, the desk gets a fresh temporary directory that lives as long as the desk.
    pub fn data_dir(mut self, data_dir: &Path) -> Self {
        self.data_dir = Some(data_dir.to_owned());
        self
    }

    /// The text of the `--config` TOML file.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// More `otcd serve` arguments (such as `--sanctions-dir DIR`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|arg| (*arg).to_owned()));
        self
    }

    /// An environment variable of the `otcd serve` process (such as a venue's API credentials).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the desk and waits until it listens.
    pub fn start(&self) -> TestDesk {
        self.start_with(tempfile::tempdir().expect("a temporary directory"))
    }

    /// `scratch` holds the config file, and the data directory when the caller gave none.
    fn start_with(&self, scratch: TempDir) -> TestDesk {
        let data_dir = self.data_dir.clone().unwrap_or_else(|| scratch.path().join("desk"));
        let mut command = otcd_command();
        command.args(["serve", "--data-dir"]).arg(&data_dir);
        command.args(["--listen", "127.0.0.1:0"]);
        // Manual prices unless the launch names its own market source.
        if !self.args.iter().any(|arg| arg == "--market") {
            command.args(["--market", "manual"]);
        }
        command.args(&self.args);
        command.envs(self.env.iter().map(|(name, value)| (name, value)));
        if let Some(config) = &self.config {
            let path = scratch.path().join("otcd.toml");
            std::fs::write(&path, config).expect("write the config file");
            command.arg("--config").arg(path);
        }
        let mut child = command
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn otcd serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let captured = log.clone();
        std::thread::spawn(move || read_log(stderr, &captured, &found));
        let address = match address.recv_timeout(START_TIMEOUT) {
            Ok(address) => address,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "otcd serve did not report `otcd listening address=...` ({error}); log:\n{}",
                    log.lock().unwrap_or_else(PoisonError::into_inner)
                );
            }
        };
        let admin = read_admin_key(&data_dir);
        TestDesk { child, address, data_dir, admin, log, agent: agent(), launch: self.clone(), scratch: Some(scratch) }
    }
}

/// A running `otcd serve --market manual`; killed (SIGKILL) when dropped.
pub struct TestDesk {
    child: Child,
    /// `host:port` it listens on.
    pub address: String,
    pub data_dir: PathBuf,
    /// The admin key the desk wrote to `DATA/admin-key.json` on its first start.
    pub admin: Signer,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
    launch: Launch,
    /// Taken only to hand it on to the restarted desk.
    scratch: Option<TempDir>,
}

impl TestDesk {
    /// A desk to configure before starting it.
    pub fn launch() -> Launch {
        Launch::default()
    }

    /// A new desk on a fresh temporary data directory, with the built-in configuration.
    pub fn start() -> Self {
        Self::launch().start()
    }

    /// A new desk with [`RELAXED_CONFIG`]: the default of the quote and web suites.
    pub fn relaxed() -> Self {
        Self::with_config(RELAXED_CONFIG)
    }

    /// A new desk with `toml` as its `--config` file.
    pub fn with_config(toml: &str) -> Self {
        Self::launch().config(toml).start()
    }

    /// A desk on `data_dir`, new or existing; the caller keeps the directory alive.
    pub fn start_in(data_dir: &Path) -> Self {
        Self::launch().data_dir(data_dir).start()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Everything the desk logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Any request with explicit headers; panics only on transport failures.
    pub fn send(&self, method: &str, path: &str, body: &str, headers: &[(String, String)]) -> Reply {
        try_send(&self.agent, &self.url(path), method, body, headers)
            .unwrap_or_else(|error| panic!("{method} {path} failed in transport: {error}; log:\n{}", self.log()))
    }

    pub fn signed(&self, signer: &Signer, method: &str, path: &str, body: &str) -> Reply {
        self.send(method, path, body, &signer.headers(method, path, body))
    }

    /// A request without a signature.
    pub fn public_get(&self, path: &str) -> Reply {
        self.send("GET", path, "", &[])
    }

    pub fn get(&self, signer: &Signer, path: &str) -> Reply {
        self.signed(signer, "GET", path, "")
    }

    pub fn delete(&self, signer: &Signer, path: &str) -> Reply {
        self.signed(signer, "DELETE", path, "")
    }

    pub fn post(&self, signer: &Signer, path: &str, body: &Value) -> Reply {
        self.signed(signer, "POST", path, &body.to_string())
    }

    pub fn patch(&self, signer: &Signer, path: &str, body: &Value) -> Reply {
        self.signed(signer, "PATCH", path, &body.to_string())
    }

    pub fn put(&self, signer: &Signer, path: &str, body: &Value) -> Reply {
        self.signed(signer, "PUT", path, &body.to_string())
    }

    /// Creates a client from `body` as the admin (asserting 201); returns the created client.
    #[track_caller]
    pub fn create_client(&self, body: &Value) -> Value {
        self.post(&self.admin, "/v1/admin/clients", body).expect(201).clone()
    }

    /// A KYC-approved prefunded client on the standard tier; returns its id.
    #[track_caller]
    pub fn new_client(&self, name: &str) -> String {
        text(&self.create_client(&client_body(name))["client_id"])
    }

    /// A prefunded client in Germany on `tier` with `kyc_status`, and a `read`+`trade` HMAC key for it.
    #[track_caller]
    pub fn client(&self, name: &str, tier: &str, kyc_status: &str) -> (String, Signer) {
        let mut body = client_body(name);
        body["tier"] = json!(tier);
        body["kyc_status"] = json!(kyc_status);
        let client_id = text(&self.create_client(&body)["client_id"]);
        let key = self.client_key(&client_id, &["read", "trade"]);
        (client_id, key)
    }

    /// The `read`+`trade` key of a new approved client on the standard tier.
    #[track_caller]
    pub fn trader(&self, name: &str) -> Signer {
        self.client(name, "standard", "approved").1
    }

    /// `POST /v1/admin/clients/{client_id}/keys` with `body`, as the admin.
    pub fn create_key(&self, client_id: &str, body: &Value) -> Reply {
        self.post(&self.admin, &format!("/v1/admin/clients/{client_id}/keys"), body)
    }

    /// A new HMAC key of the client with `scopes` (asserting 201).
    #[track_caller]
    pub fn client_key(&self, client_id: &str, scopes: &[&str]) -> Signer {
        let created = self.create_key(client_id, &json!({"scopes": scopes, "algorithm": "hmac"}));
        let body = created.expect(201);
        Signer::hmac(&text(&body["key_id"]), &text(&body["secret"]))
    }

    /// `POST /v1/admin/deposits` as the admin.
    pub fn deposit(&self, client_id: &str, asset: &str, amount: &str, reference: &str) -> Reply {
        let body = json!({"client_id": client_id, "asset": asset, "amount": amount, "reference": reference});
        self.post(&self.admin, "/v1/admin/deposits", &body)
    }

    /// The client's balances as the admin sees them: (asset, available, reserved).
    #[track_caller]
    pub fn balances(&self, client_id: &str) -> Vec<(String, String, String)> {
        balance_lines(&self.get(&self.admin, &format!("/v1/balances?client_id={client_id}")))
    }

    /// The client's available balance of `asset`, as the admin sees it.
    #[track_caller]
    pub fn available(&self, client_id: &str, asset: &str) -> String {
        let balances = self.balances(client_id);
        let line = balances.iter().find(|(code, _, _)| code == asset);
        line.unwrap_or_else(|| panic!("no {asset} line in {balances:?}")).1.clone()
    }

    /// (available, reserved) of `asset` as the key's own client sees it.
    #[track_caller]
    pub fn own_balance(&self, signer: &Signer, asset: &str) -> (String, String) {
        let balances = balance_lines(&self.get(signer, "/v1/balances"));
        let line = balances.into_iter().find(|(code, _, _)| code == asset);
        let (_, available, reserved) = line.unwrap_or_else(|| panic!("no {asset} line for key {}", signer.key_id));
        (available, reserved)
    }

    /// Every ledger entry of a client, following `next_cursor` with pages of `limit`.
    #[track_caller]
    pub fn ledger(&self, client_id: &str, limit: usize) -> Vec<Value> {
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/ledger?client_id={client_id}&limit={limit}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.get(&self.admin, &path).expect(200).clone();
            let items = page["items"].as_array().expect("items");
            assert!(items.len() <= limit, "a page holds at most limit={limit} items: {page}");
            entries.extend(items.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return entries,
            }
        }
    }

    /// `PUT /v1/admin/tiers/{tier}` (asserting 200); returns the tier view.
    #[track_caller]
    pub fn put_tier(&self, tier: &str, body: &Value) -> Value {
        self.put(&self.admin, &format!("/v1/admin/tiers/{tier}"), body).expect(200).clone()
    }

    /// Sets the manual price of `instrument` (asserting 200); returns the manual market view.
    #[track_caller]
    pub fn set_price(&self, instrument: &str, bid: &str, ask: &str) -> Value {
        let reply = self.put(&self.admin, &format!("/v1/admin/market/{instrument}"), &json!({"bid": bid, "ask": ask}));
        reply.expect(200).clone()
    }

    /// `POST /v1/rfq`.
    pub fn rfq(&self, signer: &Signer, body: &Value) -> Reply {
        self.post(signer, "/v1/rfq", body)
    }

    /// A firm quote for a base quantity (asserting 201); returns the quote.
    #[track_caller]
    pub fn quote(&self, signer: &Signer, instrument: &str, side: &str, quantity: &str) -> Value {
        let reply = self.rfq(signer, &json!({"instrument": instrument, "side": side, "quantity": quantity}));
        let quote = reply.expect(201).clone();
        assert_eq!(quote["instrument"], json!(instrument), "{quote}");
        assert_eq!(quote["side"], json!(side), "{quote}");
        assert_eq!(quote["firm"], json!(true), "{quote}");
        quote
    }

    /// The price of a firm quote for a base quantity.
    #[track_caller]
    pub fn quote_price(&self, signer: &Signer, instrument: &str, side: &str, quantity: &str) -> String {
        text(&self.quote(signer, instrument, side, quantity)["price"])
    }

    /// Polls `GET path` as `signer` until the resource's `status` is `status` (asserting it is by `timeout`);
    /// returns the resource. For what the desk does in the background: fills, expiry, settlement.
    #[track_caller]
    pub fn wait_for_status(&self, signer: &Signer, path: &str, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let resource = self.get(signer, path).expect(200).clone();
            if resource["status"] == json!(status) || Instant::now() > deadline {
                assert_eq!(resource["status"], json!(status), "{path}: {resource}");
                return resource;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to the desk.
    pub fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child process by its pid.
        let sent = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(sent, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// SIGKILL, as a crash: nothing gets to flush.
    pub fn crash(mut self) {
        self.signal(libc::SIGKILL);
        self.child.wait().expect("reap the killed desk");
    }

    /// SIGTERM, then the exit status (panics if the process does not exit in time).
    pub fn terminate(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        match wait_timeout(&mut self.child, EXIT_TIMEOUT) {
            Some(status) => status,
            None => panic!("otcd did not exit within {EXIT_TIMEOUT:?} of SIGTERM; log:\n{}", self.log()),
        }
    }

    /// Stops the desk with SIGTERM (asserting a clean exit) and starts it again, the same way, on the same data.
    pub fn restart(mut self) -> TestDesk {
        let (launch, scratch) = self.take_for_restart();
        let log = self.log.clone();
        let status = self.terminate();
        let log = log.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(status.success(), "otcd exited with {status} on SIGTERM; log:\n{log}");
        launch.start_with(scratch)
    }

    /// `kill -9`, then starts the desk again, the same way, on the same data.
    pub fn crash_and_restart(mut self) -> TestDesk {
        let (launch, scratch) = self.take_for_restart();
        self.crash();
        launch.start_with(scratch)
    }

    fn take_for_restart(&mut self) -> (Launch, TempDir) {
        let launch = self.launch.clone().data_dir(&self.data_dir);
        (launch, self.scratch.take().expect("a desk's scratch directory until it restarts"))
    }
}

impl Drop for TestDesk {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// (asset, available, reserved) of every line of a `GET /v1/balances` answer (asserting 200).
#[track_caller]
fn balance_lines(reply: &Reply) -> Vec<(String, String, String)> {
    let items = reply.expect(200)["items"].as_array().expect("items");
    items.iter().map(|item| (text(&item["asset"]), text(&item["available"]), text(&item["reserved"]))).collect()
}

/// Collects the log and reports the listening address once it appears.
fn read_log(stderr: impl Read, log: &Mutex<String>, found: &mpsc::Sender<String>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if line.contains("otcd listening") {
            if let Some(address) = line.split_whitespace().find_map(|word| word.strip_prefix("address=")) {
                let _ = found.send(address.to_owned());
            }
        }
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        log.push_str(&line);
        log.push('\n');
    }
}

/// The admin key a desk wrote to `DATA/admin-key.json`.
pub fn read_admin_key(data_dir: &Path) -> Signer {
    let path = data_dir.join("admin-key.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let key: Value = serde_json::from_str(&text).expect("admin-key.json is JSON");
    assert_eq!(key["algorithm"], "hmac", "admin-key.json: {text}");
    Signer::hmac(key["key_id"].as_str().expect("key_id"), key["secret"].as_str().expect("secret"))
}

/// The body of a KYC-approved prefunded client in Germany on the standard tier.
pub fn client_body(name: &str) -> Value {
    json!({"name": name, "jurisdiction": "DE", "tier": "standard", "kyc_status": "approved", "settlement": "prefunded"})
}

/// The child's exit status, or `None` if it still runs after `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs an `otcd` subcommand on `data_dir` to completion (killed and failed after [`EXIT_TIMEOUT`]).
pub fn run_otcd(args: &[&str], data_dir: &Path) -> Output {
    let mut command = otcd_command();
    command.args(args).arg("--data-dir").arg(data_dir);
    finish(command, args)
}

/// Runs `otcd args` as typed, with no `--data-dir` added, in the working directory `current_dir` and with the
/// extra environment `env`: for the command line's own defaults and messages.
pub fn run_otcd_in(args: &[&str], current_dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = otcd_command();
    command.args(args).current_dir(current_dir).envs(env.iter().copied());
    finish(command, args)
}

/// Waits for a one-shot `otcd` command (at most `EXIT_TIMEOUT`) and collects what it printed.
fn finish(mut command: Command, args: &[&str]) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn otcd");
    // Read both pipes while it runs: a full pipe would block it.
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_timeout(&mut child, EXIT_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let status = status.unwrap_or_else(|| {
        panic!("otcd {args:?} still ran after {EXIT_TIMEOUT:?}; stderr:\n{}", String::from_utf8_lossy(&stderr))
    });
    Output { status, stdout, stderr }
}

/// What `otcd` printed, stdout then stderr.
pub fn combined_output(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}
