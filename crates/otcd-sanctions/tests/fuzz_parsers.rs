//! Parsers and screening never panic on arbitrary or damaged input.

use std::path::PathBuf;
use std::sync::OnceLock;

use otcd_sanctions::update::ListFile;
use otcd_sanctions::{NameQuery, OfacSources, SanctionsLists, Screener, Sources};
use proptest::prelude::*;

fn real_samples() -> &'static (Vec<u8>, Vec<u8>) {
    static SAMPLES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let dir = std::env::var_os("OTCD_SANCTIONS_DIR").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sanctions"),
            PathBuf::from,
        );
        let read = |relative: &str| {
            let path = dir.join(relative);
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|error| panic!("sanctions data missing at {}: {error}", path.display()));
            bytes[..bytes.len().min(60_000)].to_vec()
        };
        (read("ofac/sdn.csv"), read("un/consolidated.xml"))
    })
}

fn damage(mut bytes: Vec<u8>, cut: usize, flips: &[(usize, u8)]) -> Vec<u8> {
    bytes.truncate(cut % (bytes.len() + 1));
    for (position, byte) in flips {
        if !bytes.is_empty() {
            let at = position % bytes.len();
            bytes[at] = *byte;
        }
    }
    bytes
}

fn load(sdn: &[u8], xml: &[u8]) {
    let ofac = OfacSources { sdn, add: sdn, alt: sdn, comments: sdn };
    if let Ok(lists) = SanctionsLists::from_sources(ofac, Some(xml)) {
        assert!(lists.entry_count() <= sdn.len() + xml.len());
        let screener = Screener::new(std::sync::Arc::new(lists));
        let _ = screener.screen_name(&NameQuery { name: "ali hassan", ..NameQuery::default() }, 5);
    }
}

const EU_SAMPLE: &[u8] = include_bytes!("fixtures/eu_consolidated.xml");
const UK_SAMPLE: &[u8] = include_bytes!("fixtures/uk_sanctions_list.xml");

/// The EU and UK parsers (through a full load beside a valid OFAC file) and every file check.
fn load_eu_uk(eu: &[u8], uk: &[u8]) {
    let sdn = b"36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n";
    let ofac = OfacSources { sdn, ..OfacSources::default() };
    if let Ok(lists) = SanctionsLists::from_all(Sources { ofac, un: None, eu: Some(eu), uk: Some(uk) }) {
        assert!(lists.entry_count() <= 1 + eu.len() + uk.len());
    }
    for file in ListFile::ALL {
        let _ = file.verify(eu);
        let _ = file.verify(uk);
        let _ = file.publication_date(eu);
        let _ = file.publication_date(uk);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        load(&bytes, &bytes);
    }

    #[test]
    fn damaged_real_files_do_not_panic(
        cut in any::<usize>(),
        flips in proptest::collection::vec((any::<usize>(), prop_oneof![Just(b'"'), Just(b'<'), Just(b'>'), Just(b','), Just(b'\n'), any::<u8>()]), 0..16),
    ) {
        let (sdn, xml) = real_samples();
        load(&damage(sdn.clone(), cut, &flips), &damage(xml.clone(), cut, &flips));
    }

    #[test]
    fn arbitrary_queries_do_not_panic(name in "\\PC{0,80}", date in "\\PC{0,12}", country in "\\PC{0,4}") {
        let (sdn, xml) = real_samples();
        let ofac = OfacSources { sdn, ..OfacSources::default() };
        let lists = SanctionsLists::from_sources(ofac, Some(xml)).expect("sample loads");
        let screener = Screener::new(std::sync::Arc::new(lists));
        let query = NameQuery { name: &name, date_of_birth: Some(&date), country: Some(&country) };
        let matches = screener.screen_name(&query, 5);
        prop_assert!(matches.len() <= 5);
        prop_assert!(matches.iter().all(|found| (0.0..=1.0).contains(&found.score)));
        let _ = screener.screen_address(&name);
    }

    #[test]
    fn arbitrary_bytes_do_not_panic_the_eu_and_uk_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        load_eu_uk(&bytes, &bytes);
    }

    #[test]
    fn damaged_eu_and_uk_files_do_not_panic(
        cut in any::<usize>(),
        flips in proptest::collection::vec((any::<usize>(), prop_oneof![Just(b'"'), Just(b'<'), Just(b'>'), Just(b'/'), Just(b'='), any::<u8>()]), 0..16),
    ) {
        load_eu_uk(&damage(EU_SAMPLE.to_vec(), cut, &flips), &damage(UK_SAMPLE.to_vec(), cut, &flips));
    }
}
