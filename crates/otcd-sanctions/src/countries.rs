//! Country names as OFAC and the UN spell them, to ISO 3166-1 alpha-2.
//! Covers the names seen in the lists; an unknown name is kept as written.

const COUNTRIES: &[(&str, &str)] = &[
    ("afghanistan", "AF"),
    ("albania", "AL"),
    ("algeria", "DZ"),
    ("angola", "AO"),
    ("argentina", "AR"),
    ("armenia", "AM"),
    ("australia", "AU"),
    ("austria", "AT"),
    ("azerbaijan", "AZ"),
    ("bahrain", "BH"),
    ("bangladesh", "BD"),
    ("barbados", "BB"),
    ("belarus", "BY"),
    ("belgium", "BE"),
    ("bolivia", "BO"),
    ("bosnia and herzegovina", "BA"),
    ("brazil", "BR"),
    ("bulgaria", "BG"),
    ("burma", "MM"),
    ("myanmar", "MM"),
    ("burundi", "BI"),
    ("cabo verde", "CV"),
    ("cambodia", "KH"),
    ("cameroon", "CM"),
    ("canada", "CA"),
    ("central african republic", "CF"),
    ("chad", "TD"),
    ("chile", "CL"),
    ("china", "CN"),
    ("colombia", "CO"),
    ("comoros", "KM"),
    ("congo, democratic republic of the", "CD"),
    ("democratic republic of the congo", "CD"),
    ("congo", "CG"),
    ("congo, republic of the", "CG"),
    ("costa rica", "CR"),
    ("cuba", "CU"),
    ("cyprus", "CY"),
    ("czech republic", "CZ"),
    ("czechia", "CZ"),
    ("denmark", "DK"),
    ("djibouti", "DJ"),
    ("dominican republic", "DO"),
    ("ecuador", "EC"),
    ("egypt", "EG"),
    ("el salvador", "SV"),
    ("equatorial guinea", "GQ"),
    ("eritrea", "ER"),
    ("estonia", "EE"),
    ("ethiopia", "ET"),
    ("finland", "FI"),
    ("france", "FR"),
    ("georgia", "GE"),
    ("germany", "DE"),
    ("ghana", "GH"),
    ("greece", "GR"),
    ("guatemala", "GT"),
    ("guinea", "GN"),
    ("guinea-bissau", "GW"),
    ("haiti", "HT"),
    ("honduras", "HN"),
    ("hong kong", "HK"),
    ("hungary", "HU"),
    ("india", "IN"),
    ("indonesia", "ID"),
    ("iran", "IR"),
    ("iran (islamic republic of)", "IR"),
    ("iraq", "IQ"),
    ("ireland", "IE"),
    ("israel", "IL"),
    ("italy", "IT"),
    ("japan", "JP"),
    ("jordan", "JO"),
    ("kazakhstan", "KZ"),
    ("kenya", "KE"),
    ("korea, north", "KP"),
    ("democratic people's republic of korea", "KP"),
    ("north korea", "KP"),
    ("korea, south", "KR"),
    ("republic of korea", "KR"),
    ("kosovo", "XK"),
    ("kuwait", "KW"),
    ("kyrgyzstan", "KG"),
    ("latvia", "LV"),
    ("lebanon", "LB"),
    ("liberia", "LR"),
    ("libya", "LY"),
    ("lithuania", "LT"),
    ("luxembourg", "LU"),
    ("macedonia, the former yugoslav republic of", "MK"),
    ("north macedonia", "MK"),
    ("malaysia", "MY"),
    ("maldives", "MV"),
    ("mali", "ML"),
    ("malta", "MT"),
    ("mauritania", "MR"),
    ("mexico", "MX"),
    ("moldova", "MD"),
    ("montenegro", "ME"),
    ("morocco", "MA"),
    ("mozambique", "MZ"),
    ("netherlands", "NL"),
    ("new zealand", "NZ"),
    ("nicaragua", "NI"),
    ("niger", "NE"),
    ("nigeria", "NG"),
    ("norway", "NO"),
    ("oman", "OM"),
    ("pakistan", "PK"),
    ("palestinian", "PS"),
    ("state of palestine", "PS"),
    ("panama", "PA"),
    ("paraguay", "PY"),
    ("peru", "PE"),
    ("philippines", "PH"),
    ("poland", "PL"),
    ("portugal", "PT"),
    ("qatar", "QA"),
    ("romania", "RO"),
    ("russia", "RU"),
    ("russian federation", "RU"),
    ("rwanda", "RW"),
    ("saint kitts and nevis", "KN"),
    ("saudi arabia", "SA"),
    ("senegal", "SN"),
    ("serbia", "RS"),
    ("seychelles", "SC"),
    ("sierra leone", "SL"),
    ("singapore", "SG"),
    ("slovakia", "SK"),
    ("slovenia", "SI"),
    ("somalia", "SO"),
    ("south africa", "ZA"),
    ("south sudan", "SS"),
    ("spain", "ES"),
    ("sri lanka", "LK"),
    ("sudan", "SD"),
    ("sweden", "SE"),
    ("switzerland", "CH"),
    ("syria", "SY"),
    ("syrian arab republic", "SY"),
    ("taiwan", "TW"),
    ("tajikistan", "TJ"),
    ("tanzania", "TZ"),
    ("united republic of tanzania", "TZ"),
    ("thailand", "TH"),
    ("the gambia", "GM"),
    ("gambia", "GM"),
    ("trinidad and tobago", "TT"),
    ("tunisia", "TN"),
    ("turkey", "TR"),
    ("türkiye", "TR"),
    ("turkiye", "TR"),
    ("turkmenistan", "TM"),
    ("uganda", "UG"),
    ("ukraine", "UA"),
    ("united arab emirates", "AE"),
    ("united kingdom", "GB"),
    ("united kingdom of great britain and northern ireland", "GB"),
    ("united states", "US"),
    ("united states of america", "US"),
    ("uruguay", "UY"),
    ("uzbekistan", "UZ"),
    ("venezuela", "VE"),
    ("vietnam", "VN"),
    ("viet nam", "VN"),
    ("yemen", "YE"),
    ("zambia", "ZM"),
    ("zimbabwe", "ZW"),
];

