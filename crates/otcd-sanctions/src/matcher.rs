//! Token-set name scoring.
//!
//! Each query token is paired with at most one candidate token, greedily by
//! decreasing similarity (Jaro-Winkler on the normalized spelling, raised to
//! a floor when the phonetic keys agree). The score is the length-weighted
//! mean similarity of the pairs, with unpaired tokens on either side added to
//! the denominator: fully for a first or last name, lightly for a middle name
//! (clients often omit middle names, lists often include them).

use strsim::jaro_winkler;

use crate::normalize::{normalize_name, phonetic_key, without_article};

/// Pairs below this similarity are different tokens, not variants.
pub(crate) const PAIR_MINIMUM: f64 = 0.80;
/// Similarity of two different spellings with the same phonetic key.
const SAME_KEY_SIMILARITY: f64 = 0.94;
/// Keys shorter than this ("al", "l") say too little to be trusted.
const SAME_KEY_MINIMUM_LENGTH: usize = 3;
/// Unpaired middle tokens weigh this fraction of their length.
const MIDDLE_TOKEN_PENALTY: f64 = 0.15;
/// Unpaired candidate tokens after a query that covers the candidate's
/// leading parts in order weigh this fraction of their length: two left
/// out of four put an exact query in the review band, not the hit band.
const LEADING_PARTS_REST_PENALTY: f64 = 0.10;
/// A query that is only the leading parts of a listed name scores at most
/// this, below the default hit threshold: a partial name is reviewed, never
/// blocked on its own.
const LEADING_PARTS_CAP: f64 = 0.90;
/// Stretches Jaro-Winkler's generous scale: a pair at 0.9 counts as 0.85.
const SIMILARITY_STRETCH: f64 = 1.5;

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub text: String,
    pub key: String,
    pub without_article: Option<String>,
    pub weight: f64,
}

impl Token {
    fn new(text: String) -> Token {
        let key = phonetic_key(&text);
        let without_article = without_article(&text).map(str::to_string);
        let weight = text.chars().count().clamp(2, 10) as f64;
        Token { text, key, without_article, weight }
    }
}

pub(crate) fn tokenize(name: &str) -> Vec<Token> {
    normalize_name(name).into_iter().map(Token::new).collect()
}

pub(crate) fn token_similarity(query: &Token, candidate: &Token) -> f64 {
    if query.text == candidate.text {
        return 1.0;
    }
    let mut similarity = jaro_winkler(&query.text, &candidate.text);
    if query.key == candidate.key && query.key.len() >= SAME_KEY_MINIMUM_LENGTH {
        similarity = similarity.max(SAME_KEY_SIMILARITY);
    }
    if let Some(stripped) = &query.without_article {
        similarity = similarity.max(jaro_winkler(stripped, &candidate.text));
    }
    if let Some(stripped) = &candidate.without_article {
        similarity = similarity.max(jaro_winkler(&query.text, stripped));
    }
    similarity
}

fn stretched(similarity: f64) -> f64 {
    (1.0 - (1.0 - similarity) * SIMILARITY_STRETCH).max(0.0)
}

/// Score in 0..=1 of a query name against one listed name.
#[cfg(test)]
pub(crate) fn name_score(query: &[Token], candidate: &[Token]) -> f64 {
    let candidate: Vec<&Token> = candidate.iter().collect();
    name_score_by(query, &candidate, |query_position, candidate_position| {
        token_similarity(&query[query_position], candidate[candidate_position])
    })
    .score
}

/// A name score and what it rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    pub score: f64,
    /// Number of query tokens paired with a candidate token.
    pub paired_count: usize,
    /// The candidate position of the pair when there is exactly one.
    pub single_pair_candidate: Option<usize>,
    /// The query is the leading parts of the candidate (see [`covers_leading_parts`]).
    pub leading: bool,
    /// Bit i set: candidate token i is paired (positions past 31 are not recorded).
    pub candidate_paired_mask: u32,
}

const UNSCORED: Scored =
    Scored { score: 0.0, paired_count: 0, single_pair_candidate: None, leading: false, candidate_paired_mask: 0 };

/// [`name_score`] with the token similarities supplied (the index looks
/// them up instead of recomputing them for every candidate name).
pub(crate) fn name_score_by(query: &[Token], candidate: &[&Token], similarity: impl Fn(usize, usize) -> f64) -> Scored {
    if query.is_empty() || candidate.is_empty() {
        return UNSCORED;
    }
    let mut pairs = Vec::with_capacity(query.len() * candidate.len());
    for query_position in 0..query.len() {
        for candidate_position in 0..candidate.len() {
            let similarity = similarity(query_position, candidate_position);
            if similarity >= PAIR_MINIMUM {
                pairs.push((similarity, query_position, candidate_position));
            }
        }
    }
    pairs.sort_by(|left, right| right.0.total_cmp(&left.0));
    // Candidate position paired with each query position.
    let mut query_paired: Vec<Option<usize>> = vec![None; query.len()];
    let mut candidate_paired = vec![false; candidate.len()];
    let (mut matched, mut total) = (0.0, 0.0);
    for (similarity, query_position, candidate_position) in pairs {
        if query_paired[query_position].is_some() || candidate_paired[candidate_position] {
            continue;
        }
        query_paired[query_position] = Some(candidate_position);
        candidate_paired[candidate_position] = true;
        let weight = (query[query_position].weight + candidate[candidate_position].weight) / 2.0;
        matched += stretched(similarity) * weight;
        total += weight;
    }
    let query_weights = query.iter().map(|token| token.weight);
    let candidate_weights = candidate.iter().map(|token| token.weight);
    total += unpaired_weight(query_weights, query_paired.iter().map(Option::is_some), false);
    // Only a query that stops before the candidate's last part is "leading
    // parts"; one that reaches it is a dropped-middle-name case.
    let leading = covers_leading_parts(&query_paired) && candidate_paired.last() == Some(&false);
    total += unpaired_weight(candidate_weights, candidate_paired.iter().copied(), leading);
    let paired_count = query_paired.iter().filter(|paired| paired.is_some()).count();
    let single_pair_candidate = if paired_count == 1 { query_paired.iter().flatten().next().copied() } else { None };
    let mut score = if total <= 0.0 { 0.0 } else { (matched / total).clamp(0.0, 1.0) };
    if leading {
        score = score.min(LEADING_PARTS_CAP);
    }
    let candidate_paired_mask = candidate_paired
        .iter()
        .take(32)
        .enumerate()
        .filter(|(_, paired)| **paired)
        .fold(0u32, |mask, (position, _)| mask | (1 << position));
    Scored { score, paired_count, single_pair_candidate, leading, candidate_paired_mask }
}

