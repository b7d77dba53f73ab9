//! The demo's hedging: desk capital, the simulated venues funded through the ledger, hedging policies for BTC and
//! ETH, and a simulated client flow (one RFQ and accept every few seconds, random sides and sizes) so a new user
//! sees hedges open, positions kept inside their bands, hedging P&L and venue balances (docs/hedging.md).
//!
//! Everything goes through the desk services like an operator's and a client's requests: the flow is a client of
//! the desk with its own tier and balances, not a shortcut into the engine.

use crate::server::StartedDesk;
use otcd_core::catalog::AssetCode;
use otcd_core::decimal::parse_positive;
use otcd_core::engine::hedging::{HedgeTo, HedgingPolicy};
use otcd_core::engine::venue_transfers::{NewVenueTransfer, TransferDirection};
use otcd_core::engine::{Actor, NewClient, TierSpec};
use otcd_core::ids::{ClientId, ClientReference, TierName};
use otcd_core::market::Side;
use otcd_core::model::{Jurisdiction, KycStatus, RequestedSize, Settlement};
use otcd_host::secrets::write_private_file;
use otcd_services::orders::OrderTicket;
use otcd_services::quotes::RfqTicket;
use otcd_services::{DeskServices, ServiceError, ServiceResult};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The desk's own capital (funded into its inventory; held at the custodian and the bank).
const CAPITAL: [(&str, &str); 3] = [("BTC", "100"), ("ETH", "1000"), ("USD", "10000000")];
/// What the desk transfers to each simulated venue at the start (the paper venues open empty in the demo).
const PER_VENUE: [(&str, &str); 3] = [("BTC", "20"), ("ETH", "200"), ("USD", "3000000")];
/// The simulated client's balances.
const FLOW_DEPOSITS: [(&str, &str); 3] = [("USD", "50000000"), ("BTC", "1000"), ("ETH", "10000")];
/// Hedged assets: (asset, instrument, band, largest hedge order); client trades are hundredths in `FLOW_SIZES`.
const HEDGED: [(&str, &str, &str, &str); 2] = [("BTC", "BTC-USD", "0.5", "1"), ("ETH", "ETH-USD", "5", "10")];
/// Client trade sizes per instrument, in hundredths of the base asset: BTC 0.05 to 0.5, ETH 0.5 to 5.
const FLOW_SIZES: [(&str, u32, u32); 2] = [("BTC-USD", 5, 50), ("ETH-USD", 50, 500)];
/// How the simulated client flow trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSettings {
    pub interval: Duration,
    /// Trades before it stops (bounded: at most 100,000 in one run of the demo).
    pub trades_max: u64,
}

pub fn flow_client_path(data_dir: &Path) -> PathBuf {
    data_dir.join("demo-flow.json")
}

fn code(text: &str) -> AssetCode {
    AssetCode::parse(text).expect("a demo asset")
}

fn reference(text: &str) -> ClientReference {
    ClientReference::parse(text).expect("a demo reference")
}

fn amount(services: &DeskServices, asset: &str, text: &str) -> i128 {
    parse_positive(text, services.scale(&code(asset))).expect("a demo amount")
}

/// Seeds the demo's hedging once (with the demo's first seeding): capital, venue funding, policies, and the flow
/// client, whose id goes to `demo-flow.json`.
pub async fn seed(desk: &StartedDesk, data_dir: &Path) -> ServiceResult<()> {
    let services = desk.services();
    let admin = Actor::default();
    for (asset, text) in CAPITAL {
        let value = amount(services, asset, text);
        services.fund_desk(admin.clone(), code(asset), value, reference(&format!("demo-capital-{asset}"))).await?;
    }
    for venue in otcd_market::SIM_VENUES {
        for (asset, text) in PER_VENUE {
            let transfer = NewVenueTransfer {
                venue: venue.to_owned(),
                asset: code(asset),
                amount: amount(services, asset, text),
                direction: TransferDirection::ToVenue,
                reference: reference(&format!("demo-{venue}-{asset}")),
            };
            services.transfer_venue(admin.clone(), transfer).await?;
        }
    }
    for (asset, instrument, band, order_max) in HEDGED {
        // The capital is the desk's position to keep: the target, so the hedger lays off only the client flow.
        let capital =
            CAPITAL.iter().find(|(code, _)| *code == asset).map_or(0, |(_, text)| amount(services, asset, text));
        let policy = HedgingPolicy {
            asset: code(asset),
            enabled: true,
            target: capital,
            band: amount(services, asset, band),
            hedge_to: HedgeTo::Target,
            instruments: vec![instrument.to_owned()],
            venues: otcd_market::SIM_VENUES.iter().map(|venue| (*venue).to_owned()).collect(),
            order_quantity_max: amount(services, asset, order_max),
            slippage_centi_bps_max: 5_000,
            interval_ms_min: 0,
            attempts_max: 3,
        };
        services.put_hedging_policy(admin.clone(), policy).await?;
    }
    let client_id = seed_flow_client(desk, services).await?;
    let text = serde_json::json!({"client_id": client_id.to_string()}).to_string();
    write_private_file(&flow_client_path(data_dir), text.as_bytes())
        .map_err(|error| ServiceError::Internal(error.to_string()))
}

