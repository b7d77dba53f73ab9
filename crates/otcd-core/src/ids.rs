//! Validated identifiers. Ids are opaque strings at the API edge; inside the desk each kind has its own type so
//! a key id can never be passed where a client id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest id accepted from a client (client_order_id and friends are chosen by clients).
pub const ID_LENGTH_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {ID_LENGTH_MAX} characters of A-Z, a-z, 0-9, '_', '-', '.', ':'")]
pub struct IdError;

fn validate_id(text: &str) -> Result<(), IdError> {
    let allowed = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b':');
    if text.is_empty() || text.len() > ID_LENGTH_MAX || !text.bytes().all(allowed) {
        return Err(IdError);
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, IdError> {
                validate_id(text)?;
                Ok(Self(text.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(text: String) -> Result<Self, IdError> {
                validate_id(&text)?;
                Ok(Self(text))
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A client of the desk (assigned by the engine).
    ClientId
);
string_id!(
    /// An API key's public identifier (chosen at random by the HTTP adapter, journaled with the command).
    KeyId
);
string_id!(
    /// A client's own reference for a deposit, RFQ, order or withdrawal; unique per client.
    ClientReference
);
string_id!(
    /// A client tier's name (`standard`, `gold`, ...).
    TierName
);