/// True when at least two query tokens are all paired, in the candidate's
/// order, starting with its first token: the query is the leading parts of
/// a longer listed name ("Qusay Saddam" for "Qusay Saddam Hussein
/// al-Tikriti"), so the candidate's remaining parts are as optional as
/// middle names.
fn covers_leading_parts(query_paired: &[Option<usize>]) -> bool {
    if query_paired.len() < 2 || query_paired.first() != Some(&Some(0)) {
        return false;
    }
    let mut previous: Option<usize> = None;
    for paired in query_paired {
        match (paired, previous) {
            (None, _) => return false,
            (Some(position), Some(before)) if *position <= before => return false,
            (Some(position), _) => previous = Some(*position),
        }
    }
    true
}

/// Weight of unpaired tokens: middle ones count lightly, but only when the
/// side kept at least two paired tokens (a first and a last name); with
/// `all_optional` (leading parts covered) every unpaired token is light.
fn unpaired_weight(
    weights: impl Iterator<Item = f64>,
    paired: impl ExactSizeIterator<Item = bool> + Clone,
    all_optional: bool,
) -> f64 {
    let paired_count = paired.clone().filter(|paired| *paired).count();
    let last = paired.len().saturating_sub(1);
    weights
        .zip(paired)
        .enumerate()
        .filter(|(_, (_, paired))| !*paired)
        .map(|(position, (weight, _))| {
            let middle = position != 0 && position != last && paired_count >= 2;
            if all_optional {
                weight * LEADING_PARTS_REST_PENALTY
            } else if middle {
                weight * MIDDLE_TOKEN_PENALTY
            } else {
                weight
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(query: &str, candidate: &str) -> f64 {
        name_score(&tokenize(query), &tokenize(candidate))
    }

    #[test]
    fn identical_names_score_one() {
        assert_eq!(score("Jorge Milton Cifuentes Villa", "jorge milton cifuentes villa"), 1.0);
    }

    #[test]
    fn token_order_does_not_matter() {
        assert_eq!(score("Villa Cifuentes Jorge", "Jorge Cifuentes Villa"), 1.0);
    }

    #[test]
    fn transliterations_stay_high() {
        assert!(score("Muhammad Yusuf Qadir", "Mohammed Yousef Kadir") > 0.9);
        assert!(score("Abdul Rahman Zawahiri", "Abd al-Rahman al-Zawahiri") > 0.95);
        assert!(score("Abdurrahman Alzawahiri", "Abd al-Rahman al-Zawahiri") > 0.9);
    }

    #[test]
    fn dropped_middle_name_is_mild() {
        let dropped = score("Jorge Villa", "Jorge Milton Villa");
        assert!(dropped > 0.85 && dropped < 0.95, "{dropped}");
        assert!(score("Jorge", "Jorge Milton Villa") < 0.6);
    }

    #[test]
    fn leading_parts_in_order_reach_review() {
        let leading = score("Qusay Saddam", "Qusay Saddam Hussein al-Tikriti");
        assert!((0.85..=LEADING_PARTS_CAP).contains(&leading), "{leading}");
        // Two of three parts: capped in the review band, not a hit.
        assert_eq!(score("Ahmed Hassan", "Ahmed Hassan Tikriti"), LEADING_PARTS_CAP);
        // Out of order, or not starting at the first part: no bonus.
        assert!(score("Saddam Qusay", "Qusay Saddam Hussein al-Tikriti") < 0.85);
        assert!(score("Saddam Hussein", "Qusay Saddam Hussein al-Tikriti") < 0.85);
        // A single part is not "leading parts".
        assert!(score("Qusay", "Qusay Saddam Hussein al-Tikriti") < 0.6);
    }

    #[test]
    fn legal_form_typo_does_not_block_a_company() {
        let listed = "ATLAS AIR CONDITIONING COMPANY LIMITED";
        assert_eq!(score("Atlas Air Conditioning Companyy Limitd", listed), 1.0);
        assert_eq!(score("Atlas Air Conditioning Corporatoin", listed), 1.0);
        assert_eq!(score("Atlas Air Conditioning", listed), 1.0);
    }

    #[test]
    fn different_names_score_low() {
        assert!(score("John Smith", "Jorge Milton Cifuentes Villa") < 0.3);
        assert!(score("Maria Garcia", "Mario Garcon") < 0.85);
        assert_eq!(score("", "Jorge"), 0.0);
    }
}
