//! Name normalization: what makes "Dr. Abd al-Rahman MOHAMMED" and
//! "abdulrahman muhammad" comparable token by token.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::limits::{MAX_NAME_CHARS, MAX_TOKENS_PER_NAME};

/// Titles and honorifics: they say nothing about identity and are often
/// present on one side only.
const HONORIFICS: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "mme",
    "mlle",
    "dr",
    "prof",
    "sir",
    "dame",
    "lord",
    "sheikh",
    "shaikh",
    "sheik",
    "shaykh",
    "cheikh",
    "haji",
    "hajji",
    "hadji",
    "hajj",
    "alhaji",
    "mullah",
    "mulla",
    "mollah",
    "maulana",
    "mawlana",
    "maulvi",
    "mawlawi",
    "molvi",
    "qari",
    "imam",
    "general",
    "gen",
    "colonel",
    "col",
    "major",
    "maj",
    "captain",
    "capt",
    "lieutenant",
    "lt",
    "sergeant",
    "sgt",
    "admiral",
    "brigadier",
    "commander",
    "judge",
    "rev",
    "reverend",
    "engineer",
    "eng",
    "doctor",
    "professor",
];

/// Connecting particles: written joined, split, or not at all depending on
/// the transliteration, so they are dropped on both sides.
const PARTICLES: &[&str] = &[
    "al", "el", "ul", "bin", "ibn", "ben", "bint", "binti", "ould", "de", "da", "del", "della", "der", "di", "du",
    "dos", "das", "van", "von", "y",
];

/// Legal forms of companies ("S.A.", "LLC", "OOO", ...) across languages,
/// equally optional: they say what kind of body is listed, not which one.
/// Forms that are also given names ("Asa", "Pao") are left out.
const LEGAL_FORMS: &[&str] = &[
    // English
    "ltd",
    "limited",
    "llc",
    "inc",
    "incorporated",
    "co",
    "corp",
    "corporation",
    "company",
    "plc",
    "llp",
    "lp",
    "lllp",
    "pllc",
    "pte",
    "pvt",
    "pty",
    "wll",
    // Romance languages
    "sa",
    "sas",
    "sasu",
    "sarl",
    "eurl",
    "srl",
    "sl",
    "slu",
    "spa",
    "sapa",
    "sab",
    "sal",
    "sae",
    "ltda",
    "limitada",
    // Spanish "corporación": within one typo of "corporation", so a typo in
    // it ("corplracion") would otherwise be two edits from any form.
    "corporacion",
    "eireli",
    "cv",
    // German, Dutch, Nordic
    "gmbh",
    "mbh",
    "ag",
    "kg",
    "ohg",
    "bv",
    "nv",
    "vof",
    "aps",
    // Russian, Ukrainian and other post-Soviet forms
    "jsc",
    "ojsc",
    "cjsc",
    "pjsc",
    "ooo",
    "zao",
    "oao",
    // Gulf free zones, South-East Asia
    "fze",
    "fzco",
    "fzc",
    "fzllc",
    "saog",
    "saoc",
    "sdn",
    "bhd",
    "berhad",
    "tbk",
];

/// Legal forms at least this long are also recognized misspelt by one edit
/// (insertion, deletion, substitution or transposition of neighbours):
/// "Companyy", "Limitd", "Corporatoin". Shorter forms are too close to real
/// name tokens ("sal", "ag") to be matched loosely.
const LEGAL_FORM_TYPO_MINIMUM_LENGTH: usize = 5;

/// Spellings of "Abd" (servant of) that precede the rest of a theophoric
/// name: "Abd al Rahman", "Abdul Rahman", "Abdurrahman" all become "abdrahman".
const ABD_FORMS: &[&str] = &["abdul", "abdel", "abdal", "abdol", "abdoul", "abdur", "abdar", "abdil", "abdu", "abd"];
/// Assimilated forms of the article after "Abd" ("Abd ar Rahman").
const ARTICLES: &[&str] = &["al", "el", "ul", "ar", "ur", "er", "ad", "ud", "as", "us", "an", "un", "ash", "at", "az"];

/// Lowercases, strips diacritics and punctuation, drops honorifics,
/// particles and legal forms, merges "Abd al X" forms, and returns the
/// tokens in their original order.
pub fn normalize_name(name: &str) -> Vec<String> {
    normalize_name_counted(name).0
}

/// [`normalize_name`] and the number of parts the name was written with
/// (before titles, particles and legal forms were dropped and "Abd al X"
/// merged): "Chiheb Ben" is one token written as two parts.
pub(crate) fn normalize_name_counted(name: &str) -> (Vec<String>, usize) {
    let folded = fold(name);
    let raw: Vec<&str> = folded.split_whitespace().collect();
    let merged = merge_abd(&raw);
    let kept: Vec<String> = merged.iter().filter(|token| !is_optional(token)).cloned().collect();
    let mut tokens = if kept.is_empty() { merged } else { kept };
    tokens.truncate(MAX_TOKENS_PER_NAME);
    (tokens, raw.len())
}

