//! A labelled evaluation set built from the lists themselves (seeded and
//! deterministic): variants of listed names that must match their entry, and
//! common unlisted names that must not hit. Used by the regression test and
//! by `examples/evaluate.rs`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::lists::{Entry, EntryKind, ListId, SanctionsLists};
use crate::normalize::is_legal_form;
use crate::screener::{NameQuery, Screener, ScreeningStatus, Thresholds};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    Typo,
    Transposition,
    Reordered,
    DroppedMiddle,
    Transliteration,
    Alias,
    /// A listed company's name with one typo in its legal-form word (`Limitd`, `Companny`).
    LegalFormTypo,
    /// The first two parts of a listed person's name of three or more parts, in their natural order.
    LeadingParts,
    /// An unlisted common person name: must not hit.
    CommonName,
    /// An unlisted common company name: must not hit.
    CommonCompany,
}

pub const POSITIVE_VARIANTS: [Variant; 8] = [
    Variant::Typo,
    Variant::Transposition,
    Variant::Reordered,
    Variant::DroppedMiddle,
    Variant::Transliteration,
    Variant::Alias,
    Variant::LegalFormTypo,
    Variant::LeadingParts,
];

/// The unlisted kinds, reported apart.
pub const NEGATIVE_VARIANTS: [Variant; 2] = [Variant::CommonName, Variant::CommonCompany];

#[derive(Debug, Clone)]
pub struct LabelledQuery {
    pub name: String,
    pub variant: Variant,
    /// The entry the query must find; `None` for unlisted names.
    pub expected: Option<(ListId, String)>,
}

/// SplitMix64: small, seeded, good enough to sample.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next() % bound as u64) as usize
        }
    }
}

/// `positives` variant queries (spread over [`POSITIVE_VARIANTS`]) and up to
/// `negatives` common person names and as many common company names that are not listed names.
pub fn generate(lists: &SanctionsLists, seed: u64, positives: usize, negatives: usize) -> Vec<LabelledQuery> {
    let mut random = Random(seed);
    let mut queries = positive_queries(lists, &mut random, positives);
    queries.extend(negative_queries(lists, &mut random, negatives));
    queries.extend(negative_companies(lists, &mut random, negatives));
    queries
}

/// A listed name as written, in natural order (OFAC writes individuals `SURNAME, Given Names`).
fn natural_text(entry: &Entry, name_number: usize) -> Option<String> {
    let text = if name_number == 0 { &entry.name } else { &entry.aliases.get(name_number - 1)?.name };
    let reorder = entry.list == ListId::OfacSdn && entry.kind == EntryKind::Individual;
    Some(match text.split_once(',') {
        Some((surname, given)) if reorder => format!("{} {}", given.trim(), surname.trim()),
        _ => text.clone(),
    })
}

/// The listed text with one typo in a legal-form word of five letters or more.
fn legal_form_typo(text: &str, random: &mut Random) -> Option<String> {
    let mut words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    let forms: Vec<usize> = (0..words.len())
        .filter(|at| {
            let word = words[*at].to_lowercase();
            word.len() >= 5 && word.chars().all(|letter| letter.is_ascii_alphabetic()) && is_legal_form(&word)
        })
        .collect();
    let chosen = *forms.get(random.below(forms.len()))?;
    words[chosen] = typo(&words[chosen].to_lowercase(), random)?.to_uppercase();
    Some(words.join(" "))
}

/// The first two parts of a name of three or more parts.
fn leading_parts(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().filter(|word| word.chars().count() >= 2).collect();
    (words.len() >= 3).then(|| words[..2].join(" "))
}

