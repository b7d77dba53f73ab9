//! Webhook registrations: the URL policy (resolved, every address checked), the id and the signing secret
//! (shown once, journaled sealed with the master key), and the owner rules (a client key registers for its own
//! client, a desk `admin` key desk-wide). Deliveries are made by the `otcd-webhooks` worker, which reads the
//! core's outbox; its delivery log is reached through [`DeliveryLog`] so edges never depend on the worker.

use crate::{DeskServices, ServiceError, ServiceResult};
use otcd_core::engine::webhooks::{NewWebhook, Webhook, WebhookEventKind, URL_BYTES_MAX};
use otcd_core::engine::{Actor, Command, Outcome};
use otcd_core::ids::ClientId;
use rand::RngCore;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// How long resolving a webhook's host may take at registration.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Addresses a host may resolve to that are checked (all of them); more is refused.
const RESOLVED_ADDRESSES_MAX: usize = 64;

/// What URLs webhooks may target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// Loopback and private addresses are allowed (`webhooks_allow_private`: tests and demos).
    pub allow_private: bool,
    /// The desk's own listener, always refused.
    pub own_listener: Option<SocketAddr>,
}

/// Who registers or reads a webhook: a client (its own webhooks) or the desk (desk-wide ones, and all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOwner {
    Client(ClientId),
    Desk,
}

impl WebhookOwner {
    pub fn sees(&self, webhook: &Webhook) -> bool {
        match self {
            WebhookOwner::Desk => true,
            WebhookOwner::Client(client_id) => webhook.client_id.as_ref() == Some(client_id),
        }
    }
}

/// One delivery as the log shows it (docs/api.md, Webhooks).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub webhook_id: String,
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `pending`, `delivered` or `failed`.
    pub status: &'static str,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

/// The delivery worker's log, as the edges read it.
pub trait DeliveryLog: Send + Sync {
    /// Newest first, at most `limit`, after `cursor` (a previous page's `next_cursor`); and the next cursor.
    fn deliveries(&self, webhook_id: &str, limit: usize, cursor: Option<&str>) -> (Vec<DeliveryView>, Option<String>);
    /// Sends a logged delivery again (same id and body); `None` when the log does not hold it.
    fn redeliver(&self, webhook_id: &str, delivery_id: &str) -> Option<DeliveryView>;
}

/// The secret's prefix; the whole string (prefix included) keys the signature.
pub const SECRET_PREFIX: &str = "whsec_";

impl DeskServices {
    /// Registers a webhook after checking its URL; returns it and its secret (never shown again).
    pub async fn create_webhook(
        &self,
        actor: Actor,
        owner: WebhookOwner,
        url: &str,
        events: &[String],
        policy: UrlPolicy,
    ) -> ServiceResult<(Webhook, String)> {
        let events = parse_events(events)?;
        check_url(url, policy).await?;
        let mut bytes = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut bytes);
        let webhook_id = format!("wh_{}", hex_encode(&bytes));
        let mut secret_bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret_bytes);
        let secret = format!("{SECRET_PREFIX}{}", hex_encode(&secret_bytes));
        let client_id = match owner {
            WebhookOwner::Client(client_id) => Some(client_id),
            WebhookOwner::Desk => None,
        };
        let sealed_secret = self.keys.seal(&webhook_id, secret.as_bytes());
        let new = NewWebhook { webhook_id, url: url.to_owned(), events, client_id, sealed_secret };
        let done = self
            .execute(actor, Command::CreateWebhook(new), |outcome| match outcome {
                Outcome::Webhook(webhook) => Some(webhook),
                _ => None,
            })
            .await?;
        Ok((done.value, secret))
    }

    /// The webhooks `owner` sees.
    pub async fn webhooks_of(&self, owner: WebhookOwner) -> ServiceResult<Vec<Webhook>> {
        self.read(move |desk| desk.webhooks().filter(|webhook| owner.sees(webhook)).cloned().collect()).await
    }

    /// One webhook `owner` sees, or `not_found`.
    pub async fn webhook_of(&self, owner: WebhookOwner, webhook_id: String) -> ServiceResult<Webhook> {
        let found =
            self.read(move |desk| desk.webhook(&webhook_id).filter(|webhook| owner.sees(webhook)).cloned()).await?;
        found.ok_or_else(|| ServiceError::NotFound("no such webhook".into()))
    }

    pub async fn delete_webhook(&self, actor: Actor, owner: WebhookOwner, webhook_id: String) -> ServiceResult<()> {
        self.webhook_of(owner, webhook_id.clone()).await?;
        self.execute(actor, Command::DeleteWebhook { webhook_id }, |outcome| match outcome {
            Outcome::Webhook(_) => Some(()),
            _ => None,
        })
        .await?;
        Ok(())
    }

    /// The webhook's signing secret (for the delivery worker).
    pub fn webhook_secret(&self, webhook: &Webhook) -> Option<Vec<u8>> {
        self.keys.open(&webhook.webhook_id, &webhook.sealed_secret)
    }
}