fn is_optional(token: &str) -> bool {
    HONORIFICS.contains(&token) || PARTICLES.contains(&token) || is_legal_form(token)
}

/// A legal form, exactly or (for long words) with one typo. Written by hand
/// over `strsim::osa_distance` because the list is small and fixed.
pub(crate) fn is_legal_form(token: &str) -> bool {
    if LEGAL_FORMS.contains(&token) {
        return true;
    }
    let length = token.chars().count();
    if length < LEGAL_FORM_TYPO_MINIMUM_LENGTH {
        return false;
    }
    LEGAL_FORMS.iter().any(|form| {
        let form_length = form.len();
        form_length >= LEGAL_FORM_TYPO_MINIMUM_LENGTH
            && form_length.abs_diff(length) <= 1
            && strsim::osa_distance(token, form) <= 1
    })
}

/// Case folding, NFKD with combining marks removed, apostrophes and periods
/// removed (so "S.A." is "sa" and "Mu'ammar" is "muammar"), other
/// punctuation to spaces.
fn fold(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    for character in name.chars().take(MAX_NAME_CHARS).nfkd() {
        if is_combining_mark(character) {
            continue;
        }
        match character {
            '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{b4}' | '\u{2bb}' | '\u{2bc}' | '.' => {}
            'ß' => folded.push_str("ss"),
            'æ' | 'Æ' => folded.push_str("ae"),
            'œ' | 'Œ' => folded.push_str("oe"),
            'ø' | 'Ø' => folded.push('o'),
            'đ' | 'Đ' => folded.push('d'),
            'ł' | 'Ł' => folded.push('l'),
            'ı' => folded.push('i'),
            'þ' | 'Þ' => folded.push_str("th"),
            other if other.is_alphanumeric() => folded.extend(other.to_lowercase()),
            _ => folded.push(' '),
        }
    }
    folded
}

fn merge_abd(raw: &[&str]) -> Vec<String> {
    let mut tokens = Vec::with_capacity(raw.len());
    let mut position = 0;
    while position < raw.len() {
        let token = raw[position];
        position += 1;
        if ABD_FORMS.contains(&token) {
            if raw.get(position).is_some_and(|next| ARTICLES.contains(next)) {
                position += 1;
            }
            if let Some(next) = raw.get(position) {
                tokens.push(format!("abd{next}"));
                position += 1;
                continue;
            }
        }
        tokens.push(joined_abd(token).unwrap_or_else(|| token.to_string()));
    }
    tokens
}

/// "abdulrahman" -> "abdrahman", keeping at least three letters after "abd".
fn joined_abd(token: &str) -> Option<String> {
    ABD_FORMS.iter().find_map(|form| {
        let rest = token.strip_prefix(form)?;
        (*form != "abd" && rest.chars().count() >= 3).then(|| format!("abd{rest}"))
    })
}

/// The article written joined to a name ("alzawahiri"), for a second
/// comparison without it.
pub(crate) fn without_article(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("al").or_else(|| token.strip_prefix("el"))?;
    (rest.chars().count() >= 4).then_some(rest)
}

/// Transliteration-blind key of one normalized token: digraphs folded
/// (ph/f, kh/k, q/k, c/k, w/v, z/s, ...), double letters collapsed, and
/// vowels dropped after the first letter, with a leading vowel coded "a".
/// mohammed, muhammad and mohamed all give "mhmd"; yusuf and yousef "ysf".
pub fn phonetic_key(token: &str) -> String {
    let mut spelled = token.to_string();
    for (from, to) in DIGRAPHS {
        if spelled.contains(from) {
            spelled = spelled.replace(from, to);
        }
    }
    let mut key = String::with_capacity(spelled.len());
    let mut previous: Option<char> = None;
    for (position, character) in spelled.chars().enumerate() {
        let vowel = is_vowel(character) || (character == 'y' && position > 0);
        let coded = match (position, vowel) {
            (0, true) => Some('a'),
            (_, true) => None,
            _ => Some(character),
        };
        if let Some(coded) = coded {
            if previous != Some(coded) {
                key.push(coded);
            }
        }
        previous = coded.or(previous);
    }
    key
}

const DIGRAPHS: &[(&str, &str)] = &[
    ("sch", "s"),
    ("tch", "c"),
    ("dzh", "j"),
    ("dj", "j"),
    ("zh", "j"),
    ("kh", "k"),
    ("gh", "g"),
    ("ph", "f"),
    ("th", "t"),
    ("dh", "d"),
    ("sh", "s"),
    ("ch", "c"),
    ("ck", "k"),
    ("q", "k"),
    ("c", "k"),
    ("w", "v"),
    ("x", "ks"),
    ("z", "s"),
];

