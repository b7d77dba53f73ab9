//! What the desk knows about: clients, their API keys, tiers and deposits.

use crate::catalog::AssetCode;
use crate::ids::{ClientId, ClientReference, KeyId, TierName};
use crate::ledger::TransactionId;
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest client name accepted.
pub const CLIENT_NAME_LENGTH_MAX: usize = 200;
/// CIDR entries per key allow-list.
pub const ALLOWED_IPS_MAX: usize = 32;
/// Stored KYC changes per client; the journal keeps the full history, this is what the API shows.
pub const KYC_HISTORY_MAX: usize = 100;
/// How far the time a client signed a request (or a logon) at may be from the desk's clock, either way. Every
/// protocol edge applies it, and recovery hands back the signatures of this window (twice it, for clock skew) so
/// a replay across a restart is still refused.
pub const SIGNATURE_WINDOW_MS: i64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KycStatus {
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// Trades settle against funds already on the ledger; available balances never go negative.
    Prefunded,
    /// Trades accrue obligations up to a credit limit, settled in net cycles.
    Credit,
}

/// An ISO 3166-1 alpha-2 country code with an optional subdivision: `DE`, `US-NY`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Jurisdiction(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an ISO 3166 country code with an optional subdivision, such as \"DE\" or \"US-NY\"")]
pub struct JurisdictionError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JurisdictionAssignedError {
    #[error("must be an ISO 3166 country code with an optional subdivision, such as \"DE\" or \"US-NY\"")]
    Syntax,
    #[error("is not an ISO 3166-1 alpha-2 country code (officially assigned codes only, such as \"DE\" or \"GB\")")]
    UnknownCountry,
    #[error("is not an ISO 3166-2 subdivision code (such as \"US-NY\")")]
    UnknownSubdivision,
}

impl Jurisdiction {
    pub fn parse(text: &str) -> Result<Self, JurisdictionError> {
        let (country, subdivision) = match text.split_once('-') {
            Some((country, subdivision)) => (country, Some(subdivision)),
            None => (text, None),
        };
        let country_valid = country.len() == 2 && country.bytes().all(|byte| byte.is_ascii_uppercase());
        let subdivision_valid = subdivision.is_none_or(|part| {
            (1..=3).contains(&part.len()) && part.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
        });
        if !(country_valid && subdivision_valid) {
            return Err(JurisdictionError);
        }
        Ok(Self(text.to_owned()))
    }

    /// [`Jurisdiction::parse`], and the code must be assigned: an ISO 3166-1 alpha-2 country (`XX` and the
    /// reserved `UK` are refused) and, with a subdivision, an ISO 3166-2 one (`US-NY`). For new input only:
    /// records journaled before this check existed still deserialize through `parse`.
    pub fn parse_assigned(text: &str) -> Result<Self, JurisdictionAssignedError> {
        let jurisdiction = Self::parse(text).map_err(|_| JurisdictionAssignedError::Syntax)?;
        if !crate::iso3166::is_country(jurisdiction.country()) {
            return Err(JurisdictionAssignedError::UnknownCountry);
        }
        if text.len() > 2 && !crate::iso3166::is_subdivision(text) {
            return Err(JurisdictionAssignedError::UnknownSubdivision);
        }
        Ok(jurisdiction)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn country(&self) -> &str {
        &self.0[..2]
    }
}

impl TryFrom<String> for Jurisdiction {
    type Error = JurisdictionError;
    fn try_from(text: String) -> Result<Self, JurisdictionError> {
        Self::parse(&text)
    }
}
impl From<Jurisdiction> for String {
    fn from(jurisdiction: Jurisdiction) -> String {
        jurisdiction.0
    }
}
impl fmt::Display for Jurisdiction {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KycChange {
    pub at: TimestampMs,
    pub by: Option<KeyId>,
    pub status: KycStatus,
    pub expires_at: Option<TimestampMs>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: ClientId,
    pub name: String,
    pub jurisdiction: Jurisdiction,
    pub tier: TierName,
    pub kyc_status: KycStatus,
    pub kyc_expires_at: Option<TimestampMs>,
    pub settlement: Settlement,
    /// USD cents; `Some` only for credit clients.
    pub credit_limit_usd: Option<i128>,
    pub created_at: TimestampMs,
    pub updated_at: TimestampMs,
    pub kyc_history: Vec<KycChange>,
    /// The latest sanctions screening of the client's name (absent when the desk runs without lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screening: Option<ClientScreening>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScreeningStatus {
    Clear,
    Review,
    Hit,
    /// A compliance user reviewed the matches and cleared the client.
    Cleared,
}

/// A client's screening result, computed at the edge against the loaded lists and journaled with the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientScreening {
    pub status: ScreeningStatus,
    pub matches: Vec<super::settlement::ScreeningMatch>,
    /// The lists' digest, so every decision names the list version it was made on.
    pub lists_version: String,
}

impl ClientScreening {
    /// `review` and `hit` wait for a compliance decision (KYC cannot be approved meanwhile).
    pub fn needs_decision(&self) -> bool {
        matches!(self.status, ScreeningStatus::Review | ScreeningStatus::Hit)
    }