fn positive_queries(lists: &SanctionsLists, random: &mut Random, count: usize) -> Vec<LabelledQuery> {
    let names = lists.index.names();
    let mut queries = Vec::with_capacity(count);
    let mut attempts = 0;
    while queries.len() < count && attempts < count * 50 && !names.is_empty() {
        attempts += 1;
        let name = &names[random.below(names.len())];
        let Some(entry) = lists.entry_at(name.entry) else { continue };
        let tokens: Vec<String> = lists.index.name_tokens(name).map(|token| token.text.clone()).collect();
        let usable = (2..=5).contains(&tokens.len())
            && !name.weak
            && matches!(entry.kind, EntryKind::Individual | EntryKind::Entity);
        if !usable {
            continue;
        }
        let variant = POSITIVE_VARIANTS[queries.len() % POSITIVE_VARIANTS.len()];
        let text = match variant {
            Variant::Alias => {
                entry.aliases.get(random.below(entry.aliases.len().max(1))).map(|alias| alias.name.clone())
            }
            Variant::LegalFormTypo if entry.kind == EntryKind::Entity => {
                natural_text(entry, name.name_number).and_then(|text| legal_form_typo(&text, random))
            }
            Variant::LeadingParts if entry.kind == EntryKind::Individual => {
                natural_text(entry, name.name_number).and_then(|text| leading_parts(&text))
            }
            Variant::LegalFormTypo | Variant::LeadingParts => None,
            _ => mutate(&tokens, variant, random),
        };
        if let Some(text) = text {
            queries.push(LabelledQuery { name: text, variant, expected: Some((entry.list, entry.id.clone())) });
        }
    }
    queries
}

fn mutate(tokens: &[String], variant: Variant, random: &mut Random) -> Option<String> {
    let mut tokens = tokens.to_vec();
    match variant {
        Variant::Typo | Variant::Transposition | Variant::Transliteration => {
            let long: Vec<usize> = (0..tokens.len()).filter(|at| tokens[*at].chars().count() >= 4).collect();
            let chosen = *long.get(random.below(long.len()))?;
            let changed = match variant {
                Variant::Typo => typo(&tokens[chosen], random),
                Variant::Transposition => transposition(&tokens[chosen], random),
                _ => transliteration(&tokens, random).map(|(at, text)| {
                    tokens[at] = text;
                    tokens[chosen].clone()
                }),
            }?;
            if variant != Variant::Transliteration {
                tokens[chosen] = changed;
            }
        }
        Variant::Reordered => tokens.rotate_right(1),
        Variant::DroppedMiddle => {
            if tokens.len() < 3 {
                return None;
            }
            tokens.remove(1 + random.below(tokens.len() - 2));
        }
        _ => return None,
    }
    Some(tokens.join(" "))
}

fn typo(token: &str, random: &mut Random) -> Option<String> {
    let mut characters: Vec<char> = token.chars().collect();
    let at = random.below(characters.len());
    let letters: Vec<char> = ('a'..='z').filter(|letter| Some(letter) != characters.get(at)).collect();
    characters[at] = *letters.get(random.below(letters.len()))?;
    Some(characters.into_iter().collect())
}

fn transposition(token: &str, random: &mut Random) -> Option<String> {
    let mut characters: Vec<char> = token.chars().collect();
    let at = random.below(characters.len().checked_sub(1)?);
    if characters[at] == characters[at + 1] {
        return None;
    }
    characters.swap(at, at + 1);
    Some(characters.into_iter().collect())
}

/// Spelling changes that transliterations produce.
const RESPELLINGS: &[(&str, &str)] = &[
    ("mohammed", "muhammad"),
    ("muhammad", "mohamed"),
    ("mohammad", "muhammed"),
    ("ahmed", "ahmad"),
    ("ahmad", "ahmed"),
    ("yusuf", "yousef"),
    ("hussein", "husain"),
    ("ou", "u"),
    ("u", "ou"),
    ("ph", "f"),
    ("f", "ph"),
    ("q", "k"),
    ("k", "q"),
    ("y", "i"),
    ("ee", "i"),
    ("v", "w"),
    ("w", "v"),
    ("c", "k"),
    ("z", "s"),
    ("dj", "j"),
    ("j", "dj"),
    ("ll", "l"),
    ("ss", "s"),
    ("mm", "m"),
    ("s", "ss"),
    ("e", "a"),
    ("o", "u"),
    ("i", "e"),
];