async fn seed_flow_client(desk: &StartedDesk, services: &DeskServices) -> ServiceResult<ClientId> {
    let tier = TierSpec {
        name: TierName::parse("flow").expect("valid"),
        spread_centi_bps: 500,
        bands: Vec::new(),
        trade_notional_usd_max: None,
        daily_notional_usd_max: None,
        rate_limits: None,
        fee_centi_bps: 0,
    };
    let stored = services.put_tier(Actor::default(), tier).await?;
    desk.rate_limits().set_tier(&stored.name, stored.rate_limits);
    let new = NewClient {
        name: "Demo client flow (simulated)".into(),
        jurisdiction: Jurisdiction::parse("DE").expect("valid"),
        tier: stored.name.clone(),
        kyc_status: KycStatus::Approved,
        kyc_expires_at: None,
        settlement: Settlement::Prefunded,
        credit_limit_usd: None,
        screening: None,
    };
    let client = services.create_client(Actor::default(), new).await?;
    desk.rate_limits().set_client_tier(&client.client_id, &client.tier);
    for (asset, text) in FLOW_DEPOSITS {
        let value = amount(services, asset, text);
        let deposit_reference = reference(&format!("demo-flow-{asset}"));
        services.deposit(Actor::default(), client.client_id.clone(), code(asset), value, deposit_reference).await?;
    }
    Ok(client.client_id)
}

/// The flow client of a demo data directory (`None` for one seeded before the flow existed).
pub fn flow_client(data_dir: &Path) -> Option<ClientId> {
    let text = std::fs::read_to_string(flow_client_path(data_dir)).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    ClientId::parse(value.get("client_id")?.as_str()?).ok()
}

/// Starts the simulated client flow: every `interval`, an RFQ for a random side and size of BTC-USD or ETH-USD,
/// accepted at once; `trades_max` trades, then it stops. A refused request (a halted instrument, the kill switch,
/// stale books) is skipped, never retried; at most ten refusals per trade made, so a desk that refuses everything
/// does not keep it asking forever.
pub fn spawn(services: Arc<DeskServices>, client_id: ClientId, settings: FlowSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut rng = rand::rngs::StdRng::from_entropy();
        let mut ticker = tokio::time::interval(settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let run = rng.gen::<u32>();
        let mut traded = 0;
        let attempts_max = settings.trades_max.saturating_mul(10);
        for number in 0..attempts_max {
            if traded >= settings.trades_max {
                break;
            }
            ticker.tick().await;
            match trade(&services, &client_id, &mut rng, &format!("flow-{run:08x}-{number}")).await {
                Ok(()) => traded += 1,
                Err(error) => tracing::debug!(%error, "demo client flow: a trade was refused"),
            }
        }
        tracing::info!(traded, "demo client flow: done");
    })
}

async fn trade(
    services: &DeskServices,
    client_id: &ClientId,
    rng: &mut rand::rngs::StdRng,
    id: &str,
) -> ServiceResult<()> {
    let (symbol, low, high) = FLOW_SIZES[rng.gen_range(0..FLOW_SIZES.len())];
    let instrument = services.instrument(symbol)?.clone();
    let scale = services.scale(&instrument.base);
    let hundredths = i128::from(rng.gen_range(low..=high));
    let mut quantity = hundredths * 10i128.pow(u32::from(scale.saturating_sub(2)));
    quantity -= quantity.rem_euclid(instrument.quantity_step.max(1));
    let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
    let ticket = RfqTicket {
        client_id: client_id.clone(),
        client_rfq_id: Some(reference(id)),
        instrument,
        side,
        size: RequestedSize::Base(quantity),
    };
    let quote = services.request_quote(Actor::default(), ticket).await?.value;
    let order = OrderTicket::Quote { quote_id: quote.quote_id, side: None };
    services.place_order(Actor::default(), client_id.clone(), reference(id), order).await?;
    Ok(())
}