    /// The first 12 hex digits of the lists' digest, for evidence texts.
    pub fn screening_version_short(&self) -> &str {
        self.lists_version.get(..12).unwrap_or(&self.lists_version)
    }
}

impl Client {
    /// Approved and not expired at `now`.
    pub fn kyc_valid_at(&self, now: TimestampMs) -> bool {
        self.kyc_status == KycStatus::Approved && self.kyc_expires_at.is_none_or(|expiry| now < expiry)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Trade,
    Withdraw,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Trade, Scope::Withdraw, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Trade => "trade",
            Scope::Withdraw => "withdraw",
            Scope::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlgorithm {
    Hmac,
    Ed25519,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyOwner {
    /// A desk operator's key (admin scope allowed).
    Desk,
    Client(ClientId),
}

/// An API key as the desk stores it. `credential` is the HMAC secret sealed with the desk master key (the engine
/// never sees it in plain text) or the raw 32-byte Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub key_id: KeyId,
    pub owner: KeyOwner,
    pub scopes: Vec<Scope>,
    pub algorithm: KeyAlgorithm,
    #[serde(with = "hex_bytes")]
    pub credential: Vec<u8>,
    /// Normalized CIDR strings; empty = any source address.
    pub allowed_ips: Vec<String>,
    pub created_at: TimestampMs,
    pub created_by: Option<KeyId>,
    pub revoked_at: Option<TimestampMs>,
}

impl ApiKey {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    pub fn client_id(&self) -> Option<&ClientId> {
        match &self.owner {
            KeyOwner::Client(client_id) => Some(client_id),
            KeyOwner::Desk => None,
        }
    }
}

/// Requests per second one key of a tier may send, per request class (API.md: the `standard` tier allows no
/// more than 100 of one class from one key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    pub reads: u32,
    pub rfq: u32,
    pub orders: u32,
    pub withdrawals: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { reads: 100, rfq: 100, orders: 100, withdrawals: 100 }
    }
}

/// A spread that applies from a USD notional upwards (size bands: larger trades can get tighter spreads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpreadBand {
    /// USD cents; the band applies to requests of at least this notional.
    pub notional_usd_min: i128,
    pub spread_centi_bps: i128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub name: TierName,
    /// Hundredths of a basis point (`"12.5"` bps is 1250).
    pub spread_centi_bps: i128,
    /// Ascending by `notional_usd_min`; empty = one spread for every size.
    #[serde(default)]
    pub bands: Vec<SpreadBand>,
    /// USD cents; `None` = no limit.
    pub trade_notional_usd_max: Option<i128>,
    pub daily_notional_usd_max: Option<i128>,
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// The desk's fee on each trade, hundredths of a basis point of the trade's quote amount, charged in the
    /// quote asset on top of the spread (0: no fee leg). Quotes and resting orders keep the rate they were made at.
    #[serde(default)]
    pub fee_centi_bps: i128,
    pub updated_at: TimestampMs,
}

impl Tier {
    /// The spread for a request of `notional_usd` cents: the band with the highest minimum not above it, or
    /// the base spread (also when the notional is unknown).
    pub fn spread_for(&self, notional_usd: Option<i128>) -> i128 {
        let Some(notional) = notional_usd else { return self.spread_centi_bps };
        self.bands
            .iter()
            .rev()
            .find(|band| notional >= band.notional_usd_min)
            .map_or(self.spread_centi_bps, |band| band.spread_centi_bps)
    }
}

