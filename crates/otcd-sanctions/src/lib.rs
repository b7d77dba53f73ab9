//! Sanctions lists (OFAC SDN legacy CSV, UN Security Council consolidated XML, EU financial sanctions files XML,
//! UK Sanctions List XML)
//! and the screening the desk runs on them: client names at onboarding,
//! wallet addresses at destination registration, everything again on reload.
//!
//! * [`SanctionsLists`] is the immutable, parsed and indexed form of one
//!   publication of the lists; build it once per (re)load and share it in an
//!   `Arc`.
//! * [`Screener`] screens names and addresses against it, with the desk's
//!   [`Thresholds`] and an admin blocklist of addresses.
//!
//! Entry identifiers: OFAC entries use the SDN `ent_num` (e.g. `"12300"`);
//! UN entries use the `REFERENCE_NUMBER` (e.g. `"QDi.001"`), or the `DATAID`
//! when an entry has no reference number; EU entries the `euReferenceNumber` (else the `logicalId`); UK entries
//! the `UniqueID` (e.g. `"RUS0001"`).

mod address;
mod countries;
mod dates;
mod error;
mod eu;
pub mod evaluation;
mod index;
mod limits;
mod lists;
mod matcher;
mod normalize;
mod ofac;
mod remarks;
mod screener;
mod uk;
mod un;
pub mod update;
mod xml;

pub use address::address_key;
pub use dates::DateOfBirth;
pub use error::LoadError;
pub use limits::{
    MAX_ALIASES_PER_ENTRY, MAX_ENTRIES, MAX_FIELDS_PER_ROW, MAX_FIELD_BYTES, MAX_SOURCE_BYTES, MAX_XML_DEPTH,
};
pub use lists::{
    Alias, AliasQuality, DigitalCurrencyAddress, Entry, EntryKind, ListId, LoadReport, OfacSources, SanctionsLists,
    Sources,
};
pub use normalize::{normalize_name, phonetic_key};
pub use screener::{Match, NameQuery, Screener, Screening, ScreeningStatus, Thresholds, NAME_SCORE_FLOOR};
