//! Validation of withdrawal destinations: Bitcoin, Ethereum and TRON addresses and IBANs.
//!
//! [`validate`] checks that an address is well formed for a network the asset can be withdrawn on and returns
//! it in one canonical (normalized) form, so that two spellings of the same destination compare equal:
//!
//! * Bitcoin (mainnet only): base58check P2PKH/P2SH, and segwit addresses (bech32 for witness v0 per BIP-173,
//!   bech32m for v1..=16 per BIP-350), normalized to lowercase.
//! * Ethereum: `0x` and 40 hex digits, EIP-55 checksum enforced when the case is mixed, normalized to the
//!   EIP-55 checksummed form.
//! * TRON: base58check with version byte `0x41` (addresses start with `T`).
//! * IBAN: ISO 13616 (country code, check digits, mod-97), spaces dropped and letters uppercased.
//!
//! Everything here is a pure function: no I/O, no clock, no allocation beyond the bounded input.

use serde::{Deserialize, Serialize};
use std::fmt;

use bech32::primitives::decode::{CharError, CheckedHrpstring, PaddingError, UncheckedHrpstring};
use bech32::{Bech32, Bech32m};
use sha3::{Digest, Keccak256};

/// Longest input accepted, checked before any decoding. The longest real destination is a 34-character IBAN
/// written with spaces (42 bytes) or a 90-character bech32 string (BIP-173's limit); this is a generous bound
/// that keeps decoding cost and error-message sizes small.
pub const ADDRESS_LENGTH_MAX: usize = 128;

/// A network a destination lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    Bitcoin,
    Ethereum,
    Tron,
    Iban,
}

impl Network {
    /// The wire name (as in JSON).
    pub const fn as_str(self) -> &'static str {
        match self {
            Network::Bitcoin => "bitcoin",
            Network::Ethereum => "ethereum",
            Network::Tron => "tron",
            Network::Iban => "iban",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A destination that passed validation, in its canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ValidatedAddress {
    pub network: Network,
    /// Canonical spelling: lowercase for segwit, EIP-55 for Ethereum, no spaces and uppercase for IBAN,
    /// unchanged (case-sensitive) for base58.
    pub normalized: String,
}

/// Why a destination was rejected. Every message says what is wrong, in terms a client can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    #[error("asset {asset:?} cannot be withdrawn to an external destination")]
    UnsupportedAsset { asset: String },
    #[error("asset {asset} cannot be withdrawn on the {network} network (supported: {})", list(supported))]
    NetworkNotSupportedForAsset { asset: String, network: Network, supported: &'static [Network] },
    #[error(
        "cannot tell the network of this {asset} address (supported: {}); pass \"network\" explicitly",
        list(supported)
    )]
    UnknownNetwork { asset: String, supported: &'static [Network] },
    #[error("address is empty")]
    Empty,
    #[error("address is {length} bytes long; at most {max} are accepted")]
    TooLong { length: usize, max: usize },
    #[error("{network} address contains the invalid character {character:?} at position {position}")]
    InvalidCharacters { network: Network, character: char, position: usize },
    #[error("{network} address mixes upper- and lower-case letters; write it all in one case")]
    MixedCase { network: Network },
    #[error("{network} address is malformed: {reason}")]
    BadFormat { network: Network, reason: &'static str },
    #[error("{network} address checksum does not match: the address is mistyped or corrupted")]
    BadChecksum { network: Network },
    #[error(
        "bitcoin segwit address of witness version {witness_version} must use the {expected} checksum \
         (BIP-350), but it uses {found}"
    )]
    WrongChecksumVariant { witness_version: u8, expected: &'static str, found: &'static str },
    #[error("{network} address has the wrong length: {reason}")]
    BadLength { network: Network, reason: String },
    #[error("{network} address has an unknown version {version}")]
    UnknownVersion { network: Network, version: u8 },
    #[error("this is a bitcoin testnet/signet/regtest address; only mainnet addresses are accepted")]
    TestnetAddress,
    #[error("bitcoin segwit address has the human-readable part {hrp:?}; mainnet addresses start with \"bc1\"")]
    UnknownHrp { hrp: String },
    #[error("the ethereum zero address cannot receive funds")]
    ZeroAddress,
}

fn list(networks: &[Network]) -> String {
    networks.iter().map(|network| network.as_str()).collect::<Vec<_>>().join(", ")
}

/// The networks an asset can be withdrawn on; empty for an unknown asset. Asset codes are upper-case, as in
/// `otcd_core::catalog::AssetCode`.
pub fn networks_for_asset(asset: &str) -> &'static [Network] {
    match asset {
        "BTC" => &[Network::Bitcoin],
        "ETH" | "USDC" => &[Network::Ethereum],
        "USDT" => &[Network::Ethereum, Network::Tron],
        "USD" | "EUR" | "GBP" => &[Network::Iban],
        _ => &[],
    }
}

/// Validates `address` as a withdrawal destination for `asset`, on `network` if given. Without a network, an
/// asset with a single network uses it; one with several (USDT) is told apart by the address's form (`0x…` is
/// Ethereum, `T…` is TRON).
///
/// Surrounding whitespace is ignored; the input is limited to [`ADDRESS_LENGTH_MAX`] bytes before anything is
/// decoded.
pub fn validate(asset: &str, address: &str, network: Option<Network>) -> Result<ValidatedAddress, AddressError> {
    let supported = networks_for_asset(asset);
    if supported.is_empty() {
        // Bounded: this lands in an error message.
        return Err(AddressError::UnsupportedAsset { asset: asset.chars().take(16).collect() });
    }
    if address.len() > ADDRESS_LENGTH_MAX {
        return Err(AddressError::TooLong { length: address.len(), max: ADDRESS_LENGTH_MAX });
    }
    let address = address.trim();
    if address.is_empty() {
        return Err(AddressError::Empty);
    }
    let network = match network {
        Some(network) if supported.contains(&network) => network,
        Some(network) => {
            return Err(AddressError::NetworkNotSupportedForAsset { asset: asset.to_owned(), network, supported })
        }
        None => match supported {
            [only] => *only,
            _ => detect(address, supported)
                .ok_or_else(|| AddressError::UnknownNetwork { asset: asset.to_owned(), supported })?,
        },
    };
    let normalized = match network {
        Network::Bitcoin => validate_bitcoin(address)?,
        Network::Ethereum => validate_ethereum(address)?,
        Network::Tron => validate_tron(address)?,
        Network::Iban => validate_iban(address)?,
    };
    Ok(ValidatedAddress { network, normalized })
}

