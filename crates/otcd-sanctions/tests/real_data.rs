//! Tests on the real published lists (read from shared data, never copied).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use otcd_sanctions::evaluation::{evaluate, generate, Variant, POSITIVE_VARIANTS};
use otcd_sanctions::{ListId, NameQuery, SanctionsLists, Screener, ScreeningStatus};

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("OTCD_SANCTIONS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sanctions"),
        PathBuf::from,
    );
    assert!(
        dir.join("ofac/sdn.csv").is_file(),
        "sanctions data not found at {}: set OTCD_SANCTIONS_DIR to the directory holding ofac/ and un/",
        dir.display()
    );
    dir
}

fn lists() -> Arc<SanctionsLists> {
    static LISTS: OnceLock<Arc<SanctionsLists>> = OnceLock::new();
    LISTS
        .get_or_init(|| {
            let started = Instant::now();
            let lists = SanctionsLists::load_dir(&data_dir()).expect("real lists load");
            println!(
                "loaded in {:?}: {} entries, {} names, {} addresses, report {:?}",
                started.elapsed(),
                lists.entry_count(),
                lists.name_count(),
                lists.address_count(),
                lists.report()
            );
            Arc::new(lists)
        })
        .clone()
}

fn query(name: &str) -> NameQuery<'_> {
    NameQuery { name, ..NameQuery::default() }
}

#[test]
fn counts_are_plausible() {
    let lists = lists();
    assert!(lists.entry_count() > 9_500 && lists.entry_count() < 11_000, "{}", lists.entry_count());
    assert!(lists.name_count() > 20_000, "{}", lists.name_count());
    assert!(lists.address_count() >= 80, "{}", lists.address_count());
    assert_eq!(lists.digest().len(), 64);
    assert_eq!(lists.report().ofac_rows_skipped, 0);
    let person = lists.entry(ListId::OfacSdn, "12300").expect("ent_num 12300");
    assert_eq!(person.name, "CIFUENTES VILLA, Jorge Milton");
    assert!(person.dates_of_birth.len() >= 3);
}

#[test]
fn finds_known_entries() {
    let screener = Screener::new(lists());
    let sdn = screener.screen_client(&query("Jorge Milton Cifuentes Villa"));
    assert_eq!(sdn.status, ScreeningStatus::Hit);
    assert_eq!(sdn.matches[0].entry_id, "12300");
    let un_alias = screener.screen_client(&query("Frank Kakorere"));
    assert_eq!(un_alias.status, ScreeningStatus::Hit);
    assert!(un_alias.matches.iter().any(|found| found.list == ListId::Un && found.entry_id == "CDi.002"));
    let entity = screener.screen_client(&query("Banco Nacional de Cuba"));
    assert_eq!(entity.status, ScreeningStatus::Hit);
    assert_eq!(entity.matches[0].entry_id, "306");
    let clear = screener.screen_client(&query("Zbigniew Kowalczykowski"));
    assert_eq!(clear.status, ScreeningStatus::Clear);
}

#[test]
fn digital_currency_address_matches_exactly() {
    let screener = Screener::new(lists());
    let listed = "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h";
    let found = screener.screen_address(listed);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].list, ListId::OfacSdn);
    assert!(screener.screen_address("12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9i").is_empty());
    assert!(screener.screen_address(&listed.to_lowercase()).is_empty());
    // From sdn_comments.csv, hex: case-insensitive.
    let hex = "0x8576ACC5C05D6CE88F4E49BF65BDF0C62F91353C";
    assert_eq!(screener.screen_address(hex).len(), 1);
    let blocked = screener.clone().with_blocklist(["bc1qexampleexampleexampleexample0000"]);
    assert_eq!(blocked.screen_address("BC1QEXAMPLEEXAMPLEEXAMPLEEXAMPLE0000")[0].list, ListId::Blocklist);
}

#[test]
fn namesake_with_other_birth_date_is_not_a_hit() {
    let screener = Screener::new(lists());
    let thresholds = screener.thresholds();
    let name = "Jorge Milton Cifuentes Villa";
    let namesake = NameQuery { name, date_of_birth: Some("1990-02-02"), country: None };
    let score = screener.screen_name(&namesake, 1)[0].score;
    assert!(score < thresholds.hit && score >= thresholds.review, "{score}");
    let same = NameQuery { name, date_of_birth: Some("1965-05-13"), country: Some("CO") };
    assert_eq!(screener.screen_name(&same, 1)[0].score, 1.0);
}

