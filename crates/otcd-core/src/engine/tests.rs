use super::*;
use crate::catalog::AssetCode;
use crate::model::{Jurisdiction, KycStatus};

fn admin_key() -> NewKey {
    NewKey {
        key_id: KeyId::parse("k_admin").unwrap(),
        scopes: vec![Scope::Admin, Scope::Read],
        algorithm: KeyAlgorithm::Hmac,
        credential: vec![7; 60],
        allowed_ips: vec![],
    }
}

fn record(at: i64, command: Command) -> JournalRecord {
    JournalRecord { at: TimestampMs(at), actor: Actor::default(), command }
}

fn desk() -> Desk {
    let mut desk = Desk::new();
    desk.execute(&record(1, Command::InitializeDesk { catalog: Catalog::builtin(), admin_key: admin_key() })).unwrap();
    desk
}

fn new_client(settlement: Settlement) -> NewClient {
    NewClient {
        name: "Acme Capital".into(),
        jurisdiction: Jurisdiction::parse("DE").unwrap(),
        tier: TierName::parse("standard").unwrap(),
        kyc_status: KycStatus::Approved,
        kyc_expires_at: None,
        settlement,
        credit_limit_usd: None,
        screening: None,
    }
}

fn add_client(desk: &mut Desk) -> ClientId {
    match desk.execute(&record(2, Command::CreateClient(new_client(Settlement::Prefunded)))).unwrap().outcome {
        Outcome::Client(client) => client.client_id,
        other => panic!("unexpected {other:?}"),
    }
}

fn deposit(client_id: &ClientId, asset: &str, amount: i128, reference: &str) -> Command {
    Command::Deposit(NewDeposit {
        client_id: client_id.clone(),
        asset: AssetCode::parse(asset).unwrap(),
        amount,
        reference: ClientReference::parse(reference).unwrap(),
        notional_usd: None,
    })
}

#[test]
fn commands_before_initialization_are_refused() {
    let mut desk = Desk::new();
    let error = desk.execute(&record(1, Command::CreateClient(new_client(Settlement::Prefunded)))).unwrap_err();
    assert_eq!(error, CommandError::NotInitialized);
    assert_eq!(desk.clients().count(), 0);
}

#[test]
fn deposit_credits_available_and_balances_the_ledger() {
    let mut desk = desk();
    let client_id = add_client(&mut desk);
    desk.execute(&record(3, deposit(&client_id, "USD", 5_005_000, "wire-1"))).unwrap();
    let usd = desk.balances(&client_id).into_iter().find(|line| line.asset.as_str() == "USD").unwrap();
    assert_eq!((usd.available, usd.reserved, usd.scale), (5_005_000, 0, 2));
    desk.ledger().check_invariants().unwrap();
    let bank = desk
        .ledger()
        .account_id(&AccountKey { owner: Owner::Desk, asset: AssetCode::parse("USD").unwrap(), purpose: Purpose::Bank })
        .unwrap();
    assert_eq!(desk.ledger().balance(bank), -5_005_000);
}

#[test]
fn deposit_repeat_is_idempotent_and_a_different_body_conflicts() {
    let mut desk = desk();
    let client_id = add_client(&mut desk);
    let first = desk.execute(&record(3, deposit(&client_id, "BTC", 100, "tx-1"))).unwrap();
    let again = desk.execute(&record(4, deposit(&client_id, "BTC", 100, "tx-1"))).unwrap();
    assert!(first.changed && !again.changed);
    match (first.outcome, again.outcome) {
        (Outcome::Deposit { deposit: a, repeated: false }, Outcome::Deposit { deposit: b, repeated: true }) => {
            assert_eq!(a, b)
        }
        other => panic!("unexpected {other:?}"),
    }
    let conflict = desk.execute(&record(5, deposit(&client_id, "BTC", 101, "tx-1"))).unwrap_err();
    assert_eq!(conflict.code(), "conflict");
    assert_eq!(desk.balances(&client_id)[0].available, 100);
}

#[test]
fn refused_deposits_change_nothing() {
    let mut desk = desk();
    let client_id = add_client(&mut desk);
    let before = serde_json::to_string(&desk).unwrap();
    assert_eq!(desk.execute(&record(3, deposit(&client_id, "BTC", 0, "zero"))).unwrap_err().code(), "invalid_request");
    let stranger = ClientId::parse("cl_nobody").unwrap();
    assert_eq!(desk.execute(&record(3, deposit(&stranger, "BTC", 1, "x"))).unwrap_err().code(), "not_found");
    assert_eq!(serde_json::to_string(&desk).unwrap(), before);
}

