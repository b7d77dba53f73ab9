//! The console and the components in a real headless Chromium, driven over WebDriver (chromedriver + fantoccini):
//! an operator signs in and acts (approves a pending client's KYC, closes an alert with a note, flips the kill
//! switch and sees an RFQ refused, approves a destination under review), a read-only operator sees no action; a
//! client's ticket (keyboard only) shows total, fee and net, accepts the quote, and the trade shows in the client's
//! trade history and on the console; the hedging panel shows a filled hedge with its P&L, the position back in its
//! band and a venue's balances; the client page fits 360 px; a manual price change reaches the ladder; every
//! input is labelled;
//! the pages log no error (a hook installed before any page script collects `window.onerror`, unhandled
//! rejections, `console.error` and CSP violations).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the test says so and
//! passes, unless `OTCD_REQUIRE_BROWSER=1` (set by `.ci/run`). `OTCD_WRITE_SCREENSHOTS=1` writes
//! `docs/console.png`, `docs/console-action.png` and `docs/ticket.png`.

use crate::sessions::session;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use otcd_testkit::http::text;
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Collects errors from the moment a document starts, before the page's own scripts.
const ERROR_HOOK: &str = r#"
window.__otcdErrors = [];
window.addEventListener("error", (e) => window.__otcdErrors.push("error: " + e.message + " at " + e.filename + ":" + e.lineno));
window.addEventListener("unhandledrejection", (e) => window.__otcdErrors.push("unhandled rejection: " + (e.reason && e.reason.stack || e.reason)));
document.addEventListener("securitypolicyviolation", (e) => window.__otcdErrors.push("CSP violation: " + e.violatedDirective + " " + e.blockedURI));
const originalError = console.error.bind(console);
console.error = (...args) => { window.__otcdErrors.push("console.error: " + args.map(String).join(" ")); originalError(...args); };
"#;

/// Inputs, selects and textareas, in the page and in every open shadow root, with no accessible label.
const UNLABELLED: &str = r#"
const roots = [document];
for (const element of document.querySelectorAll("*")) if (element.shadowRoot) roots.push(element.shadowRoot);
const missing = [];
for (const root of roots) {
  for (const field of root.querySelectorAll("input, select, textarea")) {
    if (field.type === "hidden") continue;
    const labelled = (field.labels && field.labels.length) || field.getAttribute("aria-label") || field.getAttribute("aria-labelledby");
    if (!labelled) missing.push((root.host ? root.host.localName + " " : "") + (field.name || field.id || field.outerHTML.slice(0, 60)));
  }
}
return missing;
"#;

/// A chromedriver process on a free port; killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group: end the browser it started with it.
        // SAFETY: kill(2) on a process group this test created.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|path| path.is_file())
}

fn start_driver(chromedriver: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    use std::os::unix::process::CommandExt;
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, port };
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    driver
}

/// `Page.addScriptToEvaluateOnNewDocument` through chromedriver's CDP passthrough.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"cmd": self.cmd, "params": self.params}).to_string()))
    }
}

struct Browser {
    client: Client,
    errors: Vec<String>,
}

impl Browser {
    async fn start(driver: &Driver, profile: &Path) -> Self {
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-component-update".to_owned(),
            "--no-first-run".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--window-size=1440,1000".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.push("--force-device-scale-factor=1".to_owned());
        let mut options = json!({"args": args});
        if let Some(binary) = find_program(&["chromium", "chromium-browser"]) {
            options["binary"] = json!(binary.display().to_string());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a WebDriver session with headless Chromium");
        client
            .issue_cmd(Cdp { cmd: "Page.addScriptToEvaluateOnNewDocument", params: json!({"source": ERROR_HOOK}) })
            .await
            .expect("install the error hook");
        Self { client, errors: Vec::new() }
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|error| panic!("script failed ({error}): {script}"))
    }

