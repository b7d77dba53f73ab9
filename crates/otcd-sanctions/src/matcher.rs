//! Token-set name scoring.
//!
//! Each query token is paired with at most one candidate token, greedily by
//! decreasing similarity (Jaro-Winkler on the normalized spelling, raised to
//! a floor when the phonetic keys agree). The score is the length-weighted
//! mean similarity of the pairs, with unpaired tokens on either side added to
//! the denominator: fully for a first or last name, lightly for a middle name
//! (clients often omit middle names, lists often include them) unless both
//! sides have unpaired tokens (then the names differ, they do not omit).
//! A query that is the leading parts of a listed individual's name, each
//! part spelled as listed, scores in the review band, never the hit band.
//! Pairs alike only by their phonetic key or as look-alikes are flagged
//! ([`Similarity::spelled_alike`]) so the index can refuse a match that rests
//! on them beside common tokens only.

use strsim::jaro_winkler;

use crate::normalize::{normalize_name, normalize_name_counted, phonetic_key, without_article};

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
const LEADING_PARTS_REST_PENALTY: f64 = 0.05;
/// A query that is only the leading parts of a listed name scores at most
/// this, below the default hit threshold: a partial name is reviewed, never
/// blocked on its own.
const LEADING_PARTS_CAP: f64 = 0.90;
/// Spellings at least this similar by Jaro-Winkler (or one typo apart, see
/// [`ONE_EDIT_MINIMUM_CHARS`]) are the same token; below it, a look-alike
/// ("maria" and "martin", "smith" and "smile"), which is evidence only beside
/// a token spelled alike that is not common.
pub(crate) const STRONG_PAIR_SIMILARITY: f64 = 0.90;
/// Shorter tokens one edit apart are as often different names ("juan" and
/// "jian", "lina" and "linda") as typos, so they keep their Jaro-Winkler.
const ONE_EDIT_MINIMUM_CHARS: usize = 5;
/// Each pair of a partial name (leading parts) must be at least this
/// similar: the same token or one typo in a long one, not only the same
/// phonetic key ("omar" and "amir" share "amr").
const LEADING_PAIR_MINIMUM: f64 = 0.95;
/// Stretches Jaro-Winkler's generous scale: a pair at 0.9 counts as 0.85.
const SIMILARITY_STRETCH: f64 = 1.5;

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub text: String,
    pub key: String,
    pub without_article: Option<String>,
    pub weight: f64,
    /// Letters (chars) in `text`.
    pub length: usize,
}

impl Token {
    fn new(text: String) -> Token {
        let key = phonetic_key(&text);
        let without_article = without_article(&text).map(str::to_string);
        let length = text.chars().count();
        let weight = length.clamp(2, 10) as f64;
        Token { text, key, without_article, weight, length }
    }
}

pub(crate) fn tokenize(name: &str) -> Vec<Token> {
    normalize_name(name).into_iter().map(Token::new).collect()
}

/// A screened name: its tokens, and whether it was written with more parts
/// than it has tokens (a title, particle or legal form dropped, "Abd al X"
/// merged), so that one token can still be the leading parts of a listed
/// name ("Chiheb Ben", "Abdul Rahman").
#[derive(Debug, Clone)]
pub(crate) struct QueryName {
    pub tokens: Vec<Token>,
    pub parts_dropped: bool,
}

impl QueryName {
    pub fn new(name: &str) -> QueryName {
        let (texts, part_count) = normalize_name_counted(name);
        let parts_dropped = part_count > texts.len();
        QueryName { tokens: texts.into_iter().map(Token::new).collect(), parts_dropped }
    }
}

/// How alike two tokens are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Similarity {
    /// 0..=1: Jaro-Winkler, raised for one typo and for the same phonetic key.
    pub value: f64,
    /// Spelled alike: the same token or one typo, by Jaro-Winkler at
    /// [`STRONG_PAIR_SIMILARITY`] or more or one edit apart. A pair alike
    /// only by its phonetic key ("hussain" and "hasan", "nasser" and
    /// "nazari") is a transliteration or a different name.
    pub spelled_alike: bool,
}

