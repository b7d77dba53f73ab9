use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::address::address_key;
use crate::countries::is_code;
use crate::dates::{best_agreement, DateAgreement, DateOfBirth};
use crate::index::NameHit;
use crate::lists::{Entry, EntryKind, ListId, SanctionsLists};
use crate::matcher::QueryName;

/// `screen_name` returns nothing scoring below this.
pub const NAME_SCORE_FLOOR: f64 = 0.75;

/// Score adjustments from the optional date of birth and country of a query.
/// A listed namesake born in another year must not be an automatic hit, but
/// stays reviewable (lists carry wrong dates too); a matching date adds a
/// little confidence. Country evidence is weaker than a date: people hold
/// several nationalities, so a mismatch only counts against an individual
/// whose listed nationalities are all known codes, and address countries
/// (the only country of an entity) can only raise a score.
const SAME_DATE_BONUS: f64 = 0.04;
const SAME_YEAR_BONUS: f64 = 0.02;
const DAY_DIFFERS_PENALTY: f64 = 0.05;
const DATE_CONTRADICTS_PENALTY: f64 = 0.12;
const SAME_COUNTRY_BONUS: f64 = 0.02;
const OTHER_NATIONALITY_PENALTY: f64 = 0.04;

#[derive(Debug, Clone, Copy, Default)]
pub struct NameQuery<'a> {
    pub name: &'a str,
    /// "YYYY-MM-DD", "YYYY-MM" or "YYYY"; anything else is ignored.
    pub date_of_birth: Option<&'a str>,
    /// ISO 3166-1 alpha-2, any case.
    pub country: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub list: ListId,
    pub entry_id: String,
    /// The listed name or alias that matched (for addresses: the entry's name).
    pub name: String,
    /// 0..=1; address matches are 1.
    pub score: f64,
}

/// Score at or above `hit` blocks; at or above `review` goes to compliance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub hit: f64,
    pub review: f64,
}