    /// Polls `expression` until it is truthy; returns its value.
    async fn until(&self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.js(&format!("try {{ return ({expression}); }} catch (e) {{ return null; }}")).await;
            if !(value.is_null() || value == json!(false) || value == json!("") || value == json!(0)) {
                return value;
            }
            if Instant::now() > deadline {
                let errors = self.js("return window.__otcdErrors || []").await;
                panic!("timed out waiting for {what}: {expression}\npage errors: {errors}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Navigates, keeping the errors the previous document collected.
    async fn goto(&mut self, url: &str) {
        self.collect_errors().await;
        self.client.goto(url).await.unwrap_or_else(|error| panic!("goto {url}: {error}"));
    }

    async fn collect_errors(&mut self) {
        if let Ok(Value::Array(errors)) = self.client.execute("return window.__otcdErrors || []", vec![]).await {
            self.errors.extend(errors.iter().map(|error| error.as_str().unwrap_or_default().to_owned()));
        }
    }

    async fn press(&self, key: Key) {
        let value: char = key.into();
        let keys = KeyActions::new("keyboard".to_owned()).then(KeyAction::Down { value }).then(KeyAction::Up { value });
        self.client.perform_actions(keys).await.expect("key press");
    }

    async fn type_text(&self, text: &str) {
        let mut keys = KeyActions::new("keyboard".to_owned());
        for value in text.chars() {
            keys = keys.then(KeyAction::Down { value }).then(KeyAction::Up { value });
        }
        self.client.perform_actions(keys).await.expect("typing");
    }

    async fn assert_labelled(&self, page: &str) {
        let missing = self.js(UNLABELLED).await;
        assert_eq!(missing, json!([]), "{page}: every input has a label");
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let directory = if std::env::var_os("OTCD_WRITE_SCREENSHOTS").is_some() {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
        } else {
            std::env::temp_dir().join("otcd-screenshots")
        };
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join(name), png).unwrap();
    }
}

/// The client page on a 360 px wide phone: nothing overflows sideways (the page does not scroll horizontally and
/// every component ends inside the viewport).
async fn assert_fits_a_phone(browser: &Browser) {
    let metrics = json!({"width": 360, "height": 780, "deviceScaleFactor": 1, "mobile": true});
    browser.client.issue_cmd(Cdp { cmd: "Emulation.setDeviceMetricsOverride", params: metrics }).await.unwrap();
    let overflow = browser
        .until(
            "a 360 px layout",
            r#"window.innerWidth === 360 && JSON.stringify({
                page: document.documentElement.scrollWidth,
                wider: [...document.querySelectorAll("otcd-rfq-ticket, otcd-price-ladder, otcd-balances, otcd-trade-history, otcd-kyc-status, header, main")]
                    .filter((e) => e.getBoundingClientRect().right > 360.5 || e.scrollWidth > e.clientWidth + 1)
                    .map((e) => e.localName)})"#,
        )
        .await;
    assert_eq!(overflow, json!(r#"{"page":360,"wider":[]}"#), "nothing overflows at 360 px");
    browser.client.issue_cmd(Cdp { cmd: "Emulation.clearDeviceMetricsOverride", params: json!({}) }).await.unwrap();
}

const TICKET: &str = "document.querySelector('otcd-rfq-ticket').shadowRoot";
const LADDER: &str = "document.querySelector('otcd-price-ladder').shadowRoot";
const HISTORY: &str = "document.querySelector('otcd-trade-history').shadowRoot";

#[test]
fn console_and_components_work_in_a_real_browser() {
    let Some(chromedriver) = find_program(&["chromedriver"]) else {
        assert!(
            std::env::var_os("OTCD_REQUIRE_BROWSER").is_none(),
            "OTCD_REQUIRE_BROWSER is set but chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "SKIPPED: the browser test needs chromium and chromium-driver (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let desk = TestDesk::relaxed();
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    desk.set_price("ETH-USD", "3000.00", "3001.00");
    let (client_id, key) = desk.client("Aurora Capital GmbH", "standard", "approved");
    for (asset, amount) in [("USD", "2000000"), ("BTC", "20"), ("ETH", "200")] {
        let body = json!({"client_id": client_id, "asset": asset, "amount": amount, "reference": format!("d-{asset}")});
        desk.post(&desk.admin, "/v1/admin/deposits", &body).expect(201);
    }
    let (pending_id, _) = desk.client("Cirrus Ventures Ltd", "standard", "pending");
    // Work for the console's operator: three cash deposits just under 10,000 USD (a structuring alert), and a
    // destination held for review.
    let (structurer_id, _) = desk.client("Borealis Trading SA", "standard", "approved");
    for (number, amount) in ["9500.00", "9800.00", "9900.00"].iter().enumerate() {
        let body = json!({"client_id": structurer_id, "asset": "USD", "amount": amount, "reference": format!("cash-{number}")});
        desk.post(&desk.admin, "/v1/admin/deposits", &body).expect(201);
    }
    let withdrawer = desk.client_key(&client_id, &["read", "withdraw"]);
    let address = json!({"asset": "BTC", "address": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"});
    let destination_id = text(&desk.post(&withdrawer, "/v1/destinations", &address).expect(201)["destination_id"]);
    let held = json!({"status": "pending_review"});
    desk.patch(&desk.admin, &format!("/v1/admin/destinations/{destination_id}"), &held).expect(200);
    // A second alert (to assign and escalate) and a second tier (to move a client to).
    let (second_id, _) = desk.client("Polaris Holdings AG", "standard", "approved");
    for (number, amount) in ["9600.00", "9700.00", "9950.00"].iter().enumerate() {
        let body =
            json!({"client_id": second_id, "asset": "USD", "amount": amount, "reference": format!("wire-{number}")});
        desk.post(&desk.admin, "/v1/admin/deposits", &body).expect(201);
    }
    desk.put_tier("gold", &json!({"spread_bps": "10"}));
    let work = Work { pending_id, destination_id };
    // Some earlier flow for the console's charts.
    for (instrument, side, quantity) in [("BTC-USD", "buy", "2"), ("ETH-USD", "sell", "40"), ("BTC-USD", "sell", "0.5")]
    {
        let quote = desk.quote(&key, instrument, side, quantity);
        let order = json!({"client_order_id": format!("seed-{instrument}-{side}"), "type": "quote", "quote_id": quote["quote_id"]});
        desk.post(&key, "/v1/orders", &order).expect(201);
    }
    let token = text(&session(&desk, &key, &json!({"scopes": ["read", "trade"]})).expect(201)["token"]);

    let driver = start_driver(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use futures_util::FutureExt;
        let mut browser = Browser::start(&driver, profile.path()).await;
        let outcome =
            std::panic::AssertUnwindSafe(scenario(&mut browser, &desk, &key, &token, &work)).catch_unwind().await;
        let _ = browser.client.clone().close().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
}

/// What the operator acts on in the console.
struct Work {
    pending_id: String,
    destination_id: String,
}

/// Clicks an action button, fills the confirmation dialog's fields and confirms; waits until the dialog closed (the
/// desk accepted the request).
async fn act(browser: &Browser, button: &str, fields: &[(&str, &str)]) {
    act_pictured(browser, button, fields, None).await;
}

/// [`act`], taking a screenshot of the filled dialog before confirming when `screenshot` names one.
async fn act_pictured(browser: &Browser, button: &str, fields: &[(&str, &str)], screenshot: Option<&str>) {
    confirm(browser, button, fields, screenshot).await;
    let closed = browser
        .until(
            "the desk's answer",
            "!document.getElementById('action-dialog').open || document.getElementById('action-error').textContent",
        )
        .await;
    assert_eq!(closed, json!(true), "the action was accepted");
}

/// Clicks the element `selector` names, finding it again when the console re-rendered it between the find and
/// the click (its tables refresh on their own, so a found button can go stale).
async fn click_fresh(browser: &Browser, selector: &str) {
    for _ in 0..5 {
        let element = browser.client.find(Locator::Css(selector)).await.unwrap();
        match element.click().await {
            Ok(()) => return,
            Err(fantoccini::error::CmdError::Standard(error))
                if error.error == fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                continue
            }
            Err(error) => panic!("clicking {selector}: {error}"),
        }
    }
    panic!("{selector} went stale five times in a row");
}

/// Clicks an action button, fills its dialog and clicks Confirm.
async fn confirm(browser: &Browser, button: &str, fields: &[(&str, &str)], screenshot: Option<&str>) {
    browser.until(&format!("the button {button}"), &format!("document.querySelector('{button}')")).await;
    // Centred, so that the sticky top bar never covers it.
    browser.js(&format!("document.querySelector('{button}').scrollIntoView({{block: 'center'}})")).await;
    click_fresh(browser, button).await;
    browser.until("the confirmation dialog", "document.getElementById('action-dialog').open").await;
    for (name, value) in fields {
        let field = browser.client.find(Locator::Id(&format!("action-field-{name}"))).await.unwrap();
        if field.tag_name().await.unwrap() == "select" {
            field.select_by_value(value).await.unwrap();
            continue;
        }
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }
    if let Some(name) = screenshot {
        browser.screenshot(name).await;
    }
    browser.client.find(Locator::Id("action-confirm")).await.unwrap().click().await.unwrap();
}

/// The operator's day from the console: approve a pending client's KYC, close an alert with a note, flip the kill
/// switch (an RFQ is refused, then trading resumes), approve a destination under review; each change is the
/// operator's key's, as the desk records it. Then a read-only operator key sees the console without actions.
async fn operate(browser: &mut Browser, desk: &TestDesk, key: &Signer, work: &Work, operator_id: &str) {
    let pending = &work.pending_id;
    act(browser, &format!("#clients button[data-action=kyc-approve][data-client={pending}]"), &[]).await;
    let client = desk.get(&desk.admin, &format!("/v1/admin/clients/{pending}")).expect(200).clone();
    let last = client["kyc_history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["status"].clone(), last["by"].clone()), (json!("approved"), json!(operator_id)), "{client}");
    browser
        .until(
            "the approved KYC",
            &format!("!document.querySelector('#clients button[data-action=kyc-approve][data-client={pending}]')"),
        )
        .await;

    // The structuring alert reads in dollars and hours; close it with a note.
    let alert =
        "[...document.querySelectorAll('#alerts tr[data-alert]')].find((row) => row.textContent.includes('cash-2'))";
    let evidence = browser.until("the alert", &format!("{alert} && {alert}.textContent")).await;
    let evidence = evidence.as_str().unwrap();
    assert!(evidence.contains("within 24 h") && evidence.contains("9,900.00 USD"), "{evidence}");
    let alert_id = text(&browser.js(&format!("return {alert}.dataset.alert")).await);
    let note = "Payroll deposits, documented by the client";
    let close = format!("#alerts button[data-action=alert-close][data-alert={alert_id}]");
    act_pictured(browser, &close, &[("note", note)], Some("console-action.png")).await;
    browser
        .until(
            "the closed case",
            &format!(
                "document.querySelector('#alerts tr[data-alert={alert_id}] [data-status]').textContent === 'closed'"
            ),
        )
        .await;
    let alerts = desk.get(&desk.admin, "/v1/admin/alerts?status=closed").expect(200).clone();
    let closed = &alerts["items"][0];
    assert_eq!(closed["alert_id"], json!(alert_id), "{alerts}");
    assert_eq!(
        (closed["notes"][0]["text"].clone(), closed["notes"][0]["by"].clone()),
        (json!(note), json!(operator_id))
    );

    // The kill switch: engaged from the console, an RFQ is refused; released, trading resumes.
    act(browser, "#kill-switch", &[("reason", "console drill")]).await;
    browser
        .until("the engaged pill", "document.getElementById('trading-pill').textContent.includes('KILL SWITCH')")
        .await;
    let refused = desk.rfq(key, &json!({"instrument": "BTC-USD", "side": "buy", "quantity": "0.1"}));
    otcd_testkit::http::assert_problem(&refused, 409, "trading_halted");
    browser
        .until("the release button", "document.getElementById('kill-switch').textContent.startsWith('Release')")
        .await;
    act(browser, "#kill-switch", &[]).await;
    browser.until("trading on", "document.getElementById('trading-pill').textContent.startsWith('trading on')").await;
    desk.rfq(key, &json!({"instrument": "BTC-USD", "side": "buy", "quantity": "0.1"})).expect(201);

    // The destination under review.
    let destination = &work.destination_id;
    act(
        browser,
        &format!("#destinations button[data-action=destination-approve][data-destination={destination}]"),
        &[],
    )
    .await;
    let queue = desk.get(&desk.admin, "/v1/admin/destinations?status=pending_review").expect(200).clone();
    assert_eq!(queue["items"], json!([]), "{queue}");
    browser
        .until(
            "the empty review queue",
            "document.getElementById('destinations').textContent.includes('No destination')",
        )
        .await;
    browser.collect_errors().await;
}

/// The rest of the console's actions, each through its dialog and checked through the API: a key created (its
/// secret shown once) and revoked, an instrument halted and resumed, a desk position limit, a net settlement cycle,
/// a manual price.
async fn operate_more(browser: &mut Browser, desk: &TestDesk) {
    // The secret's dialog follows the confirmation at once.
    confirm(browser, "button[data-action=key-create]", &[], None).await;
    let new_key = browser
        .until(
            "the new secret",
            "document.getElementById('action-dialog').open && document.querySelector('[data-new-secret]')",
        )
        .await;
    assert!(!new_key.is_null());
    let key_id = text(&browser.js("return document.querySelector('[data-new-key-id]').textContent").await);
    let secret = text(&browser.js("return document.querySelector('[data-new-secret]').textContent").await);
    browser.client.find(Locator::Id("action-confirm")).await.unwrap().click().await.unwrap();
    browser.until("the secret dialog closed", "!document.getElementById('action-dialog').open").await;
    // The secret works (a read-only operator key, the default), and is not on the page any more.
    desk.get(&Signer::hmac(&key_id, &secret), "/v1/admin/trading").expect(200);
    let shown = browser.js(&format!("return document.body.innerHTML.includes('{secret}')")).await;
    assert_eq!(shown, json!(false), "the secret is shown once");
    act(browser, &format!("#keys button[data-action=key-revoke][data-key={key_id}]"), &[]).await;
    otcd_testkit::http::assert_problem(
        &desk.get(&Signer::hmac(&key_id, &secret), "/v1/admin/trading"),
        401,
        "unauthenticated",
    );

    act(
        browser,
        "#instrument-controls button[data-action=halt][data-instrument=ETH-USD]",
        &[("reason", "venue outage")],
    )
    .await;
    let trading = desk.get(&desk.admin, "/v1/admin/trading").expect(200).clone();
    let halted = trading["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["instrument"] == json!("ETH-USD") && c["halted"] == json!(true));
    assert!(halted, "{trading}");
    act(browser, "#instrument-controls button[data-action=resume][data-instrument=ETH-USD]", &[]).await;
    let trading = desk.get(&desk.admin, "/v1/admin/trading").expect(200).clone();
    assert!(trading["instruments"].as_array().unwrap().iter().all(|c| c["halted"] == json!(false)), "{trading}");

    browser
        .until(
            "the limits table",
            "document.querySelector('#limit-controls button[data-action=limit][data-asset=BTC]')",
        )
        .await;
    act(
        browser,
        "#limit-controls button[data-action=limit][data-asset=BTC]",
        &[("short_max", "50"), ("long_max", "100")],
    )
    .await;
    let trading = desk.get(&desk.admin, "/v1/admin/trading").expect(200).clone();
    let limit =
        trading["position_limits"].as_array().unwrap().iter().find(|l| l["asset"] == json!("BTC")).unwrap().clone();
    assert_eq!((limit["short_max"].clone(), limit["long_max"].clone()), (json!("50.00000000"), json!("100.00000000")));

    act(browser, "button[data-action=net-settlement]", &[]).await;
    browser
        .until("the settlement's answer", "document.getElementById('toast').textContent.startsWith('Net settlement')")
        .await;

    let price = [("instrument", "ETH-USD"), ("bid", "2990.00"), ("ask", "3010.00")];
    act(browser, "button[data-action=manual-price]", &price).await;
    act(
        browser,
        "#limit-controls button[data-action=skew][data-asset=GBP]",
        &[("bps_per_unit", "2"), ("max_bps", "25")],
    )
    .await;

    // The second alert: assigned, then escalated with a note; a client moved to another tier.
    let open = "document.querySelector('#alerts tr[data-alert] button[data-action=alert-assign]')";
    let alert_id = text(&browser.until("an open alert", &format!("{open} && {open}.dataset.alert")).await);
    act(
        browser,
        &format!("#alerts button[data-action=alert-assign][data-alert={alert_id}]"),
        &[("assignee", "mlro@desk")],
    )
    .await;
    act(
        browser,
        &format!("#alerts button[data-action=alert-escalate][data-alert={alert_id}]"),
        &[("note", "pattern across three days")],
    )
    .await;
    let alerts = desk.get(&desk.admin, "/v1/admin/alerts?status=escalated").expect(200).clone();
    assert_eq!(
        (alerts["items"][0]["alert_id"].clone(), alerts["items"][0]["assignee"].clone()),
        (json!(alert_id), json!("mlro@desk")),
        "{alerts}"
    );
    // Polaris, not the client whose ladder is checked later at the standard tier's spread.
    let tier = r#"#clients button[data-action=tier][data-name="Polaris Holdings AG"]"#;
    browser.until("Polaris's tier button", &format!("document.querySelector('{tier}')")).await;
    let client_id = text(&browser.js(&format!("return document.querySelector('{tier}').dataset.client")).await);
    act(browser, tier, &[("tier", "gold")]).await;
    let moved = desk.get(&desk.admin, &format!("/v1/admin/clients/{client_id}")).expect(200).clone();
    assert_eq!(moved["tier"], json!("gold"), "{moved}");
    // 2990.00 × (1 − 20 bps) at the standard tier.
    let indicative = desk.get(&desk.admin, "/v1/prices/ETH-USD").expect(200).clone();
    assert_eq!(indicative["bid"], json!("2984.02"), "{indicative}");
}

/// A read-only operator key signs in to the same console: everything shown, no action visible.
async fn watch_read_only(browser: &mut Browser, desk: &TestDesk, base: &str) {
    let watcher = desk.post(&desk.admin, "/v1/admin/keys", &json!({"scopes": ["read"], "algorithm": "hmac"}));
    let watcher = watcher.expect(201).clone();
    browser.client.find(Locator::Id("signout")).await.unwrap().click().await.unwrap();
    browser.goto(&format!("{base}/")).await;
    browser.until("the sign-in form", "!document.getElementById('signin').hidden").await;
    browser.client.find(Locator::Id("key-id")).await.unwrap().send_keys(&text(&watcher["key_id"])).await.unwrap();
    browser.client.find(Locator::Id("secret")).await.unwrap().send_keys(&text(&watcher["secret"])).await.unwrap();
    browser.press(Key::Enter).await;
    browser.until("the read-only console", "!document.getElementById('app').hidden").await;
    browser.until("the clients", "document.querySelectorAll('#clients tr').length >= 2").await;
    browser.until("the read-only badge", "!document.getElementById('readonly-pill').hidden").await;
    let visible = browser
        .js("return [...document.querySelectorAll('[data-action]')].filter((b) => b.offsetParent !== null).length")
        .await;
    assert_eq!(visible, json!(0), "no action is visible to a read-only operator");
    browser.client.find(Locator::Id("signout")).await.unwrap().click().await.unwrap();
}

async fn scenario(browser: &mut Browser, desk: &TestDesk, key: &Signer, token: &str, work: &Work) {
    let base = format!("http://{}", desk.address);

    // 1. The console: nothing without signing in; sign in with the admin key.
    browser.goto(&format!("{base}/")).await;
    browser.until("the sign-in form", "!document.getElementById('signin').hidden").await;
    browser.assert_labelled("sign-in").await;
    // Any operator key signs in; a new one here, since its secret is shown once, on creation.
    let operator = desk.post(&desk.admin, "/v1/admin/keys", &json!({"scopes": ["read", "admin"], "algorithm": "hmac"}));
    let operator = operator.expect(201).clone();
    let (operator_id, operator_secret) = (text(&operator["key_id"]), text(&operator["secret"]));
    let key_id = browser.client.find(Locator::Id("key-id")).await.unwrap();
    key_id.send_keys(&operator_id).await.unwrap();
    let secret = browser.client.find(Locator::Id("secret")).await.unwrap();
    secret.send_keys(&operator_secret).await.unwrap();
    browser.press(Key::Enter).await;
    browser.until("the console", "!document.getElementById('app').hidden").await;
    browser.until("the clients", "document.querySelectorAll('#clients tr').length >= 2").await;
    browser.until("the seeded trades", "document.querySelectorAll('#trades tr[data-trade]').length >= 3").await;
    browser.until("the audit check", "document.getElementById('audit-pill').textContent.includes('intact')").await;
    browser
        .until("the reconciliation", "document.getElementById('reconciliation-pill').textContent === 'matched'")
        .await;
    let secret_kept = browser.js(&format!("return JSON.stringify(sessionStorage).includes('{operator_secret}')")).await;
    assert_eq!(secret_kept, json!(false), "the secret is never stored");
    browser.assert_labelled("console").await;
    operate(browser, desk, key, work, &operator_id).await;
    operate_more(browser, desk).await;
    watch_read_only(browser, desk, &base).await;
    // Back as the operator for the rest.
    browser.until("the sign-in form", "!document.getElementById('signin').hidden").await;
    let key_id = browser.client.find(Locator::Id("key-id")).await.unwrap();
    key_id.clear().await.unwrap();
    key_id.send_keys(&operator_id).await.unwrap();
    browser.client.find(Locator::Id("secret")).await.unwrap().send_keys(&operator_secret).await.unwrap();
    browser.press(Key::Enter).await;
    browser.until("the console", "!document.getElementById('app').hidden").await;

    // 2. The client's page: components with a session token in the fragment.
    browser.goto(&format!("{base}/ui/example.html#token={token}")).await;
    browser.until("a firm ladder", &format!("{LADDER}.querySelector('[data-kind]').textContent === 'FIRM'")).await;
    // 50000.00 × 0.998 and 50010.00 × 1.002 at the standard tier, grouped for people.
    browser
        .until("the ladder's bid", &format!("{LADDER}.querySelector('[data-bid]').textContent === '49,900.00'"))
        .await;
    browser
        .until(
            "the balances",
            "document.querySelector('otcd-balances').shadowRoot.querySelector('[data-available=USD]')",
        )
        .await;
    browser
        .until(
            "the KYC checklist",
            "document.querySelector('otcd-kyc-status').shadowRoot.querySelectorAll('li.done').length >= 2",
        )
        .await;
    browser.assert_labelled("components").await;
    // Amounts at the asset's display precision (ETH 6 of its 18 places; 200 deposited, 40 sold), grouped.
    let balances = "document.querySelector('otcd-balances').shadowRoot";
    browser
        .until(
            "ETH at 6 places",
            &format!("{balances}.querySelector('[data-available=ETH]').textContent === '160.000000'"),
        )
        .await;
    browser
        .until("USD grouped", &format!("/^\\d{{1,3}}(,\\d{{3}})+\\.\\d\\d$/.test({balances}.querySelector('[data-available=USD]').textContent)"))
        .await;
    assert_fits_a_phone(browser).await;

    // Keyboard only: Tab to the quantity field, type, Enter requests a quote.
    let mut reached = false;
    for _ in 0..25 {
        browser.press(Key::Tab).await;
        let focused = browser.js(&format!("const a = {TICKET}.activeElement; return a ? a.name : null")).await;
        if focused == json!("quantity") {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab reaches the ticket's quantity field");
    browser.js(&format!("{TICKET}.activeElement.select()")).await;
    browser.type_text("1.5").await;
    browser.press(Key::Enter).await;
    browser.until("a firm quote", &format!("!{TICKET}.querySelector('[data-quote]').hidden")).await;
    let countdown =
        browser.until("the countdown", &format!("{TICKET}.querySelector('[data-countdown]').textContent")).await;
    assert!(countdown.as_str().unwrap().starts_with("Valid for"), "{countdown}");
    let price = browser.js(&format!("return {TICKET}.querySelector('[data-price]').textContent")).await;
    assert_eq!(price, json!("50,110.02 USD"), "the quote's price, grouped");
    // Before Accept the client sees what the trade moves: 1.5 × 50110.02 = 75165.03 USD, no fee at this tier.
    let figure = |name: &str| format!("return {TICKET}.querySelector('[data-{name}]').textContent");
    assert_eq!(browser.js(&figure("qqty")).await, json!("1.50000000 BTC"));
    assert_eq!(browser.js(&figure("qprice")).await, json!("50,110.02 USD per BTC"));
    assert_eq!(browser.js(&figure("qtotal")).await, json!("75,165.03 USD"));
    assert_eq!(browser.js(&figure("qfee")).await, json!("0.00 USD"));
    assert_eq!(browser.js(&figure("qnetlabel")).await, json!("You pay"));
    assert_eq!(browser.js(&figure("qnet")).await, json!("75,165.03 USD"));
    browser.screenshot("ticket.png").await;
    // Focus is on Accept: Enter accepts.
    let focused = browser.js(&format!("return {TICKET}.activeElement && {TICKET}.activeElement.textContent")).await;
    assert_eq!(focused, json!("Accept"));
    browser.press(Key::Enter).await;
    let fill = browser
        .until(
            "the fill",
            &format!(
                "!{TICKET}.querySelector('[data-fill]').hidden && {TICKET}.querySelector('[data-fill]').textContent"
            ),
        )
        .await;
    assert!(fill.as_str().unwrap().contains("filled: buy 1.50000000 BTC at 50,110.02 USD"), "{fill}");

    // The trade is in the client's history (and the API agrees).
    let trades = desk.get(key, "/v1/trades?limit=1").expect(200).clone();
    let trade_id = text(&trades["items"][0]["trade_id"]);
    assert_eq!(trades["items"][0]["quantity"], json!("1.50000000"));
    browser
        .until("the trade in the history", &format!("{HISTORY}.querySelector('tr[data-trade=\"{trade_id}\"]')"))
        .await;

    // A manual price change reaches the ladder: 51000.00 × 0.998 = 50898.00, 51010.00 × 1.002 = 51112.02.
    desk.set_price("BTC-USD", "51000.00", "51010.00");
    browser.until("the new bid", &format!("{LADDER}.querySelector('[data-bid]').textContent === '50,898.00'")).await;
    browser.until("the new ask", &format!("{LADDER}.querySelector('[data-ask]').textContent === '51,112.02'")).await;

    // A read-only session sees the same ladder as indicative, marked as such, and cannot be mistaken for firm.
    let read_only = text(&session(desk, key, &json!({"scopes": ["read"]})).expect(201)["token"]);
    browser.goto(&format!("{base}/ui/example.html#token={read_only}")).await;
    browser
        .until("an indicative ladder", &format!("{LADDER}.querySelector('[data-kind]').textContent === 'INDICATIVE'"))
        .await;
    let note = browser.js(&format!("return {LADDER}.querySelector('[data-note]').textContent")).await;
    assert!(note.as_str().unwrap().contains("not executable"), "{note}");

    // 3. Back on the console (the session token is still in this tab): the trade is there.
    browser.goto(&format!("{base}/")).await;
    browser.until("the console again", "!document.getElementById('app').hidden").await;
    browser
        .until(
            "the client's trade on the console",
            &format!("document.querySelector('#trades tr[data-trade=\"{trade_id}\"]')"),
        )
        .await;
    browser.until("a price chart", "document.querySelector('#price-chart svg')").await;
    browser.until("an exposure chart", "document.querySelector('#exposure-chart svg')").await;
    // The hedging panel: a policy on BTC (the desk is short 3 BTC after the flow above) opens a hedge at the
    // paper venue `manual`; the panel shows it filled with its P&L, the position back inside the band, and the
    // venue's balance as the ledger and the venue see it.
    let policy = json!({"enabled": true, "band": "0.5", "instruments": ["BTC-USD"], "venues": ["manual"],
        "order_quantity_max": "1"});
    desk.put(&desk.admin, "/v1/admin/hedging/BTC", &policy).expect(200);
    let filled = "document.querySelector('#hedges-recent tr[data-hedge][data-state=filled]')";
    let row = browser.until("a filled hedge on the panel", &format!("{filled} && {filled}.textContent")).await;
    let row = row.as_str().unwrap().to_owned();
    assert!(row.contains("hg_0000000001") && row.contains("3.00000000 / 3.00000000"), "{row}");
    let pnl = "document.querySelector('#hedges-recent tr[data-hedge=hg_0000000001] td:last-child')";
    browser.until("the hedge's P&L", &format!("{pnl} && {pnl}.textContent !== '—' && {pnl}.textContent")).await;
    let btc = "document.querySelector('#hedge-positions tr[data-asset=BTC]')";
    let position = browser
        .until(
            "BTC inside its band",
            &format!("{btc} && {btc}.textContent.includes('inside band') && {btc}.textContent"),
        )
        .await;
    assert!(position.as_str().unwrap().contains("0.00000000"), "hedged back to the target: {position}");
    let venue = "document.querySelector('#venue-balances tr[data-venue=manual][data-asset=BTC]')";
    let line = browser.until("the venue's BTC", &format!("{venue} && {venue}.textContent")).await;
    // The paper venue opened with 1,000 BTC the ledger does not know: 1,003 reported, 3 on the ledger, a break.
    let line = line.as_str().unwrap();
    assert!(line.contains("1,003") && line.contains("break"), "{line}");
    let hedges = desk.get(&desk.admin, "/v1/admin/hedging").expect(200).clone();
    assert_eq!(hedges["recent"][0]["state"], json!("filled"), "{hedges:#}");

    // Let the price chart gather a few seconds of samples before the picture.
    for (bid, ask) in
        [("51020.00", "51030.00"), ("50990.00", "51000.00"), ("51045.00", "51055.00"), ("51030.00", "51040.00")]
    {
        desk.set_price("BTC-USD", bid, ask);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    browser.client.set_window_size(1440, 1900).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    browser.screenshot("console.png").await;

    // 4. Sign out: the dashboard is gone and the token is forgotten.
    browser.client.find(Locator::Id("signout")).await.unwrap().click().await.unwrap();
    browser.until("the sign-in form again", "!document.getElementById('signin').hidden").await;
    let kept = browser.js("return sessionStorage.getItem('otcd-console-session')").await;
    assert_eq!(kept, Value::Null);

    browser.collect_errors().await;
    assert!(browser.errors.is_empty(), "the pages logged errors: {:#?}", browser.errors);
}
