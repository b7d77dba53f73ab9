//! A protocol adapter needs nothing but the desk services: this test drives a whole trade through them, with no
//! HTTP, on a real runner and journal: onboard a client, fund it, request a firm quote, accept it, and see the
//! ledger and the event feed change. The rails are a stub of the ports (no simulator), as a real adapter would be.

use otcd_core::catalog::AssetCode;
use otcd_core::engine::events::DeskEvent;
use otcd_core::engine::{fixtures, Actor};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::Side;
use otcd_core::model::{KeyOwner, RequestedSize, Scope, Settlement};
use otcd_host::clock::SystemClock;
use otcd_host::events::{EventFilter, EventHub};
use otcd_host::metrics::Metrics;
use otcd_host::reports::ReportsService;
use otcd_host::runner::{Runner, RunnerConfig};
use otcd_services::accounts::{KeyCredential, KeyRequest};
use otcd_services::orders::OrderTicket;
use otcd_services::ports::{Rail, RailAccount, RailMovement, RailStatements, RailStatus};
use otcd_services::quotes::RfqTicket;
use otcd_services::{DeskServices, Internal, Rails, Settings};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Rails that never move anything: this test trades, it does not pay out.
struct IdleRails;

impl Rail for IdleRails {
    fn submit(
        &self,
        _: &otcd_core::engine::settlement::Withdrawal,
        _: otcd_core::catalog::AssetKind,
    ) -> Result<String, String> {
        Err("no rail in this test".into())
    }
    fn status(
        &self,
        _: &otcd_core::engine::settlement::Withdrawal,
        _: otcd_core::catalog::AssetKind,
        _: otcd_core::time::TimestampMs,
    ) -> RailStatus {
        RailStatus::InFlight
    }
    fn instruction_status(
        &self,
        _: &otcd_core::engine::netting::Instruction,
        _: otcd_core::catalog::AssetKind,
        _: otcd_core::time::TimestampMs,
    ) -> RailStatus {
        RailStatus::InFlight
    }
    fn deposit_confirmations(&self, _: &otcd_core::engine::custody::ChainDeposit) -> Option<u32> {
        None
    }
}

impl RailStatements for IdleRails {
    fn balances(&self) -> BTreeMap<(AssetCode, RailAccount), i128> {
        BTreeMap::new()
    }
    fn movements(&self, _: AssetCode, _: usize) -> Vec<RailMovement> {
        Vec::new()
    }
}

/// A desk on a fresh data directory: recovered store, runner with an event feed, the services over idle rails and
/// a manual market.
struct EmbeddedDesk {
    _directory: tempfile::TempDir,
    runner: Runner,
    services: Arc<DeskServices>,
}

impl EmbeddedDesk {
    async fn start() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let opened = otcd_host::store::open(directory.path(), &SystemClock).unwrap();
        let metrics = Arc::new(Metrics::new());
        let events = EventHub::new(Some(metrics.clone()));
        let keys = otcd_services::keys::KeyRegistry::new(Arc::new(opened.master_key));
        let config = RunnerConfig { events: Some(events.clone()), ..RunnerConfig::default() };
        let runner = Runner::start(opened.desk, Box::new(opened.journal), opened.snapshots, config, metrics.clone());
        let engine = runner.handle();
        engine.submit(Actor::default(), fixtures::initialize_desk()).await.unwrap();
        let catalog = otcd_core::catalog::Catalog::builtin();
        let market = otcd_market::MarketHub::new(&catalog, otcd_market::HubConfig::default());
        let rails = Rails { rail: Arc::new(IdleRails), statements: Arc::new(IdleRails), simulation: None };
        let services = Arc::new(DeskServices {
            engine,
            catalog,
            clock: Arc::new(SystemClock),
            market,
            keys,
            screening: otcd_services::screening::ScreeningService::disabled(),
            reports: ReportsService::disabled(),
            events,
            rails,
            settings: Settings::default(),
            execution: None,
            internal: Internal::new(&metrics),
            metrics,
        });
        Self { _directory: directory, runner, services }
    }

    fn stop(self) {
        drop(self.services);
        self.runner.shutdown();
    }
}

fn units(text: &str, scale: u8) -> i128 {
    otcd_core::decimal::parse_positive(text, scale).unwrap()
}

#[tokio::test]
async fn an_rfq_accepted_through_the_services_moves_the_ledger_and_publishes_the_balances() {
    let desk = EmbeddedDesk::start().await;
    let services = &desk.services;
    let admin = Actor::default();
    let client = services
        .create_client(admin.clone(), fixtures::approved_client("Embedded Ltd", Settlement::Prefunded, None))
        .await
        .unwrap();
    let client_id: ClientId = client.client_id.clone();
    let key =
        KeyRequest { scopes: vec![Scope::Read, Scope::Trade], credential: KeyCredential::Hmac, allowed_ips: vec![] };
    let issued = services.create_key(admin.clone(), KeyOwner::Client(client_id.clone()), key).await.unwrap();
    assert!(
        issued.secret.is_some() && services.keys.get(issued.key.key_id.as_str()).is_some(),
        "the registry knows it"
    );
    let usd = AssetCode::parse("USD").unwrap();
    let reference = ClientReference::parse("wire-1").unwrap();
    let funded = services.deposit(admin.clone(), client_id.clone(), usd, units("100000", 2), reference).await.unwrap();
    assert!(funded.changed);

    let mut events = services.events.subscribe(EventFilter::Client(client_id.clone()), 64).unwrap();
    let instrument = services.instrument("BTC-USD").unwrap().clone();
    services.put_manual_market(&instrument, units("50000.00", 2), units("50010.00", 2)).unwrap();
    let ticket = RfqTicket {
        client_id: client_id.clone(),
        client_rfq_id: None,
        instrument: instrument.clone(),
        side: Side::Buy,
        size: RequestedSize::Base(units("0.5", 8)),
    };
    let quote = services.request_quote(Actor::default(), ticket).await.unwrap().value;
    let price = quote.ask.expect("a buy quote has an ask");
    let order_ticket = OrderTicket::Quote { quote_id: quote.quote_id.clone(), side: None };
    let order_id = ClientReference::parse("order-1").unwrap();
    let placed = services.place_order(Actor::default(), client_id.clone(), order_id, order_ticket).await.unwrap();
    assert!(placed.changed);
    assert_eq!(placed.value.trades.len(), 1, "a quote fills whole");
    let trade = &placed.value.trades[0];
    assert_eq!((trade.price, trade.quantity), (price, units("0.5", 8)));

    let owner = client_id.clone();
    let balances = services.read(move |desk| desk.balances(&owner)).await.unwrap();
    let available = |code: &str| balances.iter().find(|line| line.asset.as_str() == code).unwrap().available;
    assert_eq!(available("BTC"), units("0.5", 8));
    assert_eq!(available("USD"), units("100000", 2) - trade.quote_amount - trade.fee);

    let mut balance_events = Vec::new();
    while balance_events.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
        if let DeskEvent::Balance(balance) = &event.event {
            balance_events.push((event.seq, balance.asset.to_string(), balance.available));
        }
    }
    let mut assets: Vec<_> = balance_events.iter().map(|(_, asset, _)| asset.clone()).collect();
    assets.sort();
    assert_eq!(assets, ["BTC", "USD"], "one balance event per asset the trade moved");
    assert!(balance_events.iter().all(|(seq, _, _)| *seq == balance_events[0].0), "both from the acceptance's record");
    assert!(balance_events.contains(&(balance_events[0].0, "USD".into(), available("USD"))));
    desk.stop();
}