#[test]
fn evaluation_meets_minimums() {
    let lists = lists();
    let queries = generate(&lists, 7, 1_800, 1_500);
    let report = evaluate(&Screener::new(lists), &queries);
    println!("{}", report.table());
    assert!(report.positives >= 1_500 && report.negatives >= 2_400);
    let recall = |wanted: Variant| {
        let (_, figures) = report.per_variant.iter().find(|(variant, _)| *variant == wanted).unwrap();
        let ratio = |found: usize| found as f64 / figures.count as f64;
        (ratio(figures.found_at_review), ratio(figures.found_at_hit))
    };
    // The variants the matcher was tuned on: recall at review >= 0.95 and at hit >= 0.85 together.
    let tuned: Vec<Variant> =
        POSITIVE_VARIANTS.iter().copied().filter(|variant| *variant != Variant::LeadingParts).collect();
    let (review, hit): (f64, f64) = tuned
        .iter()
        .map(|variant| recall(*variant))
        .fold((0.0, 0.0), |sum, next| (sum.0 + next.0 / tuned.len() as f64, sum.1 + next.1 / tuned.len() as f64));
    assert!(review >= 0.95, "{review}");
    assert!(hit >= 0.85, "{hit}");
    assert!(recall(Variant::LegalFormTypo).0 >= 0.95, "{:?}", recall(Variant::LegalFormTypo));
    // Issue #23's target is 0.98 at review over all variants (BENCHMARKS.md); these are regression floors below it.
    assert!(recall(Variant::LeadingParts).0 >= 0.88, "{:?}", recall(Variant::LeadingParts));
    assert!(report.recall_at_review >= 0.97, "{}", report.recall_at_review);
    for (variant, figures) in &report.per_negative {
        assert!(figures.count >= 1_000, "{variant:?}: {}", figures.count);
    }
    assert!(report.false_hit_rate <= 0.01, "{}", report.false_hit_rate);
    assert!(report.false_review_rate <= 0.03, "{}", report.false_review_rate);
}

/// Issue #23: a typo in a legal-form word must not block a listed company.
#[test]
fn misspelt_legal_form_matches_like_the_exact_name() {
    let screener = Screener::new(lists());
    let listed = lists().entry(ListId::OfacSdn, "8351").expect("ent_num 8351").name.clone();
    assert_eq!(listed, "ATLAS AIR CONDITIONING COMPANY LIMITED");
    let exact = screener.screen_client(&query(&listed));
    assert_eq!(exact.status, ScreeningStatus::Hit);
    assert_eq!(exact.matches[0].entry_id, "8351");
    for misspelt in [
        "Atlas Air Conditioning Companyy Limited",
        "Atlas Air Conditioning Company Limitd",
        "Atlas Air Conditioning Corporatoin",
        "Atlas Air Conditioning Compny Ltd.",
    ] {
        let screening = screener.screen_client(&query(misspelt));
        assert_eq!(screening.status, exact.status, "{misspelt}");
        let found = screening.matches.iter().find(|found| found.entry_id == "8351").expect(misspelt);
        assert_eq!(found.score, exact.matches[0].score, "{misspelt}");
    }
}

/// Issue #23: the first two of four parts of a UN-listed person find it; a
/// lone given name shared with unrelated entries does not reach the hit band.
#[test]
fn leading_parts_find_a_un_person_and_a_lone_given_name_does_not_hit() {
    let screener = Screener::new(lists());
    let thresholds = screener.thresholds();
    let person = lists().entry(ListId::Un, "IQi.016").expect("IQi.016").name.clone();
    println!("IQi.016: {person}");
    let leading = screener.screen_client(&query("Tahir Jalil"));
    println!("{leading:?}");
    assert_ne!(leading.status, ScreeningStatus::Clear);
    assert!(leading.matches.iter().any(|found| found.list == ListId::Un && found.entry_id == "IQi.016"));
    // Entries that share only one of the two parts ("Tahir" as a given name) stay below the hit band.
    for found in screener.screen_name(&query("Tahir Jalil"), 20) {
        let tokens = otcd_sanctions::normalize_name(&found.name);
        let shares_both = ["tahir", "jalil"].iter().all(|part| tokens.iter().any(|token| token == part));
        if !shares_both {
            assert!(found.score < thresholds.hit, "{found:?}");
        }
    }
    for given in ["Qusay", "Saddam", "Mohammed", "Ali", "Hassan", "Tahir", "Jorge"] {
        let found = screener.screen_name(&query(given), 5);
        println!("{given}: {found:?}");
        assert!(found.iter().all(|found| found.score < thresholds.hit), "{given}: {found:?}");
    }
}
