//! The asset and instrument catalog: what the desk trades and at which precision.

use crate::decimal::{self, DecimalError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A short asset code such as `BTC`, stored inline so it is `Copy` and cheap to hash on hot paths.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AssetCode {
    bytes: [u8; AssetCode::LENGTH_MAX],
    length: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 2 to 8 upper-case letters or digits")]
pub struct AssetCodeError;

impl AssetCode {
    pub const LENGTH_MAX: usize = 8;

    pub fn parse(text: &str) -> Result<Self, AssetCodeError> {
        let valid = (2..=Self::LENGTH_MAX).contains(&text.len())
            && text.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
        if !valid {
            return Err(AssetCodeError);
        }
        let mut bytes = [0; Self::LENGTH_MAX];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Ok(Self { bytes, length: text.len() as u8 })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `parse`).
        std::str::from_utf8(&self.bytes[..usize::from(self.length)]).expect("asset codes are ASCII")
    }
}

impl TryFrom<String> for AssetCode {
    type Error = AssetCodeError;
    fn try_from(text: String) -> Result<Self, AssetCodeError> {
        Self::parse(&text)
    }
}
impl From<AssetCode> for String {
    fn from(code: AssetCode) -> String {
        code.as_str().to_owned()
    }
}
impl fmt::Display for AssetCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
impl fmt::Debug for AssetCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "AssetCode({})", self.as_str())
    }
}

/// Where the desk holds an asset: crypto at a custodian, fiat at a bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    Crypto,
    Fiat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub code: AssetCode,
    /// Decimal places the ledger keeps: one minor unit is `10^-scale` of the asset.
    pub scale: u8,
    pub kind: AssetKind,
    /// Decimal places people are shown (at most `scale`); the API keeps `scale` places. `None` (catalogs
    /// journaled before this existed): [`Asset::display_decimals`] picks the usual precision for the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_decimals: Option<u8>,
    /// Largest single amount and largest balance of this asset, in whole units: far above any real trade, so
    /// that a mistyped or hostile amount (`99999999999999999999999999999`) is refused by name instead of
    /// failing later as an overflow. Catalogs journaled before this field existed get the default.
    #[serde(default = "Asset::default_amount_max_whole")]
    pub amount_max_whole: u64,
}

/// The default [`Asset::amount_max_whole`]: 10^12 whole units.
pub const ASSET_AMOUNT_MAX_WHOLE_DEFAULT: u64 = 1_000_000_000_000;

impl Asset {
    /// The decimal places to show people: the catalog's choice, else the market's habit for well-known codes
    /// (BTC 8, ETH 6, stablecoins and fiat 2), else the ledger's scale up to 8. Never more than `scale`.
    pub fn display_decimals(&self) -> u8 {
        let usual = match self.code.as_str() {
            "BTC" => 8,
            "ETH" => 6,
            "USDT" | "USDC" => 2,
            _ if self.kind == AssetKind::Fiat => 2,
            _ => 8,
        };
        self.display_decimals.unwrap_or(usual).min(self.scale)
    }

    fn default_amount_max_whole() -> u64 {
        ASSET_AMOUNT_MAX_WHOLE_DEFAULT
    }

    /// [`Asset::amount_max_whole`] in minor units (`10^-scale`). Fits an i128 for every scale up to 18 with
    /// the whole-unit maximum below 10^20 (10^38 > i128::MAX / 1.7).
    pub fn amount_max(&self) -> i128 {
        let factor = 10i128.checked_pow(u32::from(self.scale)).expect("asset scales are at most 18");
        i128::from(self.amount_max_whole).checked_mul(factor).unwrap_or(i128::MAX)
    }

    /// `Err(detail)` when `amount` (minor units, either sign) exceeds the maximum: the detail names the maximum.
    pub fn check_amount(&self, amount: i128) -> Result<(), String> {
        if amount.unsigned_abs() > self.amount_max().unsigned_abs() {
            return Err(format!("must be at most {} {} (the asset's maximum)", self.amount_max_whole, self.code));
        }
        Ok(())
    }