/// Inventory skew for one asset: when the desk is long the asset, both sides of every price in instruments
/// with it as base shade down (and up when short), to attract flow that reduces the position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkewSetting {
    pub asset: AssetCode,
    /// Centi-bps of shading per one whole unit of position.
    pub centi_bps_per_unit: i128,
    /// Cap on the shading either way, centi-bps.
    pub max_centi_bps: i128,
}

impl SkewSetting {
    /// Skew in centi-bps for a position of `position` minor units at `scale` (positive = long = shade down),
    /// rounded toward zero and capped.
    pub fn skew_for(&self, position: i128, scale: u8) -> i128 {
        let unit = crate::decimal::power_of_ten(scale);
        let raw = position.checked_mul(self.centi_bps_per_unit).map_or(
            if (position > 0) == (self.centi_bps_per_unit > 0) { self.max_centi_bps } else { -self.max_centi_bps },
            |product| product / unit,
        );
        raw.clamp(-self.max_centi_bps, self.max_centi_bps)
    }
}

/// Bands per tier.
pub const TIER_BANDS_MAX: usize = 16;

/// What the client asked for: a base quantity, or an amount of the quote asset to spend (buy) or receive (sell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestedSize {
    /// Base minor units.
    Base(i128),
    /// Quote minor units.
    Quote(i128),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum QuoteState {
    Open,
    Used { order_id: String, at: TimestampMs },
}

/// A firm quote: executable once, by its client, before `valid_until`. An RFQ quote has one side's price; a
/// streamed ladder level is two-way (both prices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub quote_id: String,
    pub client_id: ClientId,
    pub client_rfq_id: Option<ClientReference>,
    pub instrument: String,
    /// `None` for two-way quotes.
    pub side: Option<crate::market::Side>,
    /// Base minor units.
    pub quantity: i128,
    /// Price the client sells at (price units), when quoted.
    pub bid: Option<i128>,
    /// Price the client buys at (price units), when quoted.
    pub ask: Option<i128>,
    pub requested: RequestedSize,
    pub created_at: TimestampMs,
    pub valid_until: TimestampMs,
    /// The oldest market data the price was built from.
    pub market_as_of: TimestampMs,
    pub venues_used: u8,
    pub spread_centi_bps: i128,
    /// The fee rate the client's tier charged when quoted; accepting the quote trades at this rate.
    #[serde(default)]
    pub fee_centi_bps: i128,
    pub state: QuoteState,
}

impl Quote {
    /// The price for a side, if this quote has it.
    pub fn price_for(&self, side: crate::market::Side) -> Option<i128> {
        match side {
            crate::market::Side::Buy => self.ask,
            crate::market::Side::Sell => self.bid,
        }
    }
}

/// The desk's own capital put into (positive) or taken out of (negative) its inventory of an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskFunding {
    pub funding_id: String,
    pub asset: AssetCode,
    pub amount: i128,
    pub reference: ClientReference,
    pub transaction: TransactionId,
    pub created_at: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    pub deposit_id: String,
    pub client_id: ClientId,
    pub asset: AssetCode,
    /// Minor units of `asset`.
    pub amount: i128,
    pub reference: ClientReference,
    pub transaction: TransactionId,
    pub created_at: TimestampMs,
    pub created_by: Option<KeyId>,
    /// USD value at deposit time (cents), for AML rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notional_usd: Option<i128>,
}

/// Hex in JSON keeps binary credentials readable in journal dumps without a base64 dependency in the core.
mod hex_bytes {
    pub(crate) use super::hex_bytes_deserialize as deserialize;
    pub(crate) use super::hex_bytes_serialize as serialize;
}

pub(crate) fn hex_bytes_serialize<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    let text: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    serializer.serialize_str(&text)
}

pub(crate) fn hex_bytes_deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    use serde::Deserialize;
    {
        let text = String::deserialize(deserializer)?;
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        (0..text.len())
            .step_by(2)
            .map(|start| u8::from_str_radix(&text[start..start + 2], 16).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jurisdictions() {
        assert!(Jurisdiction::parse("DE").is_ok());
        assert_eq!(Jurisdiction::parse("US-NY").unwrap().country(), "US");
        for bad in ["de", "D", "DEU", "US-", "US-NYCX", "US_NY", ""] {
            assert!(Jurisdiction::parse(bad).is_err(), "{bad}");
        }
    }
}
