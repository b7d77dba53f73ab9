//! Blocking index over a vocabulary of distinct tokens.
//!
//! A query token is compared (Jaro-Winkler) only with vocabulary tokens that
//! share a block key with it: the phonetic key, the first three or the last
//! three letters, and for tokens of up to [`DELETION_KEY_MAX_CHARS`] letters
//! the token itself and each spelling with one letter deleted (its deletion
//! neighbourhood, as in SymSpell), so a single typo, transposition,
//! insertion or deletion anywhere in the token, even in its first and last
//! letters, or a transliteration change still finds it. Longer tokens keep
//! their first or last three letters through any single edit. Names are then reached through the similar tokens they contain, and
//! only names reached by at least two query tokens (one for single-token
//! names or queries) are scored, using the similarities already computed.

use rustc_hash::FxHashMap;

use crate::lists::{AliasQuality, Entry, EntryKind, ListId};
use crate::matcher::{name_score_by, token_similarity, tokenize, QueryName, Similarity, Token, PAIR_MINIMUM};
use crate::normalize::{natural_order, phonetic_key};

#[derive(Debug)]
pub(crate) struct IndexedName {
    pub entry: usize,
    /// 0 is the primary name, n is alias n - 1.
    pub name_number: usize,
    pub weak: bool,
    /// A name of an individual: its leading parts can stand for it.
    pub person: bool,
    /// Vocabulary ids, in name order.
    tokens: Vec<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct NameIndex {
    names: Vec<IndexedName>,
    vocabulary: Vec<Token>,
    token_ids: FxHashMap<String, u32>,
    /// Block key to vocabulary ids.
    blocks: FxHashMap<String, Vec<u32>>,
    /// Vocabulary id to the names containing it.
    postings: Vec<Vec<u32>>,
}

/// One scored listed name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameHit {
    pub entry: usize,
    pub name_number: usize,
    pub score: f64,
}

/// Weak aliases are nicknames and poor spellings: their matches count less.
const WEAK_ALIAS_FACTOR: f64 = 0.95;
/// A token found in at least this many listed names is common (a given
/// name such as "mohammed", "ali", "ahmad").
const COMMON_TOKEN_NAME_COUNT: usize = 20;
/// A match resting on one common token alone is capped here, below the
/// default review threshold: a given name alone is no evidence of identity.
pub(crate) const SINGLE_COMMON_TOKEN_CAP: f64 = 0.84;

impl NameIndex {
    pub fn build(entries: &[Entry]) -> NameIndex {
        let mut index = NameIndex::default();
        for (position, entry) in entries.iter().enumerate() {
            let reorder = entry.list == ListId::OfacSdn && entry.kind == EntryKind::Individual;
            let names = std::iter::once((entry.name.as_str(), false))
                .chain(entry.aliases.iter().map(|alias| (alias.name.as_str(), alias.quality == AliasQuality::Weak)));
            for (name_number, (name, weak)) in names.enumerate() {
                let text = if reorder { natural_order(name) } else { name.to_string() };
                index.add(position, name_number, weak, entry.kind == EntryKind::Individual, tokenize(&text));
            }
        }
        index
    }

    fn add(&mut self, entry: usize, name_number: usize, weak: bool, person: bool, tokens: Vec<Token>) {
        let Ok(number) = u32::try_from(self.names.len()) else {
            return;
        };
        if tokens.is_empty() {
            return;
        }
        let mut ids: Vec<u32> = Vec::with_capacity(tokens.len());
        for token in tokens {
            let Some(id) = self.token_id(token) else { return };
            ids.push(id);
        }
        for id in &ids {
            let names = &mut self.postings[*id as usize];
            if names.last() != Some(&number) {
                names.push(number);
            }
        }
        self.names.push(IndexedName { entry, name_number, weak, person, tokens: ids });
    }

    fn token_id(&mut self, token: Token) -> Option<u32> {
        if let Some(id) = self.token_ids.get(&token.text) {
            return Some(*id);
        }
        let id = u32::try_from(self.vocabulary.len()).ok()?;
        for key in block_keys(&token) {
            self.blocks.entry(key).or_default().push(id);
        }
        self.token_ids.insert(token.text.clone(), id);
        self.vocabulary.push(token);
        self.postings.push(Vec::new());
        Some(id)
    }

    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    pub fn names(&self) -> &[IndexedName] {
        &self.names
    }

