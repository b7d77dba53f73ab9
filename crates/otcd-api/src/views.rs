//! Response bodies: domain values rendered for the API (decimal strings, RFC 3339 times, opaque ids).

use crate::json::{format_timestamp, format_trimmed};
use otcd_core::catalog::{Asset, AssetKind, Catalog, Instrument};
use otcd_core::decimal::format_scaled;
use otcd_core::engine::{BalanceLine, LedgerLine};
use otcd_core::ledger::{Purpose, TransactionKind};
use otcd_core::model::{ApiKey, Client, Deposit, KycChange, KycStatus, Settlement, Tier};
use serde::Serialize;
use utoipa::ToSchema;

/// USD amounts (limits, notionals) are kept in cents.
pub const USD_SCALE: u8 = 2;

#[derive(Debug, Serialize, ToSchema)]
pub struct ListView<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScreeningView {
    /// `clear`, `review` or `hit`.
    pub status: String,
    pub matches: Vec<ScreeningMatchView>,
    /// The sanctions lists the name was screened against; empty when none are loaded.
    pub lists: Vec<String>,
}

impl From<Option<&otcd_core::model::ClientScreening>> for ScreeningView {
    fn from(screening: Option<&otcd_core::model::ClientScreening>) -> Self {
        let Some(screening) = screening else {
            return Self { status: "clear".into(), matches: Vec::new(), lists: Vec::new() };
        };
        Self {
            status: crate::json::enum_text(screening.status),
            matches: screening
                .matches
                .iter()
                .map(|found| ScreeningMatchView {
                    list: found.list.clone(),
                    entry_id: found.entry_id.clone(),
                    name: found.name.clone(),
                    score: format_trimmed(i128::from(found.score_thousandths), 3),
                })
                .collect(),
            lists: vec![format!("ofac_sdn+un@{}", screening.screening_version_short())],
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScreeningMatchView {
    pub list: String,
    pub entry_id: String,
    pub name: String,
    pub score: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KycChangeView {
    pub at: String,
    pub by: Option<String>,
    #[schema(value_type = String, example = "approved")]
    pub status: KycStatus,
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub jurisdiction: String,
    pub tier: String,
    #[schema(value_type = String, example = "approved")]
    pub kyc_status: KycStatus,
    pub kyc_expires_at: Option<String>,
    #[schema(value_type = String, example = "prefunded")]
    pub settlement: Settlement,
    pub credit_limit_usd: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub kyc_history: Vec<KycChangeView>,
    pub screening: ScreeningView,
}

impl From<&Client> for ClientView {
    fn from(client: &Client) -> Self {
        Self {
            client_id: client.client_id.to_string(),
            name: client.name.clone(),
            jurisdiction: client.jurisdiction.to_string(),
            tier: client.tier.to_string(),
            kyc_status: client.kyc_status,
            kyc_expires_at: client.kyc_expires_at.map(format_timestamp),
            settlement: client.settlement,
            credit_limit_usd: client.credit_limit_usd.map(|limit| format_scaled(limit, USD_SCALE)),
            created_at: format_timestamp(client.created_at),
            updated_at: format_timestamp(client.updated_at),
            kyc_history: client.kyc_history.iter().map(KycChangeView::from).collect(),
            screening: ScreeningView::from(client.screening.as_ref()),
        }
    }
}

impl From<&KycChange> for KycChangeView {
    fn from(change: &KycChange) -> Self {
        Self {
            at: format_timestamp(change.at),
            by: change.by.as_ref().map(ToString::to_string),
            status: change.status,
            expires_at: change.expires_at.map(format_timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub key_id: String,
    /// The HMAC secret: present only in the response that created the key, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub algorithm: String,
    pub allowed_ips: Vec<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl KeyView {
    pub fn new(key: &ApiKey, secret: Option<String>) -> Self {
        Self {
            key_id: key.key_id.to_string(),
            secret,
            client_id: key.client_id().map(ToString::to_string),
            scopes: key.scopes.iter().map(|scope| scope.as_str().to_owned()).collect(),
            algorithm: crate::json::enum_text(key.algorithm),
            allowed_ips: key.allowed_ips.clone(),
            created_at: format_timestamp(key.created_at),
            revoked_at: key.revoked_at.map(format_timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierView {
    pub tier: String,
    pub spread_bps: String,
    pub bands: Vec<SpreadBandView>,
    pub trade_notional_usd_max: Option<String>,
    pub daily_notional_usd_max: Option<String>,
    /// Requests per second one key may send, per class.
    pub rate_limits: RateLimitsView,
    /// The fee per trade in basis points of its quote amount (`"0"`: none).
    pub fee_bps: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitsView {
    pub reads: u32,
    pub rfq: u32,
    pub orders: u32,
    pub withdrawals: u32,
}

impl From<&Tier> for TierView {
    fn from(tier: &Tier) -> Self {
        Self {
            tier: tier.name.to_string(),
            spread_bps: format_trimmed(tier.spread_centi_bps, 2),
            bands: tier
                .bands
                .iter()
                .map(|band| SpreadBandView {
                    notional_usd_min: format_scaled(band.notional_usd_min, USD_SCALE),
                    spread_bps: format_trimmed(band.spread_centi_bps, 2),
                })
                .collect(),
            trade_notional_usd_max: tier.trade_notional_usd_max.map(|limit| format_scaled(limit, USD_SCALE)),
            daily_notional_usd_max: tier.daily_notional_usd_max.map(|limit| format_scaled(limit, USD_SCALE)),
            rate_limits: RateLimitsView {
                reads: tier.rate_limits.reads,
                rfq: tier.rate_limits.rfq,
                orders: tier.rate_limits.orders,
                withdrawals: tier.rate_limits.withdrawals,
            },
            fee_bps: format_trimmed(tier.fee_centi_bps, 2),
            updated_at: format_timestamp(tier.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SpreadBandView {
    pub notional_usd_min: String,
    pub spread_bps: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DepositView {
    pub deposit_id: String,
    pub client_id: String,
    pub asset: String,
    pub amount: String,
    pub reference: String,
    /// Admin deposits are credited at once: always `confirmed`.
    pub status: String,
    pub created_at: String,
}

impl DepositView {
    pub fn new(deposit: &Deposit, scale: u8) -> Self {
        Self {
            deposit_id: deposit.deposit_id.clone(),
            client_id: deposit.client_id.to_string(),
            asset: deposit.asset.to_string(),
            amount: format_scaled(deposit.amount, scale),
            reference: deposit.reference.to_string(),
            status: "confirmed".into(),
            created_at: format_timestamp(deposit.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    pub asset: String,
    pub available: String,
    pub reserved: String,
}

impl From<&BalanceLine> for BalanceView {
    fn from(line: &BalanceLine) -> Self {
        Self {
            asset: line.asset.to_string(),
            available: format_scaled(line.available, line.scale),
            reserved: format_scaled(line.reserved, line.scale),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryView {
    pub entry_id: String,
    pub transaction_id: String,
    pub created_at: String,
    pub asset: String,
    /// `available` or `reserved`.
    pub account: String,
    /// What moved the funds: `deposit`, `withdrawal`, `trade`, `fee`, `reservation`, ...
    #[serde(rename = "type")]
    pub entry_type: String,
    pub reference: String,
    /// Signed: positive credits the account.
    pub amount: String,
    /// The account's balance after this entry.
    pub balance: String,
}

impl From<&LedgerLine> for LedgerEntryView {
    fn from(line: &LedgerLine) -> Self {
        let (entry_type, reference) = describe(&line.kind);
        Self {
            entry_id: line.position.to_string(),
            transaction_id: line.transaction.0.to_string(),
            created_at: format_timestamp(line.at),
            asset: line.asset.to_string(),
            account: match line.purpose {
                Purpose::Reserved => "reserved",
                _ => "available",
            }
            .into(),
            entry_type: entry_type.into(),
            reference,
            amount: format_scaled(line.amount, line.scale),
            balance: format_scaled(line.balance_after, line.scale),
        }
    }
}

fn describe(kind: &TransactionKind) -> (&'static str, String) {
    kind.label()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstrumentView {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub price_increment: String,
    pub quantity_increment: String,
    pub quantity_min: String,
    pub quantity_max: String,
}

impl InstrumentView {
    pub fn new(instrument: &Instrument, catalog: &Catalog) -> Self {
        let base_scale = catalog.asset(&instrument.base).map_or(0, |asset| asset.scale);
        Self {
            symbol: instrument.symbol.clone(),
            base: instrument.base.to_string(),
            quote: instrument.quote.to_string(),
            price_increment: format_trimmed(instrument.price_step, instrument.price_scale),
            quantity_increment: format_trimmed(instrument.quantity_step, base_scale),
            quantity_min: format_trimmed(instrument.quantity_min, base_scale),
            quantity_max: format_trimmed(instrument.quantity_max, base_scale),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssetView {
    pub code: String,
    pub scale: u8,
    /// `crypto` or `fiat`.
    pub kind: String,
}

impl From<&Asset> for AssetView {
    fn from(asset: &Asset) -> Self {
        Self {
            code: asset.code.to_string(),
            scale: asset.scale,
            kind: match asset.kind {
                AssetKind::Crypto => "crypto",
                AssetKind::Fiat => "fiat",
            }
            .into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub client_id: String,
    pub name: String,
    pub tier: String,
    #[schema(value_type = String, example = "approved")]
    pub kyc_status: KycStatus,
    pub kyc_expires_at: Option<String>,
    #[schema(value_type = String, example = "prefunded")]
    pub settlement: Settlement,
    pub limits: LimitsView,
    pub usage: UsageView,
    /// Credit clients: net obligations per asset since the last settlement cycle (negative: owed to the desk).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unsettled: Vec<UnsettledView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnsettledView {
    pub asset: String,
    pub amount: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsView {
    pub spread_bps: String,
    pub trade_notional_usd_max: Option<String>,
    pub daily_notional_usd_max: Option<String>,
    pub credit_limit_usd: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    /// Notional traded since 00:00 UTC today, in USD (at each trade's USD value when it executed).
    pub daily_notional_usd: String,
    /// Credit clients: USD notional traded on credit and not yet settled.
    pub open_exposure_usd: String,
}

impl AccountView {
    /// `daily_notional_usd` and `credit_used_usd` in cents.
    pub fn new(client: &Client, tier: Option<&Tier>, daily_notional_usd: i128, credit_used_usd: i128) -> Self {
        let usd = |value: Option<i128>| value.map(|cents| format_scaled(cents, USD_SCALE));
        Self {
            client_id: client.client_id.to_string(),
            name: client.name.clone(),
            tier: client.tier.to_string(),
            kyc_status: client.kyc_status,
            kyc_expires_at: client.kyc_expires_at.map(format_timestamp),
            settlement: client.settlement,
            limits: LimitsView {
                spread_bps: tier.map_or_else(String::new, |tier| format_trimmed(tier.spread_centi_bps, 2)),
                trade_notional_usd_max: usd(tier.and_then(|tier| tier.trade_notional_usd_max)),
                daily_notional_usd_max: usd(tier.and_then(|tier| tier.daily_notional_usd_max)),
                credit_limit_usd: usd(client.credit_limit_usd),
            },
            usage: UsageView {
                daily_notional_usd: format_scaled(daily_notional_usd, USD_SCALE),
                open_exposure_usd: format_scaled(credit_used_usd, USD_SCALE),
            },
            unsettled: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteView {
    pub quote_id: String,
    pub client_rfq_id: Option<String>,
    pub instrument: String,
    /// `buy` or `sell`; absent for two-way (streamed) quotes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<String>,
    pub quantity: String,
    /// The quoted price for `side`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ask: Option<String>,
    pub firm: bool,
    pub created_at: String,
    pub valid_until: String,
    /// `open`, `used` or `expired`.
    pub state: String,
    /// The oldest market data behind the price.
    pub market_as_of: String,
    /// The fee the desk charges on a trade on this quote, basis points of its quote amount (`"0"`: none).
    pub fee_bps: String,
}

impl QuoteView {
    pub fn new(
        quote: &otcd_core::model::Quote,
        instrument: &Instrument,
        base_scale: u8,
        now: otcd_core::time::TimestampMs,
    ) -> Self {
        let price = |value: Option<i128>| value.map(|price| format_scaled(price, instrument.price_scale));
        let side = quote.side.map(|side| match side {
            otcd_core::market::Side::Buy => "buy".to_owned(),
            otcd_core::market::Side::Sell => "sell".to_owned(),
        });
        Self {
            quote_id: quote.quote_id.clone(),
            client_rfq_id: quote.client_rfq_id.as_ref().map(ToString::to_string),
            instrument: quote.instrument.clone(),
            price: quote.side.and_then(|side| price(quote.price_for(side))),
            side,
            quantity: format_scaled(quote.quantity, base_scale),
            bid: if quote.side.is_none() { price(quote.bid) } else { None },
            ask: if quote.side.is_none() { price(quote.ask) } else { None },
            firm: true,
            created_at: format_timestamp(quote.created_at),
            valid_until: format_timestamp(quote.valid_until),
            state: match quote.state {
                otcd_core::model::QuoteState::Used { .. } => "used".into(),
                otcd_core::model::QuoteState::Open if now >= quote.valid_until => "expired".into(),
                otcd_core::model::QuoteState::Open => "open".into(),
            },
            market_as_of: format_timestamp(quote.market_as_of),
            fee_bps: format_trimmed(quote.fee_centi_bps, 2),
        }
    }
}
