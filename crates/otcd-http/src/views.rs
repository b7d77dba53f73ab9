//! Response bodies: domain values rendered for the API (decimal strings, RFC 3339 times, opaque ids).

use crate::json::enum_text;
use crate::json::{format_timestamp, format_trimmed};
use otcd_core::catalog::{Asset, AssetCode, AssetKind, Catalog, Instrument};
use otcd_core::decimal::format_scaled;
use otcd_core::engine::netting::Instruction;
use otcd_core::engine::orders::{Order, Trade};
use otcd_core::engine::settlement::{Destination, Withdrawal};
use otcd_core::engine::{BalanceLine, LedgerLine};
use otcd_core::ledger::{Purpose, TransactionKind};
use otcd_core::market::Side;
use otcd_core::model::{ApiKey, Client, Deposit, KycChange, KycStatus, Settlement, Tier};
use otcd_services::reconciliation::Reconciliation;
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
    /// Decimal places to show people (at most `scale`): amounts in the API keep `scale` places, user interfaces
    /// round them to this for display (the web components and the console do).
    pub display_decimals: u8,
    /// The largest single amount and the largest balance of this asset, in whole units (`"1000000000000"`).
    pub amount_max: String,
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
            display_decimals: asset.display_decimals(),
            amount_max: asset.amount_max_whole.to_string(),
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
    /// One-sided quotes: what accepting it moves, computed as the trade will be (quote asset). `quote_amount`:
    /// quantity × price, rounded against the client (up for a buy, down for a sell); `fee`: the desk's fee on it,
    /// rounded up; `net`: what the client pays (buy: `quote_amount + fee`) or receives (sell: `quote_amount − fee`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_asset: Option<String>,
}

/// `(quote_amount, fee, net)` of accepting a one-sided quote, in quote minor units, the way a fill computes them.
fn quote_totals(
    quote: &otcd_core::model::Quote,
    instrument: &Instrument,
    scales: (u8, u8),
) -> Option<(i128, i128, i128)> {
    use otcd_core::market::{pricing, Side};
    let side = quote.side?;
    let price = quote.price_for(side)?;
    let buying = side == Side::Buy;
    let amount =
        pricing::quote_amount(price, quote.quantity, instrument.price_scale, scales.0, scales.1, buying).ok()?;
    let fee = pricing::fee_amount(amount, quote.fee_centi_bps).ok()?;
    let net = if buying { amount.checked_add(fee)? } else { amount.checked_sub(fee)? };
    Some((amount, fee, net))
}

impl QuoteView {
    /// `scales`: decimal places of the instrument's base and quote assets.
    pub fn new(
        quote: &otcd_core::model::Quote,
        instrument: &Instrument,
        scales: (u8, u8),
        now: otcd_core::time::TimestampMs,
    ) -> Self {
        let base_scale = scales.0;
        let totals = quote_totals(quote, instrument, scales);
        let amount = |pick: fn((i128, i128, i128)) -> i128| totals.map(|all| format_scaled(pick(all), scales.1));
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
            quote_amount: amount(|(value, _, _)| value),
            fee: amount(|(_, fee, _)| fee),
            net: amount(|(_, _, net)| net),
            quote_asset: totals.map(|_| instrument.quote.to_string()),
        }
    }
}