fn transliteration(tokens: &[String], random: &mut Random) -> Option<(usize, String)> {
    let start = random.below(RESPELLINGS.len());
    for offset in 0..RESPELLINGS.len() {
        let (from, to) = RESPELLINGS[(start + offset) % RESPELLINGS.len()];
        // Never respell the first letter's vowel class away: keep position 0.
        let found = tokens.iter().enumerate().find_map(|(at, token)| {
            let position = token.get(1..)?.find(from)? + 1;
            Some((at, position))
        });
        if let Some((at, position)) = found {
            let token = &tokens[at];
            let respelled = format!("{}{}{}", &token[..position], to, &token[position + from.len()..]);
            return Some((at, respelled));
        }
    }
    None
}

const FIRST_NAMES: &[&str] = &[
    "james",
    "john",
    "robert",
    "michael",
    "william",
    "david",
    "mary",
    "patricia",
    "jennifer",
    "linda",
    "elizabeth",
    "susan",
    "jose",
    "juan",
    "carlos",
    "luis",
    "maria",
    "carmen",
    "ana",
    "sofia",
    "lucia",
    "pedro",
    "mohammed",
    "ahmed",
    "ali",
    "omar",
    "fatima",
    "aisha",
    "hassan",
    "youssef",
    "leila",
    "karim",
    "ivan",
    "dmitry",
    "sergei",
    "olga",
    "natalia",
    "anna",
    "alexei",
    "wei",
    "li",
    "jing",
    "min",
    "hui",
    "yan",
    "raj",
    "priya",
    "amit",
    "sunita",
    "rahul",
    "anita",
    "hans",
    "klaus",
    "petra",
    "jurgen",
    "pierre",
    "marie",
    "jean",
    "claire",
    "kwame",
    "amara",
    "chinedu",
    "ngozi",
    "hiroshi",
    "yuki",
    "kenji",
    "sakura",
    "minh",
    "thanh",
    "emre",
    "ayse",
];

const SURNAMES: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "miller",
    "davis",
    "taylor",
    "wilson",
    "garcia",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "perez",
    "sanchez",
    "khan",
    "hussain",
    "rahman",
    "haddad",
    "mansour",
    "nasser",
    "saleh",
    "ibrahim",
    "ivanov",
    "petrov",
    "smirnov",
    "kuznetsov",
    "popova",
    "wang",
    "zhang",
    "liu",
    "chen",
    "yang",
    "huang",
    "sharma",
    "patel",
    "singh",
    "gupta",
    "kumar",
    "reddy",
    "muller",
    "schmidt",
    "schneider",
    "fischer",
    "martin",
    "bernard",
    "dubois",
    "moreau",
    "mensah",
    "okafor",
    "adeyemi",
    "nakamura",
    "tanaka",
    "suzuki",
    "nguyen",
    "tran",
    "yilmaz",
    "kaya",
    "demir",
    "silva",
    "santos",
    "costa",
];

fn negative_queries(lists: &SanctionsLists, random: &mut Random, count: usize) -> Vec<LabelledQuery> {
    let candidates =
        FIRST_NAMES.iter().flat_map(|first| SURNAMES.iter().map(move |last| format!("{first} {last}"))).collect();
    unlisted_sample(lists, random, candidates, count, Variant::CommonName)
}

/// A seeded sample of `count` of the candidates that are not listed names (as normalized token sets).
fn unlisted_sample(
    lists: &SanctionsLists,
    random: &mut Random,
    candidates: Vec<String>,
    count: usize,
    variant: Variant,
) -> Vec<LabelledQuery> {
    let listed: HashSet<Vec<String>> = lists
        .index
        .names()
        .iter()
        .map(|name| sorted_texts(lists.index.name_tokens(name).map(|token| token.text.clone())))
        .collect();
    let mut candidates: Vec<String> = candidates
        .into_iter()
        .filter(|name| !listed.contains(&sorted_texts(crate::normalize::normalize_name(name).into_iter())))
        .collect();
    for at in (1..candidates.len()).rev() {
        candidates.swap(at, random.below(at + 1));
    }
    candidates.truncate(count);
    candidates.into_iter().map(|name| LabelledQuery { name, variant, expected: None }).collect()
}

