//! Shared pieces of otcd's load tools: signed requests, keep-alive connections, and admin set-up calls.

pub mod trade;

use anyhow::{bail, Context};
use hmac::Mac;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone)]
pub struct Key {
    pub key_id: String,
    pub secret: String,
}

impl Key {
    /// Reads `{"key_id", "secret"}` from a key file such as `admin-key.json`.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Key> {
        let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        Ok(Key {
            key_id: value["key_id"].as_str().context("key_id")?.to_owned(),
            secret: value["secret"].as_str().context("secret")?.to_owned(),
        })
    }
}

/// The signature headers of API.md: lowercase hex HMAC-SHA256 over `TS\nMETHOD\nPATH\nBODY`.
pub fn signature(key: &Key, method: &str, path: &str, body: &str, timestamp: u128) -> anyhow::Result<String> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.secret.as_bytes())?;
    mac.update(format!("{timestamp}\n{method}\n{path}\n{body}").as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

pub async fn connect(address: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

pub fn build_request(
    key: &Key,
    method: &str,
    path: &str,
    body: &str,
    timestamp: u128,
    signed: bool,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut builder = Request::builder().method(method).uri(path).header("host", "otcd");
    if signed {
        builder = builder
            .header("OTC-KEY", &key.key_id)
            .header("OTC-TIMESTAMP", timestamp.to_string())
            .header("OTC-SIGNATURE", signature(key, method, path, body, timestamp)?);
    }
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    Ok(builder.body(Full::new(Bytes::from(body.to_owned())))?)
}

pub fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis()).unwrap_or_default()
}

/// Creates one funded client and one read key per connection through the admin API.
pub async fn create_client_keys(address: SocketAddr, admin: &Key, count: usize) -> anyhow::Result<Vec<Key>> {
    let mut sender = connect(address).await?;
    put_loadtest_tier(&mut sender, admin).await?;
    let client = admin_call(
        &mut sender,
        admin,
        "POST",
        "/v1/admin/clients",
        r#"{"name":"Load Test Ltd","jurisdiction":"DE","tier":"loadtest","kyc_status":"approved","settlement":"prefunded"}"#,
    )
    .await?;
    let client_id = client["client_id"].as_str().context("client_id")?.to_owned();
    let deposit = format!(
        r#"{{"client_id":"{client_id}","asset":"USD","amount":"1000000.00","reference":"loadgen-{}"}}"#,
        now_ms()
    );
    admin_call(&mut sender, admin, "POST", "/v1/admin/deposits", &deposit).await?;
    create_keys(&mut sender, admin, &client_id, count).await
}

/// A new approved client for `--deposits` (deposits need no key of the client's own).
pub async fn create_deposit_client(address: SocketAddr, admin: &Key) -> anyhow::Result<String> {
    let mut sender = connect(address).await?;
    let client = admin_call(
        &mut sender,
        admin,
        "POST",
        "/v1/admin/clients",
        r#"{"name":"Deposit Load Ltd","jurisdiction":"DE","kyc_status":"approved","settlement":"prefunded"}"#,
    )
    .await?;
    Ok(client["client_id"].as_str().context("client_id")?.to_owned())
}

/// The `loadtest` tier: the load must measure the desk, not the standard tier's 100 requests a second per key.
pub(crate) async fn put_loadtest_tier(sender: &mut Sender, admin: &Key) -> anyhow::Result<()> {
    let tier =
        r#"{"spread_bps":"20","rate_limits":{"reads":1000000,"rfq":1000000,"orders":1000000,"withdrawals":1000000}}"#;
    admin_call(sender, admin, "PUT", "/v1/admin/tiers/loadtest", tier).await?;
    Ok(())
}

/// `count` new keys (scopes `read` and `trade`) of `client_id`.
pub(crate) async fn create_keys(
    sender: &mut Sender,
    admin: &Key,
    client_id: &str,
    count: usize,
) -> anyhow::Result<Vec<Key>> {
    let path = format!("/v1/admin/clients/{client_id}/keys");
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        let key = admin_call(sender, admin, "POST", &path, r#"{"scopes":["read","trade"]}"#).await?;
        keys.push(Key {
            key_id: key["key_id"].as_str().context("key_id")?.to_owned(),
            secret: key["secret"].as_str().context("secret")?.to_owned(),
        });
    }
    Ok(keys)
}

pub async fn admin_call(
    sender: &mut Sender,
    admin: &Key,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<serde_json::Value> {
    // Admin calls are few; spacing them keeps their timestamps (and so their signatures) distinct.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let response = sender.send_request(build_request(admin, method, path, body, now_ms(), true)?).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{method} {path}: {status} {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}
