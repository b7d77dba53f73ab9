//! Blocking index over a vocabulary of distinct tokens.
//!
//! A query token is compared (Jaro-Winkler) only with vocabulary tokens that
//! share a block key with it: the phonetic key, the first three or the last
//! three letters, so a single typo or transliteration change still finds
//! it. Names are then reached through the similar tokens they contain, and
//! only names reached by at least two query tokens (one for single-token
//! names or queries) are scored, using the similarities already computed.

use std::collections::HashMap;

use crate::lists::{AliasQuality, Entry, EntryKind, ListId};
use crate::matcher::{name_score_by, token_similarity, tokenize, Token, PAIR_MINIMUM};
use crate::normalize::{natural_order, phonetic_key};

#[derive(Debug)]
pub(crate) struct IndexedName {
    pub entry: usize,
    /// 0 is the primary name, n is alias n - 1.
    pub name_number: usize,
    pub weak: bool,
    /// Vocabulary ids, in name order.
    tokens: Vec<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct NameIndex {
    names: Vec<IndexedName>,
    vocabulary: Vec<Token>,
    token_ids: HashMap<String, u32>,
    /// Block key to vocabulary ids.
    blocks: HashMap<String, Vec<u32>>,
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
                index.add(position, name_number, weak, tokenize(&text));
            }
        }
        index
    }

    fn add(&mut self, entry: usize, name_number: usize, weak: bool, tokens: Vec<Token>) {
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
        self.names.push(IndexedName { entry, name_number, weak, tokens: ids });
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
    pub fn search(&self, query: &[Token], floor: f64) -> Vec<NameHit> {
        let query = &query[..query.len().min(64)];
        let similar: Vec<HashMap<u32, f64>> = query.iter().map(|token| self.similar_tokens(token)).collect();
        let mut best: HashMap<usize, NameHit> = HashMap::new();
        for number in self.candidates(query, &similar) {
            let Some(name) = self.names.get(number as usize) else { continue };
            let tokens: Vec<&Token> = self.name_tokens(name).collect();
            let scored = name_score_by(query, &tokens, |query_position, candidate_position| {
                let id = name.tokens[candidate_position];
                similar[query_position].get(&id).copied().unwrap_or(0.0)
            });
            let mut score = if name.weak { scored.score * WEAK_ALIAS_FACTOR } else { scored.score };
            if let Some(position) = scored.single_pair_candidate {
                if self.is_common(name.tokens[position]) {
                    score = score.min(SINGLE_COMMON_TOKEN_CAP);
                }
            }
            if scored.leading && self.all_paired_common(name, scored.candidate_paired_mask) {
                // "Mohammed Ali" is the leading parts of many listed names:
                // common tokens alone are no evidence of a partial name.
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

    fn all_paired_common(&self, name: &IndexedName, paired_mask: u32) -> bool {
        name.tokens
            .iter()
            .take(32)
            .enumerate()
            .filter(|(position, _)| paired_mask & (1 << position) != 0)
            .all(|(_, id)| self.is_common(*id))
    }

    fn is_common(&self, id: u32) -> bool {
        self.postings.get(id as usize).is_some_and(|names| names.len() >= COMMON_TOKEN_NAME_COUNT)
    }

    /// Vocabulary tokens in the query token's blocks that pair with it.
    fn similar_tokens(&self, token: &Token) -> HashMap<u32, f64> {
        let mut similar = HashMap::new();
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
        similar.retain(|_, similarity| *similarity >= PAIR_MINIMUM);
        similar
    }

    fn candidates(&self, query: &[Token], similar: &[HashMap<u32, f64>]) -> Vec<u32> {
        // Bit i set: query token i pairs with a token of the name.
        let mut masks: HashMap<u32, u64> = HashMap::new();
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
    let mut keys = Vec::with_capacity(6);
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
    // Merged "abd..." names share their first three letters by thousands.
    let prefix_length = if text.starts_with("abd") && characters.len() > 6 { 6 } else { 3 };
    let prefix: String = characters.iter().take(prefix_length).collect();
    keys.push(format!("p:{prefix}"));
    if characters.len() >= 4 {
        let suffix: String = characters[characters.len() - 3..].iter().collect();
        keys.push(format!("s:{suffix}"));
    }
}