/// Common parts of company names in several languages and naming cultures.
const COMPANY_STEMS: &[&str] = &[
    "golden",
    "global",
    "united",
    "pacific",
    "atlantic",
    "northern",
    "sunrise",
    "silver",
    "green valley",
    "blue ocean",
    "al noor",
    "al amal",
    "al baraka",
    "al salam",
    "dar al",
    "nile",
    "gulf star",
    "zamzam",
    "crescent",
    "oasis",
    "sibir",
    "volga",
    "ural",
    "baltika",
    "rosstroi",
    "nord",
    "tekhno",
    "avtodor",
    "stroymontazh",
    "energoprom",
    "huaxin",
    "zhongtai",
    "jinlong",
    "hengda",
    "xinhua",
    "dragon",
    "great wall",
    "hong kong star",
    "sino bright",
    "fortune",
    "smith",
    "johnson",
    "miller",
    "garcia",
    "muller",
    "schmidt",
    "rossi",
    "dubois",
    "kowalski",
    "nguyen",
];

const COMPANY_SECTORS: &[&str] = &[
    "trading",
    "logistics",
    "consulting",
    "textiles",
    "foods",
    "construction",
    "energy",
    "technologies",
    "pharma",
    "holdings",
    "properties",
    "engineering",
    "electronics",
    "motors",
    "garments",
    "investments",
    "software",
    "furniture",
    "agro",
    "medical",
    "plastics",
    "travel",
    "media",
    "security",
];

const COMPANY_FORMS: &[&str] =
    &["ltd", "limited", "llc", "inc", "gmbh", "sa", "ooo", "co ltd", "plc", "fze", "ag", "srl", "jsc", "pte ltd"];

/// Up to `count` common company names (stem, sector, legal form) that are not listed names.
fn negative_companies(lists: &SanctionsLists, random: &mut Random, count: usize) -> Vec<LabelledQuery> {
    let candidates = COMPANY_STEMS
        .iter()
        .flat_map(|stem| COMPANY_SECTORS.iter().map(move |sector| format!("{stem} {sector}")))
        .enumerate()
        .map(|(at, name)| format!("{name} {}", COMPANY_FORMS[at % COMPANY_FORMS.len()]))
        .collect();
    unlisted_sample(lists, random, candidates, count, Variant::CommonCompany)
}

fn sorted_texts(texts: impl Iterator<Item = String>) -> Vec<String> {
    let mut texts: Vec<String> = texts.collect();
    texts.sort();
    texts
}

#[derive(Debug, Clone, Default)]
pub struct VariantFigures {
    pub count: usize,
    pub found_at_review: usize,
    pub found_at_hit: usize,
}

/// How often unlisted names of one kind raise an alert.
#[derive(Debug, Clone, Default)]
pub struct NegativeFigures {
    pub count: usize,
    /// At or above review (an alert: the client is held).
    pub reviews: usize,
    /// At or above hit (blocked).
    pub hits: usize,
}

#[derive(Debug, Clone)]
pub struct EvaluationReport {
    pub per_negative: Vec<(Variant, NegativeFigures)>,
    pub thresholds: Thresholds,
    pub per_variant: Vec<(Variant, VariantFigures)>,
    pub positives: usize,
    pub recall_at_review: f64,
    pub recall_at_hit: f64,
    pub negatives: usize,
    pub false_review_rate: f64,
    pub false_hit_rate: f64,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
}