/// ISO alpha-2 for a listed country name, or the trimmed name when unknown.
/// Qualifiers such as "possibly" and a trailing period are ignored.
pub(crate) fn country_code(name: &str) -> Option<String> {
    let cleaned = name.trim().trim_end_matches('.').trim();
    let cleaned = cleaned.strip_prefix("possibly ").unwrap_or(cleaned).trim();
    if cleaned.is_empty() || cleaned.eq_ignore_ascii_case("na") {
        return None;
    }
    let lower = cleaned.to_lowercase();
    let code = COUNTRIES.iter().find(|(country, _)| *country == lower).map(|(_, code)| (*code).to_string());
    Some(code.unwrap_or_else(|| cleaned.to_string()))
}

/// Adds `code` to an entry's countries unless it is there or the list is full.
pub(crate) fn push_country(into: &mut Vec<String>, code: Option<String>) {
    if let Some(code) = code {
        if !into.contains(&code) && into.len() < crate::limits::MAX_ATTRIBUTES_PER_ENTRY {
            into.push(code);
        }
    }
}

/// Whether a stored value is an ISO code rather than an unknown name.
pub(crate) fn is_code(value: &str) -> bool {
    value.len() == 2 && value.bytes().all(|byte| byte.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::country_code;

    #[test]
    fn maps_list_spellings() {
        assert_eq!(country_code("Korea, North").as_deref(), Some("KP"));
        assert_eq!(country_code("Iran (Islamic Republic of)").as_deref(), Some("IR"));
        assert_eq!(country_code("possibly Palestinian").as_deref(), Some("PS"));
        assert_eq!(country_code("Yemen.").as_deref(), Some("YE"));
        assert_eq!(country_code("Atlantis").as_deref(), Some("Atlantis"));
        assert_eq!(country_code(" "), None);
    }
}