#[test]
fn switching_to_prefunded_puts_a_zero_floor_on_available_accounts() {
    let mut desk = desk();
    let created = desk.execute(&record(2, Command::CreateClient(new_client(Settlement::Credit)))).unwrap();
    let Outcome::Client(client) = created.outcome else { panic!() };
    desk.execute(&record(3, deposit(&client.client_id, "USD", 100, "d1"))).unwrap();
    let key = AccountKey {
        owner: Owner::Client(client.client_id.clone()),
        asset: AssetCode::parse("USD").unwrap(),
        purpose: Purpose::Available,
    };
    let account = desk.ledger().account_id(&key).unwrap();
    assert_eq!(desk.ledger().account(account).unwrap().floor, None);
    let changes = ClientChanges { settlement: Some(Settlement::Prefunded), ..ClientChanges::default() };
    desk.execute(&record(4, Command::UpdateClient { client_id: client.client_id.clone(), changes })).unwrap();
    assert_eq!(desk.ledger().account(account).unwrap().floor, Some(0));
    assert_eq!(desk.client(&client.client_id).unwrap().credit_limit_usd, None);
}

#[test]
fn kyc_changes_are_recorded_with_who_made_them() {
    let mut desk = desk();
    let client_id = add_client(&mut desk);
    let actor = Actor {
        key_id: Some(KeyId::parse("k_admin").unwrap()),
        source_ip: Some("127.0.0.1".into()),
        ..Actor::default()
    };
    let changes = ClientChanges { kyc_status: Some(KycStatus::Rejected), ..ClientChanges::default() };
    let command = Command::UpdateClient { client_id: client_id.clone(), changes };
    desk.execute(&JournalRecord { at: TimestampMs(9), actor, command }).unwrap();
    let history = &desk.client(&client_id).unwrap().kyc_history;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].status, KycStatus::Rejected);
    assert_eq!(history[1].by.as_ref().unwrap().as_str(), "k_admin");
}

#[test]
fn the_last_admin_key_cannot_be_revoked() {
    let mut desk = desk();
    let error = desk.execute(&record(2, Command::RevokeKey { key_id: KeyId::parse("k_admin").unwrap() })).unwrap_err();
    assert_eq!(error.code(), "conflict");
}

#[test]
fn client_keys_cannot_be_admin() {
    let mut desk = desk();
    let client_id = add_client(&mut desk);
    let key = NewKey { key_id: KeyId::parse("k_c").unwrap(), ..admin_key() };
    let error = desk.execute(&record(3, Command::CreateKey { owner: KeyOwner::Client(client_id), key })).unwrap_err();
    assert_eq!(error, CommandError::invalid("scopes", "client keys cannot have the admin scope"));
}

#[test]
fn snapshot_round_trip_restores_the_same_state() {
    let mut desk = desk();
    let client_id = add_client(&mut desk);
    desk.execute(&record(3, deposit(&client_id, "ETH", 10, "a"))).unwrap();
    let text = serde_json::to_string(&desk).unwrap();
    let mut restored: Desk = serde_json::from_str(&text).unwrap();
    restored.rebuild_indexes();
    assert_eq!(serde_json::to_string(&restored).unwrap(), text);
    assert_eq!(restored.balances(&client_id), desk.balances(&client_id));
    // Indexes work after the restore: a repeat is recognized.
    assert!(!restored.execute(&record(4, deposit(&client_id, "ETH", 10, "a"))).unwrap().changed);
}