/// Decimal places of an instrument's base and quote assets.
fn scales(catalog: &Catalog, instrument: &Instrument) -> (u8, u8) {
    let scale = |asset| catalog.asset(asset).map_or(0, |asset| asset.scale);
    (scale(&instrument.base), scale(&instrument.quote))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderTradeView {
    pub trade_id: String,
    pub price: String,
    pub quantity: String,
    /// The desk's fee on this fill, in the instrument's quote asset.
    pub fee: String,
    pub executed_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: String,
    pub client_order_id: String,
    #[serde(rename = "type")]
    pub order_type: String,
    pub quote_id: Option<String>,
    pub instrument: String,
    pub side: String,
    pub quantity: String,
    /// `filled`, `open`, `partially_filled`, `cancelled` or `expired`.
    pub status: String,
    pub filled_quantity: String,
    pub average_price: Option<String>,
    pub created_at: String,
    pub trades: Vec<OrderTradeView>,
    /// Limit orders: the limit, time in force and (gtd) expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_in_force: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<String>,
    /// Why the desk cancelled the order (e.g. desk capacity for the rest of an ioc order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TradeView {
    pub trade_id: String,
    pub order_id: String,
    pub instrument: String,
    pub side: String,
    pub price: String,
    pub quantity: String,
    /// The trade's value at its price, in the quote asset (before the fee).
    pub quote_amount: String,
    pub quote_asset: String,
    /// The desk's fee, in the quote asset (`"0.00"` when the client's tier has none).
    pub fee: String,
    /// What the client paid (buy: `quote_amount + fee`) or received (sell: `quote_amount − fee`).
    pub net_amount: String,
    pub executed_at: String,
}

fn side_text(side: Side) -> String {
    match side {
        Side::Buy => "buy".into(),
        Side::Sell => "sell".into(),
    }
}

/// What the client paid (buy) or received (sell) in the quote asset, the fee included.
pub fn net_amount(trade: &Trade) -> i128 {
    match trade.side {
        Side::Buy => trade.quote_amount + trade.fee,
        Side::Sell => trade.quote_amount - trade.fee,
    }
}

pub fn trade_view(catalog: &Catalog, trade: &Trade) -> Option<TradeView> {
    let instrument = catalog.instrument(&trade.instrument)?;
    let (base_scale, quote_scale) = scales(catalog, instrument);
    Some(TradeView {
        trade_id: trade.trade_id.clone(),
        order_id: trade.order_id.clone(),
        instrument: trade.instrument.clone(),
        side: side_text(trade.side),
        price: format_scaled(trade.price, instrument.price_scale),
        quantity: format_scaled(trade.quantity, base_scale),
        quote_amount: format_scaled(trade.quote_amount, quote_scale),
        quote_asset: instrument.quote.to_string(),
        fee: format_scaled(trade.fee, quote_scale),
        net_amount: format_scaled(net_amount(trade), quote_scale),
        executed_at: format_timestamp(trade.executed_at),
    })
}

pub fn order_view(catalog: &Catalog, order: &Order, trades: &[Trade]) -> Option<OrderView> {
    let instrument = catalog.instrument(&order.instrument)?;
    let (base, quote_scale) = scales(catalog, instrument);
    let (limit_price, time_in_force, expire_at) = match &order.request {
        otcd_core::engine::orders::OrderRequest::Limit { limit_price, time_in_force, expire_at, .. } => (
            Some(format_scaled(*limit_price, instrument.price_scale)),
            Some(enum_text(time_in_force)),
            expire_at.map(format_timestamp),
        ),
        _ => (None, None, None),
    };
    Some(OrderView {
        limit_price,
        time_in_force,
        expire_at,
        cancel_reason: order.cancel_reason.clone(),
        order_id: order.order_id.clone(),
        client_order_id: order.client_order_id.to_string(),
        order_type: order.order_type.clone(),
        quote_id: order.quote_id.clone(),
        instrument: order.instrument.clone(),
        side: side_text(order.side),
        quantity: format_scaled(order.quantity, base),
        status: enum_text(order.status),
        filled_quantity: format_scaled(order.filled_quantity, base),
        average_price: order.average_price.map(|price| format_scaled(price, instrument.price_scale)),
        created_at: format_timestamp(order.created_at),
        trades: trades
            .iter()
            .map(|trade| OrderTradeView {
                trade_id: trade.trade_id.clone(),
                price: format_scaled(trade.price, instrument.price_scale),
                quantity: format_scaled(trade.quantity, base),
                fee: format_scaled(trade.fee, quote_scale),
                executed_at: format_timestamp(trade.executed_at),
            })
            .collect(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationView {
    pub destination_id: String,
    /// The client whose destination it is.
    pub client_id: String,
    pub asset: String,
    pub network: String,
    /// Normalized: EIP-55 checksummed, lowercase bech32, IBAN without spaces.
    pub address: String,
    pub label: Option<String>,
    /// `approved`, `pending_review` or `rejected`.
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalView {
    pub withdrawal_id: String,
    pub client_withdrawal_id: String,
    pub asset: String,
    pub amount: String,
    pub destination_id: String,
    /// `pending` (funds reserved), `submitted` (with the custodian or bank), `completed` or `failed`.
    pub status: String,
    pub external_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn destination_view(destination: &Destination) -> DestinationView {
    DestinationView {
        destination_id: destination.destination_id.clone(),
        client_id: destination.client_id.to_string(),
        asset: destination.asset.to_string(),
        network: destination.network.as_str().to_owned(),
        address: destination.address.clone(),
        label: destination.label.clone(),
        status: enum_text(destination.status),
        created_at: format_timestamp(destination.created_at),
    }
}

pub fn withdrawal_view(catalog: &Catalog, withdrawal: &Withdrawal) -> WithdrawalView {
    let scale = catalog.asset(&withdrawal.asset).map_or(0, |asset| asset.scale);
    WithdrawalView {
        withdrawal_id: withdrawal.withdrawal_id.clone(),
        client_withdrawal_id: withdrawal.client_withdrawal_id.to_string(),
        asset: withdrawal.asset.to_string(),
        amount: format_scaled(withdrawal.amount, scale),
        destination_id: withdrawal.destination_id.clone(),
        status: enum_text(withdrawal.status),
        external_reference: withdrawal.external_reference.clone(),
        failure_reason: withdrawal.failure_reason.clone(),
        created_at: format_timestamp(withdrawal.created_at),
        updated_at: format_timestamp(withdrawal.updated_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstructionView {
    pub instruction_id: String,
    pub cycle: u64,
    pub client_id: String,
    pub asset: String,
    /// `client_pays` (the client delivers to the desk) or `desk_pays`.
    pub direction: String,
    pub amount: String,
    /// `pending`, `completed` or `failed`.
    pub status: String,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn instruction_view(catalog: &Catalog, instruction: &Instruction) -> InstructionView {
    let scale = catalog.asset(&instruction.asset).map_or(0, |asset| asset.scale);
    InstructionView {
        instruction_id: instruction.instruction_id.clone(),
        cycle: instruction.cycle,
        client_id: instruction.client_id.to_string(),
        asset: instruction.asset.to_string(),
        direction: enum_text(instruction.direction),
        amount: format_scaled(instruction.amount, scale),
        status: enum_text(instruction.status),
        failure_reason: instruction.failure_reason.clone(),
        created_at: format_timestamp(instruction.created_at),
        updated_at: format_timestamp(instruction.updated_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationView {
    pub as_of: String,
    /// `matched` or `breaks`.
    pub status: String,
    pub breaks: usize,
    pub lines: Vec<LineView>,
    /// The venues beside the rails: `matched` or `breaks`.
    pub venue_status: String,
    pub venue_breaks: usize,
    /// One line per venue and asset either side holds anything of.
    pub venues: Vec<VenueLineView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VenueLineView {
    pub venue: String,
    pub asset: String,
    /// What the ledger's venue account says the desk holds there.
    pub ledger: String,
    /// The balance the venue adapter reports.
    pub at_venue: String,
    /// `at_venue − ledger`.
    pub difference: String,
    /// `matched` or `break`.
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineView {
    pub asset: String,
    /// `custody` (crypto: hot and cold wallets) or `bank` (fiat).
    pub account: String,
    /// The ledger's holdings in that account.
    pub ledger: String,
    /// Payouts handed to the rail, not yet settled on the ledger.
    pub submitted_payouts: String,
    /// Deposits the custodian has seen that are still confirming.
    pub confirming_deposits: String,
    pub expected_at_rail: String,
    pub at_rail: String,
    /// `at_rail − expected_at_rail`.
    pub difference: String,
    /// `matched` or `break`.
    pub status: String,
    /// For a break: the rail's movements the desk has no record of (newest first).
    pub unmatched_movements: Vec<MovementView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovementView {
    pub reference: String,
    pub amount: String,
    pub at: String,
}

/// Renders a reconciliation: every line, and for each break the rail's movements the desk does not know.
pub fn reconciliation_view(reconciliation: &Reconciliation, catalog: &Catalog) -> ReconciliationView {
    let Reconciliation { lines, venues, unmatched, as_of } = reconciliation;
    let scale = |asset: &AssetCode| catalog.asset(asset).map_or(0, |asset| asset.scale);
    let line_views: Vec<LineView> = lines
        .iter()
        .map(|line| {
            let scale = scale(&line.asset);
            let amount = |value: i128| format_scaled(value, scale);
            let matched = line.difference() == 0;
            LineView {
                asset: line.asset.to_string(),
                account: enum_text(line.account),
                ledger: amount(line.ledger.holdings),
                submitted_payouts: amount(line.ledger.submitted_payouts),
                confirming_deposits: amount(line.ledger.confirming_deposits),
                expected_at_rail: amount(line.ledger.expected_at_rail()),
                at_rail: amount(line.at_rail),
                difference: amount(line.difference()),
                status: if matched { "matched" } else { "break" }.into(),
                unmatched_movements: unmatched
                    .get(&line.asset)
                    .filter(|_| !matched)
                    .map(|movements| {
                        movements
                            .iter()
                            .map(|movement| MovementView {
                                reference: movement.reference.clone(),
                                amount: amount(movement.amount),
                                at: format_timestamp(otcd_core::time::TimestampMs(movement.at_ms)),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let breaks = line_views.iter().filter(|line| line.status == "break").count();
    let venue_views: Vec<VenueLineView> = venues
        .iter()
        .map(|line| {
            let amount = |value: i128| format_scaled(value, scale(&line.asset));
            VenueLineView {
                venue: line.venue.clone(),
                asset: line.asset.to_string(),
                ledger: amount(line.ledger),
                at_venue: amount(line.at_venue),
                difference: amount(line.difference()),
                status: if line.difference() == 0 { "matched" } else { "break" }.into(),
            }
        })
        .collect();
    let venue_breaks = venue_views.iter().filter(|line| line.status == "break").count();
    ReconciliationView {
        as_of: format_timestamp(*as_of),
        status: if breaks == 0 { "matched" } else { "breaks" }.into(),
        breaks,
        lines: line_views,
        venue_status: if venue_breaks == 0 { "matched" } else { "breaks" }.into(),
        venue_breaks,
        venues: venue_views,
    }
}