impl Similarity {
    pub const NONE: Similarity = Similarity { value: 0.0, spelled_alike: false };
}

pub(crate) fn token_similarity(query: &Token, candidate: &Token) -> Similarity {
    if query.text == candidate.text {
        return Similarity { value: 1.0, spelled_alike: true };
    }
    let mut spelled = jaro_winkler(&query.text, &candidate.text);
    if let Some(stripped) = &query.without_article {
        spelled = spelled.max(jaro_winkler(stripped, &candidate.text));
    }
    if let Some(stripped) = &candidate.without_article {
        spelled = spelled.max(jaro_winkler(&query.text, stripped));
    }
    if (PAIR_MINIMUM..STRONG_PAIR_SIMILARITY).contains(&spelled) && one_edit_apart(query, candidate) {
        spelled = STRONG_PAIR_SIMILARITY;
    }
    let mut value = spelled;
    if query.key == candidate.key && query.key.len() >= SAME_KEY_MINIMUM_LENGTH {
        value = value.max(SAME_KEY_SIMILARITY);
    }
    Similarity { value, spelled_alike: spelled >= STRONG_PAIR_SIMILARITY }
}

/// Both spellings have [`ONE_EDIT_MINIMUM_CHARS`] letters or more and are
/// one insertion, deletion, substitution or swap of neighbours apart: a
/// typo, whatever Jaro-Winkler makes of it ("haomony" and "harmony" score
/// 0.88 because the substitution looks like a transposition to it).
fn one_edit_apart(left: &Token, right: &Token) -> bool {
    left.length.min(right.length) >= ONE_EDIT_MINIMUM_CHARS
        && left.length.abs_diff(right.length) <= 1
        && strsim::osa_distance(&left.text, &right.text) <= 1
}

fn stretched(similarity: f64) -> f64 {
    (1.0 - (1.0 - similarity) * SIMILARITY_STRETCH).max(0.0)
}

