//! Sanctions list updates, black-box: `otcd sanctions fetch` against a local HTTP server that serves the lists in
//! their published formats (small files written for the test), and a running desk that fetches a new version by
//! itself on its schedule, re-screens its clients and destinations, and alerts when an update fails.

use axum::http::{StatusCode, Uri};
use otcd_testkit::http::{assert_problem, text};
use otcd_testkit::process::{combined_output, run_otcd_in, TestDesk, RELAXED_CONFIG};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
/// A valid bech32 address that version 2 of the lists names as a digital currency address.
const BECH32: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
const LISTED_CLIENT: &str = "Corvina Maritime Trading";

const SDN_V1: &str = "100,\"ZEPHYRA HOLDINGS LIMITED\",-0- ,\"SDGT\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n";
const SDN_V2_ADDED: &str = "101,\"CORVINA MARITIME TRADING\",-0- ,\"SDGT\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\
\"Digital Currency Address - XBT bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4;\"\r\n";
const ALT: &str = "100,1,\"aka\",\"ZEPHYRA GROUP\",-0- \r\n";
const ADD: &str = "100,1,-0- ,\"Nicosia\",\"Cyprus\",-0- \r\n";
const UN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CONSOLIDATED_LIST dateGenerated="2026-11-30T00:00:00Z"><INDIVIDUALS><INDIVIDUAL><DATAID>1</DATAID>
<FIRST_NAME>TESTAMIR</FIRST_NAME><SECOND_NAME>QORBANOV</SECOND_NAME><REFERENCE_NUMBER>QDi.900</REFERENCE_NUMBER>
</INDIVIDUAL></INDIVIDUALS><ENTITIES/></CONSOLIDATED_LIST>"#;
const EU: &str = include_str!("../../../otcd-sanctions/tests/fixtures/eu_consolidated.xml");
const UK: &str = include_str!("../../../otcd-sanctions/tests/fixtures/uk_sanctions_list.xml");

/// Serves `path -> bytes` on 127.0.0.1 (404 for anything else); the files can be replaced while it runs.
struct ListServer {
    address: std::net::SocketAddr,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    _runtime: tokio::runtime::Runtime,
}