#[test]
fn ledger_pages_follow_the_cursor() {
    let mut desk = desk();
    let client_id = add_client(&mut desk);
    for index in 0..5 {
        desk.execute(&record(
            10 + index,
            deposit(&client_id, "USD", 100 + i128::from(index as u8), &format!("r{index}")),
        ))
        .unwrap();
    }
    let mut query = LedgerQuery { asset: None, from: None, to: None, after: None, limit: 2 };
    let mut amounts = Vec::new();
    loop {
        let page = desk.ledger_lines(&client_id, &query);
        amounts.extend(page.items.iter().map(|line| line.amount));
        match page.next_cursor {
            Some(cursor) => query.after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(amounts, vec![100, 101, 102, 103, 104]);
    let windowed = desk.ledger_lines(
        &client_id,
        &LedgerQuery { from: Some(TimestampMs(11)), to: Some(TimestampMs(13)), after: None, ..query },
    );
    assert_eq!(windowed.items.iter().map(|line| line.amount).collect::<Vec<_>>(), vec![101, 102]);
}

#[test]
fn amounts_and_balances_beyond_the_assets_maximum_are_refused_by_name() {
    let mut desk = desk();
    let client_id = add_client(&mut desk);
    // 10^12 USD is 10^14 cents: exactly the maximum is accepted, one cent more in one deposit is not.
    let maximum: i128 = 100_000_000_000_000;
    let error = desk.execute(&record(3, deposit(&client_id, "USD", maximum + 1, "too-much"))).unwrap_err();
    assert_eq!(
        error,
        CommandError::invalid("amount", "must be at most 1000000000000 USD (the asset's maximum)"),
        "a single amount"
    );
    let huge = 99_999_999_999_999_999_999_999_999_999i128 * 100;
    assert!(matches!(
        desk.execute(&record(3, deposit(&client_id, "USD", huge, "huge"))).unwrap_err(),
        CommandError::Invalid { field: "amount", ref detail } if detail.contains("1000000000000 USD")
    ));
    desk.execute(&record(3, deposit(&client_id, "USD", maximum - 100, "almost"))).unwrap();
    let error = desk.execute(&record(4, deposit(&client_id, "USD", 101, "over"))).unwrap_err();
    assert!(
        matches!(&error, CommandError::Invalid { field: "amount", detail } if detail.contains("maximum balance")),
        "{error:?}"
    );
    desk.execute(&record(4, deposit(&client_id, "USD", 100, "exact"))).unwrap();
    let usd = desk.balances(&client_id).into_iter().find(|line| line.asset.as_str() == "USD").unwrap();
    assert_eq!(usd.available, maximum, "refused deposits changed nothing");
    // ETH's scale is 18: its maximum in minor units (10^30) still fits an i128.
    let eth = desk.catalog().unwrap().asset(&AssetCode::parse("ETH").unwrap()).unwrap().clone();
    assert_eq!(eth.amount_max(), 10i128.pow(30));
}

#[test]
fn catalogs_journaled_before_the_maximum_existed_get_the_default() {
    let old = r#"{"code":"USD","scale":2,"kind":"fiat"}"#;
    let asset: crate::catalog::Asset = serde_json::from_str(old).unwrap();
    assert_eq!(asset.amount_max_whole, crate::catalog::ASSET_AMOUNT_MAX_WHOLE_DEFAULT);
}

/// The webhook outbox is state: it survives a snapshot (serialization) with its events, and journaled progress
/// trims it.
#[test]
fn the_webhook_outbox_holds_wanted_events_through_a_snapshot_until_progress_passes_them() {
    use webhooks::{NewWebhook, OutboxPosition, WebhookEventKind};
    let mut desk = desk();
    let client_id = add_client(&mut desk);
    let new = NewWebhook {
        webhook_id: "wh_1".into(),
        url: "https://example.com/hook".into(),
        events: vec![WebhookEventKind::Balance],
        client_id: Some(client_id.clone()),
        sealed_secret: vec![1, 2, 3],
    };
    desk.execute(&record(3, Command::CreateWebhook(new))).unwrap();
    assert_eq!(desk.seq(), 3);
    desk.execute(&record(4, deposit(&client_id, "USD", 12_345, "w-1"))).unwrap();
    desk.execute(&record(5, deposit(&client_id, "BTC", 7, "w-2"))).unwrap();
    let entries = desk.webhook_outbox_after(OutboxPosition::default(), 10);
    assert_eq!(entries.iter().map(|entry| entry.position.seq).collect::<Vec<_>>(), [4, 5], "one balance each");

    let mut restored: Desk = serde_json::from_slice(&serde_json::to_vec(&desk).unwrap()).unwrap();
    restored.rebuild_indexes();
    assert_eq!(restored.webhook_outbox_after(OutboxPosition::default(), 10), entries, "the outbox is in snapshots");
    assert_eq!(restored.seq(), 5);

    let advance = Command::AdvanceWebhooks { advances: vec![("wh_1".into(), entries[0].position)] };
    assert!(restored.execute(&record(6, advance.clone())).unwrap().changed);
    assert_eq!(restored.webhook_outbox_len(), 1, "progress trims what every webhook passed");
    assert!(!restored.execute(&record(7, advance)).unwrap().changed, "progress never goes back");
    restored.execute(&record(8, Command::DeleteWebhook { webhook_id: "wh_1".into() })).unwrap();
    assert_eq!(restored.webhook_outbox_len(), 0);
    restored.execute(&record(9, deposit(&client_id, "USD", 1, "w-3"))).unwrap();
    assert_eq!(restored.webhook_outbox_len(), 0, "no webhook, no outbox");
}
