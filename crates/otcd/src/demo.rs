//! `otcd demo`: sample tiers, clients with balances and API keys, so a newcomer has something to trade with.

use crate::server::StartedDesk;
use otcd_core::catalog::AssetCode;
use otcd_core::decimal::parse_positive;
use otcd_core::engine::{Actor, NewClient, TierSpec};
use otcd_core::ids::{ClientId, ClientReference, TierName};
use otcd_core::model::{Jurisdiction, KeyOwner, KycStatus, Scope, Settlement};
use otcd_host::secrets::write_private_file;
use otcd_services::accounts::{KeyCredential, KeyRequest};
use otcd_services::{DeskServices, ServiceError, ServiceResult};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
pub struct DemoClient {
    pub client_id: String,
    pub name: String,
    pub key_id: String,
    pub secret: String,
    pub algorithm: &'static str,
}

pub fn demo_clients_path(data_dir: &Path) -> PathBuf {
    data_dir.join("demo-clients.json")
}

struct Sample {
    name: &'static str,
    jurisdiction: &'static str,
    tier: &'static str,
    kyc_status: KycStatus,
    settlement: Settlement,
    credit_limit_usd_cents: Option<i128>,
    deposits: &'static [(&'static str, &'static str)],
}

const SAMPLES: [Sample; 3] = [
    Sample {
        name: "Aurora Capital GmbH",
        jurisdiction: "DE",
        tier: "gold",
        kyc_status: KycStatus::Approved,
        settlement: Settlement::Prefunded,
        credit_limit_usd_cents: None,
        deposits: &[("USD", "5000000"), ("EUR", "1000000"), ("BTC", "50"), ("ETH", "500"), ("USDT", "2000000")],
    },
    Sample {
        name: "Borealis Trading LLC",
        jurisdiction: "US-NY",
        tier: "standard",
        kyc_status: KycStatus::Approved,
        settlement: Settlement::Credit,
        credit_limit_usd_cents: Some(100_000_000),
        deposits: &[("USD", "250000"), ("BTC", "5")],
    },
    Sample {
        name: "Cirrus Ventures Ltd",
        jurisdiction: "GB",
        tier: "standard",
        kyc_status: KycStatus::Pending,
        settlement: Settlement::Prefunded,
        credit_limit_usd_cents: None,
        deposits: &[("GBP", "100000")],
    },
];

/// Seeds a fresh demo desk once, through the desk services like any operator; later starts find
/// `demo-clients.json` and leave the desk as it is.
pub async fn seed(desk: &StartedDesk, data_dir: &Path) -> ServiceResult<Vec<DemoClient>> {
    let path = demo_clients_path(data_dir);
    if path.exists() {
        return Ok(Vec::new());
    }
    let services = desk.services();
    let tier = |name: &str, spread_centi_bps| TierSpec {
        name: TierName::parse(name).expect("valid"),
        spread_centi_bps,
        // Trades of 1,000,000 USD and more get 2 bps off.
        bands: vec![otcd_core::model::SpreadBand {
            notional_usd_min: 100_000_000,
            spread_centi_bps: spread_centi_bps - 200,
        }],
        trade_notional_usd_max: Some(500_000_000),
        daily_notional_usd_max: Some(2_000_000_000),
        rate_limits: None,
        // 0.5 bps fee on every trade, on top of the spread (shown as `fee` on each trade).
        fee_centi_bps: 50,
    };
    for (name, spread_centi_bps) in [("gold", 1_000), ("platinum", 500)] {
        let stored = services.put_tier(Actor::default(), tier(name, spread_centi_bps)).await?;
        desk.rate_limits().set_tier(&stored.name, stored.rate_limits);
    }
    let mut clients = Vec::new();
    for sample in &SAMPLES {
        clients.push(seed_client(desk, services, sample).await?);
    }
    // Capital, the simulated venues funded through the ledger, hedging policies and the simulated client flow.
    crate::demo_flow::seed(desk, data_dir).await?;
    let text = serde_json::to_string_pretty(&clients).expect("serializable");
    write_private_file(&path, text.as_bytes()).map_err(|error| ServiceError::Internal(error.to_string()))?;
    Ok(clients)
}

async fn seed_client(desk: &StartedDesk, services: &DeskServices, sample: &Sample) -> ServiceResult<DemoClient> {
    let new = NewClient {
        name: sample.name.into(),
        jurisdiction: Jurisdiction::parse(sample.jurisdiction).expect("valid"),
        tier: TierName::parse(sample.tier).expect("valid"),
        kyc_status: sample.kyc_status,
        kyc_expires_at: None,
        settlement: sample.settlement,
        credit_limit_usd: sample.credit_limit_usd_cents,
        screening: None,
    };
    let client = services.create_client(Actor::default(), new).await?;
    desk.rate_limits().set_client_tier(&client.client_id, &client.tier);
    for (asset, amount) in sample.deposits {
        let code = AssetCode::parse(asset).expect("valid");
        let amount = parse_positive(amount, services.scale(&code)).expect("valid amount");
        let reference = ClientReference::parse(&format!("demo-{asset}")).expect("valid");
        // The deposit service tells the simulated bank and custodian too (reconciliation matches).
        services.deposit(Actor::default(), client.client_id.clone(), code, amount, reference).await?;
    }
    let (key_id, secret) = seed_key(services, &client.client_id).await?;
    Ok(DemoClient {
        client_id: client.client_id.to_string(),
        name: sample.name.into(),
        key_id,
        secret,
        algorithm: "hmac",
    })
}

async fn seed_key(services: &DeskServices, client_id: &ClientId) -> ServiceResult<(String, String)> {
    let request = KeyRequest {
        scopes: vec![Scope::Read, Scope::Trade, Scope::Withdraw],
        credential: KeyCredential::Hmac,
        allowed_ips: Vec::new(),
    };
    let issued = services.create_key(Actor::default(), KeyOwner::Client(client_id.clone()), request).await?;
    let secret = issued.secret.ok_or_else(|| ServiceError::Internal("an HMAC key comes with its secret".into()))?;
    Ok((issued.key.key_id.to_string(), secret))
}

/// A session token (read and trade, one hour) for the first demo client, for the components' example page:
/// `otcd demo` prints `/ui/example.html#token=...`. This stands in for a host application's backend, which would
/// call `POST /v1/sessions` with its own signed key. `None` when the demo clients file is missing or unreadable.
pub fn example_session_token(desk: &StartedDesk, data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(demo_clients_path(data_dir)).ok()?;
    let clients: Vec<serde_json::Value> = serde_json::from_str(&text).ok()?;
    let key_id = clients.first()?.get("key_id")?.as_str()?;
    let services = desk.services();
    let key = services.keys.get(key_id).filter(|key| !key.revoked)?;
    let scopes = otcd_http::sessions::grantable(&key.scopes, Some(&[Scope::Read, Scope::Trade])).ok()?;
    let payload = otcd_http::sessions::TokenPayload {
        key_id: key.key_id.to_string(),
        client_id: key.client_id.as_ref().map(ToString::to_string),
        scopes,
        expires_at_ms: services.clock.now().0 + 3_600_000,
        nonce: String::new(),
    };
    Some(otcd_http::sessions::mint(services.keys.master_key().session_key(), payload))
}