impl ListServer {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let address = listener.local_addr().unwrap();
        let served = files.clone();
        let handler = move |uri: Uri| {
            let found = served.lock().unwrap().get(uri.path()).cloned();
            async move {
                match found {
                    Some(bytes) => (StatusCode::OK, bytes),
                    None => (StatusCode::NOT_FOUND, b"not found".to_vec()),
                }
            }
        };
        let app = axum::Router::new().fallback(handler);
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        let server = Self { address, files, _runtime: runtime };
        server.serve_version(false);
        server
    }

    fn put(&self, path: &str, bytes: &[u8]) {
        self.files.lock().unwrap().insert(path.to_owned(), bytes.to_vec());
    }

    /// Version 1, or version 2 that adds an entry named like an existing client and listing an address.
    fn serve_version(&self, second: bool) {
        let sdn = if second { format!("{SDN_V1}{SDN_V2_ADDED}\u{1a}") } else { format!("{SDN_V1}\u{1a}") };
        self.put("/ofac/SDN.CSV", sdn.as_bytes());
        self.put("/ofac/ALT.CSV", ALT.as_bytes());
        self.put("/ofac/ADD.CSV", ADD.as_bytes());
        self.put("/ofac/SDN_COMMENTS.CSV", b"");
        self.put("/un/consolidated.xml", UN.as_bytes());
        self.put("/eu/content", EU.as_bytes());
        self.put("/uk/UK-Sanctions-List.xml", UK.as_bytes());
    }

    /// A `--sources` file pointing every list at this server.
    fn sources_file(&self, directory: &Path) -> std::path::PathBuf {
        let base = format!("http://{}", self.address);
        let text = format!(
            "[ofac]\nsdn = \"{base}/ofac/SDN.CSV\"\nalt = \"{base}/ofac/ALT.CSV\"\nadd = \"{base}/ofac/ADD.CSV\"\n\
             comments = \"{base}/ofac/SDN_COMMENTS.CSV\"\n[un]\nconsolidated = \"{base}/un/consolidated.xml\"\n\
             [eu]\nconsolidated = \"{base}/eu/content\"\n[uk]\nsanctions_list = \"{base}/uk/UK-Sanctions-List.xml\"\n"
        );
        let path = directory.join("sources.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn fetch(out: &Path, sources: &Path) -> std::process::Output {
    let args = ["sanctions", "fetch", "--out", out.to_str().unwrap(), "--sources", sources.to_str().unwrap()];
    run_otcd_in(&args, out.parent().unwrap(), &[])
}

/// Every file under `directory` with its bytes.
fn snapshot(directory: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(next) = pending.pop() {
        for item in std::fs::read_dir(&next).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(directory).unwrap().display().to_string();
                files.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn manifest(directory: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(directory.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn fetch_installs_every_list_with_a_manifest_and_a_broken_file_changes_nothing() {
    let server = ListServer::start();
    let scratch = tempfile::tempdir().unwrap();
    let sources = server.sources_file(scratch.path());
    let out = scratch.path().join("lists");
    let output = fetch(&out, &sources);
    assert!(output.status.success(), "{}", combined_output(&output));
    let manifest = manifest(&out);
    let files = manifest["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|file| file["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "ofac/sdn.csv",
            "ofac/alt.csv",
            "ofac/add.csv",
            "ofac/sdn_comments.csv",
            "un/consolidated.xml",
            "eu/consolidated.xml",
            "uk/sanctions_list.xml"
        ]
    );
    for file in files {
        let bytes = std::fs::read(out.join(text(&file["path"]))).unwrap();
        assert_eq!(file["size_bytes"], json!(bytes.len()), "{file}");
        assert_eq!(file["sha256"], json!(hex::encode(Sha256::digest(&bytes))), "{file}");
        assert!(text(&file["source_url"]).starts_with(&format!("http://{}/", server.address)), "{file}");
        assert!(text(&file["fetched_at"]).ends_with('Z'), "{file}");
    }
    let published: Vec<&Value> = files.iter().map(|file| &file["published"]).collect();
    assert_eq!(
        published,
        [
            &Value::Null,
            &Value::Null,
            &Value::Null,
            &Value::Null,
            &json!("2026-11-30T00:00:00Z"),
            &json!("2026-11-30T18:02:11.000+01:00"),
            &json!("2026-11-30T09:00:00")
        ]
    );
    let entries: Vec<&Value> = files.iter().map(|file| &file["entries"]).collect();
    assert_eq!(entries, [&json!(1), &json!(1), &json!(1), &json!(0), &json!(1), &json!(2), &json!(2)]);
    assert_eq!(text(&manifest["lists_version"]).len(), 64, "{manifest}");
    // The desk reads the directory as it is: the EU and UK entries are screened like the others.
    let desk = TestDesk::launch().config(RELAXED_CONFIG).args(&["--sanctions-dir", out.to_str().unwrap()]).start();
    let found =
        desk.get(&desk.admin, "/v1/admin/sanctions/screen?name=Saddam%20Hussein%20Al-Tikriti").expect(200).clone();
    assert_eq!(
        (found["matches"][0]["list"].clone(), found["matches"][0]["entry_id"].clone()),
        (json!("eu_consolidated"), json!("EU.27.28")),
        "{found}"
    );
    let found = desk.get(&desk.admin, "/v1/admin/sanctions/screen?name=Ivan%20Petrovich%20Sidorov").expect(200).clone();
    assert_eq!(found["matches"][0]["list"], json!("uk_sanctions"), "{found}");
    assert_eq!(found["lists_version"], manifest["lists_version"], "{found}");
    drop(desk);
    // A file that does not parse, a missing file: non-zero exit, the directory exactly as it was, no leftovers.
    let before = snapshot(&out);
    server.put("/un/consolidated.xml", b"<CONSOLIDATED_LIST><INDIVIDUALS></CONSOLIDATED_LIST>");
    let output = fetch(&out, &sources);
    assert!(!output.status.success());
    assert!(combined_output(&output).contains("un/consolidated.xml"), "{}", combined_output(&output));
    server.serve_version(false);
    server.put("/ofac/SDN.CSV", b"<html><body>maintenance</body></html>");
    assert!(!fetch(&out, &sources).status.success());
    server.serve_version(false);
    server.files.lock().unwrap().remove("/ofac/ALT.CSV");
    let output = fetch(&out, &sources);
    assert!(!output.status.success());
    assert!(combined_output(&output).contains("404"), "{}", combined_output(&output));
    assert_eq!(snapshot(&out), before, "the directory is unchanged");
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path()).unwrap().map(|item| item.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "only lists/ and sources.toml: {leftovers:?}");
}

#[test]
fn a_running_desk_picks_up_a_new_list_version_by_itself_and_holds_a_newly_listed_client() {
    let server = ListServer::start();
    let scratch = tempfile::tempdir().unwrap();
    let sources = server.sources_file(scratch.path());
    let lists = scratch.path().join("lists");
    assert!(fetch(&lists, &sources).status.success());
    let first_version = text(&manifest(&lists)["lists_version"]);
    let config =
        format!("{RELAXED_CONFIG}sanctions_refresh_seconds = 1\nsanctions_sources = \"{}\"\n", sources.display());
    let desk = TestDesk::launch().config(&config).args(&["--sanctions-dir", lists.to_str().unwrap()]).start();
    desk.set_price("BTC-USD", "50000.00", "50100.00");
    let (client_id, _) = desk.client(LISTED_CLIENT, "standard", "approved");
    let client = desk.client_key(&client_id, &["read", "trade", "withdraw"]);
    let path = format!("/v1/admin/clients/{client_id}");
    assert_eq!(desk.get(&desk.admin, &path).expect(200)["screening"]["status"], json!("clear"));
    let destination =
        desk.post(&client, "/v1/destinations", &json!({"asset": "BTC", "address": BECH32})).expect(201).clone();
    assert_eq!(destination["status"], json!("approved"), "{destination}");
    let rfq = json!({"instrument": "BTC-USD", "side": "buy", "quantity": "0.1"});
    desk.rfq(&client, &rfq).expect(201);

    // The publisher puts out version 2; nobody calls reload.
    server.serve_version(true);
    let deadline = Instant::now() + WAIT;
    let screened = loop {
        let current = desk.get(&desk.admin, &path).expect(200).clone();
        if current["screening"]["status"] == json!("hit") {
            break current;
        }
        assert!(Instant::now() < deadline, "the desk did not pick up version 2: {current}\n{}", desk.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    let second_version = text(&manifest(&lists)["lists_version"]);
    assert_ne!(second_version, first_version);
    assert_eq!(screened["screening"]["matches"][0]["entry_id"], json!("101"), "{screened}");
    // Alerted, naming the version that caused it, and blocked as a listed client is at onboarding.
    let alerts = desk.get(&desk.admin, &format!("/v1/admin/alerts?client_id={client_id}")).expect(200).clone();
    let alert = alerts["items"].as_array().unwrap().iter().find(|alert| alert["kind"] == json!("sanctions_screening"));
    let alert = alert.unwrap_or_else(|| panic!("no screening alert: {alerts}"));
    assert!(text(&alert["evidence"]).contains(&second_version[..12]), "{alert}");
    assert_problem(&desk.rfq(&client, &rfq), 403, "sanctions_hit");
    let approve = desk.patch(&desk.admin, &path, &json!({"kyc_status": "approved"}));
    assert_problem(&approve, 409, "conflict");
    let deadline = Instant::now() + WAIT;
    while desk.get(&client, "/v1/destinations").expect(200)["items"][0]["status"] != json!("rejected") {
        assert!(Instant::now() < deadline, "the listed destination was not rejected");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A broken publication: the old lists stay and operators get an alert.
    let before = snapshot(&lists);
    server.put("/un/consolidated.xml", b"<CONSOLIDATED_LIST><oops></CONSOLIDATED_LIST>");
    let deadline = Instant::now() + WAIT;
    let failure = loop {
        let alerts = desk.get(&desk.admin, "/v1/admin/alerts?kind=sanctions_list_update").expect(200).clone();
        if let Some(alert) = alerts["items"].as_array().unwrap().first() {
            break alert.clone();
        }
        assert!(Instant::now() < deadline, "no update alert: {alerts}\n{}", desk.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    let evidence = text(&failure["evidence"]);
    assert!(evidence.contains("un/consolidated.xml") && evidence.contains(&second_version[..12]), "{failure}");
    assert_eq!(failure["client_id"], Value::Null, "{failure}");
    assert_eq!(snapshot(&lists), before, "the lists in force are untouched");
    let screen =
        desk.get(&desk.admin, "/v1/admin/sanctions/screen?name=Corvina%20Maritime%20Trading").expect(200).clone();
    assert_eq!(screen["lists_version"], json!(second_version), "{screen}");
}