    /// `Err(detail)` when a balance would become `balance_after` (minor units) beyond the maximum.
    pub fn check_balance(&self, balance_after: i128) -> Result<(), String> {
        if balance_after.unsigned_abs() > self.amount_max().unsigned_abs() {
            return Err(format!(
                "would take a balance beyond the maximum of {} {} (the asset's maximum balance)",
                self.amount_max_whole, self.code
            ));
        }
        Ok(())
    }
}

/// A `BASE-QUOTE` pair with its increments. A price is an integer count of `10^-price_scale` quote units per
/// one whole base unit, always a multiple of `price_step`; a quantity is an integer count of base minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    pub symbol: String,
    pub base: AssetCode,
    pub quote: AssetCode,
    /// Decimal places of prices (in quote asset per one base unit).
    pub price_scale: u8,
    /// Smallest price step in `10^-price_scale` units.
    pub price_step: i128,
    /// Quantities are counted in the base asset's minor units; every quantity is a multiple of this step.
    pub quantity_step: i128,
    pub quantity_min: i128,
    pub quantity_max: i128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    assets: Vec<Asset>,
    instruments: Vec<Instrument>,
}

/// Catalog size limits: the catalog is small by design and scanned linearly.
pub const CATALOG_ASSETS_MAX: usize = 64;
pub const CATALOG_INSTRUMENTS_MAX: usize = 256;

impl Catalog {
    /// The built-in catalog of API.md: BTC 8, ETH 18, USDT 6, USDC 6, USD 2, EUR 2, GBP 2 and eleven instruments.
    pub fn builtin() -> Self {
        let asset = |code: &str, scale, kind, display: u8| Asset {
            code: code_of(code),
            scale,
            kind,
            display_decimals: Some(display),
            amount_max_whole: ASSET_AMOUNT_MAX_WHOLE_DEFAULT,
        };
        let assets = vec![
            asset("BTC", 8, AssetKind::Crypto, 8),
            asset("ETH", 18, AssetKind::Crypto, 6),
            asset("USDT", 6, AssetKind::Crypto, 2),
            asset("USDC", 6, AssetKind::Crypto, 2),
            asset("USD", 2, AssetKind::Fiat, 2),
            asset("EUR", 2, AssetKind::Fiat, 2),
            asset("GBP", 2, AssetKind::Fiat, 2),
        ];
        let mut catalog = Catalog { assets, instruments: Vec::new() };
        // (symbol, price increment, quantity increment, minimum, maximum), all as decimal strings.
        let specs = [
            ("BTC-USD", "0.01", "0.0001", "0.0001", "1000"),
            ("ETH-USD", "0.01", "0.001", "0.001", "10000"),
            ("BTC-EUR", "0.01", "0.0001", "0.0001", "1000"),
            ("ETH-EUR", "0.01", "0.001", "0.001", "10000"),
            ("BTC-USDT", "0.01", "0.0001", "0.0001", "1000"),
            ("ETH-USDT", "0.01", "0.001", "0.001", "10000"),
            ("ETH-BTC", "0.00001", "0.001", "0.001", "10000"),
            ("USDT-USD", "0.0001", "0.01", "10", "50000000"),
            ("USDC-USD", "0.0001", "0.01", "10", "50000000"),
            ("EUR-USD", "0.00001", "0.01", "10", "50000000"),
            ("GBP-USD", "0.00001", "0.01", "10", "50000000"),
        ];
        for (symbol, price_increment, quantity_increment, minimum, maximum) in specs {
            let instrument = catalog
                .instrument_from_text(symbol, price_increment, quantity_increment, minimum, maximum)
                .expect("the built-in catalog is valid");
            catalog.instruments.push(instrument);
        }
        assert!(catalog.assets.len() <= CATALOG_ASSETS_MAX && catalog.instruments.len() <= CATALOG_INSTRUMENTS_MAX);
        catalog
    }

