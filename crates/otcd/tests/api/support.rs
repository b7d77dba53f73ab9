//! The harness: a real `otcd serve` process per test, signed HTTP requests, and the problem-details assertion.

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// How long a desk may take to print its listening address.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopping process may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn otcd_binary() -> &'static str {
    env!("CARGO_BIN_EXE_otcd")
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

/// A timestamp never handed out before in this process, so two identical requests signed in the same
/// millisecond do not look like a replay.
pub fn fresh_timestamp() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let mut previous = LAST.load(Ordering::Relaxed);
    loop {
        let next = now_ms().max(previous + 1);
        match LAST.compare_exchange(previous, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(current) => previous = current,
        }
    }
}

#[derive(Clone)]
enum KeyMaterial {
    Hmac(String),
    Ed25519(SigningKey),
}

/// An API key as a client holds it.
#[derive(Clone)]
pub struct Signer {
    pub key_id: String,
    material: KeyMaterial,
}

impl Signer {
    pub fn hmac(key_id: &str, secret: &str) -> Self {
        Self { key_id: key_id.to_owned(), material: KeyMaterial::Hmac(secret.to_owned()) }
    }

    pub fn ed25519(key_id: &str, signing_key: SigningKey) -> Self {
        Self { key_id: key_id.to_owned(), material: KeyMaterial::Ed25519(signing_key) }
    }

    pub fn signature(&self, timestamp: &str, method: &str, path_with_query: &str, body: &str) -> String {
        let message = format!("{timestamp}\n{method}\n{path_with_query}\n{body}");
        match &self.material {
            KeyMaterial::Hmac(secret) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
                mac.update(message.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            KeyMaterial::Ed25519(key) => {
                base64::engine::general_purpose::STANDARD.encode(key.sign(message.as_bytes()).to_bytes())
            }
        }
    }

    /// The three OTC-* headers for a request signed at `timestamp`.
    pub fn headers_at(&self, timestamp: i64, method: &str, path: &str, body: &str) -> Vec<(String, String)> {
        let timestamp = timestamp.to_string();
        let signature = self.signature(&timestamp, method, path, body);
        vec![
            ("OTC-KEY".to_owned(), self.key_id.clone()),
            ("OTC-TIMESTAMP".to_owned(), timestamp),
            ("OTC-SIGNATURE".to_owned(), signature),
        ]
    }

    pub fn headers(&self, method: &str, path: &str, body: &str) -> Vec<(String, String)> {
        self.headers_at(fresh_timestamp(), method, path, body)
    }
}

/// An HTTP answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    /// The body parsed as JSON, `Null` when it is not JSON.
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body, after asserting the status.
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "expected HTTP {status}, got {}: {}", self.status, self.text);
        &self.body
    }

    fn from_response(response: ureq::Response) -> Self {
        let status = response.status();
        let headers = response
            .headers_names()
            .iter()
            .map(|name| (name.clone(), response.header(name).unwrap_or("").to_owned()))
            .collect();
        let text = response.into_string().expect("a readable response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status, headers, text, body }
    }
}

/// Asserts an RFC 9457 problem response with otcd's stable code; returns the body for further checks.
pub fn assert_problem<'a>(reply: &'a Reply, status: u16, code: &str) -> &'a Value {
    assert_eq!(reply.status, status, "expected a {status} {code} problem, got {}: {}", reply.status, reply.text);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"), "problem content type: {reply:?}");
    let body = &reply.body;
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "problem member {member} must be a string: {}", reply.text);
    }
    assert_eq!(body["status"], json!(status), "problem status member: {}", reply.text);
    assert_eq!(body["code"], json!(code), "problem code: {}", reply.text);
    body
}

/// `400 invalid_request` naming `field`.
pub fn assert_invalid(reply: &Reply, field: &str) {
    let body = assert_problem(reply, 400, "invalid_request");
    assert_eq!(body["field"], json!(field), "the problem must name the field: {}", reply.text);
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout_read(Duration::from_secs(30))
        .timeout_write(Duration::from_secs(30))
        .build()
}

/// Sends one request; `Err` only for transport failures (connection refused or reset, timeouts).
pub fn try_send(
    agent: &ureq::Agent,
    url: &str,
    method: &str,
    body: &str,
    headers: &[(String, String)],
) -> Result<Reply, String> {
    let mut request = agent.request(method, url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = if body.is_empty() {
        request.call()
    } else {
        request.set("Content-Type", "application/json").send_string(body)
    };
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(Reply::from_response(response)),
        Err(ureq::Error::Transport(transport)) => Err(transport.to_string()),
    }
}

/// A running `otcd serve` on its own data directory and port; killed (SIGKILL) when dropped.
pub struct TestDesk {
    child: Child,
    pub address: String,
    pub data_dir: PathBuf,
    pub admin: Signer,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
    _temp: Option<TempDir>,
}

impl TestDesk {
    /// A new desk on a fresh temporary data directory.
    pub fn start() -> Self {
        let temp = tempfile::tempdir().expect("a temporary directory");
        let mut desk = Self::start_in(temp.path());
        desk._temp = Some(temp);
        desk
    }