    pub fn name_tokens<'a>(&'a self, name: &'a IndexedName) -> impl Iterator<Item = &'a Token> + 'a {
        name.tokens.iter().filter_map(|id| self.vocabulary.get(*id as usize))
    }

    /// Scores the query against its blocked candidates and keeps, for each
    /// entry, its best name at or above `floor`.
    pub fn search(&self, query_name: &QueryName, floor: f64) -> Vec<NameHit> {
        let query = &query_name.tokens[..query_name.tokens.len().min(64)];
        let similar: Vec<FxHashMap<u32, Similarity>> = query.iter().map(|token| self.similar_tokens(token)).collect();
        let mut best: FxHashMap<usize, NameHit> = FxHashMap::default();
        for number in self.candidates(query, &similar) {
            let Some(name) = self.names.get(number as usize) else { continue };
            let tokens: Vec<&Token> = self.name_tokens(name).collect();
            let scored = name_score_by(
                query,
                &tokens,
                query_name.parts_dropped,
                name.person,
                |query_position, candidate_position| {
                    let id = name.tokens[candidate_position];
                    similar[query_position].get(&id).copied().unwrap_or(Similarity::NONE)
                },
            );
            let mut score = if name.weak { scored.score * WEAK_ALIAS_FACTOR } else { scored.score };
            if let Some(position) = scored.single_pair_candidate {
                if self.is_common(name.tokens[position]) {
                    score = score.min(SINGLE_COMMON_TOKEN_CAP);
                }
            }
            if scored.has_weak_pair && !self.any_rare(name, scored.candidate_strong_mask) {
                // "Maria Lopez" for "Martin Romo Lopez", "Smith Technologies"
                // for "Smile Technologies": look-alikes beside common tokens
                // only. A match needs one distinctive token that is the same.
                score = score.min(SINGLE_COMMON_TOKEN_CAP);
            }
            if score < floor {
                continue;
            }
            let hit = NameHit { entry: name.entry, name_number: name.name_number, score };
            best.entry(name.entry)
                .and_modify(|kept| {
                    if score > kept.score {
                        *kept = hit;
                    }
                })
                .or_insert(hit);
        }
        best.into_values().collect()
    }

    /// Some token in the mask (bit i: the name's token i) is not common.
    fn any_rare(&self, name: &IndexedName, mask: u32) -> bool {
        name.tokens
            .iter()
            .take(32)
            .enumerate()
            .any(|(position, id)| mask & (1 << position) != 0 && !self.is_common(*id))
    }

    fn is_common(&self, id: u32) -> bool {
        self.postings.get(id as usize).is_some_and(|names| names.len() >= COMMON_TOKEN_NAME_COUNT)
    }

    /// Vocabulary tokens in the query token's blocks that pair with it.
    fn similar_tokens(&self, token: &Token) -> FxHashMap<u32, Similarity> {
        let mut similar = FxHashMap::default();
        for key in block_keys(token) {
            for id in self.blocks.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
                if similar.contains_key(id) {
                    continue;
                }
                let Some(listed) = self.vocabulary.get(*id as usize) else { continue };
                let similarity = token_similarity(token, listed);
                // Below the pair minimum is stored too, to skip recomputing it.
                similar.insert(*id, similarity);
            }
        }
        similar.retain(|_, similarity| similarity.value >= PAIR_MINIMUM);
        similar
    }

    fn candidates(&self, query: &[Token], similar: &[FxHashMap<u32, Similarity>]) -> Vec<u32> {
        // Bit i set: query token i pairs with a token of the name.
        let mut masks: FxHashMap<u32, u64> = FxHashMap::default();
        for (position, tokens) in similar.iter().enumerate() {
            for id in tokens.keys() {
                for number in self.postings.get(*id as usize).map(Vec::as_slice).unwrap_or(&[]) {
                    *masks.entry(*number).or_insert(0) |= 1 << position;
                }
            }
        }
        masks
            .into_iter()
            .filter(|(number, mask)| {
                let token_count = self.names.get(*number as usize).map_or(0, |name| name.tokens.len());
                mask.count_ones() as usize >= 2.min(query.len()).min(token_count)
            })
            .map(|(number, _)| number)
            .collect()
    }
}

fn block_keys(token: &Token) -> Vec<String> {
    let mut keys = Vec::with_capacity(24);
    push_spelling_keys(&token.text, &token.key, &mut keys);
    if let Some(stripped) = &token.without_article {
        push_spelling_keys(stripped, &phonetic_key(stripped), &mut keys);
    }
    keys
}

fn push_spelling_keys(text: &str, key: &str, keys: &mut Vec<String>) {
    if !key.is_empty() {
        keys.push(format!("k:{key}"));
    }
    let characters: Vec<char> = text.chars().collect();
    push_deletion_keys(&characters, keys);
    // Merged "abd..." names share their first three letters by thousands.
    let prefix_length = if text.starts_with("abd") && characters.len() > 6 { 6 } else { 3 };
    let prefix: String = characters.iter().take(prefix_length).collect();
    keys.push(format!("p:{prefix}"));
    if characters.len() >= 4 {
        let suffix: String = characters[characters.len() - 3..].iter().collect();
        keys.push(format!("s:{suffix}"));
    }
}