fn is_vowel(character: char) -> bool {
    matches!(character, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// OFAC writes individuals as "SURNAME, Given Names"; this restores the
/// natural order so that first and last positions mean the same on both
/// sides of a comparison.
pub(crate) fn natural_order(name: &str) -> String {
    match name.split_once(',') {
        Some((surname, given)) if !given.contains(',') && !given.trim().is_empty() => {
            format!("{} {}", given.trim(), surname.trim())
        }
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(name: &str) -> String {
        normalize_name(name).join(" ")
    }

    #[test]
    fn folds_case_diacritics_and_punctuation() {
        assert_eq!(normalized("José  MARÍA-Gómez"), "jose maria gomez");
        assert_eq!(normalized("Müller, Jürgen"), "muller jurgen");
        assert_eq!(normalized("Straße Łódź"), "strasse lodz");
        assert_eq!(normalized("Mu'ammar QADHAFI"), "muammar qadhafi");
    }

    #[test]
    fn drops_titles_particles_and_legal_forms() {
        assert_eq!(normalized("Dr. Sheikh Ahmed bin Ali al-Hassan"), "ahmed ali hassan");
        assert_eq!(normalized("BANCO NACIONAL DE CUBA"), "banco nacional cuba");
        assert_eq!(normalized("CIMEX, S.A."), "cimex");
        assert_eq!(normalized("ANGLO-CARIBBEAN CO., LTD."), "anglo caribbean");
        assert_eq!(normalized("General"), "general");
    }

    #[test]
    fn legal_forms_across_languages_are_dropped() {
        assert_eq!(normalized("Rosoboronexport OAO"), "rosoboronexport");
        assert_eq!(normalized("Sberbank Rossii PJSC"), "sberbank rossii");
        assert_eq!(normalized("Muster GmbH"), "muster");
        assert_eq!(normalized("Banque Exemple S.A.L."), "banque exemple");
        assert_eq!(normalized("Exemplo Comercio Ltda"), "exemplo comercio");
        assert_eq!(normalized("Contoh Sdn. Bhd."), "contoh");
    }

    #[test]
    fn misspelt_legal_forms_are_dropped() {
        assert_eq!(normalized("Atlas Trading Companyy"), "atlas trading");
        assert_eq!(normalized("Atlas Trading Limitd"), "atlas trading");
        assert_eq!(normalized("Atlas Trading Corporatoin"), "atlas trading");
        assert_eq!(normalized("Atlas Trading Compny Limted"), "atlas trading");
        assert_eq!(normalized("Atlas Incorporatd"), "atlas");
        // Short forms are exact only ("lts" stays), and two edits are a different word.
        assert_eq!(normalized("Atlas Lts Copany"), "atlas lts");
        assert_eq!(normalized("Atlas Compnayy"), "atlas compnayy");
        assert!(!is_legal_form("limits"));
        assert!(is_legal_form("limitde"));
    }

    #[test]
    fn a_name_of_legal_forms_only_is_kept() {
        assert_eq!(normalized("Company Limited"), "company limited");
    }

    #[test]
    fn merges_abd_particles() {
        for spelling in
            ["Abd al Rahman", "Abdal Rahman", "Abdul Rahman", "Abd-al-Rahman", "ABDULRAHMAN", "Abdel Rahman"]
        {
            assert_eq!(normalized(spelling), "abdrahman", "{spelling}");
        }
        assert_eq!(phonetic_key(&normalized("Abdurrahman")), phonetic_key("abdrahman"));
    }

    #[test]
    fn transliteration_variants_share_a_key() {
        let same = |a: &str, b: &str| assert_eq!(phonetic_key(a), phonetic_key(b), "{a} / {b}");
        same("mohammed", "muhammad");
        same("mohamed", "muhammad");
        same("yusuf", "yousef");
        same("qaddafi", "kadafi");
        same("philippe", "filipe");
        same("khalid", "kalid");
        same("ivanov", "iwanow");
        same("osama", "usama");
        assert_ne!(phonetic_key("ahmed"), phonetic_key("mahmoud"));
    }

    #[test]
    fn article_can_be_split_off() {
        assert_eq!(without_article("alzawahiri"), Some("zawahiri"));
        assert_eq!(without_article("ali"), None);
    }

    #[test]
    fn restores_natural_order() {
        assert_eq!(natural_order("CIFUENTES VILLA, Jorge Milton"), "Jorge Milton CIFUENTES VILLA");
        assert_eq!(natural_order("ACME"), "ACME");
    }
}
