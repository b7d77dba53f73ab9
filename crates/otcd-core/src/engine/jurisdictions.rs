//! Jurisdiction rules: per country (`US`) or subdivision (`US-NY`), a rule may block the jurisdiction entirely,
//! block assets (e.g. stablecoins) or restrict trading to listed instruments. A client in `US-NY` is held to the
//! rule of `US` AND the rule of `US-NY`. Rules apply to firm quotes (RFQ and streamed), orders, resting fills and
//! withdrawals; a change takes effect for the very next command and carries a version.

use super::{CommandError, Desk, Executed, Outcome};
use crate::catalog::{AssetCode, Instrument};
use crate::model::{Client, Jurisdiction};
use serde::{Deserialize, Serialize};

/// Rules the desk holds; blocked assets and allowed instruments per rule.
pub const JURISDICTION_RULES_MAX: usize = 10_000;
pub const RULE_ENTRIES_MAX: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JurisdictionRule {
    pub code: Jurisdiction,
    pub blocked: bool,
    #[serde(default)]
    pub blocked_assets: Vec<AssetCode>,
    /// `None`: every instrument (not otherwise blocked) may trade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_instruments: Option<Vec<String>>,
    /// Set by the engine: 1 for the first rule of a code, +1 per change.
    #[serde(default)]
    pub version: u64,
}

impl Desk {
    pub(super) fn put_jurisdiction(&mut self, rule: &JurisdictionRule) -> Result<Executed, CommandError> {
        if rule.blocked_assets.len() > RULE_ENTRIES_MAX
            || rule.allowed_instruments.as_ref().is_some_and(|list| list.len() > RULE_ENTRIES_MAX)
        {
            return Err(CommandError::invalid("blocked_assets", "at most 256 entries"));
        }
        let catalog = self.catalog().ok_or(CommandError::NotInitialized)?;
        if let Some(asset) = rule.blocked_assets.iter().find(|asset| catalog.asset(asset).is_none()) {
            return Err(CommandError::invalid("blocked_assets", format!("{asset} is not in the catalog")));
        }
        for symbol in rule.allowed_instruments.iter().flatten() {
            self.instrument(symbol)
                .map_err(|_| CommandError::invalid("allowed_instruments", format!("{symbol} is not in the catalog")))?;
        }
        if !self.jurisdictions.contains_key(&rule.code) && self.jurisdictions.len() >= JURISDICTION_RULES_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of jurisdiction rules"));
        }
        let version = self.jurisdictions.get(&rule.code).map_or(0, |previous| previous.version) + 1;
        let stored = JurisdictionRule { version, ..rule.clone() };
        self.jurisdictions.insert(rule.code.clone(), stored.clone());
        Ok(Executed::changed(Outcome::Jurisdiction(stored)))
    }

    pub fn jurisdiction_rule(&self, code: &Jurisdiction) -> Option<&JurisdictionRule> {
        self.jurisdictions.get(code)
    }

    pub fn jurisdiction_rules(&self) -> impl Iterator<Item = &JurisdictionRule> {
        self.jurisdictions.values()
    }

    /// The rules a client is held to: its country's, then its subdivision's.
    fn rules_for<'a>(&'a self, code: &'a Jurisdiction) -> impl Iterator<Item = &'a JurisdictionRule> + 'a {
        let country = Jurisdiction::parse(code.country()).ok();
        let country_rule = country.and_then(|country| self.jurisdictions.get(&country));
        let own_rule = (code.as_str().len() > 2).then(|| self.jurisdictions.get(code)).flatten();
        country_rule.into_iter().chain(own_rule)
    }

    /// May the client trade (or be quoted) this instrument from its jurisdiction?
    pub(super) fn check_jurisdiction_instrument(
        &self,
        client: &Client,
        instrument: &Instrument,
    ) -> Result<(), CommandError> {
        for rule in self.rules_for(&client.jurisdiction) {
            check_blocked(rule)?;
            for asset in [instrument.base, instrument.quote] {
                check_asset(rule, asset)?;
            }
            if rule.allowed_instruments.as_ref().is_some_and(|allowed| !allowed.contains(&instrument.symbol)) {
                return Err(CommandError::JurisdictionRestricted {
                    detail: format!(
                        "{} may not be traded from {} (rule version {})",
                        instrument.symbol,
                        rule.code.as_str(),
                        rule.version
                    ),
                });
            }
        }
        Ok(())
    }

    /// May the client move this asset (withdrawals) from its jurisdiction?
    pub(super) fn check_jurisdiction_asset(&self, client: &Client, asset: AssetCode) -> Result<(), CommandError> {
        for rule in self.rules_for(&client.jurisdiction) {
            check_blocked(rule)?;
            check_asset(rule, asset)?;
        }
        Ok(())
    }
}

fn check_blocked(rule: &JurisdictionRule) -> Result<(), CommandError> {
    if rule.blocked {
        return Err(CommandError::JurisdictionRestricted {
            detail: format!(
                "clients in {} may not trade or withdraw (rule version {})",
                rule.code.as_str(),
                rule.version
            ),
        });
    }
    Ok(())
}

fn check_asset(rule: &JurisdictionRule, asset: AssetCode) -> Result<(), CommandError> {
    if rule.blocked_assets.contains(&asset) {
        return Err(CommandError::JurisdictionRestricted {
            detail: format!("{asset} is blocked for clients in {} (rule version {})", rule.code.as_str(), rule.version),
        });
    }
    Ok(())
}
