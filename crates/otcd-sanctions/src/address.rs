//! Canonical form of a wallet address for exact matching.

/// Hex addresses (with or without `0x`), bech32 (`bc1…`, `ltc1…`, …) and
/// BCH cashaddr are case-insensitive by their encodings, so they compare
/// lowercased; base58 and anything else compare byte for byte, since there a
/// change of case is a different address.
pub fn address_key(address: &str) -> String {
    let trimmed = address.trim();
    if is_case_insensitive(trimmed) {
        trimmed.to_ascii_lowercase()
    } else {
        trimmed.to_string()
    }
}

fn is_case_insensitive(address: &str) -> bool {
    is_hex(address) || is_bech32(address) || is_cashaddr(address)
}

fn is_hex(address: &str) -> bool {
    let digits = address.strip_prefix("0x").or_else(|| address.strip_prefix("0X")).unwrap_or(address);
    // Length 40+ excludes short base58 strings that happen to be all hex.
    digits.len() >= 40 && digits.bytes().all(|byte| byte.is_ascii_hexdigit())
}

const BECH32_PREFIXES: [&str; 6] = ["bc1", "tb1", "bcrt1", "ltc1", "tltc1", "zs1"];

fn is_bech32(address: &str) -> bool {
    let lower = address.to_ascii_lowercase();
    let single_case = address == lower || address == address.to_ascii_uppercase();
    single_case
        && BECH32_PREFIXES.iter().any(|prefix| lower.starts_with(prefix))
        && lower.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

fn is_cashaddr(address: &str) -> bool {
    let lower = address.to_ascii_lowercase();
    let payload = lower.strip_prefix("bitcoincash:").unwrap_or(&lower);
    let single_case = address == lower || address == address.to_ascii_uppercase();
    single_case
        && payload.len() == 42
        && (payload.starts_with('q') || payload.starts_with('p'))
        && payload.bytes().all(is_bech32_character)
}

fn is_bech32_character(byte: u8) -> bool {
    b"qpzry9x8gf2tvdw0s3jn54khce6mua7l".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::address_key;

    #[test]
    fn hex_addresses_fold_case() {
        assert_eq!(
            address_key("0x7F367cC41522cE07553e823bf3be79A889DEbe1B"),
            "0x7f367cc41522ce07553e823bf3be79a889debe1b"
        );
    }

    #[test]
    fn base58_addresses_keep_case() {
        let address = "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h";
        assert_eq!(address_key(address), address);
        assert_ne!(address_key(&address.to_lowercase()), address);
    }

    #[test]
    fn bech32_and_cashaddr_fold_case() {
        assert_eq!(
            address_key("BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ"),
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        );
        assert_eq!(
            address_key("QPF2CPHC5DKUCLKQUR7LHJ2YUQQ9PK3HMUKLE77VHQ"),
            "qpf2cphc5dkuclkqur7lhj2yuqq9pk3hmukle77vhq"
        );
    }
}