    /// A desk on `data_dir`, new or existing; the caller keeps the directory alive.
    pub fn start_in(data_dir: &Path) -> Self {
        Self::start_in_with(data_dir, &[])
    }

    /// `start_in` with more `otcd serve` arguments (such as `--config FILE`).
    pub fn start_in_with(data_dir: &Path, extra_args: &[&str]) -> Self {
        let mut child = Command::new(otcd_binary())
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--market", "manual"])
            .args(extra_args)
            .env("RUST_LOG", "info")
            .env("OTCD_ENGINE_PREFAULT_MIB", "0")
            .stdin(Stdio::null())
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
                    log.lock().unwrap()
                );
            }
        };
        let admin = read_admin_key(data_dir);
        Self { child, address, data_dir: data_dir.to_owned(), admin, log, agent: agent(), _temp: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Any request with explicit headers; panics only on transport failures.
    pub fn send(&self, method: &str, path: &str, body: &str, headers: &[(String, String)]) -> Reply {
        try_send(&self.agent, &self.url(path), method, body, headers)
            .unwrap_or_else(|error| panic!("{method} {path} failed in transport: {error}; log:\n{}", self.log()))
    }

    pub fn signed(&self, signer: &Signer, method: &str, path: &str, body: &str) -> Reply {
        self.send(method, path, body, &signer.headers(method, path, body))
    }

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

    /// Creates a client from `body` as the admin; returns the created client.
    pub fn create_client(&self, body: &Value) -> Value {
        self.post(&self.admin, "/v1/admin/clients", body).expect(201).clone()
    }

    /// A KYC-approved prefunded client on the standard tier; returns its id.
    pub fn new_client(&self, name: &str) -> String {
        let client = self.create_client(&client_body(name));
        client["client_id"].as_str().expect("client_id").to_owned()
    }

    /// `POST /v1/admin/clients/{client_id}/keys` with `body`, as the admin.
    pub fn create_key(&self, client_id: &str, body: &Value) -> Reply {
        self.post(&self.admin, &format!("/v1/admin/clients/{client_id}/keys"), body)
    }

    pub fn client_key(&self, client_id: &str, scopes: &[&str]) -> Signer {
        let created = self.create_key(client_id, &json!({"scopes": scopes, "algorithm": "hmac"}));
        let body = created.expect(201);
        Signer::hmac(body["key_id"].as_str().expect("key_id"), body["secret"].as_str().expect("secret"))
    }

    pub fn deposit(&self, client_id: &str, asset: &str, amount: &str, reference: &str) -> Reply {
        let body = json!({"client_id": client_id, "asset": asset, "amount": amount, "reference": reference});
        self.post(&self.admin, "/v1/admin/deposits", &body)
    }

    /// The client's balances as the admin sees them: (asset, available, reserved).
    pub fn balances(&self, client_id: &str) -> Vec<(String, String, String)> {
        let reply = self.get(&self.admin, &format!("/v1/balances?client_id={client_id}"));
        let items = reply.expect(200)["items"].as_array().expect("items").clone();
        items.iter().map(|item| (text(&item["asset"]), text(&item["available"]), text(&item["reserved"]))).collect()
    }

    pub fn available(&self, client_id: &str, asset: &str) -> String {
        let balances = self.balances(client_id);
        let line = balances.iter().find(|(code, _, _)| code == asset);
        line.unwrap_or_else(|| panic!("no {asset} line in {balances:?}")).1.clone()
    }

    /// Every ledger entry of a client, following `next_cursor` with pages of `limit`.
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
}

impl Drop for TestDesk {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
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
        let mut log = log.lock().unwrap();
        log.push_str(&line);
        log.push('\n');
    }
}

pub fn read_admin_key(data_dir: &Path) -> Signer {
    let path = data_dir.join("admin-key.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let key: Value = serde_json::from_str(&text).expect("admin-key.json is JSON");
    assert_eq!(key["algorithm"], "hmac", "admin-key.json: {text}");
    Signer::hmac(key["key_id"].as_str().expect("key_id"), key["secret"].as_str().expect("secret"))
}

pub fn client_body(name: &str) -> Value {
    json!({"name": name, "jurisdiction": "DE", "tier": "standard", "kyc_status": "approved", "settlement": "prefunded"})
}

pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, got {value}")).to_owned()
}

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

/// Runs an `otcd` subcommand to completion (killed and failed after `EXIT_TIMEOUT`).
pub fn run_otcd(args: &[&str], data_dir: &Path) -> Output {
    let mut child = Command::new(otcd_binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("OTCD_ENGINE_PREFAULT_MIB", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn otcd");
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

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Parses a non-negative decimal string with exactly `scale` decimals into integer units.
pub fn units(amount: &str, scale: usize) -> i128 {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    assert_eq!(fraction.len(), scale, "{amount:?} must have exactly {scale} decimals");
    format!("{whole}{fraction}").parse().unwrap_or_else(|_| panic!("{amount:?} is not a decimal"))
}
