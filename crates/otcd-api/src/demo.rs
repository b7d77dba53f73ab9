//! `otcd demo`: sample tiers, clients with balances and API keys, so a newcomer has something to trade with.

use crate::problem::ApiError;
use crate::runner::{EngineHandle, SubmitError};
use crate::secrets::{new_hmac_secret, new_key_id, write_private_file};
use crate::server::StartedDesk;
use otcd_core::catalog::AssetCode;
use otcd_core::decimal::parse_positive;
use otcd_core::engine::{Actor, Command, NewClient, NewDeposit, NewKey, Outcome, TierSpec};
use otcd_core::ids::{ClientId, ClientReference, KeyId, TierName};
use otcd_core::model::{Jurisdiction, KeyAlgorithm, KeyOwner, KycStatus, Scope, Settlement};
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

/// Seeds a fresh demo desk once; later starts find `demo-clients.json` and leave the desk as it is.
pub async fn seed(desk: &StartedDesk, data_dir: &Path) -> Result<Vec<DemoClient>, ApiError> {
    let path = demo_clients_path(data_dir);
    if path.exists() {
        return Ok(Vec::new());
    }
    let engine = desk.engine();
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
    submit(&engine, Command::PutTier(tier("gold", 1_000))).await?;
    submit(&engine, Command::PutTier(tier("platinum", 500))).await?;
    let mut clients = Vec::new();
    for sample in &SAMPLES {
        clients.push(seed_client(desk, &engine, sample).await?);
    }
    let text = serde_json::to_string_pretty(&clients).expect("serializable");
    write_private_file(&path, text.as_bytes()).map_err(|error| ApiError::internal(error.to_string()))?;
    Ok(clients)
}

async fn seed_client(desk: &StartedDesk, engine: &EngineHandle, sample: &Sample) -> Result<DemoClient, ApiError> {
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
    let Outcome::Client(client) = submit(engine, Command::CreateClient(new)).await? else {
        return Err(ApiError::internal("unexpected outcome"));
    };
    desk.rate_limits().set_client_tier(&client.client_id, &client.tier);
    for (asset, amount) in sample.deposits {
        let code = AssetCode::parse(asset).expect("valid");
        let scale = desk.catalog().asset(&code).expect("catalog asset").scale;
        let deposit = NewDeposit {
            client_id: client.client_id.clone(),
            asset: code,
            amount: parse_positive(amount, scale).expect("valid amount"),
            reference: ClientReference::parse(&format!("demo-{asset}")).expect("valid"),
            notional_usd: None,
        };
        if let Outcome::Deposit { deposit, .. } = submit(engine, Command::Deposit(deposit)).await? {
            // The simulated bank and custodian hold what the demo clients deposited (reconciliation matches).
            desk.state().record_rail_movement(format!("deposit:{}", deposit.deposit_id), deposit.asset, deposit.amount);
        }
    }
    let (key_id, secret) = seed_key(desk, engine, &client.client_id).await?;
    Ok(DemoClient {
        client_id: client.client_id.to_string(),
        name: sample.name.into(),
        key_id,
        secret,
        algorithm: "hmac",
    })
}

async fn seed_key(
    desk: &StartedDesk,
    engine: &EngineHandle,
    client_id: &ClientId,
) -> Result<(String, String), ApiError> {
    let key_id = KeyId::parse(&new_key_id()).expect("valid");
    let secret = new_hmac_secret();
    let key = NewKey {
        key_id: key_id.clone(),
        scopes: vec![Scope::Read, Scope::Trade, Scope::Withdraw],
        algorithm: KeyAlgorithm::Hmac,
        credential: desk.keys().master_key().seal(key_id.as_str(), secret.as_bytes()),
        allowed_ips: Vec::new(),
    };
    let Outcome::Key(record) =
        submit(engine, Command::CreateKey { owner: KeyOwner::Client(client_id.clone()), key }).await?
    else {
        return Err(ApiError::internal("unexpected outcome"));
    };
    desk.keys().upsert(&record);
    Ok((key_id.to_string(), secret))
}

async fn submit(engine: &EngineHandle, command: Command) -> Result<Outcome, ApiError> {
    engine
        .submit(Actor::default(), command)
        .await
        .map(|executed| executed.outcome)
        .map_err(|error: SubmitError| error.into())
}

/// A session token (read and trade, one hour) for the first demo client, for the components' example page:
/// `otcd demo` prints `/ui/example.html#token=...`. This stands in for a host application's backend, which would
/// call `POST /v1/sessions` with its own signed key. `None` when the demo clients file is missing or unreadable.
pub fn example_session_token(desk: &StartedDesk, data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(demo_clients_path(data_dir)).ok()?;
    let clients: Vec<serde_json::Value> = serde_json::from_str(&text).ok()?;
    let key_id = clients.first()?.get("key_id")?.as_str()?;
    let key = desk.keys().get(key_id).filter(|key| !key.revoked)?;
    let scopes = crate::sessions::grantable(&key.scopes, Some(&[Scope::Read, Scope::Trade])).ok()?;
    let payload = crate::sessions::TokenPayload {
        key_id: key.key_id.to_string(),
        client_id: key.client_id.as_ref().map(ToString::to_string),
        scopes,
        expires_at_ms: crate::runner::now_ms().0 + 3_600_000,
        nonce: String::new(),
    };
    Some(crate::sessions::mint(desk.keys().master_key().session_key(), payload))
}