/// Tokens up to this long get deletion-neighbourhood keys: at most this many
/// plus one keys a token. Longer tokens keep their first or their last three
/// letters through any single edit, so the prefix and suffix keys find them.
pub(crate) const DELETION_KEY_MAX_CHARS: usize = 8;
/// Shorter tokens get no deletion keys: two-letter keys would block a token
/// with hundreds of unrelated ones.
const DELETION_KEY_MIN_CHARS: usize = 3;

/// The token itself and, when it has four letters or more, the token with
/// each one letter deleted. Two spellings one edit apart always share one
/// of these keys: a substitution or transposition deletes the same letter
/// on both sides, an insertion or deletion makes the shorter spelling one
/// of the longer one's deletions.
fn push_deletion_keys(characters: &[char], keys: &mut Vec<String>) {
    let length = characters.len();
    if !(DELETION_KEY_MIN_CHARS..=DELETION_KEY_MAX_CHARS).contains(&length) {
        return;
    }
    keys.push(format!("d:{}", characters.iter().collect::<String>()));
    if length == DELETION_KEY_MIN_CHARS {
        return;
    }
    for deleted in 0..length {
        let mut key = String::with_capacity(length + 2);
        key.push_str("d:");
        key.extend(characters.iter().enumerate().filter(|(at, _)| *at != deleted).map(|(_, character)| character));
        keys.push(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::{Entry, EntryKind, ListId};
    use crate::matcher::QueryName;

    fn index(names: &[(&str, EntryKind)]) -> NameIndex {
        let entries: Vec<Entry> = names
            .iter()
            .enumerate()
            .map(|(at, (name, kind))| Entry::new(ListId::Un, at.to_string(), *kind, (*name).to_string()))
            .collect();
        NameIndex::build(&entries)
    }

    fn best(index: &NameIndex, query: &str, entry: usize) -> f64 {
        let hits = index.search(&QueryName::new(query), 0.0);
        hits.iter().find(|hit| hit.entry == entry).map_or(0.0, |hit| hit.score)
    }

    fn keys(text: &str) -> Vec<String> {
        block_keys(&tokenize(text)[0])
    }

    #[test]
    fn one_edit_anywhere_shares_a_block_key() {
        let listed = keys("juuk");
        for typo in ["jumk", "huuk", "juua", "ujuk", "juk", "juuks", "kuol"] {
            let shared = keys(typo).iter().any(|key| listed.contains(key));
            assert_eq!(shared, typo != "kuol", "{typo}");
        }
        // Long tokens keep their first or last three letters instead.
        assert!(keys("cifuentesvilla").iter().all(|key| !key.starts_with("d:")));
        assert!(keys("manyang").len() <= DELETION_KEY_MAX_CHARS + 6);
    }

    #[test]
    fn a_typo_in_a_short_tokens_first_or_last_letters_still_finds_the_name() {
        let index = index(&[("Kuol Manyang Juuk", EntryKind::Individual), ("Yu Chol U", EntryKind::Individual)]);
        for query in ["Kuol Manyang Jumk", "Huol Manyang Juuk", "Kuol Manyang Juu"] {
            assert!(best(&index, query, 0) >= 0.85, "{query}: {}", best(&index, query, 0));
        }
        assert!(best(&index, "Yu Cohl U", 1) >= 0.85);
    }

    #[test]
    fn a_look_alike_beside_common_tokens_only_is_not_reviewed() {
        // "lopez" and "technologies" are each in COMMON_TOKEN_NAME_COUNT names.
        let mut names: Vec<(String, EntryKind)> = (0..COMMON_TOKEN_NAME_COUNT)
            .flat_map(|at| {
                [
                    (format!("Person{at} Lopez"), EntryKind::Individual),
                    (format!("Firm{at} Technologies"), EntryKind::Entity),
                ]
            })
            .collect();
        names.push(("Martin Romo Lopez".into(), EntryKind::Individual));
        names.push(("Smile Technologies".into(), EntryKind::Entity));
        let borrowed: Vec<(&str, EntryKind)> = names.iter().map(|(name, kind)| (name.as_str(), *kind)).collect();
        let index = index(&borrowed);
        let (martin, smile) = (names.len() - 2, names.len() - 1);
        let score = |query: &str, entry: usize| best(&index, query, entry);
        assert!(score("Maria Lopez", martin) < 0.85, "{}", score("Maria Lopez", martin));
        assert!(score("Smith Technologies", smile) < 0.85, "{}", score("Smith Technologies", smile));
        assert_eq!(score("Martin Romo Lopez", martin), 1.0);
        assert_eq!(score("Smile Technologies", smile), 1.0);
        // A typo in a distinctive token keeps the match.
        assert!(score("Martin Romo Lopes", martin) >= 0.85);
        assert!(score("Smilee Technologies", smile) >= 0.85);
    }
}