    fn instrument_from_text(
        &self,
        symbol: &str,
        price_increment: &str,
        quantity_increment: &str,
        minimum: &str,
        maximum: &str,
    ) -> Result<Instrument, DecimalError> {
        let (base_text, quote_text) = symbol.split_once('-').ok_or(DecimalError::Syntax)?;
        let base = self.asset(&code_of(base_text)).expect("base asset in catalog").clone();
        let quote = code_of(quote_text);
        let price_scale = price_increment.split_once('.').map_or(0, |(_, fraction)| fraction.len() as u8);
        Ok(Instrument {
            symbol: symbol.to_owned(),
            base: base.code,
            quote,
            price_scale,
            price_step: decimal::parse_positive(price_increment, price_scale)?,
            quantity_step: decimal::parse_positive(quantity_increment, base.scale)?,
            quantity_min: decimal::parse_positive(minimum, base.scale)?,
            quantity_max: decimal::parse_positive(maximum, base.scale)?,
        })
    }

    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }

    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    pub fn asset(&self, code: &AssetCode) -> Option<&Asset> {
        self.assets.iter().find(|asset| asset.code == *code)
    }

    /// Looks an asset up by its text code; `None` for anything not in the catalog (including malformed codes).
    pub fn asset_by_text(&self, text: &str) -> Option<&Asset> {
        AssetCode::parse(text).ok().and_then(|code| self.asset(&code))
    }

    pub fn instrument(&self, symbol: &str) -> Option<&Instrument> {
        self.instruments.iter().find(|instrument| instrument.symbol == symbol)
    }
}

fn code_of(text: &str) -> AssetCode {
    AssetCode::parse(text).expect("built-in asset codes are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_decimals_come_from_the_catalog_or_the_usual_precision_never_above_the_scale() {
        let catalog = Catalog::builtin();
        let shown: Vec<(String, u8)> =
            catalog.assets().iter().map(|asset| (asset.code.to_string(), asset.display_decimals())).collect();
        let expected = [("BTC", 8), ("ETH", 6), ("USDT", 2), ("USDC", 2), ("USD", 2), ("EUR", 2), ("GBP", 2)];
        assert_eq!(shown, expected.map(|(code, decimals)| (code.to_owned(), decimals)));
        // A catalog journaled before `display_decimals` existed reads as `None` and gets the usual precision.
        let old: Asset = serde_json::from_str(r#"{"code": "ETH", "scale": 18, "kind": "crypto"}"#).unwrap();
        assert_eq!(old.display_decimals(), 6);
        let odd = Asset {
            code: code_of("XYZ"),
            scale: 3,
            kind: AssetKind::Crypto,
            display_decimals: Some(9),
            amount_max_whole: ASSET_AMOUNT_MAX_WHOLE_DEFAULT,
        };
        assert_eq!(odd.display_decimals(), 3);
    }

    #[test]
    fn builtin_catalog_matches_the_contract() {
        let catalog = Catalog::builtin();
        let scales: Vec<(String, u8)> =
            catalog.assets().iter().map(|asset| (asset.code.to_string(), asset.scale)).collect();
        let expected = [("BTC", 8), ("ETH", 18), ("USDT", 6), ("USDC", 6), ("USD", 2), ("EUR", 2), ("GBP", 2)];
        assert_eq!(scales, expected.map(|(code, scale)| (code.to_owned(), scale)));
        assert_eq!(catalog.instruments().len(), 11);
        let btc_usd = catalog.instrument("BTC-USD").unwrap();
        assert_eq!((btc_usd.price_scale, btc_usd.price_step, btc_usd.quantity_step), (2, 1, 10_000));
        for instrument in catalog.instruments() {
            assert!(catalog.asset(&instrument.base).is_some() && catalog.asset(&instrument.quote).is_some());
            assert!(instrument.quantity_min % instrument.quantity_step == 0);
            assert!(instrument.quantity_max % instrument.quantity_step == 0);
        }
    }

    #[test]
    fn asset_codes_are_validated() {
        assert!(AssetCode::parse("btc").is_err());
        assert!(AssetCode::parse("B").is_err());
        assert!(AssetCode::parse("TOOLONGCODE").is_err());
        assert_eq!(AssetCode::parse("USDT").unwrap().as_str(), "USDT");
    }
}