impl Default for Thresholds {
    /// Chosen from `examples/evaluate.rs` on the real lists (see the crate
    /// report): recall of listed-name variants against false alerts on
    /// common unlisted names.
    fn default() -> Thresholds {
        Thresholds { hit: 0.92, review: 0.85 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScreeningStatus {
    Clear,
    Review,
    Hit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Screening {
    pub status: ScreeningStatus,
    /// Matches at or above the review threshold, best first.
    pub matches: Vec<Match>,
}

/// Screens names and addresses against one publication of the lists plus
/// the desk's blocklist. Cheap to clone; build a new one on reload.
#[derive(Debug, Clone)]
pub struct Screener {
    lists: Arc<SanctionsLists>,
    thresholds: Thresholds,
    /// Address key to the address as the admin entered it.
    blocklist: Arc<HashMap<String, String>>,
}

/// How many matches `screen_client` looks at.
const CLIENT_MATCH_LIMIT: usize = 10;

impl Screener {
    pub fn new(lists: Arc<SanctionsLists>) -> Screener {
        Screener { lists, thresholds: Thresholds::default(), blocklist: Arc::new(HashMap::new()) }
    }

    pub fn with_thresholds(mut self, thresholds: Thresholds) -> Screener {
        self.thresholds = thresholds;
        self
    }

    /// Replaces the admin blocklist; matches from it have list `Blocklist`.
    pub fn with_blocklist<I, S>(mut self, addresses: I) -> Screener
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let blocklist = addresses
            .into_iter()
            .map(|address| address.as_ref().trim().to_string())
            .filter(|address| !address.is_empty())
            .map(|address| (address_key(&address), address))
            .collect();
        self.blocklist = Arc::new(blocklist);
        self
    }

    pub fn lists(&self) -> &Arc<SanctionsLists> {
        &self.lists
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Best matches first, one per entry, each scoring at least
    /// [`NAME_SCORE_FLOOR`] after date of birth and country adjustments.
    pub fn screen_name(&self, query: &NameQuery, limit: usize) -> Vec<Match> {
        let query_name = QueryName::new(query.name);
        if query_name.tokens.is_empty() || limit == 0 {
            return Vec::new();
        }
        let date_of_birth = query.date_of_birth.and_then(DateOfBirth::parse_iso);
        let country = query.country.map(|country| country.trim().to_ascii_uppercase());
        // Bonuses can lift a name from below the floor, so search a bit lower.
        let search_floor = NAME_SCORE_FLOOR - SAME_DATE_BONUS - SAME_COUNTRY_BONUS;
        let mut matches: Vec<Match> = self
            .lists
            .index
            .search(&query_name, search_floor)
            .into_iter()
            .filter_map(|hit| self.adjusted_match(hit, date_of_birth.as_ref(), country.as_deref()))
            .filter(|found| found.score >= NAME_SCORE_FLOOR)
            .collect();
        matches
            .sort_by(|left, right| right.score.total_cmp(&left.score).then_with(|| left.entry_id.cmp(&right.entry_id)));
        matches.truncate(limit);
        matches
    }

    fn adjusted_match(
        &self,
        hit: NameHit,
        date_of_birth: Option<&DateOfBirth>,
        country: Option<&str>,
    ) -> Option<Match> {
        let entry = self.lists.entry_at(hit.entry)?;
        let adjustment = date_adjustment(entry, date_of_birth) + country_adjustment(entry, country);
        let name = match hit.name_number {
            0 => entry.name.clone(),
            number => entry.aliases.get(number - 1)?.name.clone(),
        };
        Some(Match {
            list: entry.list,
            entry_id: entry.id.clone(),
            name,
            score: (hit.score + adjustment).clamp(0.0, 1.0),
        })
    }

    /// The onboarding decision: Hit, Review or Clear by the best match.
    pub fn screen_client(&self, query: &NameQuery) -> Screening {
        let matches: Vec<Match> = self
            .screen_name(query, CLIENT_MATCH_LIMIT)
            .into_iter()
            .filter(|found| found.score >= self.thresholds.review)
            .collect();
        let best = matches.first().map_or(0.0, |found| found.score);
        let status = if best >= self.thresholds.hit {
            ScreeningStatus::Hit
        } else if best >= self.thresholds.review {
            ScreeningStatus::Review
        } else {
            ScreeningStatus::Clear
        };
        Screening { status, matches }
    }

    /// Exact match against listed digital currency addresses and the
    /// blocklist (see [`crate::address_key`] for case rules).
    pub fn screen_address(&self, address: &str) -> Vec<Match> {
        let key = address_key(address);
        if key.is_empty() {
            return Vec::new();
        }
        let mut matches: Vec<Match> = self
            .lists
            .entries_with_address(&key)
            .iter()
            .filter_map(|position| self.lists.entry_at(*position))
            .map(|entry| Match { list: entry.list, entry_id: entry.id.clone(), name: entry.name.clone(), score: 1.0 })
            .collect();
        if let Some(listed) = self.blocklist.get(&key) {
            matches.push(Match { list: ListId::Blocklist, entry_id: listed.clone(), name: listed.clone(), score: 1.0 });
        }
        matches
    }
}

fn date_adjustment(entry: &Entry, date_of_birth: Option<&DateOfBirth>) -> f64 {
    match best_agreement(&entry.dates_of_birth, date_of_birth) {
        DateAgreement::SameDate => SAME_DATE_BONUS,
        DateAgreement::SameYear => SAME_YEAR_BONUS,
        DateAgreement::Unknown => 0.0,
        DateAgreement::DayDiffers => -DAY_DIFFERS_PENALTY,
        DateAgreement::Contradicts => -DATE_CONTRADICTS_PENALTY,
    }
}

fn country_adjustment(entry: &Entry, country: Option<&str>) -> f64 {
    let Some(country) = country.filter(|country| !country.is_empty()) else {
        return 0.0;
    };
    let listed = |values: &[String]| values.iter().any(|value| value == country);
    if listed(&entry.nationalities) || listed(&entry.address_countries) {
        return SAME_COUNTRY_BONUS;
    }
    let all_known = !entry.nationalities.is_empty() && entry.nationalities.iter().all(|value| is_code(value));
    if entry.kind == EntryKind::Individual && all_known {
        -OTHER_NATIONALITY_PENALTY
    } else {
        0.0
    }
}
