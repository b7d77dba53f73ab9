//! Ready-made commands for tests, benchmarks and simulations, so that each of them does not spell out a desk's
//! set-up again: a desk initialized with the built-in catalog and an admin key, and an approved client in
//! Germany on the standard tier. The server builds these commands from its configuration and the API instead.

use super::{Command, NewClient, NewKey};
use crate::catalog::Catalog;
use crate::ids::{KeyId, TierName};
use crate::model::{Jurisdiction, KeyAlgorithm, KycStatus, Scope, Settlement};

/// The id of the admin key [`initialize_desk`] creates.
pub const ADMIN_KEY_ID: &str = "k_admin";

/// `InitializeDesk` with the built-in catalog and an HMAC admin key [`ADMIN_KEY_ID`] (a fixed, non-secret
/// credential: these desks only ever run in tests).
pub fn initialize_desk() -> Command {
    let admin_key = NewKey {
        key_id: KeyId::parse(ADMIN_KEY_ID).expect("a valid key id"),
        scopes: vec![Scope::Admin],
        algorithm: KeyAlgorithm::Hmac,
        credential: vec![7; 60],
        allowed_ips: vec![],
    };
    Command::InitializeDesk { catalog: Catalog::builtin(), admin_key }
}

/// A KYC-approved client in Germany on the `standard` tier, not screened.
pub fn approved_client(name: &str, settlement: Settlement, credit_limit_usd: Option<i128>) -> NewClient {
    NewClient {
        name: name.to_owned(),
        jurisdiction: Jurisdiction::parse("DE").expect("a valid jurisdiction"),
        tier: TierName::parse("standard").expect("a valid tier name"),
        kyc_status: KycStatus::Approved,
        kyc_expires_at: None,
        settlement,
        credit_limit_usd,
        screening: None,
    }
}