/// Guesses the network among `supported` from the address's form. The formats of the networks an asset can
/// share are disjoint, so at most one matches.
fn detect(address: &str, supported: &[Network]) -> Option<Network> {
    supported.iter().copied().find(|network| match network {
        Network::Ethereum => address.starts_with("0x") || address.starts_with("0X"),
        Network::Tron => address.starts_with('T'),
        Network::Bitcoin => {
            let lower = address.to_ascii_lowercase();
            lower.starts_with("bc1") || address.starts_with('1') || address.starts_with('3')
        }
        Network::Iban => address.len() >= 2 && address.as_bytes()[..2].iter().all(u8::is_ascii_alphabetic),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Base58check (Bitcoin legacy, TRON)

/// Payload of a base58check address: one version byte and a 20-byte hash (25 bytes with the checksum).
const BASE58_PAYLOAD_LENGTH: usize = 21;

/// Decodes a base58check string and returns its payload (version byte first, checksum removed).
fn decode_base58check(network: Network, address: &str) -> Result<Vec<u8>, AddressError> {
    let payload = bs58::decode(address).with_check(None).into_vec().map_err(|error| match error {
        bs58::decode::Error::InvalidCharacter { character, index } => {
            AddressError::InvalidCharacters { network, character, position: index }
        }
        bs58::decode::Error::NonAsciiCharacter { index } => AddressError::InvalidCharacters {
            network,
            character: address.get(index..).and_then(|rest| rest.chars().next()).unwrap_or(char::REPLACEMENT_CHARACTER),
            position: index,
        },
        bs58::decode::Error::InvalidChecksum { .. } => AddressError::BadChecksum { network },
        _ => AddressError::BadLength {
            network,
            reason: format!("decodes to fewer than {} bytes", BASE58_PAYLOAD_LENGTH + 4),
        },
    })?;
    if payload.len() != BASE58_PAYLOAD_LENGTH {
        return Err(AddressError::BadLength {
            network,
            reason: format!("decodes to {} bytes, expected {}", payload.len() + 4, BASE58_PAYLOAD_LENGTH + 4),
        });
    }
    Ok(payload)
}

// ---------------------------------------------------------------------------------------------------------------
// Bitcoin

const BITCOIN_P2PKH: u8 = 0x00;
const BITCOIN_P2SH: u8 = 0x05;
const BITCOIN_TESTNET_P2PKH: u8 = 0x6f;
const BITCOIN_TESTNET_P2SH: u8 = 0xc4;
/// BIP-173: a segwit address is at most 90 characters.
const SEGWIT_LENGTH_MAX: usize = 90;
/// The checksum is the last 6 characters of the data part.
const BECH32_CHECKSUM_LENGTH: usize = 6;

fn validate_bitcoin(address: &str) -> Result<String, AddressError> {
    // Legacy addresses start with their version's base58 digit ('1', '3'; testnet 'm', 'n', '2'); anything
    // else that looks like `<letters>1<data>` is a bech32 string.
    let legacy = matches!(address.as_bytes()[0], b'1' | b'3' | b'2' | b'm' | b'n');
    if !legacy && looks_like_bech32(address) {
        return validate_segwit(address);
    }
    let payload = decode_base58check(Network::Bitcoin, address)?;
    match payload[0] {
        BITCOIN_P2PKH | BITCOIN_P2SH => Ok(address.to_owned()),
        BITCOIN_TESTNET_P2PKH | BITCOIN_TESTNET_P2SH => Err(AddressError::TestnetAddress),
        version => Err(AddressError::UnknownVersion { network: Network::Bitcoin, version }),
    }
}

/// Whether `address` has a bech32 shape: a letters-only human-readable part, the separator `1`, then data.
fn looks_like_bech32(address: &str) -> bool {
    match address.rfind('1') {
        Some(separator) => separator > 0 && address[..separator].bytes().all(|byte| byte.is_ascii_alphabetic()),
        None => false,
    }
}

fn validate_segwit(address: &str) -> Result<String, AddressError> {
    const BITCOIN: Network = Network::Bitcoin;
    if address.len() > SEGWIT_LENGTH_MAX {
        return Err(AddressError::BadLength {
            network: BITCOIN,
            reason: format!("segwit addresses have at most {SEGWIT_LENGTH_MAX} characters, got {}", address.len()),
        });
    }
    let has_lower = address.bytes().any(|byte| byte.is_ascii_lowercase());
    let has_upper = address.bytes().any(|byte| byte.is_ascii_uppercase());
    if has_lower && has_upper {
        return Err(AddressError::MixedCase { network: BITCOIN });
    }
    let lower = address.to_ascii_lowercase();
    // `looks_like_bech32` found the separator and a letters-only prefix.
    let separator = lower.rfind('1').expect("checked by looks_like_bech32");
    match &lower[..separator] {
        "bc" => {}
        "tb" | "bcrt" => return Err(AddressError::TestnetAddress),
        hrp => return Err(AddressError::UnknownHrp { hrp: hrp.to_owned() }),
    }

    let unchecked = UncheckedHrpstring::new(&lower).map_err(|error| {
        let character = match error {
            bech32::primitives::decode::UncheckedHrpstringError::Char(CharError::InvalidChar(character)) => character,
            // Any other parse error (the HRP is known to be "bc") means a bad character in the data part.
            _ => lower[separator + 1..].chars().find(|&c| bech32::Fe32::from_char(c).is_err()).unwrap_or('?'),
        };
        let position = lower.find(character).unwrap_or(0);
        AddressError::InvalidCharacters { network: BITCOIN, character, position }
    })?;
    let data = unchecked.data_part_ascii();
    if data.len() <= BECH32_CHECKSUM_LENGTH {
        return Err(AddressError::BadLength {
            network: BITCOIN,
            reason: "no witness version or program before the checksum".to_owned(),
        });
    }
    // Only 0..=16 are witness versions; `witness_version` returns None for the other 15 characters.
    let Some(version) = unchecked.witness_version() else {
        let value = bech32::Fe32::from_char(char::from(data[0])).map(|fe| fe.to_u8()).unwrap_or(u8::MAX);
        return Err(AddressError::UnknownVersion { network: BITCOIN, version: value });
    };
    let version = version.to_u8();

    // BIP-350: witness v0 uses bech32, v1 and later bech32m. Telling "valid, but the other variant" apart from
    // a plain checksum failure gives a precise message for the classic encoder bug.
    let checked: CheckedHrpstring<'_> = if version == 0 {
        if !unchecked.has_valid_checksum::<Bech32>() {
            return Err(checksum_failure(&unchecked, version, "bech32", "bech32m", true));
        }
        unchecked.remove_checksum::<Bech32>()
    } else {
        if !unchecked.has_valid_checksum::<Bech32m>() {
            return Err(checksum_failure(&unchecked, version, "bech32m", "bech32", false));
        }
        unchecked.remove_checksum::<Bech32m>()
    };
    let mut checked = checked;
    checked.remove_witness_version();
    checked.validate_segwit_padding().map_err(|error| AddressError::BadFormat {
        network: BITCOIN,
        reason: match error {
            PaddingError::TooMuch => "witness program has more than 4 bits of padding",
            _ => "witness program has non-zero padding bits",
        },
    })?;
    let program_length = checked.byte_iter().count();
    let length_ok = match version {
        0 => program_length == 20 || program_length == 32,
        // Taproot (BIP-341) outputs are 32-byte keys; other v1 lengths are unspendable-by-design.
        1 => program_length == 32,
        _ => (2..=40).contains(&program_length),
    };
    if !length_ok {
        let expected = match version {
            0 => "20 or 32",
            1 => "32",
            _ => "2 to 40",
        };
        return Err(AddressError::BadLength {
            network: BITCOIN,
            reason: format!(
                "witness version {version} needs a program of {expected} bytes, this one has {program_length}"
            ),
        });
    }
    Ok(lower)
}

fn checksum_failure(
    unchecked: &UncheckedHrpstring<'_>,
    witness_version: u8,
    expected: &'static str,
    found: &'static str,
    found_is_bech32m: bool,
) -> AddressError {
    let other_valid = if found_is_bech32m {
        unchecked.has_valid_checksum::<Bech32m>()
    } else {
        unchecked.has_valid_checksum::<Bech32>()
    };
    if other_valid {
        AddressError::WrongChecksumVariant { witness_version, expected, found }
    } else {
        AddressError::BadChecksum { network: Network::Bitcoin }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Ethereum

fn validate_ethereum(address: &str) -> Result<String, AddressError> {
    const ETHEREUM: Network = Network::Ethereum;
    let Some(hex) = address.strip_prefix("0x") else {
        return Err(AddressError::BadFormat { network: ETHEREUM, reason: "addresses start with \"0x\"" });
    };
    if let Some((index, character)) = hex.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(AddressError::InvalidCharacters { network: ETHEREUM, character, position: index + 2 });
    }
    if hex.len() != 40 {
        return Err(AddressError::BadLength {
            network: ETHEREUM,
            reason: format!("expected 40 hex digits after \"0x\", got {}", hex.len()),
        });
    }
    if hex.bytes().all(|byte| byte == b'0') {
        return Err(AddressError::ZeroAddress);
    }
    let checksummed = eip55(hex);
    let has_lower = hex.bytes().any(|byte| byte.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|byte| byte.is_ascii_uppercase());
    // Single-case addresses carry no checksum (EIP-55 is backwards compatible with them).
    if has_lower && has_upper && checksummed[2..] != *hex {
        return Err(AddressError::BadChecksum { network: ETHEREUM });
    }
    Ok(checksummed)
}

/// EIP-55: the `i`-th hex letter is upper-case iff the `i`-th nibble of Keccak-256(lowercase hex) is >= 8.
fn eip55(hex: &str) -> String {
    let lower = hex.to_ascii_lowercase();
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (index, character) in lower.chars().enumerate() {
        let nibble = (hash[index / 2] >> if index % 2 == 0 { 4 } else { 0 }) & 0x0f;
        out.push(if nibble >= 8 { character.to_ascii_uppercase() } else { character });
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// TRON

const TRON_VERSION: u8 = 0x41;

fn validate_tron(address: &str) -> Result<String, AddressError> {
    if !address.starts_with('T') {
        return Err(AddressError::BadFormat { network: Network::Tron, reason: "addresses start with \"T\"" });
    }
    let payload = decode_base58check(Network::Tron, address)?;
    if payload[0] != TRON_VERSION {
        return Err(AddressError::UnknownVersion { network: Network::Tron, version: payload[0] });
    }
    Ok(address.to_owned())
}

// ---------------------------------------------------------------------------------------------------------------
// IBAN

/// IBAN lengths from the SWIFT IBAN registry (ISO 13616) for the countries a desk commonly pays to. Countries
/// not listed are accepted with any length in [`IBAN_LENGTH_RANGE`].
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// ISO 13616 bounds an IBAN to 34 characters; no registered country uses fewer than 15.
const IBAN_LENGTH_RANGE: std::ops::RangeInclusive<usize> = 15..=34;

fn validate_iban(address: &str) -> Result<String, AddressError> {
    const IBAN: Network = Network::Iban;
    let mut iban = String::with_capacity(address.len());
    for (position, character) in address.char_indices() {
        match character {
            ' ' => {}
            c if c.is_ascii_alphanumeric() => iban.push(c.to_ascii_uppercase()),
            character => return Err(AddressError::InvalidCharacters { network: IBAN, character, position }),
        }
    }
    let bytes = iban.as_bytes();
    if bytes.len() < 4 {
        return Err(AddressError::BadLength {
            network: IBAN,
            reason: format!("expected at least {} characters, got {}", IBAN_LENGTH_RANGE.start(), bytes.len()),
        });
    }
    if !bytes[..2].iter().all(u8::is_ascii_uppercase) {
        return Err(AddressError::BadFormat { network: IBAN, reason: "must start with a two-letter country code" });
    }
    if !bytes[2..4].iter().all(u8::is_ascii_digit) {
        return Err(AddressError::BadFormat {
            network: IBAN,
            reason: "the two characters after the country code must be check digits",
        });
    }
    let country = &iban[..2];
    match IBAN_LENGTHS.iter().find(|(code, _)| *code == country) {
        Some(&(_, length)) if bytes.len() != length => {
            return Err(AddressError::BadLength {
                network: IBAN,
                reason: format!("IBANs of {country} have {length} characters, got {}", bytes.len()),
            });
        }
        Some(_) => {}
        None if !IBAN_LENGTH_RANGE.contains(&bytes.len()) => {
            return Err(AddressError::BadLength {
                network: IBAN,
                reason: format!(
                    "expected {} to {} characters, got {}",
                    IBAN_LENGTH_RANGE.start(),
                    IBAN_LENGTH_RANGE.end(),
                    bytes.len()
                ),
            });
        }
        None => {}
    }
    // Check digits are 98 - (n mod 97), so 02..=98; "00" and "01" would pass mod-97 as aliases of 97 and 98.
    let check_digits = &iban[2..4];
    if matches!(check_digits, "00" | "01" | "99") || iban_mod97(bytes) != 1 {
        return Err(AddressError::BadChecksum { network: IBAN });
    }
    Ok(iban)
}

/// ISO 13616 / ISO 7064 MOD 97-10 of an IBAN: move the first four characters to the end, replace letters by two
/// digits (A = 10 … Z = 35) and take the resulting up-to-68-digit number mod 97. That number overflows every
/// integer type, so the remainder is folded in one character at a time (`r = (r * 10^k + v) mod 97`, k = 1 or 2
/// digits), which keeps every intermediate below 97 * 100 + 35.
fn iban_mod97(iban: &[u8]) -> u32 {
    iban[4..].iter().chain(&iban[..4]).fold(0u32, |remainder, &byte| match byte {
        b'0'..=b'9' => (remainder * 10 + u32::from(byte - b'0')) % 97,
        _ => (remainder * 100 + u32::from(byte - b'A') + 10) % 97,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(asset: &str, address: &str, network: Option<Network>) -> ValidatedAddress {
        validate(asset, address, network).unwrap_or_else(|error| panic!("{address} rejected: {error}"))
    }

    fn err(asset: &str, address: &str, network: Option<Network>) -> AddressError {
        match validate(asset, address, network) {
            Ok(valid) => panic!("{address} accepted as {valid:?}"),
            Err(error) => {
                // Every error renders a non-empty message.
                assert!(!error.to_string().is_empty());
                error
            }
        }
    }

    fn btc(address: &str) -> Result<ValidatedAddress, AddressError> {
        validate("BTC", address, None)
    }

    // ---- assets and networks ----

    #[test]
    fn networks_per_asset() {
        assert_eq!(networks_for_asset("BTC"), &[Network::Bitcoin]);
        assert_eq!(networks_for_asset("ETH"), &[Network::Ethereum]);
        assert_eq!(networks_for_asset("USDC"), &[Network::Ethereum]);
        assert_eq!(networks_for_asset("USDT"), &[Network::Ethereum, Network::Tron]);
        for fiat in ["USD", "EUR", "GBP"] {
            assert_eq!(networks_for_asset(fiat), &[Network::Iban]);
        }
        assert!(networks_for_asset("DOGE").is_empty());
        assert!(networks_for_asset("btc").is_empty());
    }

    #[test]
    fn network_serde_is_snake_case() {
        assert_eq!(serde_json::to_string(&Network::Bitcoin).unwrap(), "\"bitcoin\"");
        assert_eq!(serde_json::to_string(&Network::Iban).unwrap(), "\"iban\"");
        assert_eq!(serde_json::from_str::<Network>("\"tron\"").unwrap(), Network::Tron);
        assert_eq!(serde_json::from_str::<Network>("\"ethereum\"").unwrap(), Network::Ethereum);
        assert!(serde_json::from_str::<Network>("\"Tron\"").is_err());
    }

    #[test]
    fn asset_and_network_errors() {
        let eth = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        assert!(matches!(err("DOGE", eth, None), AddressError::UnsupportedAsset { .. }));
        let error = err("ETH", eth, Some(Network::Tron));
        assert!(matches!(error, AddressError::NetworkNotSupportedForAsset { network: Network::Tron, .. }));
        assert_eq!(error.to_string(), "asset ETH cannot be withdrawn on the tron network (supported: ethereum)");
        assert!(matches!(
            err("USDT", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", None),
            AddressError::UnknownNetwork { .. }
        ));
        assert_eq!(err("BTC", "", None), AddressError::Empty);
        assert_eq!(err("BTC", "   ", None), AddressError::Empty);
        let long = "1".repeat(ADDRESS_LENGTH_MAX + 1);
        assert_eq!(err("BTC", &long, None), AddressError::TooLong { length: 129, max: ADDRESS_LENGTH_MAX });
        // A long asset name is cut in the error.
        let long_asset = "X".repeat(1000);
        match err(&long_asset, eth, None) {
            AddressError::UnsupportedAsset { asset } => assert_eq!(asset.len(), 16),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn usdt_network_detection() {
        let eth = ok("USDT", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", None);
        assert_eq!(eth.network, Network::Ethereum);
        let tron = ok("USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", None);
        assert_eq!(tron.network, Network::Tron);
        // An explicit network wins over detection.
        assert!(matches!(
            err("USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", Some(Network::Ethereum)),
            AddressError::BadFormat { network: Network::Ethereum, .. }
        ));
        assert_eq!(ok("USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", Some(Network::Tron)), tron);
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let valid = ok("ETH", "  0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\n", None);
        assert_eq!(valid.normalized, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    }

    // ---- Bitcoin: base58check ----

    #[test]
    fn bitcoin_legacy_valid() {
        // The genesis block's coinbase address (P2PKH) and the classic P2SH example.
        for address in ["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"] {
            let valid = ok("BTC", address, None);
            assert_eq!(valid, ValidatedAddress { network: Network::Bitcoin, normalized: address.to_owned() });
        }
        assert_eq!(ok("BTC", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", Some(Network::Bitcoin)).network, Network::Bitcoin);
    }

    #[test]
    fn bitcoin_legacy_invalid() {
        // Last character changed: checksum.
        assert_eq!(
            btc("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"),
            Err(AddressError::BadChecksum { network: Network::Bitcoin })
        );
        // '0', 'O', 'I', 'l' are not base58.
        assert!(matches!(
            btc("1A1zP1eP5QGefi2DMPTfTL5SLmv7Divf0a"),
            Err(AddressError::InvalidCharacters { character: '0', position: 32, .. })
        ));
        assert!(matches!(btc("1A1zP1eP5QGéfi2DMPTfTL5SLmv7DivfNa"), Err(AddressError::InvalidCharacters { .. })));
        // Testnet P2PKH / P2SH versions.
        let hash = [0x11u8; 20];
        let testnet_p2pkh = bs58::encode(hash).with_check_version(0x6f).into_string();
        let testnet_p2sh = bs58::encode(hash).with_check_version(0xc4).into_string();
        assert!(testnet_p2pkh.starts_with('m') || testnet_p2pkh.starts_with('n'));
        assert!(testnet_p2sh.starts_with('2'));
        assert_eq!(btc(&testnet_p2pkh), Err(AddressError::TestnetAddress));
        assert_eq!(btc(&testnet_p2sh), Err(AddressError::TestnetAddress));
        // A valid base58check string of another version or length.
        let other_version = bs58::encode(hash).with_check_version(0x30).into_string();
        assert_eq!(btc(&other_version), Err(AddressError::UnknownVersion { network: Network::Bitcoin, version: 0x30 }));
        let short = bs58::encode([0u8; 19]).with_check_version(0x05).into_string();
        assert!(matches!(btc(&short), Err(AddressError::BadLength { .. })));
        assert!(matches!(btc("3"), Err(AddressError::BadLength { .. })));
    }

    // ---- Bitcoin: segwit (BIP-173 / BIP-350 test vectors) ----

    #[test]
    fn segwit_valid_vectors() {
        let cases = [
            // BIP-173/350: v0, 20-byte program, upper case.
            ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            // BIP-350: v16 with a 2-byte program, and v2 with 16 bytes.
            ("BC1SW50QGDZ25J", "bc1sw50qgdz25j"),
            ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs"),
            // BIP-350: v1 (taproot), 32 bytes.
            (
                "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
                "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
            ),
            // A v0 32-byte (P2WSH) program: BIP-173's example re-encoded for mainnet.
            (
                "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
                "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
            ),
        ];
        for (input, normalized) in cases {
            assert_eq!(
                btc(input),
                Ok(ValidatedAddress { network: Network::Bitcoin, normalized: normalized.to_owned() })
            );
        }
    }

    #[test]
    fn segwit_v1_must_be_32_bytes() {
        // BIP-350 lists this 40-byte v1 program as a valid address, but it is no taproot output: rejected.
        let address = "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y";
        assert!(matches!(btc(address), Err(AddressError::BadLength { .. })));
    }

    #[test]
    fn segwit_testnet_rejected() {
        for address in [
            "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
            "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
            "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
            "TB1QRP33G0Q5C5TXSP9ARYSRX4K6ZDKFS4NCE4XJ0GDCCCEFVPYSXF3Q0SL5K7",
        ] {
            let error = btc(address).unwrap_err();
            assert_eq!(error, AddressError::TestnetAddress);
            assert!(error.to_string().contains("only mainnet"));
        }
    }

    /// Whether an error is the one a test vector expects.
    type ErrorCheck = fn(&AddressError) -> bool;

    #[test]
    fn segwit_invalid_vectors() {
        use AddressError::*;
        const B: Network = Network::Bitcoin;
        let bech32_for_v1 = WrongChecksumVariant { witness_version: 1, expected: "bech32m", found: "bech32" };
        let cases: Vec<(&str, ErrorCheck)> = vec![
            // BIP-173. Its v1+ vectors carry bech32 checksums, which BIP-350 retired: they fail as such before
            // their length or padding problem is looked at.
            ("tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty", |e| matches!(e, UnknownHrp { hrp } if hrp == "tc")),
            ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", |e| *e == BadChecksum { network: B }),
            ("BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2", |e| *e == UnknownVersion { network: B, version: 17 }),
            ("bc1rw5uspcuh", |e| matches!(e, WrongChecksumVariant { witness_version: 3, .. })),
            ("bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90", |e| {
                matches!(e, WrongChecksumVariant { witness_version: 15, .. })
            }),
            ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", |e| matches!(e, BadLength { .. })),
            ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7", |e| *e == MixedCase { network: B }),
            ("bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du", |e| matches!(e, WrongChecksumVariant { witness_version: 2, .. })),
            ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv", |e| *e == TestnetAddress),
            ("bc1gmk9yu", |e| matches!(e, BadLength { .. })),
            // BIP-350
            ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", |e| matches!(e, UnknownHrp { .. })),
            ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", |e| {
                *e == WrongChecksumVariant { witness_version: 1, expected: "bech32m", found: "bech32" }
            }),
            ("tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf", |e| *e == TestnetAddress),
            ("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", |e| {
                *e == WrongChecksumVariant { witness_version: 16, expected: "bech32m", found: "bech32" }
            }),
            ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", |e| {
                *e == WrongChecksumVariant { witness_version: 0, expected: "bech32", found: "bech32m" }
            }),
            ("tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47", |e| *e == TestnetAddress),
            ("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", |e| {
                matches!(e, InvalidCharacters { character: 'o', .. })
            }),
            ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", |e| {
                matches!(e, UnknownVersion { network: Network::Bitcoin, .. })
            }),
            ("bc1pw5dgrnzv", |e| matches!(e, BadLength { .. })),
            ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav", |e| {
                matches!(e, BadLength { .. })
            }),
            ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", |e| matches!(e, BadLength { .. })),
            ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq", |e| *e == MixedCase { network: B }),
            ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", |e| matches!(e, BadFormat { .. })),
            ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j", |e| *e == TestnetAddress),
            ("bc1gmk9yu", |e| matches!(e, BadLength { .. })),
            // Mixed case on mainnet, and a bech32 v1 checksum built by hand for the message check below.
            ("bc1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", |e| *e == MixedCase { network: B }),
        ];
        for (address, expected) in cases {
            let error = btc(address).expect_err(address);
            assert!(expected(&error), "{address}: unexpected {error:?}");
        }
        assert_eq!(
            bech32_for_v1.to_string(),
            "bitcoin segwit address of witness version 1 must use the bech32m checksum (BIP-350), but it uses bech32"
        );
    }

    #[test]
    fn segwit_padding_vectors_rejected_even_with_mainnet_hrp() {
        // BIP-173's "non-zero padding" vector is testnet; check the padding rule itself on mainnet with a v0
        // string that has a correct checksum but a non-zero padding bit.
        use bech32::primitives::iter::{ByteIterExt, Fe32IterExt};
        let hrp = bech32::Hrp::parse("bc").unwrap();
        // 32 bytes = 256 bits = 51 characters and 4 bits of padding, which the encoder sets to zero.
        let mut fes: Vec<bech32::Fe32> = [7u8; 32].iter().copied().bytes_to_fes().collect();
        let last = fes.pop().unwrap();
        fes.push(bech32::Fe32::try_from(last.to_u8() | 1).unwrap());
        let address: String =
            fes.into_iter().with_checksum::<Bech32>(&hrp).with_witness_version(bech32::Fe32::Q).chars().collect();
        assert!(matches!(btc(&address), Err(AddressError::BadFormat { .. })), "{address}");
    }

    // ---- Ethereum ----

    #[test]
    fn ethereum_eip55_examples() {
        // From EIP-55.
        for address in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            assert_eq!(ok("ETH", address, None).normalized, address);
            assert_eq!(ok("USDC", &address.to_ascii_lowercase(), None).normalized, address);
            let upper = format!("0x{}", address[2..].to_ascii_uppercase());
            assert_eq!(ok("USDT", &upper, Some(Network::Ethereum)).normalized, address);
        }
        // EIP-55's all-caps and all-lower examples normalize to their checksummed form.
        assert_eq!(
            ok("ETH", "0x52908400098527886E0F7030069857D2E4169EE7", None).normalized,
            "0x52908400098527886E0F7030069857D2E4169EE7"
        );
        assert_eq!(
            ok("ETH", "0xde709f2102306220921060314715629080e2fb77", None).normalized,
            "0xde709f2102306220921060314715629080e2fb77"
        );
    }

    #[test]
    fn ethereum_invalid() {
        use AddressError::*;
        const E: Network = Network::Ethereum;
        // One letter's case flipped ('a' -> 'A' in "5aAeb").
        assert_eq!(err("ETH", "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", None), BadChecksum { network: E });
        assert_eq!(err("ETH", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", None), BadChecksum { network: E });
        assert!(matches!(err("ETH", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", None), BadFormat { network: E, .. }));
        assert!(matches!(err("ETH", "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", None), BadFormat { .. }));
        assert_eq!(
            err("ETH", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", None),
            InvalidCharacters { network: E, character: 'g', position: 41 }
        );
        assert!(matches!(err("ETH", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", None), BadLength { .. }));
        assert!(matches!(err("ETH", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00", None), BadLength { .. }));
        assert!(matches!(err("ETH", "0x", None), BadLength { .. }));
        assert_eq!(err("ETH", "0x0000000000000000000000000000000000000000", None), ZeroAddress);
        assert!(matches!(err("USDT", "0xZZ", None), InvalidCharacters { network: E, .. }));
    }

    // ---- TRON ----

    #[test]
    fn tron_valid_and_invalid() {
        use AddressError::*;
        const T: Network = Network::Tron;
        let usdt_contract = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";
        assert_eq!(
            ok("USDT", usdt_contract, Some(Network::Tron)),
            ValidatedAddress { network: T, normalized: usdt_contract.to_owned() }
        );
        assert_eq!(err("USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", None), BadChecksum { network: T });
        assert!(matches!(
            err("USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6", None),
            BadChecksum { .. } | BadLength { .. }
        ));
        assert!(matches!(
            err("USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj0t", None),
            InvalidCharacters { character: '0', .. }
        ));
        assert!(matches!(
            err("USDT", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", Some(Network::Tron)),
            BadFormat { network: T, .. }
        ));
        // Right length and checksum, wrong version: a base58check string that happens to start with 'T'.
        let mut payload = [0u8; 21];
        payload[0] = 0x42;
        let other_version = bs58::encode(payload).with_check().into_string();
        assert!(other_version.starts_with('T'), "{other_version}");
        assert_eq!(err("USDT", &other_version, Some(T)), UnknownVersion { network: T, version: 0x42 });
    }

    // ---- IBAN ----

    #[test]
    fn iban_valid() {
        for (input, normalized) in [
            ("DE89370400440532013000", "DE89370400440532013000"),
            ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
            ("de89 3704 0044 0532 0130 00", "DE89370400440532013000"),
            ("GB82WEST12345698765432", "GB82WEST12345698765432"),
            ("GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432"),
            ("gb82 west 1234 5698 7654 32", "GB82WEST12345698765432"),
            ("FR14 2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606"),
            ("NL91 ABNA 0417 1643 00", "NL91ABNA0417164300"),
            ("CH93 0076 2011 6238 5295 7", "CH9300762011623852957"),
            ("NO93 8601 1117 947", "NO9386011117947"),
        ] {
            for asset in ["EUR", "USD", "GBP"] {
                assert_eq!(
                    ok(asset, input, None),
                    ValidatedAddress { network: Network::Iban, normalized: normalized.to_owned() }
                );
            }
        }
    }

    #[test]
    fn iban_invalid() {
        use AddressError::*;
        const I: Network = Network::Iban;
        // Every single-digit change of the official examples fails the checksum.
        for iban in ["DE89370400440532013000", "GB82WEST12345698765432"] {
            for (index, byte) in iban.bytes().enumerate().skip(2) {
                if !byte.is_ascii_digit() {
                    continue;
                }
                for digit in b'0'..=b'9' {
                    if digit == byte {
                        continue;
                    }
                    let mut mutated = iban.as_bytes().to_vec();
                    mutated[index] = digit;
                    let mutated = String::from_utf8(mutated).unwrap();
                    assert_eq!(err("EUR", &mutated, None), BadChecksum { network: I }, "{mutated}");
                }
            }
        }
        assert!(matches!(err("EUR", "DE8937040044053201300", None), BadLength { .. }));
        assert!(matches!(err("EUR", "DE893704004405320130000", None), BadLength { .. }));
        assert!(matches!(err("EUR", "ZZ89", None), BadLength { .. }));
        assert!(matches!(err("EUR", "DE", None), BadLength { .. }));
        assert!(matches!(err("EUR", "1E89370400440532013000", None), BadFormat { .. }));
        assert!(matches!(err("EUR", "DEX9370400440532013000", None), BadFormat { .. }));
        assert_eq!(
            err("EUR", "DE89-3704-0044-0532-0130-00", None),
            InvalidCharacters { network: I, character: '-', position: 4 }
        );
        assert!(matches!(err("EUR", "DE89370400440532013000\u{e9}", None), InvalidCharacters { character: 'é', .. }));
        // Check digits 00 and 01 alias 97 and 98 under mod-97; ISO 13616 never issues them.
        let alias = "GB00WEST12345698765432";
        assert_eq!(err("GBP", alias, None), BadChecksum { network: I });
        let mut message = err("EUR", "DE8937040044053201300", None).to_string();
        assert!(message.contains("DE have 22 characters, got 21"), "{message}");
        message = err("EUR", "DE88370400440532013000", None).to_string();
        assert!(message.contains("checksum"), "{message}");
    }

    #[test]
    fn iban_unknown_country_uses_generic_length() {
        // An unlisted country: any 15..=34 characters with a valid mod-97.
        let body = "ABCD123456789012";
        let mut candidate = format!("XX00{body}");
        let remainder = iban_mod97(candidate.as_bytes());
        candidate.replace_range(2..4, &format!("{:02}", 98 - remainder));
        assert_eq!(ok("EUR", &candidate, None).normalized, candidate);
        assert!(matches!(err("EUR", "XX0012345678", None), AddressError::BadLength { .. }));
    }

    #[test]
    fn iban_mod97_matches_big_integer_reference() {
        // Cross-check the folded remainder against u128 arithmetic on inputs small enough for it.
        for iban in ["NO9386011117947", "BE68539007547034", "DK5000400440116243"] {
            let rearranged: String = iban[4..].chars().chain(iban[..4].chars()).collect();
            let digits: String =
                rearranged.chars().map(|c| c.to_digit(36).expect("alphanumeric").to_string()).collect();
            let reference = digits.parse::<u128>().expect("fits") % 97;
            assert_eq!(u128::from(iban_mod97(iban.as_bytes())), reference, "{iban}");
            assert_eq!(reference, 1);
        }
    }

    // ---- property: single-character substitutions ----

    const BECH32_CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    const BASE58_ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    fn substitute(address: &str, index: usize, replacement: u8) -> String {
        let mut bytes = address.as_bytes().to_vec();
        bytes[index] = replacement;
        String::from_utf8(bytes).unwrap()
    }

    proptest! {
        /// Bech32 and bech32m detect every error in up to 4 characters, so any substitution in the witness
        /// program or checksum is a checksum failure (of the expected variant; the other variant cannot match
        /// either, save with probability 2^-30, which is still reported as a checksum error).
        #[test]
        fn segwit_substitution_fails_checksum(
            which in 0usize..3,
            position in any::<prop::sample::Index>(),
            replacement in any::<prop::sample::Index>(),
        ) {
            let address = [
                "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
                "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
                "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
            ][which];
            // Skip "bc1" and the witness version character.
            let index = 4 + position.index(address.len() - 4);
            let original = address.as_bytes()[index];
            let candidates: Vec<u8> = BECH32_CHARSET.iter().copied().filter(|&c| c != original).collect();
            let mutated = substitute(address, index, *replacement.get(&candidates));
            let error = btc(&mutated).unwrap_err();
            prop_assert!(
                matches!(error, AddressError::BadChecksum { .. } | AddressError::WrongChecksumVariant { .. }),
                "{} -> {:?}", mutated, error
            );
        }

        /// Any substitution anywhere in a segwit address is rejected (HRP and version included).
        #[test]
        fn segwit_any_substitution_rejected(
            position in any::<prop::sample::Index>(),
            replacement in any::<prop::sample::Index>(),
        ) {
            let address = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0";
            let index = position.index(address.len());
            let alphabet: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz0123456789".iter().copied()
                .filter(|&c| c != address.as_bytes()[index]).collect();
            let mutated = substitute(address, index, *replacement.get(&alphabet));
            prop_assert!(btc(&mutated).is_err(), "{}", mutated);
        }

        /// MOD 97-10 detects every substitution of a digit by a digit and of a letter by a letter (the value
        /// changes by 1..=35 < 97 at a position of weight 10^k, and 97 is prime to 10).
        #[test]
        fn iban_substitution_fails_checksum(
            which in 0usize..4,
            position in any::<prop::sample::Index>(),
            replacement in any::<prop::sample::Index>(),
        ) {
            let iban = [
                "DE89370400440532013000",
                "GB82WEST12345698765432",
                "FR1420041010050500013M02606",
                "NL91ABNA0417164300",
            ][which];
            // Keep the country code (another country would change the length rule, tested separately).
            let index = 2 + position.index(iban.len() - 2);
            let original = iban.as_bytes()[index];
            let class: &[u8] = if original.is_ascii_digit() { b"0123456789" } else { b"ABCDEFGHIJKLMNOPQRSTUVWXYZ" };
            let candidates: Vec<u8> = class.iter().copied().filter(|&c| c != original).collect();
            let mutated = substitute(iban, index, *replacement.get(&candidates));
            let result = validate("EUR", &mutated, None);
            prop_assert_eq!(result, Err(AddressError::BadChecksum { network: Network::Iban }), "{}", mutated);
        }

        /// Base58check's 32-bit checksum is probabilistic: a substitution is rejected, or (probability ~2^-32)
        /// yields a different valid address, never the same one.
        #[test]
        fn base58_substitution_rejected(
            which in 0usize..3,
            position in any::<prop::sample::Index>(),
            replacement in any::<prop::sample::Index>(),
        ) {
            let (asset, address) = [
                ("BTC", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
                ("BTC", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
                ("USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
            ][which];
            let index = position.index(address.len());
            let candidates: Vec<u8> = BASE58_ALPHABET.iter().copied()
                .filter(|&c| c != address.as_bytes()[index]).collect();
            let mutated = substitute(address, index, *replacement.get(&candidates));
            match validate(asset, &mutated, None) {
                Err(_) => {}
                Ok(valid) => prop_assert_ne!(valid.normalized, address),
            }
        }

        /// Changing one hex digit of a checksummed Ethereum address is rejected or yields another address.
        #[test]
        fn ethereum_substitution_changes_or_rejects(
            position in any::<prop::sample::Index>(),
            replacement in any::<prop::sample::Index>(),
        ) {
            let address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
            let index = 2 + position.index(40);
            let candidates: Vec<u8> = b"0123456789abcdefABCDEF".iter().copied()
                .filter(|&c| c != address.as_bytes()[index]).collect();
            let mutated = substitute(address, index, *replacement.get(&candidates));
            match validate("ETH", &mutated, None) {
                Err(_) => {}
                Ok(valid) => prop_assert_ne!(valid.normalized, address),
            }
        }

        /// Validation never panics and is idempotent on its own output.
        #[test]
        fn arbitrary_input_never_panics(asset_index in 0usize..4, input in ".{0,140}") {
            let asset = ["BTC", "ETH", "USDT", "EUR"][asset_index];
            if let Ok(valid) = validate(asset, &input, None) {
                prop_assert_eq!(validate(asset, &valid.normalized, Some(valid.network)), Ok(valid.clone()));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Deposit addresses (simulated custodian)

/// A deterministic, valid deposit address on `network` derived from `seed` (the simulated custodian's stand-in
/// for its key derivation): Keccak-256 of the seed gives the 20-byte program or account. Bitcoin: bech32 P2WPKH;
/// Ethereum: EIP-55 checksummed; TRON: base58check with version 0x41. `None` for IBAN (fiat has no deposit
/// address: clients wire to the desk's bank account with their reference).
pub fn derive_deposit_address(network: Network, seed: &[u8]) -> Option<String> {
    let hash = Keccak256::digest(seed);
    let account = &hash[..20];
    match network {
        Network::Bitcoin => {
            let hrp = bech32::Hrp::parse("bc").ok()?;
            bech32::segwit::encode(hrp, bech32::segwit::VERSION_0, account).ok()
        }
        Network::Ethereum => Some(eip55(&hex_lower(account))),
        Network::Tron => {
            let mut payload = Vec::with_capacity(21);
            payload.push(TRON_VERSION);
            payload.extend_from_slice(account);
            Some(bs58::encode(payload).with_check().into_string())
        }
        Network::Iban => None,
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 0x0f) as usize] as char);
    }
    out
}

#[cfg(test)]
mod deposit_address_tests {
    use super::*;

    #[test]
    fn derived_deposit_addresses_validate_on_their_network_and_differ_by_seed() {
        for (asset, network) in [("BTC", Network::Bitcoin), ("ETH", Network::Ethereum), ("USDT", Network::Tron)] {
            let first = derive_deposit_address(network, b"cl_00000001/BTC").unwrap();
            let second = derive_deposit_address(network, b"cl_00000002/BTC").unwrap();
            assert_ne!(first, second);
            let validated = validate(asset, &first, Some(network)).unwrap();
            assert_eq!(validated.normalized, first, "{network:?} derivation is already normalized");
        }
        assert_eq!(derive_deposit_address(Network::Iban, b"x"), None);
    }
}