fn parse_events(events: &[String]) -> ServiceResult<Vec<WebhookEventKind>> {
    if events.is_empty() || events.len() > WebhookEventKind::ALL.len() {
        return Err(ServiceError::invalid("events", "1 to 5 of order, trade, withdrawal, settlement, balance"));
    }
    events
        .iter()
        .map(|name| {
            WebhookEventKind::parse(name).ok_or_else(|| {
                ServiceError::invalid(
                    "events",
                    format!("{name:?} is not one of order, trade, withdrawal, settlement, balance"),
                )
            })
        })
        .collect()
}

/// Checks a webhook URL: `http` or `https`, a host, and every address it resolves to allowed by `policy`.
pub async fn check_url(url: &str, policy: UrlPolicy) -> ServiceResult<()> {
    let invalid = |detail: String| ServiceError::invalid("url", detail);
    if url.is_empty() || url.len() > URL_BYTES_MAX {
        return Err(invalid("1 to 2048 bytes".into()));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("an absolute http or https URL".into()))?;
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return Err(invalid("the scheme must be http or https".into())),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("a host without user information, and no whitespace".into()));
    }
    let (host, port) =
        split_host_port(authority, default_port).ok_or_else(|| invalid("a valid host and port".into()))?;
    let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)));
    let addresses: Vec<SocketAddr> = match lookup.await {
        Ok(Ok(addresses)) => addresses.take(RESOLVED_ADDRESSES_MAX + 1).collect(),
        Ok(Err(error)) => return Err(invalid(format!("the host does not resolve: {error}"))),
        Err(_) => return Err(invalid("resolving the host timed out".into())),
    };
    if addresses.is_empty() || addresses.len() > RESOLVED_ADDRESSES_MAX {
        return Err(invalid("the host resolves to no address, or to too many".into()));
    }
    for address in addresses {
        if let Some(reason) = refused_address(address, policy) {
            return Err(invalid(format!("{host} resolves to {}, {reason}", address.ip())));
        }
    }
    Ok(())
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default_port)),
    }
    .filter(|(host, _)| !host.is_empty())
}

/// Why an address a webhook URL resolves to is refused, if it is.
pub fn refused_address(address: SocketAddr, policy: UrlPolicy) -> Option<&'static str> {
    let ip = canonical(address.ip());
    if let Some(listener) = policy.own_listener {
        let same_host = ip == canonical(listener.ip()) || listener.ip().is_unspecified() && is_local(ip);
        if same_host && address.port() == listener.port() {
            return Some("the desk's own listener");
        }
    }
    if is_metadata(ip) {
        return Some("a cloud metadata address");
    }
    if is_link_local(ip) {
        return Some("a link-local address");
    }
    if ip.is_unspecified() || ip.is_multicast() || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        return Some("not a unicast address");
    }
    if !policy.allow_private && (is_local(ip) || is_private(ip)) {
        return Some("a loopback or private address (allowed only with webhooks_allow_private = true)");
    }
    None
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn is_metadata(ip: IpAddr) -> bool {
    ip == IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))
        || ip == IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254))
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback()
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        // RFC 1918, carrier-grade NAT (RFC 6598), "this network".
        IpAddr::V4(v4) => {
            v4.is_private() || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64) || v4.octets()[0] == 0
        }
        // Unique local (fc00::/7).
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(address: &str, policy: UrlPolicy) -> Option<&'static str> {
        refused_address(address.parse().unwrap(), policy)
    }

    #[test]
    fn metadata_link_local_own_listener_and_private_addresses_are_refused() {
        let strict = UrlPolicy::default();
        let listener: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let open = UrlPolicy { allow_private: true, own_listener: Some(listener) };
        assert_eq!(refused("169.254.169.254:80", open), Some("a cloud metadata address"));
        assert_eq!(refused("[fd00:ec2::254]:80", open), Some("a cloud metadata address"));
        assert_eq!(refused("169.254.1.1:80", open), Some("a link-local address"));
        assert_eq!(refused("[fe80::1]:80", open), Some("a link-local address"));
        assert_eq!(refused("127.0.0.1:8080", open), Some("the desk's own listener"));
        assert_eq!(refused("[::ffff:127.0.0.1]:8080", open), Some("the desk's own listener"));
        assert_eq!(refused("127.0.0.1:8081", open), None, "another local port, private allowed");
        for private in [
            "127.0.0.1:80",
            "10.1.2.3:443",
            "192.168.1.1:80",
            "172.16.0.1:80",
            "100.64.0.1:80",
            "[::1]:80",
            "[fd12::1]:80",
        ] {
            assert!(refused(private, strict).is_some(), "{private}");
        }
        assert_eq!(refused("93.184.216.34:443", strict), None);
    }

    #[tokio::test]
    async fn urls_need_http_or_https_and_a_host() {
        let policy = UrlPolicy { allow_private: true, own_listener: None };
        for bad in ["ftp://example.com/", "example.com", "http://", "http://user@127.0.0.1/", "http://127.0.0.1:99999/"]
        {
            assert!(check_url(bad, policy).await.is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9/hook", policy).await.is_ok());
        assert!(check_url("http://[::1]:9/hook", policy).await.is_ok());
        assert!(check_url("http://127.0.0.1:9/hook", UrlPolicy::default()).await.is_err());
    }
}