/// Score in 0..=1 of a query name against one listed name.
#[cfg(test)]
pub(crate) fn name_score(query: &[Token], candidate: &[Token]) -> f64 {
    let candidate: Vec<&Token> = candidate.iter().collect();
    name_score_by(query, &candidate, false, true, |query_position, candidate_position| {
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
    /// Bit i set: candidate token i is paired at [`STRONG_PAIR_SIMILARITY`] or more.
    pub candidate_strong_mask: u32,
    /// Some pair is below [`STRONG_PAIR_SIMILARITY`]: a look-alike, not the same token.
    pub has_weak_pair: bool,
}

const UNSCORED: Scored = Scored {
    score: 0.0,
    paired_count: 0,
    single_pair_candidate: None,
    leading: false,
    candidate_strong_mask: 0,
    has_weak_pair: false,
};

/// [`name_score`] with the token similarities supplied (the index looks
/// them up instead of recomputing them for every candidate name).
///
/// `query_parts_dropped`: the query was written with more parts than it has
/// tokens (see [`QueryName`]); a single token is then leading parts too.
pub(crate) fn name_score_by(
    query: &[Token],
    candidate: &[&Token],
    query_parts_dropped: bool,
    partial_allowed: bool,
    similarity: impl Fn(usize, usize) -> Similarity,
) -> Scored {
    if query.is_empty() || candidate.is_empty() {
        return UNSCORED;
    }
    let mut pairs = Vec::with_capacity(query.len() * candidate.len());
    for query_position in 0..query.len() {
        for candidate_position in 0..candidate.len() {
            let similarity = similarity(query_position, candidate_position);
            if similarity.value >= PAIR_MINIMUM {
                pairs.push((similarity, query_position, candidate_position));
            }
        }
    }
    pairs.sort_by(|left, right| right.0.value.total_cmp(&left.0.value));
    // Candidate position paired with each query position.
    let mut query_paired: Vec<Option<usize>> = vec![None; query.len()];
    let mut candidate_paired = vec![false; candidate.len()];
    let (mut matched, mut total) = (0.0, 0.0);
    let (mut candidate_strong_mask, mut has_weak_pair, mut all_close) = (0u32, false, true);
    for (similarity, query_position, candidate_position) in pairs {
        if query_paired[query_position].is_some() || candidate_paired[candidate_position] {
            continue;
        }
        query_paired[query_position] = Some(candidate_position);
        candidate_paired[candidate_position] = true;
        all_close &= similarity.value >= LEADING_PAIR_MINIMUM && similarity.spelled_alike;
        if !similarity.spelled_alike {
            has_weak_pair = true;
        } else if candidate_position < 32 {
            candidate_strong_mask |= 1 << candidate_position;
        }
        let weight = (query[query_position].weight + candidate[candidate_position].weight) / 2.0;
        matched += stretched(similarity.value) * weight;
        total += weight;
    }
    let query_weights = query.iter().map(|token| token.weight);
    let candidate_weights = candidate.iter().map(|token| token.weight);
    let query_all_paired = query_paired.iter().all(Option::is_some);
    let candidate_all_paired = candidate_paired.iter().all(|paired| *paired);
    total += unpaired_weight(query_weights, query_paired.iter().map(Option::is_some), false, candidate_all_paired);
    // Only a query that stops before the candidate's last part is "leading
    // parts"; one that reaches it is a dropped-middle-name case.
    let leading = partial_allowed
        && covers_leading_parts(&query_paired, all_close, query_parts_dropped)
        && candidate_paired.last() == Some(&false);
    total += unpaired_weight(candidate_weights, candidate_paired.iter().copied(), leading, query_all_paired);
    let paired_count = query_paired.iter().filter(|paired| paired.is_some()).count();
    let single_pair_candidate = if paired_count == 1 { query_paired.iter().flatten().next().copied() } else { None };
    let mut score = if total <= 0.0 { 0.0 } else { (matched / total).clamp(0.0, 1.0) };
    if leading {
        score = score.min(LEADING_PARTS_CAP);
    }
    Scored { score, paired_count, single_pair_candidate, leading, candidate_strong_mask, has_weak_pair }
}

/// True when at least two query tokens are all paired, each with the
/// candidate token at its own position: the query is the leading parts of
/// a longer listed name ("Qusay Saddam" for "Qusay Saddam Hussein
/// al-Tikriti"), so the candidate's remaining parts are as optional as
/// middle names. Skipping a part ("Juan Martinez" for "Juan Jose Martinez
/// Vega") is not leading parts, and neither is a look-alike pair: a partial
/// name is evidence only when its parts are the listed ones.
///
/// One token written with a dropped title or particle after it ("Chiheb
/// Ben", "Abdul Rahman" merged to one token) counts as leading parts too.
fn covers_leading_parts(query_paired: &[Option<usize>], all_close: bool, parts_dropped: bool) -> bool {
    let minimum = if parts_dropped { 1 } else { 2 };
    all_close
        && query_paired.len() >= minimum
        && query_paired.iter().enumerate().all(|(position, paired)| *paired == Some(position))
}

/// Weight of unpaired tokens: middle ones count lightly, but only when the
/// side kept at least two paired tokens (a first and a last name); with
/// `all_optional` (leading parts covered) every unpaired token is light.
fn unpaired_weight(
    weights: impl Iterator<Item = f64>,
    paired: impl ExactSizeIterator<Item = bool> + Clone,
    all_optional: bool,
    middle_optional: bool,
) -> f64 {
    let paired_count = paired.clone().filter(|paired| *paired).count();
    let last = paired.len().saturating_sub(1);
    weights
        .zip(paired)
        .enumerate()
        .filter(|(_, (_, paired))| !*paired)
        .map(|(position, (weight, _))| {
            let middle = middle_optional && position != 0 && position != last && paired_count >= 2;
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
    fn one_typo_in_a_long_token_is_the_same_token() {
        let similarity =
            |left: &str, right: &str| token_similarity(&Token::new(left.into()), &Token::new(right.into()));
        // Jaro-Winkler reads this substitution as a transposition (0.88).
        let typo = similarity("haomony", "harmony");
        assert_eq!(typo, Similarity { value: STRONG_PAIR_SIMILARITY, spelled_alike: true });
        assert!(similarity("corporatoin", "corporation").spelled_alike);
        // Short tokens one edit apart are often different names.
        assert!(!similarity("juan", "jian").spelled_alike);
        // The same phonetic key pairs them, but they are not spelled alike.
        let key_only = similarity("hussain", "hasan");
        assert_eq!(key_only.value, SAME_KEY_SIMILARITY);
        assert!(!key_only.spelled_alike);
        assert!(similarity("mohammed", "mohammed").spelled_alike);
    }

    #[test]
    fn leading_parts_are_contiguous_and_spelled_as_listed() {
        // Skipping the listed second part is not leading parts.
        assert!(score("Juan Martinez", "Juan Jose Martinez Vega") < 0.85);
        // "omar" and "amir" share a phonetic key only.
        assert!(score("Omar Mansour", "Amir Mansour Borghei") < 0.85);
        // A long remainder still leaves an exact partial name in review.
        let long = score("Luis Alberto", "Luis Alberto Rodriguez Lopez Calleja");
        assert!((0.85..=LEADING_PARTS_CAP).contains(&long), "{long}");
    }

    fn score_query(query: &str, candidate: &str, individual: bool) -> f64 {
        let query = QueryName::new(query);
        let candidate = tokenize(candidate);
        let candidate: Vec<&Token> = candidate.iter().collect();
        name_score_by(&query.tokens, &candidate, query.parts_dropped, individual, |at, other| {
            token_similarity(&query.tokens[at], candidate[other])
        })
        .score
    }

    #[test]
    fn one_token_written_with_a_particle_or_title_is_leading_parts() {
        let listed = "Chiheb Ben Mohamed Ayari";
        let with_particle = score_query("Chiheb Ben", listed, true);
        assert!((0.85..=LEADING_PARTS_CAP).contains(&with_particle), "{with_particle}");
        assert!(QueryName::new("Abdul Rahman").parts_dropped);
        let merged = score_query("Abdul Rahman", "Abdul Rahman Yasin", true);
        assert!((0.85..=LEADING_PARTS_CAP).contains(&merged), "{merged}");
        // Written as one part, one token stays a lone given name.
        assert!(score_query("Chiheb", listed, true) < 0.85);
        // The token must be the listed name's first.
        assert!(score_query("Ben Ayari", listed, true) < 0.85);
    }

    #[test]
    fn leading_parts_stand_for_individuals_only() {
        assert!(score_query("Qusay Saddam", "Qusay Saddam Hussein al-Tikriti", true) >= 0.85);
        assert!(score_query("Global Trading", "Global Trading Group", false) < 0.85);
    }

    #[test]
    fn unpaired_middles_on_both_sides_are_a_different_name() {
        let dropped = score("Green Trading", "Green Leaf Trading");
        assert!(dropped >= 0.85, "{dropped}");
        let other = score("Green Valley Trading", "Green Leaf Trading");
        assert!(other < 0.85, "{other}");
        // A middle name only the client gives is still mild.
        assert!(score("Jorge Milton Villa", "Jorge Villa") >= 0.85);
    }

    #[test]
    fn different_names_score_low() {
        assert!(score("John Smith", "Jorge Milton Cifuentes Villa") < 0.3);
        assert!(score("Maria Garcia", "Mario Garcon") < 0.85);
        assert_eq!(score("", "Jorge"), 0.0);
    }
}