/// Runs every query through `screen_name` and classifies with the
/// screener's thresholds. A positive counts as found at a threshold when its
/// expected entry is among the matches at or above it.
pub fn evaluate(screener: &Screener, queries: &[LabelledQuery]) -> EvaluationReport {
    let thresholds = screener.thresholds();
    let mut per_variant: Vec<(Variant, VariantFigures)> =
        POSITIVE_VARIANTS.iter().map(|variant| (*variant, VariantFigures::default())).collect();
    let (mut false_reviews, mut false_hits, mut negatives) = (0, 0, 0);
    let mut per_negative: Vec<(Variant, NegativeFigures)> =
        NEGATIVE_VARIANTS.iter().map(|variant| (*variant, NegativeFigures::default())).collect();
    let mut latencies = Vec::with_capacity(queries.len());
    for query in queries {
        let started = Instant::now();
        let matches = screener.screen_name(&NameQuery { name: &query.name, ..NameQuery::default() }, 20);
        latencies.push(started.elapsed());
        match &query.expected {
            Some((list, id)) => {
                let score = matches
                    .iter()
                    .find(|found| found.list == *list && &found.entry_id == id)
                    .map_or(0.0, |found| found.score);
                if let Some((_, figures)) = per_variant.iter_mut().find(|(variant, _)| *variant == query.variant) {
                    figures.count += 1;
                    figures.found_at_review += usize::from(score >= thresholds.review);
                    figures.found_at_hit += usize::from(score >= thresholds.hit);
                }
            }
            None => {
                negatives += 1;
                let status = classify(matches.first().map_or(0.0, |found| found.score), thresholds);
                false_reviews += usize::from(status != ScreeningStatus::Clear);
                false_hits += usize::from(status == ScreeningStatus::Hit);
                if let Some((_, figures)) = per_negative.iter_mut().find(|(variant, _)| *variant == query.variant) {
                    figures.count += 1;
                    figures.reviews += usize::from(status != ScreeningStatus::Clear);
                    figures.hits += usize::from(status == ScreeningStatus::Hit);
                }
            }
        }
    }
    latencies.sort();
    let positives: usize = per_variant.iter().map(|(_, figures)| figures.count).sum();
    let found =
        |pick: fn(&VariantFigures) -> usize| per_variant.iter().map(|(_, figures)| pick(figures)).sum::<usize>();
    EvaluationReport {
        thresholds,
        positives,
        recall_at_review: ratio(found(|figures| figures.found_at_review), positives),
        recall_at_hit: ratio(found(|figures| figures.found_at_hit), positives),
        negatives,
        false_review_rate: ratio(false_reviews, negatives),
        false_hit_rate: ratio(false_hits, negatives),
        latency_p50: percentile(&latencies, 0.50),
        latency_p99: percentile(&latencies, 0.99),
        per_variant,
        per_negative,
    }
}

fn classify(score: f64, thresholds: Thresholds) -> ScreeningStatus {
    if score >= thresholds.hit {
        ScreeningStatus::Hit
    } else if score >= thresholds.review {
        ScreeningStatus::Review
    } else {
        ScreeningStatus::Clear
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

impl EvaluationReport {
    /// A plain-text table for the example binary and test output.
    pub fn table(&self) -> String {
        let mut text = format!(
            "thresholds: hit {:.2}, review {:.2}\n{:<16} {:>6} {:>16} {:>13}\n",
            self.thresholds.hit, self.thresholds.review, "variant", "count", "recall@review", "recall@hit"
        );
        for (variant, figures) in &self.per_variant {
            text.push_str(&format!(
                "{:<16} {:>6} {:>16.3} {:>13.3}\n",
                format!("{variant:?}"),
                figures.count,
                ratio(figures.found_at_review, figures.count),
                ratio(figures.found_at_hit, figures.count)
            ));
        }
        text.push_str(&format!(
            "{:<16} {:>6} {:>16.3} {:>13.3}\n",
            "all listed", self.positives, self.recall_at_review, self.recall_at_hit
        ));
        for (variant, figures) in &self.per_negative {
            text.push_str(&format!(
                "unlisted {:<14} {:>6}: false review rate {:.4}, false hit rate {:.4}, alerts per 1,000 names {:.1}\n",
                format!("{variant:?}"),
                figures.count,
                ratio(figures.reviews, figures.count),
                ratio(figures.hits, figures.count),
                1000.0 * ratio(figures.reviews, figures.count)
            ));
        }
        text.push_str(&format!(
            "unlisted names in all: {}, false review rate {:.4}, false hit rate {:.4}\n",
            self.negatives, self.false_review_rate, self.false_hit_rate
        ));
        text.push_str(&format!("screen_name latency p50 {:?}, p99 {:?}\n", self.latency_p50, self.latency_p99));
        text
    }
}
